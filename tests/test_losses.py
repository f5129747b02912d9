"""Tests for mmedu.losses: brute-force loops, torch's cross_entropy, ACMR's former triplet loss,
gradients and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmedu import losses
from mmedu.losses import _triplet_mean, info_nce, vse_hinge
from mmedu.metrics import cosine_similarity

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cos(u, v):
    return float(u @ v / (u.norm() * v.norm()))


def bf_info_nce(a, b, tau):
    n = len(a)
    total = 0.0
    for i in range(n):
        row = [math.exp(cos(a[i], b[j]) / tau) for j in range(n)]
        col = [math.exp(cos(a[j], b[i]) / tau) for j in range(n)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    return total / (2 * n)


def bf_vse(a, b, margin, hardest):
    n = len(a)
    total = 0.0
    for i in range(n):
        pos = cos(a[i], b[i])
        c_b = [max(0.0, margin - pos + cos(a[i], b[j])) for j in range(n) if j != i]
        c_a = [max(0.0, margin - pos + cos(a[j], b[i])) for j in range(n) if j != i]
        total += (max(c_b) + max(c_a)) if hardest else (sum(c_b) + sum(c_a))
    return total / n


def bf_vse_labels(a, b, labels, margin, hardest):
    """Class level: every same-label (i, j) is a positive, hinged against the other labels' items."""
    n, y = len(a), [int(v) for v in labels]
    terms = []
    for i in range(n):
        for j in range(n):
            if y[i] != y[j]:
                continue
            pos = cos(a[i], b[j])
            c_b = [max(0.0, margin - pos + cos(a[i], b[k])) for k in range(n) if y[k] != y[i]]
            c_a = [max(0.0, margin - pos + cos(a[k], b[j])) for k in range(n) if y[k] != y[j]]
            terms.append((max(c_b) + max(c_a)) if hardest else (sum(c_b) + sum(c_a)))
    return sum(terms) / len(terms), sum(terms)


