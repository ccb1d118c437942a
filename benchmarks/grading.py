"""How long does grading take, and what does the sandbox cost?

    .venv/bin/python benchmarks/grading.py [--jobs 2] [--rounds 1] [--out FILE.json]

Grades the six reference solutions and the six unmodified exercises (12 notebooks) with
``python -m optbook.grade``'s pipeline, ``--jobs`` at a time, without the cache: once
with the bubblewrap sandbox and once with ``--no-sandbox``, alternately for ``--rounds``
rounds (a slow moment of a shared machine then hits both alike).  Reports, for each:
the seconds per notebook (wall-clock time of the whole run over 12), and the kernels'
start times (from launching the kernel to its first reply); and the sandbox's own start
cost: starting Python in it, limits and user switch included, over starting Python
without it.  The target (issue 14): at most 2.5 s per notebook with the sandbox and
``--jobs 2``.  Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from optbook.grade import sandbox
from optbook.grade.pipeline import Options, grade
from optbook.grade.run import Limits

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.5  # seconds per notebook, with the sandbox and two jobs


def submissions(folder: Path) -> int:
    """solution/<id>.ipynb and pristine/<id>.ipynb for every exercise with a solution."""
    count = 0
    for notebook in sorted((ROOT / "exercises").glob("*.ipynb")):
        if (ROOT / "solutions" / notebook.name).exists():
            for student, source in (("solution", ROOT / "solutions"), ("pristine", ROOT / "exercises")):
                (folder / student).mkdir(parents=True, exist_ok=True)
                shutil.copy(source / notebook.name, folder / student)
                count += 1
    return count


def one_run(subs: Path, jobs: int, sandboxed: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="optbook-bench-") as out:
        options = Options(subs, Path(out) / "gradebook.csv", exercises=ROOT / "exercises",
                          hidden=ROOT / "solutions" / "hidden", jobs=jobs, limits=Limits(),
                          use_cache=False, sandbox=sandboxed, quiet=True)
        started = time.perf_counter()
        run = grade(options)
        seconds = time.perf_counter() - started
    bad = [f"{r.student}/{r.exercise}: {r.status} {r.points}/{r.max_points}" for r in run.results
           if r.status != "ok" or (r.student == "solution" and r.points != r.max_points)]
    return {"seconds": seconds, "notebooks": run.executed, "per_notebook": seconds / run.executed,
            "kernel_start_median": statistics.median(run.kernel_starts) if run.kernel_starts else None,
            "problems": bad}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"grading-cpu-{os.cpu_count()}core.json")
    args = p.parse_args(argv)
    config = sandbox.plan(rlimits=Limits().rlimits())
    start_costs = [sandbox.try_start(config) for _ in range(11)]
    print(f"sandbox start cost (median of 11): {1000 * statistics.median(start_costs):.0f} ms")
    runs: dict[str, list[dict]] = {"bubblewrap": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="optbook-bench-subs-") as folder:
        n = submissions(Path(folder))
        for round_ in range(args.rounds):
            for mode in ("bubblewrap", "none"):
                result = one_run(Path(folder), args.jobs, mode == "bubblewrap")
                runs[mode].append(result)
                print(f"round {round_ + 1}, sandbox {mode}: {n} notebooks in {result['seconds']:.1f} s = "
                      f"{result['per_notebook']:.2f} s per notebook; kernel start (median) "
                      f"{result['kernel_start_median']:.2f} s" if result["kernel_start_median"] else
                      f"round {round_ + 1}, sandbox {mode}: {result['per_notebook']:.2f} s per notebook")
                if result["problems"]:
                    print("  problems:", "; ".join(result["problems"]))
    per_notebook = {mode: statistics.median(r["per_notebook"] for r in rs) for mode, rs in runs.items()}
    verdict = "met" if per_notebook["bubblewrap"] <= TARGET else "missed"
    print(f"with the sandbox: {per_notebook['bubblewrap']:.2f} s per notebook (target {TARGET} s: {verdict}); "
          f"without: {per_notebook['none']:.2f} s")
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                          "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")},
              "jobs": args.jobs, "sandbox_start_cost_s": statistics.median(start_costs),
              "per_notebook_s": per_notebook, "target_s": TARGET, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
