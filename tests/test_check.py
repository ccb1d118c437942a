"""``python -m optbook.check``: the students' self-check tells what the grader will tell.

The self-check takes the answer cells of a notebook, merges them into the notebook as
handed out with the grader's own code, runs it in the grader's setting and reports
every visible check.  Here a set of submissions (the reference solutions, the blank
exercises and the mistakes of issue 16: D1 with ``fig`` unanswered, D1 with an import in
a cell of its own, no bias correction, t counted from 0) is graded by the real grader
(``optbook.grade``, kernels in the bubblewrap sandbox) and self-checked, and every
visible check must get the same verdict from both (and, for the 0-point format checks,
the same message).  Then the report itself: the summary, the likely causes, the cells
the grader ignores, the exit statuses, an exercise edited in place.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from optbook.grade.exercise import load_exercise
from optbook.grade.pipeline import Options, grade
from optbook.grade.run import Limits

ROOT = Path(__file__).resolve().parents[1]
EXERCISES, SOLUTIONS = ROOT / "exercises", ROOT / "solutions"
HIDDEN = SOLUTIONS / "hidden"
FIXTURES = ROOT / "tests" / "grading_fixtures"
D1, B = "D1-adam-rosenbrock", "B-short-answers"


def meta(cell) -> dict:
    return cell.metadata.get("optbook", {})


def answer(nb, answer_id: str):
    return next(c for c in nb.cells if meta(c).get("id") == answer_id)


def edited(exercise: str, answer_id: str, *replacements: tuple[str, str]):
    """The reference solution with ``replacements`` made in one answer cell."""
    nb = nbformat.read(SOLUTIONS / f"{exercise}.ipynb", as_version=4)
    cell = answer(nb, answer_id)
    for old, new in replacements:
        assert old in cell.source, (answer_id, old)
        cell.source = cell.source.replace(old, new)
    return nb


def fig_unanswered():
    nb = nbformat.read(SOLUTIONS / f"{D1}.ipynb", as_version=4)
    answer(nb, "D1-figure").source = answer(nbformat.read(EXERCISES / f"{D1}.ipynb", as_version=4),
                                            "D1-figure").source
    return nb


IMPORT = "from optbook.book.surface_figures import contour_figure"


def import_in_own_cell():
    """D1's figure answer with its import moved into a cell of its own just above it."""
    nb = edited(D1, "D1-figure", (IMPORT + "\n", ""))
    nb.cells.insert(nb.cells.index(answer(nb, "D1-figure")), nbformat.v4.new_code_cell(IMPORT))
    return nb


NO_BIAS_D1 = (("self.m / (1 - self.beta1 ** self.t)", "self.m"), ("self.v / (1 - self.beta2 ** self.t)", "self.v"))
T_FROM_0 = (("        self.t += 1\n", ""), ("return theta - self.lr", "self.t += 1\n        return theta - self.lr"))

# student: (exercise, notebook)
SUBMISSIONS = {
    "ref-d1": (D1, lambda: nbformat.read(SOLUTIONS / f"{D1}.ipynb", as_version=4)),
    "blank-d1": (D1, lambda: nbformat.read(EXERCISES / f"{D1}.ipynb", as_version=4)),
    "nofig": (D1, fig_unanswered),
    "ownimport": (D1, import_in_own_cell),
    "nobias-d1": (D1, lambda: edited(D1, "D1-class", *NO_BIAS_D1)),
    "t0": (D1, lambda: edited(D1, "D1-class", *T_FROM_0)),
    "ref-b": (B, lambda: nbformat.read(SOLUTIONS / f"{B}.ipynb", as_version=4)),
    "blank-b": (B, lambda: nbformat.read(EXERCISES / f"{B}.ipynb", as_version=4)),
    "nobias-b": (B, lambda: edited(B, "B3-code", ("m / (1 - beta1 ** t)", "m"), ("v / (1 - beta2 ** t)", "v"))),
}


