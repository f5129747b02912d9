"""Tests for mmedu.attention.

Anchors: torch.nn.functional.scaled_dot_product_attention (torch's own kernels, with and
without boolean and key-padding masks), torch.nn.MultiheadAttention given the same weights,
a brute-force loop over queries and keys, and properties that hold for any input (rows of
the weights sum to 1, masked keys get weight 0, permuting the keys and values together
changes nothing).  The fusion model is tested against chapter 1's Fusion contract and by
behaviour (a train step moves the weights; a forward pass draws no random numbers and does
not depend on train/eval mode).
"""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mmedu.attention import (AttentionFusion, CrossModalAttention, MultiHeadAttention, _broadcast,
                             scaled_dot_product_attention)
from mmedu.fusion import Fusion

TOL = {torch.float64: 1e-6, torch.float32: 1e-5}


def _qkv(shape_q, shape_k, d_v, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=dtype)
    k = torch.randn(*shape_k, generator=g, dtype=dtype)
    v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=dtype)
    return q.to(device), k.to(device), v.to(device)


def _random_mask(shape, seed=1, p=0.6):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(*shape, generator=g) < p
    m[..., 0] = True  # every query keeps at least one key (fully masked rows are tested apart)
    return m


# ---------------------------------------------------------------- agreement with torch SDPA


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masking", ["none", "boolean", "padding"])
def test_equals_torch_sdpa(dtype, need_weights, masking):
    q, k, v = _qkv((3, 2, 5, 8), (3, 2, 7, 8), 6, dtype)
    if masking == "none":
        mask = None
    elif masking == "boolean":
        mask = _random_mask((3, 2, 5, 7))
    else:  # key padding: (B, L_k) broadcast over heads and queries
        lengths = torch.tensor([7, 4, 1])
        mask = (torch.arange(7)[None, :] < lengths[:, None])[:, None, None, :]
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=TOL[dtype], rtol=0)
    assert out.dtype == dtype and out.shape == (3, 2, 5, 6)
    assert (w is None) == (not need_weights)
    if w is not None:
        assert w.shape == (3, 2, 5, 7)


def test_equals_brute_force_loop():
    q, k, v = _qkv((4, 3), (6, 3), 2)
    mask = _random_mask((4, 6))
    out, w = scaled_dot_product_attention(q, k, v, mask)
    for i in range(4):
        s = [float(q[i] @ k[j]) / math.sqrt(3) if mask[i, j] else -math.inf for j in range(6)]
        e = np.exp(np.array(s) - max(s))
        p = e / e.sum()
        np.testing.assert_allclose(w[i].numpy(), p, atol=1e-12)
        np.testing.assert_allclose(out[i].numpy(), p @ v.numpy(), atol=1e-12)


def test_scale_argument_matches_torch():
    q, k, v = _qkv((2, 5, 4), (2, 6, 4), 3)
    out, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), atol=1e-6, rtol=0)


def test_broadcast_batch_dimensions():
    q, _, _ = _qkv((1, 5, 4), (1, 6, 4), 3)
    _, k, v = _qkv((3, 5, 4), (3, 6, 4), 3, seed=2)
    for need in (True, False):
        out, _ = scaled_dot_product_attention(q, k, v, need_weights=need)
        assert out.shape == (3, 5, 3)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q.expand(3, 5, 4), k, v), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- properties of the weights


def test_rows_sum_to_one_and_masked_keys_get_zero():
    q, k, v = _qkv((2, 6, 5), (2, 9, 5), 4)
    _, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, dtype=w.dtype))
    assert (w > 0).all()
    mask = _random_mask((2, 6, 9))
    _, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, dtype=w.dtype))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()


def test_masked_keys_do_not_influence_the_output():
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2)
    mask = torch.tensor([True, True, False, True, False])
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    k2, v2 = k.clone(), v.clone()
    k2[:, ~mask] = 100.0
    v2[:, ~mask] = -50.0
    torch.testing.assert_close(scaled_dot_product_attention(q, k2, v2, mask)[0], out, atol=1e-12, rtol=0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_row_gives_zero_output_and_weights(need_weights):
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2)
    q.requires_grad_(True)
    mask = _random_mask((2, 4, 5))
    mask[0, 1] = False
    mask[1, 3] = False
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    assert torch.isfinite(out).all()
    assert (out[0, 1] == 0).all() and (out[1, 3] == 0).all()
    if w is not None:
        assert (w[0, 1] == 0).all() and (w[1, 3] == 0).all()
        torch.testing.assert_close(w[0, 0].sum(), torch.tensor(1.0, dtype=w.dtype))
    # the other rows are what they would be without the empty rows
    ref, _ = scaled_dot_product_attention(q, k, v, mask | ~mask.any(-1, keepdim=True))
    torch.testing.assert_close(out[0, 0], ref[0, 0])
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[0, 1] == 0).all()