def former_triplet_loss(anchor, other, labels=None, margin=0.2):
    """mmedu.adversarial.triplet_loss as it was written before it moved here (the reference)."""
    n = anchor.shape[0]
    s = F.normalize(anchor, dim=1) @ F.normalize(other.to(anchor), dim=1).T
    if labels is None:
        pos = torch.eye(n, dtype=torch.bool)
    else:
        pos = labels[:, None] == labels[None, :]
        if bool(pos.all()):
            return s.sum() * 0.0
    total = s.new_zeros(())
    for sim in (s, s.T):
        if labels is None:
            hinge = (margin - sim.diagonal()[:, None] + sim).clamp_min(0)
            total = total + hinge.masked_select(~pos).mean()
        else:
            hardest = sim.masked_fill(pos, float("-inf")).amax(dim=1, keepdim=True)
            hinge = (margin - sim + hardest).clamp_min(0)
            total = total + hinge.masked_select(pos).mean()
    return total / 2


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(7, 5, generator=g, dtype=torch.float64)
    return a, a + 0.8 * torch.randn(7, 5, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("tau", [0.05, 0.3, 2.0])
def test_info_nce_matches_brute_force(pair, tau):
    a, b = pair
    assert float(info_nce(a, b, tau)) == pytest.approx(bf_info_nce(a, b, tau), rel=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_info_nce_equals_cross_entropy_formulation(pair, device):
    a, b = (t.to(device) for t in pair)
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / 0.1
    y = torch.arange(len(a), device=device)
    want = (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2
    torch.testing.assert_close(info_nce(a, b, 0.1), want)
    assert info_nce(a, b, 0.1).device.type == device


def test_learned_temperature_receives_a_gradient(pair):
    a, b = pair
    log_tau = torch.nn.Parameter(torch.tensor(0.1, dtype=torch.float64).log())
    loss = info_nce(a, b, log_tau.exp())
    loss.backward()
    assert log_tau.grad is not None and torch.isfinite(log_tau.grad)
    # finite-difference check of d loss / d log_tau
    eps = 1e-6
    num = (float(info_nce(a, b, math.exp(math.log(0.1) + eps))) - float(info_nce(a, b, math.exp(math.log(0.1) - eps)))) / (2 * eps)
    assert float(log_tau.grad) == pytest.approx(num, rel=1e-5)


def test_info_nce_perfect_pairs_and_low_temperature():
    e = torch.eye(4)
    # orthogonal unit pairs: the loss tends to 0 as tau -> 0, log(B) as tau -> inf
    assert float(info_nce(e, e, 0.01)) < 1e-6
    assert float(info_nce(e, e, 1e6)) == pytest.approx(math.log(4), rel=1e-4)


@pytest.mark.parametrize("hardest", [True, False])
@pytest.mark.parametrize("margin", [0.0, 0.2, 1.0])
def test_vse_hinge_matches_brute_force(pair, hardest, margin):
    a, b = pair
    got = vse_hinge(a, b, margin=margin, hardest=hardest)
    assert float(got) == pytest.approx(bf_vse(a, b, margin, hardest), rel=1e-10, abs=1e-12)
    assert float(vse_hinge(a, b, margin=margin, hardest=hardest, reduction="sum")) == pytest.approx(
        len(a) * float(got), rel=1e-10, abs=1e-12)


def test_vse_hinge_zero_when_pairs_win_by_the_margin():
    e = torch.eye(5)  # s_ii = 1, s_ij = 0
    assert float(vse_hinge(e, e, margin=0.5)) == 0.0
    assert float(vse_hinge(e, e, margin=1.5, hardest=False)) == pytest.approx(2 * 4 * 0.5)


def test_a_training_step_lowers_both_losses():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 8, generator=g)
    y = x @ torch.randn(8, 8, generator=g)
    for loss_fn in (lambda a, b: info_nce(a, b, 0.1), vse_hinge):
        torch.manual_seed(0)
        f = torch.nn.Linear(8, 8)
        opt = torch.optim.SGD(f.parameters(), lr=0.5)
        before = float(loss_fn(f(x), y).detach())
        for _ in range(20):
            opt.zero_grad()
            loss_fn(f(x), y).backward()
            opt.step()
        assert float(loss_fn(f(x), y).detach()) < before


def test_bad_input(pair):
    a, b = pair
    with pytest.raises(ValueError, match="same shape"):
        info_nce(a, b[:5], 0.1)
    with pytest.raises(ValueError, match="same shape"):
        vse_hinge(a, b[:, :3])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        info_nce(a[:1], b[:1], 0.1)
    with pytest.raises(ValueError, match=r"a: expected a 2-D tensor \(B, D\)"):
        vse_hinge(a[0], b[0])
    with pytest.raises(ValueError, match="finite"):
        info_nce(a.clone().fill_(float("nan")), b, 0.1)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            info_nce(a, b, bad)
    with pytest.raises(ValueError, match="temperature: expected a scalar"):
        info_nce(a, b, torch.ones(2))
    with pytest.raises(TypeError, match="temperature"):
        info_nce(a, b, "0.1")
    with pytest.raises(ValueError, match="margin"):
        vse_hinge(a, b, margin=-0.1)
    with pytest.raises(TypeError, match="margin"):
        vse_hinge(a, b, margin="0.2")
    with pytest.raises(TypeError, match="hardest"):
        vse_hinge(a, b, hardest=1)
    with pytest.raises(ValueError, match="reduction"):
        vse_hinge(a, b, reduction="max")
    with pytest.raises(TypeError, match=r"hardest: expected a bool \(True or False\), got int 1"):
        vse_hinge(a, b, hardest=1)
    with pytest.raises(TypeError, match=r"margin: expected a real number in \[0, inf\), got bool True"):
        vse_hinge(a, b, margin=True)
    with pytest.raises(TypeError, match=r"temperature: expected a real number in \(0, inf\), got numpy.bool"):
        info_nce(a, b, np.bool_(True))
    with pytest.raises(TypeError, match="a"):
        info_nce("x", b, 0.1)


def test_numpy_scalars_and_bools_are_accepted(pair):
    # np.float32 options (from an array of settings) and np.bool_ flags used to be refused, the
    # latter as "hardest: expected a bool, got bool" (numpy's bool type is also named "bool")
    a, b = pair
    assert torch.equal(info_nce(a, b, np.float32(0.5)), info_nce(a, b, 0.5))
    assert torch.equal(info_nce(a, b, np.float64(0.1)), info_nce(a, b, 0.1))
    assert torch.equal(vse_hinge(a, b, margin=np.float32(0.25)), vse_hinge(a, b, margin=0.25))
    for flag in (True, False):
        assert torch.equal(vse_hinge(a, b, hardest=np.bool_(flag)), vse_hinge(a, b, hardest=flag))
    assert torch.equal(vse_hinge(a, b, margin=np.int64(1)), vse_hinge(a, b, margin=1.0))


# --------------------------------------------------------------------------- class-level positives (labels=)

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2])


