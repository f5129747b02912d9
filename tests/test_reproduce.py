import json
import os
import platform
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from mmedu import reproduce
from mmedu.reproduce import (FINGERPRINT_KEYS, FOREIGN, PINNED, THREADS, cpu_has_avx2, fingerprint,
                             fingerprint_matches, pin_threads, pinned_environ, report)

ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONIOENCODING": "utf-8"}
# The course's recording settings, spelled out here rather than read from mmedu.reproduce, so
# that a test comparing with them cannot agree with a wrong constant by construction.
WANT_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
WANT_PINNED = {**WANT_THREADS, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
RECORDING_LINE = ("mmedu.reproduce: AVX2 kernels, 1 thread, MKL_CBWR=AVX2, oneDNN ≤ AVX2, PYTHONHASHSEED=0"
                  " — the course's recording settings")


@pytest.fixture(autouse=True)
def _fresh_avx2_detection():
    # cpu_has_avx2() caches its answer per process; the branch tests fake another platform.
    reproduce._detect_avx2.cache_clear()
    yield
    reproduce._detect_avx2.cache_clear()


@pytest.fixture
def no_pins(monkeypatch):
    """The caller's environment sets none of the pin variables (run_tests.sh sets them all)."""
    for key in PINNED:
        monkeypatch.delenv(key, raising=False)


def _platform(monkeypatch, system, machine):
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "machine", lambda: machine)


