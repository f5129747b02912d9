"""Tests for mmedu.subspace: the math (whitening, monotone descent), scikit-learn / SciPy agreement, flaws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.cross_decomposition import CCA as SkCCA

from mmedu.subspace import CCA, cca_loss, orthogonal_projection

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def two_views(n=400, d1=7, d2=5, strengths=(3.0, 1.2, 0.5), seed=0):
    """Paired views sharing a latent z with decreasing signal strength (distinct correlations)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(strengths))) * np.asarray(strengths)
    x1 = z @ rng.standard_normal((len(strengths), d1)) + rng.standard_normal((n, d1)) * rng.uniform(0.5, 2, d1)
    x2 = z @ rng.standard_normal((len(strengths), d2)) + rng.standard_normal((n, d2)) * rng.uniform(0.5, 2, d2)
    return x1, x2


def frob_objective(x1, x2, w1, w2, lam):
    """The source objective evaluated directly (batch-first: X W W^T)."""
    r1 = x1 - x1 @ w1 @ w1.T
    r2 = x2 - x2 @ w2 @ w2.T
    return float((r1**2).sum() + (r2**2).sum() - lam * ((w1.T @ w2) ** 2).sum())


# --------------------------------------------------------------------------- orthogonal projection


@pytest.mark.parametrize("lam", [0.5, 50.0, 500.0, 5000.0])
def test_orthogonal_projection_descends_monotonically_to_a_stationary_point(lam):
    x1, x2 = two_views(n=200, d1=6, d2=6, seed=1)
    w1, w2, hist, converged = orthogonal_projection(x1, x2, 2, lam, tol=1e-14, max_iter=2000)
    assert converged
    diffs = hist[1:] - hist[:-1]
    assert (diffs <= 1e-9 * hist.abs().max()).all(), hist
    x1t, x2t = torch.from_numpy(x1), torch.from_numpy(x2)
    eye = torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(w1.T @ w1, eye)
    torch.testing.assert_close(w2.T @ w2, eye)
    assert float(hist[-1]) == pytest.approx(frob_objective(x1t, x2t, w1, w2, lam), rel=1e-10)
    # stationarity: W1 spans the top-2 eigenspace of C1 + lam W2 W2^T (projectors agree)
    a = x1t.T @ x1t + lam * w2 @ w2.T
    top = torch.linalg.eigh(a).eigenvectors[:, -2:]
    torch.testing.assert_close(w1 @ w1.T, top @ top.T, atol=1e-6, rtol=0)


def test_orthogonal_projection_lam_zero_is_uncentred_pca_and_coupling_grows_with_lam():
    x1, x2 = two_views(n=150, d1=5, d2=5, seed=2)
    w1, w2, hist, _ = orthogonal_projection(x1, x2, 2, 0.0)
    for x, w in ((x1, w1), (x2, w2)):
        v = np.linalg.svd(x, full_matrices=False)[2][:2].T  # right singular vectors = uncentred PCA
        np.testing.assert_allclose((w @ w.T).numpy(), v @ v.T, atol=1e-10)
    assert len(hist) == 2  # nothing to alternate
    coupling = [float((r.W1.T @ r.W2).pow(2).sum()) for r in (orthogonal_projection(x1, x2, 2, lam) for lam in (0.0, 1e5))]
    assert coupling[1] > coupling[0] + 0.1
    assert coupling[1] <= 2 + 1e-9  # ||W1^T W2||_F^2 <= k


def test_orthogonal_projection_ignores_the_pairing():
    x1, x2 = two_views(n=300, d1=6, d2=6, seed=3)
    perm = np.random.default_rng(0).permutation(300)
    a = orthogonal_projection(x1, x2, 3, 200.0)
    b = orthogonal_projection(x1, x2[perm], 3, 200.0)
    torch.testing.assert_close(a.W1 @ a.W1.T, b.W1 @ b.W1.T, atol=1e-8, rtol=0)
    torch.testing.assert_close(a.W2 @ a.W2.T, b.W2 @ b.W2.T, atol=1e-8, rtol=0)
    torch.testing.assert_close(a.history, b.history, rtol=1e-12, atol=0)
    # it does not even need paired data: different numbers of samples are accepted
    assert orthogonal_projection(x1[:100], x2, 3, 200.0).converged


@pytest.mark.parametrize("device", DEVICES)
def test_orthogonal_projection_keeps_dtype_device_and_centers_on_request(device):
    x1, x2 = two_views(n=120, d1=4, d2=4, seed=4)
    x1t, x2t = torch.from_numpy(x1).float().to(device), torch.from_numpy(x2).float().to(device)
    r = orthogonal_projection(x1t + 100.0, x2t, 2, 10.0, center=True)
    assert r.W1.dtype == torch.float32 and r.W1.device.type == device
    ref = orthogonal_projection(x1t - x1t.mean(0), x2t - x2t.mean(0), 2, 10.0)
    torch.testing.assert_close(r.W1 @ r.W1.T, ref.W1 @ ref.W1.T, atol=1e-4, rtol=0)


