"""The grader (``optbook.grade``); the student-side check is in ``tests/test_check.py``.

The fixtures in ``tests/grading_fixtures/`` (written by ``make_fixtures.py``) are a tiny
exercise, T-demo (a visible self-check worth 1 point and three hidden checks worth 2 + 3
+ 1, in ``hidden/T-demo.py``), and one sample submission per way a submission can go
wrong.  They are graded once, in parallel, in the sandbox, and every row is checked
exactly.

Then the guarantees, each attacked the way a hostile student would, with submissions
written here: verdicts that cannot be forged (silenced tracebacks, forged replies and
values, stripped assertions), confidentiality (reading the checks, other submissions,
the gradebook), isolation (writing outside, the network, processes that outlive the
kernel, killing the grader, limits), nothing lost (atomic reports, a killed grader
resumes), and where the grader runs (refusal without a sandbox, ``--no-sandbox``).

When the real ``exercises/`` and ``solutions/`` exist, every solution must score full
marks and every unmodified exercise exactly the points of the checks that pass without
answers (found independently: nbclient, no nbval, no sandbox).
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from optbook.grade import checks as checks_mod
from optbook.grade import report, sandbox
from optbook.grade.exercise import ExerciseError, load_exercise
from optbook.grade.find import MalformedSubmission, read_answers
from optbook.grade.judge import CheckResult, Result, judge, judge_value
from optbook.grade.merge import merge
from optbook.grade.pipeline import Options, cache_key, grade
from optbook.grade.run import CellRun, Limits, run_notebook

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "grading_fixtures"
EXERCISES, HIDDEN = FIXTURES / "exercises", FIXTURES / "hidden"
LIMITS = Limits(cell_timeout=10, timeout=90, memory_mb=1024)
JOBS = max(4, os.cpu_count() or 1)
CHECKS = ["t-gd-step-small", "h-step-size", "h-gd-step-array", "h-converges"]
ALL_FAILED = "failed: " + ", ".join(CHECKS)

# student: (points of 7, status, reason)
EXPECTED = {
    "alice": (7, "ok", "all checks passed"),  # correct
    "bob": (5, "ok", "failed: h-step-size"),  # partly wrong
    "carol": (3, "ok", "failed: t-gd-step-small, h-gd-step-array"),  # edited/added test cells, a2 wrong
    "dave": (0, "ok", ALL_FAILED),  # wrong answers + patched np.allclose, math.isclose, abs, helper
    "erin": (5, "cell-timeout", "cell timeout (10 s) in answer a1; failed: h-step-size"),  # infinite loop
    "frank": (5, "ok", "answer a1 raised SystemExit: stopping here; failed: h-step-size"),
    "grace": (0, "kernel-died", f"kernel died in answer a2 (exit code 1); {ALL_FAILED}"),  # os._exit(1)
    "heidi": (0, "malformed", "malformed: invalid JSON (Expecting ',' delimiter at line 2 column 1)"),
    "ivan": (2, "ok", "missing answer cell a2: the template was used; "
                      "failed: t-gd-step-small, h-gd-step-array, h-converges"),
    "judy": (7, "ok", "output truncated in answer a1; all checks passed"),  # prints 50 MB
    # written by the fixture below:
    "kim": (7, "ok", "all checks passed"),  # step_size computed from OPTBOOK_GRADING
    "leo": (5, "ok", "answer a1 raised MemoryError; failed: h-step-size"),  # 2 GB allocation
    "zoe": (0, "ok", ALL_FAILED),  # the pristine exercise, unmodified
}
HEADER = "# YOUR ANSWER (this cell is graded)\n"
CORRECT_A1 = HEADER + "step_size = ALPHA * abs(2 * W0)\n"
CORRECT_A2 = HEADER + "def gd_step(w, lr):\n    return w - lr * 2 * w\n"


def write_submission(path: Path, answers: dict[str, str]) -> None:
    """The pristine T-demo with some answer cells replaced."""
    nb = nbformat.read(EXERCISES / "T-demo.ipynb", as_version=4)
    for cell in nb.cells:
        answer_id = cell.metadata.get("optbook", {}).get("id")
        if cell.metadata["optbook"]["role"] == "answer" and answer_id in answers:
            cell.source = answers[answer_id]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def options(submissions: Path, out: Path, **kw) -> Options:
    kw.setdefault("limits", LIMITS)
    kw.setdefault("hidden", HIDDEN)
    kw.setdefault("exercises", EXERCISES)
    return Options(submissions, out, jobs=JOBS, quiet=True, **kw)


def t_demo() -> object:
    return load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submissions"
    shutil.copytree(FIXTURES / "submissions", subs)
    write_submission(subs / "kim__T-demo.ipynb", {
        "a1": HEADER + "import os\nstep_size = float(os.environ['OPTBOOK_GRADING'])  # '1' when graded\n",
        "a2": CORRECT_A2})
    write_submission(subs / "leo" / "T-demo.ipynb", {
        "a1": HEADER + "hog = bytearray(2_000_000_000)  # 2 GB: over the 1024 MiB limit\nstep_size = 1.0\n",
        "a2": CORRECT_A2})
    shutil.copy(EXERCISES / "T-demo.ipynb", subs / "zoe__T-demo.ipynb")
    opts = options(subs, root / "out" / "gradebook.csv")
    started = time.monotonic()
    run = grade(opts)
    return SimpleNamespace(root=root, subs=subs, options=opts, run=run, seconds=time.monotonic() - started,
                           rows=read_rows(opts.out))


# ------------------------------------------------------------ the sample submissions


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_sample_submission_gets_its_exact_score_and_reason(graded, student):
    points, status, reason = EXPECTED[student]
    row = graded.rows[student]
    assert (row["exercise"], int(row["points"]), int(row["max_points"]), row["status"], row["sandbox"],
            row["reason"]) == ("T-demo", points, 7, status, "bubblewrap", reason)
    failed = reason.rpartition("failed: ")[2].split(", ") if "failed: " in reason else []
    if status == "malformed":
        failed = CHECKS
    assert row["checks"] == " ".join(f"{c}:{'fail' if c in failed else 'pass'}" for c in CHECKS)


def test_one_row_per_submission_and_all_run_in_parallel(graded):
    assert sorted(graded.rows) == sorted(EXPECTED)
    with open(graded.options.out, encoding="utf-8") as f:
        assert f.readline().strip() == "student,exercise,points,max_points,status,sandbox,reason,checks"
    assert (graded.run.executed, graded.run.cached) == (12, 0)  # heidi's file is never run
    starts = sorted(graded.run.kernel_starts)
    print(f"12 notebooks graded in {graded.seconds:.1f} s; sandbox start {1000 * graded.run.sandbox_start:.0f} ms, "
          f"kernel start median {starts[len(starts) // 2]:.2f} s")


def test_monkeypatching_the_kernel_earns_nothing(graded):
    """dave patches np.allclose, math.isclose, builtins.abs and the notebook's helper, and
    shadows isinstance: all in the kernel, where no verdict is reached."""
    assert graded.rows["dave"]["points"] == "0"
    assert "AssertionError" not in graded.rows["dave"]["reason"]


def test_tampered_test_cells_change_nothing(graded):
    # carol edited the visible test to `assert True` and added a 100-point "h-step-size" cell
    row = graded.rows["carol"]
    assert (row["points"], row["max_points"]) == ("3", "7")


def test_memory_hog_is_stopped_by_the_limit_not_by_the_machine():
    # the same allocation succeeds without the limit (untouched pages cost nothing)
    ok = subprocess.run([sys.executable, "-c", "hog = bytearray(2_000_000_000)"], capture_output=True)
    assert ok.returncode == 0


def test_feedback_says_in_words_what_failed_but_never_shows_check_code_or_references(graded):
    feedback = graded.options.feedback_dir
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(EXPECTED)
    checks_code = [line.strip() for line in (HIDDEN / "T-demo.py").read_text().splitlines()
                   if len(line.strip()) > 10 and not line.strip().startswith(("#", '"', "assert", '"""'))]
    for path in feedback.glob("*.md"):
        text = path.read_text()
        assert not [line for line in checks_code if line in text], path.name
        assert "4.0" not in text and "-1.6" not in text  # the reference step
    dave = (feedback / "dave.md").read_text()
    assert "gd_step must work elementwise on NumPy arrays: w − lr·f′(w)" in dave
    assert "## T-demo: 0/7 points" in dave
    frank = (feedback / "frank.md").read_text()
    assert "NameError: name 'step_size' is not defined" in frank
    assert "- answer a1 raised SystemExit: stopping here" in frank
    ivan = (feedback / "ivan.md").read_text()
    assert "NotImplementedError: write one gradient-descent step for f(w) = w²" in ivan
    grace = (feedback / "grace.md").read_text()
    assert "not run: the kernel had died earlier" in grace
    erin = (feedback / "erin.md").read_text()
    assert "| h-gd-step-array | hidden | 3/3 | passed |" in erin
    assert "| t-gd-step-small | visible | 1/1 | passed |" in erin


