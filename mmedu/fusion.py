"""Fusion of per-modality feature vectors, one interface for every method of the course.

Every fusion is a :class:`Fusion`: it is built from the feature sizes of its
inputs, ``input_dims = (D_1, ..., D_M)`` with ``M >= 2``, exposes ``output_dim``
and maps a list of ``M`` matrices ``x_m: (B, D_m)`` to one matrix
``(B, output_dim)``::

    fusion = ConcatFusion([64, 32], output_dim=10)
    z = fusion([x_image, x_audio])          # (B, 10)

The base class validates the inputs once, in :meth:`Fusion.forward` (a list, the
declared number of modalities, 2-D float tensors, the declared feature sizes, one
batch size, finite values) and then calls the subclass's :meth:`Fusion.fuse`, so a
new fusion only writes the math.

This chapter's methods:

* :class:`ConcatFusion` — early (feature-level) fusion, ``x = [x_1; ...; x_M]``,
  optionally followed by a linear layer.
* :class:`LateFusion` — decision-level fusion: one linear classifier per
  modality, logits averaged with fixed or learned weights.

and :class:`FusionClassifier`, which composes encoders, a fusion and a head into a
model that takes a dict batch ``{"image": ..., "audio": ..., "text": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import torch
from torch import nn

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int, check_same_batch

__all__ = ["Fusion", "ConcatFusion", "LateFusion", "FusionClassifier"]


class Fusion(nn.Module):
    """Base class: validates ``input_dims`` at construction and the inputs at every call.

    Subclasses call ``super().__init__(input_dims)``, set ``self.output_dim`` and
    implement :meth:`fuse`.  Do not override :meth:`forward`.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)`` of the ``M >= 2`` modalities.
    """

    output_dim: int

    def __init__(self, input_dims: Sequence[int]) -> None:
        super().__init__()
        if isinstance(input_dims, (int, str, bytes)) or not isinstance(input_dims, Sequence):
            raise TypeError(
                f"input_dims: expected a sequence of feature sizes, one per modality, got {type(input_dims).__name__}"
            )
        if len(input_dims) < 2:
            raise ValueError(f"input_dims: expected at least 2 modalities to fuse, got {len(input_dims)}")
        self.input_dims = tuple(check_positive_int(d, f"input_dims[{i}]") for i, d in enumerate(input_dims))

    @property
    def n_modalities(self) -> int:
        return len(self.input_dims)

    def check_inputs(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Validate ``xs`` against ``input_dims``; return it as a list of float tensors.

        Raises ``TypeError`` for a non-list or a non-float tensor and ``ValueError``
        for a wrong number of modalities, a wrong rank or feature size, unequal batch
        sizes or NaN/inf values; each message names what was expected and received.
        """
        if isinstance(xs, torch.Tensor) or not isinstance(xs, (list, tuple)):
            raise TypeError(
                f"expected a list of {self.n_modalities} tensors (one per modality), got {type(xs).__name__}"
            )
        if len(xs) != self.n_modalities:
            raise ValueError(f"expected {self.n_modalities} modalities with feature sizes {list(self.input_dims)}, got {len(xs)}")
        out = []
        for m, (x, d) in enumerate(zip(xs, self.input_dims)):
            name = f"modality {m}"
            t = as_tensor(x, name, floating=True)
            check_ndim(t, name, 2, f"(B, {d})")
            if t.shape[1] != d:
                raise ValueError(f"{name}: expected feature size {d}, i.e. shape (B, {d}), got shape {tuple(t.shape)}")
            out.append(t)
        check_same_batch(out, [f"modality {m}" for m in range(len(out))])
        for m, t in enumerate(out):
            check_finite(t, f"modality {m}")
        return out

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """xs: list of ``M`` tensors ``(B, D_m)`` -> ``(B, output_dim)``."""
        return self.fuse(self.check_inputs(xs))

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        """The fusion itself, on inputs already validated by :meth:`check_inputs`."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"input_dims={list(self.input_dims)}, output_dim={self.output_dim}"


class ConcatFusion(Fusion):
    r"""Early (feature-level) fusion by concatenation, ``x = [x_1; \dots; x_M]``.

    With ``output_dim=None`` the output is the concatenation itself,
    ``(B, sum(D_m))``.  With an ``output_dim`` a linear layer follows,
    ``W x + b``; its weight splits into column blocks, one per modality,
    ``W = [W_1, ..., W_M]``, so that ``W x + b = sum_m W_m x_m + b``
    (:meth:`blocks` returns them).  Either way the output is *additive* across
    modalities: no term multiplies a feature of one modality by one of another.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)``.
        output_dim: size of the linear layer after the concatenation, or ``None``.
        bias: whether that linear layer has a bias.
    """

    def __init__(self, input_dims: Sequence[int], output_dim: int | None = None, bias: bool = True) -> None:
        super().__init__(input_dims)
        total = sum(self.input_dims)
        if output_dim is None:
            self.linear = None
            self.output_dim = total
        else:
            self.output_dim = check_positive_int(output_dim, "output_dim")
            self.linear = nn.Linear(total, self.output_dim, bias=bias)

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(xs, dim=1)
        return x if self.linear is None else self.linear(x)

    def blocks(self) -> list[torch.Tensor]:
        """The column blocks ``W_m: (output_dim, D_m)`` of the linear layer's weight."""
        if self.linear is None:
            raise ValueError("blocks: this ConcatFusion has no linear layer (it was built with output_dim=None)")
        return list(torch.split(self.linear.weight, list(self.input_dims), dim=1))


