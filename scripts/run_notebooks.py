"""Re-execute notebooks top to bottom and store their outputs deterministically.

Usage: python scripts/run_notebooks.py [--times PAGE] [NOTEBOOK ...]   (default: notebooks/*.ipynb)

Same as ``jupyter nbconvert --execute --inplace`` with ``record_timing=False`` (no per-cell
timing metadata: diff noise) and ``coalesce_streams=True`` (a progress bar's carriage-return
updates are merged into its final line). The nbconvert command line cannot set the latter,
hence this script. The kernel runs under the numeric pins of :mod:`mmedu.reproduce` (the same
as ``make test``), so the stored outputs are what nbval recomputes on this machine class; the
machine's fingerprint is stored in the notebook's metadata (``mmedu.recorded_on``) so that
exact comparison runs only where it can hold (conftest.py). Prints each notebook's
wall time; with ``--times PAGE`` also writes them as the book's "running the course" table
(``make times``), so the page's numbers come from a run, not from typing.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mmedu.reproduce import fingerprint_under, pinned_environ


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_times(page: Path, times: dict[str, float]) -> None:
    env = pinned_environ()
    rows = "\n".join(f"| {{doc}}`../notebooks/{name}` | {seconds:.1f} |" for name, seconds in times.items())
    page.write_text(f"""# Running the course: execution times

Each chapter re-executed top to bottom by `make times` (which runs `scripts/run_notebooks.py
--times book/run_times.md`), one after the other, under the course's numeric pins (one thread,
`ATEN_CPU_CAPABILITY={env.get('ATEN_CPU_CAPABILITY', '')}`). Wall-clock seconds, on
{os.cpu_count()} cores of an {cpu_name()} ({platform.machine()}), {time.strftime('%Y-%m-%d')}.
The budget is 30 s per chapter, 60 s for the capstone (chapter 7), on two cores like these.

| notebook | seconds |
|---|---|
{rows}
| **total** | **{sum(times.values()):.1f}** |
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--times", type=Path, help="write the execution times as a book page")
    args = ap.parse_args()
    # The kernel is a child process: it inherits these before torch reads them. The pinned
    # copy is made before the environment is replaced: clearing first lost everything else
    # (PATH, and PYTHONPATH, so a kernel imported another checkout's mmedu than the caller's).
    env = pinned_environ()
    os.environ.clear()
    os.environ.update(env)
    os.environ["MMEDU_CLAIMS_STRICT"] = "1"  # a claim that does not hold stops the run
    recorded_on = fingerprint_under(os.environ)  # the machine class the kernels run on
    root = Path(__file__).resolve().parents[1]
    paths = args.notebooks or sorted((root / "notebooks").glob("*.ipynb"))
    times = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, coalesce_streams=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        times[path.stem] = time.perf_counter() - start
        # Exact comparison (MMEDU_NBVAL_EXACT) holds only on this machine class: conftest.py
        # compares this record with the machine that runs the tests.
        nb.metadata.setdefault("mmedu", {})["recorded_on"] = recorded_on
        nbformat.write(nb, path)
        print(f"{path}: executed in {times[path.stem]:.1f} s", flush=True)
    if args.times:
        write_times(args.times, times)
        print(f"wrote {args.times}")


if __name__ == "__main__":
    main()
