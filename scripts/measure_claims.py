"""Measure the bands of a chapter's claims: re-run it over seeds and instruction sets.

Usage: python scripts/measure_claims.py NOTEBOOK [NOTEBOOK ...] [--seeds 0 1 2] [--no-foreign]

Each run executes the notebook in memory (nothing is written back) under the numeric pins of
:mod:`mmedu.reproduce`, with ``MMEDU_SEED`` set to the seed and ``MMEDU_CLAIMS_LOG`` pointing
at a temporary file, so every ``Claims`` call records its values instead of raising. Runs:
each seed under the recording pins, plus the first seed under ``FOREIGN`` (portable kernels,
different training bits). Prints, for every claim, the range of its values over all runs and
whether it held in each — the evidence for the bands written into the notebook.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mmedu.reproduce import FOREIGN, pinned_environ


def run(path: Path, env: dict, log: str) -> float:
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env, MMEDU_CLAIMS_LOG=log)
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--no-foreign", action="store_true", help="skip the run under the foreign ISA")
    args = ap.parse_args()
    base = pinned_environ()
    runs = [(f"seed {s}", {**base, "MMEDU_SEED": str(s)}) for s in args.seeds]
    if not args.no_foreign:
        runs.append((f"seed {args.seeds[0]} foreign", {**base, **FOREIGN, "MMEDU_SEED": str(args.seeds[0])}))
    for path in args.notebooks:
        with tempfile.TemporaryDirectory() as tmp:
            log = str(Path(tmp) / "claims.jsonl")
            for label, env in runs:
                seconds = run(path, env, log)
                print(f"{path.name} [{label}]: {seconds:.1f} s", flush=True)
            entries = [json.loads(line) for line in Path(log).read_text().splitlines()]
        table = defaultdict(lambda: defaultdict(list))
        held = defaultdict(list)
        for e in entries:
            for key, value in e["values"].items():
                table[e["claim"]][key].append(value)
            held[e["claim"]].append(e["holds"])
        print(f"\n{path.name}: {len(runs)} runs")
        for claim, values in table.items():
            ok = sum(held[claim])
            print(f"  {'OK  ' if ok == len(held[claim]) else 'FAIL'} {claim}  (held {ok}/{len(held[claim])})")
            for key, vs in values.items():
                print(f"       {key:<28} min {min(vs):.4f}  max {max(vs):.4f}  "
                      f"values {' '.join(f'{v:.4f}' for v in vs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
