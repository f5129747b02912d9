"""Check that the numbers a chapter's prose reports are the numbers its run printed.

Usage::

    python scripts/check_prose_numbers.py [NOTEBOOK ...]      # default: notebooks/*.ipynb
    python scripts/check_prose_numbers.py -v notebooks/07_retrieval.ipynb   # also list the tied ones
    python scripts/check_prose_numbers.py --no-allowlist       # ignore the test's allowlist

For every markdown cell it finds the numbers a reader would take as results, tries to tie each
one to the notebook's run, and prints every number it cannot tie, with the markdown cell's index
and the sentence around it. Exit status 1 if there is one. ``tests/test_prose_numbers.py`` runs the
same check per notebook; its ``ALLOWLIST`` (read here with :mod:`ast`, never imported) lists the
few numbers that are legitimately not in the run, each with its reason.

Which numbers are in scope
--------------------------
A number is in scope when it has a decimal point (``0.956``, ``.95``, ``−0.45``, ``4.2×``,
``1.386``), a percent sign (``96.5 %``, ``16 %``, ``\\%`` in math, the first end of a range such as
``7–15 %``) or an exponent (``1e-3``). Each end of a range (``0.93–0.96``) and each side of a
``mean ± sd`` is its own number. Plain integers are out of scope: counts, epochs, sizes, seeds,
digits, equation and list numbers. Also out of scope, because they are not results:

* section, chapter, exercise, table, figure and equation numbers (``section 6.2``, ``§4.3–4.6``,
  ``Exercise 2.3``, the ``6.2`` of a heading ``### 6.2 …``) and version strings (``1.0.4``);
* code spans and code blocks, MyST targets ``(label)=``, roles and their targets
  (``{cite}`…```, ``{doc}`…```, ``{ref}`…```, MyST-NB ``{glue}`…``` — a glued number comes from the
  run by construction), directive headers and option lines (``:label: ex-7-1``), link and image
  URLs, raw HTML tags and comments.

Numbers in math (``$…$``, ``$$…$$``, ``{math}`` roles and blocks) *are* in scope: ``$\\tau = 0.07$``
is a setting the text repeats, and must be one.

How a number is tied (the first rule that applies wins)
-------------------------------------------------------
A prose number keeps the precision it was written with: its quantum is ``0.01`` for ``0.94``,
``0.1`` for ``96.5 %``, ``0.001`` for ``1e-3``. It is tied when

1. **cited**: its sentence, or the list item / table row it is in, carries a citation role
   (``{cite}``, ``{cite:p}``, ``{cite:t}``, …) — a number quoted from a paper, exempt. (A citation
   elsewhere in the same paragraph does not exempt it.)
2. **output**: a value printed by a code cell *above* the markdown cell — or by the code cells
   that directly follow it, up to the next markdown cell ("(92 % of the variance)" introducing the
   cell that prints it) — rounded to the quantum, equals it. Printed values are read from stream
   text, ``text/plain``, ``text/markdown``, ``text/latex`` and ``text/html`` (tags removed) of code
   cells; lines of ``mmedu.claims`` checks ("✓ …: in [0.9, 0.975]") are skipped, since they print
   a band, not a measurement (the band is a code literal, rule 3). A printed value exactly
   half-way (``0.925``) ties both neighbours (``0.92``, ``0.93``): it is itself rounded. Rounding is
   the rule for every form — "0.94", "about 0.94", "≈ 0.94" all need a printed value in
   [0.935, 0.945]. Percents: a prose percent ties a printed percent (``16%``) or a printed
   fraction × 100 (``96.5 %`` ← ``0.9652``), never a bare printed integer (an epoch count is not a
   percent); a plain prose number also ties a printed percent / 100 (``0.1`` ← ``10%``). Signs: a
   prose number written with a minus (``−0.45``, Unicode minus or hyphen) must match the sign; an
   unsigned one matches either sign ("falls by 0.45"). CONTRIBUTING's rule is "a number in the text
   is printed by a cell above it": values printed further below do not count (the report says so
   when that is the only match).
3. **code**: it equals, exactly, a numeric literal of one of the notebook's code cells (comments
   excluded; numbers inside string literals included, as in ``for name in ["1.0", "0.2"]``) — a
   setting the text repeats: τ = 0.05, ``lr=1e-3``, the band of a ``claims`` check. A prose
   percent matches a literal × 100 (``10 %`` ← ``0.1``). Signs are ignored here.
4. **computed**: it stands alone on one side of an ``=`` / ``\\approx`` in its math span and
   another side is plain arithmetic — numbers, ``+ - \\cdot \\times / ^``, ``\\frac``, ``\\sqrt``,
   ``\\log`` (natural), ``\\log_{10}``, ``\\exp``, ``\\sigma`` (logistic), ``\\pi`` — which is
   evaluated and must round to it: ``$10/2000 = 0.005$``, ``$\\log 4 \\approx 1.386$``,
   ``$\\sigma(2) \\approx 0.881$``. This is the rule for the constants of a formula; a side with a
   symbol (``$\\log \\varepsilon \\approx -13.8$``) cannot be evaluated and goes to the allowlist.
   Operands are not results: they must be tied by another rule. An identity that evaluates to
   something else is reported, with the value it evaluates to.
5. **other chapter**: the sentence, or the sentence before it in the same paragraph, names
   another chapter ("chapter 3's CCA", "chapters 3 and 4") or links its notebook
   (``{doc}`03_subspace```), and the number ties by rule 2 (any cell) or rule 3 to that notebook;
   or it links a book page (``{doc}`../book/search_at_scale```) and the number ties by rounding to
   a file the page ``{include}``s (a table written by a benchmark command).
6. **allowlisted**: an entry ``(number as written, fragment of its sentence, reason)`` of the
   allowlist for this notebook (the test's ``ALLOWLIST``).
7. **repeat** (after all numbers of the notebook are tied): it repeats, or rounds, a number tied
   in the same markdown cell ("$2146.06 / 41 = 52.343$ … rounding the mel value to 52.3"), or a
   number tied by rule 4 anywhere in the notebook (the quantisation step 0.094 computed once and
   quoted again in the pitfalls).

Anything else is reported. The fix is to print the number (or glue it, ``{glue:text}``), to write
the number the run prints, to cite its source, or — for a true constant — to allowlist it with a
reason.

Known limits. A number is checked to the precision it is written with, against every value
printed above it: "about 0.2" ties to anything printed in [0.15, 0.25), and a notebook that prints
a large table covers many two-decimal values (chapter 7's printout above its reading of the table
ties about 60 of the 100 values 0.00–0.99), so a stale two-decimal number can still escape by
coincidence when another printed value happens to round to it. For a headline number, print it
on its own line next to the text or glue it. Integers (epochs, median ranks, counts) are out of
scope, and numbers spelled as words ("two thirds") are not read.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import math
import re
import sys
import tokenize
import warnings
from dataclasses import dataclass, field
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

__all__ = [
    "ProseNumber", "Printed", "Run", "NotebookReport", "prose_numbers", "numbers_in_text", "printed_numbers",
    "run_of", "rounds_to", "tie", "check_notebook", "load_allowlist", "main",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_ALLOWLIST = ROOT / "tests" / "test_prose_numbers.py"

MINUS = "-\u2212"                      # hyphen-minus, Unicode minus
SPACES = " \u00a0\u2009\u202f"         # space, no-break space, thin space, narrow no-break space
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`")

# A number token. The left context must not be a word character, a dot or a digit group (so the
# "2" of "R@2", the "3" of "x3", the "4" of "1.0.4" are not numbers), the right context must not
# continue it into a version string ("1.0.4").
NUMBER = re.compile(
    r"(?<![\w.@^_\\])"
    r"(?P<sign>[" + MINUS + r"](?=\.?\d))?"
    r"(?P<mant>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\.\d+|\d+)"
    r"(?P<exp>[eE][-+\u2212]?\d+)?"
    r"(?![.,]\d)(?!\d)"
)
PERCENT_AFTER = re.compile(r"\$?[" + SPACES + r"]*(?:\\?%|[" + SPACES + r"]?per[" + SPACES + r"]?cent\b)")
RANGE_TO_PERCENT = re.compile(r"[" + SPACES + r"]*(?:[–—-]|to|and)[" + SPACES + r"]*")
# words after which a number is a reference, not a result ("section 6.2", "§4.3–4.6", "Exercise 2.3")
REFERENCE = re.compile(
    r"(?:(?<![\w])(?:sections?|chapters?|exercises?|tables?|figures?|figs?\.|eqs?\.|equations?|"
    r"appendix|appendices|versions?|python|v)[" + SPACES + r"]*|§[" + SPACES + r"]*)"
    r"(?P<nums>\d+(?:\.\d+)*(?:[" + SPACES + r"]*(?:,|and|or|to|–|—|-)[" + SPACES + r"]*§?\d+(?:\.\d+)*)*)",
    re.IGNORECASE,
)
CHAPTER_REF = re.compile(r"\bchapters?[" + SPACES + r"]+(\d+(?:[" + SPACES + r"]*(?:,|and|or|–)[" + SPACES + r"]*\d+)*)",
                         re.IGNORECASE)
DOC_REF = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
ABBREVIATIONS = ("e.g", "i.e", "cf", "vs", "fig", "figs", "eq", "eqs", "approx", "al", "resp", "no", "etc", "Dr", "ca")


# ---------------------------------------------------------------------------------------------
# prose: markdown cells -> numbers in scope, with their sentence
# ---------------------------------------------------------------------------------------------

@dataclass
class ProseNumber:
    """One number of a markdown cell that is in scope."""

    cell: int                 # index of the markdown cell in the notebook
    text: str                 # as written, e.g. "−0.45", "96.5 %", "1e-3"
    value: Decimal            # the number itself (a percent is kept in percent: 96.5)
    percent: bool
    signed: bool              # written with a minus sign
    in_math: bool
    sentence: str             # the sentence around it, whitespace collapsed
    context: str              # the sentence before it (same unit) and its own: where chapter
                              # and page references are looked for
    unit: str                 # the list item / paragraph / table row / heading it is in
    unit_kind: str            # "item", "row", "heading" or "paragraph"
    start: int                # offset in the cell's source
    tie: str = ""             # how it was tied ("output cell 26: 0.922", "code literal", ...) or ""
    note: str = ""            # for an untied number: a hint (e.g. printed only below)


def _mask(text: str, start: int, end: int, masked: list[str], fill: str = " ") -> None:
    for i in range(start, end):
        if masked[i] != "\n":
            masked[i] = fill


def _masked_markdown(src: str) -> tuple[str, list[bool]]:
    """The cell's source with everything that is not prose blanked out (same length, same lines),
    and a flag per character: inside math."""
    masked = list(src)
    math_flags = [False] * len(src)
    lines = src.splitlines(keepends=True)
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line)

    # fenced blocks: ``` or ~~~ or ::: ; directives keep their body (prose), code blocks do not
    fence = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        o = offsets[i]
        if fence is None:
            m = re.match(r"^\s*(`{3,}|~{3,}|:{3,})\s*(\{[^}]*\})?\s*(.*)$", line.rstrip("\n"))
            if m:
                directive = (m.group(2) or "").strip("{}").strip()
                body = "math" if directive == "math" else (
                    "code" if not directive or directive in ("code", "code-block", "code-cell", "include",
                                                            "literalinclude", "raw", "eval-rst", "glue", "glue:figure")
                    else "prose")
                fence = (m.group(1), body)
                _mask(src, o, o + len(line), masked)            # the header line and its title
                continue
        else:
            if stripped.startswith(fence[0]) and set(stripped) <= set(fence[0][0]):
                _mask(src, o, o + len(line), masked)
                fence = None
                continue
            if fence[1] == "code":
                _mask(src, o, o + len(line), masked)
            elif fence[1] == "math":
                for k in range(o, o + len(line)):
                    math_flags[k] = True
            elif re.match(r"^\s*:[\w-]+:", line):               # directive option line
                _mask(src, o, o + len(line), masked)
            continue
        if re.match(r"^\s*\([\w.:-]+\)=\s*$", line):             # MyST target
            _mask(src, o, o + len(line), masked)
        h = re.match(r"^(#{1,6}[ \t]+)(\d+(?:\.\d+)*\.?)", line)  # heading numbering "### 6.2"
        if h:
            _mask(src, o + len(h.group(1)), o + h.end(2), masked)

    text = "".join(masked)
    # inline code spans (any number of backticks), roles with their target, HTML, URLs
    for m in re.finditer(r"(\{[\w:+-]+\})?(`+)(.+?)(?<!`)\2(?!`)", text, flags=re.S):
        if m.group(1) in ("{math}",):
            _mask(src, m.start(), m.start(3), masked)
            _mask(src, m.end(3), m.end(), masked)
            for k in range(m.start(3), m.end(3)):
                math_flags[k] = True
        else:                                                     # "X": a word, for the sentence splitter
            _mask(src, m.start(), m.end(), masked, fill="X")
    text = "".join(masked)
    for pattern in (r"<!--.*?-->", r"</?[A-Za-z][^<>]*>", r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)", r"https?://\S+"):
        for m in re.finditer(pattern, text, flags=re.S):
            _mask(src, m.start() + (1 if pattern.startswith(r"\]") else 0), m.end(), masked)
        text = "".join(masked)

    # math: $$...$$, $...$, \begin{...}...\end{...}
    for m in re.finditer(r"\$\$.+?\$\$|(?<![\\$])\$(?!\s)(?:\\\$|[^$])+?(?<![\s\\])\$(?!\$)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}",
                         text, flags=re.S):
        for k in range(m.start(), m.end()):
            math_flags[k] = True
    # references: "section 6.2", "§4.3–4.6", "Exercise 2.3", "chapters 3 and 4"
    for m in REFERENCE.finditer(text):
        _mask(src, m.start("nums"), m.end("nums"), masked, fill="#")
    return "".join(masked), math_flags


def _units(src: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each list item ("item"), table row ("row"), heading ("heading") and
    paragraph ("paragraph") of a markdown cell."""
    spans, start, kind, pos = [], None, "", 0
    for line in src.splitlines(keepends=True):
        body = line.strip()
        item = re.match(r"^\s*([*+-]|\d+[.)])\s", line)
        new_unit = not body or item or body.startswith(("|", "#")) or re.match(r"^\s*(`{3,}|~{3,}|:{3,})", line)
        if new_unit and start is not None:
            spans.append((start, pos, kind))
            start = None
        if body and start is None:
            start = pos
            kind = "item" if item else "row" if body.startswith("|") else "heading" if body.startswith("#") else "paragraph"
        if body.startswith(("|", "#")) and start is not None:   # one line, one unit
            spans.append((start, pos + len(line), kind))
            start = None
        pos += len(line)
    if start is not None:
        spans.append((start, pos, kind))
    return spans