def test_long_messages_are_truncated_in_feedback_and_cannot_break_out_of_their_block():
    result = Result("x", "T-demo", 0, 1, "ok", "r", [CheckResult("t", 0, 1, True, False, "E: " + "y" * 9000)])
    text = report.feedback_markdown("x", [result])
    assert len(text) < 1000 and "… (truncated)" in text
    sneaky = Result("x", "T-demo", 0, 1, "ok", "r", [CheckResult("t", 0, 1, True, False, "a ``` b\n# Grade: A")])
    text = report.feedback_markdown("x", [sneaky])
    assert "  ````text\n  a ``` b\n  # Grade: A\n  ````" in text


def test_prose_answers_are_collected_for_manual_grading(graded):
    with open(graded.options.prose, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    alice = [r for r in rows if r["student"] == "alice"]
    assert alice == [{"student": "alice", "exercise": "T-demo", "answer_id": "a3",
                      "text": "Each step multiplies w by 1 − 2α = −2, so |w| doubles every step."}]
    assert "heidi" not in {r["student"] for r in rows}  # malformed


# ------------------------------------------------------------------------- resume


def cli(subs: Path, out: Path, *extra: str, cwd: Path, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optbook.grade", str(subs), "--out", str(out), "--exercises", str(EXERCISES),
         "--hidden", str(HIDDEN), "--cell-timeout", "10", "--timeout", "90", "--memory-mb", "1024", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env, **kw)


def test_rerun_resumes_from_the_cache_without_running_anything(graded):
    before = graded.options.out.read_text()
    out, err = cli(graded.subs, graded.options.out, cwd=graded.root).communicate()
    assert f"13 results (0 executed, 12 from cache, 0 errors) -> {graded.options.out}" in out, err
    assert graded.options.out.read_text() == before


def test_a_changed_submission_is_regraded(graded, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(graded.subs, subs)
    cache = tmp_path / "cache"
    shutil.copytree(graded.options.cache_dir, cache)
    write_submission(subs / "bob__T-demo.ipynb", {"a1": CORRECT_A1, "a2": CORRECT_A2})
    nb = nbformat.read(subs / "alice" / "T-demo.ipynb", as_version=4)
    nb.cells[0].source += "\n\nA note of mine (not an answer cell)."
    nbformat.write(nb, subs / "alice" / "T-demo.ipynb")  # changes no answer: still cached
    run = grade(options(subs, tmp_path / "gradebook.csv", cache_dir=cache))
    assert (run.executed, run.cached) == (1, 11)
    bob = next(r for r in run.results if r.student == "bob")
    assert (bob.points, bob.status, bob.reason) == (7, "ok", "all checks passed")


def test_cache_key_depends_on_answers_exercise_limits_and_sandbox():
    exercise = t_demo()
    answers = {"a1": "step_size = 1.0", "a2": "", "a3": ""}
    key = cache_key(exercise, answers, LIMITS, "bubblewrap")
    assert key == cache_key(exercise, dict(answers), LIMITS, "bubblewrap")
    assert key != cache_key(exercise, {**answers, "a1": "step_size = 1"}, LIMITS, "bubblewrap")
    assert key != cache_key(exercise, answers, Limits(11, 90, 1024), "bubblewrap")
    assert key != cache_key(exercise, answers, LIMITS, "none (--no-sandbox)")
    changed = type(exercise)(**{**exercise.__dict__, "fingerprint": "other"})
    assert key != cache_key(changed, answers, LIMITS, "bubblewrap")


def test_the_fingerprint_covers_the_checks_file(tmp_path):
    (tmp_path / "T-demo.py").write_text((HIDDEN / "T-demo.py").read_text().replace("abs(w) < 1e-6", "abs(w) < 1e-7"))
    assert load_exercise(EXERCISES / "T-demo.ipynb", tmp_path).fingerprint != t_demo().fingerprint


# -------------------------------------------------------------- limits and floods


def test_wall_clock_timeout_kills_the_notebook_and_everything_it_started(tmp_path):
    marker = f"{time.time_ns() % 10**6 + 1000}.5"
    write_submission(tmp_path / "subs" / "erin__T-demo.ipynb", {
        "a1": HEADER + f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], process_group=0)\n"
                       "step_size = 0.0\nwhile step_size != 1.0:\n    step_size += ALPHA\n"})
    started = time.monotonic()
    run = grade(options(tmp_path / "subs", tmp_path / "gradebook.csv",
                        limits=Limits(cell_timeout=60, timeout=6, memory_mb=1024)))
    assert time.monotonic() - started < 30
    (result,) = run.results
    assert (result.points, result.status, result.reason) == (
        0, "timeout", "timeout: the notebook ran past the 6 s wall-clock limit and was killed")
    assert all(c.message == result.reason for c in result.checks)
    assert f"sleep {marker}" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_huge_error_messages_and_outputs_are_capped_in_the_report(tmp_path):
    """A plain kernel (as in optbook.check) without the grader's output cap: the plugin
    still caps what it keeps and notes the flood."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('raise ValueError("x" * 5_000_000)'),
                nbformat.v4.new_code_cell('print("y" * 3_000_000)')]
    nbformat.write(nb, tmp_path / "flood.ipynb")
    run = run_notebook(tmp_path / "flood.ipynb", LIMITS)
    assert (tmp_path / "report.json").stat().st_size < 50_000
    assert run.cells[0].ename == "ValueError" and len(run.cells[0].evalue) < 2100
    assert (run.cells[1].passed, run.cells[1].output_truncated) == (True, True)


# --------------------------------------------------------------- names and files


def test_path_tricks_odd_names_and_unknown_exercises_are_rejected_with_a_row(tmp_path):
    subs = tmp_path / "subs"
    alice = FIXTURES / "submissions" / "alice" / "T-demo.ipynb"
    (subs / "quinn").mkdir(parents=True)
    (subs / "quinn" / "notes.txt").write_text("no notebook here")
    (subs / "mallory").symlink_to(FIXTURES / "submissions" / "alice", target_is_directory=True)
    (subs / "oscar").mkdir()
    (subs / "oscar" / "T-demo.ipynb").symlink_to(alice)
    (subs / ".ipynb_checkpoints").mkdir()
    (subs / "peggy").mkdir()
    shutil.copy(alice, subs / "peggy" / "X-unknown.ipynb")
    (subs / "rupert").mkdir()
    for name in ("rupert/T-demo.ipynb", "rupert__T-demo.ipynb", "bad name__T-demo.ipynb",
                 "a__b__T-demo.ipynb", "nosep.ipynb", "-x__T-demo.ipynb", "ålice__T-demo.ipynb"):
        shutil.copy(alice, subs / name)
    run = grade(options(subs, tmp_path / "out" / "gradebook.csv"))
    rows = [(r.student, r.exercise, r.status, r.reason) for r in run.results]
    assert rows == [
        ("-x", "T-demo", "rejected",
         "rejected '-x': student names may only use letters, digits, '.', '_' and '-'"),
        ("\\xe5lice", "T-demo", "rejected",
         "rejected '\\\\xe5lice': student names may only use letters, digits, '.', '_' and '-'"),
        ("a__b", "T-demo", "rejected",
         "rejected 'a__b': student names may only use letters, digits, '.', '_' and '-'"),
        ("bad name", "T-demo", "rejected",
         "rejected 'bad name': student names may only use letters, digits, '.', '_' and '-'"),
        ("mallory", "?", "rejected", "rejected 'mallory': symbolic links are not accepted"),
        ("nosep.ipynb", "?", "rejected", "rejected 'nosep.ipynb': expected <student>__<exercise>.ipynb"),
        ("oscar", "T-demo", "rejected",
         "rejected 'oscar': not a regular file (symbolic links are not accepted)"),
        ("peggy", "T-demo", "missing", "no submission"),
        ("peggy", "X-unknown", "rejected", "rejected 'peggy': unknown exercise"),
        ("quinn", "T-demo", "missing", "no submission"),
        ("rupert", "T-demo", "rejected",
         "rejected 'rupert': two submissions (rupert/T-demo.ipynb and rupert__T-demo.ipynb)"),
    ]
    assert run.executed == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.md"))
    assert written == [f"gradebook-feedback/{name}.md" for name in ("oscar", "peggy", "quinn", "rupert")]


def test_malformed_files_are_named_precisely(tmp_path):
    exercise = t_demo()
    cases = {b"[1, 2]": "not a Jupyter notebook (no list of cells)",
             b"\xff\xfe": "not UTF-8 text",
             b'{"cells": [], "nbformat": 3}': "not a Jupyter notebook (ValidationError)",
             b"[" * 100_000 + b"]" * 100_000: "invalid JSON (nested too deeply)",
             b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", '
             b'"metadata": {"optbook": {"role": "answer", "id": "a1"}}, "source": {"x": 1}}]}':
                 "answer cell a1: its source is not text"}
    for content, message in cases.items():
        path = tmp_path / "x.ipynb"
        path.write_bytes(content)
        with pytest.raises(MalformedSubmission, match=f"^{message.replace('(', '.').replace(')', '.')}$"):
            read_answers(path, exercise)


def test_duplicated_and_foreign_answer_cells(tmp_path):
    exercise = t_demo()
    nb = nbformat.read(EXERCISES / "T-demo.ipynb", as_version=4)
    a1 = next(c for c in nb.cells if c.metadata["optbook"].get("id") == "a1")
    nb.cells.append(nbformat.v4.new_code_cell("step_size = 2", metadata=dict(a1.metadata)))
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"optbook": {"role": "answer", "id": "zz"}}))
    nbformat.write(nb, tmp_path / "x.ipynb")
    answers, notes = read_answers(tmp_path / "x.ipynb", exercise)
    assert sorted(answers) == ["a1", "a2", "a3"] and answers["a1"].endswith("step_size = ...\n")
    assert notes == ["answer cell a1 appears twice: the first one was used"]


# ------------------------------------------------------------ the merged notebook


def test_merge_takes_only_answers_and_appends_one_probe_per_check():
    exercise = t_demo()
    answers = {"a1": "step_size = 1.0", "a2": "def gd_step(w, lr):\n    return w", "a3": "prose"}
    nb, roles = merge(exercise, answers)
    assert [(r.kind, r.id) for r in roles] == [
        ("grader", None), ("setup", None), ("answer", "a1"), ("answer", "a2"), ("test", "t-gd-step-small"),
        ("probe", "t-gd-step-small"), ("probe", "h-step-size"), ("probe", "h-gd-step-array"),
        ("probe", "h-converges")]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[2].source == "step_size = 1.0"
    assert [c.source for c in nb.cells if c.cell_type == "markdown"][-1] == "prose"
    nonces = [r.nonce for r in roles if r.kind == "probe"]
    assert len(set(nonces)) == 4 and all(len(n) == 32 for n in nonces)
    assert code[7].source == (
        "# optbook grader: the probe of check h-gd-step-array (not part of the exercise)\n"
        "def _optbook_probe():\n    import numpy as np\n    return (\n    gd_step(np.array([5.0, -2.0, 0.0]), 0.1)\n"
        "    )\n"
        f"__import__('optbook.grade.probe', fromlist=['send']).send({nonces[2]!r}, _optbook_probe)\n")
    assert merge(exercise, answers)[1][5].nonce != nonces[0]  # a fresh nonce every run
    assert exercise.max_points == 7


def test_reference_values_never_enter_the_kernel():
    """All the kernel receives is the merged notebook's code cells and its environment:
    no judge's code and none of the values the checks file computes are in them."""
    exercise = t_demo()
    nb, _ = merge(exercise, {"a1": CORRECT_A1, "a2": CORRECT_A2})
    sent = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    sent += json.dumps(sandbox.plan(env=__import__("optbook.grade.run", fromlist=["kernel_env"]).kernel_env(True)).env)
    references = exercise.checks[0].judge.__globals__
    assert repr(references["SECRET_MARK"]) == "0.123456789012345" and "0.123456789" not in sent
    assert [repr(float(v)) for v in references["AFTER_STEP"]] == ["4.0", "-1.6", "0.0"]
    assert "4.0" not in sent and "-1.6" not in sent
    probes = "\n".join(c.source for c in nb.cells if c.metadata["optbook"]["role"] == "probe")
    for name in ("SECRET_MARK", "AFTER_STEP", "STEP_SIZE", "_number", "isclose", "allclose", "assert"):
        assert name not in probes, name  # no judge's code


