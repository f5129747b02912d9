r"""Exact nearest-neighbour search with bounded memory: :class:`ExactIndex`.

A retrieval system stores a *gallery* of :math:`N` embeddings and answers a query
embedding with the :math:`k` gallery items of highest score.  :class:`ExactIndex` does this
exactly (every gallery item is scored), like FAISS's ``IndexFlatIP``, with

* ``metric="ip"``: the inner product :math:`\boldsymbol{q}^{\top}\boldsymbol{x}`;
* ``metric="cosine"``: the inner product of the unit-length vectors, rows normalised when
  added and when queried by the code of :func:`mmedu.metrics.cosine_similarity`, with its
  zero-vector policy: a zero vector stays zero and scores 0 against everything (as FAISS's
  ``normalize_L2`` leaves it).

**Bounded memory.**  ``search`` never forms the full ``(Q, N)`` score matrix: queries and
gallery are scored block by block, each block holding at most ``chunk_size`` scores
(default ``2**22``, 16 MB in float32), and a running top-:math:`k` per query is merged with
each block's top-:math:`k`.  Extra memory is ``O(chunk_size + Q k)`` whatever ``Q`` and ``N``.

**Ties are broken deterministically: among equal scores the lowest id comes first**
(``ties="lowest_id"``, the rule of that name in the one account of ties, "Ties" in
:mod:`mmedu.metrics`).  The results therefore do not depend on the chunk size, the order in
which vectors were added or the device.  (``torch.topk`` alone does not promise any order
among ties.)  A search knows no relevance, so the metrics' default ``"pessimistic"`` rule is
not available here; to score a search's ranking exactly, pass ``ties="lowest_id"`` to the
metric (e.g. :func:`mmedu.metrics.recall_at_k`).  The rule costs little: a row whose k-th and
(k+1)-th scores differ has a unique top-k set, which only needs sorting; the tie rule proper
runs only on the rows with a tie at the cut-off.

Example::

    index = ExactIndex(dim=32, metric="cosine")
    index.add(caption_embeddings)                     # ids 0..N-1
    scores, ids = index.search(image_embeddings, k=10)   # (Q, 10) each, best first
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int
from .metrics import TIES, _unit_rows

__all__ = ["ExactIndex", "exact_search", "METRICS"]

METRICS = ("cosine", "ip")
_CHUNK_ELEMENTS = 2**22


def _check_search_ties(ties) -> None:
    # The metrics' other rules need relevance, which a search does not have: say so, rather than
    # only "expected one of ['lowest_id']".
    if isinstance(ties, str) and ties in TIES and ties != "lowest_id":
        raise ValueError(f"ties: a search breaks ties by 'lowest_id' only, got {ties!r}, which needs to know the "
                         f"relevant items; to score a search's ranking, pass ties='lowest_id' to the metric")
    check_choice(ties, "ties", ("lowest_id",))


def _topk_in_block(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of every row of ``scores: (B, n)``, ties to the lowest column; sorted best first.

    Returns ``(values (B, k), columns (B, k))``.  One ``topk(k + 1)`` per row decides which rows
    need the tie rule at the cut-off: where the k-th value is strictly above the (k+1)-th, the
    top-k *set* is unique and only its order has to be fixed (by value, then column: a sort of
    k items).  Rows with a tie at the cut-off (or a NaN score) go through
    :func:`_topk_in_block_ties`, which picks the lowest columns among the tied items.  The result
    is the same as :func:`_topk_in_block_ties` on every row; only the cost differs.
    """
    n = scores.shape[1]
    if k >= n:  # every column is kept
        return _topk_in_block_ties(scores, k)
    top_v, top_c = scores.topk(k + 1, dim=1)  # sorted, best first (NaN first)
    clear = (top_v[:, k - 1] > top_v[:, k]) & ~top_v[:, 0].isnan()
    cols = top_c[:, :k].sort(dim=1).values  # column order = tie order
    vals = scores.gather(1, cols)
    order = vals.sort(dim=1, descending=True, stable=True).indices
    vals, cols = vals.gather(1, order), cols.gather(1, order)
    if not bool(clear.all()):
        tied = (~clear).nonzero()[:, 0]
        vals[tied], cols[tied] = _topk_in_block_ties(scores[tied], k)
    return vals, cols


