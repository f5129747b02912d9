r"""Metrics: classification accuracy; for retrieval, similarity, Recall@K, median rank, AP / mAP and nDCG.

:func:`accuracy` is the fraction of correct class predictions, from logits or labels.

A retrieval evaluation starts from a score matrix ``similarity: (Q, G)``: row
``i`` scores every gallery item against query ``i`` (higher = more similar),
e.g. ``cosine_similarity(text_emb, image_emb)``.  Sorting a row from the
highest score down gives the *ranking* of the gallery for that query; position
``1`` is the top.

* **Recall@K** — the fraction of queries whose best-ranked positive sits at a
  rank :math:`\le K`.  By default query ``i``'s only positive is gallery item
  ``i`` (paired data); a boolean ``positives: (Q, G)`` matrix allows several.
* **Median rank** — the median over queries of that first-positive rank.
* **Average precision** of one query with :math:`R` relevant items, ranked
  list :math:`\mathrm{rel}_1, \mathrm{rel}_2, \dots \in \{0, 1\}`:

  .. math:: \mathrm{AP} = \frac{1}{R}\sum_{j} \mathrm{rel}_j\,P@j,
            \qquad P@j = \frac{1}{j}\sum_{i \le j}\mathrm{rel}_i ,

  and AP@k sums only :math:`j \le k` and divides by :math:`\min(R, k)` (so a
  perfect top-k scores 1).  **mAP** is the mean of AP over queries; with class
  labels an item is relevant when it shares the query's label.
* **nDCG@k** with graded relevance :math:`g_j \ge 0` (linear gain):
  :math:`\mathrm{DCG@k} = \sum_{j \le k} g_j / \log_2(j + 1)`, divided by the
  DCG@k of the ideal ordering (relevance sorted high to low).

**Cosine similarity: one function, one zero-vector policy.**  :func:`cosine_similarity` is the
course's one cosine: the contrastive losses (:mod:`mmedu.losses`) and
``ExactIndex(metric="cosine")`` (:mod:`mmedu.retrieval`) normalise their rows with the same
code.  Each row is divided by its Euclidean norm, with no ``eps`` floor (a small but non-zero
vector is normalised exactly: the cosine does not depend on the vectors' scale).  **A row whose
norm is 0 stays zero, so it scores 0 against every row**, a zero row included (as in
scikit-learn's ``cosine_similarity`` and FAISS's ``normalize_L2`` followed by ``IndexFlatIP``);
"norm 0" also covers a row whose squared entries all underflow (entries below about ``1e-22``
in float32).  In a loss, the gradient reaching a zero row is finite (the row is divided by 1).
NaN or ``±inf`` entries, and a row whose norm overflows the dtype, are refused.

**Ties: one rule, named by ``ties=``.**  Scores can tie (duplicate captions, quantised
embeddings, float32 rounding — on random float32 data with 25,000 items almost every row holds
at least one tie), and a ranking must then order the tied items.  Every function that ranks a
gallery takes the rule as ``ties=``, one of :data:`TIES`: the metrics below, and
:meth:`mmedu.retrieval.ExactIndex.search` / :func:`mmedu.retrieval.exact_search`.

* ``"pessimistic"`` — the metrics' default: among items with equal scores the less relevant
  ones are ranked first (a tied non-relevant item counts as ranked above a relevant one).  A
  model that gives every item the same score gets the worst possible result, never a lucky
  one, and the result does not depend on the gallery order.  For Recall@K: rank of the best
  positive = 1 + number of non-positive items scoring ``>=`` the best positive score.  The rule
  needs to know which items are relevant, so a search, which returns ids and knows no
  relevance, cannot apply it.
* ``"lowest_id"`` — the search's rule (its default and only choice): among equal scores the
  lower gallery index ranks first (column ``j`` of the score matrix is id ``j``; in an
  :class:`~mmedu.retrieval.ExactIndex`, the lower id).  A metric computed from a search's ids
  therefore equals the metric with ``ties="lowest_id"`` on the same scores.  For example
  ``ids = ExactIndex(G, metric="ip").add(torch.eye(G)).search(S, 1)[1]`` ranks exactly the
  scores ``S: (Q, G)``, and R@1 from its ids, ``(ids[:, 0] == torch.arange(Q)).float().mean()``,
  is ``recall_at_k(S, 1, ties="lowest_id")[1]``, while ``recall_at_k(S, 1)`` counts every tie
  against the model.

On scores without ties the two rules give the same numbers; with ties, the pessimistic value
is never above the ``"lowest_id"`` one (it is the minimum over all orders of the tied items).
Note that scikit-learn treats ties its own way (``average_precision_score`` puts all tied
items at one threshold, ``ndcg_score`` averages over ties unless ``ignore_ties=True``), so it
agrees with this module only on tie-free scores.

**Undefined cases are errors.**  A query with no relevant item has no
Recall/AP/nDCG; instead of silently scoring it 0 or dropping it, a
``ValueError`` names it, so that the caller decides.

**Cost and memory.**  Everything runs on the similarity's device, in chunks of
query rows (about ``2**22`` scores per chunk unless ``chunk_size`` says
otherwise), so extra memory is bounded whatever ``Q``.  Recall@K and the median
rank need no sort: one comparison of each row against its positive score.
AP/mAP/nDCG need one sort per row (the floor for a full ranking) plus a few
linear passes (cumulative sums; tie groups are found and re-ordered sparsely).
``NaN`` scores are refused; ``±inf`` is allowed (e.g. ``-inf`` to mask out a
query's own item).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from ._checks import as_tensor, check_choice, check_finite, check_finite_norms, check_ndim, check_positive_int

__all__ = [
    "TIES",
    "accuracy",
    "cosine_similarity",
    "first_positive_rank",
    "recall_at_k",
    "median_rank",
    "average_precision",
    "mean_average_precision",
    "ndcg_at_k",
]

_CHUNK_ELEMENTS = 2**22  # scores per chunk: bounds the working memory to a few tens of MB

TIES = ("pessimistic", "lowest_id")
"""The tie rules of every ranking function (metrics and search); see "Ties" above."""


# --------------------------------------------------------------------------- validation


def _check_similarity(similarity) -> torch.Tensor:
    s = as_tensor(similarity, "similarity", floating=True)
    check_ndim(s, "similarity", 2, "(Q, G)")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"similarity: expected a non-empty (Q, G) matrix, got shape {tuple(s.shape)}")
    if s.dtype in (torch.float16, torch.bfloat16):
        s = s.float()  # cumulative sums in half precision lose integers above 2048
    return s


def _check_matrix_like(x, name: str, sim: torch.Tensor) -> torch.Tensor:
    t = as_tensor(x, name)
    if tuple(t.shape) != tuple(sim.shape):
        raise ValueError(f"{name}: expected shape {tuple(sim.shape)} (same as similarity), got {tuple(t.shape)}")
    return t.to(sim.device)


def _check_binary(x, name: str, sim: torch.Tensor) -> torch.Tensor:
    t = _check_matrix_like(x, name, sim)
    if t.dtype != torch.bool:
        if t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name}: expected a boolean (or 0/1 integer) matrix, got dtype {t.dtype}")
        if not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(
                f"{name}: expected only 0/1 values in an integer matrix, "
                f"got values in [{int(t.min())}, {int(t.max())}]"
            )
        t = t.bool()
    return t


def _raise_nan(rows: torch.Tensor, start: int) -> None:
    raise ValueError(f"similarity: expected no NaN scores, found NaN in query row {start + int(rows[0])}")


def _check_no_nan(chunk: torch.Tensor, start: int) -> None:
    # a row sum is NaN iff the row holds a NaN or both +inf and -inf: one cheap
    # reduction instead of a full isnan pass, then an exact look at suspect rows
    suspect = torch.isnan(chunk.sum(dim=1)).nonzero()[:, 0]
    if suspect.numel():
        bad = torch.isnan(chunk[suspect]).any(dim=1)
        if bool(bad.any()):
            _raise_nan(suspect[bad], start)


def _check_has_relevant(count: torch.Tensor, start: int, what: str) -> None:
    empty = count == 0
    if bool(empty.any()):
        rows = (empty.nonzero()[:, 0] + start).tolist()
        raise ValueError(
            f"query {rows[0]} has no {what} (queries without one: {len(rows)} in this chunk); "
            "the metric is undefined for it — remove such queries or give each one a positive"
        )


def _check_ties(ties) -> str:
    check_choice(ties, "ties", TIES)
    return ties


def _check_k(k, n_gallery: int, name: str = "k") -> int:
    return check_positive_int(k, name, minimum=1, maximum=n_gallery)


def _chunks(n_rows: int, n_cols: int, chunk_size: int | None) -> Iterator[slice]:
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // n_cols)
    else:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    for a in range(0, n_rows, chunk_size):
        yield slice(a, min(a + chunk_size, n_rows))


# --------------------------------------------------------------------------- similarity


def _unit_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x: (N, D)`` with each row divided by its norm; a row of norm 0 stays zero (differentiable).

    The one normalisation behind every cosine of the package (:func:`cosine_similarity`,
    :mod:`mmedu.losses`, ``ExactIndex(metric="cosine")``).  A row whose norm overflows is refused
    (``ValueError`` naming ``name``): dividing by ``inf`` would silently zero it.
    """
    norm = x.norm(dim=1, keepdim=True)
    check_finite_norms(norm, name)
    return x / torch.where(norm > 0, norm, 1)


