"""The one place that pins the numerics of recorded and tested notebook runs.

A seeded CPU training run is bit-for-bit repeatable only if the same kernels run in the same
order. These settings decide that, each read from the environment when the process starts
(or lazily, before the first use):

* the number of BLAS/OpenMP threads (reductions are split differently): ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS``;
* PyTorch's vectorised CPU kernels (softmax, cross-entropy, …): ``ATEN_CPU_CAPABILITY``;
* oneDNN's convolutions, forward and backward: ``ONEDNN_MAX_CPU_ISA``;
* MKL's sgemm: ``MKL_CBWR`` (conditional numerical reproducibility);

plus ``PYTHONHASHSEED`` for anything ordered by a hash. :data:`PINNED` holds the values the
committed notebooks were executed with. Under them the stored outputs reproduce byte for
byte on the machine class that recorded them (same CPU vendor and model family, same library
versions, under these pins); everywhere else, within the measured bands that the chapters
assert. The pins do not make two CPUs alike: MKL and oneDNN still pick kernels by CPU vendor
and cache size, so an AMD CPU and an Intel one, both with AVX2, can differ in the last
digits. A CPU without AVX2 (Apple silicon, other ARM, old x86) gets only the thread and hash
pins. :func:`fingerprint` describes the machine class of a run and
:func:`fingerprint_matches` compares it with a recorded one; :func:`report` says in one line
which kernels and threads the current process uses.

A variable already set in the caller's environment wins, so a run can deliberately emulate
another CPU, e.g. :data:`FOREIGN` (the portable kernels every x86-64 CPU can run).

Command line — run any command under the pins::

    python -m mmedu.reproduce jupyter lab notebooks/
    python -m mmedu.reproduce --show          # print the settings that would be used
    python -m mmedu.reproduce --report        # what a Python started under them gets
    python -m mmedu.reproduce --foreign CMD   # the FOREIGN instruction set instead

Options (``--foreign``, ``--show``, ``--report``, ``--help``) come first, in any order; the
first other argument, or everything after ``--``, is the command, passed on untouched. The
command's exit code is returned. In a notebook, ``print(mmedu.reproduce.report())`` tells
whether the kernel runs with the recording settings.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Any, Mapping, MutableMapping

__all__ = ["device_report", "fingerprint_under", "PINNED", "THREADS", "FOREIGN", "FINGERPRINT_KEYS", "cpu_has_avx2", "pinned_environ",
           "pin_threads", "report", "fingerprint", "fingerprint_matches", "main"]

#: Always pinned (one thread, a fixed hash seed).
THREADS: dict[str, str] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
#: The kernel dispatch of the recorded runs (x86-64 with AVX2 or better), with THREADS.
PINNED: dict[str, str] = {**THREADS, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                          "MKL_CBWR": "AVX2"}
#: A different instruction set, on purpose. Training bits differ from the recording, and
#: CI checks that the chapters' claims still hold under it.
FOREIGN: dict[str, str] = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                           "MKL_CBWR": "COMPATIBLE"}
#: The keys of fingerprint() that decide the training bits (``cpu_name`` is for people only).
FINGERPRINT_KEYS: tuple[str, ...] = ("cpu_vendor", "cpu_model", "arch", "isa", "torch", "mkl",
                                     "onednn", "pins", "threads")

_X86_64 = ("x86_64", "amd64")
_THREAD_COUNTS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_AVX2_OR_BETTER = ("AVX2", "AVX512")  # torch.backends.cpu.get_cpu_capability() values
_CAPABILITY_CODE = "import torch; print(torch.backends.cpu.get_cpu_capability())"
_OPTIONS = ("--foreign", "--show", "--report", "-h", "--help")
_USAGE = "usage: python -m mmedu.reproduce [--foreign] [--show] [--report] [--] [COMMAND ARG...]"
# ARM "CPU implementer" codes of /proc/cpuinfo.
_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu",
                     "0x48": "HiSilicon", "0x4e": "NVIDIA", "0x51": "Qualcomm", "0x61": "Apple",
                     "0xc0": "Ampere"}


# --- which kernels this CPU can run -------------------------------------------------------

def cpu_has_avx2(cpuinfo: str | None = None) -> bool:
    """True on an x86-64 CPU that can run AVX2 kernels (AVX-512 ones included).

    Linux: the ``flags`` of ``/proc/cpuinfo``. Elsewhere (Windows, macOS on Intel): the
    instruction set PyTorch would dispatch to with ``ATEN_CPU_CAPABILITY`` unset — asked of a
    fresh interpreter, since a process where that variable is set reports the forced value;
    torch already loaded here with the variable unset is asked directly (a variable removed
    after torch read it would fool this). macOS falls back to ``sysctl`` without torch. ARM
    (Apple silicon included) is never AVX2. The answer is computed once per process.
    ``cpuinfo`` gives the ``/proc/cpuinfo`` text to read instead (tests).
    """
    if cpuinfo is not None:
        return _flags_have_avx2(cpuinfo)
    return _detect_avx2()


@functools.lru_cache(maxsize=None)
def _detect_avx2() -> bool:
    """:func:`cpu_has_avx2` for this machine (cached: it may start an interpreter)."""
    if platform.machine().lower() not in _X86_64:
        return False
    system = platform.system()
    if system == "Linux":
        text = _read_cpuinfo()
        if text is not None:
            return _flags_have_avx2(text)
    capability = _unforced_capability()
    if capability is not None:
        return capability.upper().startswith(_AVX2_OR_BETTER)
    if system == "Darwin":
        return "AVX2" in (_sysctl("machdep.cpu.leaf7_features") or "").upper().split()
    return False


def _flags_have_avx2(cpuinfo: str) -> bool:
    """Whether a ``flags`` line of /proc/cpuinfo text lists ``avx2``."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "flags" and "avx2" in value.lower().split():
            return True
    return False


