"""Build the release files (sdist + wheel) and check them the way a user will meet them.

    .venv/bin/python scripts/check_wheel.py [--dist DIR] [--isolated] [--no-tests]   (make check-wheel)

1. ``python -m build``: the sdist, then the wheel built from that sdist, into ``--dist``
   (default ``_build/dist/``), from a copy of the tree without build leftovers (a stale
   ``*.egg-info`` would add files that pyproject.toml no longer asks for). By default without
   build isolation, with the setuptools pinned in constraints.txt (no download);
   ``--isolated`` lets build fetch ``[build-system] requires`` itself, as a release does.
2. Their contents: the embedded dataset (``mmedu/data/*.npz``) and its ``SHA256SUMS`` are in
   both, with the checksums of the tree; every module of ``mmedu/`` is in the wheel; nothing
   of ``tests/``, ``notebooks/``, ``book/``, ``scripts/`` (…) is in either; the metadata's
   name and version are pyproject's name and ``mmedu.__version__``.
3. ``check-wheel-contents`` and ``twine check --strict``.
4. A fresh virtual environment with no clone on its path: the wheel is installed into it
   with ``pip --no-index``. Its dependencies (torch, numpy, …) are the ones already installed
   here, borrowed through a ``.pth`` entry that points at a folder of links to this
   environment's site-packages *without* mmedu (the editable install's ``__editable__``
   finder and dist-info are left out), so no multi-GB torch is downloaded and nothing is.
5. From an empty temporary folder, with that environment's Python: ``import mmedu`` comes
   from the installed wheel, ``load_mmdigits`` verifies its checksums and loads both splits,
   and the unit tests that import only the package (``UNIT_TESTS``) pass against it.

Exits non-zero, saying what is wrong, if any step fails. tests/test_packaging.py uses the
same functions (``build``, ``contents_problems``, ``fresh_venv``, ``install``, ``smoke``).
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Unit tests that import only the package (and the dev tools pytest, scikit-learn).
UNIT_TESTS = ("tests/test_datasets.py", "tests/test_losses.py", "tests/test_metrics.py")
# Nothing of these may ship, in the sdist or the wheel.
FORBIDDEN_TOP = {"tests", "notebooks", "book", "scripts", "benchmarks", "binder", "_ext", "_static",
                 ".github", ".ci", "_build", ".venv"}
# Entries of the borrowed site-packages that would make the clone's mmedu importable or visible.
OWN_ENTRY = re.compile(r"^(__editable__[._]+)?mmedu([-_.].*)?$", re.IGNORECASE)


class CheckFailed(Exception):
    pass


# --- what the tree says ------------------------------------------------------------------

def tree_release(root: Path = ROOT) -> tuple[str, str]:
    """``(distribution name, version)``: pyproject's ``[project] name``, ``mmedu.__version__``."""
    init = (root / "mmedu" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init, flags=re.M)
    project = (root / "pyproject.toml").read_text(encoding="utf-8").split("\n[project]\n", 1)[-1]
    name = re.search(r'^name\s*=\s*["\']([^"\']+)["\']', project, flags=re.M)
    if not (version and name):
        raise CheckFailed("cannot read [project] name (pyproject.toml) or __version__ (mmedu/__init__.py)")
    return name.group(1), version.group(1)


def tree_checksums(root: Path = ROOT) -> dict[str, str]:
    return parse_sums((root / "mmedu" / "data" / "SHA256SUMS").read_text())


def parse_sums(text: str) -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


# --- 1. build ----------------------------------------------------------------------------

# Left out of the copy of the tree that is built: a stale *.egg-info/SOURCES.txt would put
# files into the sdist that pyproject.toml no longer asks for (and hide that it does not).
NOT_BUILT_FROM = shutil.ignore_patterns(".git", ".venv", "_build", "build", "dist", "*.egg-info", "__pycache__",
                                        ".pytest_cache", ".jupyter_cache", ".ipynb_checkpoints")


def build(outdir: Path, root: Path = ROOT, isolated: bool = False) -> tuple[Path, Path]:
    """``python -m build`` (sdist, then the wheel from it) into ``outdir``: ``(sdist, wheel)``.
    Built from a clean copy of the tree (no build leftovers), so the tree is not written to."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for old in list(outdir.glob("*.whl")) + list(outdir.glob("*.tar.gz")):
        old.unlink()
    cmd = [sys.executable, "-m", "build", "--outdir", str(outdir.resolve())]
    if not isolated:
        cmd.append("--no-isolation")
    with tempfile.TemporaryDirectory(prefix="mmedu-build-") as tmp:
        source = Path(tmp) / "source"
        shutil.copytree(root, source, ignore=NOT_BUILT_FROM, symlinks=True)
        proc = subprocess.run(cmd + [str(source)], capture_output=True, text=True, cwd=source)
    if proc.returncode != 0:
        raise CheckFailed(f"python -m build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    sdists, wheels = list(outdir.glob("*.tar.gz")), list(outdir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise CheckFailed(f"expected one sdist and one wheel in {outdir}, found {sdists + wheels}")
    return sdists[0], wheels[0]


# --- 2. contents -------------------------------------------------------------------------

def _archive_files(path: Path) -> set[str]:
    """The file names in a wheel, or in an sdist without its top folder."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return {n for n in z.namelist() if not n.endswith("/")}
    with tarfile.open(path) as t:
        return {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile() and "/" in m.name}