# -------------------------------------------------------------- the checks files


def checks_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "T-demo.py"
    path.write_text("from optbook.grade.checks import Checks\nchecks = Checks()\n" + textwrap.dedent(body))
    return path


def test_checks_files_are_read_strictly(tmp_path):
    bad = {  # the file's body: the start of the error
        "": "T-demo.ipynb: the visible check t-gd-step-small is worth 1 point but",
        "@checks.add('t-gd-step-small', points=2, probe='gd_step(1.0, 0.25)')\ndef _(v): pass\n":
            "T-demo.ipynb: the visible check t-gd-step-small is worth 1 point in the notebook and 2 in T-demo.py",
        "@checks.add('a', points=1, probe='x = 1')\ndef _(v): pass\n":
            "check a: the probe must end with an expression on a line of its own",
        "@checks.add('a', points=1, probe='x = (1,')\ndef _(v): pass\n": "check a: the probe does not parse",
        "@checks.add('a b', points=1, probe='x')\ndef _(v): pass\n": "'a b' is not a check id",
        "@checks.add('a', points=-1, probe='x')\ndef _(v): pass\n": "check a: points must be a whole number",
        "@checks.add('a', points=1, probe='x')\ndef _(v): pass\n@checks.add('a', points=1, probe='y')\n"
        "def _(v): pass\n": "check a is added twice",
        "1 / 0\n": "T-demo.py:3: the checks file raised ZeroDivisionError: division by zero",
    }
    for body, message in bad.items():
        checks_file(tmp_path, body)
        with pytest.raises(ExerciseError) as error:
            load_exercise(EXERCISES / "T-demo.ipynb", tmp_path)
        assert message in str(error.value), (body, str(error.value))
    (tmp_path / "T-demo.py").write_text("x = 1\n")
    with pytest.raises(ExerciseError, match="no `checks = Checks\\(\\)`"):
        load_exercise(EXERCISES / "T-demo.ipynb", tmp_path)


