"""The grader (``optbook.grade``) and the student-side check (``optbook.check``).

The fixtures in ``tests/grading_fixtures/`` (written by ``make_fixtures.py``) are a tiny
exercise, T-demo (visible test 1 point, hidden tests 2 + 3 + 1 points, and a hidden
``# %% setup`` block that computes the array check's reference), and one sample
submission per way a submission can go wrong.  They are graded once, in parallel, and
every row is checked exactly.  When the real ``exercises/`` and ``solutions/`` exist,
every solution must score full marks and every unmodified exercise exactly the points
of the tests that pass without answers (found independently with nbclient).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from optbook import grade
from optbook.grade import Limits, Options

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "grading_fixtures"
EXERCISES, HIDDEN = FIXTURES / "exercises", FIXTURES / "hidden"
LIMITS = Limits(cell_timeout=10, timeout=90, memory_mb=1024)
JOBS = max(4, os.cpu_count() or 1)
TESTS = ["t-gd-step-small", "h-step-size", "h-gd-step-array", "h-converges"]
ALL_FAILED = "failed: " + ", ".join(TESTS)

# student: (points of 7, status, reason)
EXPECTED = {
    "alice": (7, "ok", "all tests passed"),  # correct
    "bob": (5, "ok", "failed: h-step-size"),  # partly wrong
    "carol": (3, "ok", "failed: t-gd-step-small, h-gd-step-array"),  # edited/added test cells, a2 wrong
    "dave": (0, "ok", ALL_FAILED),  # wrong answers + patched np.allclose, math.isclose, abs, helper
    "erin": (5, "cell-timeout", "cell timeout (10 s) in answer a1; failed: h-step-size"),  # infinite loop
    "frank": (5, "ok", "answer a1 raised SystemExit: stopping here; failed: h-step-size"),
    "grace": (0, "kernel-died", f"kernel died in answer a2 (exit code 1); {ALL_FAILED}"),  # os._exit(1)
    "heidi": (0, "malformed", "malformed: invalid JSON (Expecting ',' delimiter at line 2 column 1)"),
    "ivan": (2, "ok", "missing answer cell a2: the template was used; "
                      "failed: t-gd-step-small, h-gd-step-array, h-converges"),
    "judy": (7, "ok", "output truncated in answer a1; all tests passed"),  # prints 50 MB
    # written by the fixture below:
    "kim": (7, "ok", "all tests passed"),  # step_size computed from OPTBOOK_GRADING
    "leo": (5, "ok", "answer a1 raised MemoryError; failed: h-step-size"),  # 2 GB allocation
    "mia": (0, "ok", f"grader cell 3 failed: KeyError: '_optbook_grading'; {ALL_FAILED}"),  # removes the guard
    "zoe": (0, "ok", ALL_FAILED),  # the pristine exercise, unmodified
}
HEADER = "# YOUR ANSWER (this cell is graded)\n"
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
    return Options(submissions, out, exercises=EXERCISES, jobs=JOBS, quiet=True, **kw)


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
    write_submission(subs / "mia__T-demo.ipynb", {
        "a1": HEADER + "import sys\ndel sys.modules['_optbook_grading']  # the grader's snapshot\n"
                       "step_size = ALPHA * abs(2 * W0)\n",
        "a2": CORRECT_A2})
    shutil.copy(EXERCISES / "T-demo.ipynb", subs / "zoe__T-demo.ipynb")
    opts = options(subs, root / "out" / "gradebook.csv")
    started = time.monotonic()
    run = grade.grade(opts)
    return SimpleNamespace(root=root, subs=subs, options=opts, run=run, seconds=time.monotonic() - started,
                           rows=read_rows(opts.out))


# ------------------------------------------------------------ the sample submissions


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_sample_submission_gets_its_exact_score_and_reason(graded, student):
    points, status, reason = EXPECTED[student]
    row = graded.rows[student]
    assert (row["exercise"], int(row["points"]), int(row["max_points"]), row["status"], row["reason"]) == \
        ("T-demo", points, 7, status, reason)
    failed = reason.rpartition("failed: ")[2].split(", ") if "failed: " in reason else []
    if status == "malformed":
        failed = TESTS
    assert row["tests"] == " ".join(f"{t}:{'fail' if t in failed else 'pass'}" for t in TESTS)


def test_one_row_per_submission_and_all_run_in_parallel(graded):
    assert sorted(graded.rows) == sorted(EXPECTED)
    with open(graded.options.out, encoding="utf-8") as f:
        assert f.readline().strip() == "student,exercise,points,max_points,status,reason,tests"
    assert (graded.run.executed, graded.run.cached) == (13, 0)  # heidi's file is never run
    print(f"13 notebooks graded in {graded.seconds:.1f} s")


def test_monkeypatching_earns_nothing_but_would_without_the_guard(graded, tmp_path):
    """dave patches np.allclose, math.isclose, builtins.abs, the notebook's helper and
    shadows isinstance; with the grader's guard cells his wrong answers score 0 (above),
    without them the very same submission would score full marks."""
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(graded.subs / "dave__T-demo.ipynb", subs)
    run = grade.grade(options(subs, tmp_path / "gradebook.csv", guard=False, use_cache=False))
    assert [(r.student, r.points, r.status) for r in run.results] == [("dave", 7, "ok")]
    assert graded.rows["dave"]["points"] == "0"


def test_tampered_test_cells_change_nothing(graded):
    # carol edited the visible test to `assert True` and added a 100-point "h-step-size" cell
    row = graded.rows["carol"]
    assert (row["points"], row["max_points"]) == ("3", "7")


def test_memory_hog_is_stopped_by_the_limit_not_by_the_machine():
    # the same allocation succeeds without the limit (untouched pages cost nothing)
    ok = subprocess.run([sys.executable, "-c", "hog = bytearray(2_000_000_000)"], capture_output=True)
    assert ok.returncode == 0


def test_feedback_has_messages_but_never_hidden_test_code(graded):
    feedback = graded.options.feedback_dir
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(EXPECTED)
    hidden_code = [line.strip() for line in (HIDDEN / "T-demo.py").read_text().splitlines()
                   if len(line.strip()) > 10 and not line.strip().startswith(("#", '"'))]
    for path in feedback.glob("*.md"):
        text = path.read_text()
        assert not [line for line in hidden_code if line in text], path.name
    dave = (feedback / "dave.md").read_text()
    assert "AssertionError: gd_step must work elementwise on NumPy arrays: w − lr·f′(w)" in dave
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


def test_a_guard_that_fails_voids_the_next_test_and_a_failed_prelude_is_an_error():
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    _, roles = grade.merge(exercise, {})
    ok, broken = grade.CellRun(True), grade.CellRun(False, ename="KeyError", evalue="'x'")
    cells = {i: ok for i in range(len(roles))}
    result = grade.score("s", exercise, roles, {**cells, 7: broken}, [], LIMITS)  # the guard before h-step-size
    assert (result.points, result.status, result.reason) == (
        5, "ok", "grader cell 4 failed: KeyError: 'x'; failed: h-step-size")
    assert result.tests[1].message == "not graded: the grader's integrity check before this test failed"
    no_kernel = grade.CellRun(False, nbval="RuntimeError: Kernel didn't respond in 60 seconds")
    result = grade.score("s", exercise, roles, {**cells, 0: no_kernel}, [], LIMITS)
    assert (result.status, result.notes) == (
        "error", ["grader cell 1 did not run: RuntimeError: Kernel didn't respond in 60 seconds"])


def test_long_messages_are_truncated_in_feedback():
    result = grade.Result("x", "T-demo", 0, 1, "ok", "r", [grade.TestResult("t", 0, 1, True, False, "E: " + "y" * 9000)])
    text = grade.feedback_markdown("x", [result])
    assert len(text) < 1000 and "… (truncated)" in text


def test_prose_answers_are_collected_for_manual_grading(graded):
    with open(graded.options.prose, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    alice = [r for r in rows if r["student"] == "alice"]
    assert alice == [{"student": "alice", "exercise": "T-demo", "answer_id": "a3",
                      "text": "Each step multiplies w by 1 − 2α = −2, so |w| doubles every step."}]
    assert "heidi" not in {r["student"] for r in rows}  # malformed


# ------------------------------------------------------------------------- resume


def test_rerun_resumes_from_the_cache_without_running_anything(graded):
    before = graded.options.out.read_text()
    cli = subprocess.run(
        [sys.executable, "-m", "optbook.grade", str(graded.subs), "--out", str(graded.options.out),
         "--exercises", str(EXERCISES), "--hidden", str(HIDDEN), "--cell-timeout", "10", "--timeout", "90",
         "--memory-mb", "1024"], capture_output=True, text=True, cwd=graded.root)
    assert cli.returncode == 0, cli.stderr
    assert f"14 results (0 executed, 13 from cache, 0 errors) -> {graded.options.out}" in cli.stdout
    assert graded.options.out.read_text() == before


def test_a_changed_submission_is_regraded(graded, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(graded.subs, subs)
    cache = tmp_path / "cache"
    shutil.copytree(graded.options.cache_dir, cache)
    write_submission(subs / "bob__T-demo.ipynb", {"a1": HEADER + "step_size = ALPHA * abs(2 * W0)\n",
                                                  "a2": CORRECT_A2})
    nb = nbformat.read(subs / "alice" / "T-demo.ipynb", as_version=4)
    nb.cells[0].source += "\n\nA note of mine (not an answer cell)."
    nbformat.write(nb, subs / "alice" / "T-demo.ipynb")  # changes no answer: still cached
    run = grade.grade(options(subs, tmp_path / "gradebook.csv", cache_dir=cache))
    assert (run.executed, run.cached) == (1, 12)
    bob = next(r for r in run.results if r.student == "bob")
    assert (bob.points, bob.status, bob.reason) == (7, "ok", "all tests passed")


def test_cache_key_depends_on_answers_exercise_and_limits():
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    answers = {"a1": "step_size = 1.0", "a2": "", "a3": ""}
    key = grade.cache_key(exercise, answers, LIMITS, True)
    assert key == grade.cache_key(exercise, dict(answers), LIMITS, True)
    assert key != grade.cache_key(exercise, {**answers, "a1": "step_size = 1"}, LIMITS, True)
    assert key != grade.cache_key(exercise, answers, Limits(11, 90, 1024), True)
    changed = grade.Exercise(**{**exercise.__dict__, "fingerprint": "other"})
    assert key != grade.cache_key(changed, answers, LIMITS, True)


# -------------------------------------------------------------- limits and floods


def test_wall_clock_timeout_kills_the_process_group_and_everything_it_started(tmp_path):
    marker = f"{time.time_ns() % 10**6 + 1000}.5"
    write_submission(tmp_path / "subs" / "erin__T-demo.ipynb", {
        "a1": HEADER + f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                       "step_size = 0.0\nwhile step_size != 1.0:\n    step_size += ALPHA\n"})
    started = time.monotonic()
    run = grade.grade(options(tmp_path / "subs", tmp_path / "gradebook.csv",
                              limits=Limits(cell_timeout=60, timeout=4, memory_mb=1024)))
    assert time.monotonic() - started < 20
    (result,) = run.results
    assert (result.points, result.status, result.reason) == (
        0, "timeout", "timeout: the notebook ran past the 4 s wall-clock limit and was killed")
    assert all(t.message == result.reason.split("; ")[-1] for t in result.tests)
    left = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"sleep {marker}" not in left  # started in a session of its own, killed all the same


def test_huge_error_messages_and_outputs_are_capped_in_the_junit_report(tmp_path):
    """Without the grader's prelude (as in optbook.check), the child's plugin still caps
    the failure report in the XML and notes a flood of output."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('raise ValueError("x" * 5_000_000)'),
                nbformat.v4.new_code_cell('print("y" * 3_000_000)')]
    nbformat.write(nb, tmp_path / "flood.ipynb")
    run = grade.run_notebook(tmp_path / "flood.ipynb", LIMITS)
    assert run.junit.stat().st_size < 50_000
    cells = grade.read_junit(run.junit)
    assert cells[0].ename == "ValueError" and len(cells[0].evalue) < 2100
    assert (cells[1].passed, cells[1].output_truncated) == (True, True)


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
    run = grade.grade(options(subs, tmp_path / "out" / "gradebook.csv"))
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
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    cases = {b"[1, 2]": "not a Jupyter notebook (no list of cells)",
             b"\xff\xfe": "not UTF-8 text",
             b'{"cells": [], "nbformat": 3}': "not a Jupyter notebook (ValidationError)"}
    for content, message in cases.items():
        path = tmp_path / "x.ipynb"
        path.write_bytes(content)
        with pytest.raises(grade.MalformedSubmission, match=f"^{message.replace('(', '.').replace(')', '.')}$"):
            grade.read_answers(path, exercise)


