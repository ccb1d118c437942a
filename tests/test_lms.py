"""Grades where the course lives: Gradescope's results.json and autograder package, and
Canvas's gradebook import (``optbook.grade.gradescope``, ``optbook.grade.canvas``).

Gradescope is emulated: its layout (``/autograder/source`` holding the unzipped package,
``/autograder/submission``, ``/autograder/results/results.json``) is built in a temporary
folder and the package's own ``run_autograder`` is run there, grading the T-demo fixture
in the sandbox.  Canvas is a gradebook CSV written as Canvas exports it (the
``Points Possible`` row, a manual-posting row, the test student).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from optbook.grade import canvas, gradescope
from optbook.grade.judge import CheckResult, Result

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "grading_fixtures"
EXERCISES, HIDDEN = FIXTURES / "exercises", FIXTURES / "hidden"
LIMITS = ["--cell-timeout", "10", "--timeout", "90", "--memory-mb", "1024"]
# what the hidden checks compare with (hidden/T-demo.py), never to be shown
SECRETS = ["ALPHA * abs(2 * W0)", "AFTER_STEP", "np.allclose", "def _("]


def grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbook.grade", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


def result(student: str, exercise: str, passed: dict[str, bool], status: str = "ok") -> Result:
    checks = [CheckResult(c, 2 if ok else 0, 2, c.startswith("t-"), ok, "" if ok else f"{c}: look again")
              for c, ok in passed.items()]
    return Result(student, exercise, sum(c.points for c in checks), 2 * len(checks), status, "r", checks)


# ------------------------------------------------------------------------ Gradescope


def test_results_json_follows_gradescopes_schema():
    rows = [result("ann", "X", {"t-form": True, "h-a": False}), result("ann", "Y", {"h-b": True})]
    data = gradescope.results_json(rows)
    assert data["score"] == 4.0 == sum(t["score"] for t in data["tests"])
    assert [t["name"] for t in data["tests"]] == ["X · t-form", "X · h-a", "Y · h-b"]
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "output", "visibility", "status"}
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
    assert [t["visibility"] for t in data["tests"]] == ["visible", "after_due_date", "after_due_date"]
    assert data["tests"][1]["output"] == "h-a: look again" and data["tests"][1]["status"] == "failed"
    assert gradescope.results_json(rows, "hidden")["tests"][1]["visibility"] == "hidden"
    with pytest.raises(ValueError, match="'secret' is not one of"):
        gradescope.results_json(rows, "secret")


@pytest.fixture(scope="module")
def graded_with_lms(tmp_path_factory):
    """The T-demo fixture's submissions graded once, with --gradescope and --canvas."""
    root = tmp_path_factory.mktemp("lms")
    subs = root / "submissions"
    shutil.copytree(FIXTURES / "submissions", subs)
    export = root / "canvas-export.csv"
    export.write_text(CANVAS_EXPORT, encoding="utf-8")
    run = grader(str(subs), "--out", str(root / "out" / "gradebook.csv"), "--exercises", str(EXERCISES),
                 "--hidden", str(HIDDEN), "--jobs", "2", *LIMITS, "--gradescope", str(root / "gradescope"),
                 "--canvas", str(export), cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(root / "out" / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return root, run, rows


def test_every_student_gets_results_json_with_their_gradebook_points(graded_with_lms):
    root, _run, rows = graded_with_lms
    folders = sorted(p.name for p in (root / "gradescope").iterdir())
    assert folders == sorted(rows)
    for student, row in rows.items():
        data = json.loads((root / "gradescope" / student / "results.json").read_text(encoding="utf-8"))
        assert data["score"] == float(row["points"])
        assert sum(t["max_score"] for t in data["tests"]) == float(row["max_points"])
        verdicts = {t["name"].split(" · ")[1]: t["status"] for t in data["tests"]}
        expected = dict(item.split(":") for item in row["checks"].split())
        assert verdicts == {k: {"pass": "passed", "fail": "failed"}[v] for k, v in expected.items()}
        text = json.dumps(data, ensure_ascii=False)
        assert not any(secret in text for secret in SECRETS), student


def test_a_failed_hidden_check_says_why_in_words(graded_with_lms):
    root, _run, _rows = graded_with_lms
    data = json.loads((root / "gradescope" / "bob" / "results.json").read_text(encoding="utf-8"))
    failed = [t for t in data["tests"] if t["status"] == "failed"]
    assert [t["name"] for t in failed] == ["T-demo · h-step-size"]
    assert "step_size should be" in failed[0]["output"] and failed[0]["score"] == 0.0


def emulate_gradescope(tmp: Path, package: Path, submitted: dict[str, Path]) -> dict:
    """Gradescope's layout in ``tmp``: unzip the package into source/, the submission into
    submission/, run run_autograder, return results/results.json."""
    home = tmp / "autograder"
    with zipfile.ZipFile(package) as z:
        z.extractall(home / "source")
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    shutil.copy(home / "source" / "run_autograder", home / "run_autograder")
    (home / "submission").mkdir()
    for name, path in submitted.items():
        shutil.copy(path, home / "submission" / name)
    env = {**os.environ, "AUTOGRADER": str(home), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(home / "run_autograder")], capture_output=True, text=True, env=env,
                         cwd=home, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((home / "results" / "results.json").read_text(encoding="utf-8"))


def test_the_autograder_package_grades_a_submission_in_gradescopes_layout(tmp_path):
    package = tmp_path / "autograder.zip"
    made = grader("--gradescope-package", str(package), "--exercises", str(EXERCISES), "--hidden", str(HIDDEN),
                  "--exercise", "T-demo", *LIMITS, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    with zipfile.ZipFile(package) as z:
        names = z.namelist()
        assert {"setup.sh", "run_autograder", "requirements.txt", "exercises/T-demo.ipynb",
                "checks/T-demo.py", "lib/optbook/grade/cli.py"} <= set(names)
        assert not any(n.startswith("solutions/") or n.endswith(".pyc") for n in names)
        assert "-e ." not in z.read("requirements.txt").decode()
        setup = z.read("setup.sh").decode()
    assert "bubblewrap" in setup and "libseccomp2" in setup  # the sandbox and its seccomp filter
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0
    # a correct submission next to a draft that sorts first: the exercise's own name wins
    honest = emulate_gradescope(tmp_path / "a", package, {
        "T-demo.ipynb": FIXTURES / "submissions" / "alice" / "T-demo.ipynb", "A-draft.ipynb": EXERCISES / "T-demo.ipynb"})
    assert honest["score"] == 7.0 and all(t["status"] == "passed" for t in honest["tests"])
    # the only notebook, under the name a student's browser gave it
    blank = emulate_gradescope(tmp_path / "b", package, {"T-demo (2).ipynb": EXERCISES / "T-demo.ipynb"})
    assert blank["score"] == 0.0 and len(blank["tests"]) == 4
    assert not any(s in json.dumps(blank, ensure_ascii=False) for s in SECRETS)
    nothing = emulate_gradescope(tmp_path / "c", package, {"notes.txt": EXERCISES / "T-demo.ipynb"})
    assert nothing["score"] == 0.0 and "No notebook" in nothing["output"]


def test_the_package_refuses_an_unknown_exercise(tmp_path):
    made = grader("--gradescope-package", str(tmp_path / "x.zip"), "--exercises", str(EXERCISES), "--hidden",
                  str(HIDDEN), "--exercise", "T-nope", cwd=tmp_path)
    assert made.returncode != 0 and "T-nope" in made.stderr and "T-demo" in made.stderr
    assert not (tmp_path / "x.zip").exists()


# ---------------------------------------------------------------------------- Canvas

# As Canvas exports it: the header, a manual-posting row, the Points Possible row (its
# first cell indented), students, the test student; "T-demo (4711)" is an existing
# assignment whose name is the exercise id.
CANVAS_EXPORT = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,T-demo (4711),Quiz 1 (4700),Current Score
,,,,,Manual Posting,,
    Points Possible,,,,,7.00,5.00,(read only)
"Liddell, Alice",101,S001,alice@uni.example,Sec 1,,4.00,80
"Baker, Bob",102,S002,bbaker,Sec 1,,5.00,100
"Jones, Carol",103,S003,cjones,Sec 2,,3.00,60
"Smith, Dave",104,dave,dsmith,Sec 2,,,
"Evans, Erin",105,S005,e.evans,Sec 2,,,
"Evans, Erin",106,S006,e.evans2,Sec 2,,,
"Student, Test",999,,,Sec 1,,,
"Nobody, Norbert",107,S007,nnobody,Sec 1,,,
"""


def test_canvas_matches_by_login_sis_id_and_name_and_lists_the_rest(graded_with_lms):
    root, run, rows = graded_with_lms
    with open(root / "out" / "gradebook-canvas.csv", newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == canvas.IDENTITY + ["T-demo (4711)"]  # the existing assignment is updated
    assert table[1][0].strip() == "Points Possible" and table[1][-1] == "7.00"
    by_name = {r[0]: r for r in table[2:]}
    assert "Student, Test" not in by_name
    points = {s: r["points"] for s, r in rows.items()}
    assert by_name["Liddell, Alice"][-1] == points["alice"]  # login before the @
    assert by_name["Smith, Dave"][-1] == points["dave"]  # SIS user id
    assert by_name["Baker, Bob"][-1] == "" and by_name["Nobody, Norbert"][-1] == ""
    assert [r[:5] for r in table[2:]] == [r[:5] for r in csv.reader(io.StringIO(CANVAS_EXPORT.lstrip("\ufeff")))
                                          if r[0] not in ("", "Student", "Student, Test")
                                          and r[0].strip() != "Points Possible"]
    with open(root / "out" / "gradebook-canvas-unmatched.csv", newline="", encoding="utf-8") as f:
        unmatched = {r["student"]: r["points"] for r in csv.DictReader(f)}
    assert unmatched == {s: p for s, p in points.items() if s not in ("alice", "dave")}  # none dropped
    assert "NOT MATCHED" in run.stdout and "bob" in run.stdout


def test_canvas_name_matching_ignores_order_case_and_accents_but_never_guesses():
    export = canvas.CanvasExport(canvas.IDENTITY, [], [
        dict(zip(canvas.IDENTITY, row)) for row in [
            ["Müller, Jürgen", "1", "", "", "A"], ["Evans, Erin", "2", "", "", "A"],
            ["Evans, Erin", "3", "", "", "A"], ["Lovelace, Ada", "4", "", "ada@x.example", "A"],
            ["Byron, Ada", "5", "ada", "", "A"]]])
    matched, unmatched = canvas.match(["jurgen.muller", "JuergenMueller", "erin_evans", "ada", "nobody"],
                                      export)
    assert matched == {"jurgen.muller": 0, "ada": 3}  # login before SIS user id
    assert unmatched == ["JuergenMueller", "erin_evans", "nobody"]  # ü is u; two Erins: neither


def test_a_new_exercise_gets_a_new_column_with_its_points():
    export = canvas.CanvasExport(canvas.IDENTITY + ["Quiz (1)"], [["    Points Possible", "", "", "", "", "5"]],
                                 [dict(zip(canvas.IDENTITY, ["Liddell, Alice", "101", "S1", "alice", "A"]))])
    made = canvas.upload([result("alice", "W-warmup", {"h-a": True, "h-b": False})], export)
    table = list(csv.reader(io.StringIO(made.csv_text)))
    assert table == [canvas.IDENTITY + ["W-warmup"], ["    Points Possible", "", "", "", "", "4"],
                     ["Liddell, Alice", "101", "S1", "alice", "A", "2"]]


def test_a_file_that_is_not_a_canvas_export_is_refused_by_name(tmp_path):
    bad = tmp_path / "grades.csv"
    bad.write_text("name,points\nalice,3\n", encoding="utf-8")
    with pytest.raises(canvas.CanvasError, match=r"grades\.csv: not a Canvas gradebook export: no column 'Student'"):
        canvas.read_export(bad)
    subs = tmp_path / "subs"
    subs.mkdir()
    run = grader(str(subs), "--out", str(tmp_path / "gb.csv"), "--canvas", str(bad), cwd=tmp_path)
    assert run.returncode == 2 and "not a Canvas gradebook export" in run.stderr
    assert not (tmp_path / "gb.csv").exists()


# ------------------------------------------- what an instructor found trying it out
def test_the_always_visible_output_names_no_hidden_check():
    """Gradescope shows the top-level output at once: with the hidden checks shown after
    the due date, it must not list them (the gradebook's reason says "failed: <id>")."""
    r = result("ann", "X", {"t-form": True, "h-secret": False})
    r.reason = "cell timeout (30 s) in check h-secret; failed: h-secret"
    r.notes = ["cell timeout (30 s) in check h-secret", "answer X1 raised ValueError: bad"]
    shown = gradescope.results_json([r])["output"]
    assert "h-secret" not in shown
    assert "X: 1 of 1 visible checks passed" in shown and "answer X1 raised ValueError" in shown
    assert "h-secret" in gradescope.results_json([r], "visible")["output"]  # all is visible anyway


def test_a_missing_notebook_leaves_canvas_as_it_was():
    """Grading one assignment's collection never overwrites another assignment's grades:
    a student without a notebook gets an empty cell (Canvas leaves it as it was), and an
    exercise nobody handed in gets no column."""
    export = canvas.CanvasExport(
        canvas.IDENTITY + ["W-warmup (7)", "A-multiple-choice (8)"],
        [["    Points Possible", "", "", "", "", "4", "10"]],
        [dict(zip(canvas.IDENTITY, ["Liddell, Alice", "101", "S1", "alice", "A"])),
         dict(zip(canvas.IDENTITY, ["Bell, Bob", "102", "S2", "bob", "A"]))])
    rows = [result("alice", "W-warmup", {"h-a": True, "h-b": False}),
            result("bob", "W-warmup", {"h-a": False, "h-b": False}, status="missing"),
            result("alice", "A-multiple-choice", {"h-c": False}, status="missing"),
            result("bob", "A-multiple-choice", {"h-c": False}, status="missing")]
    table = list(csv.reader(io.StringIO(canvas.upload(rows, export).csv_text)))
    assert table == [canvas.IDENTITY + ["W-warmup (7)"], ["    Points Possible", "", "", "", "", "4"],
                     ["Liddell, Alice", "101", "S1", "alice", "A", "2"],
                     ["Bell, Bob", "102", "S2", "bob", "A", ""]]


def test_exercise_limits_what_is_graded(tmp_path):
    """--exercise grades only the exercises named; an unknown one is refused by name."""
    from optbook.grade.cli import parse_args

    options = parse_args([str(FIXTURES / "submissions"), "--out", str(tmp_path / "gb.csv"),
                          "--exercise", "T-demo"])
    assert options.only == ["T-demo"]
    run = grader(str(FIXTURES / "submissions"), "--out", str(tmp_path / "gb.csv"), "--exercises",
                 str(EXERCISES), "--hidden", str(HIDDEN), "--exercise", "T-other", cwd=tmp_path)
    assert run.returncode != 0 and "--exercise T-other: no such notebook" in run.stderr
    assert "T-demo" in run.stderr and not (tmp_path / "gb.csv").exists()


def test_the_default_exercises_and_checks_are_the_checkouts_from_any_folder(tmp_path, monkeypatch):
    """Run from another folder, the grader still finds the repository's exercises/ and
    solutions/hidden/ (the README's default), not folders of the current directory."""
    from optbook.grade.cli import parse_args

    monkeypatch.chdir(tmp_path)
    options = parse_args([str(tmp_path), "--out", str(tmp_path / "gb.csv")])
    root = Path(__file__).resolve().parents[1]
    assert options.exercises == root / "exercises" and options.exercises.is_dir()
    assert options.hidden == root / "solutions" / "hidden" and options.hidden.is_dir()
