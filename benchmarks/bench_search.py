"""Exact vs approximate nearest-neighbour search with FAISS on galleries of 10k to 1M embeddings.

    python benchmarks/bench_search.py                # N = 10k, 100k, 1M (a few minutes, one thread)
    python benchmarks/bench_search.py --book         # the same, written where the book includes it
    python benchmarks/bench_search.py --book --replot  # only redraw the book's figure from its table
    python benchmarks/bench_search.py --quick        # N = 10k, 30k (seconds)
    python benchmarks/bench_search.py --sizes 50000 --queries 500 --out /tmp/bench
    python benchmarks/bench_search.py --hnsw-max 1000000   # HNSW at 1M too (its build is the slow part)

The gallery is shaped like learned retrieval embeddings: ``D = 64`` unit-length vectors with a
low intrinsic dimension (100 overlapping blobs in a 16-dimensional latent space, mapped linearly to
64 dimensions with decaying scales, plus a little noise; a seeded generator, nothing is
downloaded).  The queries are fresh draws from the same distribution.  For each gallery size the script times

* ``Flat``: ``faiss.IndexFlatIP`` — exact search (the reference answer; ``mmedu.retrieval.ExactIndex``
  returns the same neighbours, see ``tests/test_retrieval.py``);
* ``IVF-Flat``: ``faiss.IndexIVFFlat`` with ``nlist = round(sqrt(N))`` k-means cells (trained on
  at most ``64 * nlist`` gallery vectors), searched with ``nprobe`` = 1, 8 and 32 cells;
* ``HNSW``: ``faiss.IndexHNSWFlat`` (``M = 16`` links, ``efSearch`` = 16 and 64), up to ``--hnsw-max``
  vectors.

Columns: build time (train + add, CPU s), query time (CPU ms per query, batch of ``--queries``, best
of ``--repeats``; CPU time of the process, so that other load on a shared machine does not inflate it), Recall@10 against the exact top-10 (the mean fraction of the exact 10 neighbours
found), and memory (bytes of the serialized index, which is what it holds in RAM).  FAISS runs on one
thread (``faiss.omp_set_num_threads(1)``) unless ``--threads`` says otherwise, so the numbers
compare algorithms, not cores.  The script writes ``bench_search.md`` (the table) and
``bench_search.png`` (the figure) to ``--out`` (default ``_build/bench/search/``). Only ``--book``
writes them to ``book/figures/bench_search/``, which the book includes, and only for the
default sizes and settings: a quick run never replaces the book's 1M-vector measurements.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

BOOK_OUT = "book/figures/bench_search"  # where the book includes the table and figure from
DEFAULT_SIZES = "10000,100000,1000000"
QUICK_SIZES = "10000,30000"
DIM = 64
LATENT = 16  # intrinsic dimension of the embeddings
N_CLUSTERS = 100  # blobs ("classes") in the latent space
SPREAD = 0.7  # blob width relative to the spread of the blob centres: neighbouring blobs overlap


def make_embeddings(n: int, mixing: np.ndarray, rng: np.random.Generator, chunk: int = 200_000) -> np.ndarray:
    """``n`` unit vectors (float32) with a low intrinsic dimension, generated chunk by chunk.

    Each vector is a mixture of ``N_CLUSTERS`` blobs in a ``LATENT``-dimensional space (blob centres
    drawn once; blob width ``SPREAD``), mapped to ``DIM`` dimensions by the fixed matrix ``mixing``,
    plus a little isotropic noise, then normalised — like a trained encoder's output, whose
    variance lives in a few directions and whose classes overlap.
    """
    out = np.empty((n, mixing.shape[1]), dtype=np.float32)
    centres = np.random.default_rng(12345).standard_normal((N_CLUSTERS, mixing.shape[0])).astype(np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        z = centres[rng.integers(0, N_CLUSTERS, m)] + SPREAD * rng.standard_normal((m, mixing.shape[0]), dtype=np.float32)
        x = z @ mixing + 0.05 * rng.standard_normal((m, mixing.shape[1]), dtype=np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn, repeats: int = 1):
    """Best CPU time of the process over ``repeats`` runs (seconds) and the last result.

    CPU time, not wall time: on a shared machine another process's load does not inflate it, and
    with one thread it equals the wall time on an idle machine (with more threads it sums them).
    """
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def recall_at_10(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(a[a >= 0]) & set(e)) for a, e in zip(approx[:, :10], exact[:, :10])]
    return float(np.mean(hits)) / 10


def index_bytes(index, faiss) -> int:
    return int(faiss.serialize_index(index).nbytes)


def human_bytes(b: int) -> str:
    return f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b / 2**10:.0f} KiB"



def plot(rows: list[dict], path: Path) -> None:
    """The three panels (query time, Recall@10, memory) against N, one above the other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(3, 1, figsize=(5.2, 6.4), layout="constrained")
    series = {}
    for r in rows:
        series.setdefault(f"{r['index']} {r['setting'].split(', ')[-1]}".strip(), []).append(r)
    for name, rs in series.items():
        ns = [r["n"] for r in rs]
        style = "-" if name.startswith("Flat") else ("--" if name.startswith("IVF") else ":")
        axes[0].plot(ns, [r["ms"] for r in rs], style, marker="o", ms=3, label=name)
        axes[1].plot(ns, [r["recall"] for r in rs], style, marker="o", ms=3)
        axes[2].plot(ns, [r["mem"] / 2**20 for r in rs], style, marker="o", ms=3)
    for ax, title in zip(axes, ["query (CPU ms / query)", "Recall@10 vs exact", "index memory (MiB)"]):
        ax.set_xscale("log")
        ax.set_xlabel("gallery size N", fontsize=9)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[2].yaxis.set_major_formatter(ScalarFormatter())
    axes[2].yaxis.set_minor_formatter(NullFormatter())
    fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.savefig(path, dpi=220)  # high DPI: sharp, and legible on a phone


