r"""Shared subspaces of two modalities: the source text's orthogonal projection, CCA, deep-CCA loss.

**Layout.**  mmedu is batch-first: a view is ``X: (N, d)``, one sample per row.
The source text writes :math:`X \in \mathbb{R}^{d \times N}` (one sample per
column), so its :math:`X X^\top` is our ``X.T @ X`` and its
:math:`W^\top X` is our ``X @ W``.  All formulas below use the source's layout;
the code uses ours.

**Orthogonal projection (source text §3.1.3).**  With orthonormal
:math:`W_1, W_2 \in \mathbb{R}^{d \times k}`,

.. math::

    \min_{W_1^\top W_1 = W_2^\top W_2 = I}\;
    \|X_1 - W_1W_1^\top X_1\|_F^2 + \|X_2 - W_2W_2^\top X_2\|_F^2
    - \lambda \|W_1^\top W_2\|_F^2 .

Because :math:`W^\top W = I`, :math:`\|X - WW^\top X\|_F^2 = \|X\|_F^2 -
\operatorname{tr}(W^\top C W)` with :math:`C = XX^\top`, so the objective is
:math:`-\operatorname{tr}(W_1^\top C_1W_1) - \operatorname{tr}(W_2^\top C_2W_2)
- \lambda\|W_1^\top W_2\|_F^2` plus a constant.  It is not jointly convex, but
for fixed :math:`W_2` it equals :math:`-\operatorname{tr}(W_1^\top (C_1 +
\lambda W_2W_2^\top) W_1)` + const, which the top-:math:`k` eigenvectors of
:math:`C_1 + \lambda W_2W_2^\top` minimise (Ky Fan).  Alternating the two
eigen-updates from the PCA solution therefore never increases the objective
(:func:`orthogonal_projection`).  Its flaws: it needs :math:`d_1 = d_2`, its
:math:`\lambda` is not scale-free (the reconstruction terms grow with
:math:`N`, the coupling term does not), and it only sees :math:`C_1` and
:math:`C_2` — never *which* :math:`x_1` goes with which :math:`x_2` — so it
cannot learn a cross-modal correspondence.

**CCA** (Hotelling 1936) uses the pairing.  With centred views and covariances
:math:`C_{11}, C_{22}, C_{12}` it finds :math:`w_1, w_2` maximising
:math:`\operatorname{corr}(w_1^\top x_1, w_2^\top x_2)`.  Whitening each view
(:math:`\tilde x_i = C_{ii}^{-1/2} x_i`) turns this into the SVD of the whitened
cross-covariance

.. math:: T = C_{11}^{-1/2} C_{12} C_{22}^{-1/2} = U \Sigma V^\top,

whose singular values are the canonical correlations; the projections are
:math:`W_1 = C_{11}^{-1/2}U_{:k}`, :math:`W_2 = C_{22}^{-1/2}V_{:k}`.  The
projected training views have identity covariance and a diagonal
cross-covariance :math:`\Sigma_{:k}` (:class:`CCA`).  With fewer samples than
features :math:`C_{ii}` is singular and every direction reaches correlation 1;
ridge regularisation :math:`C_{ii} + rI` fixes that.  Even with both covariances
invertible, :math:`d_1 + d_2 > N - 1` forces at least :math:`d_1 + d_2 - (N - 1)`
correlations to be exactly 1: the centred views span subspaces of dimensions
:math:`d_1` and :math:`d_2` of the same :math:`(N-1)`-dimensional space, which
must then intersect (:class:`CCA` warns in that case when ``reg = 0``).

**Deep CCA** (Andrew et al. 2013) trains two networks so that the sum of the
canonical correlations of their outputs is maximal; :func:`cca_loss` is that
sum, negated, and differentiable.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

from ._checks import as_tensor, check_finite, check_ndim, check_positive_int, check_same_batch, check_scalar

__all__ = ["pca", "OrthogonalProjectionResult", "orthogonal_projection", "CCA", "cca_loss"]


def _view(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name, floating=True)
    check_ndim(t, name, 2, "(N, d)")
    check_finite(t, name)
    return t


def _top_eigvecs(a: torch.Tensor, k: int) -> torch.Tensor:
    """Top-``k`` eigenvectors (columns, largest first) of a symmetric matrix."""
    _, vecs = torch.linalg.eigh(a)
    return vecs[:, -k:].flip(1)


# --------------------------------------------------------------------------- orthogonal projection


class OrthogonalProjectionResult(NamedTuple):
    """Result of :func:`orthogonal_projection` (unpacks as ``W1, W2, history, converged``).

    Attributes:
        W1: (d, k) orthonormal basis for view 1 (project with ``X1 @ W1``).
        W2: (d, k) orthonormal basis for view 2.
        history: (T + 1,) float64 objective values: the PCA start, then one per
            sweep (a W1 update followed by a W2 update); non-increasing.
        converged: whether the last decrease fell below ``tol``.
    """

    W1: torch.Tensor
    W2: torch.Tensor
    history: torch.Tensor
    converged: bool


def orthogonal_projection(
    X1: torch.Tensor | np.ndarray,
    X2: torch.Tensor | np.ndarray,
    k: int,
    lam: float,
    *,
    center: bool = False,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> OrthogonalProjectionResult:
    r"""Solve the source text's coupled-PCA objective by alternating eigen-updates.

    Minimises (batch-first layout, ``C_i = X_i.T @ X_i``)
    ``||X1 - X1 W1 W1^T||_F^2 + ||X2 - X2 W2 W2^T||_F^2 - lam * ||W1^T W2||_F^2``
    over orthonormal ``W1, W2: (d, k)``.  Starting from PCA (``lam = 0``), each
    sweep sets ``W1`` to the top-k eigenvectors of ``C1 + lam W2 W2^T`` and then
    ``W2`` to those of ``C2 + lam W1 W1^T``; each update minimises the objective
    over one block with the other fixed, so the history is non-increasing.  The
    problem is non-convex jointly: this finds a stationary point near PCA, not
    necessarily the global minimum.

    Flaws, on purpose visible here:

    * it needs the same feature size in both views (``ValueError`` otherwise)
      — ``W1^T W2`` compares coordinates of two different feature spaces as
      if they were the same;
    * it depends on the data only through ``C1`` and ``C2``: shuffling the rows
      of ``X2`` (destroying every pair) gives the same result, and ``X1`` and
      ``X2`` need not even have the same number of rows — it cannot learn
      which ``x1`` corresponds to which ``x2``;
    * ``lam`` is not scale-free: the reconstruction terms grow with ``N`` and
      the scale of ``X``, the coupling term (at most ``k``) does not.

    Args:
        X1: (N1, d) view 1, one sample per row (the source's ``X1.T``).
        X2: (N2, d) view 2.
        k: subspace dimension, ``1 <= k <= d``.
        lam: coupling weight λ (λ > 0 pulls the two subspaces together).
        center: subtract each view's mean first (the source does not).
        max_iter: maximum number of sweeps.
        tol: stop when a sweep lowers the objective by less than
            ``tol * max(1, |objective|)``.

    Returns:
        :class:`OrthogonalProjectionResult` ``(W1, W2, history, converged)``;
        ``W1``, ``W2`` in the inputs' dtype, computed in float64.
    """
    x1, x2 = _view(X1, "X1"), _view(X2, "X2")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"X1 and X2: the orthogonal-projection objective compares W1 and W2 coordinate by coordinate, "
            f"so it needs equal feature sizes; got d1={x1.shape[1]}, d2={x2.shape[1]} (use CCA instead)"
        )
    if x1.device != x2.device:
        raise ValueError(f"X1 and X2: expected the same device, got {x1.device} and {x2.device}")
    d = x1.shape[1]
    k = check_positive_int(k, "k", maximum=d)
    lam = check_scalar(lam, "lam")
    max_iter = check_positive_int(max_iter, "max_iter")
    out_dtype = torch.promote_types(x1.dtype, x2.dtype)
    x1, x2 = x1.double(), x2.double()
    if center:
        x1, x2 = x1 - x1.mean(0), x2 - x2.mean(0)
    c1, c2 = x1.T @ x1, x2.T @ x2
    const = torch.trace(c1) + torch.trace(c2)  # = ||X1||_F^2 + ||X2||_F^2

    def objective(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        fit = torch.trace(w1.T @ c1 @ w1) + torch.trace(w2.T @ c2 @ w2)
        return const - fit - lam * (w1.T @ w2).pow(2).sum()

    w1, w2 = _top_eigvecs(c1, k), _top_eigvecs(c2, k)  # PCA of each view
    history = [objective(w1, w2)]
    converged = False
    for _ in range(max_iter):
        w1 = _top_eigvecs(c1 + lam * (w2 @ w2.T), k)
        w2 = _top_eigvecs(c2 + lam * (w1 @ w1.T), k)
        history.append(objective(w1, w2))
        if float(history[-2] - history[-1]) <= tol * max(1.0, abs(float(history[-1]))):
            converged = True
            break
    return OrthogonalProjectionResult(w1.to(out_dtype), w2.to(out_dtype), torch.stack(history), converged)


# --------------------------------------------------------------------------- CCA


def _inv_sqrt(cov: torch.Tensor, name: str, reg: float) -> torch.Tensor:
    """Symmetric inverse square root of a covariance, refusing a singular one."""
    evals, evecs = torch.linalg.eigh(cov)
    d = cov.shape[0]
    floor = float(evals[-1].clamp_min(0)) * d * torch.finfo(cov.dtype).eps
    if float(evals[0]) <= floor:
        rank = int((evals > floor).sum())
        hint = "increase reg" if reg > 0 else "use reg > 0 (ridge-regularised CCA)"
        raise ValueError(
            f"{name}: covariance is singular (numerical rank {rank} < {d} features; "
            f"e.g. fewer samples than features or collinear features); {hint}"
        )
    return (evecs * evals.rsqrt()) @ evecs.T


class CCA:
    r"""Canonical correlation analysis in closed form (whitening + SVD), float64 inside.

    ``fit`` centres each view, forms ``C11 + reg I``, ``C22 + reg I`` and ``C12``
    (divided by ``N - 1``), whitens with the symmetric inverse square roots
    (eigendecomposition) and takes the SVD of
    ``T = (C11 + reg I)^{-1/2} C12 (C22 + reg I)^{-1/2}``.

    With ``reg = 0`` the projected training views satisfy
    ``Z1.T @ Z1 / (N-1) = I``, ``Z2.T @ Z2 / (N-1) = I`` and
    ``Z1.T @ Z2 / (N-1) = diag(correlations_)``.  With ``reg > 0`` (needed when
    a covariance is singular, e.g. ``N <= d``) ``correlations_`` are the
    singular values of the regularised ``T``: shrunk towards 0 and no longer
    exactly the correlations of the projections.  With ``reg = 0`` and
    ``d1 + d2 > N - 1`` (both covariances invertible, yet too few samples for
    the two views together) at least ``d1 + d2 - (N - 1)`` correlations are 1
    whatever the data; ``fit`` then emits a ``UserWarning`` suggesting
    ``reg > 0``.  Signs: each pair of
    directions is flipped so that the largest-magnitude entry of
    ``weights1_[:, i]`` is positive.

    Args:
        n_components: k, number of canonical pairs (``<= min(d1, d2)``).
        reg: ridge ``r >= 0`` added to each view's covariance diagonal.

    Attributes:
        mean1_: ``(d1,)`` training mean of view 1 (float64), set by ``fit``.
        mean2_: ``(d2,)`` training mean of view 2 (float64).
        weights1_: ``(d1, k)`` projection of view 1, ``Z1 = (X1 - mean1_) @ weights1_``.
        weights2_: ``(d2, k)`` projection of view 2.
        weights_: the tuple ``(weights1_, weights2_)``.
        correlations_: ``(k,)`` canonical correlations, descending.
    """

    def __init__(self, n_components: int, reg: float = 0.0) -> None:
        self.n_components = check_positive_int(n_components, "n_components")
        self.reg = check_scalar(reg, "reg", ge=0)

    @property
    def weights_(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        return self.weights1_, self.weights2_

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights1_"):
            raise RuntimeError("this CCA is not fitted yet: call fit(X1, X2) first")

    def fit(self, X1: torch.Tensor | np.ndarray, X2: torch.Tensor | np.ndarray) -> "CCA":
        """Fit on paired views ``X1: (N, d1)``, ``X2: (N, d2)`` (row i of each is one pair)."""
        x1, x2 = _view(X1, "X1"), _view(X2, "X2")
        n = check_same_batch([x1, x2], ["X1", "X2"])
        if x1.device != x2.device:
            raise ValueError(f"X1 and X2: expected the same device, got {x1.device} and {x2.device}")
        if n < 2:
            raise ValueError(f"X1, X2: expected at least 2 samples, got {n}")
        d1, d2 = x1.shape[1], x2.shape[1]
        k = self.n_components
        if k > min(d1, d2):
            raise ValueError(f"n_components: expected <= min(d1, d2) = {min(d1, d2)}, got {k}")
        x1, x2 = x1.double(), x2.double()
        mean1, mean2 = x1.mean(0), x2.mean(0)
        x1, x2 = x1 - mean1, x2 - mean2
        eye1 = torch.eye(d1, dtype=x1.dtype, device=x1.device)
        eye2 = torch.eye(d2, dtype=x1.dtype, device=x1.device)
        c11 = x1.T @ x1 / (n - 1) + self.reg * eye1
        c22 = x2.T @ x2 / (n - 1) + self.reg * eye2
        c12 = x1.T @ x2 / (n - 1)
        s1, s2 = _inv_sqrt(c11, "X1", self.reg), _inv_sqrt(c22, "X2", self.reg)
        if self.reg == 0 and d1 + d2 > n - 1:
            warnings.warn(
                f"CCA(reg=0) on N={n} samples with d1={d1} + d2={d2} = {d1 + d2} > N - 1 = {n - 1}: the centred "
                f"views span {d1}- and {d2}-dimensional subspaces of the same {n - 1}-dimensional space, so at least "
                f"{d1 + d2 - (n - 1)} canonical correlations are exactly 1 whatever the data (overfitting, not "
                f"shared signal); use reg > 0 (ridge-regularised CCA), fewer features or more samples",
                UserWarning,
                stacklevel=2,
            )
        u, sv, vh = torch.linalg.svd(s1 @ c12 @ s2, full_matrices=False)
        w1, w2 = s1 @ u[:, :k], s2 @ vh[:k].T
        # deterministic signs (SVD is unique only up to flipping u_i and v_i together)
        sign = torch.sign(w1.gather(0, w1.abs().argmax(0, keepdim=True)))
        sign[sign == 0] = 1
        self.mean1_, self.mean2_ = mean1, mean2
        self.weights1_, self.weights2_ = w1 * sign, w2 * sign
        self.correlations_ = sv[:k]
        return self

    def _project(self, x, name: str, mean: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        t = _view(x, name)
        if t.shape[1] != w.shape[0]:
            raise ValueError(f"{name}: expected {w.shape[0]} features (as in fit), got {t.shape[1]}")
        return ((t.to(w.device, torch.float64) - mean) @ w).to(t.dtype)

    def transform(self, X1: torch.Tensor | np.ndarray,
                  X2: torch.Tensor | np.ndarray | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Project ``X1: (N, d1)`` (and ``X2: (M, d2)``) to ``(N, k)`` (and ``(M, k)``).

        Returns ``Z1`` alone when ``X2`` is None, else ``(Z1, Z2)``; outputs keep
        the inputs' floating dtype and lie on the fitted device.
        """
        self._check_fitted()
        z1 = self._project(X1, "X1", self.mean1_, self.weights1_)
        if X2 is None:
            return z1
        return z1, self._project(X2, "X2", self.mean2_, self.weights2_)

    def fit_transform(self, X1: torch.Tensor | np.ndarray,
                      X2: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``fit(X1, X2)`` then ``transform(X1, X2)``."""
        return self.fit(X1, X2).transform(X1, X2)

    def __repr__(self) -> str:
        return f"CCA(n_components={self.n_components}, reg={self.reg})"


# --------------------------------------------------------------------------- deep CCA loss


def cca_loss(h1: torch.Tensor, h2: torch.Tensor, k: int | None = None, reg: float = 1e-4) -> torch.Tensor:
    r"""Deep-CCA loss: minus the sum of the top-``k`` canonical correlations of ``h1``, ``h2``.

    Same correlations as :class:`CCA` with ``reg`` (regularised covariances
    ``C_ii + reg I``, divided by ``N - 1``), but differentiable: each view is
    whitened with the inverse of its Cholesky factor ``L_i`` (``L_i^{-1} C_ii
    L_i^{-T} = I``, a rotation away from ``C_ii^{-1/2}``, so the singular values
    are the same) and the correlations are the singular values of
    ``L_1^{-1} C_12 L_2^{-T}``.  Unlike a gradient through an eigendecomposition,
    neither step divides by eigenvalue gaps.  Computed in float64, returned
    in the inputs' dtype.

    Args:
        h1: (N, d1) outputs of the first network for a batch of pairs.
        h2: (N, d2) outputs of the second network (row i pairs with row i of h1).
        k: number of correlations summed (``<= min(d1, d2)``); None = all.
        reg: ridge ``> 0`` on each covariance (keeps the Cholesky defined for N <= d).

    Returns:
        Scalar tensor ``-sum_{i<=k} rho_i`` (between ``-k`` and 0 for ``reg -> 0``).
    """
    if not isinstance(h1, torch.Tensor) or not isinstance(h2, torch.Tensor):
        raise TypeError("h1, h2: expected torch.Tensor inputs (the loss is meant for autograd)")
    for t, name in ((h1, "h1"), (h2, "h2")):
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        check_ndim(t, name, 2, "(N, d)")
    n = check_same_batch([h1, h2], ["h1", "h2"])
    if n < 2:
        raise ValueError(f"h1, h2: expected at least 2 samples, got {n}")
    reg = check_scalar(reg, "reg", gt=0)
    d1, d2 = h1.shape[1], h2.shape[1]
    k = min(d1, d2) if k is None else check_positive_int(k, "k", maximum=min(d1, d2))
    out_dtype = torch.promote_types(h1.dtype, h2.dtype)
    a, b = h1.double(), h2.double()
    a, b = a - a.mean(0), b - b.mean(0)
    c11 = a.T @ a / (n - 1) + reg * torch.eye(d1, dtype=a.dtype, device=a.device)
    c22 = b.T @ b / (n - 1) + reg * torch.eye(d2, dtype=a.dtype, device=a.device)
    c12 = a.T @ b / (n - 1)
    l1, l2 = torch.linalg.cholesky(c11), torch.linalg.cholesky(c22)
    t = torch.linalg.solve_triangular(l1, c12, upper=False)  # L1^{-1} C12
    t = torch.linalg.solve_triangular(l2, t.T, upper=False).T  # ... L2^{-T}
    corr = torch.linalg.svdvals(t)
    return -corr[:k].sum().to(out_dtype)


def pca(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal component analysis of the rows of ``x``: their mean and the top-``k`` axes.

    The axes are the leading right singular vectors of the centred data (the eigenvectors of
    its covariance with the largest eigenvalues), each signed so that its entry of largest
    magnitude is positive — a fixed choice, so two runs (and two machines) agree on the sign.
    Project with ``(x - mean) @ axes``.

    Args:
        x: ``(N, D)`` floating-point data, one sample per row, finite.
        k: the number of axes, ``1 <= k <= min(N, D)``.

    Returns:
        ``mean: (D,)`` and ``axes: (D, k)`` with orthonormal columns, in decreasing order of
        the variance they explain.
    """
    x = _view(x, "x")
    k = check_positive_int(k, "k", maximum=min(x.shape))
    mean = x.mean(0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    axes = vh[:k].T
    return mean, axes * torch.sign(axes.gather(0, axes.abs().argmax(0, keepdim=True)))
