"""Check one chapter page quickly, in isolation: strict build + a look in headless Chromium.

    .venv/bin/python tools/check_page.py chapters/04-momentum.md [--keep]

The book is copied into a temporary folder in which every *other* page is replaced by a
stub that keeps only its title, its labels and its bibliography, so only the page under
test executes. The build uses the same flags as `make book` (warnings are errors). Then
the page is opened in headless Chromium with every non-local request blocked, and every
slider on it is moved to check that its figure changes.

This is a convenience for writing a page; `make test` remains the real check.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from site_helpers import (CHROMIUM_ARGS, SiteServer, chromium_path, move_every_slider,  # noqa: E402
                          open_offline, toc_files, wait_until_ready)

LABEL = re.compile(r"^\(([^)]+)\)=\s*$")
HEADING = re.compile(r"^#{1,6} ")
BIBLIOGRAPHY = re.compile(r"^```\{bibliography\}\n.*?^```$", re.M | re.S)


def stub(text: str) -> str:
    """Title, labels (each with the heading after it) and the bibliographies of a page."""
    lines = text.splitlines()
    body = [line for line in lines if line.startswith("# ")][:1]
    for i, line in enumerate(lines):
        if LABEL.match(line):
            nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
            # every kept heading becomes a level-2 one, so the stub's levels never jump
            heading = "## " + nxt.lstrip("#").strip() if HEADING.match(nxt) else ""
            body += ["", line, heading or "## (label target)"]
    # the bibliographies as they are: their lists name the entries that citations
    # written as links, [[...]](#key), resolve to (docs/jupyterlab-pages.md, Citations)
    body += ["\n" + block for block in BIBLIOGRAPHY.findall(text)]
    return "\n".join(body) + "\n"


def source_of(doc: str) -> Path:
    """The page's source file: a MyST notebook (.md) or a stored notebook (.ipynb)."""
    for suffix in (".md", ".ipynb"):
        if (ROOT / f"{doc}{suffix}").exists():
            return ROOT / f"{doc}{suffix}"
    raise SystemExit(f"{doc} is in _toc.yml but has no .md or .ipynb file")


def build(page: Path, where: Path) -> Path:
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, where / name)
    for name in ("_ext", "_vendor"):
        (where / name).symlink_to(ROOT / name)
    for doc in toc_files():
        src = source_of(doc)
        dst = where / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".ipynb":  # stored notebooks (the solutions) are never executed
            shutil.copy(src, dst)
        else:
            dst.write_text(src.read_text() if src.resolve() == page.resolve() else stub(src.read_text()))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(where), "--all", "--warningiserror", "--nitpick", "--keep-going"]
    # the full run checks the numbers a quick run quotes (chapters/_results), as the suite does
    env = {**os.environ, "OPTBOOK_CHECK_RESULTS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    problems = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
    problems = [ln for ln in problems if "IPKernelApp" not in ln and "MdParserConfig" not in ln]
    if result.returncode != 0:
        print("\n".join(problems) or log[-4000:])
        for report in (where / "_build" / "html" / "reports").glob("**/*.err.log"):
            print(report.read_text()[-4000:])
        raise SystemExit(f"build FAILED (exit {result.returncode})")
    print("build OK (warnings are errors)")
    return where / "_build" / "html"


def browse(html: Path, doc: str) -> None:
    from playwright.sync_api import sync_playwright

    with SiteServer(html) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page, log = open_offline(context, f"{server.url}{doc}.html")
        wait_until_ready(page)
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        print(f"{views} widget views, {page.locator('.widget-slider').count()} sliders, "
              f"{page.locator('mjx-container').count()} formulas, {page.locator('mjx-merror').count()} TeX errors")
        moves = move_every_slider(page)
        for b, s, changed in moves:
            print(f"  widget {b} slider {s}: figure {'changes' if changed else 'DOES NOT change'}")
        bad = sum(not changed for *_, changed in moves)
        page.screenshot(path=str(html.parent / "page.png"), full_page=True)
        print(f"blocked requests: {log.blocked or 'none'}\nfailed local requests: {log.failed or 'none'}"
              f"\nJS errors: {log.errors or 'none'}\nscreenshot: {html.parent / 'page.png'}")
        browser.close()
        if bad or log.blocked or log.failed or log.errors:
            raise SystemExit("browser check FAILED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="e.g. chapters/04-momentum.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary build folder")
    args = parser.parse_args()
    page = (ROOT / args.page).resolve() if not args.page.is_absolute() else args.page
    doc = page.relative_to(ROOT).with_suffix("").as_posix()
    if doc not in toc_files():
        raise SystemExit(f"{doc} is not in _toc.yml")
    where = Path(tempfile.mkdtemp(prefix="check-page-"))
    try:
        html = build(page, where)
        browse(html, doc)
    finally:
        if args.keep:
            print(f"kept {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
