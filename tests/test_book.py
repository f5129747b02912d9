"""The book builds warning-free and serves MathJax locally (math renders offline).

The build uses the committed notebook outputs (``execute_notebooks: off``) and writes
into a temporary folder, so the repository's ``_build/`` is left alone.
"""

from __future__ import annotations

import html
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


# --- the book as rendered (issue 9) -----------------------------------------------------

SETTINGS_FILE = ROOT / "_ext" / "book_settings.py"
# The text pages of the book (not the chapters).
BOOK_PAGES = ["book/intro.html", "book/how_to_use.html", "book/notation.html",
              "book/source_errata.html"]
# Addresses that must never reach the book: the old placeholder and template values.
PLACEHOLDER_URLS = re.compile(r"github\.com/mmedu/mmedu|github\.com/OWNER/REPO|example\.(?:com|org)",
                              re.IGNORECASE)
# Chapters that may not be in _toc.yml yet, with the phrases that describe each on the
# book's text pages. While a chapter's file is missing from the toc, a sentence on those
# pages that names it must say it is planned.
FUTURE_CHAPTERS = {
    4: ("notebooks/04_adversarial", [r"\bchapters? 4\b", r"\badversarial cross-modal\b"]),
    5: ("notebooks/05_attention", [r"\bchapters? 5\b", r"\battention\b"]),
    6: ("notebooks/06_vae", [r"\bchapters? 6\b", r"\bVAEs?\b", r"variational autoencoder"]),
    7: ("notebooks/07_retrieval", [r"\bchapters? 7\b", r"\bcapstone\b"]),
}
# Topic words of chapter 5 and 6 are legitimately used on the errata page to criticise the
# source's own §3.3/§3.4; only "chapter N" / "capstone" are checked there.
TOPIC_FREE_PAGES = {"book/source_errata.html"}
FUTURE_MARKER = re.compile(r"\b(planned|will|not yet|to come)\b", re.IGNORECASE)


