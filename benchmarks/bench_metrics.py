"""Time mmedu.metrics' Recall@K and mAP next to one ``torch.sort`` of the same similarity matrix.

A full ranking needs a sort per row, so one ``torch.sort(similarity, dim=1)``
is the floor for mAP (goal: mAP <= ~1.5x sort).  Recall@K needs no sort at all
(goal: well under a second at 5,000 x 25,000).

    python benchmarks/bench_metrics.py            # 1000x5000 ... 5000x25000
    python benchmarks/bench_metrics.py --quick    # small sizes only
    python benchmarks/bench_metrics.py --sizes 2000x10000 --repeats 3 --device cuda

The similarity is the cosine similarity of random 64-d float32 embeddings (so
float32 ties occur as they do with real embeddings); labels come from
``--classes`` balanced classes.  Times are the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmedu.metrics import cosine_similarity, mean_average_precision, recall_at_k

DEFAULT_SIZES = "1000x5000,2000x10000,5000x25000"
QUICK_SIZES = "500x2500,1000x5000"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, repeats: int, device: torch.device) -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
        del out
    return best


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        q, g = item.lower().split("x")
        sizes.append((int(q), int(g)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help=f"comma-separated QxG list (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help=f"use {QUICK_SIZES}")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (e.g. 1 on a busy machine)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = parse_sizes(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    device = torch.device(args.device)

    print(f"device={device}  torch={torch.__version__}  threads={torch.get_num_threads()}  repeats={args.repeats}")
    # warm-up (first calls pay for allocator / kernel initialisation)
    warm = torch.randn(64, 256, device=device)
    recall_at_k(warm, ks=(1,))
    mean_average_precision(warm, torch.arange(64, device=device) % 4, torch.arange(256, device=device) % 4)
    torch.sort(warm, dim=1)

    header = f"{'Q x G':>13} | {'sort s':>8} | {'R@1,5,10 s':>10} | {'R/sort':>6} | {'mAP s':>8} | {'mAP/sort':>8} | {'R@1':>6} | {'mAP':>6}"
    print(header)
    print("-" * len(header))
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    for q, g in sizes:
        emb_g = torch.randn(g, args.dim, generator=gen)
        emb_q = emb_g[:q] + 1.5 * torch.randn(q, args.dim, generator=gen)  # query i matches gallery i
        sim = cosine_similarity(emb_q, emb_g).to(device)
        g_lab = (torch.arange(g) % args.classes).to(device)
        q_lab = g_lab[:q]

        t_sort = best_time(lambda: torch.sort(sim, dim=1, descending=True), args.repeats, device)
        t_rec = best_time(lambda: recall_at_k(sim, ks=(1, 5, 10)), args.repeats, device)
        t_map = best_time(lambda: mean_average_precision(sim, q_lab, g_lab), args.repeats, device)
        r1 = recall_at_k(sim, ks=(1,))[1]
        m = mean_average_precision(sim, q_lab, g_lab)
        print(
            f"{q:>6}x{g:<6} | {t_sort:8.3f} | {t_rec:10.3f} | {t_rec / t_sort:6.3f} | {t_map:8.3f} | "
            f"{t_map / t_sort:8.3f} | {r1:6.3f} | {m:6.3f}"
        )
        del sim


if __name__ == "__main__":
    main()
