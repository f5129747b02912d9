"""Scaled dot-product attention, multi-head attention, cross-modal attention and attention fusion.

Attention is a *soft dictionary lookup*: every query ``q_i`` scores every key ``k_j``,
the scores become weights by a softmax over the keys, and the answer is the weighted
sum of the values::

    weights = softmax(Q K^T / sqrt(d) + [masked keys: -inf])     # (…, L_q, L_k), rows sum to 1
    out     = weights V                                          # (…, L_q, d_v)

* :func:`scaled_dot_product_attention` — the function itself, from tensor primitives when
  the weights are asked for, through :func:`torch.nn.functional.scaled_dot_product_attention`
  (torch's fused kernels) when they are not.
* :class:`MultiHeadAttention` — ``H`` heads of attention on learned projections, batch
  first, with a key mask; its parameters copy to and from :class:`torch.nn.MultiheadAttention`
  (:meth:`MultiHeadAttention.from_torch`, :meth:`MultiHeadAttention.to_torch`).
* :class:`CrossModalAttention` — queries from one modality, keys and values from another.
* :class:`AttentionFusion` — a :class:`mmedu.fusion.Fusion`: the tokens of some modalities
  (caption words, audio frames) attend over the tokens of another (image patches), and the
  results are pooled to ``(B, output_dim)``.

**Not torch's function, though it has its name.** :func:`scaled_dot_product_attention` returns
the pair ``(out, weights)``, as :class:`torch.nn.MultiheadAttention` does, where
:func:`torch.nn.functional.scaled_dot_product_attention` returns ``out`` alone.  The chapters read
the weights (the attention maps) as often as the output, and one return type whatever
``need_weights`` is keeps ``out, w = scaled_dot_product_attention(...)`` valid on both paths
(``w`` is ``None`` with ``need_weights=False``).  Torch's ``F.scaled_dot_product_attention(q, k, v,
attn_mask=mask)`` is here ``scaled_dot_product_attention(q, k, v, mask, need_weights=False)[0]``,
which calls it.  The other differences: the inputs are checked (shapes, dtypes, NaN/inf, a
``scale`` > 0; errors name the argument), a fully masked row is defined (below), and there is no
``dropout_p``, ``is_causal`` or ``enable_gqa`` (a causal mask is
``torch.ones(L, L, dtype=torch.bool).tril()``).

**Masks.** Every boolean mask in this module follows :func:`torch.nn.functional.scaled_dot_product_attention`:
``True`` = *takes part*.  :class:`torch.nn.MultiheadAttention` uses the opposite convention for
its ``key_padding_mask`` and boolean ``attn_mask`` (``True`` = *ignore*); that is why the
arguments here have other names (``key_mask``, ``attn_mask`` documented as True = takes part).

**A fully masked row** (a query for which no key takes part) has no softmax — every score is
``-inf``. Here it is defined as **zero weights and a zero output** for that query, on every
device and in both code paths, and gradients stay finite.  (:class:`torch.nn.MultiheadAttention`
returns NaN there with its default ``need_weights=True``.)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import as_tensor, check_bool, check_finite, check_ndim, check_positive_int, check_scalar
from .fusion import Fusion

__all__ = ["scaled_dot_product_attention", "MultiHeadAttention", "CrossModalAttention", "AttentionFusion"]


def _broadcast(*shapes: Sequence[int]) -> tuple[int, ...] | None:
    """The broadcast of ``shapes`` (NumPy's rules), or ``None`` if they do not broadcast.

    :func:`torch.broadcast_shapes` answers the same at ten times the cost (≈10 µs a call, a
    tenth of a 64-token attention's run time when it was called twice).
    """
    first = tuple(shapes[0])
    if all(len(s) == len(first) and tuple(s) == first for s in shapes[1:]):
        return first
    n = max(len(s) for s in shapes)
    out = []
    for sizes in zip(*((1,) * (n - len(s)) + tuple(s) for s in shapes)):
        size = 1
        for x in sizes:
            if x != 1:
                if size != 1 and x != size:
                    return None
                size = x
        out.append(size)
    return tuple(out)


def _check_mask(mask: torch.Tensor | np.ndarray, name: str, target: tuple[int, ...],
                device: torch.device) -> torch.Tensor:
    """A boolean mask broadcastable to ``target``; returned on ``device``."""
    if not isinstance(mask, torch.Tensor):
        mask = as_tensor(mask, name)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name}: expected a boolean tensor (True = takes part), got dtype {mask.dtype}")
    if mask.ndim > len(target) or any(m != 1 and m != t for m, t in zip(mask.shape[::-1], target[::-1])):
        raise ValueError(f"{name}: expected a shape broadcastable to {target}, got {tuple(mask.shape)}")
    return mask if mask.device == device else mask.to(device)


def _all_finite(*tensors: torch.Tensor) -> bool:
    """``True`` if no entry of ``tensors`` is NaN or ±inf, ``False`` if some may be: one pass, one host sync.

    A sum is NaN/inf iff some entry is, *or* the sum of finite entries overflows, so ``True``
    is exact and ``False`` only means "run the check that counts them" (:func:`check_finite`).
    One sum per tensor is far cheaper than an ``isfinite`` mask (one read, no boolean tensor).
    """
    total = None
    for t in tensors:
        s = (t.detach() if t.requires_grad else t).sum()  # no graph for a check
        total = s if total is None else total.add_(s)
    return math.isfinite(total.item())


def _check_qkv(q: torch.Tensor | np.ndarray, k: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """``q, k, v`` as tensors of one floating dtype and device, and their broadcast batch shape.

    Every check of the docstring of :func:`scaled_dot_product_attention`, in a few Python
    comparisons and one pass over the data (:func:`_all_finite`): at 64 tokens the checks were
    a third of the fused kernel's time, and a caller who asks for no weights asks for speed.
    """
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)
            and q.is_floating_point() and k.is_floating_point() and v.is_floating_point()):
        q, k, v = (as_tensor(t, n, floating=True) for t, n in ((q, "q"), (k, "k"), (v, "v")))
    qs, ks, vs = q.shape, k.shape, v.shape
    if len(qs) < 2 or len(ks) < 2 or len(vs) < 2:
        for s, n, doc in ((qs, "q", "(..., L_q, d)"), (ks, "k", "(..., L_k, d)"), (vs, "v", "(..., L_k, d_v)")):
            if len(s) < 2:
                raise ValueError(f"{n}: expected a tensor of at least 2 dimensions {doc}, got shape {tuple(s)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v: expected one floating dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v: expected one device, got {q.device}, {k.device}, {v.device}")
    if qs[-1] != ks[-1]:
        raise ValueError(
            f"q, k: expected the same feature size d, got q {tuple(qs)} (d={qs[-1]}) and k {tuple(ks)} (d={ks[-1]})"
        )
    if qs[-1] == 0:
        raise ValueError(f"q, k: expected a feature size d >= 1 (scores are dot products of d features), "
                         f"got q {tuple(qs)} and k {tuple(ks)}")
    if ks[-2] != vs[-2]:
        raise ValueError(
            f"k, v: expected the same number of keys and values L_k, got k {tuple(ks)} "
            f"(L_k={ks[-2]}) and v {tuple(vs)} (L_k={vs[-2]})"
        )
    if ks[-2] == 0:
        raise ValueError(f"k: expected at least one key, got shape {tuple(ks)}")
    batch = _broadcast(qs[:-2], ks[:-2], vs[:-2])
    if batch is None:
        raise ValueError(
            f"q, k, v: expected broadcastable leading (batch) dimensions, got {tuple(qs[:-2])}, "
            f"{tuple(ks[:-2])}, {tuple(vs[:-2])}"
        )
    if not _all_finite(q, k, v):  # only then the per-tensor check that names the culprit
        for t, n in ((q, "q"), (k, "k"), (v, "v")):
            check_finite(t, n)
    return q, k, v, batch


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    need_weights: bool = True,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top/\sqrt{d} + M)\,V`.

    **Returns a pair**, ``(out, weights)``, unlike :func:`torch.nn.functional.scaled_dot_product_attention`
    (``out`` alone): torch's ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)`` is
    ``scaled_dot_product_attention(q, k, v, mask, need_weights=False)[0]``.  The module docstring
    says why, and what else differs.

    Args:
        q: queries ``(..., L_q, d)``.
        k: keys ``(..., L_k, d)``.
        v: values ``(..., L_k, d_v)``.  The leading (batch, head) dimensions of ``q``, ``k``
            and ``v`` must broadcast against each other.
        mask: ``None`` or a boolean tensor broadcastable to ``(..., L_q, L_k)``; ``True`` =
            this query–key pair *takes part* (torch's convention).  A key-padding mask
            ``(B, L_k)`` is passed as ``mask[:, None, :]``.
        need_weights: return the attention weights.  With ``False`` the output is computed by
            :func:`torch.nn.functional.scaled_dot_product_attention` (its fused CPU/CUDA
            kernels: faster, no ``(L_q, L_k)`` matrix kept) and ``weights`` is ``None``.
        scale: multiplies the scores, a real number > 0 (NumPy scalars accepted); default
            ``1 / sqrt(d)``.

    Returns:
        ``(out, weights)``: ``out (..., L_q, d_v)``; ``weights (..., L_q, L_k)`` whose rows
        sum to 1 over the keys that take part (0 on masked keys), or ``None``.

    A query whose row of the mask is all ``False`` gets **zero weights and a zero output**
    (in both paths, on every device), and finite gradients.

    Raises:
        TypeError: a non-float ``q/k/v``, mixed dtypes, a non-boolean mask, a ``scale`` that
            is not a real number, a non-bool ``need_weights``.
        ValueError: rank < 2, ``d`` of ``q`` and ``k`` differ or is 0, ``L_k`` of ``k`` and
            ``v`` differ, batch dimensions that do not broadcast, a mask of the wrong shape,
            NaN/inf, ``scale <= 0``.
    """
    q, k, v, batch = _check_qkv(q, k, v)
    need_weights = check_bool(need_weights, "need_weights")
    d = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    else:
        scale = check_scalar(scale, "scale", gt=0)
    l_q, l_k = q.shape[-2], k.shape[-2]
    empty_rows = None
    if mask is not None:
        mask = _check_mask(mask, "mask", (*batch, l_q, l_k), q.device)
        has_key = mask.any(dim=-1, keepdim=True)  # (..., L_q, 1)
        if not bool(has_key.all()):
            # Let a fully masked query attend to every key (no -inf row, no NaN), then zero it.
            empty_rows = ~has_key
            mask = mask | empty_rows
    if not need_weights:
        # torch's fused kernels want the batch dimensions spelled out.
        q, k, v = (t if t.shape[:-2] == batch else t.expand(*batch, *t.shape[-2:]) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        if empty_rows is not None:
            out = out.masked_fill(empty_rows, 0.0)
        return out, None
    # (q @ k^T) * scale, masked, softmax: the arithmetic of the formula above, bit for bit, on one
    # (..., L_q, L_k) buffer (a fresh buffer per step cost more than the steps themselves).
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        shape = _broadcast(scores.shape, mask.shape)
        if shape != tuple(scores.shape):  # the mask has batch dimensions that q and k lack
            scores = scores.expand(shape).contiguous()
    scores.mul_(scale)  # its backward needs no input: in place is safe with autograd
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        if mask is not None:
            scores.masked_fill_(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # its backward needs this output: not overwritten
        if empty_rows is not None:
            weights = weights.masked_fill(empty_rows, 0.0)
    else:
        if mask is not None:
            # Adding 0 / -inf, as torch's own reference does, is 5-10x faster than masked_fill_ with a
            # broadcast mask, and gives the same bits wherever the score is finite.
            scores.add_(torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
                        .masked_fill_(~mask, float("-inf")))
        weights = torch.softmax(scores, dim=-1, out=scores)
        if empty_rows is not None:
            weights.masked_fill_(empty_rows, 0.0)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, batch first, parameterised like :class:`torch.nn.MultiheadAttention`.

    .. math::

        \mathrm{head}_h = \mathrm{Attention}(Q W^Q_h, K W^K_h, V W^V_h),

        \mathrm{out} = [\mathrm{head}_1, \dots, \mathrm{head}_H]\, W^O

    with ``W^Q: (E, E)`` (``q_proj``), ``W^K: (E, kdim)`` (``k_proj``), ``W^V: (E, vdim)``
    (``v_proj``) and ``W^O: (E, E)`` (``out_proj``), each an :class:`torch.nn.Linear`; head ``h``
    uses the features ``h*E/H : (h+1)*E/H`` of the projections.  The weights copy one to one
    to and from :class:`torch.nn.MultiheadAttention` (:meth:`from_torch`, :meth:`to_torch`).

    Args:
        embed_dim: ``E``, the feature size of the queries and of the output.
        num_heads: ``H``; must divide ``E``.
        kdim, vdim: feature sizes of the keys and values (default ``E``).
        bias: biases on the four projections.
    """

    def __init__(self, embed_dim: int, num_heads: int = 1, kdim: int | None = None, vdim: int | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads: expected a divisor of embed_dim={self.embed_dim}, got {self.num_heads}")
        self.kdim = self.embed_dim if kdim is None else check_positive_int(kdim, "kdim")
        self.vdim = self.embed_dim if vdim is None else check_positive_int(vdim, "vdim")
        if not isinstance(bias, bool):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__}")
        self.head_dim = self.embed_dim // self.num_heads
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, self.embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, self.embed_dim, bias=bias)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn.MultiheadAttention's initialisation: Xavier-uniform projections, zero biases.
        for lin in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(lin.weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def _check(self, x: torch.Tensor | np.ndarray, name: str, dim: int, doc: str) -> torch.Tensor:
        """``x`` as a ``(B, L, dim)`` tensor on the parameters' device (finiteness: ``forward``)."""
        w = self.q_proj.weight
        t = as_tensor(x, name)
        # A tensor or array keeps its own precision: casting float64 down (or float16 up) to the
        # parameters' dtype would compute in a precision the caller did not choose.
        if isinstance(x, (torch.Tensor, np.ndarray)) and t.is_floating_point() and t.dtype != w.dtype:
            raise TypeError(
                f"{name}: expected dtype {w.dtype} (the module's parameters), got {t.dtype}; convert the "
                f"input (x.to({w.dtype})) or the module (module.to({t.dtype}))")
        t = as_tensor(t, name, floating=True)
        check_ndim(t, name, 3, doc)
        if t.shape[-1] != dim:
            raise ValueError(f"{name}: expected shape {doc} with feature size {dim}, got {tuple(t.shape)}")
        return t.to(device=w.device, dtype=w.dtype)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        average_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` over ``key``/``value``.

        Args:
            query: ``(B, L_q, E)``.
            key: ``(B, L_k, kdim)``.
            value: ``(B, L_k, vdim)``.
            key_mask: ``(B, L_k)`` bool, ``True`` = a real key that takes part, ``False`` =
                padding.  (torch's ``key_padding_mask`` is its negation, ``~key_mask``.)
            attn_mask: bool, ``True`` = takes part; ``(L_q, L_k)`` (the same for every item
                and head), ``(B, L_q, L_k)`` (one per item, the same for every head) or 4-D,
                broadcastable to ``(B, H, L_q, L_k)`` (per head: ``(1, H, L_q, L_k)``).
                Combined with ``key_mask`` by logical and.  (torch's 3-D ``attn_mask`` is
                ``(B * H, L_q, L_k)`` with ``True`` = ignore.)
            need_weights: return the weights (a bool); ``False`` takes torch's fused kernel.
            average_weights: (a bool) weights averaged over the heads ``(B, L_q, L_k)``, or per
                head ``(B, H, L_q, L_k)``.

        Returns:
            ``(out (B, L_q, E), weights or None)``.  A query with no key that takes part gets
            zero weights and the output ``out_proj(0)`` (its bias).
        """
        e, h = self.embed_dim, self.num_heads
        need_weights = check_bool(need_weights, "need_weights")
        average_weights = check_bool(average_weights, "average_weights")
        query = self._check(query, "query", e, f"(B, L_q, {e})")
        key = self._check(key, "key", self.kdim, f"(B, L_k, {self.kdim})")
        value = self._check(value, "value", self.vdim, f"(B, L_k, {self.vdim})")
        if not _all_finite(query, key, value):  # one pass and one sync; names the culprit only when needed
            for t, n in ((query, "query"), (key, "key"), (value, "value")):
                check_finite(t, n)
        b, l_q, l_k = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[0] != b or value.shape[0] != b:
            raise ValueError(
                f"expected the same batch size for query, key, value, got {b}, {key.shape[0]}, {value.shape[0]}")
        if value.shape[1] != l_k:
            raise ValueError(f"key, value: expected the same length L_k, got {l_k} and {value.shape[1]}")
        mask = None
        if key_mask is not None:
            km = _check_mask(key_mask, "key_mask", (b, l_k), query.device)
            if km.ndim != 2:
                raise ValueError(f"key_mask: expected shape ({b}, {l_k}), got {tuple(km.shape)}")
            mask = km[:, None, None, :]  # (B, 1, 1, L_k)
        if attn_mask is not None:
            if not isinstance(attn_mask, torch.Tensor):
                attn_mask = as_tensor(attn_mask, "attn_mask")
            if attn_mask.ndim == 3:
                # one mask per item (B, L_q, L_k), the same for every head
                try:
                    am = _check_mask(attn_mask, "attn_mask", (b, l_q, l_k), query.device)[:, None]
                except ValueError as exc:
                    raise ValueError(f"{exc}: a 3-D attn_mask is one mask per item (B, L_q, L_k); "
                                     f"per head, pass (1, H, L_q, L_k) or (B, H, L_q, L_k)") from None
            else:
                am = _check_mask(attn_mask, "attn_mask", (b, h, l_q, l_k), query.device)
            mask = am if mask is None else mask & am
        return self._attend(query, key, value, mask, need_weights, average_weights)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                need_weights: bool, average_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The computation on validated inputs (AttentionFusion calls it directly).
        b, l_q, l_k, h = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        q = self.q_proj(query).view(b, l_q, h, self.head_dim).transpose(1, 2)  # (B, H, L_q, E/H)
        k = self.k_proj(key).view(b, l_k, h, self.head_dim).transpose(1, 2)
        v = self.v_proj(value).view(b, l_k, h, self.head_dim).transpose(1, 2)
        out, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
        out = self.out_proj(out.transpose(1, 2).reshape(b, l_q, self.embed_dim))
        if weights is not None and average_weights:
            weights = weights.mean(dim=1)
        return out, weights

    # ------------------------------------------------------------------ torch interoperability
    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A copy of a :class:`torch.nn.MultiheadAttention` (any ``batch_first``; no ``add_bias_kv``,
        no ``add_zero_attn``), on its device and dtype."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha: expected a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("mha: add_bias_kv and add_zero_attn have no counterpart here")
        bias = mha.in_proj_bias is not None
        w = mha.out_proj.weight
        new = cls(mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim, bias=bias).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            for lin, wt in zip((new.q_proj, new.k_proj, new.v_proj), _torch_in_weights(mha)):
                lin.weight.copy_(wt)
            if bias:
                for lin, bt in zip((new.q_proj, new.k_proj, new.v_proj), mha.in_proj_bias.chunk(3)):
                    lin.bias.copy_(bt)
                new.out_proj.bias.copy_(mha.out_proj.bias)
            new.out_proj.weight.copy_(mha.out_proj.weight)
        return new

    def to_torch(self) -> nn.MultiheadAttention:
        """A :class:`torch.nn.MultiheadAttention` (``batch_first=True``) with these weights."""
        w = self.q_proj.weight
        bias = self.q_proj.bias is not None
        mha = nn.MultiheadAttention(self.embed_dim, self.num_heads, bias=bias, kdim=self.kdim, vdim=self.vdim,
                                    batch_first=True).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            for wt, lin in zip(_torch_in_weights(mha), (self.q_proj, self.k_proj, self.v_proj)):
                wt.copy_(lin.weight)
            if bias:
                mha.in_proj_bias.copy_(torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]))
                mha.out_proj.bias.copy_(self.out_proj.bias)
            mha.out_proj.weight.copy_(self.out_proj.weight)
        return mha

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, vdim={self.vdim}"


def _torch_in_weights(mha: nn.MultiheadAttention) -> list[torch.Tensor]:
    """The three input projection weights of a torch MHA (views into its parameters)."""
    if mha._qkv_same_embed_dim:
        return list(mha.in_proj_weight.chunk(3))
    return [mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight]


class CrossModalAttention(nn.Module):
    """Queries from one modality attend over the tokens (keys = values) of another.

    ``forward(queries (B, L_q, query_dim), context (B, L_k, context_dim)) -> (out (B, L_q,
    query_dim), weights)``: a :class:`MultiHeadAttention` with ``embed_dim = query_dim`` and
    ``kdim = vdim = context_dim`` (held as ``self.attention``), so each query token receives a
    mixture of the other modality's tokens, mapped into its own feature space.

    Args:
        query_dim: feature size of the querying modality's tokens.
        context_dim: feature size of the attended modality's tokens.
        num_heads: number of heads (divides ``query_dim``).
        bias: biases on the projections.
    """

    def __init__(self, query_dim: int, context_dim: int, num_heads: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(query_dim, num_heads, kdim=context_dim, vdim=context_dim, bias=bias)
        self.query_dim, self.context_dim = self.attention.embed_dim, self.attention.kdim

    def forward(
        self,
        queries: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        average_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """queries ``(B, L_q, query_dim)``, context ``(B, L_k, context_dim)``, context_mask
        ``(B, L_k)`` bool (True = the context token takes part) -> ``(out (B, L_q, query_dim),
        weights (B, L_q, L_k) or (B, H, L_q, L_k) or None)``."""
        return self.attention(queries, context, context, key_mask=context_mask, need_weights=need_weights,
                              average_weights=average_weights)


class AttentionFusion(Fusion):
    r"""Attention fusion: the tokens of some modalities attend over the tokens of one other.

    Chapter 1's :class:`~mmedu.fusion.Fusion` interface takes one feature vector per
    modality, ``x_m: (B, D_m)``.  Here each ``x_m`` is a *flattened token sequence*,
    ``D_m = L_m \cdot d_m`` (``token_dims[m] = (L_m, d_m)``; ``x.reshape(B, L_m, d_m)``
    recovers the tokens).  A token whose features are all exactly zero is *padding*
    (a padded caption position, a missing modality) and takes no part — neither as a key
    nor in a pooled mean.

    With ``context`` the index of the attended modality ``c`` (e.g. image patches) and every
    other modality ``m`` a querying one (e.g. caption tokens, audio frames):

    .. math::

        T_m = x_m W_m + P_m \in \mathbb{R}^{L_m \times E}, \qquad
        H_m = T_m + \mathrm{CrossAttn}_m(T_m, T_c) ,

        \mathrm{out} = W_o\,[\bar T_c;\ \bar H_{m_1};\ \dots] + b_o \in \mathbb{R}^{K},

    with learned position embeddings ``P_m``, one :class:`CrossModalAttention` per querying
    modality and ``\bar{\cdot}`` the mean over the tokens that take part (0 if none do).  A
    missing context (all its tokens zero) leaves every query row fully masked: the attention
    adds 0 and each ``H_m = T_m``; a missing querying modality contributes 0.

    Args:
        token_dims: ``(L_m, d_m)`` for each of the ``M >= 2`` modalities.
        output_dim: ``K``.
        embed_dim: ``E``, the common token size after the per-modality projections.
        num_heads: heads of each cross-modal attention.
        context: index of the modality whose tokens are attended over.
    """

    def __init__(self, token_dims: Sequence[Sequence[int]], output_dim: int, embed_dim: int = 32,
                 num_heads: int = 1, context: int = 0) -> None:
        if isinstance(token_dims, (str, bytes)) or not isinstance(token_dims, Sequence):
            raise TypeError(f"token_dims: expected a sequence of (L_m, d_m) pairs, got {type(token_dims).__name__}")
        shapes = []
        for m, td in enumerate(token_dims):
            if isinstance(td, (str, bytes)) or not isinstance(td, Sequence) or len(td) != 2:
                raise TypeError(f"token_dims[{m}]: expected a pair (L_m, d_m), got {td!r}")
            shapes.append((check_positive_int(td[0], f"token_dims[{m}][0] (L_m)"),
                           check_positive_int(td[1], f"token_dims[{m}][1] (d_m)")))
        super().__init__([l_m * d_m for l_m, d_m in shapes])
        self.token_dims = tuple(shapes)
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.context = check_positive_int(context, "context", minimum=0, maximum=len(shapes) - 1)
        self.queries = tuple(m for m in range(len(shapes)) if m != self.context)
        self.project = nn.ModuleList(nn.Linear(d_m, self.embed_dim) for _, d_m in shapes)
        self.position = nn.ParameterList(nn.Parameter(0.02 * torch.randn(l_m, self.embed_dim)) for l_m, _ in shapes)
        self.cross = nn.ModuleList(CrossModalAttention(self.embed_dim, self.embed_dim, num_heads) for _ in self.queries)
        self.out = nn.Linear(self.embed_dim * len(shapes), self.output_dim)

    def tokens(self, x: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality ``m``'s flat input ``(B, L_m d_m)`` -> embedded tokens ``(B, L_m, E)`` and
        the mask ``(B, L_m)`` of tokens that take part (not all zero)."""
        l_m, d_m = self.token_dims[m]
        raw = x.reshape(x.shape[0], l_m, d_m)
        w = self.project[m].weight
        raw = raw.to(device=w.device, dtype=w.dtype)
        return self.project[m](raw) + self.position[m], raw.ne(0).any(dim=-1)

    def attend(self, xs: Sequence[torch.Tensor], average_weights: bool = True) -> dict[int, torch.Tensor]:
        """The attention weights of every querying modality over the context's tokens:
        ``{m: (B, L_m, L_c)}`` (or ``(B, H, L_m, L_c)`` per head)."""
        xs = self.check_inputs(xs)
        ctx, ctx_mask = self.tokens(xs[self.context], self.context)
        out = {}
        for m, cross in zip(self.queries, self.cross):
            t, _ = self.tokens(xs[m], m)
            out[m] = cross(t, ctx, ctx_mask, need_weights=True, average_weights=average_weights)[1]
        return out

    @staticmethod
    def _masked_mean(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask.to(t.dtype).unsqueeze(-1)
        return (t * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)

    def fuse(self, xs: list[torch.Tensor]) -> torch.Tensor:
        ctx, ctx_mask = self.tokens(xs[self.context], self.context)
        pooled = {self.context: self._masked_mean(ctx, ctx_mask)}
        has_context = ctx_mask.any(dim=1).to(ctx.dtype)[:, None, None]  # (B, 1, 1)
        for m, cross in zip(self.queries, self.cross):
            t, t_mask = self.tokens(xs[m], m)
            attended, _ = cross.attention._attend(t, ctx, ctx, ctx_mask[:, None, None, :], False, True)
            # No context token at all: the attention adds nothing (not out_proj's bias).
            attended = attended * has_context
            pooled[m] = self._masked_mean(t + attended, t_mask)
        return self.out(torch.cat([pooled[m] for m in range(self.n_modalities)], dim=1))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", token_dims={list(self.token_dims)}, embed_dim={self.embed_dim}, "
                f"context={self.context}")
