"""Sphinx extension: every chapter page offers its executed notebook for download.

The pages are MyST Markdown notebooks. The theme's download menu offers the ``.md``
source; a reader who wants to run a page in JupyterLab is better served by the page as
an ``.ipynb`` *with its outputs* (figures, tables, sliders' frames), which opens ready
to read and to run. myst-nb writes every page it executed to ``_build/jupyter_execute``;
this extension copies those notebooks (with the outputs from the execution cache when
the page was not re-executed) next to the sources the site serves
(``_sources/<page>.ipynb``) and adds the menu entry (sphinx-book-theme shows one when a
page's context names an ``ipynb_source``).

The same menu offers the whole chapter: ``_downloads/chapter-8-optimization.zip`` holds
the book's repository as it was built (every file git tracks, as it is in the working
tree), less the instructors' material (the hidden checks and exercise masters, the
teaching notes), so a reader can unpack it and run ``make lab`` (the opening page's "Run
it yourself" section, linked from the menu too).
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import nbformat

ZIP_NAME = "chapter-8-optimization"
#: Instructors' material that stays out of the readers' zip (paths relative to the root).
NOT_FOR_READERS = ("solutions/hidden/", "solutions/masters/", "solutions/teaching-notes.md",
                   "tests/grading_fixtures/")
#: Outside a git checkout: folders that are the build's or the environment's, not the book's.
OUTSIDE_GIT_SKIP = {".git", ".venv", "node_modules", "_build", "_vendor", "__pycache__"}
#: Where the opening page says how to run the chapter from the zip or a clone.
RUN_IT_YOURSELF = "chapters/00-opening"
RUN_IT_YOURSELF_ANCHOR = "run-it-yourself"


def _executed(app) -> Path:
    return Path(app.outdir).parent / "jupyter_execute"


def _notebook_for(app, pagename: str) -> Path | None:
    path = _executed(app) / f"{pagename}.ipynb"
    return path if path.is_file() else None


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    # Pages whose source already is an .ipynb (the solutions) offer it as their source.
    if context.get("page_source_suffix") == ".md" and _notebook_for(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def _offer_chapter(app, pagename, templatename, context, doctree) -> None:
    """Add "the whole chapter (.zip)" and "run it yourself" to the page's download menu."""
    pathto = context["pathto"]
    for group in context.get("header_buttons", []):
        if group.get("label") != "download-buttons":
            continue
        group["buttons"][1:1] = [
            {"type": "link", "url": pathto(f"_downloads/{ZIP_NAME}.zip", 1),
             "text": "chapter .zip", "icon": "fas fa-file-archive",
             "tooltip": "Download the whole chapter (its repository) to run with make lab",
             "label": "download-chapter-button"},
            {"type": "link", "url": ("" if pagename == RUN_IT_YOURSELF else pathto(RUN_IT_YOURSELF))
                                    + "#" + RUN_IT_YOURSELF_ANCHOR,
             "text": "run it yourself", "icon": "fas fa-play",
             "tooltip": "How to run the pages in JupyterLab", "label": "run-yourself-button"},
        ]


def repository_files(root: Path) -> list[str]:
    """The files of the repository a reader gets: what git tracks (or, outside a git
    checkout, every file but the build's and the environment's), less NOT_FOR_READERS."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True,
                                capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in OUTSIDE_GIT_SKIP]
            listed += [str((Path(folder) / f).relative_to(root)) for f in files]
    return sorted(f for f in listed if f and not f.startswith(NOT_FOR_READERS)
                  and (root / f).is_file())


def write_chapter_zip(root: Path, target: Path) -> int:
    """Write the readers' repository zip; return how many files it holds."""
    files = repository_files(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(root / name, f"{ZIP_NAME}/{name}")
    return len(files)


def _write_zip(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    write_chapter_zip(Path(app.srcdir), Path(app.outdir) / "_downloads" / f"{ZIP_NAME}.zip")


def _copy_notebooks(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    sources = Path(app.outdir) / "_sources"
    for docname in app.env.found_docs:
        notebook = _notebook_for(app, docname)
        if notebook is None or not (sources / f"{docname}.md").exists():
            continue
        target = sources / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = _with_outputs(app, nbformat.read(notebook, as_version=4))
        nbformat.validate(nb)  # a download that JupyterLab refuses is worse than none
        nbformat.write(nb, target)


def _with_outputs(app, nb):
    """The notebook with its outputs. myst-nb writes a page's notebook with outputs only
    when it executed the page in this build; when the outputs came from the execution
    cache (jupyter-cache), they are merged back from there."""
    if any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
        return nb
    from jupyter_cache import get_cache

    cache = getattr(app.env, "mystnb_config", None)
    path = getattr(cache, "execution_cache_path", "") or ""
    path = Path(path) if path else Path(app.outdir).parent / ".jupyter_cache"
    if not path.is_dir():
        return nb
    try:
        return get_cache(path).merge_match_into_notebook(nb)[1]
    except KeyError:  # not in the cache: a page that is never executed
        return nb


def setup(app):
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("html-page-context", _offer_chapter, priority=502)  # after the theme's menu
    app.connect("build-finished", _copy_notebooks)
    app.connect("build-finished", _write_zip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
