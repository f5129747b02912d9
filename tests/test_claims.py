import json

import numpy as np
import pytest
import torch

from mmedu.claims import (ClaimError, Claims, agree, chapter_code_hash, claim_intervals, evidence_problems,
                          parse_claim_line, required_interval, run_seed)


@pytest.fixture(autouse=True)
def _strict_by_default(monkeypatch):
    # These tests state what a strict run (nbval, CI) does unless they say otherwise.
    monkeypatch.setenv("MMEDU_CLAIMS_STRICT", "1")
    monkeypatch.delenv("MMEDU_CLAIMS_LOG", raising=False)


def test_between_prints_value_free_line_and_raises_when_false(capsys):
    c = Claims("ch")
    assert c.between("acc", 0.5, 0.4, 0.6)
    out = capsys.readouterr().out
    assert out == "✓ acc: in [0.4, 0.6]\n"  # no trace of the value: nbval compares it exactly
    with pytest.raises(ClaimError, match="'acc 2' does not hold.*value=0.7"):
        c.between("acc 2", 0.7, 0.4, 0.6)
    assert c.checked == ["acc"]


def test_greater_and_its_margin():
    c = Claims("ch")
    assert c.greater("a beats b", 0.8, 0.7)
    assert c.greater("a within 0.02 of b", 0.69, 0.7, by=-0.02)
    with pytest.raises(ClaimError):
        c.greater("a beats b by 0.2", 0.8, 0.7, by=0.2)
    with pytest.raises(ClaimError):
        c.greater("tie is not a strict win", 0.7, 0.7, by=0.01)


def test_order_with_slack(capsys):
    c = Claims("ch")
    assert c.order("chain", {"late": 0.99, "early": 0.98, "image": 0.93})
    assert "late ≥ early ≥ image" in capsys.readouterr().out
    assert c.order("chain with slack", {"a": 0.50, "b": 0.505}, slack=0.01)
    with pytest.raises(ClaimError):
        c.order("broken", {"a": 0.9, "b": 0.95, "c": 0.1})


def test_order_checks_the_whole_drift_not_only_each_step():
    # Each step rises by 0.01 <= slack, but the sequence rises by 0.03 in all: not "non-increasing".
    c = Claims("ch")
    with pytest.raises(ClaimError, match="grows"):
        c.order("R=8 ≥ R=1 (grows with R)", {"R=8": 0.80, "R=4": 0.81, "R=2": 0.82, "R=1": 0.83}, slack=0.01)
    assert c.order("within slack overall", {"a": 0.80, "b": 0.805, "c": 0.80}, slack=0.01)


def test_close_is_two_sided(capsys):
    c = Claims("ch")
    assert c.close("on a par", 0.91, 0.90, tol=0.02)
    assert capsys.readouterr().out == "✓ on a par: |first − second| ≤ 0.02\n"
    with pytest.raises(ClaimError):
        c.close("still climbing", 0.95, 0.90, tol=0.02)  # a one-sided form would pass
    with pytest.raises(ClaimError):
        c.close("fell behind", 0.85, 0.90, tol=0.02)


def test_a_name_is_one_claim(monkeypatch, capsys):
    c = Claims("ch")
    c.between("acc", 0.5, 0.4, 0.6)
    with pytest.raises(ValueError, match="already stated"):
        c.between("acc", 0.5, 0.4, 0.6)  # strict: no repeats at all
    monkeypatch.setenv("MMEDU_CLAIMS_STRICT", "0")
    i = Claims("ch")
    i.between("acc", 0.5, 0.4, 0.6)
    assert i.between("acc", 0.55, 0.4, 0.6)  # an interactive re-run of the same cell
    with pytest.raises(ValueError, match="already stated"):
        i.between("acc", 0.5, 0.3, 0.6)  # another claim under the same name
    with pytest.raises(ValueError, match="already stated"):
        i.greater("acc", 0.5, 0.3)


