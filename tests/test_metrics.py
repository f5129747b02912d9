"""Tests for mmedu.metrics: against scikit-learn (tie-free data) and a brute-force loop (ties, both rules)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, ndcg_score
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from mmedu.metrics import (
    TIES,
    average_precision,
    cosine_similarity,
    first_positive_rank,
    mean_average_precision,
    median_rank,
    ndcg_at_k,
    recall_at_k,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# --------------------------------------------------------------------------- brute force (both tie rules)


def bf_ranking(scores, rel, ties="pessimistic"):
    """Gallery indices best first: descending score, ties -> least relevant first, or lowest index first."""
    if ties == "pessimistic":
        return sorted(range(len(scores)), key=lambda j: (-scores[j], rel[j]))
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


def bf_first_rank(scores, pos, ties="pessimistic"):
    order = bf_ranking(scores, [int(p) for p in pos], ties)
    return next(r for r, j in enumerate(order, start=1) if pos[j])


def bf_ap(scores, rel, k=None, ties="pessimistic"):
    order = bf_ranking(scores, [int(r) for r in rel], ties)
    n_rel = sum(bool(r) for r in rel)
    cut = len(order) if k is None else k
    hits, total = 0, 0.0
    for pos, j in enumerate(order[:cut], start=1):
        if rel[j]:
            hits += 1
            total += hits / pos
    return total / min(n_rel, cut)


def bf_ndcg(scores, grades, k, ties="pessimistic"):
    order = bf_ranking(scores, grades, ties)
    dcg = sum(grades[j] / math.log2(r + 1) for r, j in enumerate(order[:k], start=1))
    ideal = sorted(grades, reverse=True)
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal[:k], start=1))
    return dcg / idcg


def tied_scores(q, g, levels, seed):
    """Integer-valued scores: many ties per row."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (q, g), generator=gen).double()


def random_relevance(q, g, p, seed):
    gen = torch.Generator().manual_seed(seed)
    rel = torch.rand(q, g, generator=gen) < p
    rel[torch.arange(q), torch.randint(0, g, (q,), generator=gen)] = True  # >= 1 per query
    return rel


# --------------------------------------------------------------------------- cosine similarity


def test_cosine_similarity_matches_sklearn_and_handles_zero_rows():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=gen, dtype=torch.float64), torch.randn(9, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(cosine_similarity(a, b), torch.from_numpy(sk_cosine(a.numpy(), b.numpy())))
    a[2] = 0
    s = cosine_similarity(a, b)
    assert torch.isfinite(s).all() and (s[2] == 0).all()
    assert cosine_similarity(a.numpy(), b.float()).dtype == torch.float64  # NumPy accepted, dtypes promoted


def test_cosine_similarity_zero_row_policy_and_scale_invariance():
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen, dtype=torch.float64)
    a[1], b[4] = 0.0, 0.0
    s = cosine_similarity(a, b)
    assert torch.equal(s[1], torch.zeros(6, dtype=torch.float64))  # a zero row scores 0 ...
    assert torch.equal(s[:, 4], torch.zeros(5, dtype=torch.float64))  # ... against everything, zero rows too
    # no eps floor: a tiny but non-zero vector has a direction like any other (an eps of 1e-8 on
    # the norm used to shrink these scores by a factor of 1e4)
    torch.testing.assert_close(cosine_similarity(1e-12 * a, b), s, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(cosine_similarity(a.float() * 1e-15, b.float()), s.float())
    # sklearn's cosine_similarity has the same policy
    torch.testing.assert_close(s, torch.from_numpy(sk_cosine(a.numpy(), b.numpy())))
    # the gradient reaching a zero row is that of its (zero) unit vector: finite
    leaf = a.clone().requires_grad_()
    w = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((cosine_similarity(leaf, b) * w).sum(), leaf)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-300)
    torch.testing.assert_close(grad[1], w[1] @ b_unit, rtol=1e-12, atol=1e-12)