@pytest.mark.parametrize("need_weights", [True, False])
def test_permutation_equivariance_over_keys_and_values(need_weights):
    q, k, v = _qkv((2, 5, 4), (2, 8, 4), 3)
    mask = _random_mask((2, 5, 8))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    out_p, w_p = scaled_dot_product_attention(q, k[:, perm], v[:, perm], mask[..., perm], need_weights=need_weights)
    torch.testing.assert_close(out_p, out, atol=1e-12, rtol=0)  # invariant in the keys' order
    if w is not None:
        torch.testing.assert_close(w_p, w[..., perm], atol=1e-12, rtol=0)  # weights move with the keys
    # and equivariant in the queries' order
    qp = torch.randperm(5, generator=torch.Generator().manual_seed(4))
    out_q, _ = scaled_dot_product_attention(q[:, qp], k, v, mask[:, qp], need_weights=need_weights)
    torch.testing.assert_close(out_q, out[:, qp], atol=1e-12, rtol=0)


def test_gradients_agree_with_torch_sdpa():
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2)
    mask = _random_mask((2, 4, 5))
    grads = []
    for fn in (lambda *a: scaled_dot_product_attention(*a, mask)[0],
               lambda *a: F.scaled_dot_product_attention(*a, attn_mask=mask)):
        ts = [t.clone().requires_grad_(True) for t in (q, k, v)]
        fn(*ts).pow(2).sum().backward()
        grads.append([t.grad for t in ts])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors():
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2)
    with pytest.raises(ValueError, match=r"same feature size d.*d=3.*d=4"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 4, dtype=q.dtype), v)
    with pytest.raises(ValueError, match=r"same number of keys and values"):
        scaled_dot_product_attention(q, k, torch.randn(2, 6, 2, dtype=q.dtype))
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to \(2, 4, 5\), got \(4, 4\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean tensor"):
        scaled_dot_product_attention(q, k, v, torch.zeros(4, 5))
    q_nan = q.clone()
    q_nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="q: expected finite values, found 1 NaN"):
        scaled_dot_product_attention(q_nan, k, v)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(torch.randn(3), k, v)
    with pytest.raises(TypeError, match="one floating dtype"):
        scaled_dot_product_attention(q.float(), k, v)
    with pytest.raises(TypeError, match="real floating-point"):
        scaled_dot_product_attention(q > 0, k, v)
    with pytest.raises(ValueError, match="broadcastable leading"):
        scaled_dot_product_attention(torch.randn(3, 4, 3, dtype=q.dtype), k, v)
    with pytest.raises(TypeError, match=r"scale: expected a real number in \(0, inf\), got str 'big'"):
        scaled_dot_product_attention(q, k, v, scale="big")
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError, match=r"scale: expected a real number in \(0, inf\)"):
            scaled_dot_product_attention(q, k, v, scale=bad)
    with pytest.raises(ValueError, match="scale: expected a finite real number"):
        scaled_dot_product_attention(q, k, v, scale=float("inf"))
    with pytest.raises(TypeError, match="need_weights: expected a bool"):
        scaled_dot_product_attention(q, k, v, need_weights="yes")
    # d = 0: no feature to take a dot product of (was a ZeroDivisionError from 1 / sqrt(0))
    with pytest.raises(ValueError, match=r"q, k: expected a feature size d >= 1"):
        scaled_dot_product_attention(q[..., :0], k[..., :0], v)


def test_scale_accepts_numpy_scalars():
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2)
    for scale in (np.float32(0.5), np.float64(0.5), 0.5):
        torch.testing.assert_close(scaled_dot_product_attention(q, k, v, scale=scale)[0],
                                   scaled_dot_product_attention(q * 0.5, k, v, scale=1)[0], atol=0, rtol=0)


