"""``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv``: the command line."""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from optbook.grade.pipeline import Options, grade
from optbook.grade.run import Limits


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m optbook.grade",
                                description="Grade exercise notebooks: every student's answers, run in a sandbox, "
                                            "judged by the checks in solutions/hidden/.")
    p.add_argument("submissions", type=Path, help="folder of <student>/<id>.ipynb or <student>__<id>.ipynb")
    p.add_argument("--out", type=Path, required=True, help="the gradebook CSV to write")
    p.add_argument("--exercises", type=Path, default=Path("exercises"),
                   help="pristine notebooks (default: exercises/)")
    p.add_argument("--hidden", type=Path, default=Path("solutions/hidden"),
                   help="the checks files, never released (default: solutions/hidden/)")
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
    a = p.parse_args(argv)
    if not a.submissions.is_dir():
        p.error(f"{a.submissions} is not a folder")
    limits = Limits(a.cell_timeout, a.timeout, a.memory_mb or None, a.processes)
    return Options(a.submissions, a.out, a.exercises, a.hidden, a.jobs, limits, a.feedback_dir, a.cache_dir,
                   a.prose, use_cache=not a.no_cache, sandbox=not a.no_sandbox, data=a.data)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    run = grade(options)
    errors = sum(r.status == "error" for r in run.results)
    print(f"{len(run.results)} results ({run.executed} executed, {run.cached} from cache, {errors} errors) "
          f"-> {options.out}; feedback in {options.feedback_dir}")
    if run.kernel_starts:
        print(f"kernel start (median of {len(run.kernel_starts)}): {statistics.median(run.kernel_starts):.2f} s; "
              f"sandbox: {options.mode}")
    return 1 if errors else 0