def _no_torch_here(monkeypatch):
    """This process has not imported torch (as in a fresh interpreter): without this, a torch
    imported by an earlier test file is asked directly and the "without torch" branch never
    runs (the tests then failed or passed depending on which files ran before)."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)


def _fake_run(monkeypatch, answers):
    """Replace subprocess.run: ``answers(argv, env)`` gives (returncode, stdout); calls are logged."""
    calls = []

    def run(argv, **kwargs):
        calls.append((list(argv), kwargs.get("env")))
        code, out = answers(list(argv), kwargs.get("env"))
        return subprocess.CompletedProcess(argv, code, out, "")

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def _no_process(argv, env):
    raise AssertionError(f"no process should be started here: {argv}")


# --- cpu_has_avx2 on every platform -----------------------------------------------------------

def test_cpu_has_avx2_reads_flags():
    assert cpu_has_avx2("processor: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert not cpu_has_avx2("processor: 0\nflags\t\t: fpu sse2 avx\n")
    assert not cpu_has_avx2("processor: 0\nbugs\t\t: avx2\nflags\t\t: fpu sse2\n")  # only the flags line counts
    assert not cpu_has_avx2("Features: fp asimd evtstrm\n")  # an ARM /proc/cpuinfo


@pytest.mark.parametrize("flags, has", [("fpu avx avx2 avx512f", True), ("fpu sse4_2 avx", False)])
def test_linux_reads_proc_cpuinfo_and_starts_no_process(monkeypatch, flags, has):
    _platform(monkeypatch, "Linux", "x86_64")
    monkeypatch.setattr(reproduce, "_read_cpuinfo", lambda: f"processor\t: 0\nflags\t\t: {flags}\n")
    _fake_run(monkeypatch, _no_process)
    assert cpu_has_avx2() is has


@pytest.mark.parametrize("system, machine", [("Windows", "AMD64"), ("Darwin", "x86_64")])
@pytest.mark.parametrize("capability, has", [("AVX2", True), ("AVX512", True), ("DEFAULT", False)])
def test_elsewhere_torch_is_asked_in_a_clean_interpreter(monkeypatch, system, machine, capability, has):
    # ATEN_CPU_CAPABILITY set here would make this process's torch report the forced value.
    _platform(monkeypatch, system, machine)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    calls = _fake_run(monkeypatch, lambda argv, env: (0, capability + "\n") if argv[0] == sys.executable
                      else _no_process(argv, env))
    assert cpu_has_avx2() is has
    assert cpu_has_avx2() is has and len(calls) == 1  # asked once per process
    (argv, env), = calls
    assert "get_cpu_capability" in argv[-1] and "ATEN_CPU_CAPABILITY" not in env


def test_torch_loaded_here_without_forcing_is_asked_directly(monkeypatch):
    _platform(monkeypatch, "Windows", "AMD64")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    fake = types.SimpleNamespace(backends=types.SimpleNamespace(cpu=types.SimpleNamespace(
        get_cpu_capability=lambda: "AVX2")))
    monkeypatch.setitem(sys.modules, "torch", fake)
    _fake_run(monkeypatch, _no_process)
    assert cpu_has_avx2()


@pytest.mark.parametrize("leaf7, has", [("RDWRFSGS TSC_THREAD_OFFSET BMI1 AVX2 SMEP BMI2", True),
                                        ("RDWRFSGS SMEP", False)])
def test_intel_mac_without_torch_falls_back_to_sysctl(monkeypatch, leaf7, has):
    _platform(monkeypatch, "Darwin", "x86_64")
    _no_torch_here(monkeypatch)

    def answers(argv, env):
        if argv[0] == sys.executable:
            return 1, ""  # ModuleNotFoundError: torch
        assert argv == ["sysctl", "-n", "machdep.cpu.leaf7_features"]
        return 0, leaf7 + "\n"

    _fake_run(monkeypatch, answers)
    assert cpu_has_avx2() is has


def test_windows_without_torch_gets_no_avx2_pins(monkeypatch):
    _platform(monkeypatch, "Windows", "AMD64")
    _no_torch_here(monkeypatch)
    _fake_run(monkeypatch, lambda argv, env: (1, ""))
    assert not cpu_has_avx2()
    assert pinned_environ({}) == WANT_THREADS


@pytest.mark.parametrize("system, machine", [("Darwin", "arm64"), ("Linux", "aarch64"), ("Windows", "ARM64")])
def test_arm_never_gets_avx2_pins(monkeypatch, system, machine):
    _platform(monkeypatch, system, machine)
    _fake_run(monkeypatch, _no_process)
    monkeypatch.setattr(reproduce, "_read_cpuinfo", lambda: "flags : avx2\n")  # would be wrong if read
    assert not cpu_has_avx2()
    assert pinned_environ({}) == WANT_THREADS


# --- the pinned environment -------------------------------------------------------------------

def test_the_pins_are_the_recording_settings():
    assert THREADS == WANT_THREADS and PINNED == WANT_PINNED
    assert FOREIGN == {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}


def _this_cpu_has_avx2() -> bool:
    """Independent of mmedu.reproduce where possible: Linux x86-64 reads /proc/cpuinfo here."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if platform.system() == "Linux":
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.split(":")[0].strip() == "flags"), [])
        return "avx2" in flags
    return cpu_has_avx2()  # Windows / macOS: asks torch; those branches are tested with fakes above


def test_pins_fill_only_what_the_caller_left_unset():
    env = pinned_environ({"PATH": "/bin", "ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": ""}, avx2=True)
    assert env["PATH"] == "/bin"
    assert env["ATEN_CPU_CAPABILITY"] == "avx512"  # the caller wins: deliberate emulation
    assert env["MKL_CBWR"] == "AVX2"  # an empty value counts as unset
    assert all(env[k] == v for k, v in WANT_PINNED.items() if k != "ATEN_CPU_CAPABILITY")


def test_no_avx2_gets_only_thread_pins():
    env = pinned_environ({}, avx2=False)
    assert env == WANT_THREADS  # forcing AVX2 kernels on such a CPU would crash or warn
    assert pinned_environ({}, avx2=False, foreign=True) == WANT_THREADS


def test_foreign_replaces_the_kernel_pins():
    env = pinned_environ({}, avx2=True, foreign=True)
    assert {k: env[k] for k in FOREIGN} == FOREIGN and env["OMP_NUM_THREADS"] == "1"
    assert set(FOREIGN) <= set(PINNED) and all(FOREIGN[k] != PINNED[k] for k in FOREIGN)


