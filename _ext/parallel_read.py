"""Sphinx extension: the pages run side by side, split so that both processes finish together.

Every page of the book executes its code at every build (myst-nb's inline execution,
which the pages' ``{eval}`` numbers need), so a build is mostly waiting for pages to run,
one after another. Sphinx can read pages in parallel processes (``sphinx-build -j N``),
but ``jupyter-book build`` has no option for it, and Sphinx's own split gives each process
alphabetical slices of the pages: with the few long pages in one slice, the other
process sits idle at the end.

This extension

* sets the number of processes: ``OPTBOOK_BUILD_JOBS`` if set, else the CPUs this
  process may use (``OPTBOOK_BUILD_JOBS=1`` reads the pages one after another);
* splits the pages between the processes by their last measured times, longest first
  (:func:`plan_chunks`); the times come from the previous build
  (``_build/page_times.json``) or, on a fresh clone, from ``_ext/page_times.json`` (the
  committed copy; ``python _ext/parallel_read.py`` refreshes it from the last build);
* gives each page's kernel ``OMP_NUM_THREADS`` = CPUs ÷ processes (unless it is set), so
  that pages running at the same time do not fight over the same cores;
* records how long each page took, in which process, and when it started, in
  ``_build/page_times.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sphinx.util import logging

COMMITTED = Path(__file__).with_name("page_times.json")
TIMES_NAME = "page_times.json"
logger = logging.getLogger(__name__)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def jobs_wanted(environ=os.environ) -> int:
    """Processes for reading the pages: OPTBOOK_BUILD_JOBS, else the CPUs."""
    value = environ.get("OPTBOOK_BUILD_JOBS", "").strip()
    if not value:
        return cpus()
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ValueError(f"OPTBOOK_BUILD_JOBS must be a whole number ≥ 1, not {value!r}")
    return jobs


def known_rows(file: Path) -> dict[str, dict]:
    """The rows of a times file ({"pages": {page: {"seconds": s, …}}}); {} if none."""
    try:
        pages = json.loads(file.read_text(encoding="utf-8"))["pages"]
        return {page: dict(row) for page, row in pages.items() if "seconds" in row}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def known_times(*files: Path) -> dict[str, float]:
    """Seconds per page from the first of ``files`` that holds any; {} when none does."""
    for file in files:
        rows = known_rows(file)
        if rows:
            return {page: float(row["seconds"]) for page, row in rows.items()}
    return {}


def plan_chunks(pages, seconds: dict[str, float], nproc: int) -> list[list[str]]:
    """``pages`` split between at most ``nproc`` processes, each reading its share in turn.

    Longest processing time first: the pages sorted by their last time, longest first,
    each given to the process with the least work so far (a page never timed counts as
    an average one). Greedy, and within 4/3 of the best possible split (Graham, 1969);
    a page that dominates starts at once instead of last.
    """
    pages = sorted(pages)
    known = [seconds[page] for page in pages if page in seconds]
    default = sum(known) / len(known) if known else 1.0
    cost = {page: seconds.get(page, default) for page in pages}
    chunks: list[list[str]] = [[] for _ in range(max(1, min(nproc, len(pages))))]
    load = [0.0] * len(chunks)
    for page in sorted(pages, key=lambda page: -cost[page]):
        k = load.index(min(load))
        chunks[k].append(page)
        load[k] += cost[page]
    return chunks


# Two extensions that Jupyter Book loads do not say whether they are safe in parallel
# (Sphinx then reads one page after another, with a warning that fails a strict build).
# For an HTML build both are: sphinx_multitoc_numbering numbers the sections after the
# pages are read, in the main process, from the tables of contents Sphinx has merged;
# sphinx_jupyterbook_latex does nothing unless the builder is LaTeX.
SAFE_BUT_UNDECLARED = ("sphinx_multitoc_numbering", "sphinx_jupyterbook_latex")

_PLAN: list[list[str]] = []   # this build's split, made before Sphinx asks for it
_SPHINX_MAKE_CHUNKS = None


def _planned_chunks(arguments, nproc, maxbatch=10):
    """Stands in for ``sphinx.util.parallel.make_chunks``: Sphinx's split of the pages
    between processes (for reading them, and again for writing them) becomes the plan."""
    if sorted(sum(_PLAN, [])) != sorted(arguments):   # not the pages planned
        return _SPHINX_MAKE_CHUNKS(arguments, nproc, maxbatch)
    return [list(chunk) for chunk in _PLAN]


def _builder_inited(app) -> None:
    global _SPHINX_MAKE_CHUNKS
    if app.builder.format != "html":
        nproc = 1
    elif app.parallel > 1 and "OPTBOOK_BUILD_JOBS" not in os.environ:
        nproc = app.parallel   # sphinx-build -j N: as asked
    else:
        nproc = jobs_wanted()
    app.parallel = nproc
    if nproc > 1:
        import sphinx.builders

        for name in SAFE_BUT_UNDECLARED:
            extension = app.extensions.get(name)
            if extension is not None and extension.parallel_read_safe is None:
                extension.parallel_read_safe = extension.parallel_write_safe = True

        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus() // nproc)))
        if sphinx.builders.make_chunks is not _planned_chunks:
            _SPHINX_MAKE_CHUNKS = sphinx.builders.make_chunks
            sphinx.builders.make_chunks = _planned_chunks
    if not hasattr(app.env, "optbook_page_times"):
        app.env.optbook_page_times = {}


def _times_file(app) -> Path:
    return Path(app.outdir).parent / TIMES_NAME


def _before_read(app, env, docnames: list[str]) -> None:
    times = known_times(_times_file(app), COMMITTED)
    _PLAN[:] = plan_chunks(docnames, times, app.parallel)
    docnames[:] = sum(_PLAN, [])   # a serial read follows the same order


def _source_read(app, docname, source) -> None:
    app.env.optbook_page_times[docname] = {"started": time.time(), "process": os.getpid()}


def _doctree_read(app, doctree) -> None:
    row = app.env.optbook_page_times.get(app.env.docname)
    if row is not None:
        row["seconds"] = round(time.time() - row["started"], 2)


def _merge(app, env, docnames, other) -> None:
    for docname in docnames:
        if docname in getattr(other, "optbook_page_times", {}):
            env.optbook_page_times[docname] = other.optbook_page_times[docname]


def _purge(app, env, docname) -> None:
    getattr(env, "optbook_page_times", {}).pop(docname, None)


def _build_finished(app, exception) -> None:
    """Write this build's times: per page read now, its seconds, the process it was
    planned for and the one that read it, and when it started after the first page;
    pages not read this time keep their old row."""
    read = getattr(app.env, "optbook_page_times", {})
    if exception is not None or not read:
        return
    first = min(row["started"] for row in read.values())
    planned = {page: k for k, chunk in enumerate(_PLAN) for page in chunk}
    pages = known_rows(_times_file(app))
    for docname, row in read.items():
        pages[docname] = {"seconds": row["seconds"], "planned_process": planned.get(docname),
                          "process_id": row["process"],
                          "started_after": round(row["started"] - first, 2)}
    table = {"processes": app.parallel, "pages": dict(sorted(pages.items()))}
    target = _times_file(app)
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    partial.replace(target)
    logger.info("pages read by %d process(es); their times are in %s", app.parallel, target)


def setup(app):
    app.connect("builder-inited", _builder_inited)
    app.connect("env-before-read-docs", _before_read)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("env-merge-info", _merge)
    app.connect("env-purge-doc", _purge)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":  # refresh the committed times from the last build
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("_build") / TIMES_NAME
    rows = known_rows(source)
    if not rows:
        sys.exit(f"{source}: no page times (build the book first)")
    table = {"pages": {page: {"seconds": row["seconds"]} for page, row in sorted(rows.items())}}
    COMMITTED.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{COMMITTED}: {len(rows)} pages")
