"""Book-wide settings and fixes that Jupyter Book 1 cannot express in ``_config.yml``.

1. **One repository setting.** ``repository.url`` in ``_config.yml`` is the only place the
   public repository address lives. While it is empty the book shows no launch buttons
   (Binder, Colab), no repository or issues button and no git URL; pages can hide text
   that needs the address with ``{only} repository`` / ``{only} not repository``. Once it
   is set, the repository and issues buttons, the "edit this page" link and the launch
   buttons of ``launch_buttons`` turn on, the Sphinx tag ``repository`` is set and the MyST
   substitutions ``{{ repository_url }}`` and ``{{ pip_install_mmedu }}`` carry the address
   (the latter installs the release tag ``vX.Y.Z`` of the version the book was built
   from). Likewise the tag ``chapter_N`` is set for every chapter ``NN_name`` in
   ``_toc.yml``, so that a page describes a chapter only once it exists (``{only} chapter_4``).

2. **Exercises numbered per chapter.** sphinx-exercise numbers its boxes with Sphinx's
   figure numbering, which counts across the whole book when the table of contents is not
   numbered (chapter 1's boxes read "Exercise 4-6"). A numbered toc cannot help: it would
   start at 1, not 0, and prefix the chapters' own numbered titles. Instead, every
   enumerable box (exercises, and figures/tables/code blocks if a page numbers them) of a
   page whose file name starts with a number, ``notebooks/NN_name``, is renumbered
   ``NN.1, NN.2, ...`` in page order: ``00_data`` gives 0.1-0.3, ``04_adversarial`` 4.x.

3. **Scripts injected twice.** Sphinx 7.4 re-adds, when writing starts, the inline scripts
   that extensions registered after the builder was created (sphinx-thebe's
   ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector); the copy differs only in
   ``None`` vs ``''`` as file name, so both are written and the second ``const`` raises
   "Identifier 'THEBE_JS_URL' has already been declared" on every page. Duplicates are
   dropped from each page's script list.

4. **Citation labels.** The label style ``mmedu_author_year`` labels the reference list
   "Andrew et al., 2013" (with a, b suffixes where two works would share a label); with
   ``bibtex_reference_style: label`` the text cites with the same labels.

5. **Figures a reader can cite.** Every image on a page must have descriptive alt text and
   sit in a numbered figure with a caption: for a notebook output, the cell metadata
   ``{"mystnb": {"figure": {"name": "fig-NN-slug", "caption": "..."},
   "image": {"alt": "..."}}}``; in a Markdown page, the ``{figure}`` directive with ``:alt:``.
   An image without them is a build warning, so the ``-W`` build (``make test``) fails on it
   (no fallback alt text: a section title says nothing about a figure).

6. **nbgrader's solution markers.** An exercise's answer cell holds its reference solution
   between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines, for nbgrader (``make labs``).
   Those lines are instructions to a tool, not part of the lesson: the book shows the code
   without them.

7. **The release the book was built from.** The footer of every page names the version of
   the ``mmedu`` package in the tree that was built (``mmedu.__version__``, read from
   ``mmedu/__init__.py``; linked to its tag ``vX.Y.Z`` once ``repository.url`` is set), and
   Sphinx's ``version``/``release`` carry it too. The notebooks' setup cells install that
   same version where ``mmedu`` is missing (``scripts/insert_setup_cell.py``).

8. **No placeholder Binder repository.** sphinx-thebe embeds a Thebe configuration in every
   page, pointing at its own example repository (``binder-examples/...``) unless thebe is
   configured. The course does not use Thebe (``launch_buttons.thebe`` is off), so the
   configuration and its ``kernelName`` script are dropped from the pages.

9. **Claims are tests, not teaching.** A chapter asserts its results with ``mmedu.claims``,
   which prints one ``✓ <claim>: <check>`` line per claim. nbval compares those lines in the
   notebook (and a reader running it sees them), but the book leaves them out: every line
   of a cell's printed output that starts with ``✓ `` is dropped, and an output left empty
   goes with it. Cells holding nothing but claims are tagged ``remove-cell``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

REPOSITORY_TAG = "repository"
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button")
# A chapter page: its file name starts with the chapter number, e.g. notebooks/03_subspace.
CHAPTER_DOC = re.compile(r"(?:^|/)(\d+)_[^/]*$")
LABEL_STYLE = "mmedu_author_year"


# --- 1. the repository URL --------------------------------------------------------------

def repository_url(config: Config) -> str:
    """The public repository URL from ``repository.url`` (empty string while unset)."""
    url = (config.html_theme_options or {}).get("repository_url") or ""
    if not isinstance(url, str):
        raise TypeError(f"repository.url must be a string URL, received {type(url).__name__}")
    url = url.strip().rstrip("/")
    if url and not re.match(r"^https://\S+$", url):
        raise ValueError(f"repository.url must be an https:// URL or empty, received {url!r}")
    return url


def apply_repository_setting(app: Sphinx, config: Config) -> None:
    """Turn every repository-dependent part of the book on or off from ``repository.url``."""
    url = repository_url(config)
    options = dict(config.html_theme_options or {})
    subs = dict(config.myst_substitutions or {}) if hasattr(config, "myst_substitutions") else {}
    if url:
        options["repository_url"] = url
        for button in REPOSITORY_BUTTONS:
            options[button] = True
        app.tags.add(REPOSITORY_TAG)
        subs["repository_url"] = url
        distribution, version = package_release(_book_root(app))
        subs["pip_install_mmedu"] = f"`!pip install \"{distribution} @ git+{url}@v{version}\"`"
    else:
        for key in ("repository_url", "launch_buttons", *REPOSITORY_BUTTONS, "use_source_button"):
            options.pop(key, None)
        for button in REPOSITORY_BUTTONS:
            options[button] = False
        # Never shown: text using these sits in `{only} repository` blocks.
        subs["repository_url"] = ""
        subs["pip_install_mmedu"] = ""
    config.html_theme_options = options
    if hasattr(config, "myst_substitutions"):
        config.myst_substitutions = subs


def _book_root(app: Sphinx) -> Path:
    return Path(getattr(app, "srcdir", None) or Path(__file__).resolve().parents[1])


def package_release(root: Path) -> tuple[str, str]:
    """``(distribution name, version)`` of the mmedu package in the tree at ``root``: the
    ``[project] name`` of pyproject.toml and ``__version__`` of mmedu/__init__.py (the one
    place the version is written). Read as text: the book may be built by another Python."""
    root = Path(root)
    init = (root / "mmedu" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init, flags=re.M)
    project = (root / "pyproject.toml").read_text(encoding="utf-8").split("[project]", 1)[-1]
    name = re.search(r'^name\s*=\s*["\']([^"\']+)["\']', project, flags=re.M)
    if not version or not name:
        raise ValueError(f"cannot read the package name/version from {root}/pyproject.toml, mmedu/__init__.py")
    return name.group(1), version.group(1)


# --- 1b. which chapters the book has ---------------------------------------------------

def chapter_tags(docnames: Iterable[str]) -> set[str]:
    """Sphinx tags ``chapter_N`` for every chapter page (``.../NN_name``) in the toc."""
    return {f"chapter_{n}" for n in map(chapter_of, docnames) if n is not None}


def tag_chapters_in_toc(app: Sphinx, config: Config) -> None:
    """Set ``chapter_N`` for each chapter in ``_toc.yml``, so pages can describe a chapter
    only once it exists: ``{only} chapter_4`` / ``{only} not chapter_4``."""
    site_map = getattr(config, "external_site_map", None)  # parsed by sphinx_external_toc
    if site_map is None:
        return
    for tag in sorted(chapter_tags(site_map)):
        app.tags.add(tag)


# --- 2. exercise numbers per chapter ----------------------------------------------------

def chapter_of(docname: str) -> int | None:
    """The chapter number of a page named ``.../NN_name``, else None."""
    match = CHAPTER_DOC.search(docname)
    return int(match.group(1)) if match else None


def renumber_per_chapter(toc_fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]],
                         sections: dict[str, list[str]] | None = None) -> list[str]:
    """Rewrite, in place, the numbers of every enumerable node of each chapter page as
    ``(chapter, k)``, k = 1, 2, ... in page order. A page listed in the toc under a chapter
    (``sections``: chapter docname -> its section docnames, in toc order) goes on from the
    chapter's numbers: chapter 7's section page ``book/search_at_scale`` has Fig. 7.4 after
    the chapter's three. Returns the pages changed."""
    changed = []
    sections = sections or {}
    owner = {s: parent for parent, kids in sections.items() for s in kids}

    def renumber(docname: str, chapter: int, start: dict[str, int]) -> None:
        for figtype, numbers in toc_fignumbers.get(docname, {}).items():
            first = start.get(figtype, 0)
            in_order = sorted(numbers, key=lambda node_id: numbers[node_id])
            new = {node_id: (chapter, first + k) for k, node_id in enumerate(in_order, start=1)}
            start[figtype] = first + len(in_order)
            if new != numbers:
                numbers.clear()
                numbers.update(new)
                changed.append(docname)

    for docname in list(toc_fignumbers):
        chapter = chapter_of(docname)
        if chapter is None or docname in owner:
            continue
        counts: dict[str, int] = {}
        renumber(docname, chapter, counts)
        for section in sections.get(docname, []):
            renumber(section, chapter, counts)
    return sorted(set(changed))


