"""Assert what a chapter's prose claims about its training results — portably.

A seeded training run is bit-for-bit reproducible only on the machine class it was recorded
on (see :mod:`mmedu.reproduce`). On another CPU, on Apple silicon or on a GPU the digits move
(accuracies by a few hundredths). So a chapter's *printed* training results are for the
reader (their cells carry nbval's ``nbval-ignore-output`` tag), and every statement the prose
makes about them is checked here, with a band or an ordering that the **evidence** supports:
the values of the claim over many seeds and two instruction sets, measured by
``scripts/measure_claims.py`` (``make claims``) and committed in ``notebooks/claims/NN.json``.

Usage in a notebook (a compact cell, ``hide-input`` in the book)::

    claims = Claims("01_concatenation")
    claims.between("audio-only accuracy", results["audio only"], 0.93, 0.99)
    claims.greater("early fusion beats the best single modality", early, best_single, by=0.01)
    claims.close("early and late fusion on a par", early, late, tol=0.02)
    claims.order("separate experts >= early fusion >= image only",
                 {"separate": a, "early": b, "image": c}, slack=0.01)

Each call prints one line that does not depend on the measured value (so nbval can compare
it exactly), e.g. ``✓ audio-only accuracy: in [0.93, 0.99]``.

**When a claim does not hold.** Under nbval, ``make notebooks``, ``make claims``, nbgrader's
validator and CI (``MMEDU_CLAIMS_STRICT=1`` or ``CI=true``) it raises :class:`ClaimError`. In
a learner's interactive kernel it prints a notice instead — the value, the band, how many
runs the band was measured on, what it means for the text — and the chapter goes on.

**The evidence rule** (:func:`required_interval`, :func:`evidence_problems`): every claim
is a statement that a scalar quantity lies in an interval (``between``: the value;
``greater``: the gap ``a − b`` ≥ ``by``; ``close``: ``|a − b|`` ≤ ``tol``; ``order``: each
step and the whole drift ≥ ``−slack``). Over the evidence runs the quantity has mean ``m``
and standard deviation ``s``; the claimed interval must contain ``m ± 4 s`` and every
recorded value widened by ``s / 2``. So an ordering "a beats b" is a claim only if the mean
gap is at least four standard deviations of the gap, and "a beats b by ≥ x" only if ``x``
sits that far below it. A claim that noise can flip is not a claim: the prose says "on a
par", or gives mean ± spread over seeds, instead.

Measuring: with ``MMEDU_CLAIMS_LOG`` set to a file path, every call appends its kind,
parameters and values as one JSON line to that file and never raises.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["Claims", "ClaimError", "agree", "run_seed", "required_interval", "claim_intervals",
           "evidence_problems", "parse_claim_line", "stated_claims", "uses_claims", "chapter_code_hash", "K_SD", "MARGIN_SD"]

LOG_VARIABLE = "MMEDU_CLAIMS_LOG"
SEED_VARIABLE = "MMEDU_SEED"
STRICT_VARIABLE = "MMEDU_CLAIMS_STRICT"
EVIDENCE_FOLDER = "claims"  # notebooks/claims/NN_topic.json, beside the notebooks
REPORT_URL_HINT = "the course repository's issue tracker"

#: A claimed interval must contain mean ± K_SD standard deviations of the evidence ...
K_SD = 4.0
#: ... and every recorded value widened by MARGIN_SD standard deviations.
MARGIN_SD = 0.5


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


def _strict_from_environ() -> bool:
    flag = os.environ.get(STRICT_VARIABLE, "").strip().lower()
    if flag in ("1", "true", "yes"):
        return True
    if flag in ("0", "false", "no"):
        return False
    return os.environ.get("CI", "").strip().lower() == "true"


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise TypeError(f"{name}: expected a real number, got bool")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}") from None
    if math.isnan(x):
        raise ValueError(f"{name}: got NaN")
    return x


def _bound(v: Any, name: str) -> float:
    x = _number(v, name)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x} (a claim with an infinite bound says nothing)")
    return x


def _fmt(x: float) -> str:
    return f"{x:g}"


# ---------------------------------------------------------------------------------------
# What a claim states, as intervals on scalar quantities (used by the rule and the parser)
# ---------------------------------------------------------------------------------------

def claim_intervals(kind: str, params: Mapping[str, Any],
                    values: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float, list[float]]]:
    """The scalar quantities a claim is about, each with its claimed interval and its samples.

    Args:
        kind: ``"between"``, ``"greater"``, ``"close"`` or ``"order"``.
        params: the claim's parameters (``low``/``high``; ``by``; ``tol``; ``slack`` and
            ``keys``, the order's names in order).
        values: the recorded values per run, e.g. ``{"value": [...]}``, ``{"a": [...],
            "b": [...]}``, or one list per name of an order.

    Returns:
        ``{quantity: (low, high, samples)}`` with ``±inf`` for a one-sided claim.
    """
    inf = math.inf
    if kind == "between":
        return {"value": (float(params["low"]), float(params["high"]), list(values["value"]))}
    if kind in ("greater", "close"):
        gaps = [a - b for a, b in zip(values["a"], values["b"])]
        if kind == "greater":
            return {"a − b": (float(params["by"]), inf, gaps)}
        tol = float(params["tol"])
        return {"a − b": (-tol, tol, gaps)}
    if kind == "order":
        keys = list(params["keys"])
        slack = float(params["slack"])
        out = {}
        for first, second in zip(keys, keys[1:]):
            out[f"{first} − {second}"] = (-slack, inf, [x - y for x, y in zip(values[first], values[second])])
        if len(keys) > 2:
            out[f"{keys[0]} − {keys[-1]} (whole drift)"] = (
                -slack, inf, [x - y for x, y in zip(values[keys[0]], values[keys[-1]])])
        return out
    raise ValueError(f"kind: expected 'between', 'greater', 'close' or 'order', got {kind!r}")


def required_interval(samples: Sequence[float], k_sd: float = K_SD,
                      margin_sd: float = MARGIN_SD) -> tuple[float, float]:
    """The smallest interval a claim about ``samples`` may state (the evidence rule).

    ``[min(m − k s, min − margin s), max(m + k s, max + margin s)]`` with ``m``, ``s`` the
    mean and sample standard deviation (``ddof = 1``) of the evidence. Needs ≥ 2 samples.
    """
    xs = [float(x) for x in samples]
    if len(xs) < 2:
        raise ValueError(f"required_interval: expected at least 2 samples, got {len(xs)}")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError("required_interval: the evidence holds a non-finite value")
    n = len(xs)
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return (min(mean - k_sd * sd, min(xs) - margin_sd * sd),
            max(mean + k_sd * sd, max(xs) + margin_sd * sd))


def evidence_problems(kind: str, params: Mapping[str, Any], values: Mapping[str, Sequence[float]],
                      k_sd: float = K_SD, margin_sd: float = MARGIN_SD) -> list[str]:
    """Why a claim is not supported by its evidence (an empty list: it is).

    For each quantity of :func:`claim_intervals`, the claimed interval must contain
    :func:`required_interval` of its samples.
    """
    problems = []
    for quantity, (low, high, samples) in claim_intervals(kind, params, values).items():
        need_low, need_high = required_interval(samples, k_sd, margin_sd)
        if low > need_low or high < need_high:
            problems.append(
                f"{quantity}: claims [{_fmt(low)}, {_fmt(high)}] but the evidence "
                f"({len(samples)} runs, {min(samples):.4g} … {max(samples):.4g}) needs "
                f"[{need_low:.4g}, {need_high:.4g}]")
    return problems


_LINE_PATTERNS = [
    ("between", re.compile(r"^✓ (?P<name>.+): in \[(?P<low>\S+), (?P<high>\S+)\]$")),
    ("close", re.compile(r"^✓ (?P<name>.+): \|first − second\| ≤ (?P<tol>\S+)$")),
    ("greater", re.compile(r"^✓ (?P<name>.+): first ≥ second(?: (?P<sign>[+−]) (?P<by>\S+))?$")),
    ("order", re.compile(r"^✓ (?P<name>.+): (?P<keys>.+ ≥ .+?)(?: \(slack (?P<slack>\S+)\))?$")),
]


def parse_claim_line(line: str) -> tuple[str, str, dict] | None:
    """Parse a printed ``✓`` line back into ``(name, kind, params)``; ``None`` if it is not one.

    The inverse of what the :class:`Claims` methods print (their bounds printed with
    ``:g``, six significant digits). ``tests/test_claims_evidence.py`` reads a notebook's
    claims from its stored outputs this way.
    """
    line = line.rstrip("\n")
    for kind, pattern in _LINE_PATTERNS:
        m = pattern.match(line)
        if not m:
            continue
        if kind == "between":
            return m["name"], kind, {"low": float(m["low"]), "high": float(m["high"])}
        if kind == "close":
            return m["name"], kind, {"tol": float(m["tol"])}
        if kind == "greater":
            by = 0.0 if m["by"] is None else float(m["by"]) * (1 if m["sign"] == "+" else -1)
            return m["name"], kind, {"by": by}
        return m["name"], kind, {"keys": m["keys"].split(" ≥ "),
                                 "slack": 0.0 if m["slack"] is None else float(m["slack"])}
    return None


def uses_claims(notebook: Mapping[str, Any]) -> bool:
    """Whether a notebook (its JSON, a dict) creates a :class:`Claims` in its code."""
    return any(c["cell_type"] == "code" and "Claims(" in "".join(c["source"]) for c in notebook["cells"])


def stated_claims(notebook: Mapping[str, Any]) -> dict[str, tuple[str, dict]]:
    """``{name: (kind, params)}`` of every ``✓`` line in a notebook's stored outputs.

    ``notebook`` is the notebook's JSON (a dict). nbval proves the stored outputs are what the
    code prints, so these are the claims the committed chapter states. Raises ``ValueError``
    for a ``✓`` line that is not a claim, or a claim printed twice.
    """
    found: dict[str, tuple[str, dict]] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                if not line.startswith("✓ "):
                    continue
                parsed = parse_claim_line(line)
                if parsed is None:
                    raise ValueError(f"a ✓ line that is not a claim: {line!r}")
                name, kind, params = parsed
                if name in found:
                    raise ValueError(f"claim {name!r} printed twice")
                found[name] = (kind, params)
    return found


# ---------------------------------------------------------------------------------------
# The claims of one chapter
# ---------------------------------------------------------------------------------------

class Claims:
    """One chapter's claims about its training results.

    Args:
        chapter: the notebook's stem (e.g. ``"05_attention"``): names the evidence file.
        log: path of the JSON-lines log; default ``$MMEDU_CLAIMS_LOG`` (unset: no log).
        strict: raise :class:`ClaimError` when a claim fails (default: ``$MMEDU_CLAIMS_STRICT``,
            else true when ``CI=true``); otherwise print a notice and go on.

    A claim name identifies one claim: a second claim under the same name is refused
    (re-running a cell in an interactive kernel may repeat a claim with the same parameters).
    """

    def __init__(self, chapter: str, log: str | None = None, strict: bool | None = None) -> None:
        if not isinstance(chapter, str) or not chapter:
            raise TypeError(f"chapter: expected a non-empty str, got {chapter!r}")
        if strict is not None and not isinstance(strict, bool):
            raise TypeError(f"strict: expected a bool or None, got {type(strict).__name__}")
        self.chapter = chapter
        self.log = log if log is not None else (os.environ.get(LOG_VARIABLE) or None)
        self.strict = _strict_from_environ() if strict is None else strict
        self.checked: list[str] = []
        self._specs: dict[str, tuple[str, dict]] = {}

    # -- recording -------------------------------------------------------------------
    def _record(self, kind: str, name: str, params: dict, holds: bool, detail: str,
                values: dict) -> bool:
        if name in self._specs:
            if self._specs[name] != (kind, params) or self.log or self.strict:
                raise ValueError(f"claim {name!r} is already stated in {self.chapter}: "
                                 "give every claim its own name")
        self._specs[name] = (kind, params)
        if self.log:
            entry = {"chapter": self.chapter, "claim": name, "kind": kind, "params": params,
                     "holds": holds, "values": values, "seed": os.environ.get(SEED_VARIABLE, ""),
                     "isa": os.environ.get("ATEN_CPU_CAPABILITY", "")}
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        elif not holds:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            if self.strict:
                raise ClaimError(f"{self.chapter}: claim {name!r} does not hold: {detail} (values: {shown})")
            print(self._notice(name, detail, shown))
            if name not in self.checked:
                self.checked.append(name)
            return False
        if name not in self.checked:
            self.checked.append(name)
        print(f"✓ {name}: {detail}" if holds else f"✗ {name}: {detail} (logged, not raised)")
        return holds

    def _evidence_runs(self) -> str:
        for folder in (Path.cwd() / EVIDENCE_FOLDER, Path.cwd() / "notebooks" / EVIDENCE_FOLDER):
            path = folder / f"{self.chapter}.json"
            try:
                runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            foreign = sum(1 for r in runs if r.get("isa") == "foreign")
            return (f"{len(runs)} runs ({len(runs) - foreign} seeds under the recording pins, "
                    f"{foreign} under a foreign instruction set; notebooks/{EVIDENCE_FOLDER}/{self.chapter}.json)")
        return f"many seeds and two instruction sets (notebooks/{EVIDENCE_FOLDER}/{self.chapter}.json in the repository)"

    def _notice(self, name: str, detail: str, shown: str) -> str:
        return (f"⚠ Not confirmed on this run: {name!r}\n"
                f"    your run: {shown}; the text claims: {detail}.\n"
                f"    That band was measured over {self._evidence_runs()}.\n"
                "    So the sentence of the text that rests on this claim does not describe your run;\n"
                "    the rest of the chapter is unaffected and goes on. A run outside the band is rare:\n"
                f"    please report it on {REPORT_URL_HINT}, with the values above and the line printed by\n"
                "    `python -m mmedu.reproduce --report`.")

    # -- the four kinds of claim ------------------------------------------------------
    def between(self, name: str, value: float, low: float, high: float) -> bool:
        """Claim ``low <= value <= high`` (finite bounds)."""
        _check_name(name)
        value, low, high = _number(value, "value"), _bound(low, "low"), _bound(high, "high")
        if low > high:
            raise ValueError(f"between: low={low} is greater than high={high}")
        return self._record("between", name, {"low": low, "high": high}, low <= value <= high,
                            f"in [{_fmt(low)}, {_fmt(high)}]", {"value": value})

    def greater(self, name: str, a: float, b: float, by: float = 0.0) -> bool:
        """Claim ``a >= b + by``.

        ``by`` < 0 allows ``a`` to trail ``b`` by at most ``-by``; a claim whose name says
        "beats" needs ``by >= 0``.
        """
        _check_name(name)
        a, b, by = _number(a, "a"), _number(b, "b"), _bound(by, "by")
        if by < 0 and re.search(r"\bbeats?\b", name):
            raise ValueError(f"greater: {name!r} says 'beats' but by={by} < 0 lets the first trail")
        detail = "first ≥ second" if by == 0 else (f"first ≥ second + {_fmt(by)}" if by > 0
                                                   else f"first ≥ second − {_fmt(-by)}")
        return self._record("greater", name, {"by": by}, a >= b + by, detail, {"a": a, "b": b})

    def close(self, name: str, a: float, b: float, tol: float) -> bool:
        """Claim ``|a − b| <= tol``: two-sided ("on a par", "levelled off", "close to")."""
        _check_name(name)
        a, b, tol = _number(a, "a"), _number(b, "b"), _bound(tol, "tol")
        if tol < 0:
            raise ValueError(f"close: tol must be >= 0, got {tol}")
        return self._record("close", name, {"tol": tol}, abs(a - b) <= tol,
                            f"|first − second| ≤ {_fmt(tol)}", {"a": a, "b": b})

    def order(self, name: str, values: Mapping[str, float], slack: float = 0.0) -> bool:
        """Claim that ``values`` (in the order given) are non-increasing.

        Each step may go up by at most ``slack``, and so may the whole sequence (first to
        last): ``0.80 ≤ 0.81 ≤ 0.82 ≤ 0.83`` with slack 0.01 is not "non-increasing".
        """
        _check_name(name)
        if not isinstance(values, Mapping) or len(values) < 2:
            raise TypeError("order: expected a mapping of at least two named values")
        slack = _bound(slack, "slack")
        if slack < 0:
            raise ValueError(f"order: slack must be >= 0, got {slack}")
        vals = {str(k): _number(v, f"values[{k!r}]") for k, v in values.items()}
        for key in vals:
            if " ≥ " in key or not key:
                raise ValueError(f"order: a name may not be empty or contain ' ≥ ', got {key!r}")
        seq = list(vals.values())
        holds = (all(later <= earlier + slack for earlier, later in zip(seq, seq[1:]))
                 and seq[-1] <= seq[0] + slack)
        detail = " ≥ ".join(vals) + (f" (slack {_fmt(slack)})" if slack else "")
        return self._record("order", name, {"keys": list(vals), "slack": slack}, holds, detail, vals)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    if "\n" in name:
        raise ValueError(f"name: expected one line, got {name!r}")


# ---------------------------------------------------------------------------------------
# Which code the evidence was measured on
# ---------------------------------------------------------------------------------------

# Modules whose code cannot change a training result (printing, checks, pins' wrapper).
_NOT_TRAINING = {"claims", "display", "exercises", "plot", "reproduce"}
# Cells that cannot change a training result: the set-up cell (installs mmedu where it is
# missing) and a cell that only reports the machine's settings.
UNHASHED_TAGS = {"mmedu-setup", "mmedu-environment"}


_VALUE_ARGS = {"between": ("value",), "greater": ("a", "b"), "close": ("a", "b"), "order": ("values",)}


class _DropClaims(ast.NodeTransformer):
    """Reduce ``claims.<kind>(...)`` statements to the expressions of their measured values
    (a claim's name, kind and band do not decide what it measures), and drop docstrings."""

    @staticmethod
    def _claim_call(node: ast.AST) -> ast.Call | None:
        value = getattr(node, "value", None)
        if (isinstance(node, (ast.Expr, ast.Assign)) and isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute) and isinstance(value.func.value, ast.Name)
                and value.func.value.id == "claims"):
            return value
        return None

    def _body(self, body: list) -> list:
        out = []
        for stmt in body:
            call = self._claim_call(stmt)
            if call is not None:
                names = _VALUE_ARGS.get(call.func.attr, ())
                measured = list(call.args[1:1 + len(names)])
                measured += [k.value for k in call.keywords if k.arg in names]
                out.append(ast.Expr(ast.Tuple(measured, ast.Load())))
                continue
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)):
                continue  # a docstring or a bare string: no effect on training
            out.append(self.visit(stmt))
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in ("body", "orelse", "finalbody"):
            if isinstance(getattr(node, field, None), list):
                setattr(node, field, self._body(getattr(node, field)))
        return super().generic_visit(node)