def _load_settings_module():
    spec = importlib.util.spec_from_file_location("book_settings", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _book_yaml(name: str) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the book extra")
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def _toc_files() -> set[str]:
    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield str(node["file"]).removesuffix(".ipynb").removesuffix(".md")
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
    return set(walk(_book_yaml("_toc.yml")))


def _configured_repository_url() -> str:
    return str((_book_yaml("_config.yml").get("repository") or {}).get("url") or "").strip()


def _article_sentences(page: Path) -> list[str]:
    """The sentences of a page's main text (scripts, tags and the sidebar removed)."""
    text = page.read_text(encoding="utf-8")
    start, end = text.find("<article"), text.find("</article>")
    text = text[start:end] if start >= 0 and end > start else text
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"</?(p|li|ul|ol|h[1-6]|td|th|tr|dt|dd|div|section|table|pre)\b[^>]*>",
                  "\n\n", text, flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    sentences = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", block) if s]
    return sentences


def _html_pages(built_html: Path) -> list[Path]:
    return [p for p in built_html.rglob("*.html")
            if not p.relative_to(built_html).parts[0].startswith("_")]


def test_repository_url_is_one_setting_and_no_placeholder_reaches_the_book(built_html: Path) -> None:
    url = _configured_repository_url()
    assert not PLACEHOLDER_URLS.search(url), f"_config.yml repository.url is a placeholder: {url!r}"
    bib_urls = set(re.findall(r"https?://[^\s}\"]+", (ROOT / "book/references.bib").read_text("utf-8")))
    pages = _html_pages(built_html)
    for page in pages + [built_html / "searchindex.js"]:
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(built_html).as_posix()
        assert not PLACEHOLDER_URLS.search(text), f"{name}: placeholder repository URL"
        if url:
            continue
        # Unset: no launch buttons, no repository/issues button, no git URL at all.
        for marker in ["launch-buttons", "btn-source-repository-button", "btn-source-issues-button",
                       "mybinder.org/v2", "colab.research.google.com/github", "git+http"]:
            assert marker not in text, f"{name}: {marker!r} although repository.url is unset"
        for link in re.findall(r"https?://(?:www\.)?github\.com/[^\s\"'<>)]*", text):
            assert link.rstrip(".,;") in bib_urls, f"{name}: git URL {link} (repository.url is unset)"
    if url:  # set: the launch buttons are there, on the chapter pages
        chapter = built_html / "notebooks" / "01_concatenation.html"
        assert "launch-buttons" in chapter.read_text(encoding="utf-8")


def test_setting_the_repository_url_turns_buttons_on() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    from types import SimpleNamespace

    from sphinx.util.tags import Tags

    module = _load_settings_module()
    launch = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"}

    def apply(url):
        app = SimpleNamespace(tags=Tags())
        config = SimpleNamespace(
            html_theme_options={"repository_url": url, "launch_buttons": dict(launch)},
            myst_substitutions={})
        module.apply_repository_setting(app, config)
        return app, config

    app, config = apply("https://github.com/someone/course/")
    opts = config.html_theme_options
    assert opts["repository_url"] == "https://github.com/someone/course"
    assert opts["use_repository_button"] and opts["use_issues_button"]
    assert opts["launch_buttons"] == launch
    assert app.tags.has("repository")
    assert "git+https://github.com/someone/course" in config.myst_substitutions["pip_install_mmedu"]

    app, config = apply("")
    opts = config.html_theme_options
    assert "launch_buttons" not in opts and "repository_url" not in opts
    assert not opts["use_repository_button"] and not opts["use_issues_button"]
    assert not app.tags.has("repository")
    assert config.myst_substitutions["pip_install_mmedu"] == ""

    with pytest.raises(ValueError, match="https://"):
        apply("github.com/someone/course")


def test_exercises_are_numbered_per_chapter(built_html: Path) -> None:
    """Chapter N's exercise boxes read N.1, N.2, ... (numbered by _ext/book_settings.py, or
    written by hand in a `:nonumber:` title such as "1.2: late fusion")."""
    chapters = sorted((built_html / "notebooks").glob("[0-9][0-9]_*.html"))
    assert chapters
    for page in chapters:
        text = page.read_text(encoding="utf-8")
        n = int(page.name[:2])
        titles = re.findall(r'<div class="exercise admonition"[^>]*>\s*<p class="admonition-title">(.*?)</p>',
                            text, flags=re.S)
        plain = [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in titles]
        numbers = [m.group(1) if (m := re.match(r"Exercise\s*\(?\s*(\d+(?:\.\d+)?)", t)) else t
                   for t in plain]
        assert numbers == [f"{n}.{k}" for k in range(1, len(numbers) + 1)], f"{page.name}: {plain}"
        solutions = re.findall(r"Solution to<a [^>]*>\s*Exercise\s*\(?\s*([0-9.]+)", text)
        assert set(solutions) <= set(numbers), f"{page.name}: solutions to {solutions}, boxes {numbers}"


def test_renumbering_uses_the_file_name_of_each_chapter() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    module = _load_settings_module()
    numbers = {
        "book/intro": {"exercise": {"a": (1,)}},
        "notebooks/00_data": {"exercise": {"x": (2,), "y": (3,)}},
        "notebooks/04_adversarial": {"exercise": {"q": (9,), "p": (8,)}, "figure": {"f": (5,)}},
    }
    changed = module.renumber_per_chapter(numbers)
    assert numbers["book/intro"] == {"exercise": {"a": (1,)}}
    assert numbers["notebooks/00_data"]["exercise"] == {"x": (0, 1), "y": (0, 2)}
    assert numbers["notebooks/04_adversarial"]["exercise"] == {"p": (4, 1), "q": (4, 2)}
    assert numbers["notebooks/04_adversarial"]["figure"] == {"f": (4, 1)}
    assert changed == ["notebooks/00_data", "notebooks/04_adversarial"]
    assert module.chapter_tags(["book/intro", "notebooks/07_retrieval"]) == {"chapter_7"}


def test_a_section_page_goes_on_from_its_chapters_figure_numbers() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    module = _load_settings_module()
    numbers = {
        "notebooks/07_retrieval": {"figure": {"a": (30,), "b": (31,), "c": (32,)}},
        "book/search_at_scale": {"figure": {"s": (33,)}},
        "book/glossary": {"figure": {"g": (34,)}},
    }
    module.renumber_per_chapter(numbers, {"notebooks/07_retrieval": ["book/search_at_scale"]})
    assert numbers["notebooks/07_retrieval"]["figure"] == {"a": (7, 1), "b": (7, 2), "c": (7, 3)}
    assert numbers["book/search_at_scale"]["figure"] == {"s": (7, 4)}
    assert numbers["book/glossary"]["figure"] == {"g": (34,)}  # not under a chapter


def test_pages_do_not_describe_chapters_missing_from_the_toc(built_html: Path) -> None:
    in_toc = _toc_files()
    for number, (docname, phrases) in FUTURE_CHAPTERS.items():
        if docname in in_toc:
            continue
        for name in BOOK_PAGES:
            checked = phrases[:1] + ([r"\bcapstone\b"] if number == 7 else []) \
                if name in TOPIC_FREE_PAGES else phrases
            for sentence in _article_sentences(built_html / name):
                if any(re.search(p, sentence, re.IGNORECASE) for p in checked):
                    assert FUTURE_MARKER.search(sentence), (
                        f"{name} describes chapter {number} ({docname}), which is not in "
                        f"_toc.yml, without saying it is planned: {sentence!r}")
    # And every chapter that is in the toc is listed, under its own page.
    for page in (built_html / "notebooks").glob("[0-9][0-9]_*.html"):
        assert f"notebooks/{page.stem}" in in_toc


def test_each_script_is_loaded_once(built_html: Path) -> None:
    for page in _html_pages(built_html):
        text = page.read_text(encoding="utf-8")
        inline = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
        duplicated = {s for s in inline if inline.count(s) > 1}
        assert not duplicated, f"{page.name}: inline scripts injected twice: {duplicated}"
        assert text.count("const THEBE_JS_URL") <= 1, page.name


# Jupyter Book links every .js file in _static/ into every page: only scripts meant for
# every page live there.
EVERY_PAGE_SCRIPTS = {"mmedu-book.js"}


def test_book_css_is_linked_and_static_holds_only_every_page_scripts(built_html: Path) -> None:
    static = ROOT / "_static"
    assert {p.name for p in static.rglob("*.js")} == EVERY_PAGE_SCRIPTS
    assert re.search(r"div\.math mjx-container[^{]*\{[^}]*padding-top", (static / "mmedu.css").read_text())
    for page in _html_pages(built_html):
        text = page.read_text(encoding="utf-8")
        if "<article" in text:  # not the index.html redirect
            assert "_static/mmedu.css" in text, page.name
            for script in EVERY_PAGE_SCRIPTS:
                assert text.count(f"_static/{script}") == 1, (page.name, script)
            assert 'rel="icon"' in text and "favicon.svg" in text, page.name


def test_claim_lines_are_stripped_from_the_book(built_html: Path) -> None:
    # nbval compares them in the notebooks; the book shows no "✓ claim" line.
    pages = sorted((built_html / "notebooks").glob("[0-9][0-9]_*.html"))
    assert pages
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
        assert not re.search(r"^\s*\u2713 ", text, re.M), page.name


def test_strip_claim_lines_keeps_everything_else() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    module = _load_settings_module()
    text = "acc 0.91\n\u2713 accuracy: in [0.8, 0.95]\nloss 0.3\n\u2713 x: first \u2265 second"
    assert module.strip_claim_lines(text) == "acc 0.91\nloss 0.3\n"
    assert module.strip_claim_lines("a \u2713 b\n") == "a \u2713 b\n"  # only at a line start


def test_citation_labels_decode_latex_accents() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    module = _load_settings_module()
    assert module._plain("J{\\'e}gou") == "J\u00e9gou"
    assert module._plain("{van der} Maaten") == "van der Maaten"


def test_citation_labels_are_the_same_in_text_and_list(built_html: Path) -> None:
    listed = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>([^<]+)<',
                        (built_html / "book" / "references.html").read_text(encoding="utf-8"))
    assert listed and all(re.search(r", \d{4}[a-z]?$", label) for label in listed), listed
    assert len(set(listed)) == len(listed)
    cited = set()
    for page in _html_pages(built_html):
        for span in re.findall(r'<span class="bibtex-citation"[^>]*>(.*?)</span>',
                               page.read_text(encoding="utf-8"), flags=re.S):
            cited |= {html.unescape(re.sub(r"<[^>]+>", "", a))
                      for a in re.findall(r"<a [^>]*>(.*?)</a>", span, flags=re.S)}
    assert cited and cited <= set(map(html.unescape, listed)), cited - set(listed)