def test_duplicated_and_foreign_answer_cells(tmp_path):
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    nb = nbformat.read(EXERCISES / "T-demo.ipynb", as_version=4)
    a1 = next(c for c in nb.cells if c.metadata["optbook"].get("id") == "a1")
    nb.cells.append(nbformat.v4.new_code_cell("step_size = 2", metadata=dict(a1.metadata)))
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"optbook": {"role": "answer", "id": "zz"}}))
    nbformat.write(nb, tmp_path / "x.ipynb")
    answers, notes = grade.read_answers(tmp_path / "x.ipynb", exercise)
    assert sorted(answers) == ["a1", "a2", "a3"] and answers["a1"].endswith("step_size = ...\n")
    assert notes == ["answer cell a1 appears twice: the first one was used"]


# ------------------------------------------------------------ the merged notebook


def test_merge_takes_only_answers_and_adds_guards_and_hidden_tests():
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    answers = {"a1": "step_size = 1.0", "a2": "def gd_step(w, lr):\n    return w", "a3": "prose"}
    nb, roles = grade.merge(exercise, answers)
    kinds = [(r.kind, r.id) for r in roles]
    assert kinds == [("grader", None), ("setup", None), ("grader", None), ("answer", "a1"), ("answer", "a2"),
                     ("grader", None), ("test", "t-gd-step-small"), ("grader", None), ("test", "h-step-size"),
                     ("grader", None), ("setup", None), ("grader", None), ("test", "h-gd-step-array"),
                     ("grader", None), ("test", "h-converges")]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[3].source == "step_size = 1.0"
    assert code[2].source.endswith(".pin(['np', 'W0', 'ALPHA', 'close_enough'])")
    assert code[8].metadata["optbook"] == {"role": "test", "id": "h-step-size", "points": 2, "visible": False}
    assert code[8].source.startswith("import math\n\nassert isinstance(step_size")
    # the hidden setup block: a hidden setup cell where the file has it, after a guard
    # (it runs after the answers), then a pin of every name it defines, data included
    assert (roles[1].visible, roles[10].visible) == (True, False)
    assert code[10].metadata["optbook"] == {"role": "setup", "visible": False}
    assert code[10].source.startswith("# The reference for the array check") and "_ref_after_step =" in code[10].source
    assert code[9].source.endswith(".restore()")
    assert code[11].source.splitlines()[1:] == [
        '__import__("sys").modules["_optbook_grading"].pin([\'_np\', \'_ref_w\', \'_ref_after_step\'], values=True)',
        '__import__("sys").modules["_optbook_grading"].restore()']
    assert [c.source for c in nb.cells if c.cell_type == "markdown"][-1] == "prose"
    assert exercise.guarded_modules == ["math", "numpy"] and exercise.max_points == 7


