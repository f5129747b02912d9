"""Tests for mmedu.fusion: ConcatFusion, LateFusion, FusionClassifier.

Anchors: the block identity W [x1; x2] = W1 x1 + W2 x2 computed in NumPy, the
softmax of the weight vector computed by hand, late fusion rewritten as an early
(concatenation) linear layer, and a train/eval step that must / must not move
the weights.
"""

import numpy as np
import pytest
import torch
from torch import nn

from mmedu.encoders import AudioEncoder, ImageEncoder, TextEncoder
from mmedu.fusion import ConcatFusion, Fusion, FusionClassifier, LateFusion


def _feats(dims, batch=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g, dtype=dtype) for d in dims]


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 6), (2, 2, 2, 2)])
def test_concat_shapes(dims):
    xs = _feats(dims)
    plain = ConcatFusion(dims)
    assert plain.output_dim == sum(dims) and plain(xs).shape == (5, sum(dims))
    lin = ConcatFusion(dims, output_dim=7)
    assert lin.output_dim == 7 and lin(xs).shape == (5, 7)


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 6)])
@pytest.mark.parametrize("weighting", ["mean", "learned"])
def test_late_shapes(dims, weighting):
    fusion = LateFusion(dims, n_classes=10, weighting=weighting)
    xs = _feats(dims)
    assert fusion.output_dim == 10 and fusion(xs).shape == (5, 10)
    assert fusion.modality_logits(xs).shape == (len(dims), 5, 10)


def test_concat_without_linear_is_concatenation_in_order():
    xs = _feats((2, 3, 1))
    expected = np.concatenate([x.numpy() for x in xs], axis=1)
    np.testing.assert_array_equal(ConcatFusion((2, 3, 1))(xs).numpy(), expected)


def test_numpy_and_tuple_inputs_are_accepted():
    xs = _feats((3, 4))
    fusion = ConcatFusion((3, 4))
    torch.testing.assert_close(fusion(tuple(x.numpy() for x in xs)), fusion(xs))


# ---------------------------------------------------------------- the math


@pytest.mark.parametrize("dims", [(3, 4), (5, 1, 2)])
def test_block_equivalence_against_numpy(dims):
    """A linear layer on [x_1; ...; x_M] equals sum_m W_m x_m + b with W = [W_1, ..., W_M]."""
    torch.manual_seed(0)
    fusion = ConcatFusion(dims, output_dim=6)
    xs = _feats(dims, seed=1)
    W = fusion.linear.weight.detach().numpy().astype(np.float64)
    b = fusion.linear.bias.detach().numpy().astype(np.float64)
    offsets = np.cumsum((0,) + dims)
    expected = sum(x.numpy().astype(np.float64) @ W[:, offsets[m] : offsets[m + 1]].T for m, x in enumerate(xs)) + b
    np.testing.assert_allclose(fusion(xs).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    # and the blocks() helper returns exactly those column blocks
    for m, blk in enumerate(fusion.blocks()):
        assert blk.shape == (6, dims[m])
        np.testing.assert_array_equal(blk.detach().numpy(), W[:, offsets[m] : offsets[m + 1]].astype(np.float32))


def test_concat_is_additive_no_interaction():
    # f(x1, x2) - f(x1', x2) does not depend on x2: no cross-modal term
    fusion = ConcatFusion((3, 4), output_dim=2)
    a, a2 = _feats((3, 3), seed=2)
    b, b2 = _feats((4, 4), seed=3)
    torch.testing.assert_close(fusion([a, b]) - fusion([a2, b]), fusion([a, b2]) - fusion([a2, b2]))


def test_late_mean_is_average_of_heads():
    torch.manual_seed(0)
    fusion = LateFusion((3, 4, 2), n_classes=5, weighting="mean")
    xs = _feats((3, 4, 2))
    per = [x @ h.weight.T + h.bias for x, h in zip(xs, fusion.heads)]
    torch.testing.assert_close(fusion(xs), sum(per) / 3)
    torch.testing.assert_close(fusion.weights, torch.full((3,), 1 / 3))
    assert fusion.weight_logits is None
    assert not any("weight_logits" in n for n, _ in fusion.named_parameters())


def test_late_learned_weights_are_softmax():
    torch.manual_seed(0)
    fusion = LateFusion((3, 4, 2), n_classes=5, weighting="learned")
    torch.testing.assert_close(fusion.weights, torch.full((3,), 1 / 3))  # starts at the mean
    a = np.array([0.5, -1.0, 2.0])
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor(a))
    w = np.exp(a) / np.exp(a).sum()
    np.testing.assert_allclose(fusion.weights.detach().numpy(), w, rtol=1e-6)
    xs = _feats((3, 4, 2))
    per = fusion.modality_logits(xs).detach().numpy()
    np.testing.assert_allclose(fusion(xs).detach().numpy(), np.einsum("m,mbc->bc", w, per), rtol=1e-5, atol=1e-6)


