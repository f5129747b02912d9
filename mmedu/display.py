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
    pairs, each cell the text shown), ``numeric`` (per column: does it hold a number, so is
    it right-aligned), ``best`` (set of ``(row index, column)`` marked best), ``caption`` and
    ``first`` (the header of the label column).
    """

    def __init__(self, first: str, columns: list[str], rows: list[tuple[str, list[str]]],
                 numeric: list[bool], best: set[tuple[int, str]], caption: str | None):
        self.first, self.columns, self.rows = first, columns, rows
        self.numeric, self.best, self.caption = numeric, best, caption

    def _cell(self, i: int, j: int) -> str:
        text, column = self.rows[i][1][j], self.columns[j]
        if (i, column) in self.best:
            return text + "*"
        # keep the digits of a marked column aligned with its starred best value
        return text + " " if any(c == column for _, c in self.best) else text

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

        lines = [self.caption] if self.caption else []
        lines.append(line(header, self.numeric))
        lines += [line(b, self.numeric) for b in body]
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
                           for c, r in zip(self.columns, self.numeric))
                   + "</tr></thead><tbody>")
        for i, (label, cells) in enumerate(self.rows):
            tds = []
            for j, text in enumerate(cells):
                cls = ["num"] if self.numeric[j] else []  # a missing value too, under its numbers
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
        given = {str(c): d for c, d in digits.items()}
        unknown = set(given) - set(columns)
        if unknown:
            raise ValueError(f"digits: columns {sorted(unknown)} are not in the table "
                             f"(columns: {columns})")
        places = {c: given.get(c, 3) for c in columns}
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
    values: list[list[float | None]] = []  # what the best marks compare (None: not a number)
    numeric = [False] * len(columns)
    for label, row in rows.items():
        by_name = {str(k): v for k, v in row.items()}
        texts, vals = [], []
        for j, c in enumerate(columns):
            v = by_name.get(c)
            text, value = ("–" if v is None else str(v)), None
            if _is_number(v):
                numeric[j] = True
                if isinstance(v, numbers.Integral):
                    text, value = str(int(v)), float(v)
                elif math.isfinite(float(v)):
                    text = f"{float(v):.{places[c]}f}"
                    value = float(text)
                else:
                    text = str(float(v))
            texts.append(text)
            vals.append(value)
        shown.append((str(label), texts))
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
