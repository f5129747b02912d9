"""Setting the one repository address turns the book's links on, and they point at the right
notebook, on the right branch.

Builds the book (committed outputs, warnings as errors) into a temporary folder with a copy of
_config.yml whose ``repository.url`` is a sample address and whose branch is not the default,
then checks every page: a chapter page has a Colab and a Binder (JupyterLab) launch link and an
edit link, all to its own notebook at that branch, and the repository and issue buttons; no
page launches another page's notebook; the footer links the release tag of the version built;
the intro's install line installs that tag; no page embeds a placeholder Binder repository.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.book, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_URL = "https://github.com/example-org/mmedu"
SAMPLE_BRANCH = "stable"   # not "main"/"master": a link that ignores the setting would show it
OWNER_REPO = "example-org/mmedu"


def _yaml():
    return pytest.importorskip("yaml", reason="PyYAML comes with the book extra")


def _chapters() -> list[str]:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"file:\s*(notebooks/\d\d_[\w-]+)", toc)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("jupyter_book", reason="jupyter-book is not installed (book extra)")
    yaml = _yaml()
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["repository"] = {**config.get("repository", {}), "url": SAMPLE_URL, "branch": SAMPLE_BRANCH}
    # The copy lives elsewhere: its local extensions are found by absolute path.
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path)
                                            for name, path in config["sphinx"]["local_extensions"].items()}
    out = tmp_path_factory.mktemp("launch_links")
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(ROOT), "--config", str(out / "_config.yml"), "--path-output", str(out),
           "--builder", "html", "-W", "-n", "--keep-going", "--all"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (f"jupyter-book build with repository.url set failed (exit {proc.returncode}):\n"
                                  f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return out / "_build" / "html", config


def _links(page: Path) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8"))]


def _pages(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.html") if not p.relative_to(root).parts[0].startswith("_")]


def test_every_chapter_launches_its_own_notebook_on_the_configured_branch(built):
    root, config = built
    chapters = _chapters()
    assert len(chapters) >= 8, chapters
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    binder = config["launch_buttons"]["binderhub_url"].rstrip("/")
    assert config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    for doc in chapters:
        page = root / f"{doc}.html"
        links = set(_links(page))
        notebook = f"{doc}.ipynb"
        assert (ROOT / notebook).is_file()
        expected = {
            "Colab": f"{colab}/github/{OWNER_REPO}/blob/{SAMPLE_BRANCH}/{notebook}",
            "Binder (JupyterLab)": f"{binder}/v2/gh/{OWNER_REPO}/{SAMPLE_BRANCH}?urlpath=lab/tree/{notebook}",
            "edit": f"{SAMPLE_URL}/edit/{SAMPLE_BRANCH}/{notebook}",
            "repository": SAMPLE_URL,
        }
        for what, link in expected.items():
            assert link in links, f"{page.name}: no {what} link {link}; has {sorted(l for l in links if 'http' in l)}"
        assert any(l.startswith(f"{SAMPLE_URL}/issues/new?") for l in links), f"{page.name}: no issue button"


def test_no_page_launches_another_pages_notebook(built):
    root, config = built
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    binder = config["launch_buttons"]["binderhub_url"].rstrip("/")
    launching = 0
    for page in _pages(root):
        doc = page.relative_to(root).with_suffix("").as_posix()
        for link in _links(page):
            target = None
            if link.startswith(f"{colab}/github/"):
                target = link.split(f"/blob/{SAMPLE_BRANCH}/", 1)[-1]
            elif link.startswith(f"{binder}/v2/"):
                target = link.split("urlpath=lab/tree/", 1)[-1]
            if target is not None:
                launching += 1
                assert target == f"{doc}.ipynb", f"{page.name} launches {link}"
    assert launching >= 2 * len(_chapters())


def test_footer_names_the_release_and_nothing_is_a_placeholder(built):
    root, _ = built
    init = (ROOT / "mmedu" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__\s*=\s*"([^"]+)"', init, flags=re.M).group(1)
    tag = f"{SAMPLE_URL}/releases/tag/v{version}"
    for page in _pages(root):
        text = page.read_text(encoding="utf-8")
        assert "jupyter-stacks-datascience" not in text and "binder-examples" not in text, page.name
        if "<article" in text:  # not the index.html redirect
            assert tag in _links(page) and f"mmedu {version}" in text, f"{page.name}: footer without the release"
    intro = html.unescape(re.sub(r"<[^>]+>", "", (root / "book" / "intro.html").read_text(encoding="utf-8")))
    assert f"git+{SAMPLE_URL}@v{version}" in intro
