"""The book builds warning-free and serves MathJax locally (math renders offline).

The build uses the committed notebook outputs (``execute_notebooks: off``) and writes
into a temporary folder, so the repository's ``_build/`` is left alone.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
EXT_FILE = ROOT / "_ext" / "mathjax_local.py"
# Pages whose source contains math, so they must load MathJax.
PAGES_WITH_MATH = ["book/notation.html", "notebooks/00_data.html"]


def _load_extension_module():
    spec = importlib.util.spec_from_file_location("mathjax_local", EXT_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ScriptSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            src = dict(attrs).get("src")
            if src:
                self.sources.append(src)


def _script_sources(page: Path) -> list[str]:
    parser = _ScriptSources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.sources


@pytest.fixture(scope="module")
def built_html(tmp_path_factory) -> Path:
    pytest.importorskip(
        "jupyter_book",
        reason="jupyter-book is not installed; install the book extra: pip install -e '.[book]'",
    )
    out = tmp_path_factory.mktemp("book")
    cmd = [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
        "build", str(ROOT), "--path-output", str(out), "--builder", "html",
        "-W", "-n", "--keep-going", "--all",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (
        f"jupyter-book build failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    )
    return out / "_build" / "html"


def test_book_pages_exist(built_html: Path) -> None:
    for page in ["index.html", "book/intro.html", "book/notation.html",
                 "book/references.html", "notebooks/00_data.html"]:
        assert (built_html / page).is_file(), f"missing page {page}"


def test_mathjax_tree_is_copied_with_tex_extensions(built_html: Path) -> None:
    es5 = built_html / "_mathjax" / "es5"
    assert (es5 / "tex-chtml.js").is_file()
    # Autoloaded macros (\boldsymbol, \mathbb via ams, ...) are fetched from here.
    assert (es5 / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    assert (es5 / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    # Jupyter Book injects every .js under _static into every page: keep MathJax out.
    assert not list((built_html / "_static").rglob("tex-chtml*.js"))


def test_every_page_loads_mathjax_locally(built_html: Path) -> None:
    pages = [p for p in built_html.rglob("*.html")
             if not p.relative_to(built_html).parts[0].startswith("_")]
    assert len(pages) >= 5
    loaded_by = set()
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in html, f"{page} references the MathJax CDN"
        for src in _script_sources(page):
            if "mathjax" not in src.lower():
                continue
            assert not re.match(r"^(https?:)?//", src), f"{page}: remote MathJax {src}"
            target = (page.parent / src.split("?")[0]).resolve()
            assert target.is_file(), f"{page}: MathJax script {src} not found at {target}"
            assert target.is_relative_to((built_html / "_mathjax").resolve())
            loaded_by.add(page.relative_to(built_html).as_posix())
    for page in PAGES_WITH_MATH:
        assert page in loaded_by, f"{page} has math but does not load MathJax"


def test_missing_mathjax_package_gives_install_hint(monkeypatch) -> None:
    errors = pytest.importorskip("sphinx.errors", reason="sphinx is not installed (book extra)")
    module = _load_extension_module()

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(module.metadata, "distribution", not_installed)
    with pytest.raises(errors.ExtensionError, match=r"django-static-mathjax.*not installed.*\[book\]"):
        module.find_mathjax_es5()