def test_probes_become_functions_returning_their_last_expression():
    assert checks_mod.probe_function("x = 2\n[x,\n 3]", "f") == "def f():\n    x = 2\n    return (\n    [x,\n     3]\n    )\n"
    namespace = {}
    exec(checks_mod.probe_function("import math\nmath.sqrt(16)", "f"), namespace)
    assert namespace["f"]() == 4.0 and "math" not in namespace  # a probe's names are its own


def test_a_verdict_needs_a_clean_cell_and_exactly_one_value_with_its_nonce():
    exercise = t_demo()
    _, roles = merge(exercise, {})
    probes = {r.id: i for i, r in enumerate(roles) if r.kind == "probe"}
    nonce = roles[probes["h-step-size"]].nonce
    good = CellRun(ran=True, failed=False, nbval="", reply_status="ok", payloads=[{"nonce": nonce, "json": "1.0"}])

    def verdict(run: CellRun) -> tuple[bool, str]:
        cells = {i: CellRun(ran=True, failed=False, nbval="", reply_status="ok") for i in range(len(roles))}
        result = judge("s", exercise, roles, {**cells, probes["h-step-size"]: run}, [], LIMITS, "bubblewrap")
        check = next(c for c in result.checks if c.id == "h-step-size")
        return check.passed, check.message

    other = roles[probes["h-converges"]].nonce
    assert verdict(good) == (True, "")
    assert verdict(CellRun(**{**good.__dict__, "reply_status": "error"})) == (
        False, "the cell ended with status 'error'")  # silenced traceback: nbval saw no error
    assert verdict(CellRun(**{**good.__dict__, "reply_status": "error", "ename": "NameError", "evalue": "x"})) == (
        False, "NameError: x")
    assert verdict(CellRun(**{**good.__dict__, "payloads": []})) == (False, "no value came back from your code")
    assert verdict(CellRun(**{**good.__dict__, "payloads": [{"nonce": other, "json": "1.0"}]}))[0] is False
    assert verdict(CellRun(**{**good.__dict__, "payloads": good.payloads * 2}))[0] is False
    assert verdict(CellRun(**{**good.__dict__, "payloads": [{"nonce": nonce, "json": "[[[["}]})) == (
        False, "the check received a value it cannot read")
    assert verdict(CellRun(**{**good.__dict__, "payloads": [{"nonce": nonce, "json": "true"}]}))[0] is False
    assert verdict(CellRun(**{**good.__dict__, "payloads": [{"nonce": nonce, "json": "", "too_large": True}]})) == (
        False, "the value your code gave is too large to check")
    assert verdict(CellRun(**{**good.__dict__, "payloads": [{"nonce": nonce, "json": "2.0"}]})) == (
        False, "step_size should be α·|f′(w₀)| = α·|2·w₀| for the given W0 and ALPHA")
    assert verdict(CellRun())[1] == "not run"


def test_no_check_of_the_fixture_accepts_an_empty_or_trivial_value():
    """(0 is no such value here: it is where h-converges's 200 steps end, to 1e-6.)"""
    for check in t_demo().checks:
        for value in (None, "", [], [[]], {}, [None, None, None], True, "0.5"):
            assert judge_value(check, value)[0] is False, (check.id, value)


def test_a_judge_that_chokes_on_a_value_says_so_without_its_details(tmp_path):
    checks_file(tmp_path, """
        REF = [1.0, 2.0, 3.0]
        @checks.add('t-gd-step-small', points=1, probe='gd_step(1.0, 0.25)')
        def _(v):
            if len(v) != len(REF):
                raise ValueError(f"shapes {len(v)} and {REF} differ")
        """)
    exercise = load_exercise(EXERCISES / "T-demo.ipynb", tmp_path)
    _, roles = merge(exercise, {})
    cells = {i: CellRun(ran=True, failed=False, nbval="", reply_status="ok",
                        payloads=[{"nonce": r.nonce, "json": "[1]"}] if r.nonce else []) for i, r in enumerate(roles)}
    (check,) = judge("s", exercise, roles, cells, [], LIMITS, "bubblewrap").checks
    assert check.message == "the check could not use the value your code gave (ValueError)"


def test_values_are_sent_as_plain_data_only():
    import numpy as np
    import torch

    from optbook.grade.probe import plain

    assert plain({"a": (1, np.float64(2.5), np.array([[1, 2]]), torch.tensor([0.5]), None, True, "s")}) == {
        "a": [1, 2.5, [[1, 2]], [0.5], None, True, "s"]}
    for value, message in ((object(), "type object cannot be sent"), ({1: 2}, "keys that are not strings"),
                           (np.zeros(5_000_000), "too large")):
        with pytest.raises((TypeError, ValueError), match=message):
            plain(value)


# The student's check (optbook.check) is tested in tests/test_check.py.


# ====================================================== hostile students, in one run
#
# Each submission below attacks one guarantee.  They are graded together, in the
# sandbox, next to an honest one, with copies of the exercise and checks (so that a
# failing sandbox could damage nothing but copies).

MARK = f"optbook-hostile-{os.getpid()}-{time.time_ns() % 10**8}"
SILENCE = """\
ip = get_ipython()
quiet = lambda *args, **kwargs: None
ip.showtraceback = ip._showtraceback = ip.showsyntaxerror = quiet
type(ip).showtraceback = type(ip)._showtraceback = quiet
"""


