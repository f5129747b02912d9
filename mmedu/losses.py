r"""Contrastive losses for paired embeddings: symmetric InfoNCE (CLIP) and VSE++'s hinge.

Both take a batch of :math:`B` pairs, ``a: (B, D)`` (e.g. images) and ``b: (B, D)`` (their
captions): row :math:`i` of ``a`` and row :math:`i` of ``b`` are a positive pair, and every
other row of the batch serves as a negative (*in-batch negatives*).  Both compare cosine
similarities :math:`s_{ij} = \hat{\boldsymbol{a}}_i^{\top}\hat{\boldsymbol{b}}_j` of the
unit-length rows.

* :func:`info_nce` (Oord et al. 2018; CLIP, Radford et al. 2021): cross-entropy of picking
  the right partner among the :math:`B` candidates, in both directions,

  .. math::

      \mathcal{L} = \frac{1}{2B}\sum_i \Big[-\log\frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ij}/\tau}}
                   - \log\frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ji}/\tau}}\Big].

  **Learned temperature.**  ``temperature`` may be a float or a 0-d tensor that carries a
  gradient.  The caller owns the parameter, e.g. CLIP's
  ``log_tau = nn.Parameter(torch.tensor(0.07).log())`` passed as ``log_tau.exp()`` (a
  log-parametrisation keeps :math:`\tau > 0`; CLIP also clamps :math:`1/\tau \le 100`).  This
  function only checks that the value is positive and finite.

* :func:`vse_hinge` (VSE++, Faghri et al. 2018): a hinge with margin :math:`m` for each
  positive pair against its negatives, in both directions.  ``hardest=True`` keeps only the
  hardest negative of each positive (max of hinges),

  .. math::

      \mathcal{L} = \frac{1}{B}\sum_i \Big[\max_{j \ne i}[m - s_{ii} + s_{ij}]_+
                   + \max_{j \ne i}[m - s_{ii} + s_{ji}]_+\Big],

  ``hardest=False`` sums the hinges over all negatives (the older VSE objective).
  ``reduction="sum"`` returns the sum over the batch as in VSE++'s code instead of the mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import as_tensor, check_bool, check_choice, check_finite, check_ndim, check_scalar

__all__ = ["similarity_matrix", "info_nce", "vse_hinge"]


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a = as_tensor(a, "a", floating=True)
    b = as_tensor(b, "b", floating=True)
    check_ndim(a, "a", 2, "(B, D)")
    check_ndim(b, "b", 2, "(B, D)")
    if a.shape != b.shape:
        raise ValueError(f"a and b: expected the same shape (B, D) (row i of a pairs with row i of b), "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise ValueError(f"a: expected a batch of at least 2 pairs (negatives come from the batch), got {a.shape[0]}")
    if a.shape[1] == 0:
        raise ValueError(f"a: expected at least one feature, got shape {tuple(a.shape)}")
    check_finite(a, "a")
    check_finite(b, "b")
    return a, b.to(device=a.device, dtype=torch.promote_types(a.dtype, b.dtype))


def similarity_matrix(a, b) -> torch.Tensor:
    """Cosine similarities ``(B, B)`` of the rows of ``a: (B, D)`` and ``b: (B, D)`` (differentiable)."""
    a, b = _pair(a, b)
    return F.normalize(a.to(b.dtype), dim=1) @ F.normalize(b, dim=1).T


def _temperature(temperature, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(temperature, torch.Tensor):  # possibly learnable: keep the graph
        if temperature.numel() != 1:
            raise ValueError(f"temperature: expected a scalar, got shape {tuple(temperature.shape)}")
        value = float(temperature.detach())
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"temperature: expected a real number in (0, inf), got {value}")
        return temperature.reshape(()).to(like.device)
    return check_scalar(temperature, "temperature", gt=0)


def info_nce(a, b, temperature=0.07) -> torch.Tensor:
    r"""Symmetric InfoNCE (CLIP) loss of paired rows ``a: (B, D)``, ``b: (B, D)``.

    Args:
        a, b: the two modalities' embeddings; row ``i`` of each is pair ``i`` (B >= 2).
        temperature: :math:`\tau > 0`, a number (NumPy scalars too) or a 0-d tensor (learnable: pass e.g.
            ``log_tau.exp()`` of your own ``nn.Parameter``; the gradient reaches it).

    Returns:
        A scalar: the mean of the image→text and text→image cross-entropies over the batch.
    """
    s = similarity_matrix(a, b)
    logits = s / _temperature(temperature, s)
    target = torch.arange(s.shape[0], device=s.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def vse_hinge(a, b, margin: float = 0.2, hardest: bool = True, reduction: str = "mean") -> torch.Tensor:
    r"""VSE++ hinge loss of paired rows ``a: (B, D)``, ``b: (B, D)``, both directions.

    Args:
        a, b: the two modalities' embeddings; row ``i`` of each is pair ``i`` (B >= 2).
        margin: :math:`m \ge 0`.
        hardest: ``True`` — each positive's hardest negative only (VSE++); ``False`` — the
            hinges summed over all :math:`B - 1` negatives.
        reduction: ``"mean"`` over the :math:`B` positives (default) or ``"sum"``.

    Returns:
        A scalar >= 0.
    """
    margin = check_scalar(margin, "margin", ge=0)
    hardest = check_bool(hardest, "hardest")
    check_choice(reduction, "reduction", ["mean", "sum"])
    s = similarity_matrix(a, b)
    pos = s.diagonal()
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    cost_b = (margin - pos[:, None] + s).clamp_min(0).masked_fill(eye, 0)  # a_i against b_j, j != i
    cost_a = (margin - pos[None, :] + s).clamp_min(0).masked_fill(eye, 0)  # b_j against a_i, i != j
    if hardest:
        per_pair = cost_b.amax(dim=1) + cost_a.amax(dim=0)
    else:
        per_pair = cost_b.sum(dim=1) + cost_a.sum(dim=0)
    return per_pair.mean() if reduction == "mean" else per_pair.sum()
