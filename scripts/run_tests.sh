#!/usr/bin/env bash
# The whole test suite: unit tests, nbval over every notebook, and the book build (warnings
# as errors). Called by `make test` after the install step.
#
# Network: pytest-socket blocks it inside the pytest process. On CI (CI=true), where we
# run as root on Linux, the suite also runs inside a network namespace that has only
# loopback, which reaches the notebook kernels too (they are separate processes).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 MPLBACKEND=Agg
# Two workers, whole files per worker: nbval needs every cell of a notebook in one kernel.
cmd=("$PY" -m pytest -n 2 --dist loadfile -p no:cacheprovider
     --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
     tests notebooks "$@")
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  echo "run_tests: running inside a network namespace with loopback only"
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${cmd[@]}"
fi
exec "${cmd[@]}"
