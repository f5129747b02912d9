#!/usr/bin/env bash
# The whole test suite: unit tests, nbval over every notebook, and the book build (warnings
# as errors). Called by `make test` after the install step.
#
#   bash scripts/run_tests.sh [--foreign] [PYTEST ARGS / PATHS ...]   (default paths: tests notebooks)
#
# Numerics: everything runs under the pins of mmedu/reproduce.py (one thread, the kernel
# dispatch the notebooks were recorded with; a variable already set in the environment
# wins). --foreign runs under a different instruction set on purpose (FOREIGN there), where
# training bits differ from the recording: the chapters' asserted claims must still hold.
# MMEDU_NBVAL_EXACT=1 also compares the training cells exactly (see conftest.py).
#
# Network: pytest-socket blocks it inside the pytest process. On CI (CI=true), where we
# run as root on Linux, the suite also runs inside a network namespace that has only
# loopback, which reaches the notebook kernels too (they are separate processes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export MPLBACKEND=Agg
# A chapter's claim that does not hold fails its cell (an interactive kernel only prints a notice).
export MMEDU_CLAIMS_STRICT=1
reproduce=("$PY" -m mmedu.reproduce)
if [ "${1:-}" = "--foreign" ]; then
  reproduce+=(--foreign)
  shift
fi
paths=("$@")
[ ${#paths[@]} -eq 0 ] && paths=(tests notebooks)
"${reproduce[@]}" --show | sed 's/^/run_tests: /'
# Two workers, whole files per worker: nbval needs every cell of a notebook in one kernel.
cmd=("${reproduce[@]}" "$PY" -m pytest -n 2 --dist loadfile -p no:cacheprovider
     --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg "${paths[@]}")
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  echo "run_tests: running inside a network namespace with loopback only"
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${cmd[@]}"
fi
exec "${cmd[@]}"