def test_hidden_test_files_are_parsed_strictly():
    tests = grade.parse_hidden_tests('"""doc"""\n# %% a points=2\nx = 1\n\n# %% b-2 points=0\nassert x\n')
    assert [(t.id, t.points, t.visible, t.source) for t in tests] == [
        ("a", 2, False, "x = 1\n"), ("b-2", 0, False, "assert x\n")]
    for bad in ("# %% a points=two\n", "# %% [markdown]\n", "x = 1\n# %% a points=1\n"):
        with pytest.raises(grade.ExerciseError):
            grade.parse_hidden_tests(bad)


def test_setup_blocks_are_parsed_in_file_order_and_checked():
    text = ("# %% setup\nimport math as _math\n_ref_a = _math.sqrt(4.0)\n\n# %% a points=2\nassert x == _ref_a\n"
            "# %% setup   \ndef _ref_twice(v):\n    return [2 * e for e in v]\n_ref_b = _ref_twice([_ref_a])\n"
            "# %% b points=1\nassert y == _ref_b\n")
    cells = grade.parse_hidden_tests(text, "h.py")
    assert [(type(c).__name__, getattr(c, "id", None), c.source.splitlines()[0]) for c in cells] == [
        ("HiddenSetup", None, "import math as _math"), ("TestSpec", "a", "assert x == _ref_a"),
        ("HiddenSetup", None, "def _ref_twice(v):"), ("TestSpec", "b", "assert y == _ref_b")]
    assert [c.line for c in cells if isinstance(c, grade.HiddenSetup)] == [1, 7]
    bad = {  # file: the error, which names the line and the problem
        "# %% a points=1\nassert 1\n# %%  setup\n_x = 1\n":
            "h.py:3: expected '# %% <test-id> points=<n>' or '# %% setup', got '# %%  setup'",
        "# %% setup points=1\n_x = 1\n": "h.py:1: 'setup' is not a test id",
        "# %% setup extra\n_x = 1\n": "h.py:1: expected '# %% <test-id> points=<n>' or '# %% setup'",
        "_x = 1\n# %% setup\n_y = 2\n": "h.py: code before the first '# %% <test-id> points=<n>' or '# %% setup'",
        "# %% setup\n\n# %% a points=1\nassert 1\n": "h.py:1: the setup block is empty",
        "# %% a points=1\nassert 1\n# %% setup\n_ref = (1,\n": "h.py:3: the setup block does not parse (line 4)",
        "# %% setup\nimport numpy as np\n": "h.py:1: the setup block defines 'np': names a setup block defines "
                                           "must start with '_'",
        "# %% setup\n_ref = gd_step(5.0, 0.1)\n": "h.py:1: the setup block reads 'gd_step', which it does not "
                                                  "define: a setup block must not use answer or notebook names",
        "# %% setup\n_ref = W0 * 2\n": "h.py:1: the setup block reads 'W0'",  # a notebook name
        "# %% a points=1\n_t = 3\n# %% setup\n_ref = _t\n": "h.py:3: the setup block reads '_t'",  # a test's
    }
    for text, message in bad.items():
        with pytest.raises(grade.ExerciseError) as error:
            grade.parse_hidden_tests(text, "h.py")
        assert str(error.value).startswith(message), (text, str(error.value))


