import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mmedu import reproduce
from mmedu.reproduce import FOREIGN, PINNED, THREADS, cpu_has_avx2, pinned_environ

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_has_avx2_reads_flags():
    assert cpu_has_avx2("processor: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert not cpu_has_avx2("processor: 0\nflags\t\t: fpu sse2 avx\n")
    assert not cpu_has_avx2("Features: fp asimd evtstrm\n")  # an ARM /proc/cpuinfo


def test_pins_fill_only_what_the_caller_left_unset():
    env = pinned_environ({"PATH": "/bin", "ATEN_CPU_CAPABILITY": "avx512"}, avx2=True)
    assert env["PATH"] == "/bin"
    assert env["ATEN_CPU_CAPABILITY"] == "avx512"  # the caller wins: deliberate emulation
    assert all(env[k] == v for k, v in PINNED.items() if k != "ATEN_CPU_CAPABILITY")


def test_no_avx2_gets_only_thread_pins():
    env = pinned_environ({}, avx2=False)
    assert env == THREADS  # forcing AVX2 kernels on such a CPU would crash or warn
    assert pinned_environ({}, avx2=False, foreign=True) == THREADS


def test_foreign_replaces_the_kernel_pins():
    env = pinned_environ({}, avx2=True, foreign=True)
    assert {k: env[k] for k in FOREIGN} == FOREIGN and env["OMP_NUM_THREADS"] == "1"
    assert set(FOREIGN) <= set(PINNED) and all(FOREIGN[k] != PINNED[k] for k in FOREIGN)


def test_command_line_runs_a_command_under_the_pins():
    code = "import os, json; print(json.dumps({k: os.environ.get(k) for k in %r}))" % sorted(PINNED)
    out = subprocess.run([sys.executable, "-m", "mmedu.reproduce", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    got = json.loads(out)
    want = pinned_environ({})
    assert got == {k: want.get(k) for k in sorted(PINNED)}
    shown = subprocess.run([sys.executable, "-m", "mmedu.reproduce", "--show"], capture_output=True, text=True,
                           check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert "OMP_NUM_THREADS=1" in shown.splitlines()


def _notebook(path: Path) -> None:
    # A cell tagged nbval-ignore-output whose stored output is not what it prints.
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('fresh')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored\n")]
    cell.metadata["tags"] = ["nbval-ignore-output"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.parametrize("exact, passes", [("", True), ("1", False)])
def test_exact_mode_compares_ignored_cells(tmp_path, exact, passes):
    # conftest.py turns nbval-ignore-output cells back into compared ones under MMEDU_NBVAL_EXACT=1.
    _notebook(tmp_path / "fixture.ipynb")
    env = {"PATH": "/usr/bin:/bin", "MMEDU_NBVAL_EXACT": exact, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                          "--nbval", "--nbval-current-env", "--rootdir", str(tmp_path), str(tmp_path / "fixture.ipynb")],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert (run.returncode == 0) == passes, run.stdout[-2000:] + run.stderr[-2000:]
