"""Measure the evidence for a chapter's claims: re-run it over many seeds and two instruction sets.

Usage: python scripts/measure_claims.py [NOTEBOOK ...] [--seeds 0 1 ...] [--foreign-seeds 0 1 2]
                                        [--jobs 2] [--out notebooks/claims] [--report]

(default: every notebooks/NN_*.ipynb that states claims). Each run executes the notebook in
memory (nothing is written back) in a fresh kernel under the numeric pins of
:mod:`mmedu.reproduce`, with ``MMEDU_SEED`` set to the seed and ``MMEDU_CLAIMS_LOG`` pointing
at a temporary file, so every ``Claims`` call records its values instead of raising. Runs:
every seed of ``--seeds`` under the recording pins and every seed of ``--foreign-seeds`` under
``FOREIGN`` (portable kernels: different training bits, as on a learner's other CPU).

Writes ``notebooks/claims/NN_topic.json`` per chapter — the machine, the versions, the date,
the hash of the chapter's training code (:func:`mmedu.claims.chapter_code_hash`) and every
claim's values in every run — and prints, per claim, whether the band the notebook states
satisfies the evidence rule (:func:`mmedu.claims.evidence_problems`) and the smallest band
that would. ``--report`` prints that for the claims the notebook's stored outputs state now, from the
committed evidence, without running anything.
``tests/test_claims_evidence.py`` holds the committed notebooks to the same rule.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmedu.claims import (EVIDENCE_FOLDER, K_SD, MARGIN_SD, chapter_code_hash,  # noqa: E402
                          claim_intervals, evidence_problems, required_interval, stated_claims, uses_claims)
from mmedu.reproduce import FOREIGN, fingerprint_under, pinned_environ  # noqa: E402

DEFAULT_SEEDS = list(range(16))
DEFAULT_FOREIGN_SEEDS = [0, 1, 2, 3]


def _run_one(task: tuple[str, int, bool]) -> dict:
    """Execute one notebook under one seed and ISA in this (pool) process; return its log."""
    import nbformat
    from nbclient import NotebookClient

    path, seed, foreign = Path(task[0]), task[1], task[2]
    env = pinned_environ()
    if foreign:
        env.update(FOREIGN)
    env["MMEDU_SEED"] = str(seed)
    env.pop("MMEDU_CLAIMS_STRICT", None)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "claims.jsonl"
        env["MMEDU_CLAIMS_LOG"] = str(log)
        os.environ.clear()
        os.environ.update(env)  # the kernel is a child process: it inherits these
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        error = None
        try:
            NotebookClient(nb, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except Exception as exc:  # report, do not kill the whole measurement
            error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
        seconds = time.perf_counter() - start
        entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"notebook": path.name, "seed": seed, "isa": "foreign" if foreign else "pinned",
            "seconds": round(seconds, 1), "error": error, "entries": entries}


def machine_record() -> dict:
    """The machine, versions and pins the evidence was measured on."""
    import numpy
    import torch

    machine = fingerprint_under(pinned_environ())
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": numpy.__version__},
            "pins": machine["pins"], "foreign": FOREIGN, "rule": {"k_sd": K_SD, "margin_sd": MARGIN_SD}}


def build_evidence(path: Path, results: list[dict], record: dict, code_hash: str) -> dict:
    """Collect one chapter's runs into its evidence document (claims in first-seen order)."""
    results = sorted(results, key=lambda r: (r["isa"] != "pinned", r["seed"]))
    claims: dict[str, dict] = {}
    for i, run in enumerate(results):
        seen = set()
        for e in run["entries"]:
            name = e["claim"]
            if name in seen:
                raise SystemExit(f"{path.name}: claim {name!r} stated twice in one run")
            seen.add(name)
            c = claims.setdefault(name, {"kind": e["kind"], "params": e.get("params"),
                                         "values": {k: [None] * len(results) for k in e["values"]},
                                         "holds": [None] * len(results)})
            for key, value in e["values"].items():
                c["values"].setdefault(key, [None] * len(results))[i] = value
            c["holds"][i] = e["holds"]
    missing = {n: sum(h is None for h in c["holds"]) for n, c in claims.items() if None in c["holds"]}
    if missing:
        raise SystemExit(f"{path.name}: claims missing from some runs (not stated on every seed?): {missing}")
    return {"chapter": path.stem, "code_hash": code_hash, **record,
            "runs": [{"seed": r["seed"], "isa": r["isa"], "seconds": r["seconds"]} for r in results],
            "claims": claims}