def test_image_alt_texts_are_not_file_paths(built_html: Path) -> None:
    for page in _html_pages(built_html):
        for alt in re.findall(r'<img [^>]*alt="([^"]*)"', page.read_text(encoding="utf-8")):
            assert not re.search(r"(_images/|\.(png|jpe?g|svg|gif)$)", alt), f"{page.name}: alt {alt!r}"


def test_solution_markers_are_stripped_from_rendered_code() -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (book extra)")
    module = _load_settings_module()
    source = "# Define f.\n### BEGIN SOLUTION\ndef f(x):\n    return x\n    ### END SOLUTION\n"
    assert module.strip_solution_markers(source) == "# Define f.\ndef f(x):\n    return x\n"
    assert module.strip_solution_markers("x = '### BEGIN SOLUTION' in s\n") == "x = '### BEGIN SOLUTION' in s\n"


def test_exercise_solutions_show_without_nbgrader_markers(built_html: Path) -> None:
    # The answer cells hold the reference solutions for nbgrader; the book shows their code
    # (hidden until clicked) without the marker lines.
    pages = sorted((built_html / "notebooks").glob("[0-9][0-9]_*.html"))
    with_solutions = 0
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, page.name
        with_solutions += "check_exercise_" in text
    assert with_solutions == len(pages)


