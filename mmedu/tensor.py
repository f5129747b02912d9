r"""Tensor algebra and decompositions (chapter 2: tensor fusion).

A tensor :math:`\mathcal{X} \in \mathbb{R}^{I_1 \times \dots \times I_M}` is an
``M``-way array; ``M`` is its *order* and each axis a *mode*.

**Mode-n unfolding.** :func:`unfold` lays the mode-``n`` fibres out as the
columns of a matrix :math:`X_{(n)} \in \mathbb{R}^{I_n \times \prod_{k \ne n} I_k}`.
The convention is tensorly's: ``moveaxis(tensor, n, 0).reshape(I_n, -1)``
(remaining modes in increasing order, the last one varying fastest), so
``mmedu.tensor.unfold`` and ``tensorly.unfold`` return the same matrix.  (Kolda &
Bader 2009 order the columns the other way round; the choice changes no
decomposition, only the column order of Khatri-Rao / Kronecker products.)
:func:`fold` is its inverse.

**n-mode product.** For :math:`U \in \mathbb{R}^{J \times I_n}`,
:math:`\mathcal{Y} = \mathcal{X} \times_n U` multiplies every mode-``n`` fibre
by ``U``: :math:`Y_{(n)} = U X_{(n)}`, so ``Y`` has ``J`` in place of ``I_n``
(:func:`mode_dot`; several modes at once with :func:`multi_mode_dot`).
Products along different modes commute.

**Tucker decomposition.** The source text (§3.1.2) writes

.. math:: \mathcal{X} \approx \mathcal{G} \times_1 U_1 \times_2 U_2 \cdots \times_M U_M ,

i.e. a data tensor ``X`` (for tensor fusion: one mode per modality) is
*decomposed* into a small core :math:`\mathcal{G} \in \mathbb{R}^{R_1 \times
\dots \times R_M}` and one factor matrix :math:`U_m \in \mathbb{R}^{I_m \times R_m}`
per mode (:func:`tucker_to_tensor` evaluates the right-hand side).  With
orthonormal factors the best core for given factors is
:math:`\mathcal{G} = \mathcal{X} \times_1 U_1^\top \cdots \times_M U_M^\top`, and
:math:`\|\mathcal{X} - \hat{\mathcal{X}}\|^2 = \|\mathcal{X}\|^2 - \|\mathcal{G}\|^2`.

* **HOSVD** (:func:`hosvd`, De Lathauwer et al. 2000): :math:`U_n` = the
  :math:`R_n` leading left singular vectors of :math:`X_{(n)}`, then the core as
  above.  One pass, no iterations; quasi-optimal (error at most
  :math:`\sqrt{M}` times the best), exact when ``X`` has multilinear rank
  ``ranks``.  With full ranks the core is *all-orthogonal*: its slices along any
  mode are mutually orthogonal, with norms equal to the mode-n singular values.
* **HOOI** (:func:`tucker`, higher-order orthogonal iteration, De Lathauwer et
  al. 2000b): starting from HOSVD, repeatedly set :math:`U_n` = the leading left
  singular vectors of :math:`Y_{(n)}`, where
  :math:`\mathcal{Y} = \mathcal{X} \times_{k \ne n} U_k^\top` (all other modes
  projected).  Each update is the exact optimum for its factor, so the error
  never increases; it stops when the relative error changes by less than
  ``tol``.

**CP decomposition.** :func:`cp` fits
:math:`\mathcal{X} \approx \sum_{r=1}^R w_r\, a^{(1)}_r \circ \dots \circ a^{(M)}_r`
(a Tucker model with a diagonal core) by alternating least squares and returns
``(weights, factors)`` like tensorly's ``CPTensor``.

Implementation notes (why it is faster than a textbook loop): the leading
left singular vectors of a wide :math:`Y_{(n)}` are the leading eigenvectors of
the small Gram matrix :math:`Y_{(n)} Y_{(n)}^\top` (one GEMM in the input's
dtype, then ``torch.linalg.eigh`` in float64); and one HOOI sweep reuses partial
products (:math:`\mathcal{X} \times_1 U_1^\top` serves every later mode), so it
touches the full tensor twice instead of ``M + 1`` times.  Squaring entries can
underflow or overflow (float32 entries of 1e-22 or 1e30), so :func:`hosvd`,
:func:`tucker` and :func:`cp` first scale the tensor by a power of two to a
largest entry in [0.5, 1) and scale the core or the weights back.  Such a
scaling is exact (no rounding, except for entries below ~1e-38 of the largest
in float32), so their results do not depend on the magnitude of the input:
scaling it by a power of two scales the core or weights by exactly that.

Dtypes: the decompositions return the input's dtype; :func:`mode_dot`,
:func:`multi_mode_dot` and :func:`tucker_to_tensor` promote mixed inputs to
their common dtype (``torch.promote_types``), as NumPy and tensorly do.

References: T. G. Kolda and B. W. Bader, "Tensor Decompositions and
Applications", SIAM Review 51(3), 2009; L. De Lathauwer, B. De Moor and
J. Vandewalle, "A multilinear singular value decomposition" and "On the best
rank-1 and rank-(R1,...,RN) approximation of higher-order tensors", SIAM J.
Matrix Anal. Appl. 21(4), 2000.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from mmedu._checks import as_tensor, check_choice, check_finite, check_positive_int, check_ranks

__all__ = [
    "unfold",
    "fold",
    "mode_dot",
    "multi_mode_dot",
    "hosvd",
    "tucker",
    "tucker_to_tensor",
    "cp",
    "cp_to_tensor",
]


# --------------------------------------------------------------------------- checks
def _check_mode(mode, ndim: int, name: str = "mode") -> int:
    if isinstance(mode, bool) or not isinstance(mode, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(mode).__name__} ({mode!r})")
    mode = int(mode)
    if not 0 <= mode < ndim:
        raise ValueError(f"{name}: expected a mode in [0, {ndim - 1}] for a tensor of order {ndim}, got {mode}")
    return mode


def _check_tensor(tensor, name: str = "tensor", *, min_ndim: int = 1, finite: bool = True) -> torch.Tensor:
    t = as_tensor(tensor, name, floating=True)
    if t.ndim < min_ndim:
        raise ValueError(f"{name}: expected a tensor of order >= {min_ndim}, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {tuple(t.shape)}")
    if finite:
        check_finite(t, name)
    return t


def _check_ranks(ranks, shape: Sequence[int]) -> tuple[int, ...]:
    """``ranks`` as a tuple, one rank per mode with ``1 <= ranks[n] <= shape[n]``."""
    return check_ranks(ranks, tuple(shape), [f"mode of size {d}" for d in shape],
                       per=f"mode of a tensor of shape {tuple(shape)}")


def _check_shape(shape) -> tuple[int, ...]:
    """``shape`` as a tuple of ints; a non-integer entry (6.9, "6", True) is refused, never truncated."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"shape: expected a sequence of ints, got {type(shape).__name__} ({shape!r})")
    shape = tuple(shape)
    for i, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"shape[{i}]: expected an integer size, got {type(s).__name__} ({s!r}) in shape {shape}")
    return tuple(int(s) for s in shape)


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    return float(tol)


