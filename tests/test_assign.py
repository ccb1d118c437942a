"""Exercises written as one master each (``solutions/masters/<id>.md``) and built by
``python -m optbook.grade.assign``.

* the stored exercises, solutions and checks files are what their masters build;
* the new small exercise W-warmup, built from its master into a temporary folder and
  graded by the real grader in the sandbox: the reference solution gets full marks, the
  blank template 0, and a wrong warm-up fails exactly its hidden check, whose failure
  message reaches the student without the check's code or expected values;
* the marker format (templates and model answers side by side, otter-style ``...``);
* refusals: a missing model answer, a check without points, a duplicate id, each named
  by its cell.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from optbook.grade.assign import Folders, build, checks_source, notebook
from optbook.grade.checks import load_checks
from optbook.grade.judge import judge_value
from optbook.grade.master import MARK, MasterError, read_master
from optbook.grade.pipeline import Options, grade
from optbook.grade.run import Limits

ROOT = Path(__file__).resolve().parents[1]
MASTERS = ROOT / "solutions" / "masters"
W_MASTER = MASTERS / "W-warmup.md"


def assign(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbook.grade.assign", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})


def answers_of(path: Path) -> dict[str, str]:
    return {c.metadata["optbook"]["id"]: c.source for c in nbformat.read(path, as_version=4).cells
            if c.metadata["optbook"]["role"] == "answer"}


def with_answers(pristine: Path, answers: dict[str, str], out: Path) -> None:
    nb = nbformat.read(pristine, as_version=4)
    for cell in nb.cells:
        if cell.metadata["optbook"].get("id") in answers and cell.metadata["optbook"]["role"] == "answer":
            cell.source = answers[cell.metadata["optbook"]["id"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


# ------------------------------------------------------------------ stored = built


def test_the_stored_files_are_what_the_masters_build():
    run = assign("--check")
    assert run.returncode == 0, run.stderr + run.stdout
    assert f"{len(list(MASTERS.glob('*.md')))} masters: up to date" in run.stdout


def test_every_master_reads_as_a_myst_notebook_with_its_cells_named():
    for path in sorted(MASTERS.glob("*.md")):
        master = read_master(path)
        assert master.cells and any(c.role == "answer" for c in master.cells)
        lines = path.read_text(encoding="utf-8").splitlines()
        first_lines = {"answer": ("# ANSWER ", "<!-- ANSWER "), "test": ("# TEST ",), "hidden": ("# BEGIN HIDDEN",)}
        for cell in master.cells:
            assert lines[cell.line - 1].startswith(first_lines.get(cell.role, ("",))), (path, cell.number)
        numbers = [c.line for c in master.cells]
        assert numbers == sorted(set(numbers)), path  # each cell named by its own line


def test_the_solutions_readme_lists_every_master_with_its_ids_and_points():
    """solutions/README.md's table has a row per master naming its answer cells, visible
    tests and hidden checks (a range written with "…" stands for the ids between), every
    "`id` (n)" there carries the master's points, and "Automatic points" sums them."""
    readme = (ROOT / "solutions" / "README.md").read_text(encoding="utf-8")
    rows = {cells[0]: cells[1:] for line in readme.splitlines() if line.startswith("| ")
            and len(cells := [c.strip() for c in line.strip().strip("|").split("|")]) == 4}
    line = " ".join(readme.split("Automatic points:", 1)[1].split(".", 1)[0].split())
    totals = {k: int(v) for k, v in re.findall(r"([A-Z]\d?) (\d+)", line)}
    masters = [read_master(path) for path in sorted(MASTERS.glob("*.md"))]
    assert set(rows) - {"Exercise"} == {m.id for m in masters}, sorted(rows)
    for master in masters:
        answers, visible, hidden = rows[master.id]
        listed = {k: int(v) for k, v in re.findall(r"`([\w.-]+)` \((\d+)\)", visible + hidden)}
        tests = {c.id: c.points for c in master.cells if c.role == "test"}
        checks = {c.id: c.points for c in master.hidden if c.id not in tests}
        for ids, column in ((tests, visible), (checks, hidden),
                            ([c.id for c in master.cells if c.role == "answer"], answers)):
            assert "…" in column or all(f"`{i}`" in column for i in ids), (master.id, column)
        for check_id, points in listed.items():
            assert {**tests, **checks}.get(check_id) == points, (master.id, check_id)
        short = master.id.split("-")[0]
        assert totals.get(short) == master.visible_points + master.hidden_points, (short, line)


