"""Tests for the multiplicative fusions of mmedu.fusion: TensorFusion, LowRankFusion, TuckerFusion.

Anchors: the outer product computed in NumPy (``np.multiply.outer``), the full
multilinear form ``sum W[i, j, (l,) k] z_1[i] z_2[j] (z_3[l])`` evaluated with
``np.einsum`` on weights rebuilt by tensorly's ``cp_to_tensor`` / ``tucker_to_tensor``
(independent of mmedu), finite differences (``torch.autograd.gradcheck``), and the
behaviour of a training step.  The anchor bugs this file guards against: factors
that are not registered parameters (MultiBench's low-rank fusion) and constructor
arguments that are silently ignored (block.bootstrap's Tucker ``shared`` flag).
"""

import numpy as np
import pytest
import tensorly as tl
import torch
from torch import nn
from torch.nn import functional as F

from mmedu.fusion import ConcatFusion, Fusion, LowRankFusion, TensorFusion, TuckerFusion
from mmedu.tensor import tucker
from mmedu.training import evaluate, fit


def _feats(dims, batch=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g, dtype=dtype) for d in dims]


def _padded(xs):
    """[x_m; 1] in NumPy, float64."""
    return [np.concatenate([x.detach().numpy(), np.ones((x.shape[0], 1))], axis=1) for x in xs]


def _multilinear(w: np.ndarray, xs) -> np.ndarray:
    """out[b, k] = sum_{i, j, ...} W[i, j, ..., k] z_1[b, i] z_2[b, j] ... in plain NumPy einsum."""
    zs = _padded(xs)
    letters = "ijlmn"[: len(zs)]
    spec = f"{letters}k," + ",".join(f"b{c}" for c in letters) + "->bk"
    return np.einsum(spec, w, *zs)


def _make(kind, dims, k=3, seed=0, **kw):
    torch.manual_seed(seed)
    if kind == "tensor":
        return TensorFusion(dims, k, **kw)
    if kind == "lowrank":
        return LowRankFusion(dims, k, rank=kw.pop("rank", 3), **kw)
    return TuckerFusion(dims, k, ranks=kw.pop("ranks", 2), **kw)


KINDS = ["tensor", "lowrank", "tucker"]


# ---------------------------------------------------------------- shapes and interface


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 2)])
@pytest.mark.parametrize("kind", KINDS)
def test_shapes_two_and_three_modalities(kind, dims):
    fusion = _make(kind, dims, k=6)
    assert isinstance(fusion, Fusion)
    assert fusion.output_dim == 6
    assert fusion([x.float() for x in _feats(dims)]).shape == (5, 6)


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 2), (1, 1, 1, 1)])
def test_tensor_fusion_without_linear_has_size_prod_d_plus_one(dims):
    fusion = TensorFusion(dims)
    assert fusion.output_dim == int(np.prod([d + 1 for d in dims]))
    assert fusion(_feats(dims)).shape == (5, fusion.output_dim)
    assert sum(p.numel() for p in fusion.parameters()) == 0


def test_numpy_inputs_and_float64_modules():
    xs = _feats((3, 4))
    for kind in KINDS:
        fusion = _make(kind, (3, 4)).double()
        out = fusion([x.numpy() for x in xs])
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, fusion(xs))


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    "dims, k, bias",
    [((3, 4), 5, False), ((3, 4), 5, True), ((2, 3, 4), 2, False), ((1, 2, 1, 2), 3, True)],
)
def test_parameter_count_formulas(dims, k, bias):
    def count(module):
        return sum(p.numel() for p in module.parameters())

    # Formulas written out independently of the classes.
    assert count(TensorFusion(dims, k, bias=bias)) == TensorFusion.n_parameters(dims, k, bias=bias)
    assert TensorFusion.n_parameters(dims, k, bias=bias) == int(np.prod([d + 1 for d in dims])) * k + bias * k
    assert TensorFusion.n_parameters(dims) == 0
    for rank in (1, 4):
        lmf = LowRankFusion(dims, k, rank=rank, bias=bias)
        assert count(lmf) == LowRankFusion.n_parameters(dims, k, rank, bias=bias)
        assert count(lmf) == rank * k * sum(d + 1 for d in dims) + bias * k
    ranks = [min(2, d + 1) for d in dims]
    for ro in (None, 1):
        tuck = TuckerFusion(dims, k, ranks, output_rank=ro, bias=bias)
        r_o = k if ro is None else ro
        expected = sum((d + 1) * r for d, r in zip(dims, ranks)) + int(np.prod(ranks)) * r_o + k * r_o + bias * k
        assert count(tuck) == TuckerFusion.n_parameters(dims, k, ranks, output_rank=ro, bias=bias) == expected