def test_every_errata_entry_links_to_the_cell_that_measures_it() -> None:
    """Each section of the errata page, and each of its bulleted flaws, links with
    {ref}`… <errata-N-slug>` to a target that a chapter notebook puts above the measuring cell
    (the book build with -W then checks that the link resolves)."""
    import json

    targets = set()
    for nb in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                targets |= set(re.findall(r"^\((errata-\d+-[\w-]+)\)=$", "".join(cell["source"]), flags=re.M))
    page = (ROOT / "book" / "source_errata.md").read_text(encoding="utf-8")
    links = re.findall(r"\{ref\}`[^`<]*<(errata-[\w-]+)>`", page)
    assert links and set(links) <= targets, f"links to missing targets: {sorted(set(links) - targets)}"
    prose = re.sub(r"^\$\$$.*?^\$\$$", "", page, flags=re.M | re.S)  # a "- λ" line of an equation is no bullet
    for section in re.split(r"^## ", prose, flags=re.M)[1:]:
        title = section.splitlines()[0]
        assert "<errata-" in section, f"errata section {title!r} links to no chapter cell"
        for bullet in re.findall(r"^- .*?(?=^- |^\S|\Z)", section, flags=re.M | re.S):
            assert "<errata-" in bullet, f"{title!r}: the flaw {bullet[:70]!r}… links to no chapter cell"


def test_api_reference_has_one_page_per_module_in_the_toc() -> None:
    modules = {p.stem for p in (ROOT / "mmedu").glob("*.py") if not p.stem.startswith("_")}
    pages = {p.stem for p in (ROOT / "book" / "api").glob("*.md")} - {"index"}
    assert pages == modules, (sorted(modules - pages), sorted(pages - modules))
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for name in sorted(pages | {"index"}):
        assert f"file: book/api/{name}\n" in toc, name
    for name in sorted(pages):
        text = (ROOT / "book" / "api" / f"{name}.md").read_text(encoding="utf-8")
        assert f".. automodule:: mmedu.{name}" in text, name


def test_api_reference_documents_the_public_functions(built_html: Path) -> None:
    page = (built_html / "book" / "api" / "losses.html").read_text(encoding="utf-8")
    for name in ("info_nce", "vse_hinge"):
        assert f'id="mmedu.losses.{name}"' in page, name
    assert "Parameters" in page or "Arguments" in page