def test_a_setup_block_scores_nothing_and_its_failure_is_only_noted():
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    assert [type(c).__name__ for c in exercise.hidden] == ["TestSpec", "HiddenSetup", "TestSpec", "TestSpec"]
    assert [t.id for t in exercise.tests] == TESTS and exercise.max_points == 7
    _, roles = grade.merge(exercise, {})
    setup = next(i for i, r in enumerate(roles) if r.kind == "setup" and not r.visible)
    ok = grade.CellRun(True)
    cells = {i: ok for i in range(len(roles))}
    result = grade.score("s", exercise, roles, cells, [], LIMITS)
    assert (result.points, [t.id for t in result.tests]) == (7, TESTS)  # no row, no points for the block
    broken = grade.CellRun(False, ename="ZeroDivisionError", evalue="division by zero")
    result = grade.score("s", exercise, roles, {**cells, setup: broken}, [], LIMITS)
    assert (result.points, result.status, result.reason) == (
        7, "ok", "hidden setup cell 1 raised ZeroDivisionError: division by zero; all tests passed")


def test_the_fingerprint_covers_setup_blocks(tmp_path):
    exercise = grade.load_exercise(EXERCISES / "T-demo.ipynb", HIDDEN)
    (tmp_path / "T-demo.py").write_text((HIDDEN / "T-demo.py").read_text().replace("[5.0, -2.0, 0.0]",
                                                                                   "[5.0, -2.0, 1.0]"))
    changed = grade.load_exercise(EXERCISES / "T-demo.ipynb", tmp_path)
    assert [t.source for t in changed.tests] == [t.source for t in exercise.tests]  # only the block differs
    assert changed.fingerprint != exercise.fingerprint
    answers = {"a1": "step_size = 1.0", "a2": "", "a3": ""}
    assert grade.cache_key(changed, answers, LIMITS, True) != grade.cache_key(exercise, answers, LIMITS, True)


