"""``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv``: the command line.

``--gradescope DIR`` and ``--canvas EXPORT.csv`` also write the grades for Gradescope and
Canvas (:mod:`~optbook.grade.gradescope`, :mod:`~optbook.grade.canvas`);
``--gradescope-package OUT.zip`` writes a Gradescope autograder that runs this grader."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from optbook.grade import canvas, gradescope
from optbook.grade.pipeline import CHECKOUT, Options, grade
from optbook.grade.run import Limits


def parse_args(argv: list[str] | None = None) -> Options | argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m optbook.grade",
                                description="Grade exercise notebooks: every student's answers, run in a sandbox, "
                                            "judged by the checks in solutions/hidden/.")
    p.add_argument("submissions", type=Path, nargs="?",
                   help="folder of <student>/<id>.ipynb or <student>__<id>.ipynb")
    p.add_argument("--out", type=Path, help="the gradebook CSV to write")
    p.add_argument("--exercises", type=Path, default=CHECKOUT / "exercises",
                   help="pristine notebooks (default: the checkout's exercises/, from any folder)")
    p.add_argument("--hidden", type=Path, default=CHECKOUT / "solutions" / "hidden",
                   help="the checks files, never released (default: the checkout's solutions/hidden/)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks run at once (default: cores)")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell (default: 120)")
    p.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds per notebook (default: 600)")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help="RLIMIT_DATA per process, MiB (default: 4096; 0: none)")
    p.add_argument("--processes", type=int, default=Limits.processes,
                   help="processes and threads in a sandbox (default: 128)")
    p.add_argument("--data", type=Path, action="append", default=[],
                   help="a folder the kernel may read (repeatable; /usr is always readable)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run kernels without bubblewrap (unsafe for untrusted work; noted in every row)")
    p.add_argument("--feedback-dir", type=Path, help="feedback Markdown per student (default: <out stem>-feedback/)")
    p.add_argument("--cache-dir", type=Path, help="results cache (default: .<out stem>-cache/ next to --out)")
    p.add_argument("--prose", type=Path, help="prose answers CSV (default: <out stem>-prose.csv)")
    p.add_argument("--no-cache", action="store_true", help="grade everything again (and do not write the cache)")
    lms = p.add_argument_group("grades where the course lives")
    lms.add_argument("--gradescope", type=Path, metavar="DIR",
                     help="also write DIR/<student>/results.json in Gradescope's autograder schema")
    lms.add_argument("--gradescope-visibility", default="after_due_date", choices=gradescope.VISIBILITIES,
                     help="Gradescope visibility of the hidden checks (default: after_due_date)")
    lms.add_argument("--gradescope-package", type=Path, metavar="OUT.zip",
                     help="write a Gradescope autograder zip (setup.sh, run_autograder) and stop; "
                          "no SUBMISSIONS needed")
    lms.add_argument("--exercise", action="append", default=[], metavar="ID",
                     help="grade only this exercise (repeatable; default: every notebook in --exercises); "
                          "with --gradescope-package: the exercises the autograder grades")
    lms.add_argument("--canvas", type=Path, metavar="EXPORT.csv",
                     help="the gradebook CSV exported from Canvas; writes <out stem>-canvas.csv to import")
    a = p.parse_args(argv)
    if a.gradescope_package:
        return a
    if a.submissions is None or a.out is None:
        p.error("SUBMISSIONS and --out are required (unless --gradescope-package is given)")
    if not a.submissions.is_dir():
        p.error(f"{a.submissions} is not a folder")
    if a.canvas:
        try:
            canvas.read_export(a.canvas)
        except canvas.CanvasError as exc:
            p.error(str(exc))
    limits = Limits(a.cell_timeout, a.timeout, a.memory_mb or None, a.processes)
    return Options(a.submissions, a.out, a.exercises, a.hidden, a.jobs, limits, a.feedback_dir, a.cache_dir,
                   a.prose, use_cache=not a.no_cache, sandbox=not a.no_sandbox, data=a.data,
                   gradescope=a.gradescope, gradescope_visibility=a.gradescope_visibility, canvas=a.canvas,
                   only=a.exercise)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if isinstance(options, argparse.Namespace):
        return make_package(options)
    run = grade(options)
    errors = sum(r.status == "error" for r in run.results)
    print(f"{len(run.results)} results ({run.executed} executed, {run.cached} from cache, {errors} errors) "
          f"-> {options.out}; feedback in {options.feedback_dir}")
    if run.kernel_starts:
        print(f"kernel start (median of {len(run.kernel_starts)}): {statistics.median(run.kernel_starts):.2f} s; "
              f"sandbox: {options.mode}")
    if options.gradescope:
        print(f"Gradescope: {options.gradescope}/<student>/results.json")
    if run.canvas is not None:
        c = run.canvas
        print(f"Canvas: {canvas.canvas_path(options.out)} ({len(c.matched)} students matched, columns "
              f"{', '.join(f'{e} -> {h!r}' for e, h in c.columns.items())})")
        if c.unmatched:
            print(f"Canvas: NOT MATCHED, enter by hand ({options.out.stem}-canvas-unmatched.csv): "
                  f"{', '.join(c.unmatched)}")
        if c.without_submission:
            print(f"Canvas: no submission graded for {len(c.without_submission)} Canvas students "
                  f"(their cells are left empty): {', '.join(c.without_submission)}")
    return 1 if errors else 0


def make_package(a: argparse.Namespace) -> int:
    try:
        ids = gradescope.package(a.gradescope_package, a.exercises, a.hidden, a.exercise or None,
                                 a.gradescope_visibility, limit_args(a))
    except ValueError as exc:
        raise SystemExit(f"python -m optbook.grade --gradescope-package: {exc}") from None
    print(f"wrote {a.gradescope_package}: Gradescope autograder for {', '.join(ids)} "
          "(upload it as the assignment's autograder; students submit the notebook)")
    return 0


def limit_args(a: argparse.Namespace) -> list[str]:
    """The limits given on this command line (and --no-sandbox), for the packaged grader."""
    args = ["--cell-timeout", f"{a.cell_timeout:g}", "--timeout", f"{a.timeout:g}",
            "--memory-mb", str(a.memory_mb), "--processes", str(a.processes)]
    if a.no_sandbox:
        print("warning: --no-sandbox goes into the package: on Gradescope, student code could then read the "
              "checks and write its own results.json", file=sys.stderr)
        args.append("--no-sandbox")
    return args