def _sentences(masked: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans in masked[start:end]: a sentence ends at . ! ? followed by space and a
    capital, a digit, a quote, a bracket or markup, unless the word before is an abbreviation."""
    spans, s = [], start
    for m in re.finditer(r"[.!?][\"'”’)*_]*\s+(?=[\"'“(*_\[]*[A-Z0-9$\\{#])", masked[start:end]):
        cut = start + m.start()
        word = re.search(r"([\w.]+)$", masked[s:cut])
        if word and word.group(1).rstrip(".").lower() in {a.lower() for a in ABBREVIATIONS}:
            continue
        if word and re.fullmatch(r"[A-Z]", word.group(1)):       # an initial, "J. Smith"
            continue
        spans.append((s, start + m.end()))
        s = start + m.end()
    spans.append((s, end))
    return spans


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def numbers_in_text(text: str) -> list[tuple[re.Match, bool]]:
    """Every number token of ``text`` with its percent flag (a ``%`` right after it, or at the
    end of a range it starts: the 7 of ``7–15 %``)."""
    found = list(NUMBER.finditer(text))
    out = []
    for i, m in enumerate(found):
        percent = bool(PERCENT_AFTER.match(text, m.end()))
        if not percent and i + 1 < len(found):
            gap = RANGE_TO_PERCENT.fullmatch(text, m.end(), found[i + 1].start())
            if gap and PERCENT_AFTER.match(text, found[i + 1].end()):
                percent = True
        out.append((m, percent))
    return out


def _value(m: re.Match) -> Decimal:
    mant = m.group("mant").replace(",", "")
    exp = (m.group("exp") or "").replace("\u2212", "-")
    return Decimal(mant + exp)


def prose_numbers(src: str, cell: int = 0) -> list[ProseNumber]:
    """The numbers in scope of one markdown cell's source, each with its sentence and unit."""
    masked, math_flags = _masked_markdown(src)
    units = _units(src)
    result = []
    for m, percent in numbers_in_text(masked):
        mant = m.group("mant")
        if "." not in mant and not percent and not m.group("exp"):
            continue                                            # an integer: out of scope
        if "#" in masked[max(0, m.start() - 1):m.start()]:
            continue
        value = _value(m)
        signed = bool(m.group("sign"))
        if signed:
            value = -value
        u0, u1, kind = next(((a, b, k) for a, b, k in units if a <= m.start() < b), (0, len(src), "paragraph"))
        sentences = _sentences(masked, u0, u1)
        k = next((k for k, (a, b) in enumerate(sentences) if a <= m.start() < b), len(sentences) - 1)
        s0, s1 = sentences[k]
        c0 = sentences[k - 1][0] if k > 0 else s0
        end = m.end()
        pm = PERCENT_AFTER.match(masked, end) if percent else None
        written = src[m.start():pm.end() if pm and "%" in pm.group() else end].replace("$", "")
        result.append(ProseNumber(cell=cell, text=_collapse(written), value=value, percent=percent, signed=signed,
                                  in_math=math_flags[m.start()], sentence=_collapse(src[s0:s1]), context=_collapse(src[c0:s1]),
                                  unit=_collapse(src[u0:u1]), unit_kind=kind, start=m.start()))
    return result


# ---------------------------------------------------------------------------------------------
# the run: printed numbers and code literals of a notebook
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Printed:
    """A number printed by a code cell (or written in an included file)."""

    cell: int
    value: Decimal
    percent: bool
    text: str


@dataclass
class Run:
    """What a notebook's run holds: its printed numbers and its code literals."""

    name: str
    printed: list[Printed] = field(default_factory=list)
    literals: set[Decimal] = field(default_factory=set)


def _output_texts(cell: dict) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(_join(out.get("text", "")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime in ("text/plain", "text/markdown", "text/latex"):
                if mime in data:
                    texts.append(_join(data[mime]))
            if "text/html" in data:
                html = re.sub(r"<(script|style)\b.*?</\1>", " ", _join(data["text/html"]), flags=re.S | re.I)
                texts.append(re.sub(r"<[^>]*>", " ", html))
    return texts


def _join(text) -> str:
    return "".join(text) if isinstance(text, list) else str(text)


def printed_numbers(text: str, cell: int) -> list[Printed]:
    """The numbers of a printed text. Lines of ``mmedu.claims`` checks ("✓ …: in [0.9, 0.975]") are
    skipped: they print a claim's band, not a measured value (the band is a code literal)."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("\u2713"))
    out = []
    for m, percent in numbers_in_text(text):
        try:
            value = _value(m)
        except InvalidOperation:
            continue
        if m.group("sign"):
            value = -value
        out.append(Printed(cell, value, percent, m.group() + (" %" if percent else "")))
    return out


def _code_without_comments(src: str) -> str:
    lines = [line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))]
    code = "\n".join(lines)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type != tokenize.COMMENT]
        return " ".join(t.string for t in tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"#.*", "", code)


def run_of(nb: dict, name: str = "") -> Run:
    """The printed numbers (per cell) and the numeric literals of a notebook (``nbformat`` or
    plain JSON dict)."""
    run = Run(name)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for text in _output_texts(cell):
            run.printed.extend(printed_numbers(text, i))
        for m, _ in numbers_in_text(_code_without_comments(_join(cell["source"]))):
            try:
                run.literals.add(abs(_value(m)))
            except InvalidOperation:
                pass
    return run


# ---------------------------------------------------------------------------------------------
# tying a number
# ---------------------------------------------------------------------------------------------

def rounds_to(value: Decimal, target: Decimal, signed: bool = True) -> bool:
    """Does ``value``, rounded to ``target``'s quantum, equal ``target``? A value exactly half-way
    rounds both ways. ``signed=False`` compares magnitudes."""
    if not signed:
        value, target = abs(value), abs(target)
    q = Decimal(1).scaleb(target.as_tuple().exponent)
    try:
        return target in (value.quantize(q, ROUND_HALF_UP), value.quantize(q, ROUND_HALF_DOWN))
    except InvalidOperation:
        return False


def _matches_printed(n: ProseNumber, p: Printed) -> bool:
    if n.percent:
        candidates = [p.value] if p.percent else [p.value * 100]
    else:
        candidates = [p.value / 100] if p.percent else [p.value]
    target = n.value
    return any(rounds_to(c, target, signed=n.signed) for c in candidates)


def _matches_literal(n: ProseNumber, literals: set[Decimal]) -> bool:
    v = abs(n.value)
    if n.percent:
        return any(lit * 100 == v for lit in literals)
    return v in literals


_ARITH_TOKEN = re.compile(r"\s+|\\sqrt|\\log_\{?10\}?|\\log|\\ln|\\exp|\\sigma|\\pi|\\cdot|\\times|"
                          r"\\left|\\right|\\[bB]igg?[lr]?|\\[,;!: ]|\d+(?:\.\d+)?|[-+*/^(){}\[\]]|\u2212")
_FUNCTIONS = {"\\sqrt": "_sqrt", "\\log": "_ln", "\\ln": "_ln", "\\exp": "_exp", "\\sigma": "_sigmoid"}


def _evaluate(expr: str) -> float | None:
    """Evaluate a LaTeX expression of numbers, ``+ - \\cdot \\times / ^``, ``\\frac``, ``\\sqrt``,
    ``\\log`` (natural), ``\\log_{10}``, ``\\ln``, ``\\exp``, ``\\sigma`` (logistic) and ``\\pi``; None if
    it holds anything else (a symbol) or does not evaluate."""
    expr = expr.strip().strip(",.;")
    for _ in range(5):                                           # \frac{a}{b} -> ((a)/(b)), innermost first
        expr = re.sub(r"\\[td]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"((\1)/(\2))", expr)
    expr = re.sub(r"\\[td]?frac\s*(\d)(\d)", r"(\1/\2)", expr)      # \tfrac12
    tokens, pos = [], 0
    while pos < len(expr):
        m = _ARITH_TOKEN.match(expr, pos)
        if not m:
            return None
        t, pos = m.group(), m.end()
        if t.isspace() or t in ("\\left", "\\right") or re.fullmatch(r"\\[,;!: ]|\\[bB]igg?[lr]?", t):
            continue
        if t.startswith("\\log_"):
            t = "_log10"
        t = {"\\cdot": "*", "\\times": "*", "^": "**", "{": "(", "[": "(", "}": ")", "]": ")", "\u2212": "-",
             "\\pi": "_pi"}.get(t, _FUNCTIONS.get(t, t))
        tokens.append(t)
    if not any(re.fullmatch(r"\d+(?:\.\d+)?", t) for t in tokens):
        return None
    out = []
    for t in tokens:                                             # implicit products: "2595 \log", "700 (…)"
        if out and (re.fullmatch(r"[\d.]+|\)|_pi", out[-1]) and (re.fullmatch(r"[\d.]+|\(|_pi", t) or t.startswith("_"))):
            out.append("*")
        out.append(t)
    code = " ".join(out)
    code = re.sub(r"(_sqrt|_ln|_exp|_sigmoid|_log10)\s+(\d+(?:\.\d+)?)", r"\1(\2)", code)   # "\log 4"
    env = {"_sqrt": math.sqrt, "_ln": math.log, "_exp": math.exp, "_log10": math.log10, "_pi": math.pi,
           "_sigmoid": lambda x: 1 / (1 + math.exp(-x)), "__builtins__": {}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = eval(compile(code, "<arith>", "eval"), env)  # noqa: S307 -- whitelisted tokens only
        return float(value)
    except Exception:
        return None


_MATH_SPAN = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?!\s)(?:\\\$|[^$])+?(?<![\s\\])\$(?!\$)", flags=re.S)
_RELATION = re.compile(r"=|\\approx(?![a-z])|\\simeq(?![a-z])|≈")


def _computed(n: ProseNumber, cell_src: str) -> tuple[bool, str] | None:
    """If ``n`` stands alone on one side of an ``=``/``\\approx`` in its math span and another side
    is an arithmetic expression: (whether that expression rounds to ``n``, the expression).
    Otherwise None (not an identity, or one with symbols)."""
    if not n.in_math:
        return None
    span = next((m for m in _MATH_SPAN.finditer(cell_src) if m.start() <= n.start < m.end()), None)
    if span is None:
        return None
    body, offset = span.group(), span.start()
    cuts = [0] + [x for m in _RELATION.finditer(body) for x in (m.start(), m.end())] + [len(body)]
    parts = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
    if len(parts) < 2:
        return None
    here = next(k for k, (a, b) in enumerate(parts) if a <= n.start - offset < b)
    own = re.sub(r"[\s$]|\\[,;!: ]|\\%|%", "", body[parts[here][0]:parts[here][1]]).replace("\u2212", "-")
    if own.lstrip("-") != re.sub(r"[\s%]", "", n.text).replace("\u2212", "-").lstrip("-"):
        return None                                  # an operand, not a result
    evaluated = []
    for k, (a, b) in enumerate(parts):
        if k == here:
            continue
        expr = body[a:b].strip("$ ")
        value = _evaluate(expr)
        if value is None:
            continue
        evaluated.append(f"{expr} = {value:.6g}")
        for v in (value, value * 100) if n.percent else (value,):
            try:
                if rounds_to(Decimal(repr(v)), n.value, signed=n.signed):
                    return True, expr
            except InvalidOperation:
                pass
    return (False, "; ".join(evaluated)) if evaluated else None


def _other_chapters(n: ProseNumber, this: str, notebooks_dir: Path) -> list[Path]:
    paths = []
    for m in CHAPTER_REF.finditer(n.context):
        for num in re.findall(r"\d+", m.group(1)):
            paths += sorted(notebooks_dir.glob(f"{int(num):02d}_*.ipynb"))
    for m in DOC_REF.finditer(n.context):
        target = m.group(1).strip()
        base = notebooks_dir.parent if target.startswith("/") else notebooks_dir
        target = target.lstrip("/")
        stem = Path(target).name
        hits = sorted(notebooks_dir.glob(f"{stem}.ipynb"))
        if not hits:
            page = (base / target).with_suffix(".md")
            if page.exists():
                hits = [page]
        paths += hits
    return [p for p in dict.fromkeys(paths) if p.stem != this]


def _included_numbers(page: Path) -> list[Printed]:
    out = []
    for m in re.finditer(r"^```\{include\}\s*(\S+)", page.read_text(encoding="utf-8"), flags=re.M):
        inc = (page.parent / m.group(1)).resolve()
        if inc.exists():
            out += printed_numbers(inc.read_text(encoding="utf-8"), -1)
    return out


@dataclass
class NotebookReport:
    """The numbers in scope of one notebook and how each was tied."""

    path: Path
    numbers: list[ProseNumber]
    unused_allowlist: list[tuple] = field(default_factory=list)

    @property
    def untied(self) -> list[ProseNumber]:
        return [n for n in self.numbers if not n.tie]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.numbers:
            key = n.tie.split(":")[0] if n.tie else "UNTIED"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def format_untied(self) -> str:
        lines = []
        for n in self.untied:
            note = f"  [{n.note}]" if n.note else ""
            lines.append(f"  cell {n.cell}: {n.text!r}{note}\n      {snippet(n)}")
        return "\n".join(lines)


def snippet(n: ProseNumber, width: int = 280) -> str:
    """The sentence around ``n``, cut to about ``width`` characters around the number."""
    s = n.sentence
    if len(s) <= width:
        return s
    at = s.find(n.text)
    at = at if at >= 0 else max(s.find(str(abs(n.value))), 0)
    a = min(max(0, at - width // 3), len(s) - width)
    return ("" if a == 0 else "…") + s[a:a + width] + ("" if a + width >= len(s) else "…")


_RUN_CACHE: dict[Path, Run] = {}


def _run_cached(path: Path) -> Run:
    path = path.resolve()
    if path not in _RUN_CACHE:
        _RUN_CACHE[path] = run_of(json.loads(path.read_text(encoding="utf-8")), path.stem)
    return _RUN_CACHE[path]


def _normal(text: str) -> str:
    return re.sub(r"[\s\u00a0\u2009\u202f$]", "", text).replace("\u2212", "-").replace("\\%", "%")


def tie(n: ProseNumber, run: Run, cell_src: str = "", others: list[tuple[Path, Run | list[Printed]]] = (),
        allow: list[tuple] = (), after: frozenset[int] | set[int] = frozenset()) -> str:
    """How ``n`` is tied to the run (see the module docstring), or "" when it is not. ``after``:
    the code cells that directly follow ``n``'s markdown cell (their printout counts as above)."""
    if CITE_ROLE.search(n.sentence) or (n.unit_kind in ("item", "row") and CITE_ROLE.search(n.unit)):
        return "cited"
    seen = [p for p in run.printed if (p.cell < n.cell or p.cell in after) and _matches_printed(n, p)]
    if seen:
        p = min(seen, key=lambda p: abs(p.cell - n.cell))
        return f"output: cell {p.cell} prints {p.text}"
    if _matches_literal(n, run.literals):
        return "code: a literal of the notebook's code"
    computed = _computed(n, cell_src)
    if computed and computed[0]:
        return f"computed: {computed[1]}"
    if computed:
        n.note = f"the math evaluates to something else: {computed[1]}"
    for path, other in others:                       # the sentence points to another chapter or page
        if isinstance(other, Run):
            hit = [p for p in other.printed if _matches_printed(n, p)]
            if hit:
                return f"other chapter: {path.stem} cell {hit[0].cell} prints {hit[0].text}"
            if _matches_literal(n, other.literals):
                return f"other chapter: a code literal of {path.stem}"
        else:
            hit = [p for p in other if _matches_printed(n, p)]
            if hit:
                return f"other page: {path.name} includes a table with {hit[0].text}"
    for entry in allow:
        number, fragment, reason = entry[0], entry[1], entry[2]
        if _normal(number) == _normal(n.text) and _collapse(fragment) in n.sentence:
            return f"allowlisted: {reason}"
    below = [p for p in run.printed if p.cell > n.cell and _matches_printed(n, p)]
    if below and not n.note:
        n.note = f"printed only further below, in cell {below[0].cell} ({below[0].text})"
    return ""


def _repeat(n: ProseNumber, tied: list[ProseNumber]) -> str:
    """Tie an untied number that repeats (or rounds) a number tied in the same markdown cell, or a
    number computed anywhere in the notebook: "52.343 mel … rounding the mel value to 52.3"."""
    for m in tied:
        if m is n or not m.tie or m.tie.startswith(("allowlisted", "repeat")) or m.percent != n.percent:
            continue
        if (m.cell == n.cell or m.tie.startswith("computed")) and rounds_to(m.value, n.value, signed=n.signed):
            return f"repeat: of {m.text} in cell {m.cell} ({m.tie.split(':')[0]})"
    return ""


def check_notebook(path: Path | str, allowlist: dict[str, list[tuple]] | None = None,
                   notebooks_dir: Path | None = None) -> NotebookReport:
    """Find every prose number in scope in the notebook at ``path`` and tie it (see the module
    docstring). ``allowlist`` maps a notebook's stem to entries ``(number as written, sentence
    fragment, reason)``."""
    path = Path(path)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else path.parent
    nb = json.loads(path.read_text(encoding="utf-8"))
    run = run_of(nb, path.stem)
    allow = list((allowlist or {}).get(path.stem, []))
    used = [False] * len(allow)
    numbers = []
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        src = _join(cell["source"])
        after, j = set(), i + 1
        while j < len(cells) and cells[j]["cell_type"] == "code":   # the code cells right below
            after.add(j)
            j += 1
        for n in prose_numbers(src, i):
            others = []
            for p in _other_chapters(n, path.stem, notebooks_dir):
                others.append((p, _run_cached(p) if p.suffix == ".ipynb" else _included_numbers(p)))
            n.tie = tie(n, run, src, others, allow, after)
            for k, entry in enumerate(allow):
                if _normal(entry[0]) == _normal(n.text) and _collapse(entry[1]) in n.sentence:
                    used[k] = True
            numbers.append(n)
    for n in numbers:
        if not n.tie and not n.note.startswith("the math evaluates"):
            n.tie = _repeat(n, numbers)
            if n.tie:
                n.note = ""
    return NotebookReport(path, numbers, [e for e, u in zip(allow, used) if not u])


def load_allowlist(path: Path | str) -> dict[str, list[tuple]]:
    """Read ``ALLOWLIST = {...}`` from a Python file without importing it."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "ALLOWLIST" for t in targets):
            return ast.literal_eval(node.value)
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--allowlist", type=Path, default=DEFAULT_ALLOWLIST,
                        help="a Python file defining ALLOWLIST (default: tests/test_prose_numbers.py)")
    parser.add_argument("--no-allowlist", action="store_true", help="report allowlisted numbers too")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list every tied number and how")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    allowlist = {} if args.no_allowlist or not args.allowlist.exists() else load_allowlist(args.allowlist)
    total = 0
    for path in paths:
        report = check_notebook(path, allowlist)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts().items()))
        print(f"{path}: {len(report.numbers)} numbers in scope ({counts})")
        if args.verbose:
            for n in report.numbers:
                print(f"  cell {n.cell}: {n.text!r}: {n.tie or 'UNTIED'}")
        if report.untied:
            print(f"  {len(report.untied)} not tied to the run:")
            print(report.format_untied())
        for entry in report.unused_allowlist:
            print(f"  allowlist entry matches no number any more: {entry[:2]}")
        total += len(report.untied) + len(report.unused_allowlist)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