def hidden_variant(folder: Path, old: str = "", new: str = "", append: str = "") -> Path:
    """A folder with a copy of the fixture's hidden tests, ``old`` replaced by ``new`` and
    ``append`` added at the end."""
    text = (HIDDEN / "T-demo.py").read_text()
    assert old in text
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "T-demo.py").write_text(text.replace(old, new) + append)
    return folder


def test_a_failing_setup_block_fails_only_the_tests_that_use_it(tmp_path):
    hidden = hidden_variant(tmp_path / "hidden", "_ref_after_step = _ref_w", "_ref_after_step = 1 / 0 + _ref_w")
    subs = tmp_path / "subs"
    shutil.copytree(FIXTURES / "submissions" / "alice", subs / "alice")  # full marks with the fixture
    opts = options(subs, tmp_path / "out" / "gradebook.csv", hidden=hidden)
    (result,) = grade.grade(opts).results
    assert (result.points, result.max_points, result.status, result.reason) == (
        4, 7, "ok", "hidden setup cell 1 raised ZeroDivisionError: division by zero; failed: h-gd-step-array")
    failed = next(t for t in result.tests if not t.passed)
    assert failed.message == "NameError: name '_ref_after_step' is not defined"
    feedback = (opts.feedback_dir / "alice.md").read_text()
    assert "- hidden setup cell 1 raised ZeroDivisionError: division by zero" in feedback
    assert "1 / 0" not in feedback and "_ref_w" not in feedback  # no hidden code