def test_late_mean_equals_a_constrained_early_fusion():
    """Averaged linear heads = one linear layer on the concatenation with W = [A_1, ..., A_M] / M."""
    torch.manual_seed(0)
    dims = (3, 4, 2)
    late = LateFusion(dims, n_classes=5)
    early = ConcatFusion(dims, output_dim=5)
    with torch.no_grad():
        early.linear.weight.copy_(torch.cat([h.weight for h in late.heads], dim=1) / 3)
        early.linear.bias.copy_(sum(h.bias for h in late.heads) / 3)
    xs = _feats(dims)
    torch.testing.assert_close(late(xs), early(xs))


def test_float64_inputs_with_float64_module():
    fusion = LateFusion((3, 4), n_classes=2, weighting="learned").double()
    assert fusion(_feats((3, 4), dtype=torch.float64)).dtype == torch.float64


# ---------------------------------------------------------------- gradients, train / eval steps


def _model(fusion_kind):
    torch.manual_seed(0)
    encoders = {"image": ImageEncoder(8), "audio": AudioEncoder(6), "text": TextEncoder(15, 4)}
    if fusion_kind == "concat":
        return FusionClassifier(encoders, ConcatFusion([8, 6, 4], output_dim=9), nn.Sequential(nn.ReLU(), nn.Linear(9, 3)))
    return FusionClassifier(encoders, LateFusion([8, 6, 4], n_classes=3, weighting="learned"))


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(n, 1, 28, 28, generator=g),
        "audio": torch.randn(n, 40, 63, generator=g),
        "text": torch.randint(1, 15, (n, 6), generator=g),
        "label": torch.randint(0, 3, (n,), generator=g),
    }


@pytest.mark.parametrize("kind", ["concat", "late"])
def test_gradient_reaches_every_parameter(kind):
    model = _model(kind)
    batch = _batch(16)
    nn.functional.cross_entropy(model(batch), batch["label"]).backward()
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith("encoders.text") for n in names) and any("fusion" in n for n in names)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


@pytest.mark.parametrize("kind", ["concat", "late"])
def test_train_step_changes_weights_and_eval_step_does_not(kind):
    model = _model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = _batch(16)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    model.eval()
    with torch.no_grad():
        model(batch)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"eval step changed {k}"

    model.train()
    opt.zero_grad()
    nn.functional.cross_entropy(model(batch), batch["label"]).backward()
    opt.step()
    after = model.state_dict()
    for name, _ in model.named_parameters():
        assert not torch.equal(after[name], before[name]), f"train step left {name} unchanged"


def test_classifier_uses_key_order_of_encoders_and_ignores_extra_keys():
    torch.manual_seed(0)
    enc = {"audio": AudioEncoder(6), "image": ImageEncoder(8)}  # audio first
    model = FusionClassifier(enc, ConcatFusion([6, 8])).eval()
    batch = _batch(4)
    feats = model.encode(batch)
    assert [f.shape[1] for f in feats] == [6, 8]
    torch.testing.assert_close(model(batch), torch.cat([enc["audio"](batch["audio"]), enc["image"](batch["image"])], 1))
    # a list of encoders takes a list batch in the same order
    listed = FusionClassifier([enc["audio"], enc["image"]], ConcatFusion([6, 8])).eval()
    torch.testing.assert_close(listed([batch["audio"], batch["image"]]), model(batch))