def cosine_similarity(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
    r"""Cosine similarity of every row of ``a`` with every row of ``b``.

    ``S[i, j] = <a_i, b_j> / (|a_i| |b_j|)``; a zero row scores 0 against every row (the
    zero-vector policy of the whole package, see the module docstring).  NaN or infinite entries
    are refused (``ValueError``): they would turn into NaN scores, which every other function
    here refuses; so is a row whose norm overflows the dtype (finite entries such as 1e20 in
    float32), which would score 0.  Differentiable: the contrastive losses call it.

    Args:
        a: (Q, D) query embeddings.
        b: (G, D) gallery embeddings (same device).

    Returns:
        (Q, G) similarity matrix in the promoted floating dtype of ``a`` and ``b``.
    """
    a = as_tensor(a, "a", floating=True)
    b = as_tensor(b, "b", floating=True)
    check_ndim(a, "a", 2, "(Q, D)")
    check_ndim(b, "b", 2, "(G, D)")
    check_finite(a, "a")
    check_finite(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b: expected the same feature size D, got a: {a.shape[1]}, b: {b.shape[1]}")
    if a.device != b.device:
        raise ValueError(f"a and b: expected the same device, got a: {a.device}, b: {b.device}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return _unit_rows(a.to(dtype), "a") @ _unit_rows(b.to(dtype), "b").T


# --------------------------------------------------------------------------- rank-based (no sort)


def first_positive_rank(
    similarity: torch.Tensor | np.ndarray,
    positives: torch.Tensor | np.ndarray | None = None,
    *,
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""1-based rank of each query's best-ranked positive.

    With ``ties="pessimistic"`` (default),
    ``rank_i = 1 + #{non-positive j : S[i, j] >= max_{p positive} S[i, p]}``: a non-positive
    item tied with the best positive counts as ranked above it.  With ``ties="lowest_id"``, a
    tied item counts as ranked above the positive only when its gallery index is lower (the order
    of :class:`~mmedu.retrieval.ExactIndex`).  No sort is needed: one comparison per score,
    chunked over queries.

    Args:
        similarity: (Q, G) scores, higher = more similar.  NaN is refused.
        positives: None (query ``i``'s positive is gallery item ``i``; needs
            ``Q <= G``) or a boolean (Q, G) matrix; every query needs >= 1 positive.
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk (default: about 2**22 scores per chunk).

    Returns:
        (Q,) int64 ranks in ``1..G`` on the similarity's device.
    """
    s = _check_similarity(similarity)
    pessimistic = _check_ties(ties) == "pessimistic"
    n_q, n_g = s.shape
    if positives is None:
        if n_q > n_g:
            raise ValueError(
                f"similarity: with positives=None query i matches gallery item i, so Q <= G is needed; "
                f"got Q={n_q}, G={n_g} (pass a positives matrix instead)"
            )
    else:
        positives = _check_binary(positives, "positives", s)
    ranks = torch.empty(n_q, dtype=torch.int64, device=s.device)
    columns = torch.arange(n_g, device=s.device)
    for sl in _chunks(n_q, n_g, chunk_size):
        chunk = s[sl]
        _check_no_nan(chunk, sl.start)
        if positives is None:
            rows = torch.arange(sl.start, sl.stop, device=s.device)
            best = chunk[rows - sl.start, rows].unsqueeze(1)
            if pessimistic:
                # the positive itself satisfies >=, which supplies the "1 +"
                ranks[sl] = (chunk >= best).sum(dim=1, dtype=torch.int32)
            else:
                # ... and here the positive itself satisfies "== and index <= its own"
                above = (chunk > best) | ((chunk == best) & (columns <= rows[:, None]))
                ranks[sl] = above.sum(dim=1, dtype=torch.int32)
        else:
            pos = positives[sl]
            _check_has_relevant(pos.sum(dim=1), sl.start, "positive gallery item")
            best = chunk.masked_fill(~pos, float("-inf")).amax(dim=1, keepdim=True)
            if pessimistic:
                above = (chunk >= best) & ~pos
            else:
                # the best-ranked positive is the lowest-index positive with the best score
                first = ((chunk == best) & pos).to(torch.uint8).argmax(dim=1, keepdim=True)
                above = ((chunk > best) | ((chunk == best) & (columns < first))) & ~pos
            ranks[sl] = above.sum(dim=1, dtype=torch.int32) + 1
    return ranks


def recall_at_k(
    similarity: torch.Tensor | np.ndarray,
    ks: int | Sequence[int] = (1, 5, 10),
    positives: torch.Tensor | np.ndarray | None = None,
    *,
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> dict[int, float]:
    r"""Recall@K: fraction of queries whose best-ranked positive has rank <= K.

    Ties are broken by ``ties`` (see :func:`first_positive_rank`).  Pessimistically (default),
    a constant score matrix with one positive per query puts every positive at rank G, so its
    Recall@K is 0 for every K < G; ``ties="lowest_id"`` gives what the ids of an
    :class:`~mmedu.retrieval.ExactIndex` search over the same scores give.

    Args:
        similarity: (Q, G) scores, higher = more similar.
        ks: one K or several, each in ``1..G``.
        positives: None (query ``i`` <-> gallery ``i``) or a boolean (Q, G)
            matrix of positives (every query needs at least one).
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk.

    Returns:
        ``{K: recall}`` with Python floats in ``[0, 1]``.
    """
    s = _check_similarity(similarity)
    ks_list = [ks] if isinstance(ks, int) or not isinstance(ks, Sequence) else list(ks)
    if not ks_list:
        raise ValueError("ks: expected at least one K, got an empty sequence")
    ks_list = [_check_k(k, s.shape[1], "ks") for k in ks_list]
    ranks = first_positive_rank(s, positives, ties=ties, chunk_size=chunk_size)
    return {k: int((ranks <= k).sum()) / len(ranks) for k in ks_list}


def median_rank(
    similarity: torch.Tensor | np.ndarray,
    positives: torch.Tensor | np.ndarray | None = None,
    *,
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> float:
    r"""Median over queries of the best positive's 1-based rank.

    With an even number of queries the two middle ranks are averaged (as
    ``numpy.median`` does), so the result can end in ``.5``.

    Args:
        similarity: (Q, G) scores; positives: None or boolean (Q, G), as in
            :func:`recall_at_k`.
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk.

    Returns:
        The median rank as a Python float (1.0 is perfect).
    """
    ranks = first_positive_rank(similarity, positives, ties=ties, chunk_size=chunk_size)
    return float(torch.quantile(ranks.cpu().double(), 0.5))


# --------------------------------------------------------------------------- sort-based


def _pessimistic_ties_(values: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """Re-order ``rel`` inside each run of equal ``values`` so the least relevant come first.

    ``values``: (B, G) rows sorted in descending order; ``rel``: (B, G) relevance
    in the same order (modified in place and returned).  Ties are usually a
    small fraction of the entries, so only the tied positions are gathered,
    sorted by (tie group, relevance) and written back.
    """
    n_g = values.shape[1]
    tie = values[:, 1:] == values[:, :-1]  # (B, G-1): position j ties with j + 1
    pairs = tie.nonzero()
    if pairs.numel() == 0:
        return rel
    left = pairs[:, 0] * n_g + pairs[:, 1]
    flat = torch.unique(torch.cat([left, left + 1]))  # sorted positions inside tie groups
    row, col = flat // n_g, flat % n_g
    # a member opens a new group unless it ties with its left neighbour
    opens = torch.ones_like(flat, dtype=torch.bool)
    inner = col > 0
    opens[inner] = ~tie[row[inner], col[inner] - 1]
    group = torch.cumsum(opens, 0)
    rel_flat = rel.reshape(-1)[flat]
    key = rel_flat if rel_flat.is_floating_point() else rel_flat.to(torch.int32)
    by_rel = torch.sort(key, stable=True).indices
    by_group = torch.sort(group[by_rel], stable=True).indices
    rel.view(-1)[flat] = rel_flat[by_rel[by_group]]
    return rel


def _ap_from_sorted(rel: torch.Tensor, n_relevant: torch.Tensor, k: int | None, dtype: torch.dtype) -> torch.Tensor:
    """AP (or AP@k) per row from relevance ``rel: (B, G)`` already in ranked order."""
    if k is not None:
        rel = rel[:, :k]
        n_relevant = n_relevant.clamp(max=k)
    relf = rel.to(dtype)
    positions = torch.arange(1, relf.shape[1] + 1, device=relf.device, dtype=dtype)
    precision = relf.cumsum(dim=1).div_(positions)
    return (precision.mul_(relf)).sum(dim=1) / n_relevant.to(dtype)


def _sorted_chunk(chunk: torch.Tensor, start: int, pessimistic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row sorted best first.  For ``"lowest_id"`` ties the sort is stable (equal scores keep
    their column order); for ``"pessimistic"`` any order will do, :func:`_pessimistic_ties_` fixes it."""
    values, order = torch.sort(chunk, dim=1, descending=True, stable=not pessimistic)
    # torch.sort puts NaN at one end of the row, so two columns suffice to detect it
    bad = torch.isnan(values[:, 0]) | torch.isnan(values[:, -1])
    if bool(bad.any()):
        _raise_nan(bad.nonzero()[:, 0], start)
    return values, order


def average_precision(
    similarity: torch.Tensor | np.ndarray,
    relevance: torch.Tensor | np.ndarray,
    k: int | None = None,
    *,
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Average precision (or AP@k) of every query.

    ``AP = (1/R) * sum_j rel_j * P@j`` over the ranking of the gallery by
    descending score, ties broken by ``ties`` (pessimistically by default:
    inside a group of equal scores the non-relevant items are ranked first).
    AP@k keeps ``j <= k`` and divides by ``min(R, k)``.

    Args:
        similarity: (Q, G) scores, higher = more similar (NaN refused).
        relevance: boolean (Q, G) matrix (0/1 integers accepted); every query
            needs at least one relevant item.
        k: None for the full ranking, or a cut-off in ``1..G``.
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk.

    Returns:
        (Q,) AP values in the similarity's floating dtype and device.
    """
    s = _check_similarity(similarity)
    pessimistic = _check_ties(ties) == "pessimistic"
    rel_all = _check_binary(relevance, "relevance", s)
    n_q, n_g = s.shape
    k = None if k is None else _check_k(k, n_g)
    out = torch.empty(n_q, dtype=s.dtype, device=s.device)
    for sl in _chunks(n_q, n_g, chunk_size):
        n_rel = rel_all[sl].sum(dim=1)
        _check_has_relevant(n_rel, sl.start, "relevant gallery item")
        values, order = _sorted_chunk(s[sl], sl.start, pessimistic)
        rel = rel_all[sl].gather(1, order)
        if pessimistic:
            rel = _pessimistic_ties_(values, rel)
        out[sl] = _ap_from_sorted(rel, n_rel, k, s.dtype)
    return out


def _check_labels(x, name: str, n: int, device: torch.device) -> torch.Tensor:
    t = as_tensor(x, name)
    is_query = name.startswith("query")
    check_ndim(t, name, 1, "(Q,)" if is_query else "(G,)")
    if t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name}: expected integer class labels, got dtype {t.dtype}")
    if t.shape[0] != n:
        where = "row" if is_query else "column"
        raise ValueError(f"{name}: expected {n} labels (one per similarity {where}), got {t.shape[0]}")
    return t.to(device=device, dtype=torch.int64)


def mean_average_precision(
    similarity: torch.Tensor | np.ndarray,
    query_labels: torch.Tensor | np.ndarray,
    gallery_labels: torch.Tensor | np.ndarray,
    k: int | None = None,
    *,
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> float:
    r"""Mean average precision with class-level relevance.

    Gallery item ``j`` is relevant to query ``i`` when
    ``gallery_labels[j] == query_labels[i]``; AP (or AP@k) per query as in
    :func:`average_precision` (same ``ties``), then averaged.  Relevance is
    built from the labels chunk by chunk, never as a full (Q, G) matrix.

    Args:
        similarity: (Q, G) scores, higher = more similar.
        query_labels: (Q,) integer labels.
        gallery_labels: (G,) integer labels; every query label must occur.
        k: None or a cut-off in ``1..G``.
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk.

    Returns:
        mAP as a Python float.
    """
    s = _check_similarity(similarity)
    pessimistic = _check_ties(ties) == "pessimistic"
    n_q, n_g = s.shape
    q_lab = _check_labels(query_labels, "query_labels", n_q, s.device)
    g_lab = _check_labels(gallery_labels, "gallery_labels", n_g, s.device)
    k = None if k is None else _check_k(k, n_g)
    classes, counts = torch.unique(g_lab, return_counts=True)
    where = torch.searchsorted(classes, q_lab).clamp(max=classes.numel() - 1)
    n_relevant = torch.where(classes[where] == q_lab, counts[where], 0)
    total = 0.0
    for sl in _chunks(n_q, n_g, chunk_size):
        _check_has_relevant(n_relevant[sl], sl.start, "gallery item with its label")
        values, order = _sorted_chunk(s[sl], sl.start, pessimistic)
        # compare labels before sorting: gathering bools moves 8x fewer bytes than int64 labels
        rel = (g_lab == q_lab[sl, None]).gather(1, order)
        if pessimistic:
            rel = _pessimistic_ties_(values, rel)
        total += float(_ap_from_sorted(rel, n_relevant[sl], k, s.dtype).sum())
    return total / n_q


def ndcg_at_k(
    similarity: torch.Tensor | np.ndarray,
    relevance: torch.Tensor | np.ndarray,
    k: int,
    *,
    reduction: str = "mean",
    ties: str = "pessimistic",
    chunk_size: int | None = None,
) -> float | torch.Tensor:
    r"""Normalised discounted cumulative gain at ``k`` with graded relevance.

    ``DCG@k = sum_{j<=k} g_j / log2(j + 1)`` with linear gain ``g_j`` (the
    relevance of the item at rank ``j``), divided by the DCG@k of the ideal
    ranking.  Ties are broken by ``ties``; pessimistically (default), inside a
    group of equal scores items are ranked from least to most relevant.

    Args:
        similarity: (Q, G) scores, higher = more similar.
        relevance: (Q, G) non-negative finite grades; every query needs at
            least one positive grade (otherwise the ideal DCG is 0).
        k: cut-off in ``1..G``.
        reduction: ``"mean"`` (a float) or ``"none"`` (a (Q,) tensor).
        ties: ``"pessimistic"`` or ``"lowest_id"`` (see "Ties" in :mod:`mmedu.metrics`).
        chunk_size: query rows per chunk.

    Returns:
        Mean nDCG@k as a Python float, or (Q,) values for ``reduction="none"``.
    """
    s = _check_similarity(similarity)
    check_choice(reduction, "reduction", ("mean", "none"))
    pessimistic = _check_ties(ties) == "pessimistic"
    rel_all = _check_matrix_like(relevance, "relevance", s)
    if rel_all.dtype == torch.bool or rel_all.is_complex():
        raise TypeError(f"relevance: expected real graded (numeric) relevance, got dtype {rel_all.dtype}")
    rel_all = rel_all.to(s.dtype)
    if not bool(torch.isfinite(rel_all).all()) or bool((rel_all < 0).any()):
        raise ValueError("relevance: expected finite, non-negative grades")
    n_q, n_g = s.shape
    k = _check_k(k, n_g)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=s.device, dtype=s.dtype))
    out = torch.empty(n_q, dtype=s.dtype, device=s.device)
    for sl in _chunks(n_q, n_g, chunk_size):
        rel_chunk = rel_all[sl]
        ideal = torch.topk(rel_chunk, k, dim=1).values @ discount
        _check_has_relevant(ideal, sl.start, "gallery item with positive relevance")
        values, order = _sorted_chunk(s[sl], sl.start, pessimistic)
        ranked = rel_chunk.gather(1, order)
        if pessimistic:
            ranked = _pessimistic_ties_(values, ranked)
        out[sl] = (ranked[:, :k] @ discount) / ideal
    return float(out.cpu().double().mean()) if reduction == "mean" else out


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of items whose predicted class is their label.

    Args:
        scores: ``(N, C)`` class scores (logits or probabilities: the prediction is the argmax
            of each row) or ``(N,)`` predicted labels.
        labels: ``(N,)`` integer labels, on any device.

    Returns:
        A float in ``[0, 1]``: ``(prediction == labels).float().mean()``.
    """
    s = as_tensor(scores, "scores")
    check_ndim(s, "scores", (1, 2), "(N, C) class scores or (N,) predicted labels")
    y = as_tensor(labels, "labels")
    check_ndim(y, "labels", 1, "(N,)")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class labels, got dtype {y.dtype}")
    if s.ndim == 2:
        if not (s.is_floating_point() or s.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"scores: expected real class scores, got dtype {s.dtype}")
        if s.is_floating_point():
            check_finite(s, "scores")
        pred = s.argmax(dim=1)
    else:
        if s.is_floating_point() or s.is_complex() or s.dtype == torch.bool:
            raise TypeError(f"scores: expected (N,) integer predicted labels or (N, C) scores, got a 1-D {s.dtype} tensor")
        pred = s
    if pred.shape[0] != y.shape[0]:
        raise ValueError(f"scores and labels: expected one prediction per label, got {pred.shape[0]} and {y.shape[0]}")
    if pred.shape[0] == 0:
        raise ValueError("scores: expected at least one item, got none")
    return (pred == y.to(pred.device)).float().mean().item()