def test_pin_threads_sets_only_unset_thread_counts(monkeypatch):
    assert pin_threads({}) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env = {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": ""}
    assert pin_threads(env) is env and env == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "1"}
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pin_threads()
    assert os.environ["OMP_NUM_THREADS"] == "1"


def test_conftest_pins_the_threads_of_a_plain_pytest():
    # tests/conftest.py calls pin_threads() when pytest starts: set here, whoever started pytest.
    assert os.environ.get("OMP_NUM_THREADS") and os.environ.get("MKL_NUM_THREADS")


# --- command line -----------------------------------------------------------------------------

def test_command_line_runs_a_command_under_the_pins():
    code = "import os, json; print(json.dumps({k: os.environ.get(k) for k in %r}))" % sorted(PINNED)
    out = subprocess.run([sys.executable, "-m", "mmedu.reproduce", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True, env=CHILD_ENV, cwd=ROOT).stdout
    want = WANT_PINNED if _this_cpu_has_avx2() else WANT_THREADS
    assert json.loads(out) == {k: want.get(k) for k in sorted(WANT_PINNED)}
    assert json.loads(out)["OMP_NUM_THREADS"] == "1"
    shown = subprocess.run([sys.executable, "-m", "mmedu.reproduce", "--show"], capture_output=True, text=True,
                           check=True, env=CHILD_ENV, cwd=ROOT).stdout
    assert shown.splitlines() == [f"{k}={want.get(k, '')}" for k in sorted(WANT_PINNED)]


def test_exit_code_of_the_command_propagates():
    run = subprocess.run([sys.executable, "-m", "mmedu.reproduce", sys.executable, "-c", "raise SystemExit(3)"],
                         capture_output=True, text=True, env=CHILD_ENV, cwd=ROOT)
    assert run.returncode == 3, run.stderr


def test_windows_runs_a_child_and_returns_its_exit_code(monkeypatch, no_pins):
    monkeypatch.setattr(platform, "system", lambda: "Windows")
    monkeypatch.setattr(reproduce, "cpu_has_avx2", lambda cpuinfo=None: True)

    def no_exec(*args):
        raise AssertionError("os.execvpe on Windows returns before the command ends")

    monkeypatch.setattr(os, "execvpe", no_exec)
    code = "import os; raise SystemExit(3 if os.environ['OMP_NUM_THREADS'] == '1' else 4)"
    assert reproduce.main([sys.executable, "-c", code]) == 3
    assert reproduce.main([sys.executable, "-c", "pass"]) == 0


@pytest.mark.parametrize("system", ["Linux", "Windows"])
def test_a_missing_command_is_exit_code_127(monkeypatch, capsys, system):
    monkeypatch.setattr(platform, "system", lambda: system)
    assert reproduce.main(["mmedu-no-such-command-here", "x"]) == 127
    assert "command not found: mmedu-no-such-command-here" in capsys.readouterr().err


@pytest.fixture
def launched(monkeypatch, no_pins):
    """main() with this CPU taken as AVX2 and the command recorded instead of run."""
    monkeypatch.setattr(reproduce, "cpu_has_avx2", lambda cpuinfo=None: True)
    runs = []
    monkeypatch.setattr(reproduce, "_run", lambda command, env: runs.append((command, env)) or 0)
    return runs


def test_option_order_does_not_matter(launched, capsys):
    assert reproduce.main(["--foreign", "--show"]) == 0
    first = capsys.readouterr().out
    assert reproduce.main(["--show", "--foreign"]) == 0
    assert capsys.readouterr().out == first
    assert "ATEN_CPU_CAPABILITY=default" in first.splitlines() and "MKL_CBWR=COMPATIBLE" in first.splitlines()
    assert reproduce.main([]) == 0 and "ATEN_CPU_CAPABILITY=avx2" in capsys.readouterr().out.splitlines()
    assert launched == []


@pytest.mark.parametrize("argv, command, aten", [
    (["--foreign", "prog", "--show", "-x"], ["prog", "--show", "-x"], "default"),  # after the command: untouched
    (["prog", "--foreign"], ["prog", "--foreign"], "avx2"),
    (["--", "--weird", "--foreign"], ["--weird", "--foreign"], "avx2"),
    (["--foreign", "--", "prog"], ["prog"], "default"),
])
def test_everything_from_the_command_on_is_passed_through(launched, capsys, argv, command, aten):
    assert reproduce.main(argv) == 0
    (got, env), = launched
    assert got == command and env["ATEN_CPU_CAPABILITY"] == aten
    assert capsys.readouterr().out == ""  # nothing printed before a command unless asked


def test_show_before_a_command_prints_then_runs(launched, capsys):
    assert reproduce.main(["--show", "prog"]) == 0
    assert "OMP_NUM_THREADS=1" in capsys.readouterr().out.splitlines() and launched[0][0] == ["prog"]


@pytest.mark.parametrize("argv", [["--bogus"], ["--show", "--bogus", "prog"], ["-f", "prog"]])
def test_an_unknown_option_is_a_clear_error(launched, capsys, argv):
    assert reproduce.main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown option {argv[-2] if argv[-1] == 'prog' else argv[-1]!r}" in err and "usage:" in err
    assert launched == []


def test_help(launched, capsys):
    assert reproduce.main(["--foreign", "--help"]) == 0
    assert "python -m mmedu.reproduce" in capsys.readouterr().out and launched == []


# --- report() ---------------------------------------------------------------------------------

@pytest.fixture
def fake_torch(monkeypatch, no_pins):
    """This process's torch dispatching to ``capability`` with ``threads`` threads."""
    import torch

    state = {"capability": "AVX2", "threads": 1}
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: state["capability"])
    monkeypatch.setattr(torch, "get_num_threads", lambda: state["threads"])
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    return state