# ---------------------------------------------------------------- bad input


def test_bad_fusion_inputs_raise():
    fusion = ConcatFusion((3, 4), output_dim=2)
    a, b = _feats((3, 4))
    with pytest.raises(TypeError, match="expected a list of 2 tensors"):
        fusion(torch.cat([a, b], 1))
    with pytest.raises(ValueError, match=r"expected 2 modalities with feature sizes \[3, 4\], got 3"):
        fusion([a, b, b])
    with pytest.raises(ValueError, match=r"modality 1: expected feature size 4, i.e. shape \(B, 4\), got shape \(5, 3\)"):
        fusion([a, a])
    with pytest.raises(ValueError, match=r"modality 0: expected a 2-D tensor \(B, 3\), got shape \(3,\)"):
        fusion([a[0], b])
    with pytest.raises(ValueError, match="same batch size.*modality 0: 5, modality 1: 4"):
        fusion([a, b[:4]])
    with pytest.raises(ValueError, match="modality 1: expected finite values"):
        fusion([a, b.clone().fill_(float("nan"))])
    with pytest.raises(TypeError, match="modality 0: expected a real floating-point"):
        fusion([torch.ones(5, 3, dtype=torch.bool), b])


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="at least 2 modalities to fuse, got 1"):
        ConcatFusion([3])
    with pytest.raises(TypeError, match="sequence of feature sizes"):
        ConcatFusion(3)
    with pytest.raises(ValueError, match=r"input_dims\[1\]: expected an integer >= 1, got 0"):
        LateFusion([3, 0], n_classes=2)
    with pytest.raises(ValueError, match="n_classes: expected an integer >= 1, got 0"):
        LateFusion([3, 4], n_classes=0)
    with pytest.raises(ValueError, match=r"weighting: expected one of \['mean', 'learned'\], got 'max'"):
        LateFusion([3, 4], n_classes=2, weighting="max")
    with pytest.raises(ValueError, match="has no linear layer"):
        ConcatFusion([3, 4]).blocks()


def test_bad_classifier_raises():
    enc = {"image": ImageEncoder(8), "audio": AudioEncoder(6)}
    with pytest.raises(ValueError, match=r"encoder 'audio': output_dim 6 does not match fusion.input_dims\[1\] = 5"):
        FusionClassifier(enc, ConcatFusion([8, 5]))
    with pytest.raises(ValueError, match=r"one encoder per fusion input \(3\), got 2"):
        FusionClassifier(enc, ConcatFusion([8, 6, 2]))
    with pytest.raises(TypeError, match="fusion: expected an mmedu.fusion.Fusion"):
        FusionClassifier(enc, nn.Identity())
    model = FusionClassifier(enc, ConcatFusion([8, 6]))
    with pytest.raises(ValueError, match=r"expected keys \['image', 'audio'\], got \['image'\] \(missing \['audio'\]\)"):
        model({"image": torch.zeros(2, 1, 28, 28)})
    with pytest.raises(TypeError, match="expected a dict with keys"):
        model([torch.zeros(2, 1, 28, 28), torch.zeros(2, 40, 63)])
    with pytest.raises(ValueError, match="same batch size"):
        model.eval()({"image": torch.zeros(2, 1, 28, 28), "audio": torch.zeros(3, 40, 63)})


def test_subclass_only_writes_fuse():
    """The base class is the extension point of chapter 2: a subclass gets validation for free."""

    class SumFusion(Fusion):
        def __init__(self, input_dims):
            super().__init__(input_dims)
            if len(set(self.input_dims)) != 1:
                raise ValueError("SumFusion needs equal input_dims")
            self.output_dim = self.input_dims[0]

        def fuse(self, xs):
            return torch.stack(xs).sum(0)

    fusion = SumFusion([3, 3, 3])
    xs = _feats((3, 3, 3))
    torch.testing.assert_close(fusion(xs), xs[0] + xs[1] + xs[2])
    with pytest.raises(ValueError, match="expected feature size 3"):
        fusion([xs[0], xs[1], torch.zeros(5, 4)])
