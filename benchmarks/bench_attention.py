"""Time mmedu.attention.scaled_dot_product_attention against torch.nn.functional.scaled_dot_product_attention.

    python benchmarks/bench_attention.py                 # B x H x L x d = 8x4x64x32 ... 2x8x2048x64
    python benchmarks/bench_attention.py --quick         # the two smallest sizes
    python benchmarks/bench_attention.py --sizes 4x8x512x64 --repeats 20
    python benchmarks/bench_attention.py --device cuda   # both on the GPU
    python benchmarks/bench_attention.py --threads 1     # on a busy shared machine

Queries, keys and values are float32 ``(B, H, L, d)`` (self-attention: ``L_q = L_k = L``),
without a mask and with a key-padding mask (each item keeps a random number of keys,
at least one).  For each size the table has two mmedu rows:

* ``weights=no`` — ``need_weights=False``: mmedu validates its inputs and calls torch's own
  fused kernel, so the ratio measures the cost of validation (goal <= 1.2);
* ``weights=yes`` — ``need_weights=True``: mmedu's tensor-primitive path, which builds the
  ``(L_q, L_k)`` weight matrix that the fused kernel never materialises; slower by design.

``ratio`` = mmedu time / torch time (medians of ``--repeats`` calls after one warm-up; the three
calls are timed in turn within each repeat, so load on a shared machine hits them alike);
``max|diff|`` is the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from mmedu.attention import scaled_dot_product_attention

DEFAULT_SIZES = "8x4x64x32,8x4x256x64,4x8x1024x64,2x8x2048x64"
QUICK_SIZES = "8x4x64x32,8x4x256x64"


def interleaved_medians(fns, repeats: int, device: torch.device):
    """Median time of each function, timed in turn within every repeat (a load spike on a shared
    machine then hits all of them alike, not one row of the table); returns (medians, outputs)."""
    outs = [fn() for fn in fns]  # warm-up (kernel selection, allocator)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            outs[i] = fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help=f"comma-separated BxHxLxd list (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help=f"use {QUICK_SIZES}")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="limit torch's CPU threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x"))
             for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(args.seed)

    print(f"float32  device={device}  torch={torch.__version__}  threads={torch.get_num_threads()}  "
          f"repeats={args.repeats} (median)")
    header = (f"{'B':>3} | {'H':>2} | {'L':>5} | {'d':>3} | {'mask':>7} | {'weights':>7} | {'mmedu ms':>9} | "
              f"{'torch ms':>9} | {'ratio':>6} | {'max|diff|':>9}")
    print(header)
    print("-" * len(header))
    fused_ratios = []  # weights=no: mmedu's validation + torch's kernel, over torch's kernel alone
    for b, h, length, d in sizes:
        q, k, v = (torch.randn(b, h, length, d, generator=g).to(device) for _ in range(3))
        keep = torch.randint(1, length + 1, (b,), generator=g)
        padding = (torch.arange(length)[None, :] < keep[:, None])[:, None, None, :].to(device)  # (B, 1, 1, L)
        for mask_name, mask in (("none", None), ("padding", padding)):
            (t_ref, t_fast, t_weights), (ref, fast, with_weights) = interleaved_medians(
                [lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 lambda: scaled_dot_product_attention(q, k, v, mask, need_weights=False)[0],
                 lambda: scaled_dot_product_attention(q, k, v, mask, need_weights=True)[0]],
                args.repeats, device)
            fused_ratios.append(t_fast / t_ref)
            for need, t_ours, out in ((False, t_fast, fast), (True, t_weights, with_weights)):
                diff = (out - ref).abs().max().item()
                print(f"{b:>3} | {h:>2} | {length:>5} | {d:>3} | {mask_name:>7} | {'yes' if need else 'no':>7} | "
                      f"{1e3 * t_ours:9.3f} | {1e3 * t_ref:9.3f} | {t_ours / t_ref:6.2f} | {diff:9.1e}")
    print(f"weights=no: largest ratio {max(fused_ratios):.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