def test_orthogonal_projection_bad_input():
    x1, x2 = two_views(n=50, d1=6, d2=5)
    with pytest.raises(ValueError, match="equal feature sizes; got d1=6, d2=5"):
        orthogonal_projection(x1, x2, 2, 1.0)
    with pytest.raises(ValueError, match="k: expected an integer >= 1 and <= 6, got 7"):
        orthogonal_projection(x1, x1, 7, 1.0)
    with pytest.raises(ValueError, match=r"lam: expected a finite real number in \(-inf, inf\), got nan"):
        orthogonal_projection(x1, x1, 2, float("nan"))
    with pytest.raises(TypeError, match="lam: expected a real number"):
        orthogonal_projection(x1, x1, 2, "1")
    bad = x1.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X2: expected finite values"):
        orthogonal_projection(x1, bad, 2, 1.0)


# --------------------------------------------------------------------------- CCA


def sklearn_correlations(x1, x2, k):
    sk = SkCCA(n_components=k, max_iter=20000, tol=1e-14).fit(x1, x2)
    u, v = sk.transform(x1, x2)
    return np.array([np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(k)])


@pytest.mark.parametrize("seed", [0, 1])
def test_cca_correlations_match_sklearn(seed):
    x1, x2 = two_views(n=500, d1=8, d2=6, seed=seed)
    ours = CCA(3).fit(x1, x2).correlations_.numpy()
    np.testing.assert_allclose(ours, sklearn_correlations(x1, x2, 3), atol=1e-4, rtol=0)


