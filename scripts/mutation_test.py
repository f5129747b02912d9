"""Mutation testing of mmedu's modules: can the tests of a module fail when its code is wrong?

Usage::

    python scripts/mutation_test.py losses metrics retrieval            # current tests
    python scripts/mutation_test.py losses --before 9373fb5             # also the tests of a commit
    python scripts/mutation_test.py vae --sample 150 --seed 0 -j 2      # a seeded subset of mutants
    python scripts/mutation_test.py losses --survivors                  # list what no test caught

Each *mutant* is the module ``mmedu/<M>.py`` with one small change (table below); it is run
against ``tests/test_<M>.py`` only (``pytest -x -q -p no:cacheprovider``). A mutant is
*killed* when a test fails (or the test file no longer imports), *survived* when every test
passes, *timeout* when the run takes longer than ``--timeout`` (default: 3x the unmutated run
+ 10 s). With ``--before REV`` the same mutants of the current module are also run against
``tests/test_<M>.py`` as it was at commit ``REV``, so the two counts compare the tests, not the
code. A surviving mutant is either a gap in the tests or *equivalent* (it computes the same
thing, e.g. ``x >= 0`` -> ``x > 0`` on a value that is never 0).

The mutations (a self-written AST mutator in the spirit of mutmut and cosmic-ray, which
needed no install and lets one process keep torch imported):

=============  ==============================================================================
operator       ``+ <-> -``, ``* <-> /``, ``//`` -> ``/``, ``%`` -> ``//``, ``**`` -> ``*``, ``@`` -> ``*``,
               ``& <-> |``, ``^`` -> ``|``, ``<< <-> >>`` (also in ``x += ...``)
comparison     ``< <-> <=``, ``> <-> >=``, ``== <-> !=``, ``is <-> is not``, ``in <-> not in``
boolean        ``and <-> or``; ``not x`` -> ``x``; ``if x:`` -> ``if not x:`` (non-comparison tests,
               also ``a if x else b``)
unary          ``-x`` -> ``x``, ``~x`` -> ``x``
constant       an int ``n`` -> ``n + 1``, a float ``x`` -> ``x + 1``, ``True <-> False``
               (strings are left alone: they are names, choices and messages)
return         ``return x`` -> ``return None``
statement      a call statement, ``raise``, ``assert`` or ``x += ...`` deleted (``pass``)
method         ``max <-> min``, ``amax <-> amin``, ``argmax <-> argmin``, ``sum <-> mean``,
               ``softmax <-> log_softmax``, ``floor <-> ceil``, ``any <-> all``,
               ``clamp_min <-> clamp_max``
=============  ==============================================================================

Not mutated: docstrings, type annotations, imports, decorators, ``__all__``, f-strings, and
the arguments of a ``raise`` (error messages; deleting the ``raise`` is a mutant).

How it runs: the parent process imports pytest, torch and the tests' other libraries once; each
mutant runs in a fork of it, where ``mmedu.<M>`` is imported from the mutated syntax tree (the
other mmedu modules are imported fresh, so they see the mutant too), and pytest runs in
process. Run it under ``nice`` on a shared machine; ``-j`` sets how many mutants run at once.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
              ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.BitAnd: ast.BitOr,
              ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr, ast.LShift: ast.RShift, ast.RShift: ast.LShift}
CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
            ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
METHOD_SWAP = {"max": "min", "min": "max", "amax": "amin", "amin": "amax", "argmax": "argmin", "argmin": "argmax",
               "sum": "mean", "mean": "sum", "softmax": "log_softmax", "log_softmax": "softmax", "floor": "ceil",
               "ceil": "floor", "any": "all", "all": "any", "clamp_min": "clamp_max", "clamp_max": "clamp_min"}
OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
           ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
           ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
           ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or"}


@dataclass
class Site:
    """One mutation: where it is and what it does."""
    index: int
    line: int
    col: int
    kind: str
    what: str


class Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, numbering every place a mutation applies.

    With ``target=None`` it only records the sites; with ``target=i`` it applies site ``i``.
    """

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.sites: list[Site] = []

    def _site(self, node: ast.AST, kind: str, what: str) -> bool:
        index = len(self.sites)
        self.sites.append(Site(index, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), kind, what))
        return index == self.target

    # --- what is never mutated -----------------------------------------------------------
    def visit_Import(self, node):
        return node

    visit_ImportFrom = visit_Import

    def visit_JoinedStr(self, node):
        return node

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        start = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str) else 0
        out = body[:start]
        for stmt in body[start:]:
            new = self.visit(stmt)
            out.extend(new if isinstance(new, list) else [new])
        return out

    def visit_Module(self, node):
        node.body = self._body(node.body)
        return node

    def visit_FunctionDef(self, node):
        # Decorators, annotations are left alone; default values are visited (they are code).
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [d if d is None else self.visit(d) for d in node.args.kw_defaults]
        node.body = self._body(node.body)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.body = self._body(node.body)
        return node

    def visit_AnnAssign(self, node):
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Assign(self, node):
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return node
        return self.generic_visit(node)

    def visit_If(self, node):
        if isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name) \
                and node.test.left.id == "__name__":
            return node
        if not isinstance(node.test, (ast.Compare, ast.UnaryOp)) and self._site(node, "boolean", "if x: -> if not x:"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        node.test = self.visit(node.test)
        node.body = self._body(node.body)
        node.orelse = self._body(node.orelse)
        return node

    def visit_IfExp(self, node):
        if not isinstance(node.test, (ast.Compare, ast.UnaryOp)) and self._site(node, "boolean",
                                                                                 "a if x else b -> a if not x else b"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        return self.generic_visit(node)

    # --- statements ------------------------------------------------------------------------
    def _delete(self, node, what: str):
        if self._site(node, "statement", f"delete {what}"):
            return ast.copy_location(ast.Pass(), node)
        return None

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant):
            return node
        deleted = self._delete(node, ast.unparse(node)[:60])
        return deleted if deleted is not None else self.generic_visit(node)

    def visit_Raise(self, node):
        deleted = self._delete(node, "raise " + (ast.unparse(node.exc)[:40] if node.exc else ""))
        return deleted if deleted is not None else node

    def visit_Assert(self, node):
        deleted = self._delete(node, "assert")
        return deleted if deleted is not None else node

    def visit_AugAssign(self, node):
        deleted = self._delete(node, ast.unparse(node)[:60])
        if deleted is not None:
            return deleted
        swap = BINOP_SWAP.get(type(node.op))
        if swap and self._site(node, "operator", f"{OP_TEXT[type(node.op)]}= -> {OP_TEXT[swap]}="):
            node.op = swap()
            return node
        return self.generic_visit(node)

    def visit_Return(self, node):
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            if self._site(node, "return", f"return {ast.unparse(node.value)[:40]} -> return None"):
                node.value = ast.copy_location(ast.Constant(None), node.value)
                return node
        return self.generic_visit(node)

    # --- expressions -----------------------------------------------------------------------
    def visit_BinOp(self, node):
        swap = BINOP_SWAP.get(type(node.op))
        if swap and self._site(node, "operator", f"{OP_TEXT[type(node.op)]} -> {OP_TEXT[swap]}"):
            node.op = swap()
            return node
        return self.generic_visit(node)

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            swap = CMP_SWAP.get(type(op))
            if swap and self._site(node, "comparison", f"{OP_TEXT[type(op)]} -> {OP_TEXT[swap]}"):
                node.ops[i] = swap()
                return node
        return self.generic_visit(node)

    def visit_BoolOp(self, node):
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._site(node, "boolean", f"{OP_TEXT[type(node.op)]} -> {OP_TEXT[swap]}"):
            node.op = swap()
            return node
        return self.generic_visit(node)

    def visit_UnaryOp(self, node):
        name = {ast.Not: "not x -> x", ast.USub: "-x -> x", ast.Invert: "~x -> x"}.get(type(node.op))
        if name and self._site(node, "boolean" if isinstance(node.op, ast.Not) else "unary", name):
            return node.operand
        return self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            if self._site(node, "constant", f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, (int, float)):
            if self._site(node, "constant", f"{value!r} -> {value + 1!r}"):
                return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Attribute(self, node):
        swap = METHOD_SWAP.get(node.attr)
        if swap and isinstance(node.ctx, ast.Load) and self._site(node, "method", f".{node.attr} -> .{swap}"):
            node.attr = swap
            return node
        return self.generic_visit(node)


def module_path(module: str) -> Path:
    return ROOT / "mmedu" / f"{module}.py"


def sites_of(source: str) -> list[Site]:
    mutator = Mutator()
    mutator.visit(ast.parse(source))
    return mutator.sites


def mutant_code(source: str, path: Path, index: int):
    tree = Mutator(index).visit(ast.parse(source))
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec", dont_inherit=True)


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module from a code object (the mutant) instead of its file."""

    def __init__(self, fullname: str, path: Path, code) -> None:
        self.fullname, self.path, self.code = fullname, path, code

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.fullname:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.code, module.__dict__)


def run_in_fork(module: str, code, test_file: Path, rootdir: Path, timeout: float) -> int:
    """Fork; in the child import mmedu.<module> from ``code`` (None: the real file) and run pytest.

    Returns the child's pid (reap it with os.waitpid; see :func:`verdict`).
    """
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: never returns
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(max(1, int(round(timeout))))
        for name in [n for n in sys.modules if n == "mmedu" or n.startswith("mmedu.")]:
            del sys.modules[name]
        if code is not None:
            sys.meta_path.insert(0, _MutantFinder(f"mmedu.{module}", module_path(module), code))
        import pytest

        rc = pytest.main([str(test_file), "-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(rootdir),
                          "-c", str(rootdir / "pyproject.toml")])
        os._exit(int(rc))
    except BaseException:
        os._exit(99)


def verdict(status: int) -> str:
    if os.WIFSIGNALED(status):
        return "timeout" if os.WTERMSIG(status) == signal.SIGALRM else "killed"  # a crash is a failure
    rc = os.WEXITSTATUS(status)
    return {0: "survived", 1: "killed", 2: "killed"}.get(rc, f"error (rc {rc})")


def warm_imports(files: list[Path]) -> None:
    """Import, once in the parent, the third-party modules the tests and the module use."""
    from mmedu.reproduce import pin_threads

    pin_threads()  # before torch: one thread, so forking after it is safe
    names = {"pytest"}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    for name in sorted(names):
        if name.split(".")[0] != "mmedu":
            try:
                importlib.import_module(name)
            except Exception:
                pass
    for entry in importlib.metadata.entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception:
            pass


def tests_at(rev: str, module: str, into: Path) -> Path:
    """``tests/test_<module>.py`` as it was at commit ``rev``, in a copy of the test layout."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:tests/test_{module}.py"], check=True,
                          capture_output=True, text=True).stdout
    (into / "tests").mkdir(parents=True, exist_ok=True)
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, into / name)
    shutil.copy(ROOT / "tests" / "conftest.py", into / "tests" / "conftest.py")
    if (ROOT / "tests" / "fixtures").exists() and not (into / "tests" / "fixtures").exists():
        (into / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    target = into / "tests" / f"test_{module}.py"
    target.write_text(text, encoding="utf-8")
    return target


@dataclass
class Result:
    module: str
    tests: str
    n_sites: int
    verdicts: dict[int, str] = field(default_factory=dict)
    baseline_s: float = 0.0
    seconds: float = 0.0

    def count(self, what: str) -> int:
        return sum(1 for v in self.verdicts.values() if v.startswith(what))


def run_module(module: str, label: str, test_file: Path, rootdir: Path, indices: list[int], jobs: int,
               timeout: float | None, progress: bool) -> Result:
    path = module_path(module)
    source = path.read_text(encoding="utf-8")
    sites = sites_of(source)
    result = Result(module, label, len(sites))
    start = time.monotonic()
    pid = run_in_fork(module, None, test_file, rootdir, 600)
    status = os.waitpid(pid, 0)[1]
    result.baseline_s = time.monotonic() - start
    if verdict(status) != "survived":
        raise SystemExit(f"{module}: the unmutated module fails {test_file} ({verdict(status)}); fix that first")
    limit = timeout if timeout is not None else 3 * result.baseline_s + 10
    pending = list(indices)
    running: dict[int, int] = {}
    t0 = time.monotonic()
    tty = sys.stderr.isatty()
    while pending or running:
        while pending and len(running) < jobs:
            index = pending.pop(0)
            running[run_in_fork(module, mutant_code(source, path, index), test_file, rootdir, limit)] = index
        pid, status = os.wait()
        if pid in running:
            index = running.pop(pid)
            result.verdicts[index] = verdict(status)
            done = len(result.verdicts)
            if progress and (tty or done % 25 == 0 or done == len(indices)):
                print(f"{module} [{label}] {done}/{len(indices)} mutants, {result.count('survived')} survived",
                      end="\r" if tty else "\n", file=sys.stderr, flush=True)
    if progress and tty:
        print(file=sys.stderr)
    result.seconds = time.monotonic() - t0
    return result


def table(results: list[Result]) -> str:
    head = ("module", "tests", "mutants", "killed", "survived", "timeout", "error", "score")
    rows = [head]
    for r in results:
        n = len(r.verdicts)
        killed, survived, timeout = r.count("killed"), r.count("survived"), r.count("timeout")
        error = n - killed - survived - timeout
        total = f"{n}" if n == r.n_sites else f"{n} of {r.n_sites}"
        score = f"{100 * (killed + timeout) / n:.1f}%" if n else "-"
        rows.append((r.module, r.tests, total, str(killed), str(survived), str(timeout), str(error), score))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def survivors(result: Result) -> list[str]:
    source = module_path(result.module).read_text(encoding="utf-8")
    sites = sites_of(source)
    lines = source.splitlines()
    out = []
    for index, v in sorted(result.verdicts.items()):
        if v == "survived":
            s = sites[index]
            out.append(f"  #{index} mmedu/{result.module}.py:{s.line}:{s.col} {s.kind}: {s.what}"
                       f"    | {lines[s.line - 1].strip()[:90]}")
    return out


def write_json(path: Path, results: list[Result]) -> None:
    sites = {r.module: sites_of(module_path(r.module).read_text(encoding="utf-8")) for r in results}
    path.write_text(json.dumps([
        {"module": r.module, "tests": r.tests, "n_sites": r.n_sites, "baseline_s": round(r.baseline_s, 2),
         "seconds": round(r.seconds, 1),
         "mutants": [{"index": i, "line": sites[r.module][i].line, "kind": sites[r.module][i].kind,
                      "what": sites[r.module][i].what, "verdict": v} for i, v in sorted(r.verdicts.items())]}
        for r in results], indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="+", help="module names under mmedu/ (losses, metrics, ...)")
    parser.add_argument("--before", metavar="REV", help="also run the mutants against tests/test_<M>.py at REV")
    parser.add_argument("--sample", type=int, help="run a seeded random subset of this many mutants per module")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--mutants", type=lambda v: [int(i) for i in v.split(",")], metavar="I,J,...",
                        help="run only these mutant numbers (e.g. the survivors of an earlier run, after adding tests)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 3x the unmutated run + 10)")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", type=Path, help="write every mutant's verdict to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    for module in args.modules:
        if not module_path(module).exists() or not (ROOT / "tests" / f"test_{module}.py").exists():
            parser.error(f"{module}: expected mmedu/{module}.py and tests/test_{module}.py")
    if args.list:
        for module in args.modules:
            for s in sites_of(module_path(module).read_text(encoding="utf-8")):
                print(f"{module} #{s.index} {s.line}:{s.col} {s.kind}: {s.what}")
        return 0

    test_files = [ROOT / "tests" / f"test_{m}.py" for m in args.modules] + [module_path(m) for m in args.modules]
    warm_imports(test_files)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mmedu-mutation-") as tmp:
        for module in args.modules:
            n = len(sites_of(module_path(module).read_text(encoding="utf-8")))
            indices = list(range(n))
            if args.sample and args.sample < n:
                indices = sorted(random.Random(f"{args.seed}:{module}").sample(indices, args.sample))
            if args.mutants:
                indices = [i for i in indices if i in set(args.mutants)]
            runs = []
            if args.before:
                copy = Path(tmp) / module
                runs.append((f"at {args.before}", tests_at(args.before, module, copy), copy))
            runs.append(("current", ROOT / "tests" / f"test_{module}.py", ROOT))
            for label, test_file, rootdir in runs:
                results.append(run_module(module, label, test_file, rootdir, indices, args.jobs, args.timeout,
                                          not args.quiet))
                if args.json:  # after every run: a long session leaves what it has measured
                    write_json(args.json, results)
    print(table(results))
    if args.survivors:
        for r in results:
            print(f"\nsurvivors, {r.module} [{r.tests}] ({r.count('survived')}):")
            print("\n".join(survivors(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