def _normalised(source: str) -> str:
    # Statement by statement, so that splitting or merging cells does not count either.
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    body = _DropClaims()._body(ast.parse("\n".join(lines)).body)
    return "".join(ast.dump(stmt, annotate_fields=False, include_attributes=False) + "\n" for stmt in body)


def _mmedu_imports(tree: ast.AST, package_dir: Path) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mmedu."):
                    found.add(alias.name.split(".")[1])
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module == "mmedu" or module.startswith("mmedu."):
                parts = module.split(".") if node.level == 0 else ["mmedu"] + ([module] if module else [])
                if len(parts) > 1:
                    found.add(parts[1])
                else:  # from mmedu import tensor / from . import x
                    found.update(a.name for a in node.names if (package_dir / f"{a.name}.py").exists())
    return found


def chapter_code_hash(notebook: str | os.PathLike, package_dir: str | os.PathLike | None = None) -> str:
    """A fingerprint of the code that decides a chapter's claim values.

    SHA-256 over the notebook's code cells and over every ``mmedu`` module they import
    (transitively), each parsed and normalised: formatting, comments, docstrings, how the code
    is split into cells, the names,
    kinds and bands of ``claims.*(...)`` calls (only the expressions of the values they
    measure count) and the cells tagged ``mmedu-setup`` or
    ``mmedu-environment`` (installing the package, reporting the machine) do not count; everything else does. ``scripts/measure_claims.py`` stores it with the evidence,
    and ``tests/test_claims_evidence.py`` refuses evidence measured on other code.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    package = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    modules: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or UNHASHED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        source = "".join(cell["source"])
        digest.update(_normalised(source).encode())
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        modules |= _mmedu_imports(ast.parse("\n".join(lines)), package)
    seen: set[str] = set()
    todo = sorted(modules)
    while todo:
        name = todo.pop()
        if name in seen or name in _NOT_TRAINING:
            continue
        seen.add(name)
        path = package / f"{name}.py"
        if not path.exists():
            continue
        source = path.read_text(encoding="utf-8")
        todo.extend(sorted(_mmedu_imports(ast.parse(source), package) - seen))
    for name in sorted(seen):
        path = package / f"{name}.py"
        if path.exists():
            digest.update(f"\n# module {name}\n".encode())
            digest.update(_normalised(path.read_text(encoding="utf-8")).encode())
    return digest.hexdigest()


def agree(name: str, actual: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5) -> float:
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
