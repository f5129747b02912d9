"""Insert, or bring up to date, the setup cell of every chapter notebook.

    python scripts/insert_setup_cell.py [--check] [NOTEBOOK ...]   (default: notebooks/NN_*.ipynb)

The setup cell is the first code cell of a chapter (just before the one that imports the
package). Where ``import mmedu`` works (the repository's environment: ``make lab``,
``make notebooks``, the test suite) it does nothing and prints nothing, without touching the
network. Elsewhere (Colab, Kaggle, Binder without the repository, a bare Jupyter) it installs
the release of the course package the book is built from, ``mmedu.__version__``:

* from the repository at its tag, ``git+URL@vX.Y.Z``, when ``repository.url`` is set in
  ``_config.yml``; otherwise from the package index, ``DIST==X.Y.Z`` (DIST is
  ``[project] name`` in pyproject.toml, not "mmedu", which is another project's name there);
* with the ``notebooks`` extra (what the chapters import besides mmedu);
* keeping an installed torch that satisfies the package's requirement (Colab's GPU build);
  only where torch is missing or older does it first install the tested version's CPU build;
* from ``$MMEDU_INSTALL_SOURCE`` instead (a wheel, an sdist or a git URL) where that is set.

It then prints one line saying what it did. The cell carries the tags ``mmedu-setup`` (how
this script finds it again) and ``remove-cell`` (the book does not show it).

Running the script again replaces the cell by the current one (after a version bump or once
``repository.url`` is set: see "Cutting a release" in CONTRIBUTING.md) and renumbers the
execution counts, so a notebook still reads as one clean run (tests/test_notebooks.py). Files
that already carry the current cell are not rewritten. ``--check`` changes nothing and exits
with 1 if any notebook is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TAG = "mmedu-setup"
TAGS = [TAG, "remove-cell"]
CELL_ID = "mmedu-setup"
EXTRA = "notebooks"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CHAPTER = re.compile(r"^\d\d_.*\.ipynb$")


# --- what the cell installs: read from the tree ------------------------------------------

def _read(root: Path, name: str) -> str:
    return (Path(root) / name).read_text(encoding="utf-8")


def package_version(root: Path = ROOT) -> str:
    """``mmedu.__version__``, read from mmedu/__init__.py (the one place it is written)."""
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', _read(root, "mmedu/__init__.py"), flags=re.M)
    if not m:
        raise SystemExit("insert_setup_cell: no __version__ in mmedu/__init__.py")
    return m.group(1)


def _project_table(root: Path) -> str:
    text = _read(root, "pyproject.toml")
    return re.split(r"^\[(?!project\])", text.split("\n[project]\n", 1)[-1], flags=re.M)[0]


def distribution_name(root: Path = ROOT) -> str:
    """``[project] name`` of pyproject.toml: the name the package index knows it by."""
    m = re.search(r'^name\s*=\s*["\']([^"\']+)["\']', _project_table(root), flags=re.M)
    if not m:
        raise SystemExit("insert_setup_cell: no [project] name in pyproject.toml")
    return m.group(1)


def torch_minimum(root: Path = ROOT) -> tuple[int, int]:
    """The (major, minor) of the package's ``torch>=X.Y`` requirement."""
    m = re.search(r'"torch\s*>=\s*(\d+)\.(\d+)', _project_table(root))
    if not m:
        raise SystemExit('insert_setup_cell: no "torch>=X.Y" in the dependencies of pyproject.toml')
    return int(m.group(1)), int(m.group(2))


