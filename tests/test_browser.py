"""The built book, opened page by page in a real browser (headless Chromium), offline.

Builds the book once into a temporary folder (committed notebook outputs, nothing executed)
and runs scripts/check_book_pages.py over every page at 1280 px and 400 px: math typeset by
MathJax with no raw TeX left and no MathJax error, every image loaded, no JavaScript
exception or console error, exercise solutions hidden until clicked, no link to a
placeholder or unset repository address; no table rendered as text, no code, output or display
equation wider than its column at 1280 px, every figure numbered with a caption, alt text and
a high-resolution image, and sidebar toggles that open and close. The screenshots it takes
are left in _build/screenshots/. Every http(s) request of the pages is blocked, so
the result does not depend on a network (CI runs the suite with loopback only).

Needs Debian's ``chromium`` on PATH (or $CHROMIUM); scripts/install_browser.sh installs it
where it runs as root. Skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.book, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "scripts" / "check_book_pages.py"
WIDTHS = (1280, 400)


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _toc_pages() -> list[str]:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the book extra")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield re.sub(r"\.(ipynb|md)$", "", str(node["file"])) + ".html"
            if "root" in node:
                yield re.sub(r"\.(ipynb|md)$", "", str(node["root"])) + ".html"
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return sorted(set(walk(toc)))


@pytest.fixture(scope="module")
def browser() -> str:
    path = _chromium()
    if not path:
        pytest.skip("chromium is not installed: the browser test needs Debian's chromium on PATH "
                    "(run scripts/install_browser.sh as root, or set $CHROMIUM)")
    pytest.importorskip("tornado", reason="the checker drives Chromium with tornado's websocket client")
    return path


@pytest.fixture(scope="module")
def built_book(browser, tmp_path_factory) -> Path:
    pytest.importorskip(
        "jupyter_book",
        reason="jupyter-book is not installed; install the book extra: pip install -e '.[book]'",
    )
    out = tmp_path_factory.mktemp("browser_book")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(ROOT), "--path-output", str(out), "--builder", "html", "--all"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (
        f"jupyter-book build failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return out / "_build" / "html"


def test_every_page_renders_in_chromium(browser: str, built_book: Path) -> None:
    # Screenshots of every page at every width, for a person to look at (CI keeps the folder
    # as an artifact: .github/workflows/ci.yml).
    shots = ROOT / "_build" / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    cmd = [sys.executable, str(CHECKER), str(built_book), "--chromium", browser,
           "--widths", ",".join(map(str, WIDTHS)), "--page-timeout", "60", "--timeout", "420",
           "--screenshots", str(shots)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=480, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"pages that fail in Chromium (exit {proc.returncode}):\n{report}"
    assert len(list(shots.glob("*.jpg"))) >= len(_toc_pages()) * len(WIDTHS), "screenshots missing"
    # Every page of the toc was opened at every width (and passed).
    for page in _toc_pages():
        for width in WIDTHS:
            assert re.search(rf"^ok\s+{re.escape(page)} @ {width}px", report, re.M), (
                f"{page} was not checked at {width} px:\n{report}")
