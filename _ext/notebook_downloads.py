"""Sphinx extension: every chapter page offers its executed notebook for download.

The pages are MyST Markdown notebooks. The theme's download menu offers the ``.md``
source; a reader who wants to run a page in JupyterLab is better served by the page as
an ``.ipynb`` *with its outputs* (figures, tables, sliders' frames), which opens ready
to read and to run. myst-nb writes every page it executed to ``_build/jupyter_execute``;
this extension copies those notebooks next to the sources the site serves
(``_sources/<page>.ipynb``) and adds the menu entry (sphinx-book-theme shows one when a
page's context names an ``ipynb_source``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat


def _executed(app) -> Path:
    return Path(app.outdir).parent / "jupyter_execute"


def _notebook_for(app, pagename: str) -> Path | None:
    path = _executed(app) / f"{pagename}.ipynb"
    return path if path.is_file() else None


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    # Pages whose source already is an .ipynb (the solutions) offer it as their source.
    if context.get("page_source_suffix") == ".md" and _notebook_for(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


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
        nb = nbformat.read(notebook, as_version=4)
        nbformat.validate(nb)  # a download that JupyterLab refuses is worse than none
        shutil.copyfile(notebook, target)


def setup(app):
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
