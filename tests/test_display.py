"""mmedu.display.table: the results tables of the chapters."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mmedu.display import Table, table

ROWS = {
    "CCA": {"i→t R@10": 0.0805, "t→i R@10": 0.1, "medR": 62.0, "runs": 20},
    "InfoNCE": {"i→t R@10": 0.193, "t→i R@10": 0.2049, "medR": 31.5, "runs": 20},
    "random": {"i→t R@10": 0.005, "t→i R@10": None, "medR": 998.0, "runs": 20},
}


def test_text_form_aligns_columns_and_marks_the_best() -> None:
    t = table(ROWS, best={"i→t R@10": "max", "medR": "min"}, digits={"medR": 1},
              first="method", caption="Test split")
    lines = repr(t).splitlines()
    assert lines[0] == "Test split"
    assert lines[1].split() == ["method", "i→t", "R@10", "t→i", "R@10", "medR", "runs"]
    assert "0.193*" in lines[3] and "31.5*" in lines[3]
    assert "0.081 " in lines[2] and "*" not in lines[2]
    assert lines[4].split()[2] == "–"  # missing value
    assert lines[-1] == "(* best in its column)"
    # every row of the body has the same width up to the last column
    assert len({len(line) for line in lines[1:4]}) == 1


def test_html_is_a_real_table_with_the_best_values_in_bold() -> None:
    h = table(ROWS, best="max", first="method")._repr_html_()
    assert h.startswith('<div class="mmedu-table-wrap"><table class="mmedu-table">')
    assert h.count("<tr>") == 4 and h.count('<th scope="row">') == 3
    bold = re.findall(r'<td class="num best"><strong>([^<]*)</strong></td>', h)
    # row by row; the tie (every run count is 20) is marked in every row
    assert bold == ["20", "0.193", "0.205", "20", "998.000", "20"]
    assert "|" not in h and "---" not in h


def test_a_missing_value_sits_right_aligned_under_the_numbers() -> None:
    h = table(ROWS)._repr_html_()
    assert '<td class="num">–</td>' in h
    assert repr(table(ROWS)).splitlines()[3].split()[2] == "–"


def test_columns_named_by_non_strings_take_their_digits() -> None:
    # columns are shown by str(key): digits and best address them the same way
    t = table({"a": {1: 0.12345, 2: 0.5}}, digits={1: 1})
    assert t.rows[0][1] == ["0.1", "0.500"]


def test_html_escapes_labels() -> None:
    h = table({"<b>x</b>": {"a&b": 1.0}})._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in h and "a&amp;b" in h and "<b>x" not in h


def test_min_and_ties_at_the_shown_precision() -> None:
    t = table({"a": {"loss": 0.1234}, "b": {"loss": 0.1231}, "c": {"loss": 0.2}},
              best="min", digits=3)
    assert t.best == {(0, "loss"), (1, "loss")}


def test_numbers_of_any_kind_and_the_same_bytes_every_time() -> None:
    t1 = table({"x": {"a": np.float32(0.5), "b": np.int64(3), "c": "text"}})
    t2 = table({"x": {"a": 0.5, "b": 3, "c": "text"}})
    assert repr(t1) == repr(t2) and t1._repr_html_() == t2._repr_html_()
    assert isinstance(t1, Table) and "0.500" in repr(t1)


def test_dataframe_like_input() -> None:
    class Frame:  # what table() uses of a pandas DataFrame
        def to_dict(self, orient):
            assert orient == "index"
            return {"m1": {"acc": 0.9}, "m2": {"acc": 0.8}}

    assert repr(table(Frame())) == repr(table({"m1": {"acc": 0.9}, "m2": {"acc": 0.8}}))


@pytest.mark.parametrize("kwargs, rows, match", [
    ({}, {}, "non-empty mapping"),
    ({}, [1, 2], "non-empty mapping"),
    ({}, {"a": [1]}, r"rows\['a'\]: expected a mapping"),
    ({"best": "largest"}, {"a": {"x": 1.0}}, "expected 'max' or 'min', got 'largest'"),
    ({"best": {"y": "max"}}, {"a": {"x": 1.0}}, r"columns \['y'\] are not in the table"),
    ({"best": 3}, {"a": {"x": 1.0}}, "best: expected None"),
    ({"best": {"x": "max"}}, {"a": {"x": "n/a"}}, "holds no finite number"),
    ({"digits": -1}, {"a": {"x": 1.0}}, r"expected an int in \[0, 12\], got -1"),
    ({"digits": 2.5}, {"a": {"x": 1.0}}, r"got 2.5"),
    ({"digits": {"z": 2}}, {"a": {"x": 1.0}}, r"columns \['z'\] are not in the table"),
])
def test_bad_input_is_refused_with_a_clear_error(kwargs, rows, match) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        table(rows, **kwargs)
