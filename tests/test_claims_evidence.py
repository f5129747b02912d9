"""Every claim a chapter states is backed by committed evidence, under the evidence rule.

``make claims`` (scripts/measure_claims.py) re-runs each chapter over many seeds under the
recording pins and a few under a foreign instruction set, and commits every claim's values
to ``notebooks/claims/NN_topic.json``. This test reads the claims a notebook states from its
stored outputs (the ``✓`` lines :class:`mmedu.claims.Claims` prints; nbval proves they are
what the code prints) and fails when

* a chapter that states claims has no evidence file, or too few runs of it;
* the evidence was measured on other training code (:func:`mmedu.claims.chapter_code_hash`:
  the notebook's code and the ``mmedu`` modules it imports, claims statements excluded);
* a claim has no evidence, or its band, margin or tolerance is tighter than the rule allows
  (:func:`mmedu.claims.evidence_problems`: mean ± 4 sd of the evidence, every recorded value
  with half an sd of margin).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmedu.claims import EVIDENCE_FOLDER, chapter_code_hash, evidence_problems, stated_claims, uses_claims

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MIN_PINNED_SEEDS = 10
MIN_FOREIGN_SEEDS = 3


CHAPTERS = [p for p in NOTEBOOKS if uses_claims(json.loads(p.read_text(encoding="utf-8")))]


def test_chapters_state_claims():
    assert len(CHAPTERS) >= 6, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_claims_are_backed_by_evidence(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    claims = stated_claims(nb)
    assert claims, f"{path.name} creates Claims but its stored outputs state none"
    evidence_path = path.parent / EVIDENCE_FOLDER / f"{path.stem}.json"
    how = f"run `make claims NB=notebooks/{path.name}`"
    assert evidence_path.exists(), f"{path.name} states {len(claims)} claims but has no evidence; {how}"
    evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
    assert evidence["code_hash"] == chapter_code_hash(path), (
        f"{evidence_path.name} was measured on other training code than {path.name} has now "
        f"(recorded {evidence.get('date')}); {how}")
    runs = evidence["runs"]
    pinned = {r["seed"] for r in runs if r["isa"] == "pinned"}
    foreign = {r["seed"] for r in runs if r["isa"] == "foreign"}
    assert len(pinned) >= MIN_PINNED_SEEDS and len(foreign) >= MIN_FOREIGN_SEEDS, (
        f"{evidence_path.name}: {len(pinned)} seeds under the pins, {len(foreign)} under FOREIGN; "
        f"the rule needs ≥ {MIN_PINNED_SEEDS} and ≥ {MIN_FOREIGN_SEEDS}")
    failures = []
    for name, (kind, params) in claims.items():
        record = evidence["claims"].get(name)
        if record is None:
            failures.append(f"{name!r}: no evidence (a new or renamed claim); {how}")
            continue
        values = record["values"]
        if any(v is None for vs in values.values() for v in vs) or any(len(vs) != len(runs) for vs in values.values()):
            failures.append(f"{name!r}: its evidence misses runs")
            continue
        try:
            problems = evidence_problems(kind, params, values)
        except KeyError as missing:
            failures.append(f"{name!r}: the evidence has no values {missing} for a {kind} claim; {how}")
            continue
        failures += [f"{name!r} ({kind} {params}): {p}" for p in problems]
    assert not failures, f"{path.name}: claims the evidence does not support:\n  " + "\n  ".join(failures)
