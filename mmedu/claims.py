"""Assert what a chapter's prose claims about its training results — portably.

A seeded training run is bit-for-bit reproducible only on the CPU class it was recorded on
(see :mod:`mmedu.reproduce`). On another CPU, on Apple silicon or on a GPU the digits move
(accuracies by a few hundredths). So a chapter's *printed* training results are for the
reader (their cells carry nbval's ``nbval-ignore-output`` tag), and every statement the prose
makes about them is checked here, with a band or an ordering that was measured to hold over
several seeds and CPU instruction sets (``scripts/measure_claims.py``).

Usage in a notebook (a compact cell, ``hide-input`` in the book)::

    claims = Claims("01_concatenation")
    claims.between("audio-only accuracy", results["audio only"], 0.93, 0.99)
    claims.greater("early fusion beats the best single modality", early, best_single)
    claims.order("separate experts >= early fusion >= image only",
                 {"separate": a, "early": b, "image": c}, slack=0.01)

Each call prints one line that does not depend on the measured value (so nbval can compare
it exactly) and raises :class:`ClaimError` if the claim does not hold.

Measuring the bands: with the environment variable ``MMEDU_CLAIMS_LOG`` set to a file path,
every call appends its values as one JSON line to that file and never raises, so
``scripts/measure_claims.py`` can re-run chapters under other seeds (``MMEDU_SEED``) and
instruction sets and print the observed range of every claim.
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping

__all__ = ["Claims", "ClaimError", "agree", "run_seed"]

LOG_VARIABLE = "MMEDU_CLAIMS_LOG"
SEED_VARIABLE = "MMEDU_SEED"


class ClaimError(AssertionError):
    """A claim of the prose does not hold for this run."""


def run_seed(default: int = 0) -> int:
    """The base seed of a chapter's training runs: ``$MMEDU_SEED`` if set, else ``default``.

    Chapters derive every training seed from it, so ``scripts/measure_claims.py`` can re-run
    a whole chapter under other seeds without editing it. Nothing else reads the variable.
    """
    value = os.environ.get(SEED_VARIABLE, "").strip()
    if not value:
        return default
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE}: expected a non-negative integer, got {value!r}") from None
    if seed < 0:
        raise ValueError(f"{SEED_VARIABLE}: expected a non-negative integer, got {seed}")
    return seed


def _number(v, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}") from None
    if math.isnan(x):
        raise ValueError(f"{name}: got NaN")
    return x


class Claims:
    """One chapter's claims about its training results.

    Args:
        chapter: a name for the log (e.g. the notebook's stem).
        log: path of the JSON-lines log; default ``$MMEDU_CLAIMS_LOG`` (unset: no log,
            and a failing claim raises).
    """

    def __init__(self, chapter: str, log: str | None = None) -> None:
        if not isinstance(chapter, str) or not chapter:
            raise TypeError(f"chapter: expected a non-empty str, got {chapter!r}")
        self.chapter = chapter
        self.log = log if log is not None else (os.environ.get(LOG_VARIABLE) or None)
        self.checked: list[str] = []

    def _record(self, kind: str, name: str, holds: bool, detail: str, values: dict) -> bool:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name: expected a non-empty str, got {name!r}")
        if self.log:
            entry = {"chapter": self.chapter, "claim": name, "kind": kind, "holds": holds,
                     "values": values, "seed": os.environ.get(SEED_VARIABLE, ""),
                     "isa": os.environ.get("ATEN_CPU_CAPABILITY", "")}
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        elif not holds:
            raise ClaimError(f"{self.chapter}: claim {name!r} does not hold: {detail} "
                             f"(values: {', '.join(f'{k}={v:.4g}' for k, v in values.items())})")
        self.checked.append(name)
        print(f"✓ {name}: {detail}" if holds else f"✗ {name}: {detail} (logged, not raised)")
        return holds

    def between(self, name: str, value, low: float, high: float) -> bool:
        """Claim ``low <= value <= high``."""
        value, low, high = _number(value, "value"), _number(low, "low"), _number(high, "high")
        if low > high:
            raise ValueError(f"between: low={low} is greater than high={high}")
        return self._record("between", name, low <= value <= high, f"in [{low:g}, {high:g}]",
                            {"value": value})

    def greater(self, name: str, a, b, by: float = 0.0) -> bool:
        """Claim ``a >= b + by`` (``by`` < 0 allows ``a`` to trail ``b`` by at most ``-by``)."""
        a, b, by = _number(a, "a"), _number(b, "b"), _number(by, "by")
        detail = "first ≥ second" if by == 0 else (f"first ≥ second + {by:g}" if by > 0
                                                   else f"first ≥ second − {-by:g}")
        return self._record("greater", name, a >= b + by, detail, {"a": a, "b": b, "gap": a - b})

    def order(self, name: str, values: Mapping[str, float], slack: float = 0.0) -> bool:
        """Claim that ``values`` (in the order given) are non-increasing, each allowed to exceed
        its predecessor by at most ``slack``."""
        if not isinstance(values, Mapping) or len(values) < 2:
            raise TypeError("order: expected a mapping of at least two named values")
        slack = _number(slack, "slack")
        if slack < 0:
            raise ValueError(f"order: slack must be >= 0, got {slack}")
        vals = {k: _number(v, f"values[{k!r}]") for k, v in values.items()}
        seq = list(vals.values())
        holds = all(later <= earlier + slack for earlier, later in zip(seq, seq[1:]))
        detail = " ≥ ".join(vals) + (f" (slack {slack:g})" if slack else "")
        gaps = {f"{a}-{b}": vals[a] - vals[b] for a, b in zip(list(vals), list(vals)[1:])}
        return self._record("order", name, holds, detail, {**vals, **gaps})


def agree(name: str, actual, expected, *, atol: float = 1e-6, rtol: float = 1e-5) -> float:
    """Check that two implementations agree and print what was compared.

    Asserts ``torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)`` (after
    converting NumPy arrays / numbers to tensors of a common dtype) and prints
    ``"{name}: max |difference| = 3.1e-08 (atol 1e-06, rtol 1e-05)"``. The difference's digits
    depend on the CPU, so ``tests/nbval_sanitize.cfg`` masks them; the tolerance and the
    assertion are what nbval checks. Returns the max absolute difference.
    """
    import torch

    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    a, e = torch.as_tensor(actual), torch.as_tensor(expected)
    if a.shape != e.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(a.shape)} vs {tuple(e.shape)}")
    dtype = torch.promote_types(a.dtype, e.dtype)
    a, e = a.detach().to("cpu", dtype), e.detach().to("cpu", dtype)
    torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")
    diff = (a - e).abs().max().item() if a.numel() else 0.0
    print(f"{name}: max |difference| = {diff:.1e} (atol {atol:g}, rtol {rtol:g})")
    return diff
