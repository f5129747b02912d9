"""Repository-wide pytest configuration (applies to notebooks/ as well as tests/).

Portable notebook verification: cells tagged ``nbval-ignore-output`` print results of
training, whose last digits depend on the CPU; nbval only checks that they run, and the
chapter's claims about them are asserted in the notebook (``mmedu.claims``). With
``MMEDU_NBVAL_EXACT=1`` those cells are compared exactly as well — which holds on the
recording machine class (x86-64 with AVX2 or better, under the pins of
``mmedu/reproduce.py``); CI's first pass sets it.
"""

import os

EXACT_VARIABLE = "MMEDU_NBVAL_EXACT"


def pytest_collection_modifyitems(config, items):
    if os.environ.get(EXACT_VARIABLE, "") not in ("1", "true", "yes"):
        return
    for item in items:
        cell = getattr(item, "cell", None)
        options = getattr(item, "options", None)
        if cell is None or options is None:
            continue
        if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            options["check"] = True