def test_cca_matches_the_generalised_eigenproblem_for_all_components():
    x1, x2 = two_views(n=300, d1=6, d2=4, seed=5)
    c = np.cov(np.hstack([x1, x2]).T)
    c11, c22, c12 = c[:6, :6], c[6:, 6:], c[:6, 6:]
    # C12 C22^{-1} C21 w = rho^2 C11 w  (SciPy, independent of the whitening + SVD route)
    rho2 = scipy.linalg.eigh(c12 @ np.linalg.solve(c22, c12.T), c11, eigvals_only=True)[::-1][:4]
    np.testing.assert_allclose(CCA(4).fit(x1, x2).correlations_.numpy(), np.sqrt(rho2), rtol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_cca_projections_whiten_each_view_and_diagonalise_the_cross_covariance(device):
    x1, x2 = two_views(n=400, d1=7, d2=5, seed=6)
    x1t, x2t = torch.from_numpy(x1).to(device), torch.from_numpy(x2).to(device)
    cca = CCA(4)
    z1, z2 = cca.fit_transform(x1t, x2t)
    assert z1.shape == (400, 4) and z1.device.type == device
    n = 400
    eye = torch.eye(4, dtype=torch.float64, device=device)
    torch.testing.assert_close(z1.T @ z1 / (n - 1), eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(z2.T @ z2 / (n - 1), eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(z1.T @ z2 / (n - 1), torch.diag(cca.correlations_), atol=1e-10, rtol=0)
    assert (cca.correlations_[:-1] >= cca.correlations_[1:]).all()
    w1, w2 = cca.weights_
    torch.testing.assert_close(cca.transform(x1t), (x1t - cca.mean1_) @ w1)


def test_cca_is_invariant_to_feature_scaling_and_needs_the_pairing():
    x1, x2 = two_views(n=400, d1=6, d2=5, seed=7)
    base = CCA(3).fit(x1, x2)
    scaled = CCA(3).fit(x1 * np.arange(1, 7) * 10.0, x2 / 7.0)
    torch.testing.assert_close(scaled.correlations_, base.correlations_, rtol=1e-10, atol=0)
    torch.testing.assert_close(scaled.transform(x1 * np.arange(1, 7) * 10.0), base.transform(x1))
    shuffled = CCA(3).fit(x1, x2[np.random.default_rng(1).permutation(400)])
    assert float(shuffled.correlations_[0]) < 0.3 < float(base.correlations_[0])


def test_cca_float32_in_float32_out_and_transform_new_data():
    x1, x2 = two_views(n=300, seed=8)
    cca = CCA(2).fit(torch.from_numpy(x1).float(), torch.from_numpy(x2).float())
    assert cca.correlations_.dtype == torch.float64
    new1 = torch.from_numpy(x1[:10]).float()
    z1, z2 = cca.transform(new1, torch.from_numpy(x2[:10]).float())
    assert z1.dtype == torch.float32 and z2.shape == (10, 2)
    ref = CCA(2).fit(x1, x2)
    torch.testing.assert_close(z1.double(), ref.transform(x1[:10]), atol=1e-4, rtol=1e-4)


def test_cca_singular_covariance_needs_regularisation():
    x1, x2 = two_views(n=20, d1=30, d2=4, seed=9)  # N < d1: C11 has rank <= 19
    with pytest.raises(ValueError, match=r"X1: covariance is singular .* use reg > 0"):
        CCA(2).fit(x1, x2)
    collinear = np.hstack([x2, x2[:, :1] * 2.0])
    with pytest.raises(ValueError, match="X2: covariance is singular"):
        CCA(2).fit(two_views(n=20, d1=3, seed=9)[0], collinear)
    reg = CCA(2, reg=1e-1).fit(x1, x2)
    assert (reg.correlations_ < 1).all() and (reg.correlations_ > 0).all()
    # with N < d and a tiny ridge the first correlation is (almost) 1: the overfitting reg guards against
    assert float(CCA(1, reg=1e-10).fit(x1, x2).correlations_[0]) > 0.999


def test_cca_warns_when_the_views_together_have_more_features_than_samples_allow():
    # N = 20 samples, d1 = 12, d2 = 10: both covariances are invertible (12, 10 <= 19), yet the
    # centred views span 12- and 10-dimensional subspaces of the same 19-dimensional space, so they
    # share at least 12 + 10 - 19 = 3 directions: 3 correlations of 1 even for independent noise.
    rng = np.random.default_rng(12)
    x1, x2 = rng.standard_normal((20, 12)), rng.standard_normal((20, 10))
    with pytest.warns(UserWarning, match=r"N=20 .*d1=12 \+ d2=10 = 22 > N - 1 = 19.*at least 3 .*reg > 0"):
        cca = CCA(5).fit(x1, x2)
    np.testing.assert_allclose(cca.correlations_[:3].numpy(), 1.0, atol=1e-8)  # what the warning says
    np.testing.assert_allclose(sklearn_correlations(x1, x2, 1), 1.0, atol=1e-4)  # scikit-learn overfits alike
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: with a ridge, or with d1 + d2 <= N - 1
        reg = CCA(5, reg=0.1).fit(x1, x2)
        CCA(5).fit(x1[:, :9], x2)  # 9 + 10 = 19 = N - 1
    assert float(reg.correlations_[0]) < 0.999


def test_cca_bad_input():
    x1, x2 = two_views(n=50, d1=4, d2=3)
    with pytest.raises(ValueError, match=r"n_components: expected <= min\(d1, d2\) = 3, got 4"):
        CCA(4).fit(x1, x2)
    with pytest.raises(ValueError, match="same batch size"):
        CCA(2).fit(x1, x2[:-1])
    with pytest.raises(ValueError, match=r"reg: expected a real number in \[0, inf\), got -1.0"):
        CCA(2, reg=-1.0)
    with pytest.raises(TypeError, match="n_components: expected an integer"):
        CCA(2.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        CCA(2).transform(x1)
    cca = CCA(2).fit(x1, x2)
    with pytest.raises(ValueError, match=r"X1: expected 4 features \(as in fit\), got 3"):
        cca.transform(x2)


# --------------------------------------------------------------------------- deep-CCA loss


def test_cca_loss_equals_minus_the_sum_of_cca_correlations():
    x1, x2 = two_views(n=200, d1=6, d2=4, seed=10)
    for k, reg in ((None, 1e-4), (2, 1e-4), (3, 0.5)):
        loss = cca_loss(torch.from_numpy(x1), torch.from_numpy(x2), k=k, reg=reg)
        ref = CCA(4, reg=reg).fit(x1, x2).correlations_[: 4 if k is None else k].sum()
        torch.testing.assert_close(loss, -ref, rtol=1e-10, atol=0)


def test_cca_loss_gradcheck_and_float32():
    gen = torch.Generator().manual_seed(0)
    h1 = torch.randn(12, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    h2 = torch.randn(12, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cca_loss(a, b, k=2, reg=1e-3), (h1, h2))
    assert torch.autograd.gradcheck(lambda a, b: cca_loss(a, b, reg=1e-3), (h1, h2))
    f1 = h1.detach().float().requires_grad_()
    loss = cca_loss(f1, h2.detach().float())
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(f1.grad).all()


def test_cca_loss_bad_input():
    h = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"reg: expected a real number in \(0, inf\), got 0.0"):
        cca_loss(h, h, reg=0.0)
    with pytest.raises(ValueError, match="k: expected an integer >= 1 and <= 3, got 4"):
        cca_loss(h, h, k=4)
    with pytest.raises(ValueError, match="same batch size"):
        cca_loss(h, h[:5])
    with pytest.raises(TypeError, match="torch.Tensor"):
        cca_loss(h.numpy(), h)


def test_pca_matches_scikit_learn_and_fixes_the_sign():
    from sklearn.decomposition import PCA

    from mmedu.subspace import pca
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    mean, axes = pca(x, 3)
    sk = PCA(n_components=3).fit(x.numpy())
    np.testing.assert_allclose(mean.numpy(), sk.mean_, atol=1e-12)
    # the same axes up to sign; ours are signed so the largest |entry| of each is positive
    np.testing.assert_allclose(np.abs(axes.numpy().T), np.abs(sk.components_), atol=1e-9)
    top = axes.gather(0, axes.abs().argmax(0, keepdim=True))
    assert bool((top > 0).all())
    torch.testing.assert_close(axes.T @ axes, torch.eye(3, dtype=torch.float64))
    _, flipped = pca(-x, 3)  # the sign does not follow the data's
    torch.testing.assert_close(flipped, axes)
    with pytest.raises(ValueError, match="k: expected an integer"):
        pca(x, 7)
    with pytest.raises(ValueError, match=r"x: expected a 2-D tensor"):
        pca(x[0], 1)