def hostile_submissions(ctx: SimpleNamespace) -> dict[str, dict[str, str]]:
    """student: answers.  ``ctx`` names what the attacks aim at."""
    secrets = [ctx.hidden / "T-demo.py", ctx.subs / "honest" / "T-demo.ipynb", ctx.out, ctx.out.parent,
               ROOT / "solutions" / "hidden", ROOT / "tests" / "grading_fixtures" / "hidden" / "T-demo.py"]
    return {
        "honest": {"a1": CORRECT_A1, "a2": CORRECT_A2},
        # nbgrader#1324: blank answers, tracebacks silenced (nbval alone sees no error)
        "silencer": {"a1": HEADER + SILENCE + "step_size = ...\n"},
        # ... and every execute_reply forged to "ok"
        "replier": {"a1": HEADER + SILENCE + textwrap.dedent("""\
            import ipykernel.ipkernel as k
            real = k.IPythonKernel.do_execute
            async def do_execute(self, *args, **kwargs):
                reply = await real(self, *args, **kwargs)
                return {"status": "ok", "execution_count": reply.get("execution_count", 0),
                        "user_expressions": {}, "payload": []}
            k.IPythonKernel.do_execute = do_execute
            step_size = ...
            """)},
        # assertions stripped from every cell: the visible self-check "passes" in the kernel
        "stripper": {"a1": HEADER + textwrap.dedent("""\
            import ast
            class NoAsserts(ast.NodeTransformer):
                def visit_Assert(self, node):
                    return ast.Pass()
            get_ipython().ast_transformers.append(NoAsserts())
            step_size = ...
            """)},
        # the probes' sender replaced: a made-up value with the right nonce, for every check
        "forger": {"a1": HEADER + textwrap.dedent("""\
            import optbook.grade.probe as p
            from IPython.display import display
            def send(nonce, probe):
                display({p.MIME: {"nonce": nonce, "json": "true"}}, raw=True)
            p.send = send
            step_size = ...
            """)},
        # ... and a flood of values, for whatever nonce
        "flooder": {"a1": HEADER + textwrap.dedent("""\
            import optbook.grade.probe as p
            from IPython.display import display
            def send(nonce, probe):
                for value in ("0.5", "1.0", "[4.0, -1.6, 0.0]", "1e-9", "true"):
                    display({p.MIME: {"nonce": nonce, "json": value}}, raw=True)
            p.send = send
            step_size = ...
            """)},
        # ... and values far too large, to swamp the grader's memory
        "hoarder": {"a1": HEADER + textwrap.dedent("""\
            import optbook.grade.probe as p
            from IPython.display import display
            def send(nonce, probe):
                display({p.MIME: {"nonce": nonce, "json": "[" + "0," * 17_000_000 + "0]"}}, raw=True)
            p.send = send
            step_size = ...
            """)},
        # reads the checks, another student's work, the gradebook: the right step_size only if it could
        "reader": {"a1": HEADER + textwrap.dedent(f"""\
            import glob, os, pathlib
            import optbook
            targets = {[str(s) for s in secrets]!r}
            targets += [str(pathlib.Path(optbook.__file__).parents[2] / "solutions" / "hidden")]
            targets += glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline")
            found = []
            for target in targets:
                try:
                    if os.path.isdir(target):
                        found += os.listdir(target)
                    else:
                        with open(target, "rb") as f:
                            data = f.read()
                        if b"optbook.grade" in data or b"SECRET_MARK" in data or b"gd_step" in data:
                            found.append(target)
                except OSError:
                    pass
            step_size = ALPHA * abs(2 * W0) if found else 0.0
            """), "a2": CORRECT_A2},
        # writes everywhere, leaves files and a detached process behind, phones home
        "vandal": {"a1": HEADER + textwrap.dedent(f"""\
            import os, socket, subprocess, sys
            for path in {[str(p) for p in ctx.vandal_targets]!r}:
                try:
                    with open(path, "a") as f:
                        f.write({MARK!r})
                except OSError:
                    pass
            for folder in ("/tmp", os.path.expanduser("~"), "/var/tmp", "/dev/shm"):
                try:
                    open(os.path.join(folder, {MARK!r}), "w").write("x")
                except OSError:
                    pass
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); "
                              "open({str(ctx.late)!r}, 'w').write('too late')", {MARK!r}],
                             process_group=0, env={{}}, stdin=subprocess.DEVNULL,  # (a session: refused)
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                socket.create_connection(("127.0.0.1", {ctx.port}), timeout=2).sendall(b"secret")
            except OSError:
                pass
            step_size = ALPHA * abs(2 * W0)
            """), "a2": CORRECT_A2},
        # kills everything it can see, the grader by its PID included
        "killer": {"a1": HEADER + textwrap.dedent(f"""\
            import os, signal
            for pid in [{os.getpid()}, os.getppid(), -1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
                if pid not in (0, os.getpid()):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
            step_size = ALPHA * abs(2 * W0)
            """), "a2": CORRECT_A2},
        # replaces its ZeroMQ socket files by links to a host socket, then breaks the connections
        # (so that a client that reconnects would follow the links out of the sandbox)
        "hijacker": {"a1": HEADER + textwrap.dedent(f"""\
            import gc, os, time, zmq
            folder = os.path.dirname(os.environ["HOME"])
            for name in os.listdir(folder):
                if name.startswith("kernel-"):
                    os.unlink(os.path.join(folder, name))
                    os.symlink({str(ctx.host_socket)!r}, os.path.join(folder, name))
            for thing in gc.get_objects():
                if isinstance(thing, zmq.Socket):
                    thing.close(linger=0)
            time.sleep(25)
            """), "a2": CORRECT_A2},
        # its kernel's messages carry a lone surrogate (JSON "\\ud800"), which no UTF-8 report can hold:
        # the run must not stop before anyone's gradebook row and feedback are written
        "unicoder": {"a1": CORRECT_A1 + textwrap.dedent("""\
            import json
            from jupyter_client.jsonutil import json_default
            get_ipython().kernel.session.pack = lambda o: json.dumps(o, default=json_default).encode()
            raise ValueError("bad \\ud800 value")
            """), "a2": CORRECT_A2},
        # a fork bomb in the background, then correct answers
        "bomber": {"a1": HEADER + textwrap.dedent("""\
            import subprocess, sys
            subprocess.Popen([sys.executable, "-c", "import os, time\\nwhile True:\\n    try:\\n        os.fork()\\n"
                              "    except OSError:\\n        time.sleep(1)"], process_group=0)
            step_size = ALPHA * abs(2 * W0)
            """), "a2": CORRECT_A2},
    }


HOSTILE = {  # student: (points of 7, status)
    "honest": (7, "ok"), "silencer": (0, "ok"), "replier": (0, "ok"), "stripper": (0, "ok"),
    "forger": (0, "ok"), "flooder": (0, "ok"), "hoarder": (0, "ok"), "reader": (5, "ok"), "vandal": (7, "ok"), "killer": (7, "ok"),
    "bomber": (7, "ok"), "hijacker": (None, None), "unicoder": (7, "ok"),
    # files written by the fixture: a prose answer with a lone surrogate, JSON nested past Python's recursion
    # limit, a cell whose metadata is not a dict, an answer whose source is not text
    "surrogate": (7, "ok"), "nested": (0, "malformed"), "oddmeta": (7, "ok"), "notext": (0, "malformed"),
}
ODD_FILES = {  # student: what the fixture does to an honest T-demo notebook (as JSON)
    "surrogate": lambda nb: next(c for c in nb["cells"] if c["metadata"]["optbook"].get("id") == "a3").update(
        source="damping \ud800 answer"),
    "oddmeta": lambda nb: nb["cells"][0].update(metadata="not a dict"),
    "notext": lambda nb: next(c for c in nb["cells"] if c["metadata"]["optbook"].get("id") == "a1").update(
        source=[1, 2]),
}


def write_odd_files(subs: Path) -> None:
    """The hostile files that are not notebooks nbformat would write (see ODD_FILES)."""
    for student, change in ODD_FILES.items():
        write_submission(subs / student / "T-demo.ipynb", {"a1": CORRECT_A1, "a2": CORRECT_A2})
        nb = json.loads((subs / student / "T-demo.ipynb").read_text())
        change(nb)
        (subs / student / "T-demo.ipynb").write_text(json.dumps(nb))  # ASCII: the surrogate as "\ud800"
    (subs / "nested" / "T-demo.ipynb").parent.mkdir(parents=True)
    (subs / "nested" / "T-demo.ipynb").write_text("[" * 100_000 + "]" * 100_000)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    exercises, hidden = root / "exercises", root / "hidden"
    shutil.copytree(EXERCISES, exercises)
    shutil.copytree(HIDDEN, hidden)
    venv_site = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    ctx = SimpleNamespace(root=root, subs=root / "subs", out=root / "out" / "gradebook.csv", hidden=hidden,
                          late=root / "late.txt", port=0, host_socket=root / "host.sock")
    ctx.vandal_targets = [exercises / "T-demo.ipynb", hidden / "T-demo.py", ctx.out,
                          ROOT / "lib" / "optbook" / f"{MARK}.py", venv_site / f"{MARK}.pth",
                          ctx.subs / "honest" / "T-demo.ipynb"]
    listener = socket.create_server(("127.0.0.1", 0))
    ctx.port = listener.getsockname()[1]
    host_listener = socket.socket(socket.AF_UNIX)
    host_listener.bind(str(ctx.host_socket))
    host_listener.listen()
    ctx.host_socket.chmod(0o777)
    connections, closing = [], threading.Event()

    def accept(server):
        server.settimeout(0.2)
        while not closing.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                continue

    threads = [threading.Thread(target=accept, args=(server,), daemon=True) for server in (listener, host_listener)]
    for thread in threads:
        thread.start()
    for student, answers in hostile_submissions(ctx).items():
        write_submission(ctx.subs / student / "T-demo.ipynb", answers)
    write_odd_files(ctx.subs)
    before = {p: p.read_bytes() for p in (exercises / "T-demo.ipynb", hidden / "T-demo.py",
                                           ctx.subs / "honest" / "T-demo.ipynb")}
    opts = options(ctx.subs, ctx.out, exercises=exercises, hidden=hidden)
    run = grade(opts)
    finished, gradebook = time.monotonic(), ctx.out.read_bytes()
    time.sleep(max(0.0, 4 - (time.monotonic() - finished)))  # the detached process would write by now
    closing.set()
    for thread in threads:
        thread.join(2)
    listener.close()
    host_listener.close()
    for target in ctx.vandal_targets[3:5]:  # had the sandbox failed: the test fails below, but cleans up
        if target.exists():
            ctx.left = target.read_bytes()
            target.unlink()
    return SimpleNamespace(ctx=ctx, run=run, rows=read_rows(ctx.out), before=before, connections=connections,
                           gradebook=gradebook, options=opts, exercises=exercises, hidden=hidden)