def test_every_constructor_argument_changes_the_model():
    # block.bootstrap's Tucker accepted a `shared` flag and ignored it; here every
    # argument must show up in the parameters (or, for activation, in the output).
    base = dict(input_dims=(3, 4), output_dim=5, ranks=(2, 3))
    ref = TuckerFusion(**base)
    shapes = lambda m: sorted(tuple(p.shape) for p in m.parameters())  # noqa: E731
    assert shapes(TuckerFusion(**{**base, "ranks": (3, 3)})) != shapes(ref)
    assert shapes(TuckerFusion(**base, output_rank=2)) != shapes(ref)
    assert shapes(TuckerFusion(**base, bias=True)) != shapes(ref)
    torch.manual_seed(0)
    a = TuckerFusion(**base)
    torch.manual_seed(0)
    b = TuckerFusion(**base, activation="tanh")
    xs = _feats((3, 4), dtype=torch.float32)
    assert not torch.allclose(a(xs), b(xs))
    assert shapes(LowRankFusion((3, 4), 5, rank=2)) != shapes(LowRankFusion((3, 4), 5, rank=3))
    assert shapes(LowRankFusion((3, 4), 5, rank=2, bias=True)) != shapes(LowRankFusion((3, 4), 5, rank=2))
    assert shapes(TensorFusion((3, 4), 5, bias=True)) != shapes(TensorFusion((3, 4), 5))


# ---------------------------------------------------------------- trainable factors


@pytest.mark.parametrize("dims", [(3, 4), (3, 4, 2)])
@pytest.mark.parametrize("kind", KINDS)
def test_every_factor_is_a_parameter_and_gets_a_gradient(kind, dims):
    fusion = _make(kind, dims, bias=True)
    params = list(fusion.parameters())
    ids = {id(p) for p in params}
    if kind == "tensor":
        factors = [fusion.linear.weight]
    elif kind == "lowrank":
        factors = list(fusion.factors)
        assert len(factors) == len(dims)
    else:
        factors = [*fusion.factors, fusion.core, fusion.output_factor]
        assert len(fusion.factors) == len(dims) and fusion.core.ndim == len(dims) + 1
    assert all(id(f) in ids for f in factors), "a factor is missing from model.parameters()"
    assert all(f.requires_grad for f in factors)
    fusion([x.float() for x in _feats(dims)]).pow(2).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"


@pytest.mark.parametrize("kind", ["lowrank", "tucker", "tucker_tanh"])
def test_gradients_match_finite_differences(kind):
    dims = (2, 3, 2)
    if kind == "tucker_tanh":
        fusion = _make("tucker", dims, k=2, activation="tanh", bias=True).double()
    else:
        fusion = _make(kind, dims, k=2, bias=True).double()
    xs = [x.requires_grad_() for x in _feats(dims, batch=3, seed=1)]
    params = list(fusion.parameters())
    n = len(xs)

    def f(*args):
        with torch.no_grad():
            for p, a in zip(params, args[n:]):
                p.copy_(a)
        return fusion(list(args[:n]))

    # gradcheck on the inputs; the parameters' gradients via a functional call.
    assert torch.autograd.gradcheck(lambda *x: fusion(list(x)), tuple(xs))
    names = [name for name, _ in fusion.named_parameters()]
    leaves = tuple(p.detach().clone().requires_grad_() for p in params)

    def g(*ps):
        return torch.func.functional_call(fusion, dict(zip(names, ps)), (list(x.detach() for x in xs),))

    assert torch.autograd.gradcheck(g, leaves)


