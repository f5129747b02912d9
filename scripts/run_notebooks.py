"""Re-execute notebooks top to bottom and store their outputs deterministically.

Usage: python scripts/run_notebooks.py [NOTEBOOK ...]   (default: notebooks/*.ipynb)

Same as ``jupyter nbconvert --execute --inplace`` with ``record_timing=False`` (no per-cell
timing metadata: diff noise) and ``coalesce_streams=True`` (a progress bar's carriage-return
updates are merged into its final line). The nbconvert command line cannot set the latter,
hence this script. Prints each notebook's wall time (not stored anywhere).
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# The same environment as scripts/run_tests.sh: one BLAS/OpenMP thread. Thread count changes
# the order of floating-point reductions, and after a few epochs that flips predictions, so
# outputs stored with another thread count would not match what nbval recomputes.
for var, value in {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}.items():
    os.environ[var] = value
root = Path(__file__).resolve().parents[1]
paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
for path in paths:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, coalesce_streams=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print(f"{path}: executed in {time.perf_counter() - start:.1f} s")
