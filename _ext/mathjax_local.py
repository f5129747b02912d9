"""Serve MathJax from the built book instead of a CDN, so math renders offline.

Sphinx loads MathJax 3 from ``cdn.jsdelivr.net`` by default; on a train, in a
classroom without internet, or in a headless browser in CI the pages then show
raw TeX. This extension copies the complete MathJax 3.2.2 ``es5/`` tree shipped
by the ``django-static-mathjax`` wheel (Apache-2.0, installed by the ``book``
extra; it needs no Django) into ``<html output>/_mathjax/es5/`` and points
``mathjax_path`` at it.

Why not ``html_static_path``: Jupyter Book 1 adds every ``.js`` file found in
``_static/`` to every page, which would load dozens of MathJax components on
every page. The tree therefore lives next to ``_static/``, not inside it.

Why ``../_mathjax/...``: Sphinx joins a ``mathjax_path`` without ``://`` onto
``_static/`` and then makes it relative to each page, so the page
``notebooks/00_data.html`` gets ``../_static/../_mathjax/es5/tex-chtml.js``,
which a browser resolves to ``_mathjax/es5/tex-chtml.js`` at the output root.

MathJax finds its autoloaded TeX extensions (``\\boldsymbol``, ``\\mathbb``...)
relative to the URL of ``tex-chtml.js``; the whole tree is copied so that
``input/tex/extensions/`` and the CHTML fonts are there.
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.ext.mathjax import MATHJAX_URL
from sphinx.util import logging

logger = logging.getLogger(__name__)

DISTRIBUTION = "django-static-mathjax"
OUTPUT_DIR = "_mathjax"  # relative to the HTML output root, outside _static/
ENTRY_POINT = "tex-chtml.js"
# Relative mathjax_path values are resolved against _static/ by Sphinx.
MATHJAX_PATH = f"../{OUTPUT_DIR}/es5/{ENTRY_POINT}"
INSTALL_HINT = (
    "Install the book dependencies with `pip install -e '.[book]'` "
    f"(it provides {DISTRIBUTION}, which ships MathJax 3)."
)


def find_mathjax_es5() -> Path:
    """Return the ``es5/`` folder of the installed MathJax 3 distribution.

    Raises ``ExtensionError`` with an installation hint when the package is
    missing or does not hold a complete MathJax 3 tree.
    """
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ExtensionError(
            f"mathjax_local: the package {DISTRIBUTION!r} is not installed, so "
            f"the book cannot serve MathJax locally. {INSTALL_HINT}"
        ) from None
    root = Path(str(dist.locate_file("mathjax/static/mathjax")))
    es5 = root / "es5"
    required = [es5 / ENTRY_POINT, es5 / "input/tex/extensions/boldsymbol.js"]
    missing = [str(p) for p in required if not p.is_file()]
    if missing:
        raise ExtensionError(
            f"mathjax_local: {DISTRIBUTION} {dist.version} is installed but its "
            f"MathJax tree is incomplete; missing: {', '.join(missing)}. {INSTALL_HINT}"
        )
    version = json.loads((root / "package.json").read_text(encoding="utf-8"))["version"]
    if not version.startswith("3."):
        raise ExtensionError(
            f"mathjax_local: expected MathJax 3.x from {DISTRIBUTION}, found {version}. "
            f"{INSTALL_HINT}"
        )
    return es5


def _copy_tree(src: Path, dst: Path) -> int:
    """Copy files from ``src`` into ``dst`` that are missing or differ in size/mtime.

    Returns the number of files copied, so repeated builds cost almost nothing.
    """
    copied = 0
    for path in src.rglob("*"):
        if not path.is_file():
            continue
        target = dst / path.relative_to(src)
        stat = path.stat()
        if target.is_file():
            tstat = target.stat()
            if tstat.st_size == stat.st_size and int(tstat.st_mtime) == int(stat.st_mtime):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)  # copy2 keeps mtime for the check above
        copied += 1
    return copied


def _set_mathjax_path(app: Sphinx, config: Config) -> None:
    # Respect an explicit choice (e.g. a deliberate CDN URL); replace only the default.
    if config.mathjax_path == MATHJAX_URL:
        config.mathjax_path = MATHJAX_PATH


def _copy_mathjax(app: Sphinx) -> None:
    # Copy before pages are written, so Sphinx can add its ?v=checksum to the URL.
    if app.builder.format != "html":
        return
    n = _copy_tree(find_mathjax_es5(), Path(app.outdir) / OUTPUT_DIR / "es5")
    logger.info(f"mathjax_local: {n} MathJax file(s) copied to {OUTPUT_DIR}/es5")


def setup(app: Sphinx) -> dict[str, Any]:
    find_mathjax_es5()  # fail early, with the install hint, before any reading
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _set_mathjax_path)
    app.connect("builder-inited", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
