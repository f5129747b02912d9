"""The one place that pins the numerics of recorded and tested notebook runs.

A seeded CPU training run is bit-for-bit repeatable only if the same kernels run in the same
order. Four things decide that, each read from the environment when the process starts (or
lazily, before the first use):

* the number of BLAS/OpenMP threads (reductions are split differently): ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS``;
* PyTorch's vectorised CPU kernels (softmax, cross-entropy, …): ``ATEN_CPU_CAPABILITY``;
* oneDNN's convolutions, forward and backward: ``ONEDNN_MAX_CPU_ISA``;
* MKL's sgemm: ``MKL_CBWR`` (conditional numerical reproducibility);

plus ``PYTHONHASHSEED`` for anything ordered by a hash. :data:`PINNED` holds the values the
committed notebooks were executed with; on any x86-64 CPU with AVX2 (AVX-512 ones included)
they reproduce the stored outputs byte for byte. A CPU without AVX2 (Apple silicon, other
ARM, old x86) gets only the thread and hash pins: its training digits differ, which the
chapters' asserted bands allow for.

A variable already set in the caller's environment wins, so a run can deliberately emulate
another CPU, e.g. :data:`FOREIGN` (the portable kernels every x86-64 CPU can run).

Command line — run any command under the pins::

    python -m mmedu.reproduce jupyter lab notebooks/
    python -m mmedu.reproduce --show          # print the settings that would be used
    python -m mmedu.reproduce --foreign CMD   # the FOREIGN instruction set instead
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Mapping

__all__ = ["PINNED", "THREADS", "FOREIGN", "cpu_has_avx2", "pinned_environ", "main"]

# Always pinned: one thread, a fixed hash seed.
THREADS: dict[str, str] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
# The kernel dispatch of the recorded runs (x86-64 with AVX2 or better).
PINNED: dict[str, str] = {**THREADS, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                          "MKL_CBWR": "AVX2"}
# A different instruction set on purpose: training bits differ from the recording; CI checks
# that the chapters' claims still hold under it.
FOREIGN: dict[str, str] = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                           "MKL_CBWR": "COMPATIBLE"}


def cpu_has_avx2(cpuinfo: str | None = None) -> bool:
    """True on an x86-64 CPU that reports AVX2 (read from ``/proc/cpuinfo`` on Linux; on other
    systems from ``sysctl`` where available). ``cpuinfo`` overrides the text read (tests)."""
    if platform.machine().lower() not in ("x86_64", "amd64") and cpuinfo is None:
        return False
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = _sysctl_features()
    for line in cpuinfo.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "machdep.cpu.leaf7_features", "machdep.cpu.features"):
            if "avx2" in line.split(":", 1)[-1].lower().split():
                return True
    return False


def _sysctl_features() -> str:
    import subprocess

    try:
        out = subprocess.run(["sysctl", "machdep.cpu.leaf7_features"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out


def pinned_environ(environ: Mapping[str, str] | None = None, avx2: bool | None = None,
                   foreign: bool = False) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) with every pin added that it does not set.

    ``avx2`` (default: :func:`cpu_has_avx2`) decides whether the AVX2 kernel pins apply; on a
    CPU without AVX2 forcing them would crash or be ignored with a warning. ``foreign=True``
    uses :data:`FOREIGN`'s kernel settings instead (where the AVX2 pins would apply; elsewhere
    only the thread pins).
    """
    env = dict(os.environ if environ is None else environ)
    has_avx2 = cpu_has_avx2() if avx2 is None else avx2
    pins = ({**THREADS, **FOREIGN} if foreign else PINNED) if has_avx2 else THREADS
    for key, value in pins.items():
        if not env.get(key):
            env[key] = value
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    foreign = bool(argv) and argv[0] == "--foreign"
    if foreign:
        argv = argv[1:]
    env = pinned_environ(foreign=foreign)
    if not argv or argv[0] in ("--show", "-h", "--help"):
        if argv and argv[0] in ("-h", "--help"):
            print(__doc__)
            return 0
        for key in sorted(PINNED):
            print(f"{key}={env.get(key, '')}")
        return 0
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)
    return 127  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
