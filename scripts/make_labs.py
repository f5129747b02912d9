"""Generate the lab (student) editions of the chapters with nbgrader, and optionally validate.

Usage: python scripts/make_labs.py [--out DIR] [--validate] [NOTEBOOK ...]
       (defaults: DIR = _build/labs, every notebooks/NN_*.ipynb)

The chapters are nbgrader instructor versions as committed: answer cells hold the reference
solution between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, check cells are autograded
test cells, written answers are manually graded cells (CONTRIBUTING.md, "Exercises"). This
script lays them out as an nbgrader course directory, one assignment per chapter, and runs
``nbgrader generate_assignment "*"`` there:

    DIR/nbgrader_config.py
    DIR/source/NN_topic/NN_topic.ipynb     instructor version (a copy of notebooks/NN_topic.ipynb)
    DIR/release/NN_topic/NN_topic.ipynb    student edition: solutions and outputs removed

The student editions are build artefacts: regenerate them, never edit them. An instructor
can go on with nbgrader's own commands from DIR (``nbgrader autograde …``).

``--validate`` then runs nbgrader's validator on every instructor version (what
``nbgrader validate`` does: execute the notebook, fail if a graded cell fails), under the
numeric pins of :mod:`mmedu.reproduce`. It takes one full execution per chapter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# mmedu lab course directory, written by scripts/make_labs.py"

CONFIG = f"""{MARKER}; regenerated on every run.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "mmedu"
# Chapters train small models: give a cell longer than nbgrader's default 30 s on a slow laptop.
c.Execute.timeout = 600
"""


def lay_out(out: Path, notebooks: list[Path]) -> list[str]:
    """Write an nbgrader course directory at ``out``; return the assignment names."""
    if out.exists():
        config = out / "nbgrader_config.py"
        if not (config.is_file() and config.read_text().startswith(MARKER)):
            raise SystemExit(f"make_labs: {out} exists and was not written by this script; "
                             "give another --out or remove it")
        shutil.rmtree(out)
    (out / "source").mkdir(parents=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    names = []
    for nb in notebooks:
        name = nb.stem
        (out / "source" / name).mkdir()
        shutil.copy2(nb, out / "source" / name / nb.name)
        names.append(name)
    return names


def generate(out: Path, names: list[str]) -> None:
    """``nbgrader generate_assignment "*"``, run from the course directory: every chapter laid out."""
    # nbgrader runs the `alembic` command of its environment by name: put that environment's
    # scripts first on PATH, so an unactivated virtualenv (.venv/bin/python …) works.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force"],
                         cwd=out, env=env, capture_output=True, text=True)
    missing = [name for name in names if not (out / "release" / name / f"{name}.ipynb").is_file()]
    if run.returncode != 0 or missing:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"make_labs: nbgrader generate_assignment failed (no student edition of "
                         f"{', '.join(missing) or 'some chapter'})")
    for name in names:
        path = out / "release" / name / f"{name}.ipynb"
        open_answer_cells(path)
        print(f"make_labs: student edition  {path}")


def open_answer_cells(path: Path) -> None:
    """In a student edition, show every cell: the chapters keep their answer cells and written
    answers collapsed in JupyterLab (``jupyter.source_hidden``, so that a self-learner does
    not see a solution before asking for it), but a student's empty answer cell must be open."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb["cells"]:
        jupyter = cell.get("metadata", {}).get("jupyter", {})
        if jupyter.pop("source_hidden", None) is not None:
            changed = True
            if not jupyter:
                del cell["metadata"]["jupyter"]
    if changed:
        path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")


def validate(out: Path, names: list[str]) -> bool:
    """nbgrader's Validator on each instructor version; True if all pass."""
    from mmedu.reproduce import pinned_environ

    # The kernels inherit the environment: pin the numerics before they start.
    os.environ.update(pinned_environ())
    os.environ["MMEDU_CLAIMS_STRICT"] = "1"  # a claim that does not hold fails validation
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = 600
    ok = True
    for name in names:
        path = out / "source" / name / f"{name}.ipynb"
        results = Validator(config=config).validate(str(path))
        if results:
            ok = False
            print(f"make_labs: {name}: VALIDATION FAILED")
            for kind, cells in results.items():
                for cell in cells:
                    print(f"  {kind}: {cell.get('source', '')[:200]}\n    {cell.get('raw_error', '')[-2000:]}")
        else:
            print(f"make_labs: {name}: the instructor version validates (every graded cell passes)")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "labs")
    ap.add_argument("--validate", action="store_true",
                    help="also run nbgrader's validator on every instructor version (slow)")
    args = ap.parse_args()
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing:
        raise SystemExit(f"make_labs: no such notebook: {', '.join(missing)}")
    out = args.out.resolve()
    names = lay_out(out, notebooks)
    generate(out, names)
    if args.validate and not validate(out, names):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
