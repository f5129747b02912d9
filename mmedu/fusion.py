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

The methods:

* :class:`ConcatFusion` (chapter 1) — early (feature-level) fusion,
  ``x = [x_1; ...; x_M]``, optionally followed by a linear layer.
* :class:`LateFusion` (chapter 1) — decision-level fusion: one linear classifier
  per modality, logits averaged with fixed or learned weights.
* :class:`TensorFusion` (chapter 2) — the outer product of the ``[x_m; 1]``
  vectors (TFN), size ``prod(D_m + 1)``, optionally followed by a linear layer.
* :class:`LowRankFusion` (chapter 2) — a linear map of that outer product whose
  weight tensor is kept in CP (low-rank) form; the product is never built.
* :class:`TuckerFusion` (chapter 2) — the same with a Tucker-factorised weight
  (MUTAN): per-modality projections, a core tensor and an output factor.

and :class:`FusionClassifier`, which composes encoders, a fusion and a head into a
model that takes a dict batch ``{"image": ..., "audio": ..., "text": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import torch
from torch import nn

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int, check_ranks, check_same_batch

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
        """The fusion itself, on inputs already validated by :meth:`~mmedu.fusion.Fusion.check_inputs`."""
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

    def encode(self, batch: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> list[torch.Tensor]:
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

    def forward(self, batch: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
        """batch: dict ``name -> input`` (or list) -> logits ``(B, C)``."""
        return self.head(self.fusion(self.encode(batch)))


# ============================================================================ chapter 2
# Multiplicative fusion: TensorFusion, LowRankFusion, TuckerFusion.
#
# All three compute the same kind of function.  Append a 1 to every modality,
# z_m = [x_m; 1] in R^{D_m + 1}, and apply a multilinear map with a weight tensor
# W of shape (D_1 + 1, ..., D_M + 1, K):
#
#     out_k = sum_{i_1 .. i_M} W[i_1, ..., i_M, k] z_1[i_1] ... z_M[i_M]
#           = < W[..., k], z_1 o z_2 o ... o z_M >.
#
# They differ only in how W is stored: in full after the explicit outer product
# (TensorFusion, Zadeh et al. 2017), as a sum of R rank-one terms per output
# (LowRankFusion, Liu et al. 2018), or as a Tucker tensor G x_1 U_1 ... x_{M+1} U_o
# (TuckerFusion, Ben-younes et al. 2017).  ``weight_tensor()`` returns W for each.
# ============================================================================

import math as _math  # noqa: E402  (this section's imports are kept with it)

from .tensor import cp_to_tensor as _cp_to_tensor  # noqa: E402
from .tensor import tucker_to_tensor as _tucker_to_tensor  # noqa: E402

__all__ += ["TensorFusion", "LowRankFusion", "TuckerFusion"]


def _append_one(x: torch.Tensor) -> torch.Tensor:
    """x: (B, D) -> (B, D + 1), the last column all ones."""
    return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)


def _check_dims(input_dims: Sequence[int]) -> tuple[int, ...]:
    # Same rules as Fusion.__init__, for the static n_parameters formulas.
    return Fusion(input_dims).input_dims


def _check_ranks(ranks, input_dims: tuple[int, ...]) -> tuple[int, ...]:
    """One Tucker rank per modality, ``1 <= ranks[m] <= D_m + 1`` (an int means the same for all)."""
    # A factor U_m: (D_m + 1, r_m) with r_m > D_m + 1 adds parameters but not expressiveness.
    return check_ranks(ranks, [d + 1 for d in input_dims],
                       [f"modality of size {d}, {d + 1} with the appended 1" for d in input_dims], per="modality")


class TensorFusion(Fusion):
    r"""Tensor Fusion Network layer: the outer product of the 1-padded feature vectors.

    .. math:: \mathcal{Z} = \begin{bmatrix} x_1 \\ 1 \end{bmatrix} \otimes \cdots \otimes
              \begin{bmatrix} x_M \\ 1 \end{bmatrix} \in \mathbb{R}^{(D_1+1) \times \cdots \times (D_M+1)}

    flattened in C order (modality 1 varies slowest), so ``output_dim = prod(D_m + 1)``.
    Because of the appended 1s the output contains every product of features from
    *distinct* modalities, each unimodal feature ``x_m`` itself and the constant 1
    (for two modalities ``Z = [[x_1 x_2^T, x_1], [x_2^T, 1]]``).

    With an ``output_dim`` a linear layer follows: ``W vec(Z)``, i.e. a multilinear
    map with a full weight tensor ``(D_1 + 1, ..., D_M + 1, K)`` (:meth:`weight_tensor`).
    Its size grows as the *product* of the feature sizes; :class:`LowRankFusion` and
    :class:`TuckerFusion` factorise that weight.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)``, ``M >= 2``.
        output_dim: size ``K`` of the linear layer after the outer product, or ``None``
            for the flattened outer product itself.
        bias: whether that linear layer has its own bias.  Off by default: the entry
            of ``Z`` that is the product of all the appended 1s already gives the layer
            a constant term.
    """

    def __init__(self, input_dims: Sequence[int], output_dim: int | None = None, bias: bool = False) -> None:
        super().__init__(input_dims)
        self.tensor_dim = _math.prod(d + 1 for d in self.input_dims)
        if output_dim is None:
            if bias:
                raise ValueError("bias=True needs an output_dim (there is no linear layer without one)")
            self.linear = None
            self.output_dim = self.tensor_dim
        else:
            self.output_dim = check_positive_int(output_dim, "output_dim")
            self.linear = nn.Linear(self.tensor_dim, self.output_dim, bias=bias)

    @staticmethod
    def n_parameters(input_dims: Sequence[int], output_dim: int | None = None, bias: bool = False) -> int:
        """``prod(D_m + 1) * K`` (+ ``K`` with a bias); 0 without an ``output_dim``."""
        dims = _check_dims(input_dims)
        if output_dim is None:
            return 0
        k = check_positive_int(output_dim, "output_dim")
        return _math.prod(d + 1 for d in dims) * k + (k if bias else 0)

    @staticmethod
    def outer(xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """xs: list of ``(B, D_m)`` (already validated) -> flattened outer product ``(B, prod(D_m + 1))``."""
        z = _append_one(xs[0])
        for x in xs[1:]:
            z = (z[:, :, None] * _append_one(x)[:, None, :]).flatten(start_dim=1)
        return z

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        z = self.outer(xs)
        return z if self.linear is None else self.linear(z)

    def weight_tensor(self) -> torch.Tensor:
        """The full weight ``(D_1 + 1, ..., D_M + 1, K)`` of the linear layer (a view of it)."""
        if self.linear is None:
            raise ValueError("weight_tensor: this TensorFusion has no linear layer (it was built with output_dim=None)")
        return self.linear.weight.T.reshape(*(d + 1 for d in self.input_dims), self.output_dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tensor_dim={self.tensor_dim}"


class LowRankFusion(Fusion):
    r"""Low-rank multimodal fusion (LMF): the weight of :class:`TensorFusion` in CP form.

    Each output ``k`` has its own order-``M`` weight tensor, written as a sum of
    ``R`` rank-one tensors with modality-specific factors ``A_m: (D_m + 1, R, K)``:

    .. math:: W[\dots, k] = \sum_{r=1}^{R} A_1[:, r, k] \circ \cdots \circ A_M[:, r, k],

    so that the output never needs the outer product:

    .. math:: \mathrm{out}_k = \sum_{r=1}^R \prod_{m=1}^M \big(A_m[:, r, k]^\top z_m\big),
              \qquad z_m = [x_m; 1].

    Cost and size grow with the *sum* of the feature sizes, ``R K sum(D_m + 1)``,
    instead of their product.  (Liu et al.'s LMF also has a vector of ``R`` mixing
    weights; it can be absorbed into ``A_1``, so it is left out.)  The factors are
    registered parameters (``self.factors``, an ``nn.ParameterList``) and all train.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)``, ``M >= 2``.
        output_dim: ``K``.
        rank: ``R >= 1`` (may exceed the ``D_m``, as for any CP rank).
        bias: an extra bias ``(K,)``; off by default (the appended 1s provide a constant term).
    """

    def __init__(self, input_dims: Sequence[int], output_dim: int, rank: int, bias: bool = False) -> None:
        super().__init__(input_dims)
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.rank = check_positive_int(rank, "rank")
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(d + 1, self.rank, self.output_dim)) for d in self.input_dims
        )
        self.bias = nn.Parameter(torch.zeros(self.output_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each A_m^T z_m then has variance about 1 per entry, their product too, and the 1/sqrt(R)
        # on the first factor keeps the sum over the R terms at unit variance at initialisation.
        for m, (f, d) in enumerate(zip(self.factors, self.input_dims)):
            std = 1.0 / _math.sqrt(d + 1) / (_math.sqrt(self.rank) if m == 0 else 1.0)
            nn.init.normal_(f, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @staticmethod
    def n_parameters(input_dims: Sequence[int], output_dim: int, rank: int, bias: bool = False) -> int:
        """``R K sum(D_m + 1)`` (+ ``K`` with a bias)."""
        dims = _check_dims(input_dims)
        k = check_positive_int(output_dim, "output_dim")
        r = check_positive_int(rank, "rank")
        return r * k * sum(d + 1 for d in dims) + (k if bias else 0)

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = None
        for x, f in zip(xs, self.factors):
            h = torch.einsum("bi,irk->brk", _append_one(x), f)  # (B, R, K)
            out = h if out is None else out * h
        out = out.sum(dim=1)
        return out if self.bias is None else out + self.bias

    def weight_tensor(self) -> torch.Tensor:
        """The equivalent full TensorFusion weight ``(D_1 + 1, ..., D_M + 1, K)``, built with
        :func:`mmedu.tensor.cp_to_tensor` one output at a time."""
        slices = [_cp_to_tensor(None, [f[:, :, k] for f in self.factors]) for k in range(self.output_dim)]
        return torch.stack(slices, dim=-1)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rank={self.rank}, bias={self.bias is not None}"


class TuckerFusion(Fusion):
    r"""MUTAN-style Tucker fusion: the weight of :class:`TensorFusion` as a Tucker tensor.

    .. math:: W = \mathcal{G} \times_1 U_1 \times_2 U_2 \cdots \times_M U_M \times_{M+1} U_o

    with one projection per modality ``U_m: (D_m + 1, r_m)``, a core
    ``G: (r_1, ..., r_M, r_o)`` of order ``M + 1`` (any ``M >= 2``; MUTAN's is the
    ``M = 2`` case) and an output factor ``U_o: (K, r_o)``.  The output is computed
    without building ``W``:

    .. math::

        p_m = \phi(U_m^\top z_m) \in \mathbb{R}^{r_m},\qquad z_m = [x_m; 1],

        \mathrm{out} = U_o\, \big(\mathcal{G} \times_1 p_1 \cdots \times_M p_M\big).

    ``U_m^T z_m`` is a linear layer with bias on ``x_m``.  With ``activation=None``
    (``phi`` = identity) the layer *equals* ``TensorFusion`` with weight
    ``tucker_to_tensor(core, [*factors, output_factor])`` (:meth:`weight_tensor`).
    ``activation="tanh"`` is MUTAN's choice; it makes the layer non-multilinear.
    The size, ``sum (D_m + 1) r_m + prod(r_m) r_o + K r_o``, grows with the product of
    the *ranks*, not of the feature sizes: keep ``r_m`` small for ``M > 2``.

    Args:
        input_dims: feature sizes ``(D_1, ..., D_M)``, ``M >= 2``.
        output_dim: ``K``.
        ranks: ``(r_1, ..., r_M)`` or one int for all, ``1 <= r_m <= D_m + 1``.
        output_rank: ``r_o``, ``1 <= r_o <= K``; default ``K``.
        activation: ``None`` or ``"tanh"``, applied to the projections ``p_m``.
        bias: an extra output bias ``(K,)``; off by default.
    """

    def __init__(
        self,
        input_dims: Sequence[int],
        output_dim: int,
        ranks: int | Sequence[int],
        output_rank: int | None = None,
        activation: str | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__(input_dims)
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.ranks = _check_ranks(ranks, self.input_dims)
        self.output_rank = self.output_dim if output_rank is None else check_positive_int(
            output_rank, f"output_rank (output_dim is {self.output_dim})", maximum=self.output_dim
        )
        check_choice(activation, "activation", (None, "tanh"))
        self.activation = activation
        self.factors = nn.ParameterList(nn.Parameter(torch.empty(d + 1, r)) for d, r in zip(self.input_dims, self.ranks))
        self.core = nn.Parameter(torch.empty(*self.ranks, self.output_rank))
        self.output_factor = nn.Parameter(torch.empty(self.output_dim, self.output_rank))
        self.bias = nn.Parameter(torch.zeros(self.output_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Unit-variance projections p_m and core contraction at initialisation; the output
        # factor then scales like a linear layer's weight (fan-in r_o).
        for f, d in zip(self.factors, self.input_dims):
            nn.init.normal_(f, std=1.0 / _math.sqrt(d + 1))
        nn.init.normal_(self.core, std=1.0 / _math.sqrt(_math.prod(self.ranks)))
        nn.init.normal_(self.output_factor, std=1.0 / _math.sqrt(self.output_rank))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @staticmethod
    def n_parameters(
        input_dims: Sequence[int],
        output_dim: int,
        ranks: int | Sequence[int],
        output_rank: int | None = None,
        bias: bool = False,
    ) -> int:
        """``sum_m (D_m + 1) r_m + prod_m(r_m) r_o + K r_o`` (+ ``K`` with a bias)."""
        dims = _check_dims(input_dims)
        k = check_positive_int(output_dim, "output_dim")
        ranks = _check_ranks(ranks, dims)
        ro = k if output_rank is None else check_positive_int(output_rank, "output_rank", maximum=k)
        return sum((d + 1) * r for d, r in zip(dims, ranks)) + _math.prod(ranks) * ro + k * ro + (k if bias else 0)

    def project(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The per-modality projections ``p_m = phi(U_m^T [x_m; 1])``: list of ``(B, r_m)``."""
        return self._project(self.check_inputs(xs))

    def _project(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        ps = [_append_one(x) @ f for x, f in zip(xs, self.factors)]
        return [torch.tanh(p) for p in ps] if self.activation == "tanh" else ps

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        ps = self._project(xs)
        # Contract the core with p_1, then p_2, ...: (B, r_m * rest) -> (B, rest), never (B, prod r_m).
        y = ps[0] @ self.core.reshape(self.ranks[0], -1)  # (B, r_2 ... r_M r_o)
        for p in ps[1:]:
            y = torch.einsum("bi,bij->bj", p, y.reshape(y.shape[0], p.shape[1], -1))
        out = y @ self.output_factor.T  # (B, K)
        return out if self.bias is None else out + self.bias

    def weight_tensor(self) -> torch.Tensor:
        """The full weight ``(D_1 + 1, ..., D_M + 1, K)`` = ``tucker_to_tensor(core, [*factors, output_factor])``.

        Equals the layer only with ``activation=None``.
        """
        return _tucker_to_tensor(self.core, [*self.factors, self.output_factor])

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", ranks={list(self.ranks)}, output_rank={self.output_rank}, "
                f"activation={self.activation!r}, bias={self.bias is not None}")

# ============================================================================ end of chapter 2