@pytest.mark.parametrize("hardest", [True, False])
@pytest.mark.parametrize("margin", [0.0, 0.3, 1.5])
def test_vse_hinge_with_labels_matches_brute_force(pair, hardest, margin):
    a, b = pair
    want_mean, want_sum = bf_vse_labels(a, b, LABELS, margin, hardest)
    got = vse_hinge(a, b, margin=margin, hardest=hardest, labels=LABELS)
    assert float(got) == pytest.approx(want_mean, rel=1e-10, abs=1e-12)
    got_sum = vse_hinge(a, b, margin=margin, hardest=hardest, reduction="sum", labels=LABELS.numpy())
    assert float(got_sum) == pytest.approx(want_sum, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("hardest", [True, False])
def test_distinct_labels_give_the_instance_level_loss(pair, hardest):
    a, b = pair
    torch.testing.assert_close(vse_hinge(a, b, 0.4, hardest, labels=torch.arange(7) * 3),
                               vse_hinge(a, b, 0.4, hardest), rtol=1e-14, atol=0)


def test_class_level_chunks_do_not_change_the_loss(pair, monkeypatch):
    a, b = pair
    whole = vse_hinge(a, b, 0.3, hardest=False, labels=LABELS)
    monkeypatch.setattr(losses, "_CHUNK_ELEMENTS", 2 * 7 * 7)  # two anchors per chunk
    torch.testing.assert_close(vse_hinge(a, b, 0.3, hardest=False, labels=LABELS), whole, rtol=1e-14, atol=0)


@pytest.mark.parametrize("hardest", [True, False])
def test_a_one_class_batch_has_no_triplet(hardest):
    a = torch.randn(4, 3, requires_grad=True)
    loss = vse_hinge(a, torch.randn(4, 3), hardest=hardest, labels=torch.tensor([2, 2, 2, 2]))
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, a)
    assert torch.equal(grad, torch.zeros_like(a))