def _topk_in_block_ties(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_topk_in_block` for rows with ties at the cut-off (correct for any row).

    Cost: one ``topk`` and a few linear passes (no full sort of the row): items strictly above
    the k-th value are all kept; of the items equal to it, the ones with the lowest columns fill
    the remaining places.
    """
    kth = scores.topk(k, dim=1).values[:, -1:]  # (B, 1): the k-th largest value of each row
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(dim=1, keepdim=True)  # places left for tied items (>= 1)
    keep = above | (tied & (tied.cumsum(dim=1) <= room))  # exactly k per row
    cols = keep.to(scores.dtype).topk(k, dim=1).indices  # the k kept columns, any order
    cols = cols.sort(dim=1).values  # column order = tie order
    vals = scores.gather(1, cols)
    order = vals.sort(dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), cols.gather(1, order)


def _merge(v1, c1, v2, c2, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two best-first candidate lists (values, global columns) into the top-k, ties to low column."""
    v, c = torch.cat([v1, v2], dim=1), torch.cat([c1, c2], dim=1)
    by_col = c.sort(dim=1).indices
    v, c = v.gather(1, by_col), c.gather(1, by_col)
    order = v.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return v.gather(1, order), c.gather(1, order)


class ExactIndex:
    r"""Exact top-:math:`k` search by inner product or cosine, chunked, with deterministic ties.

    Args:
        dim: the embedding size :math:`D` (every added vector and query has ``D`` features).
        metric: ``"cosine"`` (default) or ``"ip"`` (inner product, as FAISS's ``IndexFlatIP``).
        chunk_size: most scores held at once during a search (default ``2**22``).

    Vectors are stored on the device and in the floating dtype of the first :meth:`add`
    (later additions and queries are moved there).  Ids are non-negative integers, unique in
    the index; stored internally in increasing id order, so that "lowest id first among ties"
    is the storage order.
    """

    def __init__(self, dim: int, metric: str = "cosine", chunk_size: int | None = None) -> None:
        self.dim = check_positive_int(dim, "dim")
        check_choice(metric, "metric", METRICS)
        self.metric = metric
        self.chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        self._vectors: torch.Tensor | None = None  # (N, D), sorted by id
        self._ids: torch.Tensor | None = None  # (N,) int64, increasing

    # ----------------------------------------------------------------- state

    @property
    def ntotal(self) -> int:
        """Number of stored vectors (FAISS's name)."""
        return 0 if self._ids is None else int(self._ids.numel())

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ids(self) -> torch.Tensor:
        """The stored ids in increasing order, an ``(N,)`` int64 tensor."""
        return torch.empty(0, dtype=torch.int64) if self._ids is None else self._ids.clone()

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self.dim}, metric={self.metric!r}, ntotal={self.ntotal})"

    # ----------------------------------------------------------------- input checks

    def _vectors_in(self, x, name: str) -> torch.Tensor:
        t = as_tensor(x, name, floating=True)
        check_ndim(t, name, 2, f"(n, {self.dim})")
        if t.shape[1] != self.dim:
            raise ValueError(f"{name}: expected {self.dim} features per row (the index's dim), got {t.shape[1]}")
        if t.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one row, got shape {tuple(t.shape)}")
        if self._vectors is not None:
            t = t.to(device=self._vectors.device, dtype=self._vectors.dtype)
        elif t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        check_finite(t, name)
        return _unit_rows(t, name) if self.metric == "cosine" else t

    # ----------------------------------------------------------------- public API

    def add(self, vectors: torch.Tensor | np.ndarray, ids: torch.Tensor | np.ndarray | None = None
            ) -> "ExactIndex":
        """Add ``vectors: (n, D)`` with ``ids: (n,)`` non-negative integers (default: the
        next ``n`` integers after the largest stored id, i.e. ``0..n-1`` for a new index).

        Raises ``ValueError`` for a wrong feature size, NaN/inf, a norm that overflows under
        cosine, negative or duplicated ids (also against the ids already stored).  Returns
        ``self``.
        """
        v = self._vectors_in(vectors, "vectors")
        n = v.shape[0]
        if ids is None:
            start = 0 if self._ids is None else int(self._ids[-1]) + 1
            new_ids = torch.arange(start, start + n, dtype=torch.int64)
        else:
            new_ids = as_tensor(ids, "ids")
            if new_ids.dtype == torch.bool or new_ids.is_floating_point() or new_ids.is_complex():
                raise TypeError(f"ids: expected integer ids, got dtype {new_ids.dtype}")
            check_ndim(new_ids, "ids", 1, f"({n},)")
            if new_ids.shape[0] != n:
                raise ValueError(f"ids: expected {n} ids (one per vector), got {new_ids.shape[0]}")
            new_ids = new_ids.to(torch.int64)
            if bool((new_ids < 0).any()):
                raise ValueError(f"ids: expected non-negative integers, got minimum {int(new_ids.min())}")
        new_ids = new_ids.to(v.device)
        all_ids = new_ids if self._ids is None else torch.cat([self._ids, new_ids])
        uniq = torch.unique(all_ids)
        if uniq.numel() != all_ids.numel():
            sorted_ids = all_ids.sort().values
            dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
            raise ValueError(f"ids: expected unique ids, id {int(dup[0])} occurs more than once "
                             f"({all_ids.numel() - uniq.numel()} duplicates, counting ids already in the index)")
        all_vec = v if self._vectors is None else torch.cat([self._vectors, v])
        order = all_ids.argsort()
        self._ids, self._vectors = all_ids[order], all_vec[order]
        return self

    def search(self, queries: torch.Tensor | np.ndarray, k: int, chunk_size: int | None = None, *,
               ties: str = "lowest_id") -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best gallery items of every query.

        Args:
            queries: ``(Q, D)``.
            k: results per query, ``1 <= k <= ntotal``.
            chunk_size: most scores per block (default: the index's, else ``2**22``).
            ties: ``"lowest_id"``, the only rule a search can apply (see "Ties" in
                :mod:`mmedu.metrics`); ``"pessimistic"`` needs relevance and is refused.

        Returns:
            ``scores: (Q, k)`` best first, and ``ids: (Q, k)`` int64; among equal scores the
            lowest id comes first.

        Raises:
            ValueError: on an empty index, ``k`` outside ``1..ntotal``, a wrong feature
                size, NaN/inf, a norm that overflows under cosine, or a tie rule other than
                ``"lowest_id"``.
        """
        _check_search_ties(ties)
        if self._vectors is None:
            raise ValueError("search: the index is empty; add vectors first (index.add(vectors))")
        k = check_positive_int(k, "k", maximum=self.ntotal)
        q = self._vectors_in(queries, "queries")
        budget = chunk_size if chunk_size is not None else self.chunk_size
        budget = _CHUNK_ELEMENTS if budget is None else check_positive_int(budget, "chunk_size")
        n, n_q = self.ntotal, q.shape[0]
        cols = max(k, min(n, budget))  # gallery vectors per block (at least k, to fill a top-k)
        rows = max(1, budget // cols)  # queries per block
        out_v = q.new_empty(n_q, k)
        out_c = torch.empty(n_q, k, dtype=torch.int64, device=q.device)
        for r0 in range(0, n_q, rows):
            qb = q[r0:r0 + rows]
            best_v = best_c = None
            for c0 in range(0, n, cols):
                block = qb @ self._vectors[c0:c0 + cols].T  # (rows, cols)
                kb = min(k, block.shape[1])
                v, c = _topk_in_block(block, kb)
                c = c + c0
                if best_v is None:
                    best_v, best_c = v, c
                else:
                    best_v, best_c = _merge(best_v, best_c, v, c, k)
            out_v[r0:r0 + rows], out_c[r0:r0 + rows] = best_v, best_c
        return out_v, self._ids[out_c]


def exact_search(queries: torch.Tensor | np.ndarray, gallery: torch.Tensor | np.ndarray, k: int,
                 metric: str = "cosine", chunk_size: int | None = None, *, ties: str = "lowest_id"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One-shot exact search: ``gallery: (N, D)`` gets ids ``0..N-1``; returns ``(scores, ids)``
    of shape ``(Q, k)`` as :meth:`ExactIndex.search` (``ties="lowest_id"``: lowest id first
    among equal scores, the only rule a search can apply)."""
    _check_search_ties(ties)
    g = as_tensor(gallery, "gallery", floating=True)
    check_ndim(g, "gallery", 2, "(N, D)")
    index = ExactIndex(int(g.shape[1]) if g.shape[1] else 1, metric=metric, chunk_size=chunk_size)
    return index.add(g).search(queries, k, ties=ties)
