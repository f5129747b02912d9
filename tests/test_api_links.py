"""Each chapter links the reference implementations it calls to their entries in the API reference.

``scripts/add_api_links.py`` (its docstring holds the rules) turns the first mention of each
``mmedu`` object in a chapter's prose into a MyST cross-reference such as
``{py:class}`~mmedu.fusion.TensorFusion` ``, and the book's ``-W -n`` build fails on a target that
does not exist. This module checks, without building the book, that every ``mmedu`` object a
chapter's code imports or calls and its prose names is linked at least once and that every link
names an entry of the API pages; and it tests the linker on small notebooks built here.

When a chapter test fails: ``python scripts/add_api_links.py`` adds the missing links.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import load_script

pytest.importorskip("sphinx", reason="the API pages are read by autodoc's rules (the book extra)")

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


links = load_script("add_api_links")


@pytest.fixture(scope="module")
def api() -> dict[str, str]:
    return links.api_objects()


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ the chapters


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_links_the_reference_implementations_it_calls(path: Path, api: dict[str, str]) -> None:
    missing = links.unlinked_calls(_notebook(path), api)
    assert not missing, (
        f"{path.name}: the code calls these and the prose names them, but no mention links the API "
        f"entry: {missing} (run `python scripts/add_api_links.py {path.relative_to(ROOT)}`)")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_api_link_of_a_chapter_names_an_api_entry(path: Path, api: dict[str, str]) -> None:
    broken = links.broken_links(_notebook(path), api)
    assert not broken, f"{path.name}: links to objects the API pages do not document: {broken}"


def test_the_api_objects_are_what_the_api_pages_document(api: dict[str, str]) -> None:
    expected = {
        "mmedu.fusion": "mod",
        "mmedu.fusion.TensorFusion": "class",
        "mmedu.fusion.TensorFusion.weight_tensor": "meth",
        "mmedu.fusion.LateFusion.weights": "attr",                     # a property
        "mmedu.subspace.OrthogonalProjectionResult.W1": "attr",        # a NamedTuple field
        "mmedu.tensor.tucker": "func",
        "mmedu.captions.CLUE_PROBABILITIES": "data",                   # a #: doc comment
        "mmedu.exercises.NotYet": "exc",
    }
    assert {name: api.get(name) for name in expected} == expected
    # not on the pages: private names, constants without a doc comment, plain class attributes
    for name in ("mmedu.fusion._append_one", "mmedu.datasets.DATA_DIR", "mmedu.text.Vocabulary.pad_id",
                 "mmedu.fusion.TensorFusion.__init__"):
        assert name not in api, name


# ------------------------------------------------------------------------------ the linker

FAKE_API = {
    "mmedu.fusion": "mod",
    "mmedu.fusion.ConcatFusion": "class",
    "mmedu.fusion.ConcatFusion.blocks": "meth",
    "mmedu.losses.info_nce": "func",
    "mmedu.tensor": "mod",
    "mmedu.tensor.tucker": "func",
}

CODE = """\
%matplotlib inline
from mmedu.fusion import ConcatFusion
from mmedu import tensor as mt
from mmedu.losses import info_nce
import tensorly as tl


def tucker(x):
    return x


