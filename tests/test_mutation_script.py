"""Tests for scripts/mutation_test.py's mutator: which changes it makes, and where it makes none."""

from __future__ import annotations

from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
mutation_test = load_script("mutation_test")

SOURCE = '''"""Module docstring: never mutated."""
__all__ = ["f"]


def f(x: int = 2, flag: bool = True) -> int:
    """Docstring."""
    if flag:
        x += 1
    if x < 3 and x != 0:
        raise ValueError(f"bad {x + 1}")
    check(x)
    return -x * 2 if flag else x.max()
'''


def _run(index, x=2, flag=True):
    namespace = {"check": lambda v: None}
    exec(mutation_test.mutant_code(SOURCE, Path("m.py"), index), namespace)
    try:
        return namespace["f"](x, flag)
    except ValueError:
        return "raised"


def test_the_sites_of_a_small_function():
    kinds = [(s.line, s.kind, s.what) for s in mutation_test.sites_of(SOURCE)]
    whats = [w for _, _, w in kinds]
    # defaults are code; annotations, docstrings, __all__ and the f-string in the raise are not
    assert whats[:2] == ["2 -> 3", "True -> False"]
    assert "if x: -> if not x:" in whats and "+= -> -=" in whats and "delete x += 1" in whats
    assert {"< -> <=", "!= -> ==", "and -> or", "delete check(x)"} <= set(whats)
    assert any(w.startswith("delete raise ValueError") for w in whats)
    assert "-x -> x" in whats and "* -> /" in whats and ".max -> .min" in whats
    assert not any(line == 10 and kind == "constant" for line, kind, _ in kinds)  # inside the raise
    assert all(line > 2 for line, _, _ in kinds)


def test_each_mutant_changes_one_thing():
    sites = mutation_test.sites_of(SOURCE)
    assert _run(None) == -6  # the original: x = 3, -3 * 2
    by_what = {}
    for s in sites:
        by_what.setdefault(s.what, s.index)  # the first site of each description
    assert _run(by_what["+= -> -="]) == "raised"  # x = 1 < 3
    assert _run(by_what["-x -> x"]) == 6
    assert _run(by_what["* -> /"]) == -1.5
    assert _run(by_what["return -x * 2 if flag else x.max() -> return None"]) is None
    assert _run(by_what["2 -> 3"], x=2) == -6  # a default only matters when it is used


def test_mutation_table_counts():
    result = mutation_test.Result("m", "current", 4, {0: "killed", 1: "survived", 2: "timeout", 3: "killed"})
    table = mutation_test.table([result])
    assert [c.strip() for c in table.splitlines()[2].split("|")] == ["m", "current", "4", "2", "1", "1", "0", "75.0%"]