def test_cosine_similarity_bad_input():
    with pytest.raises(ValueError, match="same feature size D"):
        cosine_similarity(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"2-D tensor \(Q, D\)"):
        cosine_similarity(torch.randn(4), torch.randn(3, 4))


def test_cosine_similarity_refuses_a_norm_that_overflows():
    # 3e19 is a finite float32, its square is not: the norm is inf and the row became all zeros,
    # scoring 0 against everything instead of ~0.707
    a = torch.tensor([[1.0, 0.0], [3e19, 3e19]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2e20, 0.0]])
    with pytest.raises(ValueError, match=r"a: the norm of row 1 overflows torch.float32 \(1 such rows\)"):
        cosine_similarity(a, b[:2])
    with pytest.raises(ValueError, match=r"b: the norm of row 2 overflows torch.float32"):
        cosine_similarity(a[:1], b)
    s = cosine_similarity(a.double(), b.double())  # float64 holds these norms
    torch.testing.assert_close(s[1], torch.tensor([0.5 ** 0.5, 0.5 ** 0.5, 0.5 ** 0.5], dtype=torch.float64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_cosine_similarity_refuses_nan_and_inf(bad):
    # NaN would pass through the normalisation into the scores (and inf becomes NaN there):
    # refused like every other function of the module refuses NaN scores.
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, generator=gen), torch.randn(5, 3, generator=gen)
    a_bad, b_bad = a.clone(), b.clone()
    a_bad[1, 2] = bad
    b_bad[4, 0] = bad
    with pytest.raises(ValueError, match=r"a: expected finite values, found 1 NaN/inf"):
        cosine_similarity(a_bad, b)
    with pytest.raises(ValueError, match=r"b: expected finite values, found 1 NaN/inf"):
        cosine_similarity(a, b_bad.numpy())


# --------------------------------------------------------------------------- Recall@K / ranks


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_positive_rank_matches_brute_force_with_ties(device, seed, ties):
    s = tied_scores(13, 21, levels=4, seed=seed)
    pos = random_relevance(13, 21, 0.15, seed + 10)
    want = [bf_first_rank(s[i].tolist(), pos[i].tolist(), ties) for i in range(13)]
    got = first_positive_rank(s.to(device), pos.to(device), ties=ties, chunk_size=4)
    assert got.device.type == device
    assert got.cpu().tolist() == want
    # default pairing = an identity positives matrix
    sq = s[:, :13]
    want_diag = [bf_first_rank(sq[i].tolist(), (torch.arange(13) == i).tolist(), ties) for i in range(13)]
    assert first_positive_rank(sq.to(device), ties=ties, chunk_size=5).cpu().tolist() == want_diag


def test_tie_rule_is_pessimistic_on_a_hand_example():
    s = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.9, 0.9], [0.2, 0.2, 0.2]])
    # query 0: positive 0 tied with item 1 -> rank 2; query 1: item 1 and 2 tie, positive 1 -> rank 2;
    # query 2: everything tied -> the positive is last
    assert first_positive_rank(s).tolist() == [2, 2, 3]
    assert recall_at_k(s, ks=(1, 2, 3)) == {1: 0.0, 2: pytest.approx(2 / 3), 3: 1.0}
    # AP with ties: [1, 1] tied, item 0 relevant -> ranked second -> AP = 1/2
    assert average_precision(s[:1], torch.tensor([[True, False, False]])).item() == pytest.approx(0.5)


