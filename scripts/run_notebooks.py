"""Re-execute notebooks top to bottom and store their outputs deterministically.

Usage: python scripts/run_notebooks.py [NOTEBOOK ...]   (default: notebooks/*.ipynb)

Same as ``jupyter nbconvert --execute --inplace`` with ``record_timing=False`` (no per-cell
timing metadata: diff noise) and ``coalesce_streams=True`` (a progress bar's carriage-return
updates are merged into its final line). The nbconvert command line cannot set the latter,
hence this script. The kernel runs under the numeric pins of :mod:`mmedu.reproduce` (the same
as ``make test``), so the stored outputs are what nbval recomputes. Prints each notebook's
wall time (not stored anywhere).
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mmedu.reproduce import pinned_environ

# The kernel is a child process: it inherits these before torch reads them.
os.environ.clear()
os.environ.update(pinned_environ())
root = Path(__file__).resolve().parents[1]
paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
for path in paths:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, coalesce_streams=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print(f"{path}: executed in {time.perf_counter() - start:.1f} s", flush=True)
