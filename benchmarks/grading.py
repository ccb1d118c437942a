"""How long does grading take, and what does the sandbox cost?

    .venv/bin/python benchmarks/grading.py [--jobs 2] [--rounds 1] [--baseline COMMIT] [--out FILE.json]

Grades every reference solution and every unmodified exercise (two notebooks an exercise) with
``python -m optbook.grade``'s pipeline, ``--jobs`` at a time, without the cache: once
with the bubblewrap sandbox and once with ``--no-sandbox``, alternately for ``--rounds``
rounds (a slow moment of a shared machine then hits both alike).  Reports, for each:
the seconds per notebook (wall-clock time of the whole run over their number), and the kernels'
start times (from launching the kernel to its first reply); and the sandbox's own start
cost: starting Python in it, limits and user switch included, over starting Python
without it.  With ``--baseline COMMIT``, each round also grades that commit's exercises
with that commit's grader (``git archive``; its command line, ``--no-cache``), so that
the two can be compared under the same load.  The target (issue 14): at most 2.5 s per
notebook with the sandbox and ``--jobs 2``.  Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
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


def baseline_run(tree: Path, jobs: int) -> dict:
    """Grade ``tree``'s solutions and blank exercises with ``tree``'s own grader."""
    with tempfile.TemporaryDirectory(prefix="optbook-bench-old-") as folder:
        subs = Path(folder) / "subs"
        for notebook in sorted((tree / "exercises").glob("*.ipynb")):
            if (tree / "solutions" / notebook.name).exists():
                for student, source in (("solution", tree / "solutions"), ("pristine", tree / "exercises")):
                    (subs / student).mkdir(parents=True, exist_ok=True)
                    shutil.copy(source / notebook.name, subs / student)
        count = sum(1 for _ in subs.rglob("*.ipynb"))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optbook.grade", str(subs), "--out", f"{folder}/gradebook.csv",
                        "--exercises", str(tree / "exercises"), "--hidden", str(tree / "solutions" / "hidden"),
                        "--jobs", str(jobs), "--no-cache"], env={**os.environ, "PYTHONPATH": str(tree / "lib")},
                       capture_output=True, check=False)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "notebooks": count, "per_notebook": seconds / count}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--baseline", help="also grade with this commit's grader (e.g. the one before the sandbox)")
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks" / "results" / f"grading-cpu-{os.cpu_count()}core.json")
    args = p.parse_args(argv)
    config = sandbox.plan(rlimits=Limits().rlimits())
    start_costs = [sandbox.try_start(config) for _ in range(11)]
    print(f"sandbox start cost (median of 11): {1000 * statistics.median(start_costs):.0f} ms")
    runs: dict[str, list[dict]] = {"bubblewrap": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="optbook-bench-subs-") as folder, \
            tempfile.TemporaryDirectory(prefix="optbook-bench-baseline-") as tree:
        n, tree = submissions(Path(folder)), Path(tree)
        if args.baseline:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "lib", "exercises", "solutions"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            runs[f"baseline {args.baseline}"] = []
        for round_ in range(args.rounds):
            if args.baseline:
                result = baseline_run(tree, args.jobs)
                runs[f"baseline {args.baseline}"].append(result)
                print(f"round {round_ + 1}, baseline {args.baseline}: {result['per_notebook']:.2f} s per notebook")
            for mode in ("bubblewrap", "none"):
                result = one_run(Path(folder), args.jobs, mode == "bubblewrap")
                runs[mode].append(result)
                print(f"round {round_ + 1}, sandbox {mode}: {n} notebooks in {result['seconds']:.1f} s = "
                      f"{result['per_notebook']:.2f} s per notebook; kernel start (median) "
                      f"{result['kernel_start_median']:.2f} s")
                if result["problems"]:
                    print("  problems:", "; ".join(result["problems"]))
    per_notebook = {mode: statistics.median(r["per_notebook"] for r in rs) for mode, rs in runs.items()}
    kernel_start = {mode: statistics.median(r["kernel_start_median"] for r in runs[mode])
                    for mode in ("bubblewrap", "none")}
    verdict = "met" if per_notebook["bubblewrap"] <= TARGET else "missed"
    print(f"with the sandbox: {per_notebook['bubblewrap']:.2f} s per notebook (target {TARGET} s: {verdict}), "
          f"kernel start {kernel_start['bubblewrap']:.2f} s; without: {per_notebook['none']:.2f} s, "
          f"kernel start {kernel_start['none']:.2f} s"
          + "".join(f"; {mode}: {t:.2f} s" for mode, t in per_notebook.items() if mode.startswith("baseline")))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                          "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")},
              "jobs": args.jobs, "sandbox_start_cost_s": statistics.median(start_costs),
              "per_notebook_s": per_notebook, "kernel_start_s": kernel_start, "target_s": TARGET, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
