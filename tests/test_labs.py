"""The lab editions: the chapters as nbgrader instructor versions, and the student editions
that ``make labs`` (scripts/make_labs.py, i.e. ``nbgrader generate_assignment``) makes of them.

Conventions checked here are those of CONTRIBUTING.md, "Exercises". Per exercise N.k:
the ``{exercise}`` box (label ``ex-N-k``); an answer cell (nbgrader solution cell
``ex-N-k``, the reference solution between ``### BEGIN SOLUTION`` / ``### END SOLUTION``);
a check cell (autograded test cell ``check-N-k`` calling ``check_exercise_N_k``); a written
answer (manually graded cell ``ex-N-k-written``, the book's ``{solution}`` dropdown). An
exercise with only a written part has the box and the written answer.

What nbgrader's ``validate`` does to an instructor version is: execute it, then fail if a
graded cell fails. nbval already re-executes every committed notebook and proves that the
stored outputs are what execution gives, so ``test_instructor_version_validates`` runs
nbgrader's Validator on the stored outputs instead of executing a second time;
``make labs VALIDATE=1`` (CI) runs the full validator.
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is in the [nbgrader] extra (make install)")
from nbgrader.nbgraderformat import MetadataValidator  # noqa: E402
from nbgrader.preprocessors import CheckCellMetadata  # noqa: E402
from nbgrader.validator import Validator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WRONG_ANSWERS = ROOT / "tests" / "wrong_answers"
ids = [p.stem for p in NOTEBOOKS]


def _chapter(path: Path) -> int:
    return int(path.name[:2])


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def exercises(nb, chapter: int) -> dict[str, dict]:
    """``{"4.1": {"box": i, "answer": i, "check": i, "written": i}, …}`` (cell indices)."""
    found: dict[str, dict] = {}
    for i, cell in enumerate(nb.cells):
        for k in re.findall(rf"\{{exercise\}}[^\n]*\n:label: ex-{chapter}-(\d+)", cell.source):
            found.setdefault(f"{chapter}.{k}", {})["box"] = i
        m = re.fullmatch(rf"(ex|check)-{chapter}-(\d+)(-written)?", _meta(cell).get("grade_id", ""))
        if m:
            role = "written" if m.group(3) else ("answer" if m.group(1) == "ex" else "check")
            found.setdefault(f"{chapter}.{m.group(2)}", {})[role] = i
    return found


def _read(path: Path):
    return nbformat.read(path, as_version=4)


# ---------------------------------------------------------------- instructor versions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_instructor_version_has_valid_nbgrader_metadata(path):
    nb = _read(path)
    MetadataValidator().validate_nb(nb)  # nbgrader's own schema check (ids unique, points, …)
    n = _chapter(path)
    found = exercises(nb, n)
    graded = [number for number, roles in found.items() if "check" in roles]
    assert len(graded) >= 3, f"{path.name}: {len(graded)} exercises with a check; the template asks for at least 3"
    for number, roles in sorted(found.items()):
        # A written-only exercise (box + written answer) is allowed; code comes with its check.
        missing = ({"box", "answer", "check", "written"} if {"answer", "check"} & roles.keys()
                   else {"box", "written"}) - roles.keys()
        assert not missing, f"{path.name}: exercise {number} has no {sorted(missing)} cell"
        assert re.search(rf"\{{exercise\}} \S[^\n]*\n:label: ex-{n}-", nb.cells[roles["box"]].source), \
            f"{path.name}: exercise {number}'s box has no title"
        assert roles["box"] < roles.get("answer", roles["written"]) < roles.get("check", roles["written"]) \
            <= roles["written"], f"{path.name}: exercise {number}: cells out of order (box, answer, check, written)"
        w = _meta(nb.cells[roles["written"]])
        assert nb.cells[roles["written"]].cell_type == "markdown" and w["grade"] and w["solution"] and w["points"] > 0
        assert re.match(rf"`{{3,}}\{{solution\}} ex-{n}-{number.split('.')[1]}\n:class: dropdown",
                        nb.cells[roles["written"]].source), \
            f"{path.name}: the written answer of {number} should be a {{solution}} dropdown"
        if "answer" not in roles:
            continue
        answer, check = nb.cells[roles["answer"]], nb.cells[roles["check"]]
        a = _meta(answer)
        assert answer.cell_type == "code" and a["solution"] and not a["grade"], number
        assert re.search(r"^\s*### BEGIN SOLUTION\s*$.+^\s*### END SOLUTION\s*$", answer.source, re.M | re.S), \
            f"{path.name}: answer cell of {number} has no ### BEGIN/END SOLUTION region"
        assert "hide-input" in answer.metadata.get("tags", []), f"{path.name}: the book must hide {number}'s solution"
        # JupyterLab (make lab): a self-learner sees the solutions only on asking (collapsed)
        for role in ("answer", "written"):
            assert nb.cells[roles[role]].metadata.get("jupyter", {}).get("source_hidden") is True, (
                f"{path.name}: the {role} cell of {number} is not collapsed in JupyterLab")
        c = _meta(check)
        assert check.cell_type == "code" and c["grade"] and c["locked"] and not c["solution"] and c["points"] > 0
        assert re.fullmatch(rf"check_exercise_{number.replace('.', '_')}\(.+\)\s*", check.source), \
            f"{path.name}: the check cell of {number} should only call check_exercise_{number.replace('.', '_')}(…)"
    for i, cell in enumerate(nb.cells):
        if "BEGIN SOLUTION" in cell.source or "END SOLUTION" in cell.source:
            assert _meta(cell).get("solution"), f"{path.name}: cell {i} has a solution region but is no solution cell"
    defs = [c for c in nb.cells if c.cell_type == "code" and "def check_exercise_" in c.source]
    assert len(defs) == 1, f"{path.name}: the check functions belong in one cell"
    d = _meta(defs[0])
    assert d.get("locked") and not d.get("grade") and "hide-input" in defs[0].metadata.get("tags", [])
    for number in graded:
        assert f"def check_exercise_{number.replace('.', '_')}(" in defs[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_instructor_version_validates(path):
    # nbgrader's Validator without its ClearOutput + Execute steps: the stored outputs are an
    # execution (nbval checks that), so this is `nbgrader validate` minus a second run.
    validator = Validator()
    validator.preprocessors = [CheckCellMetadata]
    assert validator.validate(str(path)) == {}, f"{path.name}: a graded cell fails"
    nb = _read(path)
    for number, roles in exercises(nb, _chapter(path)).items():
        if "check" not in roles:
            continue
        text = "".join(o.get("text", "") for o in nb.cells[roles["check"]].outputs)
        assert text.startswith(f"Exercise {number}: correct"), f"{path.name}: {number}'s check printed {text!r}"


# ---------------------------------------------------------------- student editions


@pytest.fixture(scope="module")
def labs(request, tmp_path_factory):
    """An nbgrader course directory made by scripts/make_labs.py for the chapters under test."""
    chapters = sorted({item.callspec.params["path"] for item in request.session.items
                       if "labs" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")})
    out = tmp_path_factory.mktemp("labs") / "course"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_labs.py"), "--out", str(out),
                          *map(str, chapters)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def _student(labs: Path, path: Path):
    return _read(labs / "release" / path.stem / path.name)


def _solution_lines(source: str) -> list[str]:
    inside, lines = False, []
    for line in source.splitlines():
        if "BEGIN SOLUTION" in line:
            inside = True
        elif "END SOLUTION" in line:
            inside = False
        elif inside and len(line.strip()) > 12:
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_student_edition_hides_the_solutions(path, labs):
    teacher, student = _read(path), _student(labs, path)
    assert len(student.cells) == len(teacher.cells)
    found = exercises(teacher, _chapter(path))
    secret = [line for roles in found.values() if "answer" in roles for line in _solution_lines(teacher.cells[roles["answer"]].source)]
    assert secret, f"{path.name}: no solution lines found to look for"
    text = "\n".join(c.source for c in student.cells)
    leaked = [line for line in secret if line in text]
    assert not leaked, f"{path.name}: the student edition shows solution lines {leaked[:3]}"
    assert "SOLUTION" not in text and "{solution}" not in text
    for t, s in zip(teacher.cells, student.cells):
        assert not s.get("outputs"), f"{path.name}: the student edition keeps outputs"
        if not _meta(t).get("solution"):
            assert s.source == t.source, f"{path.name}: nbgrader changed a cell that is not a solution"
    for roles in found.values():
        assert student.cells[roles["written"]].source == "YOUR ANSWER HERE"
    # a student's answer cells are open (the instructor version keeps them collapsed)
    hidden = [i for i, c in enumerate(student.cells) if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert not hidden, f"{path.name}: the student edition collapses cells {hidden}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_student_edition_runs_and_its_checks_grade(path, labs):
    """Run the student edition as a student would, then answer each exercise wrongly and rightly.

    Up to the first answer cell nothing may fail. Every empty answer fails its check (as
    ``nbgrader validate --invert`` requires). In the same kernel, each plausible wrong answer
    of tests/wrong_answers/<chapter>.py must be rejected by a hint (NotYet), and the
    instructor's solution accepted.
    """
    from nbclient import NotebookClient

    teacher, nb = _read(path), _student(labs, path)  # the probes are appended to nb
    found = {number: roles for number, roles in exercises(teacher, _chapter(path)).items() if "check" in roles}
    wrong_file = WRONG_ANSWERS / f"{path.stem}.py"
    assert wrong_file.is_file(), f"no plausible wrong answers for {path.name}: write {wrong_file.relative_to(ROOT)}"
    wrong = runpy.run_path(str(wrong_file))["WRONG"]
    assert set(wrong) == set(found), f"{wrong_file.name} covers {sorted(wrong)}, the chapter has {sorted(found)}"
    probes = []  # (number, expected outcome, cell index)
    for number, roles in sorted(found.items(), key=lambda kv: int(kv[0].split(".")[1])):
        check = teacher.cells[roles["check"]].source
        assert wrong[number], f"{wrong_file.name}: no wrong answer for {number}"
        for attempt in wrong[number]:
            probes.append((number, "rejected", len(nb.cells)))
            nb.cells.append(nbformat.v4.new_code_cell(attempt + "\n" + check))
        probes.append((number, "accepted", len(nb.cells)))
        nb.cells.append(nbformat.v4.new_code_cell(teacher.cells[roles["answer"]].source + "\n" + check))
    env_path = str(labs / "release" / path.stem)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": env_path}}).execute()

    def errors(cell):
        return [o for o in cell.get("outputs", []) if o.output_type == "error"]

    first_answer = min(roles["answer"] for roles in found.values())
    for i, cell in enumerate(nb.cells[:first_answer]):
        assert not errors(cell), f"{path.name}: cell {i} of the student edition fails: {errors(cell)[0].ename}"
    for number, roles in found.items():
        assert errors(nb.cells[roles["answer"]])[0].ename == "NotImplementedError"
        assert errors(nb.cells[roles["check"]]), f"{path.name}: an empty answer passes the check of {number}"
    for number, outcome, i in probes:
        errs, text = errors(nb.cells[i]), "".join(o.get("text", "") for o in nb.cells[i].outputs)
        if outcome == "rejected":
            assert errs and errs[0].ename == "NotYet", \
                f"{path.name}: wrong answer {nb.cells[i].source[:80]!r} for {number} gave " \
                f"{errs[0].ename + ': ' + errs[0].evalue if errs else 'no error: ' + text!r}"
            assert errs[0].evalue.startswith(f"Exercise {number}:"), errs[0].evalue
        else:
            assert not errs, f"{path.name}: the reference solution of {number} fails: {errs[0].ename}: {errs[0].evalue}"
            assert text.startswith(f"Exercise {number}: correct"), text


def test_make_labs_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_labs.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "was not written by this script" in run.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
