"""What a chapter's check functions report, in a form that readers and nbgrader both understand.

A chapter's exercises are graded by check functions (``check_exercise_4_1(answer)`` …) defined
in the notebook. They print one line when the answer is right (:func:`correct`) and raise
:class:`NotYet` with a hint when it is missing or wrong. Raising matters for classroom use:
nbgrader's autograder gives a test cell its points exactly when the cell runs without an
error, so a check that only printed "not quite" would award full marks to any answer.

In Jupyter the reader sees only the hint, not a traceback: a traceback would point into the
check function, whose code gives the answer away.
"""

from __future__ import annotations

import re

__all__ = ["NotYet", "correct"]

_NUMBER = re.compile(r"[0-9]+\.[0-9]+")  # "4.1", "0.3", "12.10": chapter, dot, exercise


class NotYet(AssertionError):
    """An exercise's answer is missing or wrong; the message says what to fix.

    An ``AssertionError`` subclass, so graders and test runners treat it as a failed check.
    IPython (Jupyter, Colab, nbgrader's kernels) displays it through
    ``_render_traceback_``: the hint alone, without the frames of the check function.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def correct(exercise: str, detail: str = "") -> None:
    """Print the line a check function gives for a right answer.

    ``exercise`` is the number as the book shows it, e.g. ``"4.1"``; ``detail`` an optional
    remark appended after a comma ("finite for extreme logits").
    """
    if not isinstance(exercise, str) or not exercise:
        raise TypeError(f"exercise must be a non-empty string such as '4.1', got {exercise!r}")
    if not _NUMBER.fullmatch(exercise):
        raise ValueError(f"exercise must be an exercise number 'chapter.n' such as '4.1', got {exercise!r}")
    if not isinstance(detail, str):
        raise TypeError(f"detail must be a string (a remark such as 'finite for extreme logits'), "
                        f"got {type(detail).__name__} {detail!r}")
    print(f"Exercise {exercise}: correct{', ' + detail if detail else ''}.")
