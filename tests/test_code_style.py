"""The notebooks' code fits the book's code column: formatted by ruff at 88 characters.

The book shows code at a size where 88 characters fit the article column on a wide screen
(_static/mmedu.css; scripts/check_book_pages.py measures it in Chromium). ruff keeps the
notebooks there: `ruff format notebooks` formats them, and these tests fail when a cell is
not formatted or a line (a comment, a string) is longer than 88 characters
([tool.ruff] in pyproject.toml).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    return [found]


def test_notebooks_are_formatted_by_ruff() -> None:
    proc = subprocess.run([*_ruff(), "format", "--check", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, (
        "notebook cells not formatted (run `ruff format notebooks`):\n"
        + proc.stdout + proc.stderr)


def test_no_notebook_line_is_longer_than_88_characters() -> None:
    proc = subprocess.run([*_ruff(), "check", "--select", "E501", "--output-format", "concise",
                           "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, "lines longer than 88 characters:\n" + proc.stdout + proc.stderr


def test_the_line_check_can_fail(tmp_path: Path) -> None:
    nb = tmp_path / "long.ipynb"
    nb.write_text(
        '{"cells": [{"cell_type": "code", "execution_count": null, "id": "a", "metadata": {},'
        ' "outputs": [], "source": ["x = 1  # ' + "y" * 100 + '\\n"]}],'
        ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', encoding="utf-8")
    proc = subprocess.run([*_ruff(), "check", "--isolated", "--line-length", "88", "--select",
                           "E501", str(nb)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "E501" in proc.stdout, proc.stdout + proc.stderr