def _read_cpuinfo() -> str | None:
    """The text of /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _unforced_capability() -> str | None:
    """What ``torch.backends.cpu.get_cpu_capability()`` reports without ATEN_CPU_CAPABILITY
    ("AVX512", "AVX2", "DEFAULT", …), or None if torch cannot be asked."""
    torch = sys.modules.get("torch")
    if torch is not None and not os.environ.get("ATEN_CPU_CAPABILITY"):
        try:
            return str(torch.backends.cpu.get_cpu_capability())
        except Exception:
            pass
    env = {k: v for k, v in os.environ.items() if k.upper() != "ATEN_CPU_CAPABILITY"}
    try:
        run = subprocess.run([sys.executable, "-c", _CAPABILITY_CODE], capture_output=True, text=True,
                             env=env, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = run.stdout.split()
    return lines[-1] if run.returncode == 0 and lines else None


def _sysctl(name: str) -> str | None:
    """The value of one macOS ``sysctl`` key, or None."""
    try:
        run = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if run.returncode != 0:
        return None
    return run.stdout.strip() or None


# --- the pinned environment ---------------------------------------------------------------

def pinned_environ(environ: Mapping[str, str] | None = None, avx2: bool | None = None,
                   foreign: bool = False) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) with every pin added that it does not set.

    ``avx2`` (default: :func:`cpu_has_avx2`) decides whether the AVX2 kernel pins apply; on a
    CPU without AVX2 forcing them would crash or be ignored with a warning. ``foreign=True``
    uses :data:`FOREIGN`'s kernel settings instead (where the AVX2 pins would apply; elsewhere
    only the thread pins). A variable set to the empty string counts as unset.
    """
    env = dict(os.environ if environ is None else environ)
    has_avx2 = cpu_has_avx2() if avx2 is None else avx2
    pins = ({**THREADS, **FOREIGN} if foreign else PINNED) if has_avx2 else THREADS
    for key, value in pins.items():
        if not env.get(key):
            env[key] = value
    return env