# ---------------------------------------------------------------- the math


def test_tensor_fusion_is_the_outer_product_with_appended_ones():
    x1, x2 = _feats((3, 4))
    z = TensorFusion((3, 4))([x1, x2]).numpy().reshape(5, 4, 5)
    p1, p2 = _padded([x1, x2])
    np.testing.assert_allclose(z, np.stack([np.multiply.outer(a, b) for a, b in zip(p1, p2)]), rtol=0, atol=1e-12)
    # the appended-1 property: bilinear block, both unimodal vectors and the constant
    np.testing.assert_allclose(z[:, :3, :4], np.einsum("bi,bj->bij", x1.numpy(), x2.numpy()), atol=1e-12)
    np.testing.assert_array_equal(z[:, :3, 4], x1.numpy())
    np.testing.assert_array_equal(z[:, 3, :4], x2.numpy())
    np.testing.assert_array_equal(z[:, 3, 4], np.ones(5))


def test_tensor_fusion_three_modalities_contains_every_subset_product():
    x1, x2, x3 = _feats((2, 3, 2))
    z = TensorFusion((2, 3, 2))([x1, x2, x3]).numpy().reshape(5, 3, 4, 3)
    a, b, c = (x.numpy() for x in (x1, x2, x3))
    np.testing.assert_allclose(z[:, :2, :3, :2], np.einsum("bi,bj,bl->bijl", a, b, c), atol=1e-12)
    np.testing.assert_allclose(z[:, :2, :3, 2], np.einsum("bi,bj->bij", a, b), atol=1e-12)
    np.testing.assert_allclose(z[:, 2, :3, :2], np.einsum("bj,bl->bjl", b, c), atol=1e-12)
    np.testing.assert_array_equal(z[:, :2, 3, 2], a)
    np.testing.assert_array_equal(z[:, 2, :3, 2], b)
    np.testing.assert_array_equal(z[:, 2, 3, :2], c)
    np.testing.assert_array_equal(z[:, 2, 3, 2], np.ones(5))


