"""Link each chapter's first mention of an ``mmedu`` object to its entry in the API reference.

Usage::

    python scripts/add_api_links.py [NOTEBOOK ...]     # default: notebooks/[0-9]*.ipynb; rewrites them
    python scripts/add_api_links.py --check            # exit 1 (and list them) if a link is missing
    python scripts/add_api_links.py --inventory _build/html/objects.inv   # targets from a built book

The chapters derive a technique and then call the reference implementation in ``mmedu``; the
prose names it in a code span: `` `mmedu.fusion.TensorFusion` ``, `` `TensorFusion` `` (a name the
chapter imports from ``mmedu``), `` `fusion.TensorFusion` ``, `` `VAE.loss` ``, or a call
`` `CCA(reg=0)` ``. For every object of the API pages (``book/api/*.md``), the first such mention
in a chapter's markdown becomes a MyST cross-reference to its entry, showing the same text:

* `` `mmedu.losses.info_nce` `` → ``{py:func}`mmedu.losses.info_nce` ``;
* `` `TensorFusion` `` → ``{py:class}`~mmedu.fusion.TensorFusion` `` (``~``: shown as the last name);
* `` `CCA(reg=0)` `` → ``{py:class}`CCA(reg=0) <mmedu.subspace.CCA>` `` (an explicit title).

Sphinx writes ``()`` after a function or method linked without an explicit title.

A name is resolved by what it is, not by where it stands: a dotted path starting with ``mmedu.``
is looked up as written; a bare name (or ``Name.attr``) only when the chapter's code cells import
that name from ``mmedu`` and do not define or import it from anywhere else; ``module.Name`` when
``module`` is an ``mmedu`` module. Modules are linked only when written ``mmedu.module``. Not
linked: mentions in code blocks, headings, link texts and directive options, a name written
right after another library's possessive (``TensorLy's `tucker` ``), and anything that is not
an entry of the API pages. Only markdown cells change; an object that a chapter already links
anywhere is left alone, so running the script again changes nothing.

Which objects the API pages hold is worked out the way autodoc does (``automodule`` with
``:members:``: the module's ``__all__``, entries with a docstring or a ``#:`` doc comment, class
members with a docstring), or read from a built book's ``objects.inv`` with ``--inventory``.
``tests/test_api_links.py`` checks the chapters and this script.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Span", "api_objects", "load_inventory", "chapter_names", "code_spans", "resolve", "link_notebook",
    "unlinked_calls", "broken_links", "main",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
API_PAGES = ROOT / "book" / "api"

# inventory object type -> the role that links it
_ROLE_OF_TYPE = {
    "py:module": "mod", "py:class": "class", "py:exception": "exc", "py:function": "func",
    "py:method": "meth", "py:classmethod": "meth", "py:staticmethod": "meth", "py:property": "attr",
    "py:attribute": "attr", "py:data": "data",
}
# a mention right after one of these possessives names the other library's object
_FOREIGN = re.compile(
    r"(?:PyTorch|torch|TensorLy|tensorly|scikit-learn|sklearn|FAISS|faiss|NumPy|numpy|SciPy|scipy|"
    r"open_clip|torchaudio|librosa)['’]s\s+$"
)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,}|:{3,})\s*(.*)$")
_CODE_DIRECTIVES = {"code", "code-block", "code-cell", "sourcecode", "include", "literalinclude", "raw",
                    "eval-rst", "math", "glue", "glue:figure", "mermaid"}
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_OPTION = re.compile(r"^\s*:[\w-]+:")
# a code span (any run of backticks) with an optional role name in front of it
_SPAN = re.compile(r"(\{[A-Za-z][\w:+.-]*\})?(?<!`)(`+)(?!`)(.+?)(?<!`)\2(?!`)", re.S)
# a Python path, optionally called: Name, mod.Name, Class.method, Name(...)
_PATH = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\(.*\))?", re.S)


# ------------------------------------------------------------------------------ the API pages


def api_objects(root: Path = ROOT) -> dict[str, str]:
    """Every object the API pages document: ``{"mmedu.fusion.TensorFusion": "class", ...}``.

    Read from the ``.. automodule::`` directives of ``book/api/*.md`` and the modules themselves,
    by autodoc's rules for ``:members:`` (``__all__``; a docstring, own or inherited, or a ``#:``
    doc comment; public class members defined in the class). The value is the role that links it.
    """
    from sphinx.pycode import ModuleAnalyzer
    from sphinx.util.inspect import getdoc

    sys.path.insert(0, str(root))
    try:
        found: dict[str, str] = {}
        for page in sorted((root / "book" / "api").glob("*.md")):
            text = page.read_text(encoding="utf-8")
            for m in re.finditer(r"^\.\. automodule:: *(\S+)[ \t]*\n((?:[ \t]+:[^\n]*\n?)*)", text, re.M):
                name, options = m.group(1), m.group(2)
                module = importlib.import_module(name)
                found[name] = "mod"
                if not re.search(r"^\s*:members:\s*$", options, re.M):
                    continue
                try:
                    attr_docs = ModuleAnalyzer.for_module(name).find_attr_docs()
                except Exception:  # noqa: BLE001 - no source: no doc comments
                    attr_docs = {}
                names = getattr(module, "__all__", None)
                if names is None:
                    names = [k for k, v in vars(module).items()
                             if not k.startswith("_") and getattr(v, "__module__", name) == name]
                for member in names:
                    obj = getattr(module, member, None)
                    full = f"{name}.{member}"
                    if inspect.isclass(obj):
                        if not getdoc(obj):
                            continue
                        found[full] = "exc" if issubclass(obj, BaseException) else "class"
                        found.update(_class_members(obj, full, member, attr_docs, getdoc))
                    elif inspect.isroutine(obj):
                        if getdoc(obj):
                            found[full] = "func"
                    elif ("", member) in attr_docs:
                        found[full] = "data"
        return found
    finally:
        sys.path.remove(str(root))


def _class_members(cls: type, full: str, qualname: str, attr_docs: dict, getdoc) -> dict[str, str]:
    out = {}
    for key, raw in vars(cls).items():
        if key.startswith("_"):
            continue
        if (qualname, key) in attr_docs:  # a #: doc comment
            out[f"{full}.{key}"] = "attr"
        elif isinstance(raw, property):
            if getdoc(raw):
                out[f"{full}.{key}"] = "attr"
        elif isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
            if getdoc(getattr(cls, key), getattr, True, cls, key):  # inherited docstrings count
                out[f"{full}.{key}"] = "meth"
        elif getdoc(raw) and getdoc(raw) != getdoc(type(raw)):  # not just its type's docstring
            out[f"{full}.{key}"] = "attr"
    return out


def load_inventory(path: str | Path) -> dict[str, str]:
    """The Python objects of a built book's ``objects.inv``, with the role that links each."""
    from sphinx.util.inventory import InventoryFile

    with open(path, "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    return {name: _ROLE_OF_TYPE[kind] for kind, entries in inventory.items() if kind in _ROLE_OF_TYPE
            for name in entries}


# ------------------------------------------------------------------------------ a chapter's code


def chapter_names(nb: dict) -> tuple[dict[str, str], set[str], set[str]]:
    """What a chapter's code cells take from ``mmedu``.

    Returns ``(imports, other, used)``: ``imports`` maps a name bound by an ``mmedu`` import to
    the full name (``{"TensorFusion": "mmedu.fusion.TensorFusion", "mt": "mmedu.tensor"}``);
    ``other`` holds names the chapter defines itself or imports from elsewhere (a bare mention of
    one of them is not linked); ``used`` the full names of the ``mmedu`` objects the code imports
    or reaches through a module (``mt.tucker`` → ``mmedu.tensor.tucker``).
    """
    imports: dict[str, str] = {}
    other: set[str] = set()
    used: set[str] = set()
    trees = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        trees.append(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if node.level == 0 and (module == "mmedu" or module.startswith("mmedu.")):
                        imports[bound] = f"{module}.{alias.name}"
                        used.add(imports[bound])
                    else:
                        other.add(bound)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "mmedu" or alias.name.startswith("mmedu."):
                        if alias.asname:
                            imports[alias.asname] = alias.name
                        else:
                            imports["mmedu"] = "mmedu"
                    else:
                        other.add(alias.asname or alias.name.split(".")[0])
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                other.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
                targets = (stmt.targets if isinstance(stmt, ast.Assign)
                           else [i.optional_vars for i in stmt.items if i.optional_vars] if isinstance(stmt, ast.With)
                           else [stmt.target])
                for target in targets:
                    other.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    for tree in trees:  # attribute chains through an imported module: mt.tucker, mmedu.fusion.X
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                path = _dotted(node)
                if path and path.split(".")[0] in imports:
                    head, _, rest = path.partition(".")
                    used.add(f"{imports[head]}.{rest}")
    return imports, other, used


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


# ------------------------------------------------------------------------------ markdown


@dataclass
class Span:
    """A code span of a markdown cell: ``text`` between the backticks, ``role`` (``"py:class"``,
    ``"cite"``, …) when a role stands in front of it, ``start``/``end`` its offsets in the cell
    (role included), ``prefix`` the line before it."""

    start: int
    end: int
    text: str
    role: str | None
    prefix: str


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def code_spans(source: str) -> list[Span]:
    """The code spans of one markdown cell's prose, in order.

    Code blocks (fenced, not the body of a directive such as ``{exercise}``), headings and
    directive option lines are not prose; a span never crosses from one prose block to another.
    """
    lines = source.splitlines(keepends=True)
    prose: list[tuple[int, int]] = []  # (start, end) of runs of prose lines
    fences: list[tuple[str, bool]] = []  # open fences: (marker, is code)
    pos = 0
    for line in lines:
        start, pos = pos, pos + len(line)
        bare = line.rstrip("\n")
        in_code = any(code for _, code in fences)
        m = _FENCE.match(bare)
        if m and fences and m.group(1)[0] == fences[-1][0][0] and len(m.group(1)) >= len(fences[-1][0]) \
                and not m.group(2).strip():
            fences.pop()
            continue
        if in_code:
            continue
        if m:
            info = m.group(2).strip()
            directive = re.match(r"\{([^}]*)\}", info)
            is_code = m.group(1)[0] != ":" and (directive is None or directive.group(1).strip() in _CODE_DIRECTIVES)
            if m.group(1)[0] == ":" and directive is None and not info:
                continue  # a stray ':::' line
            fences.append((m.group(1), is_code))
            continue
        if _HEADING.match(bare) or _OPTION.match(bare):
            continue
        if prose and prose[-1][1] == start:
            prose[-1] = (prose[-1][0], pos)
        else:
            prose.append((start, pos))
    spans = []
    for a, b in prose:
        block = source[a:b]
        for m in _SPAN.finditer(block):
            if "\n\n" in m.group(3):
                continue
            line_start = block.rfind("\n", 0, m.start()) + 1
            text = m.group(3)
            if text.startswith(" ") and text.endswith(" ") and text.strip():
                text = text[1:-1]
            role = m.group(1)[1:-1] if m.group(1) else None
            spans.append(Span(a + m.start(), a + m.end(), text, role, block[line_start:m.start()]))
    return spans


def resolve(text: str, imports: dict[str, str], other: set[str], api: dict[str, str]) -> str | None:
    """The full name of the API entry a code span's ``text`` names, or None.

    ``mmedu.x.Name`` as written; ``Name`` / ``Name.attr`` through the chapter's ``mmedu`` imports
    (``imports``) unless the chapter also binds the name otherwise (``other``); ``x.Name`` when
    ``mmedu.x`` is a module of ``api``. A call's arguments are ignored: ``CCA(reg=0)`` names
    ``CCA``. Modules only as ``mmedu.x``; the package ``mmedu`` itself is not linked.
    """
    m = _PATH.fullmatch(text.strip())
    if not m:
        return None
    path = m.group(1)
    head, _, rest = path.partition(".")
    if head == "mmedu":
        full = path if rest else None
    elif head in imports and head not in other:
        full = imports[head] + (f".{rest}" if rest else "")
        if api.get(full) == "mod":
            return None
    elif rest and head not in other and api.get(f"mmedu.{head}") == "mod":
        full = f"mmedu.{path}"
        if api.get(full) == "mod":
            return None
    else:
        return None
    return full if full in api else None


def _role_target(span: Span) -> str | None:
    """The target of a ``{py:...}`` role span (``~`` and an explicit title removed)."""
    if not span.role or not span.role.startswith("py:"):
        return None
    m = re.fullmatch(r"(?:.*?)\s*<([^<>]+)>", span.text, re.S)
    target = (m.group(1) if m else span.text).strip().lstrip("~.")
    return target[:-2] if target.endswith("()") else target


def _link(text: str, full: str, kind: str) -> str:
    role = f"{{py:{kind}}}"
    if text == full:
        return f"{role}`{full}`"
    if text == full.rsplit(".", 1)[-1]:
        return f"{role}`~{full}`"
    return f"{role}`{text} <{full}>`"


def _eligible(span: Span) -> bool:
    if span.role is not None or "<" in span.text or ">" in span.text:
        return False
    if _FOREIGN.search(span.prefix):
        return False
    return span.prefix.count("[") <= span.prefix.count("]")  # not inside a link's text


def _markdown_cells(nb: dict):
    return [(i, cell) for i, cell in enumerate(nb.get("cells", [])) if cell.get("cell_type") == "markdown"]


def link_notebook(nb: dict, api: dict[str, str]) -> list[tuple[int, str, str]]:
    """Link the first mention of every API object in ``nb``'s markdown cells, in place.

    Returns ``[(cell index, full name, the role written), ...]`` for the links added; objects the
    notebook already links (a ``{py:...}`` role anywhere) are skipped.
    """
    imports, other, _ = chapter_names(nb)
    cells = _markdown_cells(nb)
    linked = {t for _, cell in cells for s in code_spans(_source(cell)) if (t := _role_target(s))}
    added = []
    for index, cell in cells:
        source = _source(cell)
        edits = []
        for span in code_spans(source):
            if not _eligible(span):
                continue
            full = resolve(span.text, imports, other, api)
            if full is None or full in linked:
                continue
            linked.add(full)
            new = _link(span.text, full, api[full])
            edits.append((span.start, span.end, new))
            added.append((index, full, new))
        if edits:
            for start, end, new in reversed(edits):
                source = source[:start] + new + source[end:]
            cell["source"] = _split_lines(source) if isinstance(cell.get("source"), list) else source
    return added


def _split_lines(source: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", source)


def unlinked_calls(nb: dict, api: dict[str, str]) -> list[str]:
    """``mmedu`` objects the code cells import or call that the markdown mentions but never links."""
    imports, other, used = chapter_names(nb)
    mentioned, linked = set(), set()
    for _, cell in _markdown_cells(nb):
        for span in code_spans(_source(cell)):
            target = _role_target(span)
            if target is not None:
                linked.add(target)
            elif _eligible(span) and (full := resolve(span.text, imports, other, api)):
                mentioned.add(full)
    return sorted((mentioned & used) - linked)


def broken_links(nb: dict, api: dict[str, str]) -> list[str]:
    """Targets of the notebook's ``{py:...}`` roles into ``mmedu`` that are not API entries."""
    targets = {t for _, cell in _markdown_cells(nb) for s in code_spans(_source(cell)) if (t := _role_target(s))}
    return sorted(t for t in targets if (t == "mmedu" or t.startswith("mmedu.")) and t not in api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a link is missing")
    parser.add_argument("--inventory", type=Path, help="a built book's objects.inv (default: the API pages' rules)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every link added")
    args = parser.parse_args(argv)
    api = load_inventory(args.inventory) if args.inventory else api_objects()
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    status = 0
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        added = link_notebook(nb, api)
        broken = broken_links(nb, api)
        verb = "missing" if args.check else "added"
        print(f"{path}: {len(added)} links {verb}" + (f", {len(broken)} broken: {broken}" if broken else ""))
        if args.verbose or args.check:
            for index, _, role in added:
                print(f"  cell {index}: " + role.replace("\n", " "))
        if broken or (args.check and added):
            status = 1
        if added and not args.check:
            path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