def test_interactive_kernel_gets_a_notice_not_an_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MMEDU_CLAIMS_STRICT", "0")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claims").mkdir()
    runs = [{"seed": s, "isa": "pinned"} for s in range(12)] + [{"seed": s, "isa": "foreign"} for s in range(3)]
    (tmp_path / "claims" / "07_retrieval.json").write_text(json.dumps({"runs": runs}))
    c = Claims("07_retrieval")
    assert c.between("VSE++ a→i mAP", 0.2684, 0.2, 0.26) is False
    out = capsys.readouterr().out
    assert "Not confirmed on this run: 'VSE++ a→i mAP'" in out
    assert "value=0.2684" in out and "in [0.2, 0.26]" in out
    assert "15 runs (12 seeds under the recording pins, 3 under a foreign instruction set" in out
    assert "goes on" in out and "report it" in out
    assert c.greater("next claim still checked", 2, 1)  # the chapter goes on


@pytest.mark.parametrize("env, strict", [({}, False), ({"CI": "true"}, True), ({"MMEDU_CLAIMS_STRICT": "1"}, True),
                                         ({"CI": "true", "MMEDU_CLAIMS_STRICT": "0"}, False)])
def test_strictness_from_the_environment(monkeypatch, env, strict):
    monkeypatch.delenv("MMEDU_CLAIMS_STRICT", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert Claims("ch").strict is strict
    assert Claims("ch", strict=not strict).strict is (not strict)


def test_printed_lines_parse_back(capsys):
    c = Claims("ch")
    c.between("x: y", 0.5, 1 / 3, 0.75)
    c.greater("a beats b", 2, 1, by=0.25)
    c.greater("a within 0.1 of b", 1, 1.05, by=-0.1)
    c.greater("plain", 2, 1)
    c.close("par", 1, 1.01, tol=0.02)
    c.order("grows: R (8 ≥ 1)", {"R=8": 3, "R=4": 2, "R=1": 1}, slack=0.01)
    c.order("no slack", {"a": 3, "b": 2})
    parsed = [parse_claim_line(line) for line in capsys.readouterr().out.splitlines()]
    assert parsed == [
        ("x: y", "between", {"low": pytest.approx(1 / 3, abs=1e-6), "high": 0.75}),
        ("a beats b", "greater", {"by": 0.25}),
        ("a within 0.1 of b", "greater", {"by": -0.1}),
        ("plain", "greater", {"by": 0.0}),
        ("par", "close", {"tol": 0.02}),
        ("grows: R (8 ≥ 1)", "order", {"keys": ["R=8", "R=4", "R=1"], "slack": 0.01}),
        ("no slack", "order", {"keys": ["a", "b"], "slack": 0.0}),
    ]
    assert parse_claim_line("train / validation items: 7000 1000") is None


def test_the_evidence_rule():
    xs = [0.90, 0.91, 0.92, 0.93, 0.94]  # mean 0.92, sd 0.0158
    low, high = required_interval(xs)
    assert low == pytest.approx(0.92 - 4 * 0.015811, abs=1e-5) and high == pytest.approx(0.92 + 4 * 0.015811, abs=1e-5)
    # Every recorded value with half an sd of margin, where that is wider than 4 sd (an outlier).
    low, high = required_interval([0.0] * 19 + [1.0])
    assert high == pytest.approx(1.0 + 0.5 * 0.2236, abs=1e-4)
    assert required_interval([3.0, 3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError, match="at least 2"):
        required_interval([0.5])
    with pytest.raises(ValueError, match="non-finite"):
        required_interval([0.5, float("inf")])
    values = {"value": xs}
    assert evidence_problems("between", {"low": 0.85, "high": 0.99}, values) == []
    [problem] = evidence_problems("between", {"low": 0.89, "high": 0.99}, values)
    assert "claims [0.89, 0.99]" in problem and "needs [0.8568, 0.9832]" in problem
    # An ordering noise can flip: mean gap 0.01, sd 0.01 -> "a beats b" is not a claim.
    a, b = [0.92, 0.93, 0.91, 0.92, 0.94], [0.91, 0.90, 0.92, 0.91, 0.91]
    assert evidence_problems("greater", {"by": 0.0}, {"a": a, "b": b})
    assert evidence_problems("greater", {"by": -0.06}, {"a": a, "b": b}) == []
    assert evidence_problems("close", {"tol": 0.09}, {"a": a, "b": b}) == []
    assert evidence_problems("close", {"tol": 0.05}, {"a": a, "b": b})
    order = {"x": [3.0, 3.1, 2.9], "y": [2.0, 2.1, 1.9], "z": [1.0, 1.05, 0.95]}
    assert evidence_problems("order", {"keys": ["x", "y", "z"], "slack": 0.0}, order) == []
    assert set(claim_intervals("order", {"keys": ["x", "y", "z"], "slack": 0.0}, order)) == {
        "x − y", "y − z", "x − z (whole drift)"}
    with pytest.raises(ValueError, match="kind"):
        claim_intervals("less", {}, {})


def _notebook(tmp_path, *sources, name="nb.ipynb"):
    cells = [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
             for s in sources]
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_code_hash_follows_training_code_only(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "training.py").write_text('"""Doc."""\nLR = 0.1\n')
    (pkg / "claims.py").write_text("X = 1\n")
    base = ["%matplotlib inline\nfrom mmedu.training import LR\nfrom mmedu.claims import Claims",
            "acc = LR * 2  # train\nclaims.between('acc', acc, 0.1, 0.3)\nfor k in 'ab':\n    claims.greater(k, 1, 0)"]
    h = chapter_code_hash(_notebook(tmp_path, *base), pkg)
    # A band, a comment, formatting, a docstring: the same evidence holds.
    same = [base[0], "acc = LR*2\nclaims.between('acc', acc, 0.0, 0.5)\nfor k in 'ab':\n    claims.greater(k, 1, 0, by=-1)"]
    assert chapter_code_hash(_notebook(tmp_path, *same, name="b.ipynb"), pkg) == h
    (pkg / "training.py").write_text('"""Other doc."""\nLR = 0.1  # the rate\n')
    assert chapter_code_hash(_notebook(tmp_path, *base), pkg) == h
    (pkg / "claims.py").write_text("X = 2\n")  # not training code
    assert chapter_code_hash(_notebook(tmp_path, *base), pkg) == h
    # Cells split differently: the same code.
    split = [base[0] + "\nacc = LR * 2", "claims.between('acc', acc, 0.1, 0.3)\nfor k in 'ab':\n    claims.greater(k, 1, 0)"]
    assert chapter_code_hash(_notebook(tmp_path, *split, name="s.ipynb"), pkg) == h
    # What a claim measures is part of it: another value expression needs new evidence.
    other = [base[0], base[1].replace("claims.between('acc', acc,", "claims.between('acc', acc + 1,")]
    assert chapter_code_hash(_notebook(tmp_path, *other, name="d.ipynb"), pkg) != h
    # ... but its name and kind are not (greater -> close on the same values).
    renamed = [base[0], base[1].replace("claims.between('acc'", "claims.between('accuracy'")
               .replace("claims.greater(k, 1, 0)", "claims.close(k + '!', 1, 0, tol=1)")]
    assert chapter_code_hash(_notebook(tmp_path, *renamed, name="e.ipynb"), pkg) == h
    # Training code changes: the evidence is stale.
    assert chapter_code_hash(_notebook(tmp_path, base[0], base[1].replace("* 2", "* 3"), name="c.ipynb"), pkg) != h
    (pkg / "training.py").write_text("LR = 0.2\n")
    assert chapter_code_hash(_notebook(tmp_path, *base), pkg) != h


def test_log_records_values_and_never_raises(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("MMEDU_CLAIMS_LOG", str(log))
    monkeypatch.setenv("MMEDU_SEED", "2")
    c = Claims("03_subspace")
    assert c.between("r10", 0.2, 0.3, 0.4) is False  # logged, not raised
    c.greater("g", 1.0, 0.5)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["claim"] for e in entries] == ["r10", "g"]
    assert entries[0]["holds"] is False and entries[0]["values"] == {"value": 0.2} and entries[0]["seed"] == "2"
    assert entries[0]["params"] == {"low": 0.3, "high": 0.4}
    assert entries[1]["values"] == {"a": 1.0, "b": 0.5} and entries[1]["params"] == {"by": 0.0}


@pytest.mark.parametrize("call, err", [
    (lambda c: c.between("x", float("nan"), 0, 1), ValueError),
    (lambda c: c.between("x", "high", 0, 1), TypeError),
    (lambda c: c.between("x", 0.5, 1, 0), ValueError),
    (lambda c: c.between("", 0.5, 0, 1), TypeError),
    (lambda c: c.order("x", {"only": 1.0}), TypeError),
    (lambda c: c.order("x", {"a": 1.0, "b": 0.5}, slack=-1), ValueError),
    (lambda c: c.between("x", 0.5, float("-inf"), 1), ValueError),
    (lambda c: c.between("x", 0.5, 0, float("inf")), ValueError),
    (lambda c: c.greater("x", 0.5, 0.4, by=float("-inf")), ValueError),
    (lambda c: c.greater("x", 0.5, 0.4, by=float("nan")), ValueError),
    (lambda c: c.greater("a beats b", 0.5, 0.4, by=-0.01), ValueError),
    (lambda c: c.close("x", 0.5, 0.4, tol=-0.01), ValueError),
    (lambda c: c.close("x", 0.5, 0.4, tol=float("inf")), ValueError),
    (lambda c: c.order("x", {"a": 1.0, "b": 0.5}, slack=float("inf")), ValueError),
    (lambda c: c.order("x", {"a ≥ b": 1.0, "b": 0.5}), ValueError),
    (lambda c: c.between("two\nlines", 0.5, 0, 1), ValueError),
    (lambda c: c.between("x", True, 0, 1), TypeError),
])
def test_bad_input(call, err):
    with pytest.raises(err):
        call(Claims("ch", log=""))


def test_run_seed(monkeypatch):
    monkeypatch.delenv("MMEDU_SEED", raising=False)
    assert run_seed() == 0 and run_seed(7) == 7
    monkeypatch.setenv("MMEDU_SEED", "3")
    assert run_seed() == 3
    for bad in ("x", "-1"):
        monkeypatch.setenv("MMEDU_SEED", bad)
        with pytest.raises(ValueError, match="MMEDU_SEED"):
            run_seed()


def test_agree_prints_difference_and_tolerance(capsys):
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    b = a + torch.tensor([0.0, 1e-9, -2e-9], dtype=torch.float64)
    diff = agree("ours vs reference", a, b.numpy(), atol=1e-8, rtol=0)
    assert diff == pytest.approx(2e-9)
    assert capsys.readouterr().out == "ours vs reference: max |difference| = 2.0e-09 (atol 1e-08, rtol 0)\n"
    with pytest.raises(AssertionError, match="ours vs reference"):
        agree("ours vs reference", a, a + 1e-3, atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="shapes differ"):
        agree("x", np.zeros(3), np.zeros(4))


def test_stated_claims_reads_the_stored_outputs():
    from mmedu.claims import stated_claims

    def nb(*lines):
        out = {"output_type": "stream", "name": "stdout", "text": [line + "\n" for line in lines]}
        return {"cells": [{"cell_type": "markdown", "source": "✓ not an output"},
                          {"cell_type": "code", "outputs": [out]}]}

    assert stated_claims(nb("train: 7000", "✓ acc: in [0.4, 0.6]", "✓ a beats b: first ≥ second + 0.01")) == {
        "acc": ("between", {"low": 0.4, "high": 0.6}), "a beats b": ("greater", {"by": 0.01})}
    with pytest.raises(ValueError, match="not a claim"):
        stated_claims(nb("✓ done"))
    with pytest.raises(ValueError, match="printed twice"):
        stated_claims(nb("✓ acc: in [0.4, 0.6]", "✓ acc: in [0.4, 0.7]"))