def test_report_under_the_recording_settings(fake_torch, monkeypatch):
    for key, value in PINNED.items():
        monkeypatch.setenv(key, value)
    assert report() == RECORDING_LINE


@pytest.mark.parametrize("change, shown", [
    ({"capability": "AVX512"}, "AVX512 kernels, 1 thread,"),
    ({"threads": 8}, "AVX2 kernels, 8 threads,"),
    ({"MKL_CBWR": None}, "MKL_CBWR unset,"),
    ({"ONEDNN_MAX_CPU_ISA": None}, "oneDNN unrestricted,"),
    ({"ONEDNN_MAX_CPU_ISA": "SSE41"}, "oneDNN ≤ SSE41,"),
    ({"PYTHONHASHSEED": "1"}, "PYTHONHASHSEED=1 —"),
    ({"PYTHONHASHSEED": None}, "PYTHONHASHSEED unset —"),
])
def test_report_names_each_departure_from_the_recording(fake_torch, monkeypatch, change, shown):
    for key, value in PINNED.items():
        monkeypatch.setenv(key, value)
    for key, value in change.items():
        if key in fake_torch:
            fake_torch[key] = value
        elif value is None:
            monkeypatch.delenv(key)
        else:
            monkeypatch.setenv(key, value)
    line = report()
    assert shown in line and "— not the recording settings: training digits differ from the book's" in line
    assert "python -m mmedu.reproduce jupyter lab" in line


