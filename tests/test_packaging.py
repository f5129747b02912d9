"""The package as released: its version, its wheel, the notebooks' setup cell and Binder.

* One version, ``mmedu.__version__``: pyproject reads it, the wheel carries it, the
  changelog has a section for it, the book shows it (``_ext/book_settings.py``).
* The wheel and sdist (``python -m build``, offline, as scripts/check_wheel.py builds them)
  ship the embedded dataset with its checksums and nothing of the course around the package;
  a wheel without the data fails the check, and fails to load the data once installed.
* The setup cell (scripts/insert_setup_cell.py): inserted idempotently, and in a fresh
  environment that has torch but not mmedu it installs the wheel (pointed at by
  ``MMEDU_INSTALL_SOURCE``) without touching torch or the network, after which each
  chapter's first code cell (imports + data) runs and prints what the chapter stores.
  Where mmedu is installed, it does nothing. The committed chapters carry the current cell.
* Binder's configuration agrees with constraints.txt and the Makefile.

The fresh environments borrow this environment's packages (torch, numpy, …) through a
``.pth`` entry without mmedu (scripts/check_wheel.py, ``fresh_venv``); pip runs with no index.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_wheel = _load("check_wheel", ROOT / "scripts" / "check_wheel.py")
insert_setup_cell = _load("insert_setup_cell", ROOT / "scripts" / "insert_setup_cell.py")
DIST, VERSION = check_wheel.tree_release(ROOT)


def _toml(path: Path) -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    return tomllib.loads(path.read_text(encoding="utf-8"))


# --- one version -------------------------------------------------------------------------

def test_the_version_is_written_in_one_place():
    project = _toml(ROOT / "pyproject.toml")
    assert "version" not in project["project"], "pyproject.toml must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mmedu.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), VERSION
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(VERSION)}\]?", changelog, flags=re.M), \
        f"CHANGELOG.md has no section for {VERSION}"
    settings = _load("book_settings", ROOT / "_ext" / "book_settings.py")
    assert settings.package_release(ROOT) == (DIST, VERSION)
    footer = settings.release_footer(VERSION, "https://github.com/someone/course")
    assert f"mmedu {VERSION}" in footer and f"/releases/tag/v{VERSION}" in footer
    assert "href" not in settings.release_footer(VERSION, "")


# --- the release files -------------------------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path]:
    """``(sdist, wheel)`` built from the tree, offline, as scripts/check_wheel.py builds them."""
    return check_wheel.build(tmp_path_factory.mktemp("dist"), ROOT)


@pytest.mark.slow
def test_release_files_ship_the_dataset_and_nothing_of_the_course(release):
    sdist, wheel = release
    assert wheel.name == f"{re.sub(r'[-_.]+', '_', DIST)}-{VERSION}-py3-none-any.whl"
    for archive in release:
        assert check_wheel.contents_problems(archive, ROOT) == [], archive.name
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("mmedu/data/mmdigits.npz", "mmedu/data/fsdd_test_waveforms.npz", "mmedu/data/SHA256SUMS"):
        assert data in names
    check_wheel.tool_checks(sdist, wheel)  # check-wheel-contents, twine check --strict


def _rewrite(wheel: Path, folder: Path, drop=(), replace=None, add=None) -> Path:
    """A copy of ``wheel`` (same file name, in ``folder``) with members dropped, changed, added."""
    folder.mkdir()
    out = folder / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename in drop:
                continue
            data = src.read(item.filename)
            if replace and item.filename in replace:
                data = replace[item.filename](data)
            dst.writestr(item, data)
        for name, data in (add or {}).items():
            dst.writestr(name, data)
    return out


@pytest.mark.slow
def test_a_wheel_without_the_data_or_with_extra_files_fails_the_check(release, tmp_path):
    _, wheel = release
    no_data = _rewrite(wheel, tmp_path / "no-data", drop={"mmedu/data/mmdigits.npz"})
    assert any("mmedu/data/mmdigits.npz is missing" in p for p in check_wheel.contents_problems(no_data, ROOT))
    no_sums = _rewrite(wheel, tmp_path / "no-sums", drop={"mmedu/data/SHA256SUMS"})
    assert "mmedu/data/SHA256SUMS is missing" in check_wheel.contents_problems(no_sums, ROOT)
    flipped = lambda data: data[:-1] + bytes([data[-1] ^ 1])
    corrupted = _rewrite(wheel, tmp_path / "corrupted", replace={"mmedu/data/fsdd_test_waveforms.npz": flipped})
    assert any("does not match its checksum" in p for p in check_wheel.contents_problems(corrupted, ROOT))
    course = _rewrite(wheel, tmp_path / "course", add={"tests/test_x.py": b"", "notebooks/x.ipynb": b"{}"})
    problems = check_wheel.contents_problems(course, ROOT)
    assert any(p.startswith("tests/test_x.py ships") for p in problems)
    assert any(p.startswith("notebooks/x.ipynb ships") for p in problems)
    # Installed, the wheel without its data cannot load it: the smoke test of check_wheel fails.
    python, site = check_wheel.fresh_venv(tmp_path / "venv")
    check_wheel.install(python, str(no_data), cwd=tmp_path)
    (tmp_path / "work").mkdir()
    with pytest.raises(check_wheel.CheckFailed, match="mmdigits.npz"):
        check_wheel.smoke(python, site, tmp_path / "work", ROOT)


@pytest.mark.slow
def test_the_fresh_environment_does_not_see_the_clone(tmp_path):
    python, site = check_wheel.fresh_venv(tmp_path / "venv")
    run = subprocess.run([str(python), "-c", "import torch, numpy; import mmedu"], capture_output=True, text=True,
                         cwd=tmp_path, env=check_wheel.offline_env())
    assert run.returncode != 0 and "No module named 'mmedu'" in run.stderr, run.stdout + run.stderr
    (tmp_path / "work").mkdir()
    with pytest.raises(check_wheel.CheckFailed, match="No module named 'mmedu'"):
        check_wheel.smoke(python, site, tmp_path / "work", ROOT)


# --- the setup cell ----------------------------------------------------------------------

def _chapters() -> list[Path]:
    return insert_setup_cell.chapter_notebooks(ROOT)


def _added_by_the_script(cell: dict) -> bool:
    return bool({"mmedu-setup", "mmedu-environment"} & set(cell.get("metadata", {}).get("tags", [])))


def _copies(tmp_path: Path) -> list[Path]:
    """The chapters as they were before the script: without the setup and environment cells."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    out = []
    for p in _chapters():
        nb = json.loads(p.read_text(encoding="utf-8"))
        nb["cells"] = [c for c in nb["cells"] if not _added_by_the_script(c)]
        (folder / p.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        out.append(folder / p.name)
    return out


def _bare(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if not _added_by_the_script(c)]
    return nb


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_setup_cell_is_inserted_once_first_and_keeps_one_clean_run(tmp_path):
    copies = _copies(tmp_path)
    assert insert_setup_cell.main([str(p) for p in copies]) == 0
    written = {p: p.read_bytes() for p in copies}
    for path in copies:
        original, nb = _bare(ROOT / "notebooks" / path.name), _nb(path)
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        setup = [c for c in code if "mmedu-setup" in c["metadata"].get("tags", [])]
        assert len(setup) == 1 and code[0] is setup[0], path.name
        assert setup[0]["metadata"]["tags"] == ["mmedu-setup", "remove-cell"] and setup[0]["outputs"] == []
        env = [c for c in code if "mmedu-environment" in c["metadata"].get("tags", [])]
        assert len(env) == 1 and code[1] is env[0], path.name
        first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
        assert first == next(i for i, c in enumerate(original["cells"]) if c["cell_type"] == "code")
        # tests/test_notebooks.py: execution counts 1..N; the other cells are as they were
        counted = [c["execution_count"] for c in code if "".join(c["source"]).strip()]
        assert counted == list(range(1, len(counted) + 1))
        rest = [c for c in nb["cells"] if c is not setup[0] and c is not env[0]]
        strip = lambda c: {k: v for k, v in c.items() if k not in ("execution_count", "outputs")}
        assert list(map(strip, rest)) == list(map(strip, original["cells"]))
    # Idempotent: a second run writes nothing; --check agrees.
    assert insert_setup_cell.main([str(p) for p in copies]) == 0
    assert {p: p.read_bytes() for p in copies} == written
    assert insert_setup_cell.main(["--check", *map(str, copies)]) == 0
    # An outdated cell (an older version) is replaced, not added to.
    stale = copies[0]
    stale.write_text(stale.read_text(encoding="utf-8").replace(f"mmedu {VERSION}", "mmedu 0.0.1"), encoding="utf-8")
    assert insert_setup_cell.main(["--check", str(stale)]) == 1
    assert insert_setup_cell.main([str(stale)]) == 0
    assert stale.read_bytes() == written[stale]


def test_setup_cell_installs_the_release_the_book_is_built_from():
    ours = insert_setup_cell.setup_source(DIST, VERSION, "", (2, 2), "2.13.0")
    assert f'_dist = "{DIST}[notebooks]"' in ours and f'f"{{_dist}}=={VERSION}"' in ours
    assert "git+" not in ours
    tagged = insert_setup_cell.setup_source(DIST, VERSION, "https://github.com/example-org/mmedu", (2, 2), "2.13.0")
    assert f'"git+https://github.com/example-org/mmedu@v{VERSION}"' in tagged
    cell = insert_setup_cell.setup_cell(ROOT)
    assert f"mmedu {VERSION}" in cell.source
    # torch: only where it is missing or older than the package requires, the pinned CPU build
    makefile_torch = re.search(r"pip install --quiet torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert f'"torch=={makefile_torch}", "--index-url", "https://download.pytorch.org/whl/cpu"' in cell.source
    assert ">= (2, 2)" in cell.source and '"torch>=2.2"' in (ROOT / "pyproject.toml").read_text()


def test_setup_cell_does_nothing_where_mmedu_is_installed(tmp_path):
    source = insert_setup_cell.setup_cell(ROOT).source
    # Were it to install anything, pip would fail: no index, no proxy, a missing wheel.
    env = check_wheel.offline_env(MMEDU_INSTALL_SOURCE=str(tmp_path / "missing.whl"))
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0 and run.stdout == "" and run.stderr == "", run.stdout + run.stderr


RUNNER = """\
import contextlib, io, json, sys
from IPython.core.interactiveshell import InteractiveShell

class Shell(InteractiveShell):  # as a kernel: `%matplotlib inline` needs no GUI event loop
    def enable_gui(self, gui=None):
        pass

shell = Shell.instance()
results = []
for name, cells in json.load(open(sys.argv[1])):
    shell.reset(new_session=False)
    outputs = []
    for source in cells:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            result = shell.run_cell(source, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        outputs.append({"stdout": buffer.getvalue(), "error": repr(error) if error else None})
    results.append([name, outputs])
import mmedu
json.dump({"results": results, "mmedu": mmedu.__file__}, open(sys.argv[2], "w"))
"""


@pytest.mark.slow
def test_setup_cell_installs_mmedu_where_it_is_missing_then_the_chapters_start(release, tmp_path):
    _, wheel = release
    copies = _copies(tmp_path)
    assert insert_setup_cell.main([str(p) for p in copies]) == 0
    python, site = check_wheel.fresh_venv(tmp_path / "venv")
    plan = []
    for path in copies:
        code = [c for c in _nb(path)["cells"] if c["cell_type"] == "code"]
        plan.append([path.name, ["".join(c["source"]) for c in code[:3]]])
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([str(python), "-c", RUNNER, str(tmp_path / "plan.json"), str(tmp_path / "out.json")],
                         capture_output=True, text=True, cwd=work, timeout=600,
                         env=check_wheel.offline_env(MMEDU_INSTALL_SOURCE=str(wheel)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert Path(out["mmedu"]).resolve().is_relative_to(site.resolve()), out["mmedu"]
    import torch

    for i, (name, (setup, env, first)) in enumerate(out["results"]):
        assert setup["error"] is None and env["error"] is None and first["error"] is None, (name, setup, env, first)
        # The environment cell says which kernels, threads and device the chapter runs with.
        lines = env["stdout"].splitlines()
        firsts = [line for line in lines if not line.startswith("    ")]
        assert [f.split(":")[0] for f in firsts] == ["mmedu.reproduce", "device"], lines
        assert all(len(line) <= 80 for line in lines), lines  # fits the book's code column
        if i == 0:  # installs, and says so in one line
            assert setup["stdout"] == (f"setup: installed mmedu {VERSION} from {wheel.resolve().as_uri()}; "
                                       f"kept torch {torch.__version__}\n"), setup["stdout"]
        else:  # mmedu is there now: nothing to do
            assert setup["stdout"] == "", (name, setup["stdout"])
        stored = next(c for c in _bare(ROOT / "notebooks" / name)["cells"] if c["cell_type"] == "code")
        expected = "".join("".join(o.get("text", "")) for o in stored["outputs"] if o["output_type"] == "stream")
        assert first["stdout"] == expected, name
    # Only mmedu went into the new environment: torch, numpy, … were kept, not reinstalled.
    added = sorted(p.name for p in site.iterdir() if p.name not in ("zz-borrowed.pth", "__pycache__"))
    assert added == ["mmedu", f"{re.sub(r'[-_.]+', '_', DIST)}-{VERSION}.dist-info"], added


def test_committed_chapters_carry_the_current_setup_cell():
    cell = insert_setup_cell.setup_cell(ROOT)
    stale = [p.name for p in _chapters() if insert_setup_cell.update(p, cell, write=False)]
    assert not stale, (f"{stale}: the setup cell is missing or out of date; run "
                       "`python scripts/insert_setup_cell.py` (make setup-cells), then `make test`")


# --- Binder ------------------------------------------------------------------------------

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.split("#", 1)[0].strip())
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_binder_uses_the_cpu_torch_of_the_makefile_and_the_tested_pins():
    from packaging.requirements import Requirement

    binder = ROOT / "binder"
    lines = [l.split(" #", 1)[0].strip() for l in (binder / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    options = [l for l in lines if l.startswith("-")]
    requirements = [l for l in lines if not l.startswith("-")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options
    constraints = [l.split(None, 1)[1] for l in options if l.startswith(("-c ", "--constraint "))]
    assert constraints and all((binder / c).resolve() == ROOT / "constraints.txt" for c in constraints), constraints
    tested = _pins(ROOT / "constraints.txt")
    makefile_torch = re.search(r"pip install --quiet torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert tested["torch"] == makefile_torch
    local = [r for r in requirements if r.startswith(".")]
    assert local == [".[notebooks,lab]"], requirements
    for line in set(requirements) - set(local):
        req = Requirement(line)
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        assert pinned, f"binder/requirements.txt: {line} is not pinned"
        public = pinned[0].split("+", 1)[0]  # 2.13.0+cpu is PyTorch's CPU build of 2.13.0
        assert public == tested[re.sub(r"[-_.]+", "-", req.name).lower()], line
        if req.name == "torch":
            assert pinned[0] == f"{makefile_torch}+cpu", line
    assert any(Requirement(r).name == "torch" for r in set(requirements) - set(local))
    project = _toml(ROOT / "pyproject.toml")["project"]
    assert {"notebooks", "lab"} <= set(project["optional-dependencies"])
    # The Python of CI's container (.github/workflows/ci.yml)
    runtime = (binder / "runtime.txt").read_text().strip()
    ci_python = re.search(r"container: python:(\d+\.\d+)-", (ROOT / ".github/workflows/ci.yml").read_text()).group(1)
    assert runtime == f"python-{ci_python}", runtime


def test_binder_start_runs_the_server_under_the_numeric_pins(tmp_path):
    start = ROOT / "binder" / "start"
    assert os.access(start, os.X_OK), "binder/start must be executable"
    assert subprocess.run(["bash", "-n", str(start)]).returncode == 0
    from mmedu.reproduce import pinned_environ

    env = {k: v for k, v in os.environ.items() if k not in pinned_environ({})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(["bash", str(start), "env"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    seen = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    for key, value in pinned_environ({}).items():
        assert seen.get(key) == value, (key, seen.get(key), value)