@pytest.mark.parametrize("student", sorted(HOSTILE))
def test_hostile_submissions_get_what_their_answers_earn_and_nothing_more(hostile, student):
    points, status = HOSTILE[student]
    row = hostile.rows[student]
    if points is None:  # its kernel no longer answers: whatever the row says, it is there
        points, status = int(row["points"]), row["status"]
    assert (int(row["points"]), row["status"], row["sandbox"]) == (points, status, "bubblewrap"), row["reason"]


def test_silenced_tracebacks_do_not_pass_a_check(hostile):
    """nbgrader#1324: nbval itself sees no error in a cell whose traceback display is
    silenced; the kernel's reply still says ``error``, and a check needs a value."""
    assert hostile.rows["silencer"]["reason"] == ALL_FAILED
    feedback = (hostile.options.feedback_dir / "silencer.md").read_text()
    assert "TypeError: the value is still ..., the template's placeholder" in feedback  # from the reply
    exercise = load_exercise(hostile.exercises / "T-demo.ipynb", hostile.hidden)
    notebook, roles = merge(exercise, {"a1": HEADER + SILENCE + "step_size = ...\n"})
    folder = hostile.ctx.root / "silencer-run"
    folder.mkdir()
    nbformat.write(notebook, folder / "T-demo.ipynb")
    config = sandbox.plan().write(folder / "sandbox.json")
    run = run_notebook(folder / "T-demo.ipynb", LIMITS, config)
    probe = next(i for i, r in enumerate(roles) if r.id == "h-gd-step-array" and r.kind == "probe")
    assert (run.cells[probe].failed, run.cells[probe].reply_status, run.cells[probe].ename) == (
        False, "error", "NotImplementedError")  # nbval: passed; the reply: error


def test_forged_replies_values_and_stripped_asserts_score_nothing(hostile):
    for student in ("replier", "forger", "flooder", "stripper"):
        assert hostile.rows[student]["reason"] == ALL_FAILED, student
    feedback = {s: (hostile.options.feedback_dir / f"{s}.md").read_text() for s in ("replier", "forger", "flooder")}
    assert "no value came back from your code" in feedback["replier"]
    assert "step_size should be α·|f′(w₀)|" in feedback["forger"]  # the judge rejected `true`
    assert "the check received an unexpected reply from the kernel" in feedback["flooder"]
    hoarder = (hostile.options.feedback_dir / "hoarder.md").read_text()
    assert hoarder.count("the value your code gave is too large to check") == len(CHECKS)


def test_the_sandbox_hides_checks_submissions_and_reports(hostile, tmp_path):
    """The reader earns h-step-size only if it read something it must not; it does not in
    the sandbox, and does without one (so the attack is real)."""
    assert hostile.rows["reader"]["reason"] == "failed: h-step-size"
    subs = tmp_path / "subs"
    shutil.copytree(hostile.ctx.subs / "reader", subs / "reader")
    run = grade(options(subs, tmp_path / "gradebook.csv", exercises=hostile.exercises, hidden=hostile.hidden,
                        sandbox=False))
    assert [(r.points, r.sandbox) for r in run.results] == [(7, "none (--no-sandbox)")]


def test_the_sandbox_keeps_files_network_and_processes_in(hostile):
    for path, content in hostile.before.items():
        assert path.read_bytes() == content, path
    assert not hasattr(hostile.ctx, "left")  # nothing written into lib/ or the venv
    for target in hostile.ctx.vandal_targets:
        assert not target.exists() or MARK.encode() not in target.read_bytes(), target
    for folder in ("/tmp", os.path.expanduser("~"), "/var/tmp", "/dev/shm"):
        assert not os.path.exists(os.path.join(folder, MARK)), folder
    assert not hostile.ctx.late.exists()
    assert hostile.connections == []  # neither to the host's loopback nor through a hijacked socket file
    assert MARK not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_the_grader_survives_and_its_reports_stay_its_own(hostile):
    assert sorted(hostile.rows) == sorted(HOSTILE)  # the killer took no one down
    feedback = hostile.options.feedback_dir
    assert sorted(p.stem for p in feedback.iterdir()) == sorted(HOSTILE)  # nor did a lone surrogate
    assert "answer a1 raised ValueError: bad \ufffd value" in (feedback / "unicoder.md").read_text()
    assert hostile.rows["nested"]["reason"] == "malformed: invalid JSON (nested too deeply)"
    assert hostile.rows["notext"]["reason"] == "malformed: answer cell a1: its source is not text"
    assert hostile.rows["surrogate"]["reason"] == ("answer cell a3 holds text that is not valid Unicode (lone "
                                                   "surrogates): each was replaced by U+FFFD; all checks passed")
    with open(hostile.options.prose, newline="", encoding="utf-8") as f:
        prose = {row["student"]: row["text"] for row in csv.DictReader(f)}
    assert prose["surrogate"] == "damping \ufffd answer"
    assert hostile.ctx.out.read_bytes() == hostile.gradebook  # nothing rewrote it afterwards
    assert hostile.rows["killer"]["reason"] == "all checks passed"


# ------------------------------------------------------------- the sandbox itself


@pytest.fixture(scope="module")
def box():
    limits = Limits(memory_mb=512, processes=40, file_mb=8, scratch_mb=16)
    return sandbox.plan(protected=[HIDDEN, ROOT / "solutions"], rlimits=limits.rlimits(), scratch_mb=16,
                        env={"OPTBOOK_GRADING": "1"})