def test_setup_values_rebound_by_an_answer_are_restored_before_the_next_test(tmp_path):
    """An answer's function that rebinds a setup block's reference while a test calls it
    cannot change what the next tests compare with: the pin after a hidden setup block
    keeps its data too.  Without the guard the same trick works."""
    hidden = hidden_variant(tmp_path / "hidden", append=(
        "\n# %% h-reference-intact points=1\nassert _ref_after_step[0] == 4.0, 'the reference was rebound'\n"))
    subs = tmp_path / "subs"
    write_submission(subs / "oscar__T-demo.ipynb", {
        "a1": HEADER + "step_size = ALPHA * abs(2 * W0)\n",
        "a2": HEADER + "def gd_step(w, lr):\n    if isinstance(w, float):  # h-converges calls it so\n"
                       "        globals()['_ref_after_step'] = [0.0, 0.0, 0.0]\n    return w - lr * 2 * w\n"})
    rows = {}
    for guard in (True, False):
        (rows[guard],) = grade.grade(options(subs, tmp_path / f"gradebook-{guard}.csv", hidden=hidden,
                                             guard=guard, use_cache=False)).results
    assert (rows[True].points, rows[True].max_points, rows[True].reason) == (8, 8, "all tests passed")
    assert (rows[False].points, rows[False].reason) == (7, "failed: h-reference-intact")