def pin_threads(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the thread-count pins (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` of :data:`THREADS`)
    in ``environ`` (default ``os.environ``, in place) where they are unset or empty; a value
    already set wins. Returns ``environ``.

    For a process that starts its numerics itself rather than under ``python -m
    mmedu.reproduce`` (a plain ``pytest``): it must run before torch is imported.
    """
    env = os.environ if environ is None else environ
    for key in _THREAD_COUNTS:
        if not env.get(key):
            env[key] = THREADS[key]
    return env


# --- what the current process uses ---------------------------------------------------------

def report() -> str:
    """One line: the kernel instruction set and thread count this process's torch uses, the
    ``MKL_CBWR`` / ``ONEDNN_MAX_CPU_ISA`` / ``PYTHONHASHSEED`` values in force, and whether
    that is the course's recording setting (:data:`PINNED`). Imports torch if needed, starts
    no process, never raises."""
    try:
        return _report()
    except Exception as exc:  # the promise: a line, whatever happens
        return f"mmedu.reproduce: cannot tell the kernels in use ({type(exc).__name__}: {exc})"


def device_report() -> str:
    """One line: the device the chapters train on, and whether a CUDA GPU is present.

    The chapters are sized for a laptop CPU and their claims' bands were measured there, so
    they train on the CPU; on a GPU runtime (Colab, Kaggle) they run unchanged and say so.
    ``mmedu.training.get_device()`` picks CUDA for your own experiments. Never raises.
    """
    try:
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            return (f"device: CPU; a CUDA GPU is present ({name}) and unused: the chapters are sized "
                    "for a CPU, and their claims were measured there (mmedu.training.get_device() "
                    "picks the GPU for your own experiments)")
        return "device: CPU (no CUDA GPU here)"
    except Exception as exc:  # the promise: a line, whatever happens
        return f"device: CPU (cannot tell whether a GPU is present: {type(exc).__name__})"


def _report() -> str:
    """:func:`report` without the safety net."""
    try:
        import torch

        isa = str(torch.backends.cpu.get_cpu_capability())
        threads = int(torch.get_num_threads())
    except Exception as exc:
        return (f"mmedu.reproduce: torch is not usable here ({type(exc).__name__}: {exc}) — cannot tell "
                "the kernels in use")
    cbwr, onednn, seed = (os.environ.get(k) or None for k in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "PYTHONHASHSEED"))
    line = ("mmedu.reproduce: "
            f"{isa} kernels, {threads} thread{'' if threads == 1 else 's'}, "
            f"{f'MKL_CBWR={cbwr}' if cbwr else 'MKL_CBWR unset'}, "
            f"{f'oneDNN ≤ {onednn}' if onednn else 'oneDNN unrestricted'}, "
            f"{f'PYTHONHASHSEED={seed}' if seed else 'PYTHONHASHSEED unset'}")
    same = (isa.lower() == PINNED["ATEN_CPU_CAPABILITY"].lower()
            and threads == int(PINNED["OMP_NUM_THREADS"])
            and (cbwr, onednn, seed) == (PINNED["MKL_CBWR"], PINNED["ONEDNN_MAX_CPU_ISA"], PINNED["PYTHONHASHSEED"]))
    if same:
        return line + " — the course's recording settings"
    line += " — not the recording settings: training digits differ from the book's within the stated bands"
    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    if platform.machine().lower() not in _X86_64 or (not forced and not isa.upper().startswith(_AVX2_OR_BETTER)):
        return line + " (this CPU has no AVX2: the recording settings cannot apply here)"
    kept = [k for k in sorted(PINNED) if os.environ.get(k) and os.environ[k] != PINNED[k]]
    unset = f", with {', '.join(kept)} unset first" if kept else ""
    return line + f" (python -m mmedu.reproduce jupyter lab{unset} for the recording settings)"


# --- the machine class ---------------------------------------------------------------------

def fingerprint() -> dict[str, Any]:
    """The machine class that decides a seeded run's training bits, JSON-serialisable.

    Keys: ``cpu_vendor`` ("GenuineIntel", "AuthenticAMD", "Apple", …), ``cpu_model`` ("family 6
    model 143" on x86 Linux, macOS and Windows; elsewhere ``platform.processor()``),
    ``cpu_name`` (the model name, for people), ``arch`` (``platform.machine()``), ``isa`` (what
    torch dispatches to now), ``torch`` (its version), ``mkl`` and ``onednn`` (the versions
    torch was built with, None if absent), ``pins`` (each key of :data:`PINNED` as in
    ``os.environ``, None if unset) and ``threads`` (``torch.get_num_threads()``). A value that
    cannot be found is None; it never raises for want of torch.
    """
    vendor, model, name = _cpu_identity()
    fp: dict[str, Any] = {"cpu_vendor": vendor, "cpu_model": model, "cpu_name": name,
                          "arch": platform.machine() or None, "isa": None, "torch": None, "mkl": None,
                          "onednn": None, "pins": {k: os.environ.get(k) or None for k in sorted(PINNED)},
                          "threads": None}
    try:
        import torch
    except Exception:
        return fp
    for key, get in (("torch", lambda: str(torch.__version__)),
                     ("isa", lambda: str(torch.backends.cpu.get_cpu_capability())),
                     ("threads", lambda: int(torch.get_num_threads()))):
        try:
            fp[key] = get()
        except Exception:
            pass
    try:
        fp["mkl"], fp["onednn"] = _build_versions(torch.__config__.show())
    except Exception:
        pass
    return fp


def _cpu_identity() -> tuple[str | None, str | None, str | None]:
    """(vendor, family/model, model name) of this CPU."""
    system = platform.system()
    if system == "Linux":
        text = _read_cpuinfo()
        if text:
            return _linux_cpu(text)
    elif system == "Darwin":
        return _mac_cpu()
    elif system == "Windows":
        return _windows_cpu(platform.processor())
    processor = platform.processor() or None
    return None, processor, processor


def _linux_cpu(cpuinfo: str) -> tuple[str | None, str | None, str | None]:
    """(vendor, family/model, model name) from /proc/cpuinfo text (x86 or ARM)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    name = fields.get("model name") or None
    if fields.get("vendor_id"):
        family, model = fields.get("cpu family"), fields.get("model")
        ident = f"family {family} model {model}" if family and model else None
        return fields["vendor_id"], ident, name
    implementer, part = fields.get("cpu implementer"), fields.get("cpu part")
    vendor = _ARM_IMPLEMENTERS.get(implementer.lower(), f"implementer {implementer}") if implementer else None
    ident = f"part {part} variant {fields.get('cpu variant', '?')}" if part else platform.processor() or None
    return vendor, ident, name or fields.get("hardware") or None


def _mac_cpu() -> tuple[str | None, str | None, str | None]:
    """(vendor, family/model, model name) from macOS ``sysctl``."""
    name = _sysctl("machdep.cpu.brand_string") or platform.processor() or None
    vendor = _sysctl("machdep.cpu.vendor")
    if vendor:  # an Intel Mac
        family, model = _sysctl("machdep.cpu.family"), _sysctl("machdep.cpu.model")
        return vendor, f"family {family} model {model}" if family and model else name, name
    family = _sysctl("hw.cpufamily")
    apple = platform.machine().lower() == "arm64" or (name or "").startswith("Apple")
    return "Apple" if apple else None, f"cpufamily {family}" if family else name, name


def _windows_cpu(processor: str) -> tuple[str | None, str | None, str | None]:
    """(vendor, family/model, model name) from Windows' ``platform.processor()``, e.g.
    "Intel64 Family 6 Model 158 Stepping 10, GenuineIntel"."""
    match = re.search(r"Family (\d+) Model (\d+)", processor)
    vendor = processor.rsplit(",", 1)[1].strip() if "," in processor else ""
    ident = f"family {match[1]} model {match[2]}" if match else processor
    return vendor or None, ident or None, processor or None


def _build_versions(config: str) -> tuple[str | None, str | None]:
    """(MKL version, oneDNN version) from ``torch.__config__.show()`` text; None if absent."""
    mkl = re.search(r"Math Kernel Library Version (\d[\d.]*)\S*\s+(?:Product\s+)?Build (\d+)", config)
    mkl_version = f"{mkl[1]} build {mkl[2]}" if mkl else None
    if mkl is None and (plain := re.search(r"Math Kernel Library Version (\d[\d.]*)", config)):
        mkl_version = plain[1]
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v(\d[\d.]*)", config)
    return mkl_version, onednn[1] if onednn else None


def fingerprint_under(environ: Mapping[str, str]) -> dict[str, Any]:
    """:func:`fingerprint` as a fresh interpreter started with ``environ`` sees it: what a
    notebook kernel started with that environment runs on (the ISA and threads it reports
    depend on the pins, which torch reads at start-up)."""
    import json

    code = "import json; from mmedu.reproduce import fingerprint; print(json.dumps(fingerprint()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(environ), timeout=120).stdout
    return json.loads(out)


def fingerprint_matches(recorded: Mapping[str, Any],
                        current: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """Whether ``current`` (default: :func:`fingerprint` of this process) is the machine class
    of ``recorded``: True only if every key of :data:`FINGERPRINT_KEYS` agrees. The text says
    which differ, e.g. "recorded on AuthenticAMD family 25 model 1 (AMD EPYC 7B13), this is
    GenuineIntel family 6 model 143: cpu vendor, cpu model differ". A mapping that lacks any
    of the keys never matches."""
    current = fingerprint() if current is None else current
    for label, fp in (("the recorded fingerprint", recorded), ("this fingerprint", current)):
        missing = [k for k in FINGERPRINT_KEYS if k not in fp]
        if missing:
            return False, f"{label} lacks {', '.join(missing)}: cannot tell whether the machine classes match"
    differ = []
    for key in FINGERPRINT_KEYS:
        was, now = recorded[key], current[key]
        if key == "pins":
            was, now = _pins(was), _pins(now)
            changed = [f"{k} {was.get(k) or 'unset'} → {now.get(k) or 'unset'}"
                       for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
            if changed:
                differ.append(f"pins ({'; '.join(changed)})")
        elif was != now:
            label = {"cpu_vendor": "cpu vendor", "cpu_model": "cpu model", "arch": "architecture",
                     "isa": "kernel ISA", "mkl": "MKL", "onednn": "oneDNN"}.get(key, key)
            differ.append(label if key in ("cpu_vendor", "cpu_model") else f"{label} ({was} → {now})")
    if differ:
        return False, (f"recorded on {_machine(recorded)}, this is {_machine(current)}: "
                       f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''}")
    return True, (f"same machine class as the recording: {_machine(current)}, {current['isa']} kernels, "
                  f"torch {current['torch']}, MKL {current['mkl']}, oneDNN {current['onednn']}, "
                  f"{current['threads']} thread{'' if current['threads'] == 1 else 's'}, same pins")


def _pins(pins: Any) -> dict[str, str | None]:
    """A fingerprint's pins as a dict, empty values as None."""
    return {str(k): v or None for k, v in dict(pins or {}).items()}


def _machine(fp: Mapping[str, Any]) -> str:
    """"GenuineIntel family 6 model 143 (Intel(R) Xeon(R) …)" for a fingerprint."""
    vendor, model, name = fp.get("cpu_vendor"), fp.get("cpu_model"), fp.get("cpu_name")
    text = f"{vendor or 'unknown vendor'} {model or 'unknown model'}"
    return f"{text} ({name})" if name and name != model else text


# --- command line --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m mmedu.reproduce [--foreign] [--show] [--report] [--] [COMMAND ARG...]``.

    Options first, in any order; the first other argument (or everything after ``--``) is the
    command, run under :func:`pinned_environ`, and its exit code is returned. ``--show``
    prints the pin variables (also the default without a command), ``--report`` the
    :func:`report` line of a Python started under them. An unknown option: exit code 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options, command = _parse(argv)
    except ValueError as exc:
        print(f"mmedu.reproduce: {exc}\n{_USAGE}", file=sys.stderr)
        return 2
    if options & {"-h", "--help"}:
        print(__doc__)
        return 0
    env = pinned_environ(foreign="--foreign" in options)
    if "--show" in options or not (command or "--report" in options):
        for key in sorted(PINNED):
            print(f"{key}={env.get(key, '')}")
    if "--report" in options:
        code = _report_in_child(env)
        if code:
            return code
    return _run(command, env) if command else 0


def _parse(argv: list[str]) -> tuple[set[str], list[str]]:
    """(options, command) of a command line; ValueError for an unknown option."""
    options: set[str] = set()
    for i, arg in enumerate(argv):
        if arg == "--":
            return options, argv[i + 1:]
        if arg in _OPTIONS:
            options.add(arg)
        elif arg.startswith("-") and arg != "-":
            raise ValueError(f"unknown option {arg!r} (options: {', '.join(_OPTIONS)}; "
                             "the command comes after them, or after --)")
        else:
            return options, argv[i:]
    return options, []


def _report_in_child(env: Mapping[str, str]) -> int:
    """Print :func:`report` as a fresh Python under ``env`` sees it; its exit code."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import sys; sys.path.insert(0, {package_root!r}); from mmedu.reproduce import report; print(report())"
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             env={**env, "PYTHONIOENCODING": "utf-8"}, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"mmedu.reproduce: could not start Python for the report: {exc}", file=sys.stderr)
        return 1
    _print(run.stdout.decode("utf-8", "replace").rstrip("\n"))
    if run.returncode:
        _print(run.stderr.decode("utf-8", "replace").rstrip("\n"), sys.stderr)
    return run.returncode


def _print(text: str, stream: Any = None) -> None:
    """Print text, replacing what the stream's encoding cannot show (a cp1252 console)."""
    stream = sys.stdout if stream is None else stream
    encoding = getattr(stream, "encoding", None) or "utf-8"
    print(text.encode(encoding, "replace").decode(encoding), file=stream)


def _run(command: list[str], env: Mapping[str, str]) -> int:
    """Run ``command`` under ``env`` and return its exit code. POSIX: exec (the command takes
    over this process, so its exit code and signals are the launcher's). Windows: a child
    process, waited for (``os.exec*`` there returns at once and loses the exit code)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if platform.system() == "Windows":
            return _run_child(command, env)
        os.execvpe(command[0], command, dict(env))
    except FileNotFoundError:
        print(f"mmedu.reproduce: command not found: {command[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"mmedu.reproduce: cannot execute: {command[0]}", file=sys.stderr)
        return 126
    return 127  # pragma: no cover - exec does not return


def _run_child(command: list[str], env: Mapping[str, str]) -> int:
    """Run ``command`` as a child process under ``env``, wait for it, return its exit code."""
    executable = shutil.which(command[0], path=env.get("PATH")) or command[0]
    child = subprocess.Popen([executable, *command[1:]], env=dict(env))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # Ctrl-C reaches the child too; its exit code decides
            continue


if __name__ == "__main__":
    sys.exit(main())