core = mt.tucker(x, ranks)
"""

PROSE = [
    "# The `ConcatFusion` heading\n\nTensorLy's `tucker`, our `tucker` and `mmedu.tensor.tucker`.",
    "```python\nConcatFusion([4], output_dim=2)\n```\n\nThe layer `ConcatFusion([4, 4], output_dim=2)` and "
    "`ConcatFusion`\nagain; [`info_nce`](https://example.org) and `info_nce` {cite}`key`.",
    "::::{exercise} Blocks\n:label: ex-1-1\n\nUse `ConcatFusion.blocks`, `mmedu.fusion` and\n`fusion.ConcatFusion`, "
    "not `fusion`, `mmedu`, `mt` or `unknown`.\n::::",
]

LINKED = [
    "# The `ConcatFusion` heading\n\nTensorLy's `tucker`, our `tucker` and {py:func}`mmedu.tensor.tucker`.",
    "```python\nConcatFusion([4], output_dim=2)\n```\n\nThe layer "
    "{py:class}`ConcatFusion([4, 4], output_dim=2) <mmedu.fusion.ConcatFusion>` and `ConcatFusion`\nagain; "
    "[`info_nce`](https://example.org) and {py:func}`~mmedu.losses.info_nce` {cite}`key`.",
    "::::{exercise} Blocks\n:label: ex-1-1\n\nUse {py:meth}`ConcatFusion.blocks <mmedu.fusion.ConcatFusion.blocks>`, "
    "{py:mod}`mmedu.fusion` and\n`fusion.ConcatFusion`, not `fusion`, `mmedu`, `mt` or `unknown`.\n::::",
]


def _toy() -> dict:
    def lines(text: str) -> list[str]:
        return text.splitlines(keepends=True)

    cells = [{"cell_type": "code", "source": lines(CODE), "metadata": {}, "outputs": [], "execution_count": None}]
    cells += [{"cell_type": "markdown", "source": lines(text), "metadata": {}} for text in PROSE]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _prose(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_the_first_mention_of_each_object_is_linked_with_the_text_it_had() -> None:
    nb = _toy()
    added = links.link_notebook(nb, FAKE_API)
    assert _prose(nb) == LINKED
    assert [full for _, full, _ in added] == [
        "mmedu.tensor.tucker", "mmedu.fusion.ConcatFusion", "mmedu.losses.info_nce",
        "mmedu.fusion.ConcatFusion.blocks", "mmedu.fusion"]
    assert nb["cells"][0]["source"] == _toy()["cells"][0]["source"]          # code cells untouched


def test_linking_twice_changes_nothing() -> None:
    nb = _toy()
    links.link_notebook(nb, FAKE_API)
    again = copy.deepcopy(nb)
    assert links.link_notebook(again, FAKE_API) == []
    assert again == nb


def test_a_bare_name_is_linked_only_when_the_chapter_imports_it_from_mmedu() -> None:
    imports, other, used = links.chapter_names(_toy())
    assert imports["ConcatFusion"] == "mmedu.fusion.ConcatFusion" and imports["mt"] == "mmedu.tensor"
    assert {"tucker", "tl", "core"} <= other
    assert {"mmedu.fusion.ConcatFusion", "mmedu.losses.info_nce", "mmedu.tensor.tucker"} <= used
    resolve = links.resolve
    assert resolve("ConcatFusion", imports, other, FAKE_API) == "mmedu.fusion.ConcatFusion"
    assert resolve("ConcatFusion(dims, output_dim=C)", imports, other, FAKE_API) == "mmedu.fusion.ConcatFusion"
    assert resolve("tucker", imports, other, FAKE_API) is None                 # the chapter's own
    assert resolve("mt.tucker", imports, other, FAKE_API) == "mmedu.tensor.tucker"
    assert resolve("fusion.ConcatFusion", imports, other, FAKE_API) == "mmedu.fusion.ConcatFusion"
    assert resolve("LateFusion", imports, other, FAKE_API) is None             # not imported
    assert resolve("mmedu.fusion.Gone", imports, other, FAKE_API) is None      # not an API entry
    assert resolve("mt", imports, other, FAKE_API) is None                     # a module, not as mmedu.x
    assert resolve("x + 1", imports, other, FAKE_API) is None


def test_unlinked_calls_finds_what_the_code_calls_and_the_prose_names_without_a_link() -> None:
    nb = _toy()
    assert links.unlinked_calls(nb, FAKE_API) == [
        "mmedu.fusion.ConcatFusion", "mmedu.losses.info_nce", "mmedu.tensor.tucker"]
    links.link_notebook(nb, FAKE_API)
    assert links.unlinked_calls(nb, FAKE_API) == []


def test_a_link_to_a_missing_entry_is_broken() -> None:
    nb = _toy()
    nb["cells"][1]["source"] = ["See {py:class}`~mmedu.fusion.Gone` and {py:func}`mmedu.losses.info_nce`."]
    assert links.broken_links(nb, FAKE_API) == ["mmedu.fusion.Gone"]


def test_the_script_writes_only_when_asked_and_in_the_repository_format(tmp_path: Path, capsys) -> None:
    path = tmp_path / "01_toy.ipynb"
    original = json.dumps(_toy(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    path.write_text(original, encoding="utf-8")
    assert links.main([str(path), "--check"]) == 1
    assert path.read_text(encoding="utf-8") == original
    assert "5 links missing" in capsys.readouterr().out
    assert links.main([str(path)]) == 0
    written = path.read_text(encoding="utf-8")
    nb = json.loads(written)
    assert written == json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert _prose(nb) == LINKED
    assert links.main([str(path), "--check"]) == 0
