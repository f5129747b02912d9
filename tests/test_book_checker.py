"""The judgement of scripts/check_book_pages.py on what it measured in a page (no browser):
each rule of the book's layout can fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_book_pages",
                                                  ROOT / "scripts" / "check_book_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOOD_FIGURE = {"src": "a.png", "alt": "Line chart of validation accuracy per epoch, rising",
               "number": "Fig. 4.1", "caption": "Fig. 4.1 Validation accuracy.", "svg": False,
               "natural": 1400, "shown": 700, "css_width": 700}


def page(**changes):
    base = {"text_tables": [], "text_table_count": 0, "wide": [], "wide_count": 0,
            "wide_by_kind": {}, "figures": [dict(GOOD_FIGURE)]}
    base.update(changes)
    return base


def test_a_good_page_passes(checker) -> None:
    assert checker.layout_failures(page(), 1280) == []
    assert checker.layout_failures(page(figures=[dict(GOOD_FIGURE, shown=360)]), 400) == [
        "figure a.png is shown at 360 of its 700 px: labels below ~9 px at 400 px"]
    assert checker.layout_failures(page(figures=[dict(GOOD_FIGURE, shown=460)]), 400) == []


def test_a_table_rendered_as_text_fails(checker) -> None:
    out = checker.layout_failures(page(text_tables=["| a | b | |—|—| | 1 | 2 |"],
                                       text_table_count=1), 1280)
    assert out == ["a table rendered as text: '| a | b | |—|—| | 1 | 2 |'"]


def test_wide_boxes_fail_on_a_wide_screen_only(checker) -> None:
    wide = [{"kind": "code", "extra": 40, "text": "x = 1"}]
    p = page(wide=wide, wide_count=1, wide_by_kind={"code": 1})
    assert checker.layout_failures(p, 1280) == ["code 40 px wider than its column: 'x = 1'"]
    assert checker.layout_failures(p, 400) == []


@pytest.mark.parametrize("change, message", [
    ({"number": ""}, "has no number and caption"),
    ({"caption": ""}, "has no number and caption"),
    ({"alt": ""}, "no descriptive alt text"),
    ({"alt": "Figure: 6. Experiment"}, "no descriptive alt text"),
    ({"alt": "../_images/abc123.png"}, "no descriptive alt text"),
    ({"natural": 700}, "not a high-resolution image"),
])
def test_each_figure_rule_can_fail(checker, change, message) -> None:
    out = checker.layout_failures(page(figures=[dict(GOOD_FIGURE, **change)]), 1280)
    assert len(out) == 1 and message in out[0], out


def test_a_plain_100_dpi_figure_fails(checker) -> None:
    # no width attribute: shown at its pixel size, or shrunk below it
    fig = dict(GOOD_FIGURE, css_width=None, natural=700, shown=700)
    out = checker.layout_failures(page(figures=[fig]), 1280)
    assert out == ["figure a.png is stored at 700 px and shown at 700 px: not a high-resolution image"]
    out = checker.layout_failures(page(figures=[dict(fig, shown=360)]), 400)
    assert out == ["figure a.png is shown at 360 of its 700 px: labels below ~9 px at 400 px"]


def test_svg_figures_need_no_pixels(checker) -> None:
    fig = dict(GOOD_FIGURE, svg=True, natural=300, shown=300)
    assert checker.layout_failures(page(figures=[fig]), 1280) == []
