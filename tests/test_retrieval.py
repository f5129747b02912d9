"""Tests for mmedu.retrieval: against a brute-force loop (with ties), FAISS's IndexFlatIP, and the
metrics' cosine and tie rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmedu import retrieval
from mmedu.metrics import cosine_similarity, first_positive_rank, recall_at_k
from mmedu.retrieval import ExactIndex, _topk_in_block, _topk_in_block_ties, exact_search

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def bf_search(queries, gallery, ids, k, metric):
    """Brute force: score every pair in a Python loop, sort by (-score, id)."""
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    if metric == "cosine":  # a zero vector stays zero
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)
    out_s, out_i = [], []
    for row in q:
        scored = [(float(row @ g[j]), int(ids[j])) for j in range(len(g))]
        scored.sort(key=lambda t: (-t[0], t[1]))
        out_s.append([s for s, _ in scored[:k]])
        out_i.append([i for _, i in scored[:k]])
    return np.array(out_s), np.array(out_i)


@pytest.mark.parametrize("metric", ["cosine", "ip"])
@pytest.mark.parametrize("chunk_size", [None, 7, 64, 1000])
@pytest.mark.parametrize("device", DEVICES)
def test_matches_brute_force_without_ties(metric, chunk_size, device):
    g = torch.Generator().manual_seed(1)
    gallery = torch.randn(53, 6, generator=g, dtype=torch.float64)
    queries = torch.randn(11, 6, generator=g, dtype=torch.float64)
    index = ExactIndex(6, metric=metric, chunk_size=chunk_size).add(gallery.to(device))
    scores, ids = index.search(queries, 5)
    want_s, want_i = bf_search(queries, gallery, np.arange(53), 5, metric)
    assert scores.shape == (11, 5) and ids.shape == (11, 5) and ids.dtype == torch.int64
    np.testing.assert_array_equal(ids.cpu().numpy(), want_i)
    np.testing.assert_allclose(scores.cpu().numpy(), want_s, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, 1, 5, 13, 40])
def test_ties_lowest_id_first_whatever_the_chunks(chunk_size):
    # integer-valued vectors: many exactly equal inner products; ids given in a scrambled order
    g = torch.Generator().manual_seed(2)
    gallery = torch.randint(-1, 2, (40, 3), generator=g).float()
    queries = torch.randint(-1, 2, (9, 3), generator=g).float()
    ids = torch.randperm(40, generator=g) * 3 + 5
    index = ExactIndex(3, metric="ip", chunk_size=chunk_size)
    index.add(gallery[:25], ids[:25]).add(gallery[25:], ids[25:])  # two additions, ids not increasing
    scores, got = index.search(queries, 12)
    want_s, want_i = bf_search(queries, gallery, ids.numpy(), 12, "ip")
    assert len(np.unique(want_s)) < want_s.size  # the data really has ties
    np.testing.assert_array_equal(got.numpy(), want_i)
    np.testing.assert_array_equal(scores.numpy(), want_s)


def _tie_heavy_blocks():
    """Score blocks (B, n) full of ties, and a few without: integer-valued scores, duplicated
    columns, constant rows, +0.0 next to -0.0, infinities, and plain Gaussian scores."""
    g = torch.Generator().manual_seed(4)
    blocks = [torch.randint(-2, 3, (30, 50), generator=g).float(),  # 5 values: ties everywhere
              torch.randint(0, 2, (20, 9), generator=g).double(),
              torch.zeros(4, 12),  # every row one big tie
              torch.randn(25, 40, generator=g)]  # (almost surely) no tie
    dup = torch.randn(10, 8, generator=g)
    blocks.append(dup[:, torch.randint(0, 8, (60,), generator=g)])  # every column repeated
    signed = torch.randint(-1, 2, (12, 30), generator=g).float() * 0.0  # +0.0 and -0.0
    signed[:, :5] = torch.randn(12, 5, generator=g)
    blocks.append(signed)
    inf = torch.randint(0, 3, (8, 20), generator=g).float()
    inf[inf == 2] = float("inf")
    inf[:, 0] = -float("inf")
    blocks.append(inf)
    return blocks


def test_fast_path_equals_the_tie_rule_and_a_full_stable_sort():
    # _topk_in_block_ties is the implementation that applied the tie rule to every row;
    # _topk_in_block skips it where no tie sits at the cut-off and must give identical results.
    for scores in _tie_heavy_blocks():
        n = scores.shape[1]
        full = scores.sort(dim=1, descending=True, stable=True)  # ties: lowest column first
        for k in sorted({1, 2, 5, n - 1, n}):
            vals, cols = _topk_in_block(scores, k)
            ref_vals, ref_cols = _topk_in_block_ties(scores, k)
            assert torch.equal(cols, ref_cols) and torch.equal(vals, ref_vals), (tuple(scores.shape), k)
            assert torch.equal(cols, full.indices[:, :k]) and torch.equal(vals, full.values[:, :k])
            assert vals.dtype == scores.dtype and cols.dtype == torch.int64


def test_fast_path_sends_only_rows_with_a_tie_at_the_cut_off_to_the_tie_rule(monkeypatch):
    sent = []

    def counting(scores, k):
        sent.append(scores.shape[0])
        return _topk_in_block_ties(scores, k)

    monkeypatch.setattr(retrieval, "_topk_in_block_ties", counting)
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(50, 200, generator=g)
    scores[7, :] = 1.0  # row 7: all tied
    scores[9, 3:6] = scores[9].max() + 1  # row 9: a tie at the top only (k = 3 keeps all three)
    scores[11, [20, 30]] = scores[11].topk(3).values[2]  # row 11: a tie at the cut-off
    vals, cols = retrieval._topk_in_block(scores, 3)
    assert sent == [2]  # rows 7 and 11
    assert cols[7].tolist() == [0, 1, 2] and cols[9].tolist() == [3, 4, 5]
    torch.testing.assert_close(vals, scores.sort(dim=1, descending=True, stable=True).values[:, :3], atol=0, rtol=0)


@pytest.mark.parametrize("chunk_size", [None, 50, 333, 4096])
@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_search_with_duplicates_equals_the_tie_rule_everywhere(monkeypatch, chunk_size, metric):
    # 40 distinct vectors, each stored 6 times under scrambled ids: every query's top-k cut-off
    # falls inside a group of exactly equal scores
    g = torch.Generator().manual_seed(6)
    distinct = torch.randint(-3, 4, (40, 5), generator=g).float()
    gallery = distinct.repeat(6, 1)
    ids = torch.randperm(240, generator=g) * 2 + 1
    queries = torch.cat([torch.randint(-3, 4, (20, 5), generator=g).float(), distinct[:5], torch.zeros(1, 5)])
    index = ExactIndex(5, metric=metric, chunk_size=chunk_size).add(gallery[:100], ids[:100]).add(gallery[100:],
                                                                                                    ids[100:])
    got = index.search(queries, 9)
    monkeypatch.setattr(retrieval, "_topk_in_block", _topk_in_block_ties)
    every_row = index.search(queries, 9)
    assert torch.equal(got[0], every_row[0]) and torch.equal(got[1], every_row[1])
    if metric == "ip":  # integer scores are exact: the brute force agrees to the bit
        want_s, want_i = bf_search(queries, gallery, ids.numpy(), 9, "ip")
        np.testing.assert_array_equal(got[1].numpy(), want_i)
        np.testing.assert_array_equal(got[0].numpy(), want_s)


def test_k_equal_to_gallery_returns_a_full_ranking():
    g = torch.Generator().manual_seed(3)
    gallery = torch.randn(17, 4, generator=g)
    scores, ids = ExactIndex(4, "cosine", chunk_size=5).add(gallery).search(gallery[:3], 17)
    assert sorted(ids[0].tolist()) == list(range(17))
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())
    assert ids[:, 0].tolist() == [0, 1, 2]  # each vector is its own nearest neighbour


def test_default_ids_continue_and_exact_search_helper():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(10, 5, generator=g)
    index = ExactIndex(5, "ip").add(x[:4]).add(x[4:])
    assert index.ntotal == len(index) == 10 and index.ids.tolist() == list(range(10))
    s1, i1 = index.search(x, 3)
    s2, i2 = exact_search(x, x, 3, metric="ip")
    torch.testing.assert_close(s1, s2)
    assert torch.equal(i1, i2)
    assert "ntotal=10" in repr(index)


def test_numpy_inputs_and_dtype_follow_the_first_add():
    x = np.random.default_rng(0).standard_normal((8, 3))
    index = ExactIndex(3, "ip").add(x.astype(np.float32))
    scores, _ = index.search(x, 2)  # float64 queries cast to the stored float32
    assert scores.dtype == torch.float32


def test_same_neighbours_as_faiss_index_flat_ip():
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed (optional: pip install faiss-cpu)")
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((20, 32))
    gallery = (centres[rng.integers(0, 20, 3000)] + 0.5 * rng.standard_normal((3000, 32))).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = gallery[rng.integers(0, 3000, 50)] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    fi = faiss.IndexFlatIP(32)
    fi.add(gallery)
    f_scores, f_ids = fi.search(queries, 10)
    scores, ids = ExactIndex(32, "ip", chunk_size=1000).add(gallery).search(queries, 10)
    np.testing.assert_array_equal(ids.numpy(), f_ids)
    np.testing.assert_allclose(scores.numpy(), f_scores, atol=1e-5)


# --------------------------------------------------------------------------- bad input


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="metric"):
        ExactIndex(4, metric="l2")
    with pytest.raises(ValueError, match="dim"):
        ExactIndex(0)
    with pytest.raises(TypeError, match="dim"):
        ExactIndex(4.0)
    with pytest.raises(ValueError, match="chunk_size"):
        ExactIndex(4, chunk_size=0)


def test_empty_index_and_k_larger_than_gallery():
    index = ExactIndex(3)
    with pytest.raises(ValueError, match="empty"):
        index.search(torch.randn(2, 3), 1)
    index.add(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"k: expected an integer >= 1 and <= 4, got 5"):
        index.search(torch.randn(2, 3), 5)
    with pytest.raises(ValueError, match="k"):
        index.search(torch.randn(2, 3), 0)
    with pytest.raises(TypeError, match="k"):
        index.search(torch.randn(2, 3), 2.0)


def test_dimension_mismatch_and_shapes():
    index = ExactIndex(3).add(torch.randn(4, 3))
    with pytest.raises(ValueError, match="expected 3 features per row.*got 5"):
        index.add(torch.randn(2, 5))
    with pytest.raises(ValueError, match="expected 3 features per row.*got 2"):
        index.search(torch.randn(2, 2), 1)
    with pytest.raises(ValueError, match="2-D"):
        index.search(torch.randn(3), 1)
    with pytest.raises(ValueError, match="at least one row"):
        index.add(torch.randn(0, 3))
    with pytest.raises(TypeError, match="vectors"):
        index.add("abc")


def test_nan_and_bad_ids():
    index = ExactIndex(2)
    with pytest.raises(ValueError, match="finite"):
        index.add(torch.tensor([[1.0, float("nan")]]))
    index.add(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), ids=[3, 7])
    with pytest.raises(ValueError, match="finite"):
        index.search(torch.tensor([[float("inf"), 0.0]]), 1)
    with pytest.raises(ValueError, match="unique ids, id 7"):
        index.add(torch.tensor([[1.0, 1.0]]), ids=[7])
    with pytest.raises(ValueError, match="unique"):
        index.add(torch.tensor([[1.0, 1.0], [1.0, 2.0]]), ids=[9, 9])
    with pytest.raises(ValueError, match="non-negative"):
        index.add(torch.tensor([[1.0, 1.0]]), ids=[-1])
    with pytest.raises(ValueError, match="expected 1 ids"):
        index.add(torch.tensor([[1.0, 1.0]]), ids=[10, 11])
    with pytest.raises(TypeError, match="integer ids"):
        index.add(torch.tensor([[1.0, 1.0]]), ids=[1.5])
    assert index.ntotal == 2  # failed additions leave the index unchanged
    # finite entries whose float32 norm overflows: normalising would give a zero vector (score 0)
    with pytest.raises(ValueError, match=r"vectors: the norm of row 1 overflows torch.float32"):
        ExactIndex(2).add(torch.tensor([[1.0, 0.0], [3e19, 3e19]]))
    with pytest.raises(ValueError, match=r"queries: the norm of row 0 overflows"):
        index.search(torch.tensor([[1e20, 1.0]]), 1)
    wide = ExactIndex(2).add(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), ids=[3, 7])
    assert wide.search(torch.tensor([[1e20, 1.0]], dtype=torch.float64), 1)[1].tolist() == [[3]]  # float64 fits
    # ip allows zero vectors (score 0)
    assert ExactIndex(2, "ip").add(torch.zeros(2, 2)).search(torch.ones(1, 2), 2)[1].tolist() == [[0, 1]]


# --------------------------------------------------------------------------- one cosine, one tie rule


@pytest.mark.parametrize("chunk_size", [None, 11])
def test_cosine_scores_are_the_metrics_cosine_zero_vectors_included(chunk_size):
    g = torch.Generator().manual_seed(7)
    gallery = torch.randn(30, 4, generator=g, dtype=torch.float64)
    queries = torch.randn(6, 4, generator=g, dtype=torch.float64)
    gallery[[3, 17]] = 0.0  # no direction: score 0 against every query (they used to be refused)
    queries[2] = 0.0  # scores 0 against everything: one big tie, the lowest ids first
    scores, ids = ExactIndex(4, chunk_size=chunk_size).add(gallery).search(queries, 30)
    s = cosine_similarity(queries, gallery)
    torch.testing.assert_close(scores, s.gather(1, ids), rtol=0, atol=1e-15)
    assert torch.equal(scores[2], torch.zeros(30, dtype=torch.float64)) and ids[2].tolist() == list(range(30))
    assert (s[:, [3, 17]] == 0).all()
    # a tiny vector is normalised exactly, like in cosine_similarity
    tiny = ExactIndex(4).add(gallery * 1e-12).search(queries, 30)
    assert torch.equal(tiny[1], ids)


def test_recall_from_the_index_ids_equals_recall_at_k_with_lowest_id_ties():
    # the example: one query whose positive (id 0) ties with id 1
    s = torch.tensor([[1.0, 1.0]])
    ids = ExactIndex(2, metric="ip").add(torch.eye(2)).search(s, 1)[1]
    assert ids.tolist() == [[0]]
    assert recall_at_k(s, 1, ties="lowest_id") == {1: 1.0}  # what the index's ids say
    assert recall_at_k(s, 1) == {1: 0.0}  # pessimistic: the tie counts against the model
    # many ties: integer scores; the index over the identity ranks exactly these scores
    g = torch.Generator().manual_seed(9)
    s = torch.randint(0, 4, (60, 80), generator=g).double()
    s[torch.arange(0, 60, 3), torch.arange(0, 60, 3)] += 2  # some queries find their item
    _, ids = ExactIndex(80, metric="ip", chunk_size=500).add(torch.eye(80, dtype=torch.float64)).search(s, 10)
    hit_rank = torch.where(ids == torch.arange(60)[:, None], torch.arange(1, 11), 11).amin(dim=1)
    want = {k: float((hit_rank <= k).double().mean()) for k in (1, 5, 10)}
    assert recall_at_k(s, (1, 5, 10), ties="lowest_id") == want
    ranks = first_positive_rank(s, ties="lowest_id")
    assert torch.equal(torch.where(ranks <= 10, ranks, 11), hit_rank)
    assert recall_at_k(s, (1, 5, 10)) != want  # the data do tie at the positives
    # exact_search gives the same ids
    assert torch.equal(exact_search(s, torch.eye(80, dtype=torch.float64), 10, metric="ip", ties="lowest_id")[1], ids)


def test_search_has_only_the_lowest_id_rule():
    index = ExactIndex(2).add(torch.eye(2))
    assert torch.equal(index.search(torch.ones(1, 2), 2, ties="lowest_id")[1], index.search(torch.ones(1, 2), 2)[1])
    with pytest.raises(ValueError, match="ties: a search breaks ties by 'lowest_id' only, got 'pessimistic'"):
        index.search(torch.ones(1, 2), 1, ties="pessimistic")
    with pytest.raises(ValueError, match="ties: a search breaks ties by 'lowest_id' only"):
        exact_search(torch.ones(1, 2), torch.eye(2), 1, ties="pessimistic")
    with pytest.raises(ValueError, match=r"ties: expected one of \['lowest_id'\], got 'first'"):
        index.search(torch.ones(1, 2), 1, ties="first")


# --------------------------------------------------------------------------- found by mutation testing
# (scripts/mutation_test.py retrieval): behaviour no test above could tell apart from a wrong one


def test_an_empty_index_has_no_ids():
    index = ExactIndex(3)
    assert index.ntotal == len(index) == 0
    assert index.ids.shape == (0,) and index.ids.dtype == torch.int64


def test_integer_vectors_are_converted_and_booleans_refused():
    x = torch.tensor([[1, 2, 0], [0, 1, 1], [2, 0, 1]])
    q = torch.tensor([[1, 1, 1], [0, 2, 1]])
    for metric in retrieval.METRICS:
        got = ExactIndex(3, metric).add(x).search(q, 2)
        want = ExactIndex(3, metric).add(x.float()).search(q.float(), 2)
        torch.testing.assert_close(got[0], want[0])
        assert torch.equal(got[1], want[1])
    with pytest.raises(TypeError, match=r"^vectors: expected a real floating-point tensor, got dtype torch.bool"):
        ExactIndex(3).add(x > 0)
    with pytest.raises(TypeError, match=r"^gallery: expected a real floating-point tensor, got dtype torch.bool"):
        exact_search(q.float(), x > 0, 1)
    with pytest.raises(ValueError, match=r"^gallery: expected a 2-D tensor \(N, D\), got shape \(3,\)"):
        exact_search(q.float(), x[0].float(), 1)


def test_nan_is_refused_under_the_inner_product_too():
    # under cosine the norm check would catch NaN as well; under "ip" only the finiteness check does
    index = ExactIndex(2, "ip")
    with pytest.raises(ValueError, match=r"^vectors: expected finite values, found 1 NaN/inf entries"):
        index.add(torch.tensor([[1.0, float("nan")]]))
    index.add(torch.eye(2))
    with pytest.raises(ValueError, match=r"^queries: expected finite values, found 1 NaN/inf entries"):
        index.search(torch.tensor([[float("inf"), 0.0]]), 1)


def test_id_checks_accept_zero_and_name_the_offending_id():
    index = ExactIndex(2, "ip").add(torch.ones(3, 2), ids=[0, 5, 2])  # 0 is a valid id
    assert index.ids.tolist() == [0, 2, 5]
    with pytest.raises(ValueError, match=r"^ids: expected non-negative integers, got minimum -2"):
        index.add(torch.ones(2, 2), ids=[4, -2])
    with pytest.raises(ValueError, match=r"^ids: expected a 1-D tensor \(2,\), got shape \(2, 1\)"):
        index.add(torch.ones(2, 2), ids=torch.tensor([[7], [8]]))
    with pytest.raises(ValueError, match=r"^ids: expected unique ids, id 9 occurs more than once"):
        index.add(torch.ones(2, 2), ids=[9, 9])
    assert index.ntotal == 3


def test_search_checks_its_own_chunk_size_and_blocks_stay_within_it(monkeypatch):
    index = ExactIndex(4, "ip").add(torch.randn(53, 4, generator=torch.Generator().manual_seed(7)))
    with pytest.raises(ValueError, match=r"^chunk_size: expected an integer >= 1, got 0"):
        index.search(torch.randn(3, 4), 2, chunk_size=0)
    blocks = []

    def recording(scores, k):
        blocks.append(tuple(scores.shape))
        return _topk_in_block(scores, k)

    monkeypatch.setattr(retrieval, "_topk_in_block", recording)
    index.search(torch.randn(11, 4), 5, chunk_size=10)
    assert blocks and max(r * c for r, c in blocks) <= 10  # the documented memory bound (chunk_size >= k)
