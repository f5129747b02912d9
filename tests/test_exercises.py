import subprocess
import sys

import pytest

from mmedu.exercises import NotYet, correct


def test_correct_prints_one_line(capsys):
    correct("4.1")
    correct("4.2", "finite for extreme logits")
    assert capsys.readouterr().out == ("Exercise 4.1: correct.\n"
                                       "Exercise 4.2: correct, finite for extreme logits.\n")


@pytest.mark.parametrize("bad", [None, "", 4.1])
def test_correct_rejects_a_missing_number(bad):
    with pytest.raises(TypeError, match="non-empty string such as '4.1'"):
        correct(bad)


@pytest.mark.parametrize("bad", ["banana", "4", "4.", ".1", "4.1 ", "Exercise 4.1", "4,1"])
def test_correct_rejects_what_is_not_an_exercise_number(bad, capsys):
    with pytest.raises(ValueError, match=rf"exercise number 'chapter.n' such as '4.1', got {bad!r}"):
        correct(bad)
    assert capsys.readouterr().out == ""  # nothing printed: no "Exercise banana: correct."


@pytest.mark.parametrize("bad", [True, 3, None, ["finite"]])
def test_correct_rejects_a_detail_that_is_not_text(bad):
    with pytest.raises(TypeError, match="detail must be a string"):
        correct("4.1", bad)


def test_notyet_is_a_failed_assertion_that_ipython_shows_as_its_hint():
    # nbgrader and pytest count a cell or test as failed on any exception; AssertionError is
    # what a reader expects from a failed check. IPython shows _render_traceback_'s lines
    # instead of a traceback: the hint alone, exactly.
    assert issubclass(NotYet, AssertionError)
    hint = "Exercise 4.1: not quite. Hint: p_data / (p_data + p_g)."
    assert NotYet(hint)._render_traceback_() == [hint]


def test_ipython_shows_the_hint_without_the_check_functions_code():
    # Run in a real IPython shell: the frames of the check function (whose code holds the
    # answer) must not be displayed, only the hint.
    code = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_cell('from mmedu.exercises import NotYet\\n'\n"
        "            'def check(a):\\n'\n"
        "            '    secret_answer = 0.881\\n'\n"
        "            '    raise NotYet(\"Exercise 4.1: not quite. Hint: p_data / (p_data + p_g).\")\\n'\n"
        "            'check(1)')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    shown = out.stdout + out.stderr
    assert "Exercise 4.1: not quite. Hint: p_data / (p_data + p_g)." in shown
    assert "secret_answer" not in shown and "Traceback" not in shown