def test_labels_bad_input(pair):
    a, b = pair
    with pytest.raises(ValueError, match="labels: expected 7 labels"):
        vse_hinge(a, b, labels=torch.zeros(6, dtype=torch.long))
    with pytest.raises(TypeError, match="labels: expected integer class labels, got dtype torch.float32"):
        vse_hinge(a, b, labels=torch.zeros(7))
    with pytest.raises(TypeError, match="labels: expected integer class labels"):
        vse_hinge(a, b, labels=torch.zeros(7, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"labels: expected a 1-D tensor \(7,\)"):
        vse_hinge(a, b, labels=torch.zeros(7, 1, dtype=torch.long))


# --------------------------------------------------------------------------- ACMR's triplet loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_acmr_instance_triplet_keeps_the_former_arithmetic_to_the_bit(seed):
    # ACMR's default (triplet="pair") is trained in chapters 4 and 7: the loss and its gradients
    # must not move by one rounding step, or their stored results would
    g = torch.Generator().manual_seed(seed)
    a0, b0 = torch.randn(128, 32, generator=g), torch.randn(128, 32, generator=g)
    results = []
    for loss_fn in (former_triplet_loss, lambda a, b: _triplet_mean(a, b, 0.2)):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        loss = loss_fn(a, b)
        results.append((loss.detach(), *torch.autograd.grad(loss, (a, b))))
    for old, new in zip(*results):
        assert torch.equal(old, new)


def test_acmr_triplet_through_vse_hinge(pair):
    a, b = pair
    n = len(a)
    # instance level: the mean over all 2 B (B - 1) (positive, negative) hinges
    want = former_triplet_loss(a, b, margin=0.3)
    torch.testing.assert_close(_triplet_mean(a, b, 0.3), want, rtol=1e-14, atol=0)
    torch.testing.assert_close(vse_hinge(a, b, 0.3, hardest=False) / (2 * (n - 1)), want, rtol=1e-14, atol=0)
    # class level: half the class-level VSE++ loss (the two directions averaged, not summed)
    want = former_triplet_loss(a, b, LABELS, margin=0.3)
    torch.testing.assert_close(vse_hinge(a, b, 0.3, labels=LABELS) / 2, want, rtol=1e-14, atol=0)
    torch.testing.assert_close(_triplet_mean(a, b, 0.3, labels=LABELS), want, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- the package's one cosine


def test_losses_score_with_the_package_cosine_and_its_zero_row_policy(pair):
    a, b = (t.clone() for t in pair)
    a[2] = 0.0  # no direction: scores 0 against every row
    s = cosine_similarity(a, b)
    assert torch.equal(s[2], torch.zeros(7, dtype=s.dtype))
    y = torch.arange(7)
    want = (F.cross_entropy(s / 0.1, y) + F.cross_entropy(s.T / 0.1, y)) / 2
    assert torch.equal(info_nce(a, b, 0.1), want)
    # the gradient reaching the zero row is the one reaching its (zero) unit vector: finite, and
    # not the 1 / eps blow-up of F.normalize (1e12 times too large)
    leaf = a.clone().requires_grad_()
    (grad,) = torch.autograd.grad(info_nce(leaf, b, 0.1), leaf)
    unit = (a / a.norm(dim=1, keepdim=True).clamp_min(1e-300)).requires_grad_()  # row 2 stays 0
    s_unit = unit @ (b / b.norm(dim=1, keepdim=True)).T
    want = (F.cross_entropy(s_unit / 0.1, y) + F.cross_entropy(s_unit.T / 0.1, y)) / 2
    (want_grad,) = torch.autograd.grad(want, unit)
    torch.testing.assert_close(grad[2], want_grad[2], rtol=1e-10, atol=1e-12)
    leaf = a.clone().requires_grad_()
    (grad,) = torch.autograd.grad(vse_hinge(leaf, b, 0.5, hardest=False), leaf)
    assert torch.isfinite(grad).all() and 0 < grad[2].abs().max() < 10


# --- tests that mutation testing showed missing (scripts/mutation_test.py losses) -------------


def test_the_documented_defaults(pair):
    # CLIP's temperature 0.07; VSE++'s margin 0.2 with the hardest negative, averaged over the batch
    a, b = pair
    assert torch.equal(info_nce(a, b), info_nce(a, b, 0.07))
    assert torch.equal(vse_hinge(a, b), vse_hinge(a, b, margin=0.2, hardest=True, reduction="mean"))
    assert float(vse_hinge(a, b)) != float(vse_hinge(a, b, hardest=False))


def test_two_pairs_are_enough():
    # B = 2, orthogonal unit pairs, tau = 1: each row's softmax is (e, 1) / (e + 1)
    e = torch.eye(2, dtype=torch.float64)
    assert float(info_nce(e, e, 1.0)) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-12)
    assert float(vse_hinge(e, e, margin=1.5, hardest=False)) == pytest.approx(2 * 0.5)


def test_integer_embeddings_are_converted_and_booleans_refused():
    a = torch.tensor([[1, 0, 2], [0, 3, 1], [2, 2, 0]])
    b = torch.tensor([[1, 1, 2], [0, 2, 1], [1, 2, 1]])
    torch.testing.assert_close(info_nce(a, b, 0.5), info_nce(a.float(), b.float(), 0.5))
    torch.testing.assert_close(vse_hinge(a, b), vse_hinge(a.float(), b.float()))
    with pytest.raises(TypeError, match=r"^a: expected a real floating-point tensor, got dtype torch.bool"):
        info_nce(a > 0, b.float(), 0.5)
    with pytest.raises(TypeError, match=r"^b: expected a real floating-point tensor, got dtype torch.bool"):
        info_nce(a.float(), b > 0, 0.5)


def test_each_input_is_checked_on_its_own(pair):
    # a check of a alone or b alone: the other input is valid, so only that check can refuse
    a, b = pair
    with pytest.raises(ValueError, match=r"^a: expected a 2-D tensor \(B, D\), got shape \(5,\)"):
        info_nce(a[0], b, 0.1)
    with pytest.raises(ValueError, match=r"^b: expected a 2-D tensor \(B, D\), got shape \(5,\)"):
        vse_hinge(a, b[0])
    with pytest.raises(ValueError, match=r"^b: expected finite values, found 35 NaN/inf entries"):
        info_nce(a, b.clone().fill_(float("nan")), 0.1)
    with pytest.raises(ValueError, match=r"^a: expected at least one feature, got shape \(3, 0\)"):
        info_nce(torch.ones(3, 0), torch.ones(3, 0), 0.1)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_bad_tensor_temperature_is_refused(pair, bad):
    # a learnable temperature arrives as a tensor: its value is checked as a float's would be
    a, b = pair
    with pytest.raises(ValueError, match=r"^temperature: expected a real number in \(0, inf\)"):
        info_nce(a, b, torch.tensor(bad))
