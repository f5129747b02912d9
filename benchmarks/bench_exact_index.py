"""mmedu.retrieval.ExactIndex against faiss.IndexFlatIP, side by side, on one thread.

    python benchmarks/bench_exact_index.py                 # N = 100k, D = 64, 1000 queries, k = 10
    python benchmarks/bench_exact_index.py --repeats 5 --n 200000
    python benchmarks/bench_exact_index.py --tie-path      # also time the tie rule on every row

Both indexes hold the same ``N`` unit vectors (float32, seeded Gaussian directions) and answer the
same ``Q`` queries with their top ``k`` by inner product (``ExactIndex(metric="ip")``, FAISS's
``IndexFlatIP``).  Both run on one thread (``torch.set_num_threads(1)``,
``faiss.omp_set_num_threads(1)``, and the BLAS thread variables set before anything is imported).
The runs are *interleaved* (ExactIndex, FAISS, ExactIndex, FAISS, ...), so that load from other
processes on a shared machine hits both alike; each is timed by wall clock and by the process's
CPU time, and the best of ``--repeats`` is kept.  Printed: the times, the ratio ExactIndex / FAISS
(of the best times, and the median of the per-round ratios), and how many result ids agree with
FAISS (they differ only where two scores tie to float rounding).

``--tie-path`` adds a third contender: ExactIndex with the tie rule applied to every row of every
block (``_topk_in_block_ties``, the implementation before rows without a tie at the cut-off were
given the fast path), which shows what the fast path saves.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="gallery size N (default 100000)")
    parser.add_argument("--dim", type=int, default=64, help="dimension D (default 64)")
    parser.add_argument("--queries", type=int, default=1000, help="number of queries Q (default 1000)")
    parser.add_argument("--k", type=int, default=10, help="results per query (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; best of them is kept (default 3)")
    parser.add_argument("--tie-path", action="store_true", help="also time the tie rule on every row")
    args = parser.parse_args(argv)

    import faiss

    from mmedu import retrieval
    from mmedu.retrieval import ExactIndex

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    gallery = torch.nn.functional.normalize(torch.randn(args.n, args.dim, generator=g), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(args.queries, args.dim, generator=g), dim=1)
    ours = ExactIndex(args.dim, metric="ip").add(gallery)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(gallery.numpy())
    q_np = np.ascontiguousarray(queries.numpy())

    fast_path = retrieval._topk_in_block

    def tie_path_search():
        retrieval._topk_in_block = retrieval._topk_in_block_ties
        try:
            return ours.search(queries, args.k)
        finally:
            retrieval._topk_in_block = fast_path

    contenders = {"ExactIndex": lambda: ours.search(queries, args.k),
                  "faiss.IndexFlatIP": lambda: flat.search(q_np, args.k)}
    if args.tie_path:
        contenders["ExactIndex, tie rule on every row"] = tie_path_search
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    results = {}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            results[name], wall, cpu = _timed(fn)
            times[name].append((wall, cpu))

    print(f"N = {args.n:,}, D = {args.dim}, {args.queries:,} queries, k = {args.k}, one thread, "
          f"best of {args.repeats} interleaved rounds (torch {torch.__version__}, faiss {faiss.__version__})")
    for name, ts in times.items():
        print(f"  {name:<36} wall {min(w for w, _ in ts):7.3f} s   CPU {min(c for _, c in ts):7.3f} s")
    for clock, i in (("wall", 0), ("CPU", 1)):
        a, b = times["ExactIndex"], times["faiss.IndexFlatIP"]
        best = min(t[i] for t in a) / min(t[i] for t in b)
        median = statistics.median(x[i] / y[i] for x, y in zip(a, b))
        print(f"  ratio ExactIndex / FAISS ({clock:>4}): {best:.2f} (best times), {median:.2f} (median of rounds)")
    ids = results["ExactIndex"][1]
    same = (ids == torch.as_tensor(results["faiss.IndexFlatIP"][1])).float().mean().item()
    print(f"  result ids equal to FAISS's: {100 * same:.3f} % (the rest: scores tied to float rounding)")
    if args.tie_path:
        ok = all(torch.equal(x, y) for x, y in zip(results["ExactIndex"],
                                                    results["ExactIndex, tie rule on every row"]))
        print(f"  fast path identical to the tie rule on every row: {ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