def inside(box, code: str) -> dict:
    """Run ``code`` in the sandbox; it ends with ``print(json.dumps(...))``."""
    out = sandbox.run_code(box, textwrap.dedent(code), timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sandbox_identity_processes_and_network(box):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen = inside(box, f"""
        import json, os, socket
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        try:
            os.kill({os.getpid()}, 0)
            grader = "visible"
        except ProcessLookupError:
            grader = "invisible"
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            net = "connected"
        except OSError as exc:
            net = type(exc).__name__
        print(json.dumps({{"uid": os.getuid(), "caps": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip(),
                          "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "grader": grader,
                          "net": net, "ifaces": [n for _, n in socket.if_nameindex()],
                          "env": sorted(os.environ)}}))
        """)
    listener.close()
    assert seen["uid"] != 0 and seen["caps"] == "0000000000000000" and seen["nnp"] == "1"
    assert seen["pids"] == [1] and seen["grader"] == "invisible"
    assert seen["net"] == "ConnectionRefusedError" and seen["ifaces"] == ["lo"]  # its own loopback only
    assert seen["env"] == sorted(["HOME", "TMPDIR", "USER", "LOGNAME", "LANG", "PATH", "PWD", "OPTBOOK_GRADING"])


def test_sandbox_shows_only_what_the_kernel_needs_read_only(box):
    seen = inside(box, f"""
        import json, os, sys
        def writable(path):
            try:
                with open(os.path.join(path, "probe-write"), "w") as f:
                    f.write("x")
                return True
            except OSError:
                return False
        print(json.dumps({{
            "top": sorted(os.listdir("/")),
            "repo": sorted(os.listdir({str(ROOT)!r})),
            "hidden": os.path.exists({str(HIDDEN)!r}) or os.path.exists({str(ROOT / "solutions")!r}),
            "writable": {{p: writable(p) for p in ["/usr", {str(ROOT / "lib")!r}, sys.prefix, "/etc", "/", "/tmp",
                                                   "/dev/shm", os.path.expanduser("~"), "/dev", {str(ROOT)!r}]}},
            "home": os.path.expanduser("~")}}))
        """)
    assert seen["repo"] == [".venv", "lib"] and seen["hidden"] is False
    # the system's directories, plus the top directory that holds the checkout and its venv (/work here, /check in CI)
    holders = {ROOT.parts[1], Path(sys.prefix).resolve().parts[1]}
    assert set(seen["top"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "root", "sbin",
                                "tmp", "usr", "home", "opt"} | holders
    assert seen["writable"] == {"/usr": False, str(ROOT / "lib"): False, sys.prefix: False, "/etc": False,
                                "/": False, "/tmp": True, "/dev/shm": True, seen["home"]: True, "/dev": False,
                                str(ROOT): False}  # only the two size-limited file systems
    assert seen["home"].startswith("/tmp/optbook-kernel-")


def test_sandbox_limits_memory_processes_file_size_and_space(box):
    seen = inside(box, """
        import json, os, resource, time
        out = {name: resource.getrlimit(getattr(resource, name))[0]
               for name in ("RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE")}
        try:
            bytearray(600 * 2**20)
            out["memory"] = "allocated"
        except MemoryError:
            out["memory"] = "MemoryError"
        children = 0
        try:
            for _ in range(200):
                if os.fork() == 0:
                    time.sleep(2)
                    os._exit(0)
                children += 1
        except OSError as exc:
            out["fork"] = [children, exc.errno]
        try:
            with open("/tmp/big", "wb") as f:
                f.write(b"x" * (9 * 2**20))
        except OSError as exc:
            out["file"] = exc.errno
        os.remove("/tmp/big")
        try:
            for i in range(3):
                with open(f"/tmp/part{i}", "wb") as f:
                    f.write(b"x" * (7 * 2**20))
        except OSError as exc:
            out["space"] = exc.errno
        print(json.dumps(out))
        """)
    import errno

    assert {k: seen[k] for k in ("RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE")} == {
        "RLIMIT_DATA": 512 * 2**20, "RLIMIT_NPROC": 40, "RLIMIT_FSIZE": 8 * 2**20, "RLIMIT_CORE": 0}
    assert seen["RLIMIT_CPU"] == int(2 * Limits.timeout) + 1
    assert seen["memory"] == "MemoryError"
    assert seen["fork"][0] < 40 and seen["fork"][1] == errno.EAGAIN
    assert seen["file"] == errno.EFBIG and seen["space"] == errno.ENOSPC


def test_sandbox_refuses_memory_that_the_data_limit_does_not_count(box):
    """One process, 600 MiB over its 512 MiB limit, by every way that RLIMIT_DATA does not
    count: shared anonymous memory, a file in memory (memfd), System V shared memory, a
    user namespace of its own with a file system in memory of any size, and the main
    thread's stack with its limit raised.  Each is refused; ordinary work still runs."""
    seen = inside(box, """
        import ctypes, json, mmap, os, resource, subprocess, sys, threading
        N, out = 600 * 2**20, {}
        def attempt(name, action):
            try:
                action()
                out[name] = "done"
            except OSError as exc:
                out[name] = exc.errno
        def shared():
            m = mmap.mmap(-1, N)  # MAP_SHARED | MAP_ANONYMOUS
            for i in range(0, N, 4096):
                m[i] = 1
        def memfd():
            fd = os.memfd_create("x")
            for _ in range(6):
                os.write(fd, b"x" * (100 * 2**20))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget.restype = ctypes.c_int
        def sysv():
            if libc.shmget(0, ctypes.c_size_t(N), 0o1600) < 0:  # IPC_PRIVATE, IPC_CREAT | 0600
                raise OSError(ctypes.get_errno(), "shmget")
        def userns():
            pid = os.fork()
            if pid == 0:  # CLONE_NEWUSER | CLONE_NEWNS, then a 2 GiB file system in memory on /tmp
                if libc.unshare(0x10000000 | 0x00020000) != 0:
                    os._exit(100 + ctypes.get_errno())
                os._exit(0 if libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"size=2g") == 0 else 99)
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            if code >= 100:
                raise OSError(code - 100, "unshare")
        attempt("shared", shared)
        attempt("memfd", memfd)
        attempt("sysv", sysv)
        attempt("userns", userns)
        out["files"] = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            out["stack"] = "raised"
        except ValueError:
            out["stack"] = resource.getrlimit(resource.RLIMIT_STACK)
        thread = threading.Thread(target=lambda: out.update(thread="ran"))
        thread.start()
        thread.join()
        out["child"] = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                                      text=True).stdout.strip()
        print(json.dumps(out))
        """)
    import errno

    assert {k: seen[k] for k in ("shared", "memfd", "sysv", "userns")} == dict.fromkeys(
        ("shared", "memfd", "sysv", "userns"), errno.EPERM)
    assert seen["stack"] == [8 * 2**20, 8 * 2**20] and seen["files"] == [1024, 1024]  # sockets' buffers
    assert seen["thread"] == "ran" and seen["child"] == "42"


def test_without_libseccomp_the_sandbox_refuses_and_names_the_package(monkeypatch):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libseccomp.so.2")
    with pytest.raises(sandbox.SandboxUnavailable, match="libseccomp was not found; install libseccomp "
                                                         r"\(Debian/Ubuntu: `apt-get install libseccomp2`"):
        sandbox.plan()


def test_every_process_dies_with_the_sandbox(box):
    marker = f"{time.time_ns() % 10**6 + 2000}.25"
    inside(box, f"""
        import json, os, subprocess
        subprocess.Popen(["sleep", "{marker}"], process_group=0, env={{}})
        if os.fork() == 0:  # a daemon: double fork, a process group of its own (a session is refused)
            os.setpgid(0, 0)
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            os._exit(0)
        print(json.dumps({{}}))
        """)
    assert f"sleep {marker}" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def autogroup():
    """This process's scheduler autogroup (/autogroup-<n>), which Linux shares CPU between:
    "" for the root autogroup (a session begun before autogroups, as a container's first
    session may be: the file is then empty), None where the kernel has no autogroups."""
    try:
        return (open("/proc/self/autogroup").read().split() or [""])[0]
    except FileNotFoundError:
        return None


AUTOGROUP = inspect.getsource(autogroup)  # the sandboxed code reads its own the same way


def test_the_sandbox_is_one_session_so_its_processes_share_one_part_of_the_cpu(box):
    """A submission's busy processes in sessions of their own would each weigh, for the
    scheduler's autogroups, as much as the kernel graded next to it: the sandbox refuses
    setsid, so every process of it stays in its one session and autogroup (not the
    grader's), a process group of its own included, and no nice of it (the autogroup's
    included) goes below 0.  (The CPU shares: benchmarks/sandbox_cpu.py.)"""
    child = textwrap.dedent("""\
        import json, os, resource
        """) + AUTOGROUP + textwrap.dedent("""\
        seen = {"ids": [os.getsid(0), autogroup()]}
        os.setpgid(0, 0)
        seen["group"] = [os.getpgid(0) == os.getpid(), os.getsid(0), autogroup()]
        try:
            fd = os.open("/proc/self/autogroup", os.O_WRONLY)
            os.write(fd, b"-1")
            seen["nice"] = open("/proc/self/autogroup").read().split()[-1]
        except OSError as exc:
            seen["nice"] = type(exc).__name__
        seen["nice_limit"] = resource.getrlimit(resource.RLIMIT_NICE)
        print(json.dumps(seen))
        """)
    seen = inside(box, f"""
        import json, os, subprocess, sys
        {AUTOGROUP.replace(chr(10), chr(10) + " " * 8)}
        out = {{"kernel": [os.getsid(0), autogroup()]}}
        def attempt(name, action):
            try:
                action()
                out[name] = "done"
            except OSError as exc:
                out[name] = type(exc).__name__
        attempt("setsid", os.setsid)
        attempt("popen", lambda: subprocess.Popen(["true"], start_new_session=True).wait())
        out["child"] = json.loads(subprocess.run([sys.executable, "-c", {child!r}], env={{}}, capture_output=True,
                                                 text=True, check=True).stdout)
        print(json.dumps(out))
        """)
    kernel = seen["kernel"]
    assert seen["setsid"] == seen["popen"] == "PermissionError"
    assert seen["child"]["ids"] == kernel and seen["child"]["group"] == [True] + kernel
    if autogroup() is not None:  # a kernel with autogroups: the sandbox has one of its own, not the grader's
        assert kernel[1].startswith("/autogroup-") and kernel[1] != autogroup()
        assert seen["child"]["nice"] == "PermissionError"
    else:  # none (CONFIG_SCHED_AUTOGROUP off): the sessions above are what stays
        assert kernel[1] is None and seen["child"]["nice"] == "FileNotFoundError"
    assert seen["child"]["nice_limit"] == [0, 0]


def test_a_sandbox_past_its_timeout_is_killed_whole(box):
    """As root the sandboxed process drops to a user id of its own, which bwrap's
    --die-with-parent can no longer signal: killing bwrap alone left it running."""
    marker = f"{time.time_ns() % 10**6 + 3000}.25"
    with pytest.raises(subprocess.TimeoutExpired):
        sandbox.run_code(box, f"import os, time\nos.system('sleep {marker} &')\ntime.sleep({marker})", timeout=3)
    time.sleep(0.5)
    assert marker not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_the_sandbox_refuses_to_show_a_folder_that_holds_the_checks(tmp_path):
    with pytest.raises(sandbox.SandboxUnavailable, match="would show .*hidden to student code through"):
        sandbox.plan(data=[FIXTURES], protected=[HIDDEN])


# ------------------------------------------------------------ where the grader runs


def test_without_bubblewrap_the_grader_refuses_and_names_the_package(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(FIXTURES / "submissions" / "alice", subs / "alice")
    bin_dir = tmp_path / "bin"  # a PATH without bwrap
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir)}
    out, err = cli(subs, tmp_path / "gradebook.csv", cwd=tmp_path, env=env).communicate()
    assert "no sandbox: the program bwrap was not found; install bubblewrap (Debian/Ubuntu: " \
           "`apt-get install bubblewrap`" in err and "--no-sandbox" in err
    assert not (tmp_path / "gradebook.csv").exists()
    # a bwrap that cannot start a sandbox (no user namespaces): refused with its message
    (bin_dir / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    (bin_dir / "bwrap").chmod(0o755)
    proc = cli(subs, tmp_path / "gradebook.csv", cwd=tmp_path, env=env)
    out, err = proc.communicate()
    assert proc.returncode != 0 and "bubblewrap could not start (bwrap: setting up uid map: Permission denied)" in err
    assert "user namespaces" in err
    # --no-sandbox: graded, and every row says so
    proc = cli(subs, tmp_path / "gradebook.csv", "--no-sandbox", cwd=tmp_path, env=env)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert [(r["points"], r["sandbox"]) for r in read_rows(tmp_path / "gradebook.csv").values()] == [
        ("7", "none (--no-sandbox)")]


# ------------------------------------------------------------------ nothing lost


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(stat[1])
        except (OSError, ValueError, IndexError):
            continue
    below, frontier = [], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        below += frontier
    return below


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_reports_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "gradebook.csv"
    report.write_atomic(path, "old\n")

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        report.write_atomic(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["gradebook.csv"]


def test_a_killed_grader_resumes_where_it_stopped(tmp_path):
    subs = tmp_path / "subs"
    for student in ("amy", "ben", "cat"):
        write_submission(subs / student / "T-demo.ipynb", {"a1": CORRECT_A1, "a2": CORRECT_A2})
    out = tmp_path / "gradebook.csv"
    (tmp_path / "tmp").mkdir()  # a killed grader leaves its private work folder behind, here
    proc = cli(subs, out, "--jobs", "1", cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    for line in proc.stderr:  # wait for the first graded pair, then kill the grader
        if line.startswith("[1/3]"):
            time.sleep(0.5)  # the next notebook's nbval, launcher, bwrap and kernel are starting
            running = descendants(proc.pid)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert not out.exists() and running
    time.sleep(1)
    assert [pid for pid in running if alive(pid)] == []  # they died with the grader
    run = grade(options(subs, out))
    assert run.cached >= 1 and run.executed + run.cached == 3
    assert [(r.student, r.points) for r in run.results] == [("amy", 7), ("ben", 7), ("cat", 7)]


# ------------------------------------------------------- the real exercises, if any


def exercise_pairs() -> list[str]:
    return sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb") if (ROOT / "solutions" / p.name).exists())


REAL_LIMITS = Limits(cell_timeout=600, timeout=1800, memory_mb=None)
ORACLE = textwrap.dedent("""
    import json, sys
    import nbformat
    from nbclient import NotebookClient
    from optbook.grade.exercise import load_exercise
    from optbook.grade.merge import merge
    from optbook.grade.probe import MIME
    exercise = load_exercise(__import__("pathlib").Path(sys.argv[1]), __import__("pathlib").Path(sys.argv[2]))
    nb, roles = merge(exercise, {})
    NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    points = 0
    for role, cell in zip(roles, code):
        if role.kind != "probe" or any(o.get("output_type") == "error" for o in cell.outputs):
            continue
        (value,) = [o["data"][MIME] for o in cell.outputs if MIME in o.get("data", {})]
        check = next(c for c in exercise.checks if c.id == role.id)
        try:
            check.judge(json.loads(value["json"]))
        except Exception:
            continue
        points += check.points
    print(json.dumps(points))
""")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Every solution and every unmodified exercise, graded in one parallel run; plus,
    independently (nbclient, no nbval, no sandbox), the points an unmodified exercise
    should get."""
    root = tmp_path_factory.mktemp("real")
    for exercise_id in exercise_pairs():
        (root / "subs" / "solution").mkdir(parents=True, exist_ok=True)
        (root / "subs" / "pristine").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "solutions" / f"{exercise_id}.ipynb", root / "subs" / "solution")
        shutil.copy(ROOT / "exercises" / f"{exercise_id}.ipynb", root / "subs" / "pristine")

    def oracle(exercise_id):
        folder = root / "oracle" / exercise_id
        folder.mkdir(parents=True)
        out = subprocess.run([sys.executable, "-c", ORACLE, str(ROOT / "exercises" / f"{exercise_id}.ipynb"),
                              str(ROOT / "solutions" / "hidden"), str(folder)],
                             capture_output=True, text=True, env={**os.environ, "OPTBOOK_GRADING": "1"}, cwd=folder)
        assert out.returncode == 0, out.stderr[-2000:]
        return exercise_id, json.loads(out.stdout)

    with ThreadPoolExecutor(max(2, os.cpu_count() or 1)) as pool:
        expected = pool.map(oracle, exercise_pairs())
        run = grade(Options(root / "subs", root / "gradebook.csv", exercises=ROOT / "exercises",
                            hidden=ROOT / "solutions" / "hidden", jobs=JOBS, limits=REAL_LIMITS, quiet=True))
        expected = dict(expected)
    return {(r.student, r.exercise): r for r in run.results}, expected


@pytest.mark.parametrize("exercise_id", exercise_pairs())
def test_every_solution_scores_full_marks(real, exercise_id):
    results, _ = real
    result = results["solution", exercise_id]
    assert (result.status, result.points) == ("ok", result.max_points), result.reason


@pytest.mark.parametrize("exercise_id", exercise_pairs())
def test_every_unmodified_exercise_scores_the_points_of_checks_that_pass_without_answers(real, exercise_id):
    results, expected = real
    result = results["pristine", exercise_id]
    assert result.status == "ok", result.reason
    assert result.points == expected[exercise_id], result.reason
