"""Results tables for the chapters: one call, a real table in Jupyter and in the book.

:func:`table` turns ``{row label: {column: value}}`` into a :class:`Table`. Displayed in a
notebook it is an HTML ``<table>`` (numbers right-aligned in tabular figures, the best value
of each compared column in bold, the whole table in a box that scrolls sideways when a screen
is narrower than the table); its plain-text form (``repr``, what nbval compares and what a
terminal shows) is the same table in aligned columns, with ``*`` after each best value.

No randomness and no dependency: the HTML is the same bytes on every machine, so the stored
output of a notebook can be compared exactly wherever its numbers can.
"""

from __future__ import annotations

import html
import math
import numbers
from typing import Any, Mapping

__all__ = ["Table", "table"]

_BEST = ("max", "min")
_NUM = ' class="num"'


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class Table:
    """A formatted results table; build it with :func:`table`.

    Attributes: ``columns`` (list of column names), ``rows`` (list of ``(label, cells)``
    pairs, each cell the text shown), ``best`` (set of ``(row index, column)`` marked best),
    ``caption`` and ``first`` (the header of the label column).
    """

    def __init__(self, first: str, columns: list[str], rows: list[tuple[str, list[str]]],
                 numeric: list[list[bool]], best: set[tuple[int, str]], caption: str | None):
        self.first, self.columns, self.rows = first, columns, rows
        self.numeric, self.best, self.caption = numeric, best, caption

    def _cell(self, i: int, j: int) -> str:
        text, column = self.rows[i][1][j], self.columns[j]
        if (i, column) in self.best:
            return text + "*"
        # keep the digits of a marked column aligned with its starred best value
        return text + " " if any(c == column for _, c in self.best) else text

    def _right(self) -> list[bool]:
        return [any(n[j] for n in self.numeric) for j in range(len(self.columns))]

    def __repr__(self) -> str:
        header = [self.first, *self.columns]
        body = [[label, *(self._cell(i, j) for j in range(len(self.columns)))]
                for i, (label, _) in enumerate(self.rows)]
        widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]

        def line(cells: list[str], numeric: list[bool]) -> str:
            out = [cells[0].ljust(widths[0])]
            for k, c in enumerate(cells[1:], start=1):
                out.append(c.rjust(widths[k]) if numeric[k - 1] else c.ljust(widths[k]))
            return "  ".join(out).rstrip()

        right = self._right()
        lines = [self.caption] if self.caption else []
        lines.append(line(header, right))
        lines += [line(b, right) for b in body]
        if self.best:
            lines.append("(* best in its column)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        out = ['<div class="mmedu-table-wrap"><table class="mmedu-table">']
        if self.caption:
            out.append(f"<caption>{e(self.caption)}</caption>")
        out.append("<thead><tr>" + f'<th scope="col">{e(self.first)}</th>'
                   + "".join(f'<th scope="col"{_NUM if r else ""}>{e(c)}</th>'
                           for c, r in zip(self.columns, self._right()))
                   + "</tr></thead><tbody>")
        right = self._right()
        for i, (label, cells) in enumerate(self.rows):
            tds = []
            for j, text in enumerate(cells):
                cls = ["num"] if right[j] else []  # a missing value too, under its numbers
                content = e(text)
                if (i, self.columns[j]) in self.best:
                    cls.append("best")
                    content = f"<strong>{content}</strong>"
                attr = f' class="{" ".join(cls)}"' if cls else ""
                tds.append(f"<td{attr}>{content}</td>")
            out.append(f'<tr><th scope="row">{e(label)}</th>' + "".join(tds) + "</tr>")
        out.append("</tbody></table></div>")
        return "".join(out)


def table(rows: Mapping[str, Mapping[str, Any]], *, digits: int | Mapping[str, int] = 3,
          best: str | Mapping[str, str] | None = None, caption: str | None = None,
          first: str = "") -> Table:
    """A results table from ``{row label: {column: value}}``.

    Parameters
    ----------
    rows:
        One mapping per row, in display order; its keys are the columns (the union over all
        rows, in order of first appearance). A row may lack a column (shown as "–").
        A pandas DataFrame works too (``df.to_dict("index")`` is taken).
    digits:
        Decimal places of real numbers, one int for all columns or ``{column: int}`` (columns
        not named get 3). Integers and strings are shown as they are.
    best:
        ``"max"`` or ``"min"`` marks the best value of every numeric column in bold (``*`` in
        the text form); ``{column: "max" | "min"}`` marks only those columns. Values are
        compared as shown, so rows that tie at the shown precision are all marked.
    caption:
        A line shown above the table.
    first:
        The header of the row-label column.

    Returns
    -------
    Table
        Displays as HTML in Jupyter and in the book; ``repr`` gives aligned text.
    """
    if hasattr(rows, "to_dict") and not isinstance(rows, Mapping):
        rows = rows.to_dict("index")
    if not isinstance(rows, Mapping) or not rows:
        raise TypeError(f"rows: expected a non-empty mapping {{row label: {{column: value}}}}, "
                        f"got {type(rows).__name__}{' (empty)' if isinstance(rows, Mapping) else ''}")
    columns: list[str] = []
    for label, row in rows.items():
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{label!r}]: expected a mapping {{column: value}}, "
                            f"got {type(row).__name__}")
        columns += [str(c) for c in row if str(c) not in columns]
    if isinstance(digits, Mapping):
        unknown = set(map(str, digits)) - set(columns)
        if unknown:
            raise ValueError(f"digits: columns {sorted(unknown)} are not in the table "
                             f"(columns: {columns})")
        places = {c: digits.get(c, 3) for c in columns}
    else:
        places = {c: digits for c in columns}
    for c, d in places.items():
        if not isinstance(d, numbers.Integral) or isinstance(d, bool) or not 0 <= d <= 12:
            raise ValueError(f"digits for column {c!r}: expected an int in [0, 12], got {d!r}")
    if best is None:
        wanted: dict[str, str] = {}
    elif isinstance(best, str):
        wanted = {c: best for c in columns}
    elif isinstance(best, Mapping):
        wanted = {str(c): v for c, v in best.items()}
        unknown = set(wanted) - set(columns)
        if unknown:
            raise ValueError(f"best: columns {sorted(unknown)} are not in the table "
                             f"(columns: {columns})")
    else:
        raise TypeError(f"best: expected None, 'max', 'min' or {{column: 'max'|'min'}}, "
                        f"got {type(best).__name__}")
    for c, how in wanted.items():
        if how not in _BEST:
            raise ValueError(f"best for column {c!r}: expected 'max' or 'min', got {how!r}")

    shown: list[tuple[str, list[str]]] = []
    numeric: list[list[bool]] = []
    values: list[list[float | None]] = []
    for label, row in rows.items():
        texts, nums, vals = [], [], []
        for c in columns:
            key = next((k for k in row if str(k) == c), None)
            v = row[key] if key is not None else None
            if v is None:
                texts.append("–"), nums.append(False), vals.append(None)
            elif _is_number(v):
                v = float(v) if not isinstance(v, numbers.Integral) else int(v)
                if isinstance(v, float) and not math.isfinite(v):
                    texts.append(str(v))
                    vals.append(None)
                elif isinstance(v, int):
                    texts.append(str(v))
                    vals.append(float(v))
                else:
                    text = f"{v:.{places[c]}f}"
                    texts.append(text)
                    vals.append(float(text))
                nums.append(True)
            else:
                texts.append(str(v)), nums.append(False), vals.append(None)
        shown.append((str(label), texts))
        numeric.append(nums)
        values.append(vals)

    marked: set[tuple[int, str]] = set()
    for j, c in enumerate(columns):
        how = wanted.get(c)
        column = [(i, vals[j]) for i, vals in enumerate(values) if vals[j] is not None]
        if how is None or not column:
            if how is not None and isinstance(best, Mapping):
                raise ValueError(f"best: column {c!r} holds no finite number to compare")
            continue
        target = (max if how == "max" else min)(v for _, v in column)
        marked |= {(i, c) for i, v in column if v == target}
    return Table(str(first), columns, shown, numeric, marked, caption)
