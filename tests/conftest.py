"""Shared fixtures: the strict book build, a localhost server for it, and Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from site_helpers import CHROMIUM_ARGS, SiteServer, chromium_path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def book_build():
    """Build the book exactly as `make book` does: every page re-read, warnings are errors.

    Execution is cached (jupyter-cache), so this is quick when the code has not changed.
    The pages' full runs check the numbers their prose quotes against chapters/_results/
    (optbook.book.pages.QuotedResults), which a student's quick run shows.
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--all", "--warningiserror", "--nitpick", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OPTBOOK_CHECK_RESULTS": "1"},
    )
    return result


@pytest.fixture(scope="session")
def site(book_build):
    if book_build.returncode != 0:
        pytest.fail("the book did not build; see test_book_builds_strictly for its log")
    with SiteServer(HTML) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    yield ctx
    ctx.close()
