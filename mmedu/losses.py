r"""Contrastive and triplet losses for paired embeddings: symmetric InfoNCE (CLIP) and VSE++'s hinge.

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

  **Class-level positives** (``labels=``): with integer labels ``y: (B,)``, every pair
  :math:`(i, j)` with :math:`y_i = y_j` is a positive and only items of *other* classes are
  negatives.  Each positive pair is hinged in both directions, :math:`[m - s_{ij} + s_{ik}]_+`
  for :math:`\boldsymbol{a}_i` and :math:`[m - s_{ij} + s_{kj}]_+` for :math:`\boldsymbol{b}_j`
  over the negatives :math:`k` (:math:`y_k \ne y_i`) — the hardest one, or all of them summed
  with ``hardest=False`` — and the mean runs over the positive pairs.  With all labels
  distinct this is the instance-level loss above.

  **ACMR's triplet loss** (Wang et al. 2017; :class:`mmedu.adversarial.ACMR`) averages these
  hinges over the triplets of each direction, then over the two directions, instead of summing:
  at the instance level it is ``vse_hinge(a, b, m, hardest=False) / (2 * (B - 1))`` (the mean
  over all :math:`2B(B-1)` (positive, negative) pairs), at the class level
  ``vse_hinge(a, b, m, labels=y) / 2``.

Both losses compare rows through :func:`mmedu.metrics.cosine_similarity`, the package's one
cosine: a zero row scores 0 against every row (and receives a finite gradient).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import as_tensor, check_bool, check_choice, check_finite, check_ndim, check_scalar
from .metrics import cosine_similarity

__all__ = ["info_nce", "vse_hinge"]

_CHUNK_ELEMENTS = 2**22  # hinge terms held at once by vse_hinge(labels=..., hardest=False)


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


def _similarity(a, b) -> torch.Tensor:
    """The (B, B) cosine matrix of a validated pair (see :func:`mmedu.metrics.cosine_similarity`)."""
    a, b = _pair(a, b)
    return cosine_similarity(a.to(b.dtype), b)


def _temperature(temperature, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(temperature, torch.Tensor):  # possibly learnable: keep the graph
        if temperature.numel() != 1:
            raise ValueError(f"temperature: expected a scalar, got shape {tuple(temperature.shape)}")
        value = float(temperature.detach())
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"temperature: expected a real number in (0, inf), got {value}")
        return temperature.reshape(()).to(like.device)
    return check_scalar(temperature, "temperature", gt=0)


def _same_class(labels, n: int, device: torch.device) -> torch.Tensor:
    """``(B, B)`` boolean: ``labels[i] == labels[j]`` (the class-level positives)."""
    y = as_tensor(labels, "labels")
    check_ndim(y, "labels", 1, f"({n},)")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class labels, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"labels: expected {n} labels (one per row of a and b), got {y.shape[0]}")
    y = y.to(device)
    return y[:, None] == y[None, :]


def info_nce(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray,
             temperature: float | torch.Tensor = 0.07) -> torch.Tensor:
    r"""Symmetric InfoNCE (CLIP) loss of paired rows ``a: (B, D)``, ``b: (B, D)``.

    Args:
        a, b: the two modalities' embeddings; row ``i`` of each is pair ``i`` (B >= 2).
        temperature: :math:`\tau > 0`, a number (NumPy scalars too) or a 0-d tensor (learnable: pass e.g.
            ``log_tau.exp()`` of your own ``nn.Parameter``; the gradient reaches it).

    Returns:
        A scalar: the mean of the image→text and text→image cross-entropies over the batch.
    """
    s = _similarity(a, b)
    logits = s / _temperature(temperature, s)
    target = torch.arange(s.shape[0], device=s.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def vse_hinge(
    a: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    margin: float = 0.2,
    hardest: bool = True,
    reduction: str = "mean",
    labels: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    r"""VSE++ hinge (triplet) loss of paired rows ``a: (B, D)``, ``b: (B, D)``, both directions.

    Args:
        a, b: the two modalities' embeddings; row ``i`` of each is pair ``i`` (B >= 2).
        margin: :math:`m \ge 0`.
        hardest: ``True`` — each positive's hardest negative only (VSE++); ``False`` — the
            hinges summed over all negatives (:math:`B - 1` of them without ``labels``).
        reduction: ``"mean"`` over the positive pairs (default) or ``"sum"``.
        labels: None (instance level: the positive of ``a_i`` is ``b_i`` only) or ``(B,)``
            integer class labels (class level: every pair of the same label is a positive and
            the negatives are the items of other labels; see the module docstring).  A batch
            of one class has no negative, hence no triplet: its loss is 0 with a zero gradient.
            With ``hardest=False`` the class-level loss costs :math:`O(B^3)` time (memory is
            bounded by chunking).

    Returns:
        A scalar >= 0.  ``vse_hinge(a, b, m, hardest=False) / (2 * (B - 1))`` is the hinge
        averaged over every (positive, negative) pair of both directions.
    """
    margin = check_scalar(margin, "margin", ge=0)
    hardest = check_bool(hardest, "hardest")
    check_choice(reduction, "reduction", ["mean", "sum"])
    s = _similarity(a, b)
    if labels is not None:
        return _class_level_hinge(s, _same_class(labels, s.shape[0], s.device), margin, hardest, reduction)
    pos = s.diagonal()
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    cost_b = (margin - pos[:, None] + s).clamp_min(0).masked_fill(eye, 0)  # a_i against b_j, j != i
    cost_a = (margin - pos[None, :] + s).clamp_min(0).masked_fill(eye, 0)  # b_j against a_i, i != j
    if hardest:
        per_pair = cost_b.amax(dim=1) + cost_a.amax(dim=0)
    else:
        per_pair = cost_b.sum(dim=1) + cost_a.sum(dim=0)
    return per_pair.mean() if reduction == "mean" else per_pair.sum()


def _class_level_hinge(s: torch.Tensor, positive: torch.Tensor, margin: float, hardest: bool,
                       reduction: str) -> torch.Tensor:
    """:func:`vse_hinge` with class-level ``positive: (B, B)`` on the cosine matrix ``s: (B, B)``."""
    if bool(positive.all()):  # one class: no negative for any anchor, no triplet at all
        return s.sum() * 0.0
    if hardest:
        others = s.masked_fill(positive, float("-inf"))
        hard_b = others.amax(dim=1, keepdim=True)  # (B, 1): a_i's most similar b of another class
        hard_a = others.amax(dim=0, keepdim=True)  # (1, B): b_j's most similar a of another class
        cost = (margin - s + hard_b).clamp_min(0) + (margin - s + hard_a).clamp_min(0)
    else:
        # cost[i, j] = sum_k [m - s_ij + s_ik]_+ over b_k with y_k != y_i, plus
        #              sum_k [m - s_ij + s_kj]_+ over a_k with y_k != y_j;  (rows, B, B) terms at a time
        n = s.shape[0]
        negative = ~positive
        rows = max(1, _CHUNK_ELEMENTS // (n * n))
        parts = []
        for r in range(0, n, rows):
            sr = s[r:r + rows, :, None]  # (rows, B_j, 1)
            to_b = ((margin - sr + s[r:r + rows, None, :]).clamp_min(0) * negative[r:r + rows, None, :]).sum(dim=2)
            to_a = ((margin - sr + s.T[None, :, :]).clamp_min(0) * negative.T[None, :, :]).sum(dim=2)
            parts.append(to_b + to_a)
        cost = torch.cat(parts)
    per_pair = cost.masked_select(positive)
    return per_pair.mean() if reduction == "mean" else per_pair.sum()


def _triplet_mean(a, b, margin: float, labels=None) -> torch.Tensor:
    """ACMR's triplet loss: the hinge averaged over the triplets of each direction, then over
    the two directions (the arithmetic of the former ``mmedu.adversarial.triplet_loss``).

    ``labels=None``: ``vse_hinge(a, b, margin, hardest=False) / (2 * (B - 1))``, computed as one
    mean per direction so that ACMR's training keeps its rounding to the bit.  With labels:
    ``vse_hinge(a, b, margin, labels=labels) / 2``.
    """
    if labels is not None:
        return vse_hinge(a, b, margin, labels=labels) / 2
    margin = check_scalar(margin, "margin", ge=0)
    s = _similarity(a, b)
    off = ~torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    total = s.new_zeros(())
    for sim in (s, s.T):
        hinge = (margin - sim.diagonal()[:, None] + sim).clamp_min(0)
        total = total + hinge.masked_select(off).mean()
    return total / 2
