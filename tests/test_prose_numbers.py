"""Prose numbers cannot go stale: every number a chapter's text reports is tied to its run.

``scripts/check_prose_numbers.py`` (its docstring holds the rules) finds, in every markdown cell,
the numbers in scope — decimals, percents, exponents — and ties each one to a number the notebook
printed (rounded to the precision the prose wrote), to a literal of its code, to an arithmetic
identity written out in the math, to the outputs of the chapter the sentence names, or to a
citation. This module runs it on every notebook and fails with every number it cannot tie, and
tests the matcher itself on small notebooks built here.

The same check from the command line: ``python scripts/check_prose_numbers.py [NOTEBOOK ...]``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


cpn = load_script("check_prose_numbers")

# Numbers that are legitimately not in the run. Per notebook (file stem): (the number as written,
# a fragment of its sentence, the reason). Keep it short: the fix for a result is to print it (or
# glue it) or to write the number the run prints. The script reads this with ast.literal_eval.
ALLOWLIST = {
    "00_data": [
        # a constant of the STFT: f_s / L = 8000 / 256 Hz (both settings are code literals)
        ("31.25", "(31.25 Hz apart)",
         "bin spacing f_s / L = 8000 Hz / 256, arithmetic of two settings, not a run result"),
        # a constant of the formula: log(1e-6) = -13.8155 (the math names the symbol, so the
        # computed rule cannot evaluate it)
        ("-13.8", r"\log \varepsilon \approx -13.8",
         "log(10^-6) = -13.82, the floor of the log for the setting eps = 10^-6"),
        # exercise 0.2's worked solution: what the wrong (early-rounded) route gives
        ("33.25", "Rounding the mel value to 52.3 first gives 33.25 Hz",
         "700 (10^(52.3/2595) - 1) = 33.25, worked arithmetic of the written solution of exercise 0.2"),
        ("0.04", "the 0.04 mel dropped by the rounding",
         "52.343 - 52.3, worked arithmetic of the written solution of exercise 0.2"),
    ],
}


# ---------------------------------------------------------------------------------------------
# the chapters
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_prose_number_is_tied_to_the_run(path: Path) -> None:
    report = cpn.check_notebook(path, ALLOWLIST)
    if report.untied:
        pytest.fail(
            f"{path.name}: {len(report.untied)} number(s) in the text are not what the run printed "
            "(print them above the text, glue them, write the printed value, cite their source, or "
            "allowlist a true constant in tests/test_prose_numbers.py):\n" + report.format_untied(),
            pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_allowlist_entries_still_match_a_number(path: Path) -> None:
    report = cpn.check_notebook(path, ALLOWLIST)
    assert not report.unused_allowlist, (
        f"{path.name}: allowlist entries that match no number of the text any more (remove them): "
        f"{report.unused_allowlist}")


def test_allowlist_is_well_formed() -> None:
    stems = {p.stem for p in NOTEBOOKS}
    for stem, entries in ALLOWLIST.items():
        assert stem in stems, f"ALLOWLIST names {stem!r}, which is not a notebook"
        for entry in entries:
            assert len(entry) == 3 and all(isinstance(x, str) and x.strip() for x in entry), entry
    assert cpn.load_allowlist(Path(__file__)) == ALLOWLIST       # what the CLI reads


# ---------------------------------------------------------------------------------------------
# the matcher, on small notebooks
# ---------------------------------------------------------------------------------------------

def _notebook(tmp_path: Path, cells: list[tuple[str, str, str]], name: str = "07_toy") -> Path:
    """cells: ("md", text, "") or ("code", source, printed stdout)."""
    nb = nbformat.v4.new_notebook()
    for kind, source, printed in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if printed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
            nb.cells.append(cell)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


TABLE = ("code", "print(table)", "method     a→i mAP  i→a mAP\nInfoNCE      0.922    0.916\nCCA          0.705    0.720\n"
                                 "attention    0.808    0.829\n")


def _untied(tmp_path: Path, text: str, *cells, allowlist=None) -> list[str]:
    path = _notebook(tmp_path, [*cells, ("md", text, "")])
    return [n.text for n in cpn.check_notebook(path, allowlist).untied]


def test_stale_about_number_is_caught(tmp_path: Path) -> None:
    # chapter 7's bug: the table prints 0.922 / 0.916, the text says "about 0.94" three times
    text = ("InfoNCE reaches a mAP of about 0.94, against 0.70 for CCA.\n\n"
            "* On audio it stays below the MLP (a mAP of about 0.8 against 0.94).\n")
    assert _untied(tmp_path, text, TABLE) == ["0.94", "0.94"]
    assert _untied(tmp_path, "InfoNCE reaches a mAP of about 0.92.", TABLE) == []


def test_rounded_to_the_displayed_precision(tmp_path: Path) -> None:
    run = ("code", "print(acc)", "accuracy 0.9224\n")
    assert _untied(tmp_path, "It reaches 0.92.", run) == []
    assert _untied(tmp_path, "It reaches about 0.9.", run) == []
    assert _untied(tmp_path, "It reaches ≈ 0.922.", run) == []
    assert _untied(tmp_path, "It reaches 0.93.", run) == ["0.93"]
    assert _untied(tmp_path, "It reaches 0.9225.", run) == ["0.9225"]      # more digits than printed
    # a printed value half-way between two roundings ties both of them (it is itself rounded)
    assert _untied(tmp_path, "Both 0.92 and 0.93 round it.", ("code", "x", "0.925\n")) == []


def test_percent_against_a_fraction_and_a_wrongly_rounded_percent(tmp_path: Path) -> None:
    run = ("code", "print(acc)", "test accuracy: 0.9652\n")
    assert _untied(tmp_path, "The image model reaches 96.5 % on the test split.", run) == []
    assert _untied(tmp_path, "The image model reaches 97% on the test split.", run) == []
    assert _untied(tmp_path, "The image model reaches 96.6 % on the test split.", run) == ["96.6 %"]
    assert _untied(tmp_path, "The image model reaches 96 % on the test split.", run) == ["96 %"]
    # a percent is not tied by a bare printed integer (an epoch, a count), only by a fraction
    # or a printed percent; a plain fraction is tied by a printed percent
    assert _untied(tmp_path, "About 10 % of the items.", ("code", "x", "epochs: 10\n")) == ["10 %"]
    assert _untied(tmp_path, "About 10 % of the items.", ("code", "x", "share: 10%\n")) == []
    assert _untied(tmp_path, "A share of 0.1.", ("code", "x", "share: 10%\n")) == []


def test_a_cited_number_is_exempt(tmp_path: Path) -> None:
    run = ("code", "print(acc)", "accuracy 0.9224\n")
    assert _untied(tmp_path, "CLIP reaches 76.2 % zero-shot {cite}`radford2021learning`.", run) == []
    assert _untied(tmp_path, "* VSE++ {cite:p}`faghri2018vse` reports R@1 of 0.41.\n  Its margin is 0.2.", run) == []
    # the citation exempts its sentence (or list item), not the whole paragraph
    text = "CLIP reaches 76.2 % {cite:t}`radford2021learning`. Ours reaches 0.95."
    assert _untied(tmp_path, text, run) == ["0.95"]
    text = "VSE++ {cite}`faghri2018vse` uses a hinge. `mmedu.losses.vse_hinge` takes a margin of 0.37."
    assert _untied(tmp_path, text, run) == ["0.37"]                      # a sentence may start with code


def test_a_code_literal_is_tied_exactly(tmp_path: Path) -> None:
    code = ("code", "opt = Adam(lr=1e-3)\nfor tau in [1.0, 0.05]:  # not 0.33\n    run(tau, '0.2')", "")
    assert _untied(tmp_path, "At $\\tau = 0.05$ with lr 1e-3, margin 0.2, and τ = 1.0.", code) == []
    assert _untied(tmp_path, "At $\\tau = 0.06$.", code) == ["0.06"]          # exact, not rounded
    assert _untied(tmp_path, "Not the 0.33 of a comment.", code) == ["0.33"]
    assert _untied(tmp_path, "Dropout of 5 %.", ("code", "p = 0.05", "")) == []


def test_signs_and_unicode_minus(tmp_path: Path) -> None:
    run = ("code", "print(r)", "correlation -0.45\nELBO −181.2\n")
    assert _untied(tmp_path, "The correlation is −0.45, the ELBO -181.2.", run) == []
    assert _untied(tmp_path, "It falls by 0.45.", run) == []                  # unsigned: magnitude
    assert _untied(tmp_path, "The correlation is −0.46.", run) == ["−0.46"]
    assert _untied(tmp_path, "It is −0.92.", ("code", "x", "0.92\n")) == ["−0.92"]   # sign must match


def test_ranges_and_spread(tmp_path: Path) -> None:
    run = ("code", "x", "seed 0: 0.931\nseed 1: 0.962\nmean 0.95 sd 0.012\nR@10 0.074 0.151\n")
    assert _untied(tmp_path, "Over seeds it lies in 0.93–0.96, 0.95 ± 0.01.", run) == []
    assert _untied(tmp_path, "Recall@10 of 7–15 % instead of chance.", run) == []
    assert _untied(tmp_path, "Over seeds it lies in 0.93–0.97.", run) == ["0.97"]
    assert _untied(tmp_path, "Recall@10 of 7–16 % instead of chance.", run) == ["16 %"]


def test_printed_only_below_is_not_tied(tmp_path: Path) -> None:
    path = _notebook(tmp_path, [("md", "It will reach 0.92.", ""), ("md", "Next:", ""), ("code", "x", "0.9224\n")])
    report = cpn.check_notebook(path)
    assert [n.text for n in report.untied] == ["0.92"]
    assert "printed only further below, in cell 2" in report.untied[0].note
    # ... but the code cells right after the text count: "(92 % of the variance)" then its cell
    path = _notebook(tmp_path, [("md", "PCA keeps 92 % of the variance.", ""), ("code", "x", "kept: 0.918\n")])
    assert cpn.check_notebook(path).untied == []


def test_claim_lines_are_not_outputs(tmp_path: Path) -> None:
    # mmedu.claims prints the band, not the value: "✓ …: in [0.9, 0.975]" ties nothing by rounding
    claims = ("code", "claims.between('mAP', x, 0.9, 0.975)", "✓ InfoNCE a→i mAP: in [0.9, 0.975]\n")
    assert _untied(tmp_path, "InfoNCE reaches about 0.94.", claims) == ["0.94"]
    assert _untied(tmp_path, "InfoNCE reaches about 0.97.", claims) == ["0.97"]
    assert _untied(tmp_path, "Its band is [0.9, 0.975].", claims) == []      # the literal itself


def test_out_of_scope(tmp_path: Path) -> None:
    text = ("### 6.2 The temperature\n\n"
            "(errata-7-relevance)=\n\n"
            "Section 6.2 and §4.3–4.6 (see Exercise 2.3) train 12 epochs on 2,000 items with `lr=0.37` "
            "and {doc}`07_retrieval` and [a link](https://example.org/v0.55) on torch 2.13.0; R@10 of 3.\n\n"
            "```python\nx = 0.123\n```\n\n"
            "```{exercise} Title 1.5\n:label: ex-7-1.5\n\nNo result here.\n```\n")
    assert _untied(tmp_path, text) == []
    assert [n.text for n in cpn.prose_numbers(text)] == []
    found = cpn.prose_numbers("Results: 0.956, .95, −0.45, 96.5 %, 23.9%, 4.2×, 1e-3 and $\\tau = 0.07$; 12 epochs.")
    assert [n.text for n in found] == ["0.956", ".95", "−0.45", "96.5 %", "23.9%", "4.2", "1e-3", "0.07"]
    assert [n.in_math for n in found] == [False] * 7 + [True]


def test_exercise_solution_body_is_prose(tmp_path: Path) -> None:
    text = "```{solution} ex-7-1\n:class: dropdown\n\nThe answer is 0.57.\n```\n"
    assert _untied(tmp_path, text, ("code", "x", "0.571\n")) == []
    assert _untied(tmp_path, text, ("code", "x", "0.59\n")) == ["0.57"]


def test_arithmetic_identity_in_math(tmp_path: Path) -> None:
    assert _untied(tmp_path, "By chance, Recall@10 is $10/2000 = 0.005$.") == []
    assert _untied(tmp_path, "Chance is $10/2000 = 0.5$ %.") == []
    assert _untied(tmp_path, "The line marks $\\log 4 \\approx 1.386$ and $\\sigma(2) \\approx 0.881$.") == []
    assert _untied(tmp_path, "Steps of $24/255 \\approx 0.094$; later, steps of 0.094.") == []   # a repeat
    assert _untied(tmp_path, "By chance, Recall@10 is $10/2000 = 0.05$.") == ["0.05"]
    # a wrong identity is not rescued by repeating a right one of the same cell
    assert _untied(tmp_path, "The line marks $\\log 4 \\approx 1.39$ and $\\log 5 \\approx 1.39$.") == ["1.39"]
    # operands are not results: here 0.3 must be tied on its own (it is not)
    assert _untied(tmp_path, "Then $0.3 + 0.2 = 0.5$.") == ["0.3", "0.2"]
    assert _untied(tmp_path, "Silence maps to $\\log \\varepsilon \\approx -13.8$.") == ["-13.8"]  # a symbol


def test_other_chapter_outputs(tmp_path: Path) -> None:
    _notebook(tmp_path, [("code", "print(r)", "CCA i→t R@10 0.2055\n")], name="03_subspace")
    assert _untied(tmp_path, "Chapter 3's CCA reaches 0.2055; ours more.") == []
    assert _untied(tmp_path, "As {doc}`03_subspace` shows, CCA reaches 0.21.") == []
    assert _untied(tmp_path, "Chapter 3's CCA reaches 0.2155.") == ["0.2155"]
    assert _untied(tmp_path, "CCA reaches 0.2055.") == ["0.2055"]             # no chapter named


def test_allowlist_entry(tmp_path: Path) -> None:
    allow = {"07_toy": [("1.5", "radius 1.5", "a constant of the toy problem")]}
    assert _untied(tmp_path, "A ring of radius 1.5.", allowlist=allow) == []
    assert _untied(tmp_path, "A ring of radius 2.5.", allowlist=allow) == ["2.5"]
    path = _notebook(tmp_path, [("md", "A ring of radius 2.5.", "")])
    assert cpn.check_notebook(path, allow).unused_allowlist == allow["07_toy"]


def test_rounds_to() -> None:
    assert cpn.rounds_to(Decimal("0.9224"), Decimal("0.92"))
    assert cpn.rounds_to(Decimal("0.935"), Decimal("0.94")) and cpn.rounds_to(Decimal("0.935"), Decimal("0.93"))
    assert not cpn.rounds_to(Decimal("0.922"), Decimal("0.94"))
    assert not cpn.rounds_to(Decimal("-0.45"), Decimal("0.45"))
    assert cpn.rounds_to(Decimal("-0.45"), Decimal("0.45"), signed=False)
    assert cpn.rounds_to(Decimal("0.00098"), Decimal("1e-3"))


def test_cli_prints_cell_and_sentence_and_exits_1(tmp_path: Path, capsys) -> None:
    path = _notebook(tmp_path, [TABLE, ("md", "Text.", ""), ("md", "InfoNCE reaches a mAP of about 0.94.", "")])
    assert cpn.main([str(path), "--no-allowlist"]) == 1
    out = capsys.readouterr().out
    assert "cell 2: '0.94'" in out and "InfoNCE reaches a mAP of about 0.94." in out
    ok = _notebook(tmp_path, [TABLE, ("md", "InfoNCE reaches a mAP of about 0.92.", "")], name="07_fine")
    assert cpn.main([str(ok), "--no-allowlist"]) == 0


def test_reads_plain_json_outputs_of_every_kind(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(x)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "| a | 0.811 |", "text/plain": "<Markdown>"}),
        nbformat.v4.new_output("execute_result", data={"text/html": "<td style='width:0.5em'>0.322</td>",
                                                       "text/plain": "0.3221"}, execution_count=1),
    ]
    nb.cells = [cell]
    run = cpn.run_of(json.loads(nbformat.writes(nb)))
    values = {p.value for p in run.printed}
    assert {Decimal("0.811"), Decimal("0.322"), Decimal("0.3221")} <= values
    assert Decimal("0.5") not in values                                    # HTML attributes are not output