def self_check(path: Path, *args: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    return subprocess.run([sys.executable, "-m", "optbook.check", str(path), *args], capture_output=True,
                          text=True, env=env, timeout=900)


def verdicts(stdout: str) -> dict[str, tuple[bool, str]]:
    """{check id: (passed, message)} from the report's PASS/FAIL lines."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith(("PASS  ", "FAIL  ")):
            check_id, _, rest = line[6:].partition(" (")
            out[check_id] = (line.startswith("PASS"), rest.partition("): ")[2])
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every submission graded by the real grader (sandboxed) and self-checked."""
    root = tmp_path_factory.mktemp("selfcheck")
    paths = {}
    for student, (exercise, make) in SUBMISSIONS.items():
        (root / "subs" / student).mkdir(parents=True)
        paths[student] = root / "subs" / student / f"{exercise}.ipynb"
        nbformat.write(make(), paths[student])
    jobs = max(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(jobs) as pool:
        checked = dict(zip(paths, pool.map(self_check, paths.values())))
    run = grade(Options(root / "subs", root / "gradebook.csv", exercises=EXERCISES, hidden=HIDDEN, jobs=jobs,
                        limits=Limits(cell_timeout=300, timeout=900), quiet=True))
    results = {r.student: r for r in run.results if r.exercise == SUBMISSIONS.get(r.student, ("",))[0]}
    return results, checked


@pytest.mark.parametrize("student", SUBMISSIONS)
def test_every_visible_check_gets_the_graders_verdict(graded, student):
    results, checked = graded
    exercise = load_exercise(EXERCISES / f"{SUBMISSIONS[student][0]}.ipynb", HIDDEN)
    result, report = results[student], checked[student]
    assert result.status == "ok", result.reason
    mine = verdicts(report.stdout)
    assert set(mine) == exercise.visible, report.stdout
    graders = {c.id: c for c in result.checks if c.visible}
    assert set(graders) == exercise.visible  # the grader reports the 0-point checks too
    for check_id, (passed, message) in mine.items():
        assert passed == graders[check_id].passed, (student, check_id, message, graders[check_id].message)
        if graders[check_id].max_points == 0:  # judged from the same cell: the same words
            assert message == graders[check_id].message, (student, check_id)
    assert report.returncode == (0 if all(p for p, _ in mine.values()) else 1), report.stdout


def test_a_pass_says_so_in_one_line(graded):
    _, checked = graded
    for student in ("ref-d1", "ref-b"):
        lines = checked[student].stdout.splitlines()
        total = sum(line.startswith("PASS") for line in lines)
        assert checked[student].returncode == 0 and total >= 4
        assert lines[-1] == f"{total} of {total} visible checks passed; more checks run when graded."


def test_an_unanswered_figure_fails_as_it_loses_points(graded):
    results, checked = graded
    assert results["nofig"].points == results["nofig"].max_points - 2
    assert checked["nofig"].returncode == 1
    passed, message = verdicts(checked["nofig"].stdout)["D1-figure-form"]
    assert not passed and "fig is still ..." in message


def test_an_import_in_a_cell_of_its_own_is_named(graded):
    """The grader ignores the cell; the self-check says so, names the lost import and
    the answer that needs it, and fails like the grader."""
    results, checked = graded
    report = checked["ownimport"]
    assert report.returncode == 1 and results["ownimport"].points < results["ownimport"].max_points
    assert f"(`{IMPORT}`): a cell you added" in report.stdout
    assert "contour_figure, used in answer D1-figure, is defined only there" in report.stdout
    assert "move it into answer D1-figure" in report.stdout  # the failing check's likely cause
    assert "Not graded" not in checked["ref-d1"].stdout


def test_failures_name_the_likely_cause(graded):
    """No bias correction and t counted from 0 (NaN) are named as such, by the
    self-check and in the grader's feedback, and never as an off-by-one."""
    results, checked = graded
    nobias = verdicts(checked["nobias-d1"].stdout)
    assert "are m and v divided by 1 - beta1**t" in nobias["D1-first-row"][1]
    assert "without bias correction" in next(c.message for c in results["nobias-d1"].checks
                                             if c.id == "D1-class-steps")
    t0 = verdicts(checked["t0"].stdout)
    for check_id in ("D1-class-form", "D1-first-row"):
        assert "t counts from 1" in t0[check_id][1] and "divides by zero" in t0[check_id][1]
    assert "t counts from 1" in next(c.message for c in results["t0"].checks if c.id == "D1-class-steps")
    b = verdicts(checked["nobias-b"].stdout)
    assert "without bias correction" in b["B3-worked-example"][1]
    for report in checked.values():
        assert "count t from 1" not in report.stdout


def test_blank_templates_are_named(graded):
    _, checked = graded
    report = checked["blank-b"]
    assert report.returncode == 1
    assert "likely cause: an answer cell still holds its template" in report.stdout


# ---------------------------------------------------------- where the pristine comes from
def test_an_exercise_edited_in_place_is_compared_with_git(tmp_path):
    """A student who works in exercises/ itself: the pristine is the committed file."""
    (tmp_path / "exercises").mkdir()
    target = tmp_path / "exercises" / f"{D1}.ipynb"
    nbformat.write(nbformat.read(EXERCISES / f"{D1}.ipynb", as_version=4), target)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "handed out"], check=True)
    nb = import_in_own_cell()
    nbformat.write(nb, target)
    report = self_check(target, "--exercises", str(tmp_path / "exercises"))
    assert report.returncode == 1, report.stdout + report.stderr
    assert "as committed (git HEAD)" in report.stdout.splitlines()[0]
    assert "a cell you added" in report.stdout


