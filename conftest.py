"""Repository-wide pytest configuration (applies to notebooks/ as well as tests/).

Claims are strict under pytest: nbval's kernels inherit ``MMEDU_CLAIMS_STRICT=1``, so a
chapter's claim that does not hold fails its cell (a learner's interactive kernel only
prints a notice; see :mod:`mmedu.claims`).

Portable notebook verification: cells tagged ``nbval-ignore-output`` print results of
training, whose last digits depend on the machine; nbval only checks that they run, and the
chapter's claims about them are asserted in the notebook (``mmedu.claims``). With
``MMEDU_NBVAL_EXACT=1`` (CI's first pass) those cells are compared exactly as well — but
only for a notebook whose recording machine (its metadata ``mmedu.recorded_on``, written by
``scripts/run_notebooks.py``) matches this one (:func:`mmedu.reproduce.fingerprint_matches`):
bits are identical only on the machine class that recorded them. Elsewhere the exact
comparison is skipped, and the run says so and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

EXACT_VARIABLE = "MMEDU_NBVAL_EXACT"


def pytest_configure(config):
    os.environ.setdefault("MMEDU_CLAIMS_STRICT", "1")


def recorded_fingerprint(path: Path) -> dict | None:
    """The fingerprint stored in a notebook's metadata by scripts/run_notebooks.py, if any."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    return meta.get("mmedu", {}).get("recorded_on")


def exact_verdict(path: Path, current: dict | None = None) -> tuple[bool, str]:
    """Whether the training cells of the notebook at ``path`` can be compared exactly here."""
    from mmedu.reproduce import fingerprint, fingerprint_matches

    recorded = recorded_fingerprint(path)
    if not recorded:
        return False, "the notebook records no machine fingerprint (re-execute it with `make notebooks`)"
    return fingerprint_matches(recorded, current if current is not None else fingerprint())


def _exact_requested() -> bool:
    return os.environ.get(EXACT_VARIABLE, "") in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    if not _exact_requested():
        return
    verdicts: dict[Path, tuple[bool, str]] = {}
    current = None
    for item in items:
        cell = getattr(item, "cell", None)
        options = getattr(item, "options", None)
        if cell is None or options is None:
            continue
        path = Path(str(item.fspath))
        if path not in verdicts:
            if current is None:
                from mmedu.reproduce import fingerprint

                current = fingerprint()
            verdicts[path] = exact_verdict(path, current)
        if verdicts[path][0] and "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            options["check"] = True


def _summary_lines(config) -> list[str]:
    # Computed once, in the controlling process (under xdist, collection happens in the
    # workers), for the header and the terminal summary.
    if not hasattr(config, "_mmedu_exact_lines"):
        config._mmedu_exact_lines = _exact_lines(config)
    return config._mmedu_exact_lines


def _exact_lines(config) -> list[str]:
    notebooks = sorted(Path(str(config.rootpath), "notebooks").glob("*.ipynb"))
    if not notebooks:
        return []
    from mmedu.reproduce import fingerprint

    current = fingerprint()
    lines = []
    for path in notebooks:
        ok, why = exact_verdict(path, current)
        lines.append(f"{path.name}: training cells compared exactly (recorded on this machine class)" if ok
                     else f"{path.name}: exact comparison SKIPPED, {why}; its training cells run and its "
                          "claims are asserted, but their digits are not compared")
    return lines


def pytest_report_header(config):
    if _exact_requested():
        return [f"{EXACT_VARIABLE}=1:"] + [f"  {line}" for line in _summary_lines(config)]
    return []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _exact_requested():
        terminalreporter.section("exact comparison of training cells (MMEDU_NBVAL_EXACT=1)")
        for line in _summary_lines(config):
            terminalreporter.write_line(line)