def torch_pin(root: Path = ROOT) -> str:
    """The tested torch version, ``torch==X.Y.Z`` in constraints.txt (the Makefile's pin)."""
    m = re.search(r"^torch==(\S+)$", _read(root, "constraints.txt"), flags=re.M)
    if not m:
        raise SystemExit("insert_setup_cell: no torch== pin in constraints.txt")
    return m.group(1)


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` of _config.yml ('' while unset)."""
    import yaml

    config = yaml.safe_load(_read(root, "_config.yml")) or {}
    return str((config.get("repository") or {}).get("url") or "").strip().rstrip("/")


def default_location(version: str, url: str) -> str:
    """Where the cell installs from when $MMEDU_INSTALL_SOURCE is unset: the release tag of
    the repository, or '' for the package index."""
    return f"git+{url}@v{version}" if url else ""


# --- the cell ------------------------------------------------------------------------------

def setup_source(dist: str, version: str, url: str, torch_min: tuple[int, int], torch_version: str) -> str:
    location = default_location(version, url)
    where = f"the repository's tag v{version}" if url else "the package index"
    return f'''\
# Setup for Colab, Kaggle or a plain Jupyter: installs the course package mmedu
# {version} (from {where}) where it is missing, keeping an installed
# torch. Where mmedu is installed (`make lab`, the course's own environment) this cell
# does nothing.
import importlib.util

if importlib.util.find_spec("mmedu") is None:
    import os, pathlib, re, subprocess, sys
    from importlib import metadata

    def _pip(*args):
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", *args]
        subprocess.run(cmd, check=True)

    try:
        _torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        _torch = None

    def _major_minor(v):
        return tuple(map(int, re.findall(r"\\d+", v)[:2]))

    _keep = _torch is not None and _major_minor(_torch) >= {torch_min!r}
    if not _keep:  # missing or too old: the CPU build of the tested version
        _pip("torch=={torch_version}", "--index-url", "{TORCH_CPU_INDEX}")
    # where from: $MMEDU_INSTALL_SOURCE (a wheel, a folder, a git URL) or the default
    _default = "{location}"
    _from = os.environ.get("MMEDU_INSTALL_SOURCE", _default)
    if os.path.exists(_from):
        _from = pathlib.Path(_from).resolve().as_uri()
    _dist = "{dist}[{EXTRA}]"
    _pip(f"{{_dist}} @ {{_from}}" if _from else f"{{_dist}}=={version}")
    importlib.invalidate_caches()
    _torch_note = "installed torch {torch_version} (CPU build)"
    if _keep:
        _torch_note = f"kept torch {{_torch}}"
    _what = f"installed mmedu {version} from {{_from or 'the package index'}}"
    print(f"setup: {{_what}}; {{_torch_note}}")'''


def setup_cell(root: Path = ROOT) -> nbformat.NotebookNode:
    """The current setup cell, as executed in the course's environment (no output)."""
    source = setup_source(distribution_name(root), package_version(root), repository_url(root),
                          torch_minimum(root), torch_pin(root))
    cell = nbformat.v4.new_code_cell(source=source, metadata={"tags": list(TAGS)})
    cell.id = CELL_ID
    return cell


ENV_TAG = "mmedu-environment"
ENV_SOURCE = """\
# Where this chapter runs: the kernels and threads PyTorch uses here, and the device.
import textwrap

from mmedu.reproduce import device_report, report

for line in (report(), device_report()):
    print(textwrap.fill(line, width=80, subsequent_indent="    "))"""


def environment_cell() -> nbformat.NotebookNode:
    """The cell after the setup cell that says which kernels, threads and device the chapter
    runs with (mmedu.reproduce.report, device_report). Its output depends on the machine, so
    nbval only runs it (and compares it where the recording machine matches)."""
    cell = nbformat.v4.new_code_cell(source=ENV_SOURCE,
                                     metadata={"tags": [ENV_TAG, "nbval-ignore-output", "hide-input"]})
    cell.id = ENV_TAG
    return cell


def is_setup_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and TAG in cell.get("metadata", {}).get("tags", [])


def is_environment_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and ENV_TAG in cell.get("metadata", {}).get("tags", [])


def with_setup_cell(nb: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with exactly one setup cell, ``cell``, just before its first other code cell,
    followed by the environment cell (kept with its outputs if it is current), and the code
    cells' execution counts renumbered 1, 2, … as in one clean run."""
    current_env = environment_cell()
    kept = [c for c in nb.cells if is_environment_cell(c) and c.source == current_env.source
            and c.metadata.get("tags") == current_env.metadata["tags"]]
    env = kept[0] if kept else current_env
    cells = [c for c in nb.cells if not is_setup_cell(c) and not is_environment_cell(c)]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells[first_code:first_code] = [cell, env]
    count = 0
    for c in cells:
        if c.cell_type != "code":
            continue
        if not c.source.strip():
            c.execution_count = None
            continue
        count += 1
        c.execution_count = count
        for output in c.get("outputs", []):
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
    nb.cells = cells
    return nb


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (Path(root) / "notebooks").glob("*.ipynb") if CHAPTER.match(p.name))


def update(path: Path, cell: nbformat.NotebookNode, write: bool = True) -> bool:
    """Bring ``path`` up to date; True if it changed (or, with ``write=False``, would)."""
    before = path.read_text(encoding="utf-8")
    nb = with_setup_cell(nbformat.reads(before, as_version=4), nbformat.from_dict(cell))
    after = nbformat.writes(nb) + "\n"
    if after == before:
        return False
    if write:
        nbformat.validate(nb)
        path.write_text(after, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    ap.add_argument("--root", type=Path, default=ROOT, help="the tree whose version and settings to use")
    args = ap.parse_args(argv)
    paths = args.notebooks or chapter_notebooks(args.root)
    if not paths:
        print("insert_setup_cell: no notebooks found", file=sys.stderr)
        return 2
    cell = setup_cell(args.root)
    stale = [p for p in paths if update(p, cell, write=not args.check)]
    for p in stale:
        print(f"{p}: {'setup cell out of date' if args.check else 'setup cell written'}")
    if args.check and stale:
        print("insert_setup_cell: run `python scripts/insert_setup_cell.py` (make setup-cells)", file=sys.stderr)
        return 1
    if not stale:
        print(f"insert_setup_cell: {len(paths)} notebook(s) already carry the current setup cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