def rows_from_table(path: Path) -> list[dict]:
    """The rows of a bench_search.md table written by this script (for --replot)."""
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].replace(",", "").isdigit():
            continue
        size, unit = cells[6].split()
        rows.append(dict(n=int(cells[0].replace(",", "")), index=cells[1], setting=cells[2],
                         build=float(cells[3]), ms=float(cells[4]), recall=float(cells[5]),
                         mem=float(size) * units[unit]))
    if not rows:
        raise SystemExit(f"bench_search: no table rows in {path}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help=f"comma-separated gallery sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help=f"use {QUICK_SIZES}")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="query timing: best of this many runs")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest gallery that gets an HNSW index")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="_build/bench/search", help="folder for bench_search.md / .png")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw bench_search.png from the bench_search.md in --out")
    parser.add_argument("--book", action="store_true",
                        help=f"write to {BOOK_OUT}/ (the book's figure); default settings only")
    args = parser.parse_args()
    if args.book:
        changed = [f"--{k.replace('_', '-')}" for k in ("quick", "sizes", "queries", "repeats",
                                                        "hnsw_max", "threads", "seed")
                   if getattr(args, k) != parser.get_default(k)]
        if changed:
            parser.error(f"--book writes the book's measurements: run it with the default "
                         f"settings, not {', '.join(changed)}")
        args.out = BOOK_OUT
    if args.replot:
        out = Path(args.out)
        plot(rows_from_table(out / "bench_search.md"), out / "bench_search.png")
        print(f"redrew {out / 'bench_search.png'} from {out / 'bench_search.md'}")
        return

    import faiss

    faiss.omp_set_num_threads(args.threads)
    sizes = [int(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    rng = np.random.default_rng(args.seed)
    mixing = (rng.standard_normal((LATENT, DIM)) * np.geomspace(1.0, 0.2, LATENT)[:, None]).astype(np.float32)
    queries = make_embeddings(args.queries, mixing, rng)
    gallery_all = make_embeddings(max(sizes), mixing, rng)  # each size is a prefix of the largest gallery

    header = (f"faiss {faiss.__version__}, {platform.machine()}, threads={args.threads}, D={DIM}, "
              f"latent dim {LATENT}, {N_CLUSTERS} blobs, {args.queries} queries, seed={args.seed}")
    print(header)
    cols = ["N", "index", "setting", "build CPU s", "CPU ms / query", "Recall@10", "memory"]
    print(" | ".join(cols))
    rows = []
    for n in sizes:
        gallery = gallery_all[:n]
        flat = faiss.IndexFlatIP(DIM)
        t_build, _ = timed(lambda: flat.add(gallery))
        t_q, (_, exact_ids) = timed(lambda: flat.search(queries, 10), args.repeats)
        rows.append(dict(n=n, index="Flat (exact)", setting="", build=t_build, ms=1e3 * t_q / args.queries,
                         recall=recall_at_10(exact_ids, exact_ids), mem=index_bytes(flat, faiss)))
        del flat

        nlist = max(1, int(round(np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.min_points_per_centroid = 1  # train on a subsample without faiss's warning
        sample = gallery[rng.choice(n, size=min(n, 64 * nlist), replace=False)]

        def build_ivf():
            ivf.train(sample)
            ivf.add(gallery)

        t_build, _ = timed(build_ivf)
        mem = index_bytes(ivf, faiss)
        for nprobe in (1, 8, 32):
            ivf.nprobe = nprobe
            t_q, (_, ids) = timed(lambda: ivf.search(queries, 10), args.repeats)
            rows.append(dict(n=n, index="IVF-Flat", setting=f"nlist={nlist}, nprobe={nprobe}", build=t_build,
                             ms=1e3 * t_q / args.queries, recall=recall_at_10(ids, exact_ids), mem=mem))
        del ivf, quantizer

        if n <= args.hnsw_max:
            hnsw = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
            t_build, _ = timed(lambda: hnsw.add(gallery))
            mem = index_bytes(hnsw, faiss)
            for ef in (16, 64):
                hnsw.hnsw.efSearch = ef
                t_q, (_, ids) = timed(lambda: hnsw.search(queries, 10), args.repeats)
                rows.append(dict(n=n, index="HNSW", setting=f"M=16, efSearch={ef}", build=t_build,
                                 ms=1e3 * t_q / args.queries, recall=recall_at_10(ids, exact_ids), mem=mem))
            del hnsw
        for r in rows:
            if r["n"] == n:
                print(f"{n} | {r['index']} | {r['setting']} | {r['build']:.2f} | {r['ms']:.3f} | "
                      f"{r['recall']:.3f} | {human_bytes(r['mem'])}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"Measured by `python benchmarks/bench_search.py{' --quick' if args.quick else ''}`: {header}.", "",
             "| N | index | setting | build (CPU s) | query (CPU ms / query) | Recall@10 | memory |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['index']} | {r['setting']} | {r['build']:.2f} | {r['ms']:.3f} | "
                     f"{r['recall']:.3f} | {human_bytes(r['mem'])} |")
    (out / "bench_search.md").write_text("\n".join(lines) + "\n")

    plot(rows, out / "bench_search.png")
    print(f"wrote {out / 'bench_search.md'} and {out / 'bench_search.png'}")


if __name__ == "__main__":
    main()