def _read_member(path: Path, name: str) -> bytes:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return z.read(name)
    with tarfile.open(path) as t:
        top = t.getnames()[0].split("/", 1)[0]
        return t.extractfile(f"{top}/{name}").read()


def contents_problems(archive: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the sdist or wheel ``archive`` (empty list: nothing)."""
    archive = Path(archive)
    dist, version = tree_release(root)
    files = _archive_files(archive)
    problems = []
    # the dataset and its checksums, as in the tree
    expected = tree_checksums(root)
    if "mmedu/data/SHA256SUMS" not in files:
        problems.append("mmedu/data/SHA256SUMS is missing")
    else:
        shipped = parse_sums(_read_member(archive, "mmedu/data/SHA256SUMS").decode())
        if shipped != expected:
            problems.append(f"mmedu/data/SHA256SUMS differs from the tree's: {shipped} != {expected}")
    for name, digest in expected.items():
        member = f"mmedu/data/{name}"
        if member not in files:
            problems.append(f"{member} is missing (the embedded dataset)")
        elif hashlib.sha256(_read_member(archive, member)).hexdigest() != digest:
            problems.append(f"{member} does not match its checksum in SHA256SUMS")
    # every module of the package
    for module in sorted(p.relative_to(root).as_posix() for p in (root / "mmedu").glob("*.py")):
        if module not in files:
            problems.append(f"{module} is missing")
    # nothing of the course around the package
    for name in sorted(files):
        if name.split("/", 1)[0] in FORBIDDEN_TOP:
            problems.append(f"{name} ships (nothing of {name.split('/', 1)[0]}/ may)")
    dist_norm = re.sub(r"[-_.]+", "_", dist).lower()
    if archive.suffix == ".whl":
        info = f"{dist_norm}-{version}.dist-info"
        tops = {n.split("/", 1)[0] for n in files}
        if tops - {"mmedu", info}:
            problems.append(f"unexpected top-level entries in the wheel: {sorted(tops - {'mmedu', info})}")
        meta_name = f"{info}/METADATA"
    else:
        for required in ("pyproject.toml", "README.md", "LICENSE"):
            if required not in files:
                problems.append(f"{required} is missing from the sdist")
        meta_name = "PKG-INFO"
    if meta_name not in files:
        problems.append(f"{meta_name} is missing")
    else:
        meta = email.parser.Parser().parsestr(_read_member(archive, meta_name).decode())
        if (meta["Name"], meta["Version"]) != (dist, version):
            problems.append(f"metadata says {meta['Name']} {meta['Version']}, the tree {dist} {version}")
    return problems


# --- 3. the packaging tools' own checks --------------------------------------------------

def tool_checks(sdist: Path, wheel: Path) -> None:
    for name, cmd in (("check-wheel-contents", [sys.executable, "-m", "check_wheel_contents", str(wheel)]),
                      ("twine check", [sys.executable, "-m", "twine", "--no-color", "check", "--strict",
                                       str(sdist), str(wheel)])):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise CheckFailed(f"{name} failed:\n{out}")
        print("  " + out.replace("\n", "\n  "))


# --- 4. a fresh environment --------------------------------------------------------------

def offline_env(**extra: str) -> dict[str, str]:
    """This environment without pip's configuration and Python's path variables, pip told to
    use no index (so an install can only use what is on disk) and no proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA_"))
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_CACHE_DIR="1", PYTHONNOUSERSITE="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               # anything that still tries the network fails at once
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    env.update(extra)
    return env


def fresh_venv(where: Path, borrow_from: Path | None = None) -> tuple[Path, Path]:
    """A new virtual environment at ``where`` whose path also holds the packages installed in
    ``borrow_from`` (default: this interpreter's site-packages) except mmedu itself.
    Returns ``(python, site_packages)`` of the new environment."""
    where = Path(where)
    borrow_from = Path(borrow_from or sysconfig.get_paths()["purelib"])
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, env=offline_env()).stdout.strip())
    borrowed = where / "borrowed-site-packages"
    borrowed.mkdir()
    for entry in borrow_from.iterdir():
        if OWN_ENTRY.match(entry.name) or entry.suffix in (".pth", ".egg-link"):
            continue
        (borrowed / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    # A plain path entry: the folder goes on sys.path after the environment's own site-packages.
    (site / "zz-borrowed.pth").write_text(str(borrowed) + "\n")
    probe = subprocess.run([str(python), "-c", "import importlib.util, sys; "
                            "sys.exit(importlib.util.find_spec('mmedu') is not None)"],
                           cwd=where, env=offline_env())
    if probe.returncode != 0:
        raise CheckFailed(f"mmedu is importable in the fresh environment {where} before any install")
    return python, site


def install(python: Path, target: str, cwd: Path) -> str:
    """``pip install --no-index target`` in the environment of ``python``; returns pip's output."""
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-index", target],
                          capture_output=True, text=True, cwd=cwd, env=offline_env())
    if proc.returncode != 0:
        raise CheckFailed(f"pip install {target} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


# --- 5. the installed package ------------------------------------------------------------

SMOKE = """\
import importlib.metadata, pathlib, sys
import mmedu
from mmedu.datasets import load_mmdigits, load_test_waveforms
site, dist = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
where = pathlib.Path(mmedu.__file__).resolve()
assert where.is_relative_to(site), f"mmedu was imported from {where}, not from the wheel installed in {site}"
assert importlib.metadata.version(dist) == mmedu.__version__, (importlib.metadata.version(dist), mmedu.__version__)
train, test = load_mmdigits("train"), load_mmdigits("test")
assert (len(train), len(test)) == (8000, 2000), (len(train), len(test))
waves = load_test_waveforms()
print(f"mmedu {mmedu.__version__} from {where.parent}: train {len(train)}, test {len(test)} items, "
      f"{len(waves['recording'])} test waveforms, checksums verified")
"""

GUARD_CONFTEST = """\
# Written by scripts/check_wheel.py: these tests must run against the installed wheel.
import os, pathlib
import mmedu

def pytest_report_header(config):
    return f"mmedu {mmedu.__version__} from {pathlib.Path(mmedu.__file__).parent}"

def pytest_configure(config):
    site = pathlib.Path(os.environ["MMEDU_EXPECTED_SITE"]).resolve()
    where = pathlib.Path(mmedu.__file__).resolve()
    if not where.is_relative_to(site):
        raise RuntimeError(f"mmedu imported from {where}, not from the installed wheel in {site}")
"""


def smoke(python: Path, site: Path, workdir: Path, root: Path = ROOT) -> str:
    """Import the installed package from an empty folder and load the data through it."""
    dist, _ = tree_release(root)
    proc = subprocess.run([str(python), "-c", SMOKE, str(site), dist], capture_output=True, text=True,
                          cwd=workdir, env=offline_env())
    if proc.returncode != 0:
        raise CheckFailed(f"the installed wheel does not work:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


def unit_tests(python: Path, site: Path, workdir: Path, root: Path = ROOT, tests=UNIT_TESTS) -> str:
    """Copies of ``tests`` (and tests/conftest.py) run from ``workdir`` against the wheel."""
    tests_dir = Path(workdir) / "tests"
    tests_dir.mkdir(parents=True)
    for name in ("tests/conftest.py", *tests):
        shutil.copy2(root / name, tests_dir / Path(name).name)
    (Path(workdir) / "conftest.py").write_text(GUARD_CONFTEST)
    (Path(workdir) / "pytest.ini").write_text(
        "[pytest]\naddopts = -ra -p no:cacheprovider --allow-hosts=127.0.0.1,::1\n")
    proc = subprocess.run([str(python), "-m", "pytest", "-q", "tests"], capture_output=True, text=True,
                          cwd=workdir, env=offline_env(MMEDU_EXPECTED_SITE=str(site)))
    if proc.returncode != 0:
        raise CheckFailed(f"unit tests against the installed wheel failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


# --- the whole check ---------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "_build" / "dist", help="where the files go")
    ap.add_argument("--isolated", action="store_true", help="let build install [build-system] requires itself")
    ap.add_argument("--no-tests", action="store_true", help="skip the unit tests against the wheel")
    args = ap.parse_args(argv)
    start = time.perf_counter()

    def step(text: str) -> None:
        print(f"check_wheel: [{time.perf_counter() - start:5.1f} s] {text}", flush=True)

    try:
        step("building the sdist and, from it, the wheel")
        sdist, wheel = build(args.dist, isolated=args.isolated)
        step(f"built {sdist.name} ({sdist.stat().st_size // 1024} KiB), {wheel.name} ({wheel.stat().st_size // 1024} KiB)")
        for archive in (sdist, wheel):
            problems = contents_problems(archive)
            if problems:
                raise CheckFailed(f"{archive.name}:\n  " + "\n  ".join(problems))
        step("contents: the dataset and SHA256SUMS match the tree, every module, nothing of the course")
        tool_checks(sdist, wheel)
        step("check-wheel-contents and twine check passed")
        with tempfile.TemporaryDirectory(prefix="mmedu-wheel-") as tmp:
            tmp = Path(tmp)
            python, site = fresh_venv(tmp / "venv")
            install(python, str(wheel), cwd=tmp)
            step(f"installed into a fresh environment ({tmp / 'venv'}), no index")
            workdir = tmp / "work"
            workdir.mkdir()
            step(smoke(python, site, workdir))
            if not args.no_tests:
                step(f"unit tests against the wheel: {unit_tests(python, site, workdir)}")
    except CheckFailed as failure:
        print(f"check_wheel: FAILED: {failure}", file=sys.stderr)
        return 1
    step(f"OK: {wheel.name} and {sdist.name} in {args.dist}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
