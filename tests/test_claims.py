import json

import numpy as np
import pytest
import torch

from mmedu.claims import ClaimError, Claims, agree, run_seed


def test_between_prints_value_free_line_and_raises_when_false(capsys):
    c = Claims("ch")
    assert c.between("acc", 0.5, 0.4, 0.6)
    out = capsys.readouterr().out
    assert out == "✓ acc: in [0.4, 0.6]\n"  # no trace of the value: nbval compares it exactly
    with pytest.raises(ClaimError, match="'acc' does not hold.*value=0.7"):
        c.between("acc", 0.7, 0.4, 0.6)
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
    assert entries[1]["values"]["gap"] == pytest.approx(0.5)


@pytest.mark.parametrize("call, err", [
    (lambda c: c.between("x", float("nan"), 0, 1), ValueError),
    (lambda c: c.between("x", "high", 0, 1), TypeError),
    (lambda c: c.between("x", 0.5, 1, 0), ValueError),
    (lambda c: c.between("", 0.5, 0, 1), TypeError),
    (lambda c: c.order("x", {"only": 1.0}), TypeError),
    (lambda c: c.order("x", {"a": 1.0, "b": 0.5}, slack=-1), ValueError),
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