# --------------------------------------------------------------------------- algebra
def unfold(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` unfolding (matricization), tensorly's convention.

    tensor: (I_0, ..., I_{M-1}) -> returns (I_mode, prod_{k != mode} I_k), equal to
    ``tensor.moveaxis(mode, 0).reshape(I_mode, -1)``.  A pure rearrangement: NaN/inf pass through.
    """
    t = _check_tensor(tensor, finite=False)
    mode = _check_mode(mode, t.ndim)
    return _unfold(t, mode)


def _unfold(t: torch.Tensor, mode: int) -> torch.Tensor:
    return t.movedim(mode, 0).reshape(t.shape[mode], -1)


def fold(unfolded: torch.Tensor, mode: int, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`unfold`: ``fold(unfold(x, n), n, x.shape) == x``.

    unfolded: (shape[mode], prod_{k != mode} shape[k]) -> returns a tensor of ``shape``.
    """
    u = as_tensor(unfolded, "unfolded", floating=True)
    shape = _check_shape(shape)
    if len(shape) == 0 or any(s < 1 for s in shape):
        raise ValueError(f"shape: expected a non-empty shape of positive sizes, got {shape}")
    mode = _check_mode(mode, len(shape))
    want = (shape[mode], math.prod(shape) // shape[mode])
    if tuple(u.shape) != want:
        raise ValueError(f"unfolded: expected shape {want} for mode {mode} of shape {shape}, got {tuple(u.shape)}")
    moved = (shape[mode],) + shape[:mode] + shape[mode + 1 :]
    return u.reshape(moved).movedim(0, mode)


def _mode_dot(t: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    """``t x_mode matrix`` for checked inputs; returns a contiguous tensor.

    Views ``t`` as (A, I_n, B) so that the product is one (batched) GEMM and no
    unfolding is copied (the product of an unfolding, ``U @ unfold(t, n)``, would copy ``t``).
    """
    shape = t.shape
    a = math.prod(shape[:mode])
    b = math.prod(shape[mode + 1 :])
    t3 = t.reshape(a, shape[mode], b)
    if a == 1:
        out = matrix @ t3[0]
    elif b == 1:
        out = t3[..., 0] @ matrix.T
    else:
        out = torch.matmul(matrix, t3)
    return out.reshape(*shape[:mode], matrix.shape[0], *shape[mode + 1 :])


def mode_dot(tensor: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    """n-mode product ``tensor x_mode matrix``.

    tensor: (I_0, ..., I_mode, ..., I_{M-1}); matrix: (J, I_mode)
    -> returns (I_0, ..., J, ..., I_{M-1}), with ``unfold(out, mode) == matrix @ unfold(tensor, mode)``.
    Same as ``tensorly.tenalg.mode_dot`` for a matrix.  Dtypes are promoted as NumPy and
    tensorly do (``torch.promote_types``): a float32 tensor times a float64 matrix is a
    float64 product, never a float32 one.  The result lies on ``tensor``'s device.
    """
    t = _check_tensor(tensor)
    mode = _check_mode(mode, t.ndim)
    m = _check_matrix(matrix, "matrix", t, mode, transpose=False)
    t, m = _promote(t, m)
    return _mode_dot(t, m, mode)


def _promote(t: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` and ``m`` cast to their common floating dtype (``torch.promote_types``); no copy when equal."""
    dtype = torch.promote_types(t.dtype, m.dtype)
    return t.to(dtype), m.to(dtype)


def _check_matrix(matrix, name: str, t: torch.Tensor, mode: int, *, transpose: bool) -> torch.Tensor:
    m = as_tensor(matrix, name, floating=True)
    if m.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {tuple(m.shape)}")
    check_finite(m, name)
    size = t.shape[mode]
    col = 0 if transpose else 1
    if m.shape[col] != size:
        want = f"({size}, J)" if transpose else f"(J, {size})"
        raise ValueError(
            f"{name}: expected shape {want} to multiply mode {mode} of size {size}"
            f"{' (transpose=True)' if transpose else ''}, got {tuple(m.shape)}"
        )
    return m.to(device=t.device)


def multi_mode_dot(
    tensor: torch.Tensor,
    matrices: Sequence[torch.Tensor],
    modes: Sequence[int] | None = None,
    transpose: bool = False,
) -> torch.Tensor:
    """``tensor x_{modes[0]} matrices[0] x_{modes[1]} matrices[1] ...`` (applied in order).

    tensor: (I_0, ..., I_{M-1}); matrices[i]: (J_i, I_{modes[i]}), or (I_{modes[i]}, J_i)
    with ``transpose=True`` (then ``matrices[i].T`` is used, as in tensorly);
    modes: defaults to ``range(len(matrices))``.
    Dtypes are promoted as in :func:`mode_dot`, one product at a time: the result has the
    common dtype of the tensor and all matrices.
    Example: the Tucker core of orthonormal factors is
    ``multi_mode_dot(x, factors, transpose=True)``.
    """
    t = _check_tensor(tensor)
    return _multi_mode_dot(t, list(matrices), modes, transpose, "matrices")


def _multi_mode_dot(t, matrices, modes, transpose: bool, name: str) -> torch.Tensor:
    modes = list(range(len(matrices))) if modes is None else list(modes)
    if len(modes) != len(matrices):
        raise ValueError(f"modes: expected one mode per matrix ({len(matrices)}), got {len(modes)}")
    for i, (matrix, mode) in enumerate(zip(matrices, modes)):
        mode = _check_mode(mode, t.ndim, f"modes[{i}]")
        m = _check_matrix(matrix, f"{name}[{i}]", t, mode, transpose=transpose)
        t, m = _promote(t, m)  # one product at a time, as tensorly's multi_mode_dot under NumPy
        t = _mode_dot(t, m.T if transpose else m, mode)
    return t


# --------------------------------------------------------------------------- Tucker
def _column_signs(u: torch.Tensor) -> torch.Tensor:
    """Signs (R,) that make the largest-magnitude entry of every column of ``u`` positive.

    Singular vectors are defined up to sign; fixing it makes outputs deterministic.
    """
    idx = u.abs().argmax(dim=0)
    signs = torch.sign(u.gather(0, idx[None, :])[0])
    return torch.where(signs == 0, torch.ones_like(signs), signs)


def _fix_signs(core: torch.Tensor, factors: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Flip factor columns by :func:`_column_signs` and the matching core slices (same Tucker tensor)."""
    out = []
    for n, f in enumerate(factors):
        s = _column_signs(f)
        out.append(f * s)
        core = core * s.reshape((-1,) + (1,) * (core.ndim - n - 1))
    return core, out


def _leading_left_singular_vectors(mat: torch.Tensor, rank: int) -> torch.Tensor:
    """Orthonormal basis of the ``rank`` leading left singular vectors of ``mat: (m, k)`` -> (m, rank).

    Column signs are arbitrary (see :func:`_column_signs`).  For a wide matrix
    the SVD is replaced by the eigendecomposition of the m x m Gram matrix: one
    GEMM in ``mat``'s dtype plus a small ``eigh`` in float64, about 10x cheaper
    than a thin SVD here.  Callers pass a tensor scaled by :func:`_scale_to_unit`
    (largest entry in [0.5, 1)), so the Gram's entries can neither overflow nor
    underflow; in float32 they carry float32 rounding (about 1e-7 of the largest
    squared singular value), so a subspace is accurate when the squared singular
    values at its edge differ by more than that.
    """
    m, k = mat.shape
    if m <= k:
        gram = (mat @ mat.T).to(torch.float64)
        _, vecs = torch.linalg.eigh(gram)  # ascending eigenvalues
        u = vecs[:, -rank:].flip(-1)
    else:
        # Tall: thin SVD costs O(m k^2); when rank > k the column space is
        # completed by an orthonormal basis of its complement.
        u = torch.linalg.svd(mat.to(torch.float64), full_matrices=False)[0][:, :rank]
        if rank > k:
            q = torch.linalg.qr(u, mode="complete")[0]
            u = torch.cat([u, q[:, k:rank]], dim=1)
    return u.to(mat.dtype)


def _scale_to_unit(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(t * 2**-e, e)`` with the largest ``|entry|`` of the result in [0.5, 1); ``e = 0`` for a zero tensor.

    Multiplying by a power of two is exact in floating point (no rounding, unless an entry
    falls below the dtype's smallest normal number, ~1e-38 relative to the largest one in
    float32), so a decomposition of the scaled tensor, scaled back by ``2**e``, is the
    decomposition of ``t``.  What it buys: Gram matrices and squared norms formed inside
    neither overflow (values ~1e30 in float32: 1e60 > 3e38) nor underflow (values ~1e-22:
    1e-44 is below float32's normal range), whatever the scale of the input.
    """
    amax = float(torch.linalg.vector_norm(t, ord=math.inf))
    if amax == 0.0:
        return t, 0
    e = math.frexp(amax)[1]
    return (_times_pow2(t, -e), e) if e else (t, 0)


def _times_pow2(t: torch.Tensor, e: int) -> torch.Tensor:
    """``t * 2**e``, exactly, in steps small enough that every multiplier is finite in ``t``'s dtype."""
    step = math.frexp(torch.finfo(t.dtype).max)[1] // 2  # 64 for float32, 512 for float64
    while e:
        k = max(-step, min(step, e))
        t = t * (2.0**k)
        e -= k
    return t


def _hosvd_factors(t: torch.Tensor, ranks: Sequence[int]) -> list[torch.Tensor]:
    return [_leading_left_singular_vectors(_unfold(t, n), r) for n, r in enumerate(ranks)]


def _project(t: torch.Tensor, factors: Sequence[torch.Tensor], modes: Sequence[int]) -> torch.Tensor:
    """``t x_k factors[k]^T`` over ``modes``, the most shrinking product first (smallest intermediates)."""
    order = sorted(modes, key=lambda k: factors[k].shape[1] / t.shape[k])
    for k in order:
        t = _mode_dot(t, factors[k].T, k)
    return t


def _relative_error_from_core(norm_x: float, core: torch.Tensor) -> float:
    """||X - [[G; U]]|| / ||X|| for orthonormal U: sqrt(||X||^2 - ||G||^2) / ||X|| (tensorly's formula)."""
    if norm_x == 0.0:
        return 0.0
    norm_g = float(torch.linalg.vector_norm(core.to(torch.float64)))
    return math.sqrt(abs(norm_x**2 - norm_g**2)) / norm_x


def hosvd(tensor: torch.Tensor, ranks: int | Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Truncated higher-order SVD.

    tensor: (I_0, ..., I_{M-1}); ranks: one int per mode (or one int for all), 1 <= ranks[n] <= I_n
    -> ``(core, factors)`` with core: (R_0, ..., R_{M-1}) and factors[n]: (I_n, R_n), orthonormal
    columns (the leading left singular vectors of ``unfold(tensor, n)``, each column's
    largest entry made positive).  ``tucker_to_tensor(core, factors)`` approximates ``tensor``.
    Scale-equivariant: the tensor is first scaled exactly by a power of two (largest entry in
    [0.5, 1)) and the core scaled back, so float32 input of any magnitude (1e-22, 1e30) gives
    the same relative error as the same tensor near 1.
    """
    t = _check_tensor(tensor, min_ndim=2)
    ranks = _check_ranks(ranks, t.shape)
    t, e = _scale_to_unit(t)
    factors = _hosvd_factors(t, ranks)
    core, factors = _fix_signs(_project(t, factors, range(t.ndim)), factors)
    return _times_pow2(core, e), factors


def _hooi(
    t: torch.Tensor,
    ranks: tuple[int, ...],
    n_iter_max: int,
    tol: float,
    factors: list[torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor], list[float]]:
    """HOOI sweeps from ``factors``; returns ``(core, factors, relative errors per sweep)``."""
    n_modes = t.ndim
    norm_x = float(torch.linalg.vector_norm(t.to(torch.float64)))
    errors: list[float] = []
    core = _project(t, factors, range(n_modes)) if n_iter_max == 0 else t
    for iteration in range(n_iter_max):
        # left = X x_{k<n} U_k^T with this sweep's new factors; reused by every later mode,
        # so a sweep reads the full tensor twice (X x_1 U_1^T and Y for mode 0).
        left = t
        for n in range(n_modes):
            y = _project(left, factors, range(n + 1, n_modes))
            factors[n] = _leading_left_singular_vectors(_unfold(y, n), ranks[n])
            left = _mode_dot(left, factors[n].T, n)
        core = left
        errors.append(_relative_error_from_core(norm_x, core))
        # Same stopping rule as tensorly's partial_tucker: from the third sweep on,
        # stop when the relative error changed by less than tol (tol=0: never).
        if iteration > 1 and tol and abs(errors[-2] - errors[-1]) < tol:
            break
    return core, factors, errors


def tucker(
    tensor: torch.Tensor,
    ranks: int | Sequence[int],
    n_iter_max: int = 100,
    tol: float = 1e-4,
    init: str = "svd",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Tucker decomposition by higher-order orthogonal iteration (HOOI).

    tensor: (I_0, ..., I_{M-1}); ranks: one int per mode (or one int for all), 1 <= ranks[n] <= I_n
    -> ``(core, factors)``: core (R_0, ..., R_{M-1}), factors[n] (I_n, R_n) with orthonormal
    columns, so that ``tensor ~ tucker_to_tensor(core, factors)`` (the source text's
    X = G x_1 U_1 ... x_M U_M).

    init: ``"svd"`` starts from :func:`hosvd` (deterministic; never worse than HOSVD),
    ``"random"`` from random orthonormal factors drawn with ``generator`` (a
    ``torch.Generator``; its device is used for drawing, the result moves to the input's device).
    n_iter_max: maximum number of sweeps (0 returns the initialisation).
    tol: stop when the relative reconstruction error changes by less than ``tol`` between
    two sweeps (checked from the third sweep on, exactly as tensorly's ``tucker``;
    ``tol=0`` runs all ``n_iter_max`` sweeps).  Defaults match tensorly's.
    Scale-equivariant like :func:`hosvd` (exact power-of-two scaling inside).
    """
    t = _check_tensor(tensor, min_ndim=2)
    ranks = _check_ranks(ranks, t.shape)
    n_iter_max = check_positive_int(n_iter_max, "n_iter_max", minimum=0)
    tol = _check_tol(tol)
    check_choice(init, "init", ["svd", "random"])
    t, e = _scale_to_unit(t)
    if init == "svd":
        factors = _hosvd_factors(t, ranks)
    else:
        factors = [_random_orthonormal(i, r, t, generator) for i, r in zip(t.shape, ranks)]
    core, factors, _ = _hooi(t, ranks, n_iter_max, tol, factors)
    # Signs are fixed once at the end: they do not change the subspaces HOOI iterates on.
    core, factors = _fix_signs(core, factors)
    return _times_pow2(core, e), factors


def _random_orthonormal(rows: int, cols: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    g = torch.randn(rows, cols, generator=generator, device=device, dtype=torch.float64)
    return torch.linalg.qr(g)[0].to(device=like.device, dtype=like.dtype)


def tucker_to_tensor(core: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full tensor ``core x_0 factors[0] x_1 factors[1] ... x_{M-1} factors[M-1]``.

    core: (R_0, ..., R_{M-1}); factors[n]: (I_n, R_n) -> returns (I_0, ..., I_{M-1}), in the common
    dtype of the core and the factors (``torch.promote_types``, as NumPy and tensorly), on the core's device.
    """
    g = _check_tensor(core, "core")
    factors = list(factors)
    if len(factors) != g.ndim:
        raise ValueError(
            f"factors: expected {g.ndim} factors (one per mode of the core {tuple(g.shape)}), got {len(factors)}"
        )
    return _multi_mode_dot(g, factors, None, False, "factors")


# --------------------------------------------------------------------------- CP
def _khatri_rao(mats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Column-wise Kronecker product, row index in C order (matches :func:`unfold`'s columns)."""
    out = mats[0]
    for m in mats[1:]:
        out = (out[:, None, :] * m[None, :, :]).reshape(-1, m.shape[1])
    return out


def cp(
    tensor: torch.Tensor,
    rank: int,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    init: str = "svd",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """CP (CANDECOMP/PARAFAC) decomposition by alternating least squares.

    tensor: (I_0, ..., I_{M-1}); rank: number of rank-one components R >= 1 (may exceed the I_n)
    -> ``(weights, factors)`` like tensorly's ``CPTensor``: weights (R,) >= 0, sorted in
    decreasing order, and factors[n] (I_n, R) with unit-norm columns, so that
    ``tensor ~ sum_r weights[r] * factors[0][:, r] o ... o factors[M-1][:, r]``
    (:func:`cp_to_tensor`).  Components are defined up to the sign of their columns.
    A component the data do not use gets weight 0 and still a unit-norm column (the last
    direction it had): when a least-squares column comes out exactly zero (every component
    of an all-zero tensor; a component orthogonal to the data), its weight is set to 0 and
    its previous unit column kept, so the next update may still revive it.

    init: ``"svd"`` (leading left singular vectors of each unfolding, completed with
    random columns drawn with ``generator`` when R > I_n) or ``"random"``.
    tol: stop when the relative reconstruction error changes by less than ``tol`` between
    two sweeps (tensorly's parafac criterion; ``tol=0`` runs all ``n_iter_max`` sweeps).
    The error is first estimated from the normal equations in float64 arithmetic (no
    reconstruction, as tensorly does); that estimate is off by up to about
    ``100 * eps / error`` (``eps`` of the tensor's dtype: 1.2e-7 in float32), so wherever
    this exceeds ``tol`` — always in float32 at the default ``tol``, below an error of
    about 2e-6 in float64 — the error is measured from the explicit residual instead
    (one reconstruction per sweep, its norm accumulated in float64).  A rounding-level
    repeat of the estimate therefore never stops the sweeps early.
    Scale-equivariant like :func:`hosvd` (exact power-of-two scaling inside).
    """
    t = _check_tensor(tensor, min_ndim=2)
    rank = check_positive_int(rank, "rank")
    n_iter_max = check_positive_int(n_iter_max, "n_iter_max", minimum=0)
    tol = _check_tol(tol)
    check_choice(init, "init", ["svd", "random"])
    t, e = _scale_to_unit(t)

    factors = []
    for n, size in enumerate(t.shape):
        k = min(rank, size) if init == "svd" else 0
        cols = [_leading_left_singular_vectors(_unfold(t, n), k)] if k else []
        if rank > k:
            cols.append(_random_orthonormal(size, rank - k, t, generator) if rank - k <= size
                        else _random_gaussian(size, rank - k, t, generator))
        factors.append(torch.cat(cols, dim=1))

    weights = torch.ones(rank, dtype=t.dtype, device=t.device)
    norm_x = float(torch.linalg.vector_norm(t, dtype=torch.float64))
    rounding = _CP_ESTIMATE_ROUNDING * torch.finfo(t.dtype).eps  # on the squared relative error
    grams = [f.T @ f for f in factors]
    prev_error = None
    for _ in range(n_iter_max):
        for n in range(t.ndim):
            others = [k for k in range(t.ndim) if k != n]
            v = torch.ones_like(grams[0])
            for k in others:
                v = v * grams[k]
            kr = _khatri_rao([factors[k] for k in others])
            x_n = _unfold(t, n)
            mttkrp = x_n @ kr
            a = mttkrp @ torch.linalg.pinv(v, hermitian=True)
            # Normalise columns into weights (Kolda & Bader's CP-ALS) to keep scales bounded;
            # a column that is exactly zero keeps its previous unit-norm direction, with weight 0.
            weights = torch.linalg.vector_norm(a, dim=0)
            used = weights > 0
            factors[n] = torch.where(used, a / torch.where(used, weights, torch.ones_like(weights)), factors[n])
            grams[n] = factors[n].T @ factors[n]
        if not tol:
            continue
        error = _cp_relative_error(x_n, kr, mttkrp, v, grams[-1], factors[-1], weights, norm_x, rounding, tol)
        if prev_error is not None and abs(prev_error - error) < tol:
            break
        prev_error = error

    # Final normalisation of every factor into the weights (a no-op up to rounding: the columns
    # are unit-norm already), largest component first, then the scale of the input restored.
    for n in range(t.ndim):
        norms = torch.linalg.vector_norm(factors[n], dim=0)
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))
        factors[n] = factors[n] / norms
        weights = weights * norms
    order = torch.argsort(weights, descending=True)
    return _times_pow2(weights[order], e), [f[:, order] for f in factors]


# Observed |estimate - explicit| of the squared relative error stays below ~10 eps (float32 and
# float64, shapes up to 30^3, ranks 3-5, noise 0-10 %); 100 leaves a margin.
_CP_ESTIMATE_ROUNDING = 100.0


def _cp_relative_error(x_n, kr, mttkrp, v, gram_n, factor_n, weights, norm_x: float, rounding: float,
                       tol: float) -> float:
    """||X - X^|| / ||X|| after a CP-ALS sweep whose last update was mode n (``x_n`` = its unfolding).

    First the normal-equation estimate ||X||^2 - 2 <X, X^> + ||X^||^2 (``<X, X^>`` from the last
    MTTKRP, ``||X^||^2`` from the Gram matrices), in float64 arithmetic; its squared value is
    off by up to ``rounding`` (relative), i.e. the error itself by up to about
    ``rounding / error``.  Where that exceeds ``tol`` the estimate cannot decide convergence,
    and the error is measured from the residual ``x_n - A_n diag(w) KR^T`` instead.
    """
    if norm_x == 0.0:
        return 0.0
    w = weights.to(torch.float64)
    inner = float(w @ (mttkrp.to(torch.float64) * factor_n.to(torch.float64)).sum(0))
    norm_hat2 = float(w @ (v.to(torch.float64) * gram_n.to(torch.float64)) @ w)
    error = math.sqrt(abs(norm_x**2 - 2 * inner + norm_hat2)) / norm_x
    if rounding > tol * error:
        residual = x_n - (factor_n * weights) @ kr.T
        error = float(torch.linalg.vector_norm(residual, dtype=torch.float64)) / norm_x
    return error


def _random_gaussian(rows: int, cols: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    g = torch.randn(rows, cols, generator=generator, device=device, dtype=torch.float64)
    return (g / torch.linalg.vector_norm(g, dim=0)).to(device=like.device, dtype=like.dtype)


def cp_to_tensor(weights: torch.Tensor | None, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full tensor ``sum_r weights[r] * factors[0][:, r] o ... o factors[M-1][:, r]``.

    weights: (R,) or None (all ones); factors[n]: (I_n, R) -> returns (I_0, ..., I_{M-1}).
    Same as ``tensorly.cp_to_tensor((weights, factors))``.
    """
    factors = [as_tensor(f, f"factors[{n}]", floating=True) for n, f in enumerate(factors)]
    if not factors:
        raise ValueError("factors: expected at least one factor matrix, got none")
    for n, f in enumerate(factors):
        if f.ndim != 2:
            raise ValueError(f"factors[{n}]: expected a 2-D (I_{n}, R) matrix, got shape {tuple(f.shape)}")
        check_finite(f, f"factors[{n}]")
    rank = factors[0].shape[1]
    bad = [(n, tuple(f.shape)) for n, f in enumerate(factors) if f.shape[1] != rank]
    if bad:
        raise ValueError(f"factors: expected every factor to have R={rank} columns, got {bad}")
    ref = factors[0]
    factors = [f.to(device=ref.device, dtype=ref.dtype) for f in factors]
    if weights is None:
        w = torch.ones(rank, dtype=ref.dtype, device=ref.device)
    else:
        w = as_tensor(weights, "weights", floating=True).to(device=ref.device, dtype=ref.dtype)
        if tuple(w.shape) != (rank,):
            raise ValueError(f"weights: expected shape ({rank},) to match the factors' R, got {tuple(w.shape)}")
        check_finite(w, "weights")
    shape = tuple(f.shape[0] for f in factors)
    flat = (factors[0] * w) @ _khatri_rao(factors[1:]).T if len(factors) > 1 else factors[0] @ w
    return flat.reshape(shape)
