"""Time mmedu.subspace.CCA (closed form) against scikit-learn's CCA (iterative NIPALS) on the same data.

    python benchmarks/bench_cca.py                  # n = 2,000 ... 20,000, d = 64 ... 512, k = 10
    python benchmarks/bench_cca.py --quick          # the two smallest sizes
    python benchmarks/bench_cca.py --sizes 5000x128 --k 5 --repeats 3
    python benchmarks/bench_cca.py --sk-max-iter 5000 --sk-tol 1e-10   # tighter sklearn convergence
    python benchmarks/bench_cca.py --threads 1      # on a busy shared machine (both libraries)

Both views have ``d`` features and share ``k`` latent factors of decreasing
strength (so the canonical correlations are distinct and NIPALS converges).
The table prints the fit times (best of ``--repeats``), their ratio (goal
<= 0.1) and the largest difference between the k canonical correlations
(scikit-learn's are read off its transformed training views).  With
scikit-learn's default ``tol=1e-6`` that difference reflects NIPALS' own
convergence error; ``--sk-tol`` tightens it (and makes scikit-learn slower).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.cross_decomposition import CCA as SkCCA
from threadpoolctl import threadpool_limits

from mmedu.subspace import CCA

DEFAULT_SIZES = "2000x64,5000x128,10000x256,20000x512"
QUICK_SIZES = "2000x64,5000x128"


def make_views(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    strengths = np.geomspace(3.0, 0.3, k)
    z = rng.standard_normal((n, k)) * strengths
    x1 = z @ rng.standard_normal((k, d)) + rng.standard_normal((n, d))
    x2 = z @ rng.standard_normal((k, d)) + rng.standard_normal((n, d))
    return x1, x2


def best_time(fn, repeats: int, device: torch.device):
    best, out = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help=f"comma-separated NxD list (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help=f"use {QUICK_SIZES}")
    parser.add_argument("--k", type=int, default=10, help="number of canonical pairs (both libraries)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sk-max-iter", type=int, default=500, help="scikit-learn max_iter (its default: 500)")
    parser.add_argument("--sk-tol", type=float, default=1e-6, help="scikit-learn tol (its default: 1e-6)")
    parser.add_argument("--device", default="cpu", help="device for mmedu (scikit-learn always runs on CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="limit torch and BLAS threads (both libraries)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # NumPy/SciPy BLAS used by scikit-learn
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    device = torch.device(args.device)

    print(
        f"k={args.k}  mmedu device={device}  torch={torch.__version__}  threads={torch.get_num_threads()}  "
        f"sklearn max_iter={args.sk_max_iter} tol={args.sk_tol}  repeats={args.repeats}"
    )
    CCA(2).fit(np.random.default_rng(0).standard_normal((50, 4)), np.random.default_rng(1).standard_normal((50, 4)))
    header = f"{'n':>6} | {'d':>4} | {'mmedu s':>8} | {'sklearn s':>9} | {'ratio':>6} | {'max|drho|':>9} | {'rho_1':>6} | {'rho_k':>6}"
    print(header)
    print("-" * len(header))
    for n, d in sizes:
        x1, x2 = make_views(n, d, args.k, args.seed)
        t1, t2 = torch.from_numpy(x1).to(device), torch.from_numpy(x2).to(device)
        t_ours, ours = best_time(lambda: CCA(args.k).fit(t1, t2), args.repeats, device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns when NIPALS hits max_iter; the drho column shows it
            t_sk, sk = best_time(
                lambda: SkCCA(n_components=args.k, max_iter=args.sk_max_iter, tol=args.sk_tol).fit(x1, x2),
                args.repeats,
                torch.device("cpu"),
            )
        u, v = sk.transform(x1, x2)
        rho_sk = np.array([np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(args.k)])
        rho = ours.correlations_.cpu().numpy()
        print(
            f"{n:>6} | {d:>4} | {t_ours:8.3f} | {t_sk:9.3f} | {t_ours / t_sk:6.3f} | "
            f"{np.abs(rho - rho_sk).max():9.2e} | {rho[0]:6.3f} | {rho[-1]:6.3f}"
        )


if __name__ == "__main__":
    main()