def report(evidence: dict, notebook: Path | None = None) -> int:
    """Print every claim's verdict under the rule; return the number that fail it.

    The claims judged are those the notebook's stored outputs state (its ✓ lines: kind and
    band as they are now), or, without a notebook, those recorded with the evidence.
    """
    runs = evidence["runs"]
    if notebook is not None:
        stated = stated_claims(json.loads(notebook.read_text(encoding="utf-8")))
        claims = {}
        for name, (kind, params) in stated.items():
            if name not in evidence["claims"]:
                print(f"  NONE {name}: stated in {notebook.name} but has no evidence")
                continue
            claims[name] = {**evidence["claims"][name], "kind": kind, "params": params}
        evidence = {**evidence, "claims": claims}
    n_foreign = sum(r["isa"] == "foreign" for r in runs)
    print(f"\n{evidence['chapter']}: {len(evidence['claims'])} claims, {len(runs)} runs "
          f"({len(runs) - n_foreign} pinned, {n_foreign} foreign)")
    bad = 0
    for name, c in evidence["claims"].items():
        quantities = claim_intervals(c["kind"], c["params"], c["values"])
        held = sum(all(low <= q[i] <= high for low, high, q in quantities.values()) for i in range(len(runs)))
        problems = evidence_problems(c["kind"], c["params"], c["values"])
        bad += bool(problems)
        print(f"  {'OK  ' if not problems else 'RULE'} {name}  [{c['kind']} {c['params']}] held {held}/{len(runs)}")
        for quantity, (low, high, samples) in quantities.items():
            need = required_interval(samples)
            mean = sum(samples) / len(samples)
            print(f"       {quantity:<34} mean {mean:.4f}  min {min(samples):.4f}  max {max(samples):.4f}"
                  f"  needs [{need[0]:.4f}, {need[1]:.4f}]")
    return bad


def rename(path: Path, old: str, new: str) -> int:
    """Rename one claim of an evidence file, keeping its place and values.

    For a claim whose measured expressions are unchanged (only its name, and perhaps its
    kind, say something else now): the chapter's code hash, which covers those expressions,
    still matches, so the values are still this claim's evidence.
    """
    evidence = json.loads(path.read_text(encoding="utf-8"))
    claims = evidence["claims"]
    if old not in claims:
        raise SystemExit(f"{path.name}: no claim {old!r}")
    if new in claims:
        raise SystemExit(f"{path.name}: a claim {new!r} exists already")
    evidence["claims"] = {(new if k == old else k): v for k, v in claims.items()}
    path.write_text(json.dumps(evidence, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path.name}: renamed {old!r} to {new!r}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=DEFAULT_SEEDS)
    ap.add_argument("--foreign-seeds", nargs="*", type=int, default=DEFAULT_FOREIGN_SEEDS)
    ap.add_argument("--jobs", type=int, default=2, help="notebook runs at once (each one thread)")
    ap.add_argument("--out", type=Path, default=ROOT / "notebooks" / EVIDENCE_FOLDER)
    ap.add_argument("--report", action="store_true", help="print the verdicts of the committed evidence")
    ap.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"),
                    help="rename a claim in one chapter's evidence (its measured expressions unchanged)")
    args = ap.parse_args()
    if args.rename:
        if len(args.notebooks) != 1:
            ap.error("--rename needs exactly one NOTEBOOK")
        return rename(args.out / f"{args.notebooks[0].stem}.json", *args.rename)
    paths = [p for p in (args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
             if uses_claims(json.loads(p.read_text(encoding="utf-8")))]
    if args.report:
        return min(sum(report(json.loads((args.out / f"{p.stem}.json").read_text()), p) for p in paths), 1)
    tasks = [(str(p), s, False) for p in paths for s in args.seeds]
    tasks += [(str(p), s, True) for p in paths for s in args.foreign_seeds]
    print(f"measure_claims: {len(tasks)} runs of {len(paths)} chapters, {args.jobs} at a time", flush=True)
    record = machine_record()
    hashes = {p.name: chapter_code_hash(p) for p in paths}  # the code these runs execute
    results: dict[str, list] = {p.name: [] for p in paths}
    start = time.perf_counter()
    failed = False
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for done, r in enumerate(pool.imap_unordered(_run_one, tasks), 1):
            results[r["notebook"]].append(r)
            status = "ok" if r["error"] is None else f"ERROR {r['error'][:300]}"
            print(f"[{done}/{len(tasks)} {time.perf_counter() - start:6.0f} s] {r['notebook']} seed {r['seed']}"
                  f" {r['isa']}: {r['seconds']:.1f} s, {len(r['entries'])} claims, {status}", flush=True)
            failed |= r["error"] is not None
    args.out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for path in paths:
        if any(r["error"] for r in results[path.name]):
            print(f"measure_claims: runs of {path.name} failed; its evidence is not written", file=sys.stderr)
            bad += 1
            continue
        if chapter_code_hash(path) != hashes[path.name]:
            print(f"measure_claims: {path.name}'s training code changed during the runs; "
                  "its evidence is not written", file=sys.stderr)
            bad += 1
            continue
        evidence = build_evidence(path, results[path.name], record, hashes[path.name])
        target = args.out / f"{path.stem}.json"
        target.write_text(json.dumps(evidence, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        bad += report(evidence)
    print(f"\nmeasure_claims: {bad} claims fail the evidence rule or chapters failed; "
          f"total {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
