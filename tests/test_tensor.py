"""Tests of :mod:`mmedu.tensor` against tensorly, torch.einsum, NumPy's SVD and exact constructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmedu.tensor as mt

tl = pytest.importorskip("tensorly")
from tensorly.decomposition import tucker as tl_tucker  # noqa: E402


@pytest.fixture(autouse=True)
def _numpy_backend():
    with tl.backend_context("numpy"):
        yield


def rel_err(x, xr) -> float:
    x, xr = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(xr, dtype=torch.float64)
    return float(torch.linalg.vector_norm(x - xr) / torch.linalg.vector_norm(x))


def random_tucker(shape, ranks, seed=0, dtype=torch.float64):
    """An exactly multilinear-rank-``ranks`` tensor (random core, random orthonormal factors)."""
    g = torch.Generator().manual_seed(seed)
    core = torch.randn(ranks, generator=g, dtype=torch.float64)
    factors = [torch.linalg.qr(torch.randn(i, r, generator=g, dtype=torch.float64))[0] for i, r in zip(shape, ranks)]
    x = core
    for n, f in enumerate(factors):
        x = torch.movedim(torch.tensordot(f, x, dims=([1], [n])), 0, n)
    return x.to(dtype)


def gaussian(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


SHAPES = [(4, 5, 6), (3, 4, 2, 5), (7, 3)]


# --------------------------------------------------------------------------- algebra
@pytest.mark.parametrize("shape", SHAPES)
def test_unfold_fold_round_trip_and_match_tensorly(shape):
    x = gaussian(shape)
    for n in range(len(shape)):
        u = mt.unfold(x, n)
        assert u.shape == (shape[n], x.numel() // shape[n])
        np.testing.assert_array_equal(u.numpy(), tl.unfold(x.numpy(), n))
        torch.testing.assert_close(mt.fold(u, n, shape), x, rtol=0, atol=0)
        np.testing.assert_array_equal(mt.fold(u, n, shape).numpy(), tl.fold(u.numpy(), n, shape))


def test_unfold_is_the_stated_convention():
    x = torch.arange(24.0).reshape(2, 3, 4)
    # mode 1: rows indexed by j, columns by (i, k) with k varying fastest.
    expected = torch.stack([torch.cat([x[0, j], x[1, j]]) for j in range(3)])
    torch.testing.assert_close(mt.unfold(x, 1), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_mode_dot_matches_einsum_and_tensorly(shape):
    x = gaussian(shape, seed=1)
    letters = "abcd"[: len(shape)]
    for n in range(len(shape)):
        m = gaussian((3, shape[n]), seed=10 + n)
        out = mt.mode_dot(x, m, n)
        spec = f"z{letters[n]},{letters}->{letters[:n]}z{letters[n + 1:]}"
        torch.testing.assert_close(out, torch.einsum(spec, m, x))
        np.testing.assert_allclose(out.numpy(), tl.tenalg.mode_dot(x.numpy(), m.numpy(), n), rtol=1e-12, atol=1e-12)
        # unfold(X x_n M, n) = M @ unfold(X, n)
        torch.testing.assert_close(mt.unfold(out, n), m @ mt.unfold(x, n))


def test_multi_mode_dot_matches_a_loop_and_tensorly():
    x = gaussian((4, 5, 6, 3), seed=2)
    modes = [2, 0, 3]
    mats = [gaussian((2, x.shape[k]), seed=20 + k) for k in modes]
    loop = x
    for m, k in zip(mats, modes):
        loop = mt.mode_dot(loop, m, k)
    torch.testing.assert_close(mt.multi_mode_dot(x, mats, modes), loop)
    ref = tl.tenalg.multi_mode_dot(x.numpy(), [m.numpy() for m in mats], modes=modes)
    np.testing.assert_allclose(loop.numpy(), ref, rtol=1e-12, atol=1e-12)
    # transpose=True multiplies by each matrix's transpose; modes default to 0, 1, ...
    tmats = [gaussian((x.shape[k], 2), seed=30 + k) for k in range(3)]
    loop = x
    for k, m in enumerate(tmats):
        loop = mt.mode_dot(loop, m.T, k)
    torch.testing.assert_close(mt.multi_mode_dot(x, tmats, transpose=True), loop)


def test_mixed_dtypes_promote_as_numpy_and_tensorly():
    x32 = gaussian((4, 5, 6), seed=20, dtype=torch.float32)
    m64 = gaussian((3, 5), seed=21)
    out = mt.mode_dot(x32, m64, 1)
    ref = tl.tenalg.mode_dot(x32.numpy(), m64.numpy(), 1)  # NumPy promotes float32 x float64 to float64
    assert out.dtype == torch.float64 and ref.dtype == np.float64
    # computed in float64: agrees with the float64 product to float64 rounding, not float32's
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert mt.mode_dot(gaussian((4, 5, 6)), m64.float(), 1).dtype == torch.float64  # float64 tensor stays
    core32 = gaussian((2, 3, 2), seed=22, dtype=torch.float32)
    fs = [gaussian((i, r), seed=23 + i) for i, r in zip((4, 5, 6), (2, 3, 2))]
    fs[1] = fs[1].float()  # one float32 factor among float64 ones
    full = mt.tucker_to_tensor(core32, fs)
    ref = tl.tucker_to_tensor((core32.numpy(), [f.numpy() for f in fs]))
    assert full.dtype == torch.float64 and ref.dtype == np.float64
    np.testing.assert_allclose(full.numpy(), ref, rtol=1e-12, atol=1e-12)
    multi = mt.multi_mode_dot(x32, [gaussian((2, 4), seed=30), gaussian((3, 6), seed=31)], modes=[0, 2])
    assert multi.dtype == torch.float64
    assert mt.tucker_to_tensor(core32, [f.float() for f in fs]).dtype == torch.float32  # same dtype: unchanged


def test_fold_refuses_non_integer_sizes():
    u = torch.ones(4, 30)
    with pytest.raises(TypeError, match=r"shape\[2\]: expected an integer size, got float \(6\.9\)"):
        mt.fold(u, 0, (4, 5, 6.9))
    with pytest.raises(TypeError, match=r"shape\[0\]: expected an integer size, got float \(4\.0\)"):
        mt.fold(u, 0, (4.0, 5, 6))
    with pytest.raises(TypeError, match=r"shape: expected a sequence of ints, got int"):
        mt.fold(u, 0, 120)
    x = gaussian((4, 5, 6))
    for shape in (torch.Size([4, 5, 6]), np.array([4, 5, 6]), [np.int64(4), 5, 6]):  # integer types are fine
        torch.testing.assert_close(mt.fold(mt.unfold(x, 0), 0, shape), x, rtol=0, atol=0)


def test_numpy_input_accepted_and_torch_returned():
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    out = mt.unfold(x, 2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    core, factors = mt.tucker(x, (2, 2, 2))
    assert isinstance(core, torch.Tensor) and all(isinstance(f, torch.Tensor) for f in factors)


# --------------------------------------------------------------------------- HOSVD / Tucker
@pytest.mark.parametrize("method", ["hosvd", "tucker"])
@pytest.mark.parametrize("shape,ranks", [((10, 12, 14), (3, 4, 5)), ((6, 7, 8, 5), (2, 3, 2, 4)), ((9, 11), (4, 4))])
def test_exact_recovery_of_low_rank_tensor(method, shape, ranks):
    x = random_tucker(shape, ranks, seed=3)
    core, factors = mt.hosvd(x, ranks) if method == "hosvd" else mt.tucker(x, ranks)
    assert core.shape == ranks
    assert [tuple(f.shape) for f in factors] == [(i, r) for i, r in zip(shape, ranks)]
    assert rel_err(x, mt.tucker_to_tensor(core, factors)) < 1e-10


@pytest.mark.parametrize("init", ["svd", "random"])
def test_factors_are_orthonormal(init):
    x = gaussian((8, 9, 10), seed=4)
    g = torch.Generator().manual_seed(0)
    for core, factors in [mt.hosvd(x, (3, 4, 5)), mt.tucker(x, (3, 4, 5), init=init, generator=g)]:
        for f in factors:
            torch.testing.assert_close(f.T @ f, torch.eye(f.shape[1], dtype=f.dtype), atol=1e-12, rtol=0)
            # sign convention: the largest-magnitude entry of every column is positive
            idx = f.abs().argmax(0)
            assert bool((f[idx, torch.arange(f.shape[1])] > 0).all())


def test_full_hosvd_core_is_all_orthogonal_with_ordered_norms():
    x = gaussian((4, 5, 6), seed=5)
    core, factors = mt.hosvd(x, x.shape)
    torch.testing.assert_close(mt.tucker_to_tensor(core, factors), x)
    for n in range(3):
        c = mt.unfold(core, n)
        gram = c @ c.T  # inner products of the core's slices along mode n
        off = gram - torch.diag(torch.diag(gram))
        assert float(off.abs().max()) < 1e-10 * float(gram.diag().max())
        norms = gram.diag().sqrt()
        assert bool((norms[:-1] >= norms[1:]).all())
        # the slice norms are the mode-n singular values (independent: NumPy's SVD)
        s = np.linalg.svd(tl.unfold(x.numpy(), n), compute_uv=False)
        np.testing.assert_allclose(norms.numpy(), s, rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hooi_never_worse_than_hosvd_and_monotone(seed):
    x = gaussian((10, 11, 12), seed=seed)
    ranks = (3, 4, 2)
    e_hosvd = rel_err(x, mt.tucker_to_tensor(*mt.hosvd(x, ranks)))
    errors = [rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, ranks, n_iter_max=k, tol=0))) for k in range(5)]
    assert errors[0] == pytest.approx(e_hosvd, rel=1e-12)  # zero sweeps = the HOSVD initialisation
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[-1] < e_hosvd  # on unstructured data HOOI strictly improves HOSVD


@pytest.mark.parametrize("shape,ranks,seed", [((10, 12, 14), (3, 4, 5), 0), ((15, 15, 15), (5, 5, 5), 1),
                                              ((6, 7, 8, 5), (2, 3, 4, 2), 2), ((20, 8, 12), (6, 2, 3), 3)])
def test_tucker_error_matches_tensorly(shape, ranks, seed):
    x = gaussian(shape, seed=seed)
    ours = rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, ranks, n_iter_max=100, tol=1e-4)))
    tt = tl_tucker(x.numpy(), ranks, n_iter_max=100, tol=1e-4, init="svd")
    theirs = rel_err(x, tl.tucker_to_tensor(tt))
    assert abs(ours - theirs) <= 1e-6 * theirs
    # tucker_to_tensor is tensorly's too
    core, factors = mt.tucker(x, ranks)
    ref = tl.tucker_to_tensor((core.numpy(), [f.numpy() for f in factors]))
    np.testing.assert_allclose(mt.tucker_to_tensor(core, factors).numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,seed", [("gauss", 0), ("gauss", 1), ("lowrank", 2)])
def test_tucker_stops_after_the_same_sweeps_as_tensorly(kind, seed):
    ranks, tol = (3, 3, 4), 1e-4
    x = gaussian((9, 10, 11), seed=seed)
    if kind == "lowrank":  # converges at once: tensorly still runs its minimum of three sweeps
        signal = random_tucker((9, 10, 11), ranks, seed=seed)
        x = signal + 0.4 * signal.norm() * x / x.norm()
    _, tl_errors = tl_tucker(x.numpy(), ranks, n_iter_max=100, tol=tol, init="svd", return_errors=True)
    sweeps = len(tl_errors)
    assert (sweeps == 3) if kind == "lowrank" else (3 < sweeps < 100)  # tol, not n_iter_max, stopped it
    stopped = rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, ranks, n_iter_max=100, tol=tol)))
    fixed = [rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, ranks, n_iter_max=k, tol=0))) for k in (sweeps - 1, sweeps)]
    assert stopped == pytest.approx(fixed[1], rel=1e-13)
    assert stopped != pytest.approx(fixed[0], rel=1e-13)  # one sweep fewer is distinguishable
    assert stopped == pytest.approx(tl_errors[-1], rel=1e-10)  # tensorly's own error estimate


def test_tucker_random_init_is_seeded_and_converges():
    x = random_tucker((10, 11, 12), (3, 3, 3), seed=6) + 1e-3 * gaussian((10, 11, 12), seed=7)
    a = mt.tucker(x, (3, 3, 3), init="random", generator=torch.Generator().manual_seed(1))
    b = mt.tucker(x, (3, 3, 3), init="random", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    e_rand = rel_err(x, mt.tucker_to_tensor(*a))
    e_svd = rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, (3, 3, 3))))
    assert e_rand == pytest.approx(e_svd, rel=1e-6)


def test_rank_above_product_of_other_ranks_still_orthonormal():
    # mode-0 rank 5 > 2 * 2: the subspace is completed deterministically, factors stay orthonormal
    x = gaussian((8, 3, 3), seed=8)
    for core, factors in [mt.hosvd(x, (5, 2, 2)), mt.tucker(x, (5, 2, 2))]:
        f = factors[0]
        torch.testing.assert_close(f.T @ f, torch.eye(5, dtype=f.dtype), atol=1e-12, rtol=0)
    e_hosvd = rel_err(x, mt.tucker_to_tensor(*mt.hosvd(x, (5, 2, 2))))
    assert rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, (5, 2, 2)))) <= e_hosvd + 1e-12


# --------------------------------------------------------------------------- CP
@pytest.mark.parametrize("shape,rank,seed", [((8, 9, 10), 3, 0), ((6, 7, 8, 5), 4, 1), ((12, 10, 14), 5, 2)])
def test_cp_recovers_exact_rank_r_tensor(shape, rank, seed):
    g = torch.Generator().manual_seed(seed)
    true = [torch.randn(i, rank, generator=g, dtype=torch.float64) for i in shape]
    x = torch.as_tensor(tl.cp_to_tensor((None, [f.numpy() for f in true])))  # independent construction
    weights, factors = mt.cp(x, rank, n_iter_max=500, tol=1e-10)
    assert weights.shape == (rank,) and [tuple(f.shape) for f in factors] == [(i, rank) for i in shape]
    assert rel_err(x, mt.cp_to_tensor(weights, factors)) < 1e-6
    assert bool((weights[:-1] >= weights[1:]).all())
    for f in factors:
        torch.testing.assert_close(torch.linalg.vector_norm(f, dim=0), torch.ones(rank, dtype=f.dtype))


def test_cp_to_tensor_matches_tensorly():
    g = torch.Generator().manual_seed(9)
    w = torch.rand(3, generator=g, dtype=torch.float64)
    fs = [torch.randn(i, 3, generator=g, dtype=torch.float64) for i in (4, 5, 6)]
    ref = tl.cp_to_tensor((w.numpy(), [f.numpy() for f in fs]))
    np.testing.assert_allclose(mt.cp_to_tensor(w, fs).numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mt.cp_to_tensor(None, fs).numpy(), tl.cp_to_tensor((None, [f.numpy() for f in fs])),
                               rtol=1e-12, atol=1e-12)


def test_cp_rank_may_exceed_dimensions():
    x = gaussian((3, 4, 5), seed=10)
    w, fs = mt.cp(x, 6, generator=torch.Generator().manual_seed(0))
    assert [tuple(f.shape) for f in fs] == [(3, 6), (4, 6), (5, 6)]
    assert torch.isfinite(w).all()


# --------------------------------------------------------------------------- dtypes and devices
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_paths(dtype):
    x = random_tucker((12, 13, 14), (3, 4, 5), seed=11, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for core, factors in [mt.hosvd(x, (3, 4, 5)), mt.tucker(x, (3, 4, 5))]:
        assert core.dtype == dtype and all(f.dtype == dtype for f in factors)
        assert rel_err(x, mt.tucker_to_tensor(core, factors)) < tol
    g = torch.Generator().manual_seed(12)
    y = mt.cp_to_tensor(None, [torch.randn(i, 2, generator=g, dtype=dtype) for i in (6, 7, 8)])
    w, fs = mt.cp(y, 2, n_iter_max=300, tol=1e-12)
    assert w.dtype == dtype and all(f.dtype == dtype for f in fs)
    assert rel_err(y, mt.cp_to_tensor(w, fs)) < (1e-4 if dtype == torch.float32 else 1e-6)
    assert mt.mode_dot(x, torch.ones(2, 12, dtype=dtype), 0).dtype == dtype


def _scaled_inputs(seed):
    """A float64 tensor with multilinear rank (3, 4, 5) plus 5 % noise, and a CP rank-3 one plus 5 % noise."""
    g = torch.Generator().manual_seed(seed)
    tuck = random_tucker((10, 11, 12), (3, 4, 5), seed=seed)
    cpt = mt.cp_to_tensor(None, [torch.randn(i, 3, generator=g, dtype=torch.float64) for i in (10, 11, 12)])
    out = []
    for x in (tuck, cpt):
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        out.append(x + 0.05 * torch.linalg.vector_norm(x) / torch.linalg.vector_norm(noise) * noise)
    return out


def _reconstruction_errors(tuck, cpt):
    """Relative errors of hosvd and tucker on ``tuck`` and of cp on ``cpt`` (see :func:`_scaled_inputs`)."""
    return {
        "hosvd": rel_err(tuck, mt.tucker_to_tensor(*mt.hosvd(tuck, (3, 4, 5)))),
        "tucker": rel_err(tuck, mt.tucker_to_tensor(*mt.tucker(tuck, (3, 4, 5)))),
        "cp": rel_err(cpt, mt.cp_to_tensor(*mt.cp(cpt, 3, n_iter_max=200))),
    }


@pytest.mark.parametrize("scale", [1e-22, 1e-30, 1e30, 1e36])
def test_float32_of_any_magnitude_is_as_accurate_as_the_rescaled_tensor(scale):
    # The Gram matrices inside the SVD init square the entries: 1e-22 -> 1e-44 (below float32's
    # normal range) and 1e30 -> 1e60 (overflow).  The result must not depend on the magnitude.
    tiny_or_huge = [(x * scale).float() for x in _scaled_inputs(seed=40)]
    rescaled = [t / t.abs().max() for t in tiny_or_huge]  # the same float32 tensors near 1
    got, want = _reconstruction_errors(*tiny_or_huge), _reconstruction_errors(*rescaled)
    for name in want:
        assert 0.01 < want[name] < 0.1, (name, want[name])  # the 5 % noise, not a failure
        assert got[name] == pytest.approx(want[name], rel=1e-3), (name, scale, got[name], want[name])
    tuck, cpt = tiny_or_huge
    core, _ = mt.tucker(tuck, (3, 4, 5))
    weights, _ = mt.cp(cpt, 3)
    assert core.dtype == weights.dtype == torch.float32
    assert torch.isfinite(core).all() and torch.isfinite(weights).all()
    # the outputs carry the input's scale: ||core|| = ||X^|| ~ ||X||, sum of weights ~ ||X|| here
    for out, x in ((core, tuck), (weights, cpt)):
        norm_x = float(torch.linalg.vector_norm(x.double()))
        assert 0.5 * norm_x < float(torch.linalg.vector_norm(out.double())) < 2 * norm_x


@pytest.mark.parametrize("dtype,power", [(torch.float32, -80), (torch.float32, 100), (torch.float64, -600),
                                         (torch.float64, 600)])
def test_scaling_by_a_power_of_two_scales_the_result_exactly(dtype, power):
    x, y = (t.to(dtype) for t in _scaled_inputs(seed=41))
    c = 2.0**power
    for fn in (mt.hosvd, mt.tucker):
        core, factors = fn(x, (3, 4, 5))
        core_s, factors_s = fn(x * c, (3, 4, 5))
        assert torch.equal(core_s, core * c) and all(torch.equal(a, b) for a, b in zip(factors, factors_s))
    w, fs = mt.cp(y, 3)
    w_s, fs_s = mt.cp(y * c, 3)
    assert torch.equal(w_s, w * c) and all(torch.equal(a, b) for a, b in zip(fs, fs_s))


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_cp_float32_is_not_stopped_by_a_rounding_level_repeat_of_the_error(seed):
    # An exact rank-3 float32 tensor: ALS reaches float32's floor (~5e-7 relative).  The normal-equation
    # error estimate cancels to rounding noise near 1e-3 and used to repeat exactly there, which
    # stopped the default run at 4e-5 .. 4e-4 for these seeds.
    g = torch.Generator().manual_seed(seed)
    x = mt.cp_to_tensor(None, [torch.randn(i, 3, generator=g, dtype=torch.float64) for i in (8, 9, 10)]).float()
    long_run = rel_err(x, mt.cp_to_tensor(*mt.cp(x, 3, n_iter_max=300, tol=0)))
    default = rel_err(x, mt.cp_to_tensor(*mt.cp(x, 3)))
    assert long_run < 2e-6
    assert default < 2e-6, (default, long_run)


def test_cp_float32_still_stops_once_converged(monkeypatch):
    # The stopping rule must not degenerate into "always n_iter_max sweeps" in float32.
    errors = []
    real = mt._cp_relative_error
    monkeypatch.setattr(mt, "_cp_relative_error", lambda *a, **k: errors.append(real(*a, **k)) or errors[-1])
    g = torch.Generator().manual_seed(0)
    x = mt.cp_to_tensor(None, [torch.randn(i, 3, generator=g, dtype=torch.float64) for i in (8, 9, 10)]).float()
    noisy = x + 0.05 * x.std() * torch.randn(x.shape, generator=g)
    for t in (x, noisy):
        errors.clear()
        mt.cp(t, 3, n_iter_max=500)
        assert len(errors) < 500 and abs(errors[-1] - errors[-2]) < 1e-8
        # the error that decided the stop is the true one, not a rounding artefact of the estimate
        assert errors[-1] == pytest.approx(rel_err(t, mt.cp_to_tensor(*mt.cp(t, 3, n_iter_max=len(errors), tol=0))),
                                           rel=1e-3, abs=1e-7)


def test_cp_unused_components_get_weight_zero_and_keep_unit_norm_columns():
    def unit_columns(fs):
        for f in fs:
            torch.testing.assert_close(torch.linalg.vector_norm(f, dim=0), torch.ones(f.shape[1], dtype=f.dtype))

    # an all-zero tensor: every component is unused
    w, fs = mt.cp(torch.zeros(3, 4, 5, dtype=torch.float64), 2)
    assert torch.equal(w, torch.zeros(2, dtype=torch.float64))
    unit_columns(fs)
    assert torch.equal(mt.cp_to_tensor(w, fs), torch.zeros(3, 4, 5, dtype=torch.float64))
    # a rank-one spike with R = 2: the second component's least-squares column is exactly zero
    x = torch.zeros(3, 4, 5, dtype=torch.float64)
    x[1, 2, 3] = 5.0
    w, fs = mt.cp(x, 2)
    torch.testing.assert_close(w, torch.tensor([5.0, 0.0], dtype=torch.float64), rtol=0, atol=1e-12)
    unit_columns(fs)
    torch.testing.assert_close(mt.cp_to_tensor(w, fs), x, rtol=0, atol=1e-12)


def _devices():
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


@pytest.mark.parametrize("device", _devices())
def test_outputs_on_input_device(device):
    x = random_tucker((6, 7, 8), (2, 3, 2), seed=13).to(device)
    core, factors = mt.tucker(x, (2, 3, 2), init="random", generator=torch.Generator().manual_seed(0))
    assert core.device == x.device and all(f.device == x.device for f in factors)
    core, factors = mt.hosvd(x, (2, 3, 2))
    assert core.device == x.device and all(f.device == x.device for f in factors)
    assert mt.tucker_to_tensor(core, factors).device == x.device
    w, fs = mt.cp(x, 2)
    assert w.device == x.device and all(f.device == x.device for f in fs)
    assert mt.mode_dot(x, torch.ones(3, 6, device=device, dtype=x.dtype), 0).device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = gaussian((10, 11, 12), seed=14)
    cpu = rel_err(x, mt.tucker_to_tensor(*mt.tucker(x, (3, 4, 5))))
    gpu = rel_err(x, mt.tucker_to_tensor(*mt.tucker(x.cuda(), (3, 4, 5))).cpu())
    assert gpu == pytest.approx(cpu, rel=1e-9)


# --------------------------------------------------------------------------- bad input
def test_bad_ranks():
    x = gaussian((4, 5, 6))
    for fn in (mt.hosvd, mt.tucker):
        with pytest.raises(ValueError, match=r"expected 3 ranks .*got 2"):
            fn(x, (2, 2))
        with pytest.raises(ValueError, match=r"expected 3 ranks .*got 4"):
            fn(x, (2, 2, 2, 2))
        with pytest.raises(ValueError, match=r"ranks\[1\].*<= 5, got 6"):
            fn(x, (2, 6, 2))
        with pytest.raises(ValueError, match=r"ranks\[2\].*>= 1.*got 0"):
            fn(x, (2, 2, 0))
        with pytest.raises(TypeError, match=r"ranks\[0\].*integer"):
            fn(x, (2.5, 2, 2))
    with pytest.raises(ValueError, match=r"rank.*>= 1, got 0"):
        mt.cp(x, 0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values(bad):
    x = gaussian((4, 5, 6))
    x[1, 2, 3] = bad
    for call in (lambda: mt.hosvd(x, 2), lambda: mt.tucker(x, 2), lambda: mt.cp(x, 2),
                 lambda: mt.mode_dot(x, torch.ones(2, 4, dtype=x.dtype), 0),
                 lambda: mt.multi_mode_dot(x, [torch.ones(2, 4, dtype=x.dtype)]),
                 lambda: mt.tucker_to_tensor(x, [torch.ones(2, 4), torch.ones(2, 5), torch.ones(2, 6)])):
        with pytest.raises(ValueError, match="finite"):
            call()
    m = torch.ones(2, 4, dtype=torch.float64)
    m[0, 0] = bad
    with pytest.raises(ValueError, match=r"matrix: expected finite"):
        mt.mode_dot(gaussian((4, 5)), m, 0)


def test_mode_out_of_range():
    x = gaussian((4, 5, 6))
    with pytest.raises(ValueError, match=r"mode in \[0, 2\].*got 3"):
        mt.unfold(x, 3)
    with pytest.raises(ValueError, match=r"mode in \[0, 2\].*got -1"):
        mt.mode_dot(x, torch.ones(2, 4, dtype=x.dtype), -1)
    with pytest.raises(ValueError, match=r"mode in \[0, 2\].*got 5"):
        mt.fold(torch.ones(4, 30, dtype=x.dtype), 5, (4, 5, 6))
    with pytest.raises(ValueError, match=r"modes\[1\].*got 7"):
        mt.multi_mode_dot(x, [torch.ones(2, 4, dtype=x.dtype)] * 2, modes=[0, 7])


def test_matrix_shape_not_matching_the_mode():
    x = gaussian((4, 5, 6))
    with pytest.raises(ValueError, match=r"matrix: expected shape \(J, 5\).*got \(3, 4\)"):
        mt.mode_dot(x, torch.ones(3, 4, dtype=x.dtype), 1)
    with pytest.raises(ValueError, match=r"matrix: expected a 2-D matrix, got shape \(5,\)"):
        mt.mode_dot(x, torch.ones(5, dtype=x.dtype), 1)
    with pytest.raises(ValueError, match=r"matrices\[1\]: expected shape \(5, J\).*transpose=True.*got \(4, 2\)"):
        mt.multi_mode_dot(x, [torch.ones(4, 2), torch.ones(4, 2)], transpose=True)
    with pytest.raises(ValueError, match=r"one mode per matrix \(2\), got 1"):
        mt.multi_mode_dot(x, [torch.ones(2, 4), torch.ones(2, 5)], modes=[0])
    with pytest.raises(ValueError, match=r"unfolded: expected shape \(5, 24\)"):
        mt.fold(torch.ones(4, 30), 1, (4, 5, 6))
    with pytest.raises(ValueError, match=r"factors: expected 3 factors"):
        mt.tucker_to_tensor(torch.ones(2, 2, 2), [torch.ones(4, 2)] * 2)
    with pytest.raises(ValueError, match=r"factors\[2\]: expected shape \(J, 2\).*got \(6, 3\)"):
        mt.tucker_to_tensor(torch.ones(2, 2, 2), [torch.ones(4, 2), torch.ones(5, 2), torch.ones(6, 3)])
    with pytest.raises(ValueError, match=r"R=2 columns"):
        mt.cp_to_tensor(None, [torch.ones(4, 2), torch.ones(5, 3)])
    with pytest.raises(ValueError, match=r"weights: expected shape \(2,\)"):
        mt.cp_to_tensor(torch.ones(3), [torch.ones(4, 2), torch.ones(5, 2)])


def test_other_bad_arguments():
    x = gaussian((4, 5, 6))
    with pytest.raises(ValueError, match=r"init: expected one of \['svd', 'random'\], got 'qr'"):
        mt.tucker(x, 2, init="qr")
    with pytest.raises(ValueError, match=r"tol: expected a finite number >= 0, got -1"):
        mt.tucker(x, 2, tol=-1)
    with pytest.raises(ValueError, match=r"n_iter_max.*>= 0, got -1"):
        mt.cp(x, 2, n_iter_max=-1)
    with pytest.raises(ValueError, match=r"order >= 2, got shape \(4,\)"):
        mt.hosvd(torch.ones(4), (2,))
    with pytest.raises(TypeError, match=r"real floating-point"):
        mt.unfold(torch.ones(2, 2, dtype=torch.bool), 0)