def test_lowest_id_rule_on_the_same_hand_example():
    s = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.9, 0.9], [0.2, 0.2, 0.2]])
    # query 0: positive 0 ties with item 1 and has the lower index -> rank 1; query 1: positive 1
    # ties with item 2 -> rank 1; query 2: everything tied, the positive has the highest index -> 3
    assert first_positive_rank(s, ties="lowest_id").tolist() == [1, 1, 3]
    assert recall_at_k(s, ks=(1, 2, 3), ties="lowest_id") == {1: pytest.approx(2 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    assert median_rank(s, ties="lowest_id") == 1.0
    assert average_precision(s[:1], torch.tensor([[True, False, False]]), ties="lowest_id").item() == 1.0
    # several tied positives: the best-ranked one is the lowest-index one
    pos = torch.tensor([[False, True, True]])
    assert first_positive_rank(s[1:2], pos, ties="lowest_id").tolist() == [1]
    assert first_positive_rank(torch.tensor([[0.9, 0.9, 0.9]]), pos, ties="lowest_id").tolist() == [2]


@pytest.mark.parametrize("seed", [0, 1])
def test_pessimistic_is_a_lower_bound_and_the_rules_agree_without_ties(seed):
    s = tied_scores(25, 30, levels=3, seed=seed)
    rel = random_relevance(25, 30, 0.2, seed + 1)
    grades = rel.double() * 2 + tied_scores(25, 30, levels=2, seed=seed + 2)
    q_lab, g_lab = torch.arange(25) % 4, torch.arange(30) % 4
    worst, lowest = (dict(
        rank=first_positive_rank(s, rel, ties=t).double(),
        ap=average_precision(s, rel, ties=t),
        map=torch.tensor(mean_average_precision(s, q_lab, g_lab, ties=t)),
        ndcg=ndcg_at_k(s, grades, 5, reduction="none", ties=t)) for t in TIES)
    assert (worst["rank"] >= lowest["rank"]).all() and (worst["rank"] > lowest["rank"]).any()
    for key in ("ap", "map", "ndcg"):
        assert (worst[key] <= lowest[key] + 1e-12).all() and (worst[key] < lowest[key]).any()
    free = s + torch.rand(25, 30, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1e-3
    assert torch.equal(first_positive_rank(free, rel), first_positive_rank(free, rel, ties="lowest_id"))
    assert torch.equal(average_precision(free, rel), average_precision(free, rel, ties="lowest_id"))
    assert torch.equal(ndcg_at_k(free, grades, 5, reduction="none"),
                       ndcg_at_k(free, grades, 5, reduction="none", ties="lowest_id"))


def test_the_tie_rule_is_checked():
    s = torch.randn(3, 4)
    rel = torch.ones(3, 4, dtype=torch.bool)
    for call in (lambda t: recall_at_k(s, 1, ties=t), lambda t: first_positive_rank(s, ties=t),
                 lambda t: median_rank(s, ties=t), lambda t: average_precision(s, rel, ties=t),
                 lambda t: mean_average_precision(s, torch.zeros(3, dtype=torch.long),
                                                  torch.zeros(4, dtype=torch.long), ties=t),
                 lambda t: ndcg_at_k(s, rel.double(), 2, ties=t)):
        with pytest.raises(ValueError, match=r"ties: expected one of \['pessimistic', 'lowest_id'\], got 'random'"):
            call("random")


def test_constant_scores_get_the_worst_recall():
    s = torch.zeros(6, 6)
    assert recall_at_k(s, ks=(1, 5, 6)) == {1: 0.0, 5: 0.0, 6: 1.0}
    assert median_rank(s) == 6.0


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_recall_and_median_rank_match_brute_force(seed, ties):
    s = tied_scores(30, 40, levels=6, seed=seed)
    pos = random_relevance(30, 40, 0.05, seed + 3)
    ranks = np.array([bf_first_rank(s[i].tolist(), pos[i].tolist(), ties) for i in range(30)])
    got = recall_at_k(s, ks=[1, 3, 10, 40], positives=pos, ties=ties, chunk_size=7)
    assert got == {k: pytest.approx(float((ranks <= k).mean())) for k in (1, 3, 10, 40)}
    assert median_rank(s, pos, ties=ties) == pytest.approx(float(np.median(ranks)))
    assert median_rank(s[:29], pos[:29], ties=ties) == pytest.approx(float(np.median(ranks[:29])))


def test_recall_default_pairing_and_single_k():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, 8, generator=gen)
    s = cosine_similarity(x + 0.3 * torch.randn(50, 8, generator=gen), x)
    # independent: rank of the diagonal via a full argsort (tie-free data)
    order = torch.argsort(s, dim=1, descending=True)
    ranks = (order == torch.arange(50)[:, None]).float().argmax(1) + 1
    assert recall_at_k(s, 5) == {5: pytest.approx(float((ranks <= 5).float().mean()))}
    assert recall_at_k(s, ks=(1,), positives=torch.eye(50, dtype=torch.int64)) == recall_at_k(s, ks=(1,))


# --------------------------------------------------------------------------- AP / mAP


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_average_precision_matches_sklearn_without_ties(seed):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(12, 60, generator=gen, dtype=torch.float64)
    rel = random_relevance(12, 60, [0.02, 0.1, 0.3, 0.7][seed], seed)
    want = [average_precision_score(rel[i].numpy(), s[i].numpy()) for i in range(12)]
    np.testing.assert_allclose(average_precision(s, rel, chunk_size=5).numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [None, 1, 4, 25])
def test_average_precision_matches_brute_force_with_ties(device, k, ties):
    s = tied_scores(15, 25, levels=3, seed=7)
    rel = random_relevance(15, 25, 0.25, 8)
    want = [bf_ap(s[i].tolist(), rel[i].tolist(), k, ties) for i in range(15)]
    got = average_precision(s.to(device), rel.to(device), k=k, ties=ties, chunk_size=4)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12)
    # float32 path on the same data
    got32 = average_precision(s.float().to(device), rel.to(device), k=k, ties=ties)
    np.testing.assert_allclose(got32.cpu().numpy(), want, rtol=1e-5)


def test_sklearn_disagrees_on_ties_and_pessimistic_is_a_lower_bound():
    s = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    rel = torch.tensor([[True, True, False, False]])
    ours = average_precision(s, rel).item()
    assert ours == pytest.approx((1 / 2 + 2 / 3) / 2)  # the tied non-relevant item goes first
    # sklearn treats the tied block as one threshold: precision 2/3 for both relevant items
    assert average_precision_score(rel[0].numpy(), s[0].numpy()) == pytest.approx(2 / 3)
    grades = torch.tensor([[3.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    s = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    # sklearn averages over tied orders, the pessimistic order is the worst one
    assert ndcg_at_k(s, grades, 4) < ndcg_score(grades.numpy(), s.numpy(), k=4)
    assert ndcg_at_k(s, grades, 4) == pytest.approx(bf_ndcg(s[0].tolist(), grades[0].tolist(), 4))


@pytest.mark.parametrize("seed", [0, 1])
def test_mean_average_precision_matches_sklearn_without_ties(seed):
    gen = torch.Generator().manual_seed(seed)
    q_lab = torch.randint(0, 5, (40,), generator=gen)
    g_lab = torch.cat([torch.arange(5), torch.randint(0, 5, (75,), generator=gen)])
    s = torch.randn(40, 80, generator=gen, dtype=torch.float64)
    s += 0.8 * (q_lab[:, None] == g_lab[None, :])  # a somewhat useful model
    want = np.mean([average_precision_score((g_lab == q_lab[i]).numpy(), s[i].numpy()) for i in range(40)])
    assert mean_average_precision(s, q_lab, g_lab, chunk_size=9) == pytest.approx(want, rel=1e-12)
    assert mean_average_precision(s.numpy(), q_lab.numpy(), g_lab.numpy()) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [None, 3, 30])
def test_mean_average_precision_matches_brute_force_with_ties(device, k, ties):
    gen = torch.Generator().manual_seed(11)
    q_lab = torch.randint(0, 4, (18,), generator=gen)
    g_lab = torch.cat([torch.arange(4), torch.randint(0, 4, (26,), generator=gen)])
    s = tied_scores(18, 30, levels=4, seed=12)
    rel = q_lab[:, None] == g_lab[None, :]
    want = np.mean([bf_ap(s[i].tolist(), rel[i].tolist(), k, ties) for i in range(18)])
    got = mean_average_precision(s.to(device), q_lab.to(device), g_lab.to(device), k=k, ties=ties, chunk_size=5)
    assert got == pytest.approx(want, rel=1e-12)
    assert float(average_precision(s, rel, k=k, ties=ties).mean()) == pytest.approx(want, rel=1e-12)


def test_metrics_do_not_depend_on_gallery_order_even_with_ties():
    s = tied_scores(10, 24, levels=3, seed=5)
    rel = random_relevance(10, 24, 0.2, 6)
    grades = torch.randint(0, 4, (10, 24), generator=torch.Generator().manual_seed(1)).double() + rel.double()
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(average_precision(s, rel), average_precision(s[:, perm], rel[:, perm]))
    torch.testing.assert_close(first_positive_rank(s, rel), first_positive_rank(s[:, perm], rel[:, perm]))
    a = ndcg_at_k(s, grades, 5, reduction="none")
    torch.testing.assert_close(a, ndcg_at_k(s[:, perm], grades[:, perm], 5, reduction="none"))


# --------------------------------------------------------------------------- nDCG


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_ndcg_matches_sklearn_without_ties(k):
    gen = torch.Generator().manual_seed(k)
    s = torch.randn(20, 50, generator=gen, dtype=torch.float64)
    grades = torch.randint(0, 4, (20, 50), generator=gen).double()
    grades[:, 0] += 1  # every query has something relevant
    for ignore_ties in (False, True):  # identical on tie-free scores
        want = ndcg_score(grades.numpy(), s.numpy(), k=k, ignore_ties=ignore_ties)
        assert ndcg_at_k(s, grades, k, chunk_size=6) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("ties", TIES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 4, 20])
def test_ndcg_matches_brute_force_with_ties(device, k, ties):
    s = tied_scores(16, 20, levels=3, seed=k)
    gen = torch.Generator().manual_seed(100 + k)
    grades = torch.rand(16, 20, generator=gen).double().mul(3).floor()
    grades[:, 3] = 2.5
    want = [bf_ndcg(s[i].tolist(), grades[i].tolist(), k, ties) for i in range(16)]
    got = ndcg_at_k(s.to(device), grades.to(device), k, reduction="none", ties=ties, chunk_size=3)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12)
    assert ndcg_at_k(s, grades, k, ties=ties) == pytest.approx(float(np.mean(want)), rel=1e-12)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    s = torch.randn(4, 6)
    rel = torch.ones(4, 6, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"ks: expected an integer >= 1 and <= 6, got 0"):
        recall_at_k(s, ks=(0, 1))
    with pytest.raises(ValueError, match=r"ks: expected an integer >= 1 and <= 6, got 7"):
        recall_at_k(s, ks=7)
    with pytest.raises(ValueError, match="k: expected an integer >= 1 and <= 6, got 9"):
        average_precision(s, rel, k=9)
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        ndcg_at_k(s, rel.double(), 0)
    with pytest.raises(TypeError, match="k: expected an integer"):
        mean_average_precision(s, torch.zeros(4, dtype=torch.long), torch.zeros(6, dtype=torch.long), k=2.5)
    with pytest.raises(ValueError, match=r"positives: expected shape \(4, 6\)"):
        recall_at_k(s, ks=1, positives=rel[:, :5])
    with pytest.raises(ValueError, match=r"relevance: expected shape \(4, 6\)"):
        average_precision(s, rel.T)
    with pytest.raises(ValueError, match="query_labels: expected 4 labels"):
        mean_average_precision(s, torch.zeros(3, dtype=torch.long), torch.zeros(6, dtype=torch.long))
    with pytest.raises(TypeError, match="integer class labels"):
        mean_average_precision(s, torch.zeros(4), torch.zeros(6))
    with pytest.raises(ValueError, match=r"2-D tensor \(Q, G\)"):
        recall_at_k(torch.randn(5))
    with pytest.raises(TypeError, match="real floating-point"):
        recall_at_k(torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        average_precision(s, torch.full((4, 6), 0.5))
    with pytest.raises(ValueError, match=r"only 0/1 values .* got values in \[0, 2\]"):
        average_precision(s, torch.tensor([[0, 1, 2, 0, 0, 1]] * 4))
    with pytest.raises(ValueError, match="Q <= G"):
        recall_at_k(torch.randn(6, 4), ks=1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(s, -rel.double(), 2)


def test_nan_scores_and_queries_without_positives_are_refused():
    s = torch.randn(5, 8, dtype=torch.float64)
    s[3, 2] = float("nan")
    rel = torch.ones(5, 8, dtype=torch.bool)
    for call in (
        lambda: recall_at_k(s, ks=1),
        lambda: average_precision(s, rel),
        lambda: mean_average_precision(s, torch.zeros(5, dtype=torch.long), torch.zeros(8, dtype=torch.long)),
        lambda: ndcg_at_k(s, rel.double(), 3),
    ):
        with pytest.raises(ValueError, match="NaN in query row 3"):
            call()
    s[3, 2] = float("-inf")  # infinities are legitimate masks, even both in one row
    s[3, 5] = float("inf")
    assert recall_at_k(s, ks=8) == {8: 1.0}
    assert average_precision(s, rel)[3] > 0
    s[1, [0, 1, 2]] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=s.dtype)
    with pytest.raises(ValueError, match="NaN in query row 1"):
        recall_at_k(s, ks=1)
    s[1, 2] = 0.0
    rel[2] = False
    with pytest.raises(ValueError, match="query 2 has no relevant gallery item"):
        average_precision(s, rel)
    with pytest.raises(ValueError, match="query 2 has no positive"):
        recall_at_k(s, ks=1, positives=rel)
    with pytest.raises(ValueError, match="query 1 has no gallery item with its label"):
        mean_average_precision(s, torch.tensor([0, 7, 0, 0, 0]), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="query 2 has no gallery item with positive relevance"):
        ndcg_at_k(s, rel.double(), 3)


def test_accuracy_from_scores_and_from_predictions():
    from sklearn.metrics import accuracy_score

    from mmedu.metrics import accuracy
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 4, generator=g)
    labels = torch.randint(0, 4, (50,), generator=g)
    want = accuracy_score(labels.numpy(), logits.argmax(1).numpy())
    assert accuracy(logits, labels) == pytest.approx(want, abs=1e-7)
    assert accuracy(logits.argmax(1), labels) == pytest.approx(want, abs=1e-7)
    assert accuracy(torch.eye(3), torch.arange(3)) == 1.0
    assert accuracy(torch.tensor([1, 1, 0]), torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"scores and labels: expected one prediction per label, got 3 and 2"):
        accuracy(torch.eye(3), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="labels: expected integer class labels, got dtype torch.float32"):
        accuracy(torch.eye(3), torch.zeros(3))
    with pytest.raises(TypeError, match=r"scores: expected \(N,\) integer predicted labels or \(N, C\) scores"):
        accuracy(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="scores: expected finite values"):
        accuracy(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="scores: expected at least one item"):
        accuracy(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"scores: expected a 1-D or 2-D tensor|scores: expected"):
        accuracy(torch.zeros(2, 2, 2), torch.zeros(2, dtype=torch.long))


# --------------------------------------------------------------------------- found by mutation testing
# (scripts/mutation_test.py metrics): behaviour no test above could tell apart from a wrong one


def test_cosine_similarity_of_short_and_integer_vectors():
    # norms well below 1 are not floored (only below eps = 1e-8); integer input is converted
    gen = torch.Generator().manual_seed(4)
    a, b = 1e-3 * torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen).double()
    torch.testing.assert_close(cosine_similarity(a, b), torch.from_numpy(sk_cosine(a.numpy(), b.numpy())))
    ai, bi = torch.tensor([[1, 2, 0], [0, 1, 1]]), torch.tensor([[2, 0, 1], [1, 1, 1], [0, 0, 3]])
    torch.testing.assert_close(cosine_similarity(ai, bi), cosine_similarity(ai.float(), bi.float()))
    with pytest.raises(TypeError, match=r"^a: expected a real floating-point tensor, got dtype torch.bool"):
        cosine_similarity(ai > 0, bi.float())
    with pytest.raises(TypeError, match=r"^b: expected a real floating-point tensor, got dtype torch.bool"):
        cosine_similarity(ai.float(), bi > 0)
    with pytest.raises(ValueError, match=r"^b: expected a 2-D tensor \(G, D\), got shape \(3,\)"):
        cosine_similarity(ai.float(), bi[0].float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_cosine_similarity_refuses_two_devices():
    with pytest.raises(ValueError, match="a and b: expected the same device"):
        cosine_similarity(torch.randn(3, 4), torch.randn(2, 4, device="cuda"))


def test_empty_similarity_and_empty_ks_are_refused():
    for shape in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match=r"similarity: expected a non-empty \(Q, G\) matrix, got shape " + re.escape(
                str(shape))):
            recall_at_k(torch.empty(shape))
    with pytest.raises(ValueError, match="ks: expected at least one K, got an empty sequence"):
        recall_at_k(torch.randn(4, 6), ks=())


