"""The whole grading run: find → merge → run in the sandbox → judge → report.

For every (student, exercise): the submission is found (:mod:`~optbook.grade.find`), its
answers merged into the pristine exercise with the probes appended
(:mod:`~optbook.grade.merge`), the merged notebook run by nbval with a sandboxed kernel
(:mod:`~optbook.grade.run`, :mod:`~optbook.grade.sandbox`), every check judged in this
process (:mod:`~optbook.grade.judge`), and the reports written
(:mod:`~optbook.grade.report`).  Notebooks run several at a time (``jobs``).

**Nothing lost.**  Every student gets a row for every exercise, whatever happened
(missing, malformed, rejected, timeout, a crash on the grader's side: ``error``).  Each
result is cached as soon as it is known, keyed by a hash of the answers, the pristine
notebook, the checks file, the limits, the sandbox and the grader version: a rerun,
after a finished run or a stopped one, grades only what changed or was not done.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from optbook.grade import sandbox
from optbook.grade.exercise import Exercise, load_exercises
from optbook.grade.find import MalformedSubmission, Submission, discover, read_answers
from optbook.grade.judge import REASON_ITEM_LIMIT, Result, clip, judge, not_graded
from optbook.grade.merge import merge
from optbook.grade.report import Cache, write_reports
from optbook.grade.run import Limits, kernel_env, run_notebook

GRADER_VERSION = "6"  # part of the cache key: bump when grading semantics change (6: setsid refused)
SANDBOXED, UNSANDBOXED = "bubblewrap", "none (--no-sandbox)"
CHECKOUT = Path(__file__).resolve().parents[3]   # the repository: lib/optbook/grade/pipeline.py


@dataclass
class Options:
    submissions: Path
    out: Path
    exercises: Path = CHECKOUT / "exercises"
    hidden: Path = CHECKOUT / "solutions" / "hidden"  # the checks files
    jobs: int = os.cpu_count() or 1
    limits: Limits = field(default_factory=Limits)
    feedback_dir: Path | None = None  # default: <out's stem>-feedback/ next to out
    cache_dir: Path | None = None  # default: <out's folder>/.<out's stem>-cache
    prose: Path | None = None  # default: <out's stem>-prose.csv next to out
    use_cache: bool = True
    sandbox: bool = True  # False: --no-sandbox, written in every row
    data: list[Path] = field(default_factory=list)  # read-only folders the kernel may read
    quiet: bool = False
    gradescope: Path | None = None  # also DIR/<student>/results.json (optbook.grade.gradescope)
    gradescope_visibility: str = "after_due_date"  # of the hidden checks on Gradescope
    canvas: Path | None = None  # Canvas's gradebook export: also <out stem>-canvas.csv
    only: list[str] = field(default_factory=list)  # --exercise: grade only these (default: all)

    def __post_init__(self):
        self.feedback_dir = self.feedback_dir or self.out.with_name(f"{self.out.stem}-feedback")
        self.cache_dir = self.cache_dir or self.out.parent / f".{self.out.stem}-cache"
        self.prose = self.prose or self.out.with_name(f"{self.out.stem}-prose.csv")

    @property
    def mode(self) -> str:
        return SANDBOXED if self.sandbox else UNSANDBOXED


@dataclass
class GradeRun:
    results: list[Result]
    executed: int  # notebooks run this time
    cached: int  # results taken from the cache
    prose: list[tuple[str, str, str, str]]  # student, exercise, answer id, text
    sandbox_start: float | None = None  # seconds bubblewrap adds to starting a process
    kernel_starts: list[float] = field(default_factory=list)  # seconds to each kernel's first reply
    canvas: object | None = None  # optbook.grade.canvas.CanvasUpload, with --canvas


@dataclass
class Job:
    student: str
    exercise: Exercise
    answers: dict[str, str]
    notes: list[str]
    key: str


def grade(options: Options) -> GradeRun:
    """Grade every (student, exercise) under ``options.submissions`` and write the reports.

    SystemExit with a message that says what to install when no sandbox can start (and
    ``options.sandbox`` is on)."""
    exercises = load_exercises(options.exercises, options.hidden)
    if not exercises:
        raise SystemExit(f"no exercise notebooks in {options.exercises}")
    known = set(exercises)  # a notebook of another exercise is not "unknown", only not graded now
    if options.only:  # --exercise
        unknown = sorted(set(options.only) - known)
        if unknown:
            raise SystemExit(f"--exercise {', '.join(unknown)}: no such notebook in {options.exercises} "
                             f"(there are: {', '.join(exercises)})")
        exercises = {e: exercises[e] for e in exercises if e in options.only}
    for exercise_id in exercises:
        if not (options.hidden / f"{exercise_id}.py").exists() and not options.quiet:
            print(f"warning: {options.hidden / exercise_id}.py not found: no checks", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="optbook-grade-", ignore_cleanup_errors=True) as workspace:
        workspace = Path(workspace)
        config, start_cost = prepare_sandbox(options, workspace)
        submissions, rejections, students = discover(options.submissions, known)
        submissions = [s for s in submissions if s.exercise in exercises]
        rejections = [r for r in rejections if r.exercise in exercises or r.exercise not in known]
        by_pair = {(s.student, s.exercise): s for s in submissions}
        cache = Cache(options.cache_dir if options.use_cache else None)
        results = [not_graded(r.name, None, r.exercise, "rejected", f"rejected {r.name!r}: {r.why}", options.mode)
                   for r in rejections]
        jobs, prose, cached = [], [], 0
        rejected_pairs = {(r.name, r.exercise) for r in rejections}
        for student in students:
            for exercise_id, exercise in exercises.items():
                if (student, exercise_id) in rejected_pairs:
                    continue  # its row says why
                kind, outcome = _prepare(student, exercise_id, exercise, by_pair.get((student, exercise_id)),
                                         options, cache, prose)
                if kind == "run":
                    jobs.append(outcome)
                else:
                    results.append(outcome)
                    cached += kind == "cached"
        ran, kernel_starts = _run_jobs(jobs, options, cache, config, workspace)
    results += ran
    results.sort(key=lambda r: (r.student, r.exercise, r.reason))
    write_reports(results, prose, students, options.out, options.feedback_dir, options.prose)
    run = GradeRun(results, len(jobs), cached, prose, start_cost, kernel_starts)
    write_lms(run, options)
    return run


def write_lms(run: GradeRun, options: Options) -> None:
    """The grades for Gradescope and Canvas, when asked for."""
    from optbook.grade import canvas, gradescope

    if options.gradescope:
        gradescope.write_results(run.results, options.gradescope, options.gradescope_visibility)
    if options.canvas:
        run.canvas = canvas.write_canvas(run.results, options.canvas, options.out)


def prepare_sandbox(options: Options, workspace: Path) -> tuple[Path | None, float | None]:
    """The sandbox config every kernel of this run uses, after one trial start; or
    (None, None) with ``--no-sandbox``."""
    if not options.sandbox:
        return None, None
    data = list(options.data)
    if os.environ.get("OPTBOOK_MNIST_DIR"):
        data.append(Path(os.environ["OPTBOOK_MNIST_DIR"]))
    protected = [options.hidden, options.submissions, options.out, options.feedback_dir, options.cache_dir,
                 options.prose, workspace] + [p for p in (options.gradescope, options.canvas) if p]
    try:
        config = sandbox.plan(data=data, protected=protected, env=kernel_env(grading=True),
                              scratch_mb=options.limits.scratch_mb, rlimits=options.limits.rlimits())
        cost = sandbox.try_start(config)
    except sandbox.SandboxUnavailable as exc:
        raise SystemExit(f"python -m optbook.grade: {exc}") from None
    if not options.quiet:
        print(f"sandbox: bubblewrap ({config.bwrap}); starting a process in it costs {1000 * cost:.0f} ms more",
              file=sys.stderr)
    return config.write(workspace / "sandbox.json"), cost


def _prepare(student: str, exercise_id: str, exercise: Exercise | str, submission: Submission | None,
             options: Options, cache: Cache, prose: list) -> tuple[str, Result | Job]:
    """("done", Result) for missing/malformed/broken, ("cached", Result), or ("run", Job)."""
    if isinstance(exercise, str):
        return "done", not_graded(student, None, exercise_id, "error", exercise, options.mode)
    if submission is None:
        return "done", not_graded(student, exercise, exercise_id, "missing", "no submission", options.mode,
                                  "no submission")
    try:
        answers, notes = read_answers(submission.path, exercise)
    except MalformedSubmission as exc:
        return "done", not_graded(student, exercise, exercise_id, "malformed", f"malformed: {exc}", options.mode)
    except Exception as exc:  # noqa: BLE001 - a file no rule above foresaw: its row, never a crash of the run
        return "done", not_graded(student, exercise, exercise_id, "malformed",
                                  f"malformed: cannot be read ({type(exc).__name__})", options.mode)
    prose.extend((student, exercise_id, i, answers[i]) for i in exercise.prose_ids if i in answers)
    key = cache_key(exercise, answers, options.limits, options.mode)
    hit = cache.get(student, exercise_id, key)
    if hit is not None:
        return "cached", hit
    return "run", Job(student, exercise, answers, notes, key)


def _run_jobs(jobs: list[Job], options: Options, cache: Cache, config: Path | None,
              workspace: Path) -> tuple[list[Result], list[float]]:
    results, starts = [], []
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(_run_job, job, options, config, workspace): job for job in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            job = futures[future]
            result, start = future.result()
            cache.put(job.key, result)
            results.append(result)
            starts += [start] if start is not None else []
            if not options.quiet:
                print(f"[{done}/{len(jobs)}] {job.student} {job.exercise.id}: {result.points}/{result.max_points} "
                      f"{result.status}", file=sys.stderr, flush=True)
    return results, starts


def _run_job(job: Job, options: Options, config: Path | None, workspace: Path,
             attempts: int = 2) -> tuple[Result, float | None]:
    """Grade one pair; a problem on the grader's side (e.g. a kernel that did not start on
    a busy machine) is retried once, then recorded as an ``error`` row."""
    for _attempt in range(attempts):
        start = None
        try:
            result, start = grade_pair(job.student, job.exercise, job.answers, job.notes, options.limits, config,
                                       options.mode, workspace)
        except Exception as exc:  # noqa: BLE001 - loses nothing: the pair gets an error row
            reason = clip(f"grader error: {type(exc).__name__}: {exc}", REASON_ITEM_LIMIT)
            result = not_graded(job.student, job.exercise, job.exercise.id, "error", reason, options.mode)
        if result.status != "error":
            break
    return result, start


def grade_pair(student: str, exercise: Exercise, answers: dict[str, str], notes: list[str], limits: Limits,
               config: Path | None, mode: str, workspace: Path | None = None) -> tuple[Result, float | None]:
    """Merge, run and judge one submission; also the kernel's start time (seconds)."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix=f"{exercise.id}-", dir=workspace, ignore_cleanup_errors=True) as tmp:
        notebook, roles = merge(exercise, answers)
        path = Path(tmp) / f"{exercise.id}.ipynb"
        nbformat.write(notebook, path)
        run = run_notebook(path, limits, config, grading=True)
    if run.timed_out:
        reason = f"timeout: the notebook ran past the {limits.timeout:g} s wall-clock limit and was killed"
        return not_graded(student, exercise, exercise.id, "timeout", "; ".join(notes + [reason]), mode, reason), None
    if not run.cells:
        last = run.log_tail.strip().splitlines()[-1:] or [""]
        reason = clip(f"no report from nbval (exit code {run.returncode}): {last[0]}", REASON_ITEM_LIMIT)
        return not_graded(student, exercise, exercise.id, "error", reason, mode), None
    return judge(student, exercise, roles, run.cells, notes, limits, mode), run.kernel_start


def cache_key(exercise: Exercise, answers: dict[str, str], limits: Limits, mode: str) -> str:
    """What a cached result depends on: the answers, the exercise and its checks, the
    limits, the sandbox and the grader version."""
    blob = json.dumps({"grader": GRADER_VERSION, "exercise": exercise.fingerprint, "answers": answers,
                       "limits": [float(limits.cell_timeout), float(limits.timeout), limits.memory_mb,
                                  limits.processes, limits.file_mb, limits.scratch_mb], "sandbox": mode},
                      sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
