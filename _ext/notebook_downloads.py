"""Sphinx extension: every chapter page offers its executed notebook for download.

The pages are MyST Markdown notebooks. The theme's download menu offers the ``.md``
source; a reader who wants to run a page in JupyterLab is better served by the page as
an ``.ipynb`` *with its outputs* (figures, tables, sliders' frames), which opens ready
to read and to run. myst-nb writes every page it executed to ``_build/jupyter_execute``;
this extension copies those notebooks (with the outputs from the execution cache when
the page was not re-executed) next to the sources the site serves
(``_sources/<page>.ipynb``) and adds the menu entry (sphinx-book-theme shows one when a
page's context names an ``ipynb_source``).
"""

from __future__ import annotations

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
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