class LateFusion(Fusion):
    r"""Late (decision-level) fusion: one linear classifier per modality, logits combined.

    .. math:: z = \sum_m w_m (A_m x_m + c_m), \qquad \sum_m w_m = 1,\ w_m \ge 0.

    ``weighting="mean"`` fixes ``w_m = 1/M``; ``weighting="learned"`` sets
    ``w = softmax(a)`` for a trainable vector ``a`` initialised at zero (so
    training starts from the mean).  Combining *logits* (not probabilities) keeps
    the model a log-linear product of per-modality experts.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)``.
        n_classes: number of classes ``C``; ``output_dim == C``.
        weighting: ``"mean"`` or ``"learned"``.
    """

    def __init__(self, input_dims: Sequence[int], n_classes: int, weighting: str = "mean") -> None:
        super().__init__(input_dims)
        self.output_dim = check_positive_int(n_classes, "n_classes")
        check_choice(weighting, "weighting", ("mean", "learned"))
        self.weighting = weighting
        self.heads = nn.ModuleList(nn.Linear(d, self.output_dim) for d in self.input_dims)
        if weighting == "learned":
            self.weight_logits = nn.Parameter(torch.zeros(self.n_modalities))
        else:
            self.register_parameter("weight_logits", None)

    @property
    def weights(self) -> torch.Tensor:
        """The modality weights ``w: (M,)``, non-negative, summing to 1."""
        if self.weight_logits is None:
            w = self.heads[0].weight
            return torch.full((self.n_modalities,), 1.0 / self.n_modalities, device=w.device, dtype=w.dtype)
        return torch.softmax(self.weight_logits, dim=0)

    def modality_logits(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each modality's own logits, stacked: ``(M, B, C)``."""
        xs = self.check_inputs(xs)
        return torch.stack([head(x) for head, x in zip(self.heads, xs)])

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        logits = torch.stack([head(x) for head, x in zip(self.heads, xs)])  # (M, B, C)
        return torch.einsum("m,mbc->bc", self.weights.to(logits.dtype), logits)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", weighting={self.weighting!r}"


class FusionClassifier(nn.Module):
    """Encoders -> fusion -> head: ``batch -> logits (B, C)``.

    ``forward`` takes a dict batch ``{"image": ..., "audio": ..., "text": ...}``
    (extra keys such as ``"label"`` are ignored) when ``encoders`` is a dict, or a
    list of inputs in the encoders' order when it is a list.  Each input goes
    through its encoder, the features through the fusion (in the encoders' key
    order), and the fused vector through the head.

    Args:
        encoders: dict ``name -> module`` (or a list of modules); each maps its
            modality to ``(B, D_m)`` and, if it has ``output_dim``, that must equal
            ``fusion.input_dims[m]``.
        fusion: a :class:`Fusion` with one input per encoder.
        head: module applied to the fused ``(B, fusion.output_dim)`` vector, e.g.
            ``nn.Linear(fusion.output_dim, C)``; ``None`` returns the fused vector
            (right for :class:`LateFusion`, whose output already is logits).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module] | Sequence[nn.Module],
        fusion: Fusion,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(encoders, Mapping):
            self.names: tuple[str, ...] | None = tuple(encoders)
            self.encoders = nn.ModuleDict(dict(encoders))
            mods = list(self.encoders.values())
        elif isinstance(encoders, Sequence) and not isinstance(encoders, (str, bytes)):
            self.names = None
            self.encoders = nn.ModuleList(encoders)
            mods = list(self.encoders)
        else:
            raise TypeError(f"encoders: expected a dict name -> module or a list of modules, got {type(encoders).__name__}")
        if not isinstance(fusion, Fusion):
            raise TypeError(f"fusion: expected an mmedu.fusion.Fusion, got {type(fusion).__name__}")
        if len(mods) != fusion.n_modalities:
            raise ValueError(f"expected one encoder per fusion input ({fusion.n_modalities}), got {len(mods)} encoders")
        for m, (enc, d) in enumerate(zip(mods, fusion.input_dims)):
            if not isinstance(enc, nn.Module):
                raise TypeError(f"encoder {m}: expected an nn.Module, got {type(enc).__name__}")
            out = getattr(enc, "output_dim", None)
            if out is not None and out != d:
                name = self.names[m] if self.names else m
                raise ValueError(f"encoder {name!r}: output_dim {out} does not match fusion.input_dims[{m}] = {d}")
        if head is not None and not isinstance(head, nn.Module):
            raise TypeError(f"head: expected an nn.Module or None, got {type(head).__name__}")
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()

    def encode(self, batch) -> list[torch.Tensor]:
        """Per-modality features, in the encoders' order: list of ``(B, D_m)``."""
        if self.names is not None:
            if not isinstance(batch, Mapping):
                raise TypeError(f"batch: expected a dict with keys {list(self.names)}, got {type(batch).__name__}")
            missing = [k for k in self.names if k not in batch]
            if missing:
                raise ValueError(f"batch: expected keys {list(self.names)}, got {list(batch)} (missing {missing})")
            return [self.encoders[k](batch[k]) for k in self.names]
        if isinstance(batch, torch.Tensor) or not isinstance(batch, (list, tuple)):
            raise TypeError(f"batch: expected a list of {len(self.encoders)} inputs, got {type(batch).__name__}")
        if len(batch) != len(self.encoders):
            raise ValueError(f"batch: expected {len(self.encoders)} inputs (one per encoder), got {len(batch)}")
        return [enc(x) for enc, x in zip(self.encoders, batch)]

    def forward(self, batch) -> torch.Tensor:
        """batch: dict ``name -> input`` (or list) -> logits ``(B, C)``."""
        return self.head(self.fusion(self.encode(batch)))
