"""Time ``mmedu.tensor.tucker`` against tensorly's ``tucker`` on the same tensors.

Not a test: prints, per tensor, the wall time of both (best of ``--repeats``),
their ratio (mmedu / tensorly; < 1 means mmedu is faster), both relative
reconstruction errors ||X - X^||/||X|| and the HOOI sweeps each ran.

Fair by construction: the same float64 data (a NumPy array for tensorly's NumPy
backend, the same memory as a torch tensor for mmedu), the same init (HOSVD),
the same ``n_iter_max`` and ``tol`` with the same stopping rule (relative error
changed by less than ``tol``, checked from the third sweep on), and the same
number of BLAS threads for NumPy and torch (``--threads``, default 1).

Tensors: ``lowrank`` = a random Tucker tensor of the requested ranks plus 10 %
Gaussian noise (HOOI stops after the minimum three sweeps); ``gauss`` = i.i.d.
Gaussian entries (no structure, HOOI needs more sweeps).

    python benchmarks/bench_tucker.py            # 3-way, sides 40..200, ranks 5/10/20
    python benchmarks/bench_tucker.py --quick    # small sizes, a few seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes only (a few seconds)")
    p.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for both libraries (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="minimum timed runs per case; the best is reported")
    p.add_argument("--n-iter-max", type=int, default=100)
    p.add_argument("--tol", type=float, default=1e-4, help="tolerance on the change of the relative error")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    # Thread counts must be fixed before NumPy/torch load their BLAS.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

    import numpy as np
    import tensorly as tl
    import torch
    from tensorly.decomposition import tucker as tl_tucker

    import mmedu.tensor as mt

    torch.set_num_threads(args.threads)
    tl.set_backend("numpy")

    if args.quick:
        sides, ranks_list = (20, 40), (3, 5)
    else:
        sides, ranks_list = (40, 80, 120, 200), (5, 10, 20)

    rng = np.random.default_rng(args.seed)

    def make(side: int, rank: int, kind: str) -> np.ndarray:
        shape = (side, side, side)
        if kind == "gauss":
            return rng.standard_normal(shape)
        core = rng.standard_normal((rank,) * 3)
        factors = [np.linalg.qr(rng.standard_normal((s, rank)))[0] for s in shape]
        x = tl.tucker_to_tensor((core, factors))
        noise = rng.standard_normal(shape)
        return x + 0.1 * np.linalg.norm(x) / np.linalg.norm(noise) * noise

    def best_times(fn_a, fn_b) -> tuple[float, float, object, object]:
        """Best wall time of each, runs interleaved (a, b, a, b, ...) so that load from other
        processes hits both alike.  ``--repeats`` runs (fewer once a side has spent 20 s on the
        case); small cases repeat until each side ran ~0.3 s (at most 50 runs)."""
        best_a = best_b = float("inf")
        spent_a = spent_b = 0.0
        runs = 0
        while (runs < 1 or (runs < args.repeats and max(spent_a, spent_b) < 20)
               or (min(spent_a, spent_b) < 0.3 and runs < 50)):
            t0 = time.perf_counter()
            out_a = fn_a()
            t1 = time.perf_counter()
            out_b = fn_b()
            t2 = time.perf_counter()
            best_a, best_b = min(best_a, t1 - t0), min(best_b, t2 - t1)
            spent_a, spent_b, runs = spent_a + t1 - t0, spent_b + t2 - t1, runs + 1
        return best_a, best_b, out_a, out_b

    def rel_error(x: np.ndarray, core, factors) -> float:
        xr = tl.tucker_to_tensor((np.asarray(core), [np.asarray(f) for f in factors]))
        return float(np.linalg.norm(x - xr) / np.linalg.norm(x))

    print(f"numpy {np.__version__}, tensorly {tl.__version__}, torch {torch.__version__}, threads={args.threads}, "
          f"n_iter_max={args.n_iter_max}, tol={args.tol:g}, best of up to {args.repeats} runs")
    head = (f"{'shape':>15} {'ranks':>12} {'kind':>7} {'t_mmedu':>9} {'t_tensorly':>10} {'ratio':>6} "
            f"{'err_mmedu':>11} {'err_tensorly':>12} {'rel_diff':>9} {'sweeps':>6}")
    print(head)
    print("-" * len(head))
    ratios = []
    for side in sides:
        for rank in ranks_list:
            if rank >= side:
                continue
            for kind in ("lowrank", "gauss"):
                x = make(side, rank, kind)
                xt = torch.from_numpy(x)
                ranks = (rank,) * 3
                t_m, t_t, (core_m, fac_m), (tt, errs_t) = best_times(
                    lambda: mt.tucker(xt, ranks, n_iter_max=args.n_iter_max, tol=args.tol, init="svd"),
                    lambda: tl_tucker(x, ranks, n_iter_max=args.n_iter_max, tol=args.tol, init="svd",
                                      return_errors=True),
                )
                # Sweep count of mmedu (untimed; the public function returns only (core, factors)).
                sweeps_m = len(mt._hooi(xt, ranks, args.n_iter_max, args.tol, mt._hosvd_factors(xt, ranks))[2])
                e_m = rel_error(x, core_m, fac_m)
                e_t = rel_error(x, tt.core, tt.factors)
                ratios.append(t_m / t_t)
                print(f"{str(x.shape):>15} {str(ranks):>12} {kind:>7} {t_m:9.4f} {t_t:10.4f} {t_m / t_t:6.2f} "
                      f"{e_m:11.8f} {e_t:12.8f} {(e_m - e_t) / e_t:9.1e} {sweeps_m:>2}/{len(errs_t):<3}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"time ratio mmedu/tensorly: geometric mean {geo:.2f}, max {max(ratios):.2f}, min {min(ratios):.2f}")


if __name__ == "__main__":
    main()