def test_recall_default_ks_and_a_numpy_k():
    s = cosine_similarity(torch.randn(12, 4, generator=torch.Generator().manual_seed(5)), torch.randn(12, 4))
    ranks = first_positive_rank(s)
    assert recall_at_k(s) == {k: float((ranks <= k).double().mean()) for k in (1, 5, 10)}
    assert recall_at_k(s, np.int64(3)) == {3: float((ranks <= 3).double().mean())}


def test_errors_name_the_query_in_a_later_chunk():
    # query 3 sits in the second chunk of two rows: the message gives its index in the whole matrix
    s = torch.randn(4, 6)
    pos = torch.eye(4, 6, dtype=torch.bool)
    pos[3] = False
    with pytest.raises(ValueError, match="^query 3 has no positive gallery item"):
        recall_at_k(s, ks=1, positives=pos, chunk_size=2)


def test_label_errors_say_which_labels_and_which_dimension():
    s = torch.randn(4, 6)
    q, g = torch.zeros(4, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^query_labels: expected a 1-D tensor \(Q,\), got shape \(4, 1\)"):
        mean_average_precision(s, q[:, None], g)
    with pytest.raises(ValueError, match=r"^gallery_labels: expected a 1-D tensor \(G,\), got shape \(6, 1\)"):
        mean_average_precision(s, q, g[:, None])
    with pytest.raises(ValueError, match=r"^gallery_labels: expected 6 labels \(one per similarity column\), got 5"):
        mean_average_precision(s, q, g[:5])
    with pytest.raises(ValueError, match=r"^query_labels: expected 4 labels \(one per similarity row\), got 3"):
        mean_average_precision(s, q[:3], g)


def test_ndcg_refuses_boolean_nan_and_partly_negative_grades_and_an_unknown_reduction():
    s = torch.randn(4, 6, dtype=torch.float64)
    grades = torch.ones(4, 6, dtype=torch.float64)
    with pytest.raises(TypeError, match="relevance: expected real graded"):
        ndcg_at_k(s, grades > 0, 2)
    for bad in (float("nan"), float("inf"), -1.0):
        one_bad = grades.clone()
        one_bad[1, 2] = bad
        with pytest.raises(ValueError, match="relevance: expected finite, non-negative grades"):
            ndcg_at_k(s, one_bad, 2)
    with pytest.raises(ValueError, match=r"reduction: expected one of \['mean', 'none'\], got 'sum'"):
        ndcg_at_k(s, grades, 2, reduction="sum")