def test_names_and_imports_seen_by_the_guard():
    source = "%matplotlib inline\nimport numpy as np\nfrom math import isclose as ic\nfor i in range(3):\n" \
             "    total = i\ndef f(x):\n    inner = x\n"
    assert grade.assigned_names(source) == ["np", "ic", "i", "total", "f"]
    assert grade.imported_modules(source + "import numpy.linalg\nfrom os.path import join\n") == {
        "numpy", "math", "numpy.linalg", "os.path"}


# ----------------------------------------------------------------- student check


def run_check(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbook.check", str(notebook), "--cell-timeout", "30"],
                          capture_output=True, text=True)


def test_student_check_reports_each_visible_test():
    with ThreadPoolExecutor(3) as pool:
        pristine, correct, frank = pool.map(run_check, [
            EXERCISES / "T-demo.ipynb", FIXTURES / "submissions" / "alice" / "T-demo.ipynb",
            FIXTURES / "submissions" / "frank__T-demo.ipynb"])
    first = "Checking {}: visible tests only (hidden tests run when your work is graded)"
    assert (pristine.returncode, pristine.stdout.splitlines()) == (1, [
        first.format("T-demo.ipynb"),
        "FAIL  t-gd-step-small (1 point): NotImplementedError: write one gradient-descent step for f(w) = w²",
        "0 of 1 visible tests passed."])
    assert (correct.returncode, correct.stdout.splitlines()) == (0, [
        first.format("T-demo.ipynb"), "PASS  t-gd-step-small (1 point)", "1 of 1 visible tests passed."])
    assert (frank.returncode, frank.stdout.splitlines()) == (0, [
        first.format("frank__T-demo.ipynb"), "PASS  t-gd-step-small (1 point)", "Other cells:",
        "  answer a1 raised SystemExit: stopping here", "1 of 1 visible tests passed."])


def test_student_check_on_a_broken_file():
    broken = run_check(FIXTURES / "submissions" / "heidi__T-demo.ipynb")
    assert broken.returncode == 2 and broken.stderr.startswith("Cannot check ")


# ------------------------------------------------------- the real exercises, if any


def exercise_pairs() -> list[str]:
    return sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb") if (ROOT / "solutions" / p.name).exists())


REAL_LIMITS = Limits(cell_timeout=600, timeout=1800, memory_mb=None)
ORACLE = textwrap.dedent("""
    import json, sys
    import nbformat
    from nbclient import NotebookClient
    from optbook import grade
    exercise = grade.load_exercise(grade.Path(sys.argv[1]), grade.Path(sys.argv[2]))
    nb, roles = grade.merge(exercise, {}, guard=False)
    NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    passed = [r.id for r, c in zip(roles, code) if r.kind == "test"
              and not any(o.get("output_type") == "error" for o in c.outputs)]
    print(json.dumps(sum(t.points for t in exercise.tests if t.id in passed)))
""")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Every solution and every unmodified exercise, graded in one parallel run; plus,
    independently (nbclient, no grader), the points an unmodified exercise should get."""
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
        run = grade.grade(Options(root / "subs", root / "gradebook.csv", exercises=ROOT / "exercises",
                                  hidden=ROOT / "solutions" / "hidden", jobs=JOBS, limits=REAL_LIMITS, quiet=True))
        expected = dict(expected)
    return {(r.student, r.exercise): r for r in run.results}, expected


@pytest.mark.parametrize("exercise_id", exercise_pairs())
def test_every_solution_scores_full_marks(real, exercise_id):
    results, _ = real
    result = results["solution", exercise_id]
    assert (result.status, result.points) == ("ok", result.max_points), result.reason


@pytest.mark.parametrize("exercise_id", exercise_pairs())
def test_every_unmodified_exercise_scores_the_points_of_tests_that_pass_without_answers(real, exercise_id):
    results, expected = real
    result = results["pristine", exercise_id]
    assert result.status == "ok", result.reason
    assert result.points == expected[exercise_id], result.reason