def test_finiteness_check_names_the_tensor_and_tolerates_an_overflowing_sum():
    # Validation sums each input once: a sum is NaN/inf iff an entry is, or the sum overflows.
    q, k, v = _qkv((2, 4, 3), (2, 5, 3), 2, dtype=torch.float32)
    k_inf = k.clone()
    k_inf[0, 0, 0], k_inf[1, 2, 1] = float("inf"), float("-inf")  # their sum is NaN, not inf
    with pytest.raises(ValueError, match="k: expected finite values, found 2 NaN/inf entries"):
        scaled_dot_product_attention(q, k_inf, v)
    v_nan = v.clone()
    v_nan[1, 4, 1] = float("nan")
    for need in (True, False):
        with pytest.raises(ValueError, match="v: expected finite values, found 1 NaN/inf entries"):
            scaled_dot_product_attention(q, k, v_nan, need_weights=need)
    # finite values whose float32 sum overflows (2 x 3e38 > 3.4e38): accepted, as torch accepts them
    v_big = torch.full((2, 5, 2), 3e38)
    for need in (True, False):
        out, _ = scaled_dot_product_attention(q, k, v_big, need_weights=need)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v_big), rtol=1e-5, atol=0)


def test_checks_leave_no_graph_and_no_warning_on_inputs_that_need_gradients():
    q, k, v = (t.requires_grad_(True) for t in _qkv((2, 4, 3), (2, 5, 3), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Converting a tensor with requires_grad=True to a scalar"
        for need in (True, False):
            out, _ = scaled_dot_product_attention(q, k, v, need_weights=need)
            out.sum().backward()
    assert all(t.grad is not None for t in (q, k, v))


def test_broadcast_helper_equals_torch_broadcast_shapes():
    sizes = [(), (1,), (3,), (0,), (2, 3), (1, 3), (2, 1), (4, 2, 3), (4, 1, 1), (0, 3), (1, 0)]
    for a, b, c in itertools.product(sizes, repeat=3):
        try:
            expected = tuple(torch.broadcast_shapes(a, b, c))
        except RuntimeError:
            expected = None
        assert _broadcast(a, b, c) == expected, (a, b, c)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("masking", ["none", "padding", "boolean", "empty row", "wider than q and k"])
def test_weights_are_the_formula_bit_for_bit_with_and_without_autograd(dtype, masking):
    # The chapters print these weights: the in-place path (no autograd) and the autograd path
    # must give the bits of softmax((q @ k^T) * scale, masked with -inf), not merely close ones.
    q, k, v = _qkv((3, 2, 5, 8), (3, 2, 7, 8), 6, dtype)
    if masking == "wider than q and k":  # v and the mask have a batch dimension that q @ k^T lacks
        v = torch.randn(4, 3, 2, 7, 6, dtype=dtype, generator=torch.Generator().manual_seed(5))
    mask = {"none": None, "padding": (torch.arange(7) < torch.tensor([7, 4, 1])[:, None])[:, None, None, :],
            "boolean": _random_mask((3, 2, 5, 7)), "empty row": _random_mask((3, 2, 5, 7)),
            "wider than q and k": _random_mask((4, 1, 2, 5, 7))}[masking]
    if masking == "empty row":
        mask[1, 0, 2] = False
    scores = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(8))
    if mask is not None:
        empty = ~mask.any(-1, keepdim=True)
        scores = scores.masked_fill(~(mask | empty), float("-inf"))
    expected = torch.softmax(scores, dim=-1)
    if mask is not None:
        expected = expected.masked_fill(empty, 0.0)
    bits = {torch.float64: torch.int64, torch.float32: torch.int32}[dtype]  # -0.0 and 0.0 differ too
    for grad in (False, True):
        ts = [t.clone().requires_grad_(grad) for t in (q, k, v)]
        out, w = scaled_dot_product_attention(*ts, mask)
        assert torch.equal(w.detach().view(bits), expected.view(bits)), grad
        assert torch.equal(out.detach().view(bits), (expected @ v).view(bits)), grad


class _OpLog(TorchDispatchMode):
    """Records every ATen operation run inside it, with its output (kept alive, so that no two
    outputs share an address by reuse)."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append((func, out))
        return out


@pytest.mark.parametrize("masking", ["none", "padding"])
def test_need_weights_false_costs_two_operations_per_input_beyond_torchs_own(masking):
    # What the fused path adds to torch's call, counted in ATen operations (so the test fails on
    # a slow design, not on a busy machine): a sum per input, their total, one host sync; with a
    # mask, whether some row has no key (two reductions of the small mask, one sync). It was 13
    # and 16 (isfinite of the total as four operations, three expand calls for equal shapes).
    q, k, v = _qkv((8, 4, 16, 8), (8, 4, 16, 8), 8, torch.float32)
    mask = None if masking == "none" else (torch.arange(16) < torch.arange(1, 9)[:, None])[:, None, None, :]
    with _OpLog() as theirs:
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with _OpLog() as ours:
        scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    assert len(ours.ops) - len(theirs.ops) <= {"none": 6, "padding": 9}[masking], [str(f) for f, _ in ours.ops]


@pytest.mark.parametrize("masking", ["none", "padding"])
def test_need_weights_true_without_autograd_fills_one_score_buffer(masking):
    # Scaling, masking and the softmax work in place on the (B, H, L_q, L_k) buffer of q @ k^T:
    # a fresh buffer per step (there were four) cost more than the arithmetic.
    b, h, l_q, l_k = 3, 2, 5, 7
    q, k, v = _qkv((b, h, l_q, 4), (b, h, l_k, 4), 3)
    mask = None if masking == "none" else (torch.arange(l_k) < torch.tensor([7, 4, 1])[:, None])[:, None, None, :]
    with torch.no_grad(), _OpLog() as log:
        _, w = scaled_dot_product_attention(q, k, v, mask)
    buffers = {out.untyped_storage().data_ptr() for _, out in log.ops
               if isinstance(out, torch.Tensor) and out.numel() == b * h * l_q * l_k}
    assert len(buffers) == 1 and w.untyped_storage().data_ptr() in buffers


# ---------------------------------------------------------------- MultiHeadAttention vs torch


def _inputs(b=3, l_q=4, l_k=6, e=8, kdim=8, vdim=8, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, l_q, e, generator=g, dtype=dtype), torch.randn(b, l_k, kdim, generator=g, dtype=dtype),
            torch.randn(b, l_k, vdim, generator=g, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kdim, vdim", [(8, 8), (5, 7)])
@pytest.mark.parametrize("average", [True, False])
def test_mha_equals_torch_with_copied_weights(dtype, kdim, vdim, average):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim, batch_first=True).to(dtype)
    with torch.no_grad():  # non-zero biases, so that copying them is tested
        ref.in_proj_bias.normal_()
        ref.out_proj.bias.normal_()
    ours = MultiHeadAttention.from_torch(ref)
    query, key, value = _inputs(kdim=kdim, vdim=vdim, dtype=dtype)
    key_mask = torch.tensor([[True] * 6, [True, True, True, False, False, False], [True, False] * 3])
    attn_mask = _random_mask((4, 6), seed=5)
    for km, am in [(None, None), (key_mask, None), (key_mask, attn_mask)]:
        out, w = ours(query, key, value, key_mask=km, attn_mask=am, average_weights=average)
        r_out, r_w = ref(query, key, value, key_padding_mask=None if km is None else ~km,
                         attn_mask=None if am is None else ~am, average_attn_weights=average)
        torch.testing.assert_close(out, r_out, atol=TOL[dtype], rtol=0)
        torch.testing.assert_close(w, r_w, atol=TOL[dtype], rtol=0)
        fast, none = ours(query, key, value, key_mask=km, attn_mask=am, need_weights=False)
        assert none is None
        torch.testing.assert_close(fast, r_out, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("b", [2, 3])  # b = 2 = the number of heads was where it went wrong
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_per_item_mask_equals_torch(b, need_weights):
    # attn_mask (B, L_q, L_k): one mask per item, the same for every head. torch's 3-D mask is
    # (B * H, L_q, L_k) with True = ignore, so the equivalent is ~mask repeated per head.
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2, batch_first=True).double()
    ours = MultiHeadAttention.from_torch(ref)
    query, key, value = _inputs(b=b, dtype=torch.float64)
    mask = _random_mask((b, 4, 6), seed=7, p=0.5)
    out, w = ours(query, key, value, attn_mask=mask, need_weights=need_weights, average_weights=False)
    r_out, r_w = ref(query, key, value, attn_mask=~mask.repeat_interleave(2, dim=0), average_attn_weights=False)
    torch.testing.assert_close(out, r_out, atol=1e-10, rtol=0)
    if need_weights:
        torch.testing.assert_close(w, r_w, atol=1e-10, rtol=0)
        assert bool((w[~mask[:, None].expand_as(w)] == 0).all())  # each item's masked keys, in every head
    # the same mask given per head explicitly, (B, H, L_q, L_k), gives the same result
    same, _ = ours(query, key, value, attn_mask=mask[:, None].expand(b, 2, 4, 6), need_weights=need_weights)
    torch.testing.assert_close(same, out, atol=1e-12, rtol=0)


def test_mha_3d_mask_is_per_item_never_per_head():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    query, key, value = _inputs(b=3)
    per_head = _random_mask((2, 4, 6))  # (H, L_q, L_k) with H != B
    with pytest.raises(ValueError, match=r"one mask per item \(B, L_q, L_k\); per head, pass \(1, H, L_q, L_k\)"):
        mha(query, key, value, attn_mask=per_head)
    a, _ = mha(query, key, value, attn_mask=per_head[None])  # the per-head spelling works
    b, _ = mha(query, key, value, attn_mask=per_head[None].expand(3, 2, 4, 6))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_mha_refuses_a_dtype_other_than_its_parameters():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)  # float32
    query, key, value = _inputs(dtype=torch.float64)
    with pytest.raises(TypeError, match=r"query: expected dtype torch.float32 \(the module's parameters\), "
                                        r"got torch.float64"):
        mha(query, key, value)  # was silently computed in float32
    with pytest.raises(TypeError, match="key: expected dtype torch.float32"):
        mha(query.float(), key.numpy(), value.float())
    with pytest.raises(TypeError, match="value: expected dtype torch.float32.*torch.float16"):
        mha(query.float(), key.float(), value.half())
    out32, _ = mha(query.float(), key.float(), value.float())
    out64, _ = mha.double()(query, key, value)  # converting the module is the way to float64
    assert out32.dtype == torch.float32 and out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, atol=1e-5, rtol=0)


def test_mha_flags_must_be_bools():
    mha = MultiHeadAttention(8, 2)
    query, key, value = _inputs()
    with pytest.raises(TypeError, match="average_weights: expected a bool .* got str 'no'"):
        mha(query, key, value, average_weights="no")
    with pytest.raises(TypeError, match="need_weights: expected a bool"):
        mha(query, key, value, need_weights=0)
    w_np = mha(query, key, value, average_weights=np.bool_(False))[1]
    assert w_np.shape == (3, 2, 4, 6)


def test_mha_to_torch_round_trip():
    torch.manual_seed(1)
    ours = MultiHeadAttention(12, 3, kdim=5, vdim=4)
    back = ours.to_torch()
    assert isinstance(back, nn.MultiheadAttention) and back.batch_first
    query, key, value = _inputs(e=12, kdim=5, vdim=4)
    torch.testing.assert_close(ours(query, key, value)[0], back(query, key, value)[0], atol=1e-6, rtol=0)
    again = MultiHeadAttention.from_torch(back)
    for a, b in zip(ours.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_mha_shapes_and_fully_masked_query():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 4)
    query, key, value = _inputs()
    out, w = mha(query, key, value, average_weights=False)
    assert out.shape == (3, 4, 8) and w.shape == (3, 4, 4, 6)
    key_mask = torch.ones(3, 6, dtype=torch.bool)
    key_mask[1] = False  # no key for any query of item 1
    out, w = mha(query, key, value, key_mask=key_mask)
    assert torch.isfinite(out).all() and (w[1] == 0).all()
    torch.testing.assert_close(out[1], mha.out_proj.bias.expand(4, 8))


def test_mha_bad_inputs():
    with pytest.raises(ValueError, match="divisor of embed_dim=8"):
        MultiHeadAttention(8, 3)
    mha = MultiHeadAttention(8, 2)
    query, key, value = _inputs()
    with pytest.raises(ValueError, match=r"query: expected shape \(B, L_q, 8\)"):
        mha(query[..., :5], key, value)
    with pytest.raises(ValueError, match="same batch size"):
        mha(query[:2], key, value)
    with pytest.raises(ValueError, match=r"key_mask: expected a shape broadcastable to \(3, 6\)"):
        mha(query, key, value, key_mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="3-D"):
        mha(query[0], key, value)
    for name in ("query", "key", "value"):
        bad = {"query": query, "key": key, "value": value}
        bad[name] = bad[name].clone()
        bad[name][1, 2, 3] = float("nan")
        with pytest.raises(ValueError, match=f"^{name}: expected finite values, found 1 NaN"):
            mha(**bad)
    with pytest.raises(TypeError, match="MultiheadAttention"):
        MultiHeadAttention.from_torch(nn.Linear(3, 3))


# ---------------------------------------------------------------- CrossModalAttention


def test_cross_modal_attention_equals_torch_and_mixes_the_context():
    torch.manual_seed(0)
    cross = CrossModalAttention(query_dim=8, context_dim=5, num_heads=2)
    text, image, _ = _inputs(b=2, l_q=3, l_k=7, e=8, kdim=5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 4:] = False
    out, w = cross(text, image, mask)
    r_out, r_w = cross.attention.to_torch()(text, image, image, key_padding_mask=~mask)
    torch.testing.assert_close(out, r_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(w, r_w, atol=1e-5, rtol=0)
    assert out.shape == (2, 3, 8) and w.shape == (2, 3, 7)
    # changing a masked context token changes nothing; changing a real one changes the output
    image2 = image.clone()
    image2[0, 5] += 10.0
    torch.testing.assert_close(cross(text, image2, mask)[0], out)
    image2[0, 1] += 10.0
    assert not torch.allclose(cross(text, image2, mask)[0][0], out[0])


# ---------------------------------------------------------------- AttentionFusion: the Fusion contract


TOKENS = [(6, 4), (5, 3), (3, 2)]  # context (e.g. image patches), then two querying modalities


def _flat(b=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, l * d, generator=g, dtype=dtype) for l, d in TOKENS]


def test_fusion_contract_shapes():
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=10, embed_dim=8, num_heads=2)
    assert isinstance(fusion, Fusion)
    assert fusion.input_dims == (24, 15, 6) and fusion.output_dim == 10 and fusion.n_modalities == 3
    xs = _flat()
    assert fusion(xs).shape == (4, 10)
    maps = fusion.attend(xs)
    assert set(maps) == {1, 2} and maps[1].shape == (4, 5, 6) and maps[2].shape == (4, 3, 6)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(4, 5))
    assert fusion.attend(xs, average_weights=False)[1].shape == (4, 2, 5, 6)
    fusion.double()
    assert fusion([x.double() for x in xs]).dtype == torch.float64


def test_fusion_zero_tokens_are_padding_and_missing_modalities_are_defined():
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=10, embed_dim=8)
    xs = _flat()
    base = fusion(xs)
    # zeroing a context token removes it from the keys: its weight is 0
    ctx = xs[0].reshape(4, 6, 4).clone()
    ctx[:, 2] = 0
    xs_pad = [ctx.reshape(4, -1), xs[1], xs[2]]
    assert (fusion.attend(xs_pad)[1][..., 2] == 0).all()
    # padding tokens of a querying modality take no part: what sits at their positions is irrelevant
    text = xs[1].reshape(4, 5, 3).clone()
    text[:, 3:] = 0
    xs_text = [xs[0], text.reshape(4, -1), xs[2]]
    out_a = fusion(xs_text)
    with torch.no_grad():
        fusion.position[1][3:] += 7.0
    torch.testing.assert_close(fusion(xs_text), out_a)
    assert not torch.allclose(fusion(xs), base)  # ... while the real tokens at those positions do see it
    # a whole modality missing (all zeros) gives a finite output that differs from the full one
    for m in range(3):
        missing = [torch.zeros_like(x) if i == m else x for i, x in enumerate(xs)]
        out = fusion(missing)
        assert torch.isfinite(out).all() and not torch.allclose(out, base)
    # with the context missing, the attention adds nothing: the output only depends on the queries
    no_ctx = [torch.zeros_like(xs[0]), xs[1], xs[2]]
    with torch.no_grad():
        for cross in fusion.cross:
            cross.attention.out_proj.bias.fill_(5.0)
        a = fusion(no_ctx)
        for cross in fusion.cross:
            cross.attention.v_proj.weight.mul_(3.0)
            cross.attention.out_proj.bias.fill_(-5.0)
        torch.testing.assert_close(fusion(no_ctx), a)


def test_fusion_is_equivariant_to_the_order_of_context_tokens_without_positions():
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=3, embed_dim=8)
    with torch.no_grad():
        fusion.position[0].zero_()
    xs = _flat()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    ctx = xs[0].reshape(4, 6, 4)[:, perm].reshape(4, -1)
    torch.testing.assert_close(fusion([ctx, xs[1], xs[2]]), fusion(xs), atol=1e-6, rtol=0)


def test_fusion_bad_inputs():
    fusion = AttentionFusion(TOKENS, output_dim=10)
    xs = _flat()
    with pytest.raises(ValueError, match="expected 3 modalities"):
        fusion(xs[:2])
    with pytest.raises(ValueError, match=r"modality 1: expected feature size 15"):
        fusion([xs[0], xs[1][:, :14], xs[2]])
    with pytest.raises(ValueError, match="same batch size"):
        fusion([xs[0], xs[1][:3], xs[2]])
    bad = xs[2].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        fusion([xs[0], xs[1], bad])
    with pytest.raises(TypeError, match="list of 3 tensors"):
        fusion(xs[0])
    with pytest.raises(TypeError, match=r"token_dims\[1\]: expected a pair"):
        AttentionFusion([(6, 4), 15], output_dim=10)
    with pytest.raises(ValueError, match="at least 2 modalities"):
        AttentionFusion([(6, 4)], output_dim=10)
    with pytest.raises(ValueError, match="context"):
        AttentionFusion(TOKENS, output_dim=10, context=3)


def test_fusion_forward_is_deterministic_in_both_modes():
    # No dropout or other randomness: a forward pass draws no random numbers (so evaluating
    # during training does not shift the seeded stream of what follows) and train and eval
    # mode compute the same thing.
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=3, embed_dim=8, num_heads=2)
    xs = _flat(b=16)
    state = torch.get_rng_state()
    with torch.no_grad():
        out_train = fusion.train()(xs)
        out_eval = fusion.eval()(xs)
        weights_train = fusion.train().attend(xs)
        weights_eval = fusion.eval().attend(xs)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out_train, out_eval)
    assert all(torch.equal(weights_train[m], weights_eval[m]) for m in weights_eval)


def test_fusion_train_step_moves_weights():
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=3, embed_dim=8)
    xs, y = _flat(b=16), torch.arange(16) % 3
    before = {k: v.clone() for k, v in fusion.state_dict().items()}
    opt = torch.optim.Adam(fusion.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(fusion.train()(xs), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for name in ("cross.0.attention.q_proj.weight", "project.0.weight", "out.weight"):
        assert not torch.equal(before[name], fusion.state_dict()[name])


# ---------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    q, k, v = _qkv((2, 3, 5, 8), (2, 3, 7, 8), 4, torch.float32)
    mask = _random_mask((2, 3, 5, 7))
    mask[0, 0, 1] = False
    for need in (True, False):
        out_cpu, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=need)
        out, w = scaled_dot_product_attention(q.cuda(), k.cuda(), v.cuda(), mask.cuda(), need_weights=need)
        assert out.device.type == "cuda" and (w is None or w.device.type == "cuda")
        torch.testing.assert_close(out.cpu(), out_cpu, atol=1e-4, rtol=0)  # TF32/fused kernels on GPU
        assert (out[0, 0, 1] == 0).all()
    torch.manual_seed(0)
    fusion = AttentionFusion(TOKENS, output_dim=3, embed_dim=8).cuda()
    xs = [x.cuda() for x in _flat()]
    assert fusion(xs).device.type == "cuda"
    mha = MultiHeadAttention(8, 2).cuda()
    query, key, value = (t.cuda() for t in _inputs())
    assert mha(query, key, value)[0].device.type == "cuda"


# ----------------------------------------------------------------------------- found by mutation testing
# (scripts/mutation_test.py attention --sample 80): behaviour no test above could tell apart from a wrong one
def test_mha_defaults_and_initialisation_are_torchs():
    torch.manual_seed(0)
    mha = MultiHeadAttention(64)
    assert mha.num_heads == 1
    bound = math.sqrt(6 / (64 + 64))  # Xavier-uniform: std = bound / sqrt(3); nn.Linear's default is 1/sqrt(3 * 64)
    for lin in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
        w = lin.weight.detach()
        assert float(w.abs().max()) <= bound
        assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.01
        assert torch.equal(lin.bias.detach(), torch.zeros(64))


def test_mha_input_checks_that_were_never_reached():
    mha = MultiHeadAttention(4, 2)
    x = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match=r"^query: expected a real floating-point tensor, got dtype torch.bool"):
        mha(x > 0, x, x)
    with pytest.raises(ValueError, match=r"^query: expected finite values"):
        mha(x.clone().fill_(float("nan")), x, x)
    with pytest.raises(ValueError, match=r"expected the same batch size for query, key, value, got 2, 2, 1"):
        mha(x, x, x[:1])
    with pytest.raises(ValueError, match=r"^key_mask: expected shape \(2, 3\), got \(3,\)"):
        mha(x, x, x, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="add_bias_kv and add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(4, 2, add_zero_attn=True))


def test_fusion_defaults_checks_token_mask_and_repr():
    fusion = AttentionFusion(TOKENS, output_dim=10)
    assert fusion.embed_dim == 32 and all(c.attention.num_heads == 1 for c in fusion.cross)
    assert all(float(p.detach().std()) < 0.05 for p in fusion.position)  # small positional embeddings (0.02 * N(0, 1))
    assert "token_dims=" in repr(fusion) and "embed_dim=32" in repr(fusion)
    with pytest.raises(TypeError, match="token_dims: expected a sequence of"):
        AttentionFusion(5, output_dim=10)
    # a token takes part unless all its features are zero
    l_0, d_0 = TOKENS[0]
    x = torch.zeros(1, l_0, d_0)
    x[0, 0, 0] = 1.0
    _, mask = fusion.tokens(x.reshape(1, -1), 0)
    assert mask[0].tolist() == [True] + [False] * (l_0 - 1)


def test_mha_round_trip_keeps_non_zero_biases_and_more_checks():
    torch.manual_seed(2)
    ours = MultiHeadAttention(4, 2)
    with torch.no_grad():
        for lin in (ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj):
            lin.bias.normal_()
    back = ours.to_torch()
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(ours(x, x, x)[0], back(x, x, x)[0], atol=1e-6, rtol=0)
    assert ours(x, x, x)[1].shape == (2, 3, 3)  # weights averaged over heads by default
    assert "num_heads=2" in repr(ours)
    as_list = ours(x, x, x, key_mask=[[True, True, False], [True, False, True]])
    as_tensor = ours(x, x, x, key_mask=torch.tensor([[True, True, False], [True, False, True]]))
    assert torch.equal(as_list[0], as_tensor[0])
    with pytest.raises(TypeError, match="bias: expected a bool, got int"):
        MultiHeadAttention(4, 2, bias=1)
    with pytest.raises(ValueError, match=r"key, value: expected the same length L_k, got 3 and 2"):
        ours(x, x, x[:, :2])
    with pytest.raises(ValueError, match=r"^k: expected at least one key"):
        scaled_dot_product_attention(x, x[:, :0], x[:, :0])
    assert CrossModalAttention(4, 3).attention.num_heads == 1
    assert AttentionFusion(TOKENS, output_dim=2, context=len(TOKENS) - 1).queries == (0, 1)  # the last one may be it
    with pytest.raises(ValueError, match="context"):
        AttentionFusion(TOKENS, output_dim=2, context=len(TOKENS))


def test_fusion_tokens_add_positions_and_pool_by_a_masked_mean():
    fusion = AttentionFusion(TOKENS, output_dim=2)
    x = _flat(b=2)[1]
    tokens, _ = fusion.tokens(x, 1)
    torch.testing.assert_close(tokens, fusion.project[1](x.reshape(2, *TOKENS[1])) + fusion.position[1])
    t = torch.tensor([[[1.0], [3.0], [5.0], [7.0]]])
    for mask, want in (([True, True, False, False], 2.0), ([False, False, True, False], 5.0), ([False] * 4, 0.0)):
        assert float(AttentionFusion._masked_mean(t, torch.tensor([mask]))) == want