@pytest.mark.parametrize("dims", [(3, 4), (2, 3, 2)])
def test_tensor_fusion_linear_is_the_multilinear_form(dims):
    fusion = _make("tensor", dims, k=3).double()
    xs = _feats(dims)
    w = fusion.weight_tensor().detach().numpy()
    assert w.shape == (*(d + 1 for d in dims), 3)
    np.testing.assert_allclose(fusion(xs).detach().numpy(), _multilinear(w, xs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dims", [(3, 4), (2, 3, 2)])
@pytest.mark.parametrize("bias", [False, True])
def test_low_rank_equals_tensor_fusion_with_the_cp_weight(dims, bias):
    k, rank = 3, 4
    lmf = _make("lowrank", dims, k=k, rank=rank, bias=bias).double()
    if bias:
        nn.init.normal_(lmf.bias)
    # W[..., k] = sum_r A_1[:, r, k] o ... o A_M[:, r, k], rebuilt by tensorly, one output at a time.
    factors = [f.detach().numpy() for f in lmf.factors]
    w = np.stack([tl.cp_to_tensor((np.ones(rank), [f[:, :, j] for f in factors])) for j in range(k)], axis=-1)
    tfn = TensorFusion(dims, k, bias=bias).double()
    with torch.no_grad():
        tfn.linear.weight.copy_(torch.from_numpy(w.reshape(-1, k).T))
        if bias:
            tfn.linear.bias.copy_(lmf.bias)
    xs = _feats(dims)
    torch.testing.assert_close(lmf(xs), tfn(xs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lmf.weight_tensor().detach().numpy(), w, rtol=1e-10, atol=1e-12)


def test_low_rank_of_rank_m_represents_concatenation():
    # A linear layer on [x_1; ...; x_M] is sum_m (W_m x_m + b_m) * prod_{m' != m} 1: CP rank M.
    dims, k = (3, 4, 2), 5
    torch.manual_seed(0)
    concat = ConcatFusion(dims, output_dim=k).double()
    lmf = LowRankFusion(dims, k, rank=len(dims)).double()
    blocks = concat.blocks()
    with torch.no_grad():
        for m, f in enumerate(lmf.factors):
            f.zero_()
            f[-1, :, :] = 1.0  # picks the appended 1 in every term r != m
            f[:, m, :] = 0.0
            f[:-1, m, :] = blocks[m].T
            if m == 0:
                f[-1, m, :] = concat.linear.bias
    xs = _feats(dims)
    torch.testing.assert_close(lmf(xs), concat(xs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dims, ranks, ro", [((3, 4), (2, 3), None), ((3, 4), 2, 2), ((2, 3, 2), (2, 2, 3), 2)])
def test_tucker_equals_bilinear_form_with_the_tucker_weight(dims, ranks, ro):
    k = 3
    fusion = _make("tucker", dims, k=k, ranks=ranks, output_rank=ro, bias=True).double()
    nn.init.normal_(fusion.bias)
    core = fusion.core.detach().numpy()
    factors = [f.detach().numpy() for f in [*fusion.factors, fusion.output_factor]]
    w = tl.tucker_to_tensor((core, factors))  # independent reconstruction
    xs = _feats(dims)
    expected = _multilinear(w, xs) + fusion.bias.detach().numpy()
    np.testing.assert_allclose(fusion(xs).detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fusion.weight_tensor().detach().numpy(), w, rtol=1e-10, atol=1e-12)


def test_tucker_with_tanh_applies_it_to_the_projections():
    dims = (3, 4)
    fusion = _make("tucker", dims, k=2, ranks=(2, 3), activation="tanh").double()
    xs = _feats(dims)
    z1, z2 = (torch.from_numpy(z) for z in _padded(xs))
    p1, p2 = torch.tanh(z1 @ fusion.factors[0]), torch.tanh(z2 @ fusion.factors[1])
    expected = torch.einsum("ijo,bi,bj,ko->bk", fusion.core, p1, p2, fusion.output_factor)
    torch.testing.assert_close(fusion(xs), expected)
    torch.testing.assert_close(fusion.project(xs)[0], p1)


def test_full_rank_tucker_represents_any_tensor_fusion():
    # HOOI at full multilinear rank is exact, so a TuckerFusion can hold any TFN weight.
    dims, k = (2, 3), 4
    tfn = _make("tensor", dims, k=k).double()
    core, factors = tucker(tfn.weight_tensor().detach(), ranks=[d + 1 for d in dims] + [k])
    fusion = TuckerFusion(dims, k, ranks=[d + 1 for d in dims]).double()
    with torch.no_grad():
        for p, f in zip([*fusion.factors, fusion.output_factor], factors):
            p.copy_(f)
        fusion.core.copy_(core)
    xs = _feats(dims)
    torch.testing.assert_close(fusion(xs), tfn(xs), rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("kind", KINDS)
def test_train_step_changes_weights_and_eval_step_does_not(kind):
    dims = (3, 4, 2)
    fusion = _make(kind, dims, k=2)
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(32, d, generator=g) for d in dims]
    y = torch.randint(0, 2, (32,), generator=g)
    loader = [(xs, y)]
    before = {n: p.detach().clone() for n, p in fusion.named_parameters()}
    fit(fusion, loader, torch.optim.SGD(fusion.parameters(), lr=0.1), epochs=1, progress=False)
    after = {n: p.detach().clone() for n, p in fusion.named_parameters()}
    for n in before:
        assert not torch.equal(before[n], after[n]), f"{n} did not change in a training step"
    evaluate(fusion, loader)
    for n, p in fusion.named_parameters():
        assert torch.equal(p, after[n]), f"{n} changed in an evaluation step"
    with torch.no_grad():
        torch.testing.assert_close(F.cross_entropy(fusion(xs), y), torch.tensor(evaluate(fusion, loader)["loss"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_cpu(kind):
    dims = (3, 4, 2)
    fusion = _make(kind, dims, bias=True).double()
    xs = _feats(dims)
    cpu = fusion(xs)
    gpu_fusion = fusion.cuda()
    gpu = gpu_fusion([x.cuda() for x in xs])
    assert gpu.device.type == "cuda" and gpu_fusion.weight_tensor().device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu.detach(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- bad input


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="at least 2 modalities to fuse, got 1"):
        TensorFusion([3])
    with pytest.raises(ValueError, match="at least 2 modalities to fuse, got 1"):
        LowRankFusion.n_parameters([3], 2, 2)
    with pytest.raises(ValueError, match="bias=True needs an output_dim"):
        TensorFusion([3, 4], bias=True)
    with pytest.raises(ValueError, match="output_dim: expected an integer >= 1, got 0"):
        TensorFusion([3, 4], 0)
    with pytest.raises(ValueError, match="rank: expected an integer >= 1, got 0"):
        LowRankFusion([3, 4], 2, rank=0)
    with pytest.raises(TypeError, match="rank: expected an integer, got float"):
        LowRankFusion([3, 4], 2, rank=2.0)
    with pytest.raises(ValueError, match=r"ranks: expected 2 ranks \(one per modality\), got 3"):
        TuckerFusion([3, 4], 2, ranks=(2, 2, 2))
    with pytest.raises(ValueError, match=r"ranks\[1\] \(modality of size 4, 5 with the appended 1\): expected an integer >= 1 and <= 5, got 6"):
        TuckerFusion([3, 4], 2, ranks=(2, 6))
    with pytest.raises(ValueError, match=r"ranks\[0\].*got 9"):
        TuckerFusion.n_parameters([3, 4], 2, ranks=9)
    with pytest.raises(TypeError, match="ranks: expected an int or a sequence of 2 ints, got str"):
        TuckerFusion([3, 4], 2, ranks="22")
    with pytest.raises(ValueError, match=r"output_rank \(output_dim is 2\): expected an integer >= 1 and <= 2, got 3"):
        TuckerFusion([3, 4], 2, ranks=2, output_rank=3)
    with pytest.raises(ValueError, match=r"activation: expected one of \[None, 'tanh'\], got 'relu'"):
        TuckerFusion([3, 4], 2, ranks=2, activation="relu")
    with pytest.raises(ValueError, match="has no linear layer"):
        TensorFusion([3, 4]).weight_tensor()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_raise(kind):
    fusion = _make(kind, (3, 4))
    x1, x2 = (x.float() for x in _feats((3, 4)))
    with pytest.raises(TypeError, match="expected a list of 2 tensors"):
        fusion(torch.cat([x1, x2], dim=1))
    with pytest.raises(ValueError, match=r"expected 2 modalities with feature sizes \[3, 4\], got 1"):
        fusion([x1])
    with pytest.raises(ValueError, match=r"modality 1: expected feature size 4, i.e. shape \(B, 4\), got shape \(5, 3\)"):
        fusion([x1, x1])
    with pytest.raises(ValueError, match="same batch size.*modality 0: 5, modality 1: 4"):
        fusion([x1, x2[:4]])
    bad = x2.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="modality 1: expected finite values"):
        fusion([x1, bad])