def test_report_says_which_set_variables_keep_the_launcher_from_pinning(fake_torch, monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    fake_torch["capability"] = "AVX512"
    assert report().endswith("(python -m mmedu.reproduce jupyter lab, with MKL_CBWR unset first for the "
                             "recording settings)")


@pytest.mark.parametrize("machine, capability", [("arm64", "DEFAULT"), ("x86_64", "DEFAULT")])
def test_report_on_a_cpu_without_avx2(fake_torch, monkeypatch, machine, capability):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    fake_torch["capability"] = capability
    assert report().endswith("(this CPU has no AVX2: the recording settings cannot apply here)")


def test_report_never_raises(fake_torch, monkeypatch):
    import torch

    def broken():
        raise RuntimeError("no dispatch")

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", broken)
    assert report().startswith("mmedu.reproduce: torch is not usable here (RuntimeError: no dispatch)")
    monkeypatch.setattr(reproduce, "_report", lambda: 1 / 0)
    assert report().startswith("mmedu.reproduce: cannot tell the kernels in use (ZeroDivisionError")


@pytest.mark.parametrize("options", [[], ["--foreign"]])
def test_report_option_shows_what_a_pinned_python_gets(options):
    run = subprocess.run([sys.executable, "-m", "mmedu.reproduce", *options, "--report"], capture_output=True,
                         text=True, encoding="utf-8", env=CHILD_ENV, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip()
    if not cpu_has_avx2():
        assert "1 thread, " in line and "— not the recording settings" in line
    elif options:
        assert line.startswith("mmedu.reproduce: DEFAULT kernels, 1 thread, MKL_CBWR=COMPATIBLE, oneDNN ≤ SSE41, "
                               "PYTHONHASHSEED=0 — not the recording settings")
    else:
        assert line == RECORDING_LINE


def test_report_of_an_unpinned_python():
    env = {**CHILD_ENV, "OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default"}
    run = subprocess.run([sys.executable, "-c", "from mmedu.reproduce import report; print(report())"],
                         capture_output=True, text=True, encoding="utf-8", env=env, cwd=ROOT, timeout=300)
    assert run.stdout.startswith("mmedu.reproduce: DEFAULT kernels, 2 threads, MKL_CBWR unset, oneDNN "
                                 "unrestricted, PYTHONHASHSEED unset — not the recording settings"), run.stderr


# --- fingerprint() ----------------------------------------------------------------------------

INTEL_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx2 avx512f

processor\t: 1
vendor_id\t: GenuineIntel
"""
AMD_CPUINFO = "processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\nmodel : 1\nmodel name : AMD EPYC 7B13\n"
ARM_CPUINFO = ("processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
               "CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\n")
TORCH_CONFIG = """PyTorch built with:
  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 architecture applications
  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)
  - CPU capability usage: AVX512
"""


@pytest.mark.parametrize("text, identity", [
    (INTEL_CPUINFO, ("GenuineIntel", "family 6 model 143", "Intel(R) Xeon(R) Platinum 8480+")),
    (AMD_CPUINFO, ("AuthenticAMD", "family 25 model 1", "AMD EPYC 7B13")),
    (ARM_CPUINFO, ("ARM", "part 0xd0c variant 0x3", None)),
])
def test_linux_cpu_identity(text, identity):
    assert reproduce._linux_cpu(text) == identity


@pytest.mark.parametrize("processor, identity", [
    ("Intel64 Family 6 Model 158 Stepping 10, GenuineIntel", ("GenuineIntel", "family 6 model 158")),
    ("AMD64 Family 25 Model 33 Stepping 0, AuthenticAMD", ("AuthenticAMD", "family 25 model 33")),
    ("", (None, None)),
])
def test_windows_cpu_identity(monkeypatch, processor, identity):
    _platform(monkeypatch, "Windows", "AMD64")
    monkeypatch.setattr(platform, "processor", lambda: processor)
    fp = fingerprint()
    assert (fp["cpu_vendor"], fp["cpu_model"]) == identity and fp["arch"] == "AMD64"


def test_apple_silicon_identity(monkeypatch):
    _platform(monkeypatch, "Darwin", "arm64")
    answers = {"machdep.cpu.brand_string": "Apple M2", "hw.cpufamily": "3660830781"}
    _fake_run(monkeypatch, lambda argv, env: (0, answers[argv[-1]] + "\n") if argv[-1] in answers else (1, ""))
    assert reproduce._cpu_identity() == ("Apple", "cpufamily 3660830781", "Apple M2")


def test_intel_mac_identity(monkeypatch):
    _platform(monkeypatch, "Darwin", "x86_64")
    answers = {"machdep.cpu.brand_string": "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz",
               "machdep.cpu.vendor": "GenuineIntel", "machdep.cpu.family": "6", "machdep.cpu.model": "158"}
    _fake_run(monkeypatch, lambda argv, env: (0, answers[argv[-1]] + "\n") if argv[-1] in answers else (1, ""))
    assert reproduce._cpu_identity() == ("GenuineIntel", "family 6 model 158", answers["machdep.cpu.brand_string"])


@pytest.mark.parametrize("config, versions", [
    (TORCH_CONFIG, ("2024.2 build 20240605", "3.12.0")),
    ("  - Intel(R) Math Kernel Library Version 2020.0.0 Product Build 20191122 for Intel(R) 64\n"
     "  - Intel(R) oneDNN v3.5.3 (Git Hash abc)\n", ("2020.0.0 build 20191122", "3.5.3")),
    ("PyTorch built with:\n  - GCC 11.2\n  - LAPACK is enabled\n", (None, None)),  # e.g. an ARM wheel
])
def test_build_versions_from_torch_config(config, versions):
    assert reproduce._build_versions(config) == versions


def test_fingerprint_of_this_process(monkeypatch, no_pins):
    import torch

    monkeypatch.setenv("MKL_CBWR", "AVX2")
    fp = fingerprint()
    assert set(fp) == {*FINGERPRINT_KEYS, "cpu_name"}
    assert json.loads(json.dumps(fp)) == fp
    assert fp["pins"] == {k: ("AVX2" if k == "MKL_CBWR" else None) for k in sorted(PINNED)}
    assert fp["isa"] == torch.backends.cpu.get_cpu_capability() and fp["threads"] == torch.get_num_threads()
    assert fp["torch"] == torch.__version__ and fp["arch"] == platform.machine()
    assert (fp["mkl"], fp["onednn"]) == reproduce._build_versions(torch.__config__.show())
    if platform.system() == "Linux" and fp["arch"] == "x86_64":
        assert fp["cpu_vendor"] and fp["cpu_model"].startswith("family ")


# --- fingerprint_matches() --------------------------------------------------------------------

RECORDED = {"cpu_vendor": "AuthenticAMD", "cpu_model": "family 25 model 1", "cpu_name": "AMD EPYC 7B13",
            "arch": "x86_64", "isa": "AVX2", "torch": "2.13.0+cpu", "mkl": "2024.2 build 20240605",
            "onednn": "3.12.0", "pins": {**{k: None for k in PINNED}, **PINNED}, "threads": 1}
CHANGES = {"cpu_vendor": ("GenuineIntel", "cpu vendor"), "cpu_model": ("family 25 model 33", "cpu model"),
           "arch": ("aarch64", "architecture (x86_64 → aarch64)"), "isa": ("AVX512", "kernel ISA (AVX2 → AVX512)"),
           "torch": ("2.5.1+cpu", "torch (2.13.0+cpu → 2.5.1+cpu)"),
           "mkl": ("2025.0 build 20241031", "MKL (2024.2 build 20240605 → 2025.0 build 20241031)"),
           "onednn": (None, "oneDNN (3.12.0 → None)"),
           "pins": ({**PINNED, "MKL_CBWR": None}, "pins (MKL_CBWR AVX2 → unset)"),
           "threads": (4, "threads (1 → 4)")}


def test_every_bit_deciding_key_has_a_change_tested():
    assert set(CHANGES) == set(FINGERPRINT_KEYS)


def test_the_same_machine_class_matches():
    same = {**json.loads(json.dumps(RECORDED)), "cpu_name": "AMD EPYC 7B13 64-Core"}  # the name decides nothing
    same["pins"]["MKL_CBWR"] = "AVX2"
    ok, why = fingerprint_matches(RECORDED, same)
    assert ok and why.startswith("same machine class as the recording: AuthenticAMD family 25 model 1")
    unset_vs_empty = {**RECORDED, "pins": {**RECORDED["pins"], "MKL_CBWR": None}}
    empty = {**unset_vs_empty, "pins": {**unset_vs_empty["pins"], "MKL_CBWR": ""}}
    assert fingerprint_matches(unset_vs_empty, empty)[0]  # an empty variable is an unset one


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_each_differing_key_fails_and_is_named(key):
    value, named = CHANGES[key]
    ok, why = fingerprint_matches(RECORDED, {**RECORDED, key: value})
    assert not ok and why.endswith(f": {named} differs")
    assert why.startswith("recorded on AuthenticAMD family 25 model 1 (AMD EPYC 7B13), this is ")


def test_the_message_names_the_two_machines():
    intel = {**RECORDED, "cpu_vendor": "GenuineIntel", "cpu_model": "family 6 model 143", "cpu_name": None}
    assert fingerprint_matches(RECORDED, intel) == (
        False, "recorded on AuthenticAMD family 25 model 1 (AMD EPYC 7B13), this is GenuineIntel family 6 model 143: "
               "cpu vendor, cpu model differ")


@pytest.mark.parametrize("missing", ["threads", "pins", "cpu_model"])
def test_a_fingerprint_missing_keys_never_matches(missing):
    partial = {k: v for k, v in RECORDED.items() if k != missing}
    ok, why = fingerprint_matches(partial, RECORDED)
    assert not ok and why.startswith(f"the recorded fingerprint lacks {missing}")
    ok, why = fingerprint_matches(RECORDED, partial)
    assert not ok and why.startswith(f"this fingerprint lacks {missing}")
    assert not fingerprint_matches({}, RECORDED)[0]


def test_a_stored_fingerprint_matches_the_process_that_stored_it():
    stored = json.loads(json.dumps(fingerprint()))  # as a JSON file keeps it
    ok, why = fingerprint_matches(stored)
    assert ok, why


def _notebook(path: Path, recorded_on: dict | None) -> None:
    # A cell tagged nbval-ignore-output whose stored output is not what it prints.
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('fresh')", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored\n")]
    cell.metadata["tags"] = ["nbval-ignore-output"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if recorded_on is not None:
        nb.metadata["mmedu"] = {"recorded_on": recorded_on}
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.parametrize("exact, recorded, passes", [
    ("", "here", True),  # ignored cells are not compared
    ("1", "here", False),  # compared exactly: recorded on this machine class
    ("1", "elsewhere", True),  # another machine class: exact comparison skipped
    ("1", None, True),  # no record: skipped
])
def test_exact_mode_compares_ignored_cells_only_on_the_recording_machine_class(tmp_path, exact, recorded, passes):
    # The root conftest.py turns nbval-ignore-output cells back into compared ones under
    # MMEDU_NBVAL_EXACT=1 where the notebook's recorded fingerprint matches this machine.
    env = {"PATH": "/usr/bin:/bin", "MMEDU_NBVAL_EXACT": exact, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    fp = None
    if recorded is not None:  # the fingerprint a process under this env has (threads included)
        code = "import json; from mmedu.reproduce import fingerprint; print(json.dumps(fingerprint()))"
        fp = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       env=env, cwd=tmp_path, timeout=300).stdout)
        if recorded == "elsewhere":
            fp = {**fp, "cpu_vendor": "SomeOtherVendor"}
    _notebook(tmp_path / "fixture.ipynb", fp)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                          "--nbval", "--nbval-current-env", "--rootdir", str(tmp_path), str(tmp_path / "fixture.ipynb")],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert (run.returncode == 0) == passes, run.stdout[-2000:] + run.stderr[-2000:]


def test_fingerprint_under_an_environment_is_what_its_child_sees():
    from mmedu.reproduce import fingerprint_under

    env = reproduce.pinned_environ(dict(os.environ), avx2=True)
    env.update(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    got = fingerprint_under(env)
    assert got["threads"] == 2 and got["pins"]["OMP_NUM_THREADS"] == "2"
    if reproduce.cpu_has_avx2():
        assert got["isa"] == "AVX2"
    assert reproduce.fingerprint_matches(got, got)[0]