def _toc_sections(env: BuildEnvironment) -> dict[str, list[str]]:
    """Chapter page -> the pages listed under it in the toc (all levels, in toc order)."""
    includes = getattr(env, "toctree_includes", {}) or {}

    def below(doc: str) -> list[str]:
        out = []
        for kid in includes.get(doc, []):
            out += [kid, *below(kid)]
        return out

    return {doc: below(doc) for doc in includes if chapter_of(doc) is not None}


def _renumber(app: Sphinx, env: BuildEnvironment) -> Iterable[str]:
    # Runs after Sphinx's TocTreeCollector (priority 500) assigned the book-wide numbers.
    return renumber_per_chapter(env.toc_fignumbers, _toc_sections(env))


# --- 3. scripts injected twice ----------------------------------------------------------

def _script_key(script: Any) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (getattr(script, "filename", None) or "", getattr(script, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


# --- 4. citation labels -----------------------------------------------------------------

def _plain(text: str) -> str:
    """A BibTeX name as text: LaTeX accents decoded (``J{\\'e}gou`` -> ``Jégou``), braces gone."""
    return Text.from_latex(text).render_as("text").replace("{", "").replace("}", "")


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Last, year", "Last and Other, year" or "Last et al., year"."""

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + chr(ord("a") + seen[label])
                seen[label] += 1

    def format_label(self, entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
        if not names:
            who = _plain(entry.fields.get("organization", entry.key))
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        year = entry.fields.get("year")
        return f"{who}, {year}" if year else who


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style, sorted by author, year and title, with author-year labels."""

    default_label_style = LABEL_STYLE


# --- 5. image alt text ------------------------------------------------------------------

def _check_figures(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for image in doctree.findall(nodes.image):
        alt = str(image.get("alt") or "").strip()
        figure = next((a for a in _ancestors(image) if isinstance(a, nodes.figure)), None)
        caption = figure.next_node(nodes.caption) if figure is not None else None
        problems = []
        if not alt or re.search(r"(_images/|\.(png|jpe?g|svg|gif)$)", alt):
            problems.append("no descriptive alt text")
        if caption is None or not caption.astext().strip():
            problems.append("no numbered figure with a caption")
        if problems:
            logger.warning(
                "image %s has %s: give the cell the metadata {\"mystnb\": {\"figure\": "
                "{\"name\": ..., \"caption\": ...}, \"image\": {\"alt\": ...}}} (a Markdown "
                "page: the {figure} directive with :alt:)",
                image.get("uri", "?"), " and ".join(problems), location=image,
                type="mmedu", subtype="figure",
            )


def _ancestors(node: nodes.Node):
    while node.parent is not None:
        node = node.parent
        yield node


# --- 6. nbgrader's solution markers -----------------------------------------------------

SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def strip_solution_markers(text: str) -> str:
    """``text`` without its ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines."""
    return SOLUTION_MARKER.sub("", text)


def _strip_markers(app: Sphinx, doctree: nodes.document) -> None:
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if not SOLUTION_MARKER.search(text):
            continue
        _set_text(block, strip_solution_markers(text).rstrip("\n"))


def _set_text(block: nodes.literal_block, text: str) -> None:
    # The HTML writer highlights rawsource when it equals the text: change both.
    block.rawsource = text
    block.children = [nodes.Text(text)]


# --- 9. claim lines ----------------------------------------------------------------------

CLAIM_LINE = re.compile(r"^\u2713 .*(?:\n|$)", re.M)


def strip_claim_lines(text: str) -> str:
    """``text`` without its ``✓ ...`` lines (what :mod:`mmedu.claims` prints per claim)."""
    return CLAIM_LINE.sub("", text)


def _strip_claim_lines(app: Sphinx, doctree: nodes.document) -> None:
    for block in list(doctree.findall(nodes.literal_block)):
        if "output" not in block.get("classes", []):
            continue
        text = block.astext()
        if not CLAIM_LINE.search(text):
            continue
        clean = strip_claim_lines(text).rstrip("\n")
        if clean.strip():
            _set_text(block, clean)
            continue
        parent = block.parent
        parent.remove(block)
        # the cell's output containers, left empty, go too
        while (isinstance(parent, nodes.container) and not parent.children
               and parent.parent is not None):
            grand = parent.parent
            grand.remove(parent)
            parent = grand


# --- 7. the release the book was built from -------------------------------------------

def release_footer(version: str, url: str) -> str:
    """The footer line naming the package version (linked to its tag once the url is set)."""
    label = f"mmedu {version}"
    if url:
        label = f'<a href="{url}/releases/tag/v{version}">{label}</a>'
    return f'<p class="mmedu-release">Built from {label}.</p>'


def show_release(app: Sphinx, config: Config) -> None:
    _, version = package_release(_book_root(app))
    config.version = config.release = version
    options = dict(config.html_theme_options or {})
    footer = release_footer(version, repository_url(config))
    options["extra_footer"] = f"{options['extra_footer']}\n{footer}" if options.get("extra_footer") else footer
    config.html_theme_options = options


# --- 8. no placeholder Binder repository -------------------------------------------------

def _drop_thebe_config(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    launch = (app.config.html_theme_options or {}).get("launch_buttons") or {}
    if launch.get("thebe"):
        return
    for raw in list(doctree.findall(nodes.raw)):
        text = raw.astext()
        if "text/x-thebe-config" in text or text.strip().startswith("<script>kernelName ="):
            raw.parent.remove(raw)


def setup(app: Sphinx) -> dict[str, Any]:
    register_plugin("pybtex.style.labels", LABEL_STYLE, AuthorYearLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", LABEL_STYLE, AuthorYearStyle, force=True)
    app.connect("config-inited", apply_repository_setting, priority=400)
    app.connect("config-inited", show_release, priority=410)
    # After sphinx_external_toc (priority 900) has read _toc.yml.
    app.connect("config-inited", tag_chapters_in_toc, priority=950)
    app.connect("env-get-updated", _renumber, priority=900)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("doctree-resolved", _check_figures)
    app.connect("doctree-read", _strip_claim_lines)
    app.connect("doctree-read", _strip_markers)
    # After sphinx-thebe (priority 500) has appended its configuration.
    app.connect("doctree-resolved", _drop_thebe_config, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