def test_without_a_pristine_copy_it_says_so(tmp_path):
    (tmp_path / "exercises").mkdir()
    target = tmp_path / "exercises" / f"{B}.ipynb"
    nbformat.write(nbformat.read(SOLUTIONS / f"{B}.ipynb", as_version=4), target)
    report = self_check(target, "--exercises", str(tmp_path / "exercises"))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "no copy of the notebook as handed out was found" in report.stdout


def test_a_renamed_notebook_is_found_by_its_metadata(tmp_path):
    path = tmp_path / "my work.ipynb"
    nbformat.write(nbformat.read(SOLUTIONS / f"{B}.ipynb", as_version=4), path)
    report = self_check(path)
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"hand it in as {B}.ipynb" in report.stdout


# --------------------------------------------------- the fixture exercise; exit statuses
def test_the_fixture_exercise_line_by_line():
    """T-demo (tests/grading_fixtures): one visible check worth 1 point."""
    first = ("Checking {} as the grader will: its answer cells in "
             f"{FIXTURES / 'exercises' / 'T-demo.ipynb'}")
    args = ("--exercises", str(FIXTURES / "exercises"), "--cell-timeout", "30")
    with ThreadPoolExecutor(3) as pool:
        correct, frank, carol = pool.map(lambda p: self_check(p, *args), [
            FIXTURES / "submissions" / "alice" / "T-demo.ipynb", FIXTURES / "submissions" / "frank__T-demo.ipynb",
            FIXTURES / "submissions" / "carol" / "T-demo.ipynb"])
    assert (correct.returncode, correct.stdout.splitlines()) == (0, [
        first.format("T-demo.ipynb"), "PASS  t-gd-step-small (1 point)",
        "1 of 1 visible checks passed; more checks run when graded."])
    assert (frank.returncode, frank.stdout.splitlines()) == (0, [
        first.format("frank__T-demo.ipynb"), "PASS  t-gd-step-small (1 point)", "Other cells:",
        "  answer a1 raised SystemExit: stopping here",
        "1 of 1 visible checks passed; more checks run when graded."])
    # carol edited the test cell and added cells: the grader runs the test as handed out
    assert carol.returncode == 1 and "which you changed (it runs as handed out)" in carol.stdout, carol.stdout


def test_exit_status_2_when_the_notebook_cannot_be_checked(tmp_path):
    broken = self_check(FIXTURES / "submissions" / "heidi__T-demo.ipynb", "--exercises",
                        str(FIXTURES / "exercises"))
    assert broken.returncode == 2 and broken.stderr.startswith("Cannot check ")
    nb = copy.deepcopy(nbformat.read(SOLUTIONS / f"{B}.ipynb", as_version=4))
    nb.metadata["optbook"]["exercise"] = "Z-unknown"
    nbformat.write(nb, tmp_path / "Z-unknown.ipynb")
    unknown = self_check(tmp_path / "Z-unknown.ipynb")
    assert unknown.returncode == 2 and "no exercise 'Z-unknown'" in unknown.stderr, unknown.stderr
    (tmp_path / "text.ipynb").write_text("not json")
    assert self_check(tmp_path / "text.ipynb").returncode == 2
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    stopped = self_check(SOLUTIONS / f"{D1}.ipynb", "--timeout", "2", tmpdir=own_tmp)
    assert stopped.returncode == 2 and "was stopped; no result" in stopped.stdout, stopped.stdout
    assert not list(own_tmp.iterdir())   # the stopped kernel's connection file went with the run