# ------------------------------------------------------- W-warmup, built and graded


@pytest.fixture(scope="module")
def warmup(tmp_path_factory):
    """W-warmup built from its master into a temporary folder, then three submissions
    graded there by the grader (sandboxed): reference, blank, warm-up off by one."""
    root = tmp_path_factory.mktemp("assign")
    folders = Folders(MASTERS).under(root)
    build(W_MASTER, folders)
    exercise = folders.exercises / "W-warmup.ipynb"
    subs = root / "submissions"
    with_answers(exercise, answers_of(folders.solutions / "W-warmup.ipynb"), subs / "ref" / "W-warmup.ipynb")
    shutil.copy(exercise, subs / "blank__W-warmup.ipynb")
    solution = answers_of(folders.solutions / "W-warmup.ipynb")
    off_by_one = solution["W1"].replace("return (step + 1) / warmup_steps", "return step / warmup_steps")
    assert off_by_one != solution["W1"]
    with_answers(exercise, {**solution, "W1": off_by_one}, subs / "wrong" / "W-warmup.ipynb")
    options = Options(subs, root / "out" / "gradebook.csv", exercises=folders.exercises, hidden=folders.hidden,
                      jobs=2, limits=Limits(cell_timeout=60, timeout=180, memory_mb=2048), quiet=True)
    run = grade(options)
    with open(options.out, newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return root, folders, run, rows


def test_the_reference_solution_gets_full_marks_and_the_blank_zero(warmup):
    _root, _folders, _run, rows = warmup
    assert (rows["ref"]["points"], rows["ref"]["max_points"], rows["ref"]["status"]) == ("6", "6", "ok")
    assert rows["ref"]["reason"] == "all checks passed"
    assert rows["blank"]["points"] == "0" and rows["blank"]["status"] == "ok"
    assert rows["blank"]["checks"] == "W-peak:fail W-warmup-part:fail W-decay-part:fail W-lrs:fail"


def test_a_failed_hidden_check_shows_its_message_without_code_or_expected_values(warmup):
    root, folders, _run, rows = warmup
    # off by one in the warm-up (t/W): the peak comes one update late, the warm-up is
    # wrong and W2's rates with it; the decay is right
    assert rows["wrong"]["checks"] == "W-peak:fail W-warmup-part:fail W-decay-part:pass W-lrs:fail"
    feedback = (root / "out" / "gradebook-feedback" / "wrong.md").read_text(encoding="utf-8")
    assert "the warm-up is wrong for some W. Count t from 0" in feedback
    checks_code = (folders.hidden / "W-warmup.py").read_text(encoding="utf-8")
    for secret in ["def reference", "rel_tol", "W_SETTINGS", "def matches", "assert matches"]:
        assert secret in checks_code and secret not in feedback, secret
    for value in ["0.025", "0.75", "0.0833"]:  # expected rates and factors
        assert value not in feedback, value


def test_the_released_notebook_holds_templates_and_no_key(warmup):
    _root, folders, _run, _rows = warmup
    released = nbformat.read(folders.exercises / "W-warmup.ipynb", as_version=4)
    text = "\n".join(c.source for c in released.cells)
    for key in ["return (step + 1) / warmup_steps", "LambdaLR(", "BEGIN", "END SOLUTION", "checks.add",
                "second-moment estimate", "{{"]:
        assert key not in text, key
    assert 'raise NotImplementedError("W1: write warmup_factor")' in text and "lrs = ..." in text
    assert "further checks worth\n5 points" in text.replace("  ", " ") or "worth\n5 points" in text
    assert all(not c.get("outputs") for c in released.cells if c.cell_type == "code")
    solved = nbformat.read(folders.solutions / "W-warmup.ipynb", as_version=4)
    assert [c.id for c in solved.cells] == [c.id for c in released.cells]
    w2 = next(c for c in solved.cells if c.metadata["optbook"].get("id") == "W2")
    assert w2.outputs[0]["text"].startswith("[0.025, 0.05, 0.075, 0.1, 0.1, 0.0833")


# ------------------------------------------------------------------- the format


def write_master(tmp_path: Path, text: str, name: str = "X-test.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = W_MASTER.read_text(encoding="utf-8").split("---\n", 2)
FRONT = "---\n" + HEADER[1] + "---\n"


def code(source: str) -> str:
    return f"\n```{{code-cell}} ipython3\n{source.strip()}\n```\n"


MINIMAL = FRONT + "\n# Exercise X\n" + code("""
# ANSWER X1
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
""") + code("""
# TEST X-form (0 points)
assert double(1) is not None, "X1: double returns nothing yet."
""") + code("""
# BEGIN HIDDEN TESTS
@checks.add("X-double", points=2, probe="[double(x) for x in (0, 1.5, -3)]")
def _(values):
    assert values == [0, 3.0, -6], "X1: double(x) must return twice x."
# END HIDDEN TESTS
""")


def test_without_a_prompt_each_solution_region_becomes_an_ellipsis(tmp_path):
    master = read_master(write_master(tmp_path, MINIMAL))
    answer = next(c for c in master.cells if c.role == "answer")
    assert answer.source == f"{MARK}\ndef double(x):\n    ..."
    assert answer.solution == f"{MARK}\ndef double(x):\n    return 2 * x"
    text, _ = checks_source(master)
    path = tmp_path / "X-test.py"
    path.write_text(text, encoding="utf-8")
    checks, _ = load_checks(path)
    assert [(c.id, c.points) for c in checks] == [("X-double", 2)]
    released = notebook(master, solution=False)
    assert [c.metadata["optbook"]["role"] for c in released.cells] == ["instructions", "answer", "test"]


REFUSALS = {
    "missing model answer": (MINIMAL.replace("    return 2 * x\n", ""),
                             r"cell 2 \(line \d+, ANSWER X1\): no model answer"),
    "no solution region at all": (MINIMAL.replace("    # BEGIN SOLUTION\n", "").replace("    # END SOLUTION\n", ""),
                                  r"cell 2 \(line \d+, ANSWER X1\): no model answer"),
    "visible check without points": (MINIMAL.replace("# TEST X-form (0 points)", "# TEST X-form"),
                                     r"cell 3 \(line \d+, TEST X-form\): a check without points"),
    "hidden check without points": (MINIMAL.replace('"X-double", points=2,', '"X-double",'),
                                    r"cell 4 \(line \d+, HIDDEN TESTS\), line \d+: check 'X-double' without points"),
    "duplicate answer id": (MINIMAL.replace("# TEST X-form (0 points)\nassert double(1)",
                                            "# TEST X-form (0 points)\nassert double(1)") + code("""
# ANSWER X1
# BEGIN SOLUTION
y = 1
# END SOLUTION
"""), r"cell 5 \(line \d+, ANSWER X1\): duplicate id 'X1', already used by cell 2 \(line \d+\)"),
    "duplicate hidden id": (MINIMAL + code("""
# BEGIN HIDDEN TESTS
@checks.add("X-double", points=1, probe="double(2)")
def _(value):
    assert value == 4, "X1: twice 2."
# END HIDDEN TESTS
"""), r"cell 5 \(line \d+, HIDDEN TESTS\): duplicate id 'X-double': a hidden check of that id is already in "
      r"cell 4"),
    "self-check worth points without a hidden twin": (
        MINIMAL.replace("# TEST X-form (0 points)", "# TEST X-form (1 point)"),
        r"cell 3 \(line \d+, TEST X-form\): the self-check is worth 1 point but no hidden check"),
    "unbalanced markers": (MINIMAL.replace("    # END SOLUTION\n", ""),
                           r"cell 2 \(line \d+, ANSWER X1\): BEGIN SOLUTION without its END SOLUTION"),
    "a hidden check that raises on import": (MINIMAL.replace('@checks.add("X-double"', 'REF = 1 / 0\n@checks.add("X-double"'),
                                             r"cell 4 \(line (\d+), HIDDEN TESTS\), line \d+: the hidden tests "
                                             r"fail when imported: .*ZeroDivisionError"),
    "unknown placeholder": (MINIMAL.replace("# Exercise X", "# Exercise X, {{ hiden_points }} points"),
                            r"cell 1 \(line \d+, instructions\): unknown placeholder \{\{ hiden_points \}\}"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_master_is_refused_with_a_message_naming_its_cell(tmp_path, case):
    text, pattern = REFUSALS[case]
    path = write_master(tmp_path, text)
    folders = Folders(tmp_path).under(tmp_path / "out")
    with pytest.raises(MasterError, match=re.escape(str(path)) + ", " + pattern):
        build(path, folders, run=False)
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(MasterError) as refused:
        build(path, folders, run=False)
    lines = text.splitlines()
    for number in re.findall(r"line (\d+)", str(refused.value)):  # the cell's line, the offending line
        assert lines[int(number) - 1].strip(), (case, number)
    if "ZeroDivision" in case or "raises" in case:
        assert lines[int(re.findall(r"line (\d+)", str(refused.value))[-1]) - 1] == "REF = 1 / 0"
    if "hidden check without points" in case:
        assert lines[int(re.findall(r"line (\d+)", str(refused.value))[-1]) - 1].startswith("@checks.add(")


def test_the_command_line_refuses_with_the_cells_name_and_exit_code_2(tmp_path):
    masters = tmp_path / "masters"
    masters.mkdir()
    write_master(masters, MINIMAL.replace("# TEST X-form (0 points)", "# TEST X-form"))
    run = assign("--masters", str(masters), "--exercises", str(tmp_path / "ex"), "--solutions",
                 str(tmp_path / "sol"), "--no-execute")
    assert run.returncode == 2
    assert "X-test.md, cell 3 (line " in run.stderr and "a check without points" in run.stderr
    run = assign("--masters", str(masters), "Y-unknown")
    assert run.returncode == 2 and "no master Y-unknown" in run.stderr and "X-test" in run.stderr


# ------------------------------------------------------------- round trip on C1

C_MASTER = MASTERS / "C-long-answers.md"
# f(w) = (w − 3)² becomes (w − 5)²: every gradient of C1's trace changes, and with it m,
# w and m₁ for β = 0.99; in the instructions, the model answer and the hidden references
C1_EDITS = [
    ("Minimise $f(w) = (w - 3)^2$", "Minimise $f(w) = (w - 5)^2$"),
    ("    g_t = 2 * (w_prev - 3)\n", "    g_t = 2 * (w_prev - 5)\n"),
    ("m1_with_beta_099 = (1 - 0.99) * 2 * (10 - 3)", "m1_with_beta_099 = (1 - 0.99) * 2 * (10 - 5)"),
    ("    _g = 2.0 * (_w - 3.0)\n", "    _g = 2.0 * (_w - 5.0)\n"),
    ("M1_BETA_099 = (1.0 - 0.99) * (2.0 * (10.0 - 3.0))", "M1_BETA_099 = (1.0 - 0.99) * (2.0 * (10.0 - 5.0))"),
]
C1_CHECKS = [f"C1-{v}{i}" for v in "gmw" for i in (1, 2, 3)]


def momentum_trace(w0: float, minimum: float, alpha: float = 0.1, beta: float = 0.9) -> dict[str, list]:
    """Three steps of the book's momentum on (w − minimum)², computed here."""
    trace, w, m = {"g": [], "m": [], "w": []}, w0, 0.0
    for _ in range(3):
        g = 2 * (w - minimum)
        m = beta * m + (1 - beta) * g
        w = w - alpha * m
        for key, value in zip("gmw", (g, m, w)):
            trace[key].append(value)
    return trace


def test_round_trip_a_changed_master_changes_notebook_solution_and_checks(tmp_path):
    text = C_MASTER.read_text(encoding="utf-8")
    edited = text
    for old, new in C1_EDITS:
        assert edited.count(old) == 1, old
        edited = edited.replace(old, new)
    masters = tmp_path / "masters"
    masters.mkdir()
    master = masters / "C-long-answers.md"
    master.write_text(text, encoding="utf-8")
    folders = Folders(masters).under(tmp_path / "built")
    build(master, folders)  # the unchanged master, executed
    before = nbformat.read(folders.solutions / "C-long-answers.ipynb", as_version=4)
    master.write_text(edited, encoding="utf-8")
    with pytest.raises(MasterError, match=r"--keep-outputs: the code of C-long-answers changed \(cells c-"):
        build(master, folders, keep_outputs=True)
    build(master, folders, reuse_outputs=True)  # the code changed: executed again

    released = (folders.exercises / "C-long-answers.ipynb").read_text(encoding="utf-8")
    assert "(w - 5)^2" in released and "(w - 3)^2" not in released
    solved = nbformat.read(folders.solutions / "C-long-answers.ipynb", as_version=4)
    c1 = next(c for c in solved.cells if c.metadata["optbook"].get("id") == "C1-numbers")
    new, old = momentum_trace(10.0, 5.0), momentum_trace(10.0, 3.0)
    assert f"t=1: g={new['g'][0]:.6f}  m={new['m'][0]:.6f}  w={new['w'][0]:.6f}" in c1.outputs[0]["text"]
    assert c1.source != next(c for c in before.cells if c.id == c1.id).source

    # the grader's expected results follow: the rebuilt checks accept the new trace only
    rebuilt = {c.id: c for c in load_checks(folders.hidden / "C-long-answers.py")[0]}
    stored = {c.id: c for c in load_checks(ROOT / "solutions" / "hidden" / "C-long-answers.py")[0]}
    for check_id in C1_CHECKS:
        values = {"g": new["g"], "m": new["m"], "w": new["w"]}[check_id[3]]
        stale = {"g": old["g"], "m": old["m"], "w": old["w"]}[check_id[3]]
        assert judge_value(rebuilt[check_id], values)[0] and not judge_value(rebuilt[check_id], stale)[0]
        assert judge_value(stored[check_id], stale)[0] and not judge_value(stored[check_id], values)[0]
    assert judge_value(rebuilt["C1-b"], 0.01 * 2 * (10 - 5))[0]
    assert not judge_value(rebuilt["C1-b"], 0.01 * 2 * (10 - 3))[0]

    # and the real grader: the new reference solution earns full marks on the new
    # exercise; the old one loses exactly the C1 values that changed
    subs = tmp_path / "submissions"
    with_answers(folders.exercises / "C-long-answers.ipynb", answers_of(folders.solutions / "C-long-answers.ipynb"),
                 subs / "new" / "C-long-answers.ipynb")
    with_answers(folders.exercises / "C-long-answers.ipynb", answers_of(ROOT / "solutions" / "C-long-answers.ipynb"),
                 subs / "old" / "C-long-answers.ipynb")
    options = Options(subs, tmp_path / "out" / "gradebook.csv", exercises=folders.exercises,
                      hidden=folders.hidden, jobs=2, limits=Limits(cell_timeout=60, timeout=180), quiet=True)
    results = {r.student: r for r in grade(options).results}
    assert (results["new"].points, results["new"].max_points) == (18, 18)
    failed = {c.id for c in results["old"].checks if not c.passed}
    assert failed == set(C1_CHECKS) | {"C1-b"}

    # a change to the text alone keeps the executed outputs
    master.write_text(edited.replace("Trace three complete iterations", "Trace three full iterations"),
                      encoding="utf-8")
    build(master, folders, reuse_outputs=True)
    again = nbformat.read(folders.solutions / "C-long-answers.ipynb", as_version=4)
    assert [c.get("outputs") for c in again.cells] == [c.get("outputs") for c in solved.cells]
    assert "Trace three full iterations" in (folders.exercises / "C-long-answers.ipynb").read_text(encoding="utf-8")


def test_the_minimal_master_of_the_readme_builds_and_grades(tmp_path):
    readme = (ROOT / "exercises" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"````markdown\n(.*?)````", readme, re.S).group(1)
    masters = tmp_path / "masters"
    masters.mkdir()
    (masters / "X-twice.md").write_text(example, encoding="utf-8")
    folders = Folders(masters).under(tmp_path / "built")
    built = build(masters / "X-twice.md", folders)
    assert [(c.role, c.id) for c in built.cells if c.role != "instructions"] == [
        ("answer", "X1"), ("answer", "X2"), ("test", "X-form"), ("hidden", None)]
    subs = tmp_path / "subs"
    with_answers(folders.exercises / "X-twice.ipynb", answers_of(folders.solutions / "X-twice.ipynb"),
                 subs / "ref" / "X-twice.ipynb")
    shutil.copy(folders.exercises / "X-twice.ipynb", subs / "blank__X-twice.ipynb")
    options = Options(subs, tmp_path / "out" / "gradebook.csv", exercises=folders.exercises,
                      hidden=folders.hidden, jobs=2, quiet=True)
    results = {r.student: (r.points, r.max_points) for r in grade(options).results}
    assert results == {"ref": (2, 2), "blank": (0, 2)}
