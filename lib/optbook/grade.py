"""Grade exercise notebooks with nbval: ``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv``.

The contract between exercises, solutions and this grader is described in
``exercises/README.md``; in short, every cell of an exercise notebook carries
``metadata.optbook`` with a role (``instructions``, ``setup``, ``answer``, ``test``), and
``solutions/hidden/<id>.py`` holds the hidden tests as ``# %% <test-id> points=<n>`` cells.

**Hidden setup blocks.**  A line exactly ``# %% setup`` in the hidden file starts a block
that computes reference values for the tests after it and scores nothing, so that a
reference is computed once, not in every test that uses it.  A file may have any number
of them, anywhere between its tests.  The parser holds them to three rules, each with
an error naming the block's line: the block parses, every name it defines at top level
starts with ``_`` (``_ref_trace``, ``_np``: it cannot replace a notebook or answer name),
and it reads no name it does not define itself or an earlier setup block defined (no
answer and no notebook variable; it imports what it needs).  If a setup block raises
when graded, nothing is repaired: the gradebook notes ``hidden setup cell k raised ...``
and the tests that use its names fail on their own (typically with a ``NameError``).

The pipeline, for every (student, exercise):

1. **Find** the submission: ``SUBMISSIONS/<student>/<id>.ipynb`` or
   ``SUBMISSIONS/<student>__<id>.ipynb``.  Names must be plain (letters, digits, ``.``,
   ``_``, ``-``); symbolic links, odd names and unknown exercises are rejected with a row
   in the gradebook, never silently dropped.  A student without a notebook for an
   exercise gets a ``missing`` row.
2. **Read** only the *answer cells* (by ``metadata.optbook.id``) from the submission.  A
   file that is not a notebook is ``malformed`` (0 points); a missing answer cell falls
   back to the pristine template and the reason is recorded.
3. **Merge** them into the pristine ``exercises/<id>.ipynb``: every other cell (setup,
   visible tests) comes from the pristine notebook, the hidden file's cells are appended
   in file order (tests, and setup blocks as code cells with ``metadata.optbook``
   ``{"role": "setup", "visible": false}``), and the grader adds cells of its own (see
   *Monkeypatching* below).
4. **Run** the merged notebook with ``python -m pytest --nbval-lax`` in a fresh temporary
   folder, in its own process group, with ``OPTBOOK_GRADING=1``, a per-cell timeout, a
   wall-clock timeout (the whole process group and every process it started are
   killed), and resource limits set in ``preexec_fn`` (see *Limits*).  Notebooks run in
   parallel (``--jobs``, default: the number of cores).
5. **Score** from the JUnit XML: nbval names code cell *k* ``Cell k``, and the grader
   knows which merged cell is which test, so each test cell maps to its id and points.
   A test passes iff its cell ran without an exception.  This module is also the small
   pytest plugin loaded in the child (``-p optbook.grade``): it adds each failed cell's
   exception type and message as JUnit properties (so feedback never needs the
   traceback, which would show hidden test code), notes kernel deaths and output floods,
   and caps what goes into the XML.
6. **Write** the gradebook CSV (student, exercise, points, max_points, status, reason,
   tests), one feedback Markdown per student (failed checks with the assertion message
   or exception type and message, truncated; never test code), a CSV of the prose
   answers for manual grading, and a cache entry per (student, exercise).

**Resume.**  The cache entry is keyed by a hash of the submission's answer cells, the
pristine notebook, the hidden tests, the limits and the grader version; re-running skips
every pair whose key is unchanged, and regrades a changed submission.

**Output.**  The prelude lets a cell print 1,000,000 characters and drops the rest; the
plugin notes a truncation (``output truncated in answer a1``), also for output that
bypasses the cap, and drops the outputs it has looked at.

**Status** is ``ok`` (graded normally, whatever the score), ``cell-timeout`` (a cell ran
past ``--cell-timeout`` and was interrupted; the rest was graded), ``kernel-died`` (the
kernel process exited, e.g. ``os._exit``; later cells score nothing), ``timeout`` (past
``--timeout``: killed, 0 points), ``malformed``, ``missing``, ``rejected``, or ``error``
(a problem on the grader's side, e.g. a kernel that did not start: retried once, then
recorded; never cached, so the next run tries again).

**Limits.**  Memory is limited with ``RLIMIT_DATA`` (heap and private writable
mappings), not ``RLIMIT_AS``: NumPy/OpenBLAS and PyTorch reserve large address ranges
and every thread has its own arena and stack, so an address-space limit fails imports
long before real memory use is high, while ``RLIMIT_DATA`` makes a too-large allocation
raise ``MemoryError`` in the student's cell.  ``RLIMIT_CPU`` is twice the wall-clock
limit (a backstop for processes that escape it), ``RLIMIT_FSIZE`` bounds files written,
core dumps are off.  Limits apply per process (pytest and the kernel each get them).
BLAS/OpenMP thread counts default to 1 in the child: parallelism comes from ``--jobs``.

**Monkeypatching.**  Test cells always come from the pristine notebook or the hidden
file, so editing or deleting tests in a submission changes nothing.  Answer cells run in
the same kernel as the tests, though, and could patch what tests use
(``np.allclose = lambda *a, **k: True``).  The grader therefore inserts its own cells:
a *prelude* (first cell) that snapshots every module the setup and test cells import
(plus ``builtins``) and IPython's hooks, a *pin* after each setup/test cell that
remembers the helpers and module aliases it defined (after a hidden setup block: every
name it defined, data too, since no answer runs after it and a test that calls an
answer's function must not leave a rebound reference to the next), and a *guard* before
every test cell and every hidden setup block (both run after the answers) that restores
patched module functions and classes, ``sys.modules``, builtins, pinned names (``np``,
helpers, references), removes user functions that shadow builtins, and resets
IPython's custom exception handler, AST/input transformers and event callbacks.  If a
guard itself fails, the test after it scores nothing.  This defeats patching of library
functions, helpers and builtins; it is not a sandbox against code that rewrites the
interpreter's import or execution machinery, or that attacks the machine (answer cells
can run shell commands): grade untrusted submissions as an unprivileged user in a
container.  Hidden tests should compute reference values themselves (in the test or in
a hidden setup block) instead of trusting notebook variables, and should hand an
answer's function copies of shared references, not the references themselves.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import hashlib
import inspect
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

GRADER_VERSION = "2"  # part of the cache key: bump when grading semantics change
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HIDDEN_MARKER_RE = re.compile(r"# %%[ \t]+(?P<id>[A-Za-z0-9][\w.-]*)[ \t]+points=(?P<points>\d+)[ \t]*")
SETUP_MARKER = "# %% setup"  # starts a hidden setup block (trailing blanks allowed)
MESSAGE_LIMIT = 500  # characters of an exception message shown in feedback
REASON_ITEM_LIMIT = 200  # characters of one note in the gradebook's reason column
OUTPUT_LIMIT = 1_000_000  # characters a cell may print before the rest is dropped
LONGREPR_LIMIT = 4_000  # characters of a failure report kept in the JUnit XML
FILE_SIZE_LIMIT = 256 * 2**20  # RLIMIT_FSIZE for the child
SUBMISSION_SIZE_LIMIT = 100 * 2**20
TRUNCATION_MARK = "\n[optbook grader: output truncated]\n"
GRADER_CELL_HEADER = "# optbook grader cell (not part of the exercise)"


# --------------------------------------------------------------------------- data


@dataclass
class Limits:
    """Per-notebook limits: seconds per cell, seconds in all, MiB of data per process."""

    cell_timeout: float = 120.0
    timeout: float = 600.0
    memory_mb: int | None = 4096


@dataclass
class TestSpec:
    __test__ = False  # not a pytest test class

    id: str
    points: int
    visible: bool
    source: str = ""


@dataclass
class HiddenSetup:
    """A ``# %% setup`` block of a hidden-test file: computes references, scores nothing."""

    source: str
    line: int  # of its ``# %% setup`` marker in the file


@dataclass
class Exercise:
    """A pristine exercise notebook with its visible and hidden tests."""

    id: str
    notebook: dict
    fingerprint: str  # hash of the pristine notebook and the hidden file (setup blocks included)
    hidden: list[TestSpec | HiddenSetup]  # the hidden file's cells in file order
    tests: list[TestSpec]  # visible (in notebook order), then hidden
    answer_ids: list[str]
    prose_ids: list[str]
    guarded_modules: list[str]  # imported by setup and test cells: snapshot by the prelude

    @property
    def max_points(self) -> int:
        return sum(t.points for t in self.tests)


@dataclass
class CellRole:
    """What a code cell of the merged notebook is; index i is nbval's ``Cell i``."""

    kind: str  # grader, setup, answer, test, other
    id: str | None = None
    points: int = 0
    visible: bool = True


@dataclass
class CellRun:
    """One code cell's outcome, read from the JUnit XML."""

    passed: bool
    ename: str = ""
    evalue: str = ""
    nbval: str = ""
    kernel_exit: str | None = None
    output_truncated: bool = False

    @property
    def timed_out(self) -> bool:
        return self.nbval.startswith("Timeout")

    @property
    def kernel_was_dead(self) -> bool:
        return "Kernel dead" in self.nbval


@dataclass
class TestResult:
    __test__ = False

    id: str
    points: int
    max_points: int
    visible: bool
    passed: bool
    message: str = ""


@dataclass
class Result:
    student: str
    exercise: str
    points: int
    max_points: int
    status: str
    reason: str
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # incidents and answer-cell problems

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        data = dict(data)
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)


@dataclass
class Submission:
    student: str
    exercise: str
    path: Path


@dataclass
class NotebookRun:
    junit: Path | None
    returncode: int | None
    timed_out: bool
    log_tail: str


class MalformedSubmission(Exception):
    pass


class ExerciseError(Exception):
    pass


# ------------------------------------------------------------------ small helpers


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " … (truncated)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_error(ename: str, evalue: str, limit: int = MESSAGE_LIMIT) -> str:
    """``Type: message`` as the student sees it (no traceback, no test source)."""
    if not ename:
        return ""
    return clip(f"{ename}: {evalue}" if evalue else ename, limit)


def _meta(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("optbook", {})
    return meta if isinstance(meta, dict) else {}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def python_ast(source: str) -> ast.Module | None:
    """The cell as Python (IPython magics translated), or None if it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def imported_modules(source: str) -> set[str]:
    """Modules a cell imports, by full name (``from numpy.linalg import norm`` → ``numpy.linalg``)."""
    tree = python_ast(source)
    modules: set[str] = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def assigned_names(source: str) -> list[str]:
    """Names a cell binds at top level (defs, classes, imports, assignments)."""
    tree = python_ast(source)
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
            return  # a new scope
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    if tree:
        visit(tree)
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------- exercises


def parse_hidden_tests(text: str, origin: str = "hidden tests") -> list[TestSpec | HiddenSetup]:
    """Split a hidden-test file into its cells, in file order: a test at every
    ``# %% <test-id> points=<n>`` line, a setup block at every ``# %% setup`` line."""
    blocks: list[tuple[int, re.Match | None, list[str]]] = []
    preamble: list[str] = []
    lines = preamble
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.startswith("# %%"):
            lines.append(line)
            continue
        match = None
        if line.rstrip() != SETUP_MARKER:
            match = HIDDEN_MARKER_RE.fullmatch(line.rstrip())
            if not match:
                raise ExerciseError(f"{origin}:{lineno}: expected '# %% <test-id> points=<n>' or "
                                    f"'{SETUP_MARKER}', got {line!r}")
            if match["id"] == "setup":
                raise ExerciseError(f"{origin}:{lineno}: 'setup' is not a test id; a setup block scores "
                                    f"nothing and starts with the line '{SETUP_MARKER}' alone")
        lines = []
        blocks.append((lineno, match, lines))
    _check_preamble("\n".join(preamble), origin)
    cells: list[TestSpec | HiddenSetup] = []
    defined: set[str] = set()  # by the setup blocks so far
    for lineno, match, body in blocks:
        source = "\n".join(body).strip("\n") + "\n"
        if match is not None:
            cells.append(TestSpec(match["id"], int(match["points"]), False, source))
        else:
            defined |= _check_setup_block("\n".join(body), lineno, defined, f"{origin}:{lineno}")
            cells.append(HiddenSetup(source, lineno))
    return cells


def _check_setup_block(source: str, marker_line: int, earlier: set[str], where: str) -> set[str]:
    """The names a setup block defines; an ExerciseError if it does not parse, defines a
    name without a leading ``_`` or reads a name that neither it nor an earlier setup
    block defines (an answer's or the notebook's, which a submission controls)."""
    import builtins

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        tree = python_ast(source)  # with IPython magics translated
        if tree is None:
            at = f" (line {marker_line + exc.lineno})" if exc.lineno else ""
            raise ExerciseError(f"{where}: the setup block does not parse{at}: {exc.msg}") from None
    except ValueError as exc:  # e.g. a null byte
        raise ExerciseError(f"{where}: the setup block does not parse: {exc}") from None
    if not tree.body:
        raise ExerciseError(f"{where}: the setup block is empty")
    public = [name for name in assigned_names(source) if not name.startswith("_")]
    if public:
        raise ExerciseError(f"{where}: the setup block defines {', '.join(map(repr, public))}: names a setup "
                            "block defines must start with '_' (e.g. _ref_...), so that they cannot replace "
                            "a name of the notebook or of an answer")
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name.split(".")[0]) for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    foreign = sorted(read - bound - earlier - set(dir(builtins)) - {"get_ipython"})  # magics use it
    if foreign:
        raise ExerciseError(f"{where}: the setup block reads {', '.join(map(repr, foreign))}, which it does not "
                            "define: a setup block must not use answer or notebook names (it may import, "
                            "and use what an earlier setup block defined)")
    return set(assigned_names(source))


def _check_preamble(code: str, origin: str) -> None:
    """Before the first test or setup block only comments and a docstring are allowed."""
    try:
        body = ast.parse(code).body
    except SyntaxError as exc:
        raise ExerciseError(f"{origin}: code before the first '# %%' line does not parse: {exc}") from None
    docstring = body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
    if body[len(docstring):]:
        raise ExerciseError(f"{origin}: code before the first '# %% <test-id> points=<n>' or "
                            f"'{SETUP_MARKER}' line")


def load_exercise(path: Path, hidden_dir: Path) -> Exercise:
    """Read ``exercises/<id>.ipynb`` and ``<hidden_dir>/<id>.py`` into an Exercise."""
    import nbformat

    exercise_id = path.stem
    raw = path.read_bytes()
    notebook = nbformat.reads(raw.decode("utf-8"), as_version=4)
    hidden_path = hidden_dir / f"{exercise_id}.py"
    hidden_text = hidden_path.read_text(encoding="utf-8") if hidden_path.exists() else ""
    hidden = parse_hidden_tests(hidden_text, str(hidden_path))
    hidden_tests = [t for t in hidden if isinstance(t, TestSpec)]
    visible, answers, prose, sources = [], [], [], []
    for cell in notebook.cells:
        meta = _meta(cell)
        role = meta.get("role")
        if role == "test":
            visible.append(TestSpec(str(meta["id"]), int(meta.get("points", 0)), bool(meta.get("visible", True))))
        elif role == "answer":
            answers.append(str(meta["id"]))
            if cell.cell_type != "code" or meta.get("kind") == "prose":
                prose.append(str(meta["id"]))
        if cell.cell_type == "code" and role in ("setup", "test"):
            sources.append(_source(cell))
    tests = visible + hidden_tests
    _check_unique([t.id for t in tests], f"{path.name}: test id")
    _check_unique(answers, f"{path.name}: answer id")
    modules = set().union(*(imported_modules(s) for s in sources + [t.source for t in hidden]))
    fingerprint = hashlib.sha256(raw + b"\0" + hidden_text.encode("utf-8")).hexdigest()
    return Exercise(exercise_id, notebook, fingerprint, hidden, tests, answers, prose, sorted(modules))


def _check_unique(ids: list[str], what: str) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ExerciseError(f"{what} used twice: {', '.join(duplicates)}")


def load_exercises(exercises_dir: Path, hidden_dir: Path) -> dict[str, Exercise | str]:
    """Every exercise by id; an exercise that cannot be loaded maps to its error text."""
    exercises: dict[str, Exercise | str] = {}
    for path in sorted(exercises_dir.glob("*.ipynb")):
        if not NAME_RE.fullmatch(path.stem):
            continue
        try:
            exercises[path.stem] = load_exercise(path, hidden_dir)
        except Exception as exc:  # noqa: BLE001 - recorded in every row of that exercise
            exercises[path.stem] = f"exercise {path.name} cannot be used: {type(exc).__name__}: {exc}"
    return exercises


# ------------------------------------------------------------------ submissions


def discover(root: Path, exercise_ids: set[str]) -> tuple[list[Submission], list[Result], list[str]]:
    """Submissions under ``root``; plus rejected entries (as rows) and valid student names."""
    found: list[Submission] = []
    rejected: list[Result] = []
    students: set[str] = set()
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            rejected.append(_rejected(entry.name, "?", "symbolic links are not accepted"))
        elif entry.is_dir():
            if _valid_student(entry.name, rejected):
                students.add(entry.name)
                for file in sorted(entry.iterdir(), key=lambda p: p.name):
                    _add_file(file, entry.name, file.name, exercise_ids, found, rejected)
        elif entry.name.endswith(".ipynb"):
            student, sep, exercise_file = entry.name.rpartition("__")
            if not sep:
                rejected.append(_rejected(entry.name, "?", "expected <student>__<exercise>.ipynb"))
            elif _valid_student(student, rejected, exercise_file.removesuffix(".ipynb")):
                students.add(student)
                _add_file(entry, student, exercise_file, exercise_ids, found, rejected)
    return _drop_duplicates(found, rejected, root), rejected, sorted(students)


def _valid_student(name: str, rejected: list[Result], exercise: str = "?") -> bool:
    if NAME_RE.fullmatch(name) and "__" not in name:
        return True
    rejected.append(_rejected(name, exercise, "student names may only use letters, digits, '.', '_' and '-'"))
    return False


def _add_file(path: Path, student: str, filename: str, exercise_ids: set[str],
              found: list[Submission], rejected: list[Result]) -> None:
    if filename.startswith(".") or not filename.endswith(".ipynb"):
        return  # checkpoints, notes and other files are not submissions
    exercise = filename.removesuffix(".ipynb")
    if path.is_symlink() or not path.is_file():
        rejected.append(_rejected(student, exercise, "not a regular file (symbolic links are not accepted)"))
    elif exercise not in exercise_ids:
        rejected.append(_rejected(student, exercise, "unknown exercise"))
    else:
        found.append(Submission(student, exercise, path))


def _drop_duplicates(found: list[Submission], rejected: list[Result], root: Path) -> list[Submission]:
    by_pair: dict[tuple[str, str], list[Submission]] = {}
    for sub in found:
        by_pair.setdefault((sub.student, sub.exercise), []).append(sub)
    unique = []
    for (student, exercise), subs in by_pair.items():
        if len(subs) == 1:
            unique.append(subs[0])
        else:
            names = " and ".join(s.path.relative_to(root).as_posix() for s in subs)
            rejected.append(_rejected(student, exercise, f"two submissions ({names})"))
    return unique


def _rejected(name: str, exercise: str, why: str) -> Result:
    safe = ascii(name)[1:-1]
    return Result(safe, ascii(exercise)[1:-1], 0, 0, "rejected", f"rejected {safe!r}: {why}")


def read_answers(path: Path, exercise: Exercise) -> tuple[dict[str, str], list[str]]:
    """The submission's answer cells by id, and notes (missing or doubled cells)."""
    import nbformat

    if path.stat().st_size > SUBMISSION_SIZE_LIMIT:
        raise MalformedSubmission(f"file larger than {SUBMISSION_SIZE_LIMIT // 2**20} MiB")
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise MalformedSubmission("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MalformedSubmission(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise MalformedSubmission("not a Jupyter notebook (no list of cells)")
    try:
        notebook = nbformat.from_dict(data) if data.get("nbformat") == 4 else nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise MalformedSubmission(f"not a Jupyter notebook ({type(exc).__name__})") from None
    return _answer_cells(notebook.get("cells", []), exercise)


def _answer_cells(cells: list, exercise: Exercise) -> tuple[dict[str, str], list[str]]:
    answers: dict[str, str] = {}
    notes: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        meta = _meta(cell)
        answer_id = meta.get("id")
        if meta.get("role") != "answer" or answer_id not in exercise.answer_ids:
            continue
        if answer_id in answers:
            notes.append(f"answer cell {answer_id} appears twice: the first one was used")
        else:
            answers[answer_id] = _source(cell)
    for answer_id in exercise.answer_ids:
        if answer_id not in answers:
            notes.append(f"missing answer cell {answer_id}: the template was used")
    return answers, notes


# ----------------------------------------------------------------- merging


def merge(exercise: Exercise, answers: dict[str, str], guard: bool = True) -> tuple[dict, list[CellRole]]:
    """The notebook to run: pristine cells with the answers, grader cells, then the hidden
    file's tests and setup blocks in file order.

    Returns the notebook and the role of each of its code cells, in order.
    """
    import nbformat

    cells = [_grader_cell(_prelude_source(exercise))] if guard else []
    for cell in exercise.notebook.cells:
        meta = _meta(cell)
        new = nbformat.from_dict(json.loads(json.dumps(cell)))  # a deep copy
        if meta.get("role") == "answer" and meta.get("id") in answers:
            new.source = answers[meta["id"]]
        if cell.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.extend(_with_guard(new, guard))
    for item in exercise.hidden:
        if isinstance(item, HiddenSetup):
            meta = {"role": "setup", "visible": False}
        else:
            meta = {"role": "test", "id": item.id, "points": item.points, "visible": False}
        cells.extend(_with_guard(nbformat.v4.new_code_cell(item.source, metadata={"optbook": meta}), guard))
    notebook = nbformat.v4.new_notebook(metadata=dict(exercise.notebook.metadata))
    cells = _collapse_grader_cells(cells)
    while cells and _meta(cells[-1]).get("role") == "grader":
        cells.pop()  # a pin after the last test protects nothing
    notebook.cells = cells
    return notebook, code_cell_roles(notebook)


def _with_guard(cell, guard: bool) -> list:
    """The cell, preceded by a guard if it is a test or a hidden setup block (both run after
    the answers), followed by a pin if it defines names (a hidden setup block's: all of
    them, data too)."""
    role = _meta(cell).get("role")
    if not guard or cell.cell_type != "code" or role not in ("setup", "test"):
        return [cell]
    hidden_setup = role == "setup" and _meta(cell).get("visible") is False
    before = [_grader_cell(_guard_source())] if role == "test" or hidden_setup else []
    names = assigned_names(_source(cell))
    after = [_grader_cell(_pin_source(names, values=hidden_setup))] if names else []
    return before + [cell] + after


def _grader_cell(body: str):
    import nbformat

    return nbformat.v4.new_code_cell(f"{GRADER_CELL_HEADER}\n{body}", metadata={"optbook": {"role": "grader"}})


def _collapse_grader_cells(cells: list) -> list:
    """Join adjacent grader cells (a pin followed by a guard) into one cell."""
    out: list = []
    for cell in cells:
        if out and _meta(cell).get("role") == "grader" and _meta(out[-1]).get("role") == "grader":
            body = cell.source.removeprefix(GRADER_CELL_HEADER + "\n")
            out[-1].source += "\n" + body
        else:
            out.append(cell)
    return out


def code_cell_roles(notebook) -> list[CellRole]:
    """The role of every code cell, in nbval's ``Cell k`` order."""
    roles = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        meta = _meta(cell)
        kind = meta.get("role") if meta.get("role") in ("grader", "setup", "answer", "test") else "other"
        roles.append(CellRole(kind, meta.get("id"), int(meta.get("points", 0) or 0), bool(meta.get("visible", True))))
    return roles


_STATE = '__import__("sys").modules["_optbook_grading"]'


def _prelude_source(exercise: Exercise) -> str:
    """The grader's first cell: the kernel-side code below, then its use."""
    code = "\n\n".join(inspect.getsource(obj) for obj in (_kernel_cap_output, _KernelGuard))
    call = (f"_kernel_cap_output({OUTPUT_LIMIT}, {TRUNCATION_MARK!r})\n"
            f"_KernelGuard({exercise.guarded_modules!r}).install()\n"
            "del _kernel_cap_output, _KernelGuard")
    return f"{code}\n\n{call}"


def _pin_source(names: list[str], values: bool = False) -> str:
    return f"{_STATE}.pin({names!r}{', values=True' if values else ''})"


def _guard_source() -> str:
    return f"{_STATE}.restore()"


# The two definitions below run in the kernel: the prelude cell carries their source.


def _kernel_cap_output(limit, mark):  # pragma: no cover - runs in the kernel
    """Let each cell print at most ``limit`` characters (stdout and stderr together)."""
    import sys

    from IPython import get_ipython

    printed = [0]

    def new_cell(*_args):
        printed[0] = 0

    def capped(write):
        def write_capped(text):
            before = printed[0]
            printed[0] += len(text)
            if before < limit:
                write(text[: limit - before])
                if printed[0] > limit:
                    write(mark)
            return len(text)

        return write_capped

    for stream in (sys.stdout, sys.stderr):
        stream.write = capped(stream.write)
    get_ipython().events.register("pre_execute", new_cell)


class _KernelGuard:  # pragma: no cover - runs in the kernel
    """Snapshot, before any answer runs, of what tests rely on; ``restore()`` puts it back.

    Covered: every loaded module of the packages the setup and test cells import, and
    ``builtins`` (functions, classes, submodules, and the methods of their Python
    classes), ``sys.modules`` entries, names pinned after setup and test cells (helpers,
    module aliases), user functions that shadow builtins, IPython's custom exception
    handler, AST and input transformers, event callbacks and shell methods, trace hooks.
    """

    def __init__(self, module_names):
        import builtins
        import importlib
        import sys
        import types

        from IPython import get_ipython

        for name in sorted(module_names):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the test that imports it will report it
                pass
        roots = {name.split(".")[0] for name in module_names} | {"builtins"}
        self.missing = object()
        self.sys, self.shell = sys, get_ipython()
        self.modules = {n: m for n, m in list(sys.modules.items())
                        if isinstance(m, types.ModuleType) and n.split(".")[0] in roots}
        self.module_attrs = {n: self._patchable(vars(m)) for n, m in self.modules.items()}
        self.classes = {id(v): (v, self._patchable(vars(v))) for attrs in self.module_attrs.values()
                        for v in attrs.values() if isinstance(v, type) and v.__flags__ & (1 << 9)}  # heap types
        self.builtin_names = set(dir(builtins))
        self.user_shadows = {k: v for k, v in self.shell.user_ns.items() if k in self.builtin_names}
        self.hooks = {name: list(getattr(self.shell, name)) for name in
                      ("ast_transformers", "input_transformers_cleanup", "input_transformers_post")}
        self.events = {name: list(callbacks) for name, callbacks in self.shell.events.callbacks.items()}
        self.shell_callables = {k: v for k, v in vars(self.shell).items() if callable(v)}
        self.custom_exceptions = self.shell.custom_exceptions
        self.sys_hooks = (sys.gettrace(), sys.getprofile(), sys.excepthook, sys.displayhook)
        self.pins = {}
        self.definitions = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType)

    @staticmethod
    def _patchable(namespace):
        import types

        return {k: v for k, v in dict(namespace).items()
                if callable(v) or isinstance(v, types.ModuleType) or hasattr(type(v), "__get__")}

    def install(self):
        import types

        state = types.ModuleType("_optbook_grading")
        state.pin, state.restore = self.pin, self.restore
        self.sys.modules["_optbook_grading"] = state

    def pin(self, names, values=False):
        """Remember the functions, classes and modules ``names`` are bound to (not data:
        an answer may rebind a model or an array); with ``values`` (after a hidden setup
        block, which no answer follows) whatever they are bound to."""
        for name in names:
            value = self.shell.user_ns.get(name, self.missing)
            if isinstance(value, self.definitions) or (values and value is not self.missing):
                self.pins[name] = value

    def restore(self):
        self._restore_modules()
        self._restore_user_namespace()
        self._restore_ipython()

    def _restore_modules(self):
        for name, module in self.modules.items():
            if self.sys.modules.get(name) is not module:
                self.sys.modules[name] = module
            current = vars(module)
            for key, value in self.module_attrs[name].items():
                if current.get(key, self.missing) is not value:
                    current[key] = value
        for cls, attrs in self.classes.values():
            for key, value in attrs.items():
                if cls.__dict__.get(key, self.missing) is not value:
                    try:
                        setattr(cls, key, value)
                    except (TypeError, AttributeError):
                        pass

    def _restore_user_namespace(self):
        user = self.shell.user_ns
        user["__builtins__"] = self.modules["builtins"]
        for name in [k for k in user if k in self.builtin_names]:
            original = self.user_shadows.get(name, self.missing)
            if user[name] is original:
                continue
            if original is not self.missing:
                user[name] = original
            elif callable(user[name]):
                del user[name]  # e.g. `def abs(x): ...` in an answer cell
        for name, value in self.pins.items():
            if user.get(name, self.missing) is not value:
                user[name] = value

    def _restore_ipython(self):
        shell = self.shell
        for name, saved in self.hooks.items():
            getattr(shell, name)[:] = saved
        for name, saved in self.events.items():
            shell.events.callbacks[name][:] = saved
        shell.custom_exceptions = self.custom_exceptions
        for key, value in list(vars(shell).items()):
            if callable(value) and self.shell_callables.get(key, self.missing) is not value:
                if key in self.shell_callables:
                    setattr(shell, key, self.shell_callables[key])
                elif hasattr(type(shell), key):
                    delattr(shell, key)
        self.sys.settrace(self.sys_hooks[0])
        self.sys.setprofile(self.sys_hooks[1])
        self.sys.excepthook, self.sys.displayhook = self.sys_hooks[2], self.sys_hooks[3]


# ------------------------------------------------------------------ running


_SPAWN_LOCK = threading.Lock()  # one fork at a time: preexec_fn runs between fork and exec


def _apply_limits(limits: Limits) -> None:  # pragma: no cover - runs in the child after fork
    """preexec_fn: resource limits for pytest and, inherited, for its kernel."""
    if limits.memory_mb:
        data = int(limits.memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    cpu = int(2 * limits.timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_env(token: str, workdir: Path, grading: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPTBOOK_GRADING"))}
    env.update(OPTBOOK_RUN_TOKEN=token, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONDONTWRITEBYTECODE="1", IPYTHONDIR=str(workdir / ".ipython"))
    if grading:
        env["OPTBOOK_GRADING"] = "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def nbval_command(notebook: Path, junit: Path, limits: Limits) -> list[str]:
    return [
        sys.executable, "-m", "pytest", notebook.name,
        "-p", "nbval.plugin", "-p", "optbook.grade", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={limits.cell_timeout:g}",
        f"--junitxml={junit}", "-c", "pytest.ini", "--rootdir", ".", "--noconftest",
        "-q", "--tb=no", "-o", "junit_logging=no",
    ]


def run_notebook(notebook: Path, limits: Limits, grading: bool = True) -> NotebookRun:
    """Run ``pytest --nbval-lax`` on ``notebook`` inside its (temporary) folder."""
    workdir = notebook.parent
    junit, log = workdir / "junit.xml", workdir / "pytest.log"
    (workdir / "pytest.ini").write_text("[pytest]\n")
    token = secrets.token_hex(12)
    with open(log, "wb") as out, _SPAWN_LOCK:
        proc = subprocess.Popen(
            nbval_command(notebook, junit, limits), cwd=workdir, env=child_env(token, workdir, grading),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=partial(_apply_limits, limits),
        )
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_run(proc, token)
    tail = _tail(log)
    return NotebookRun(junit if junit.exists() and not timed_out else None, proc.returncode, timed_out, tail)


def kill_run(proc: subprocess.Popen, token: str) -> None:
    """Kill the child's process group and every process that carries the run's token.

    The kernel runs in a session of its own (jupyter_client starts it so), and answer
    cells may start processes too; all of them inherit ``OPTBOOK_RUN_TOKEN``.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(5):
        pids = processes_with_token(token)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not pids:
            break
        time.sleep(0.05)
    proc.wait()


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment has ``OPTBOOK_RUN_TOKEN=<token>`` (Linux /proc)."""
    needle = f"OPTBOOK_RUN_TOKEN={token}".encode()
    pids = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
        except OSError:
            continue
        if needle in environ.split(b"\0") and not zombie:
            pids.append(int(entry.name))
    return pids


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_junit(path: Path) -> dict[int, CellRun]:
    """nbval's ``Cell k`` test cases as CellRuns, by k."""
    cells: dict[int, CellRun] = {}
    for case in ET.parse(path).iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        props = {p.get("name"): p.get("value", "") for p in case.iter("property")}
        failed = any(child.tag in ("failure", "error", "skipped") for child in case)
        index = int(match[1])
        previous = cells.get(index)  # a teardown error is a second test case of that name
        cells[index] = CellRun(
            passed=not failed and (previous is None or previous.passed),
            ename=props.get("ename", previous.ename if previous else ""),
            evalue=props.get("evalue", previous.evalue if previous else ""),
            nbval=props.get("nbval", previous.nbval if previous else ""),
            kernel_exit=props.get("kernel_exit", previous.kernel_exit if previous else None),
            output_truncated="output_truncated" in props or bool(previous and previous.output_truncated),
        )
    return cells


# ------------------------------------------------------------------ scoring


def score(student: str, exercise: Exercise, roles: list[CellRole], cells: dict[int, CellRun],
          notes: list[str], limits: Limits) -> Result:
    """Points per test cell, incidents, and the gradebook's status and reason."""
    tests, notes, status = [], list(notes), "ok"
    guard: CellRun | None = None  # the grader cell before the next test
    for index, (role, where) in enumerate(zip(roles, cell_labels(roles))):
        run = cells.get(index, CellRun(False, nbval="not run"))
        if role.kind == "test":
            tests.append(_test_result(role, run, guard, limits))
        elif role.kind == "grader":
            guard = run
            if not run.passed and run.ename and not any(n.startswith("grader cell") for n in notes):
                notes.append(f"{where} failed: {describe_error(run.ename, run.evalue, REASON_ITEM_LIMIT)}")
        status = note_incident(where, run, role, notes, status, limits)
        if index == 0 and role.kind == "grader" and not run.passed:
            status = "error"  # the prelude runs before any answer: a problem on the grader's side
            if not run.ename and run.kernel_exit is None:
                notes.append(f"{where} did not run: {run.nbval or 'no reason given'}")
    return _graded(student, exercise, tests, notes, status)


def cell_labels(roles: list[CellRole]) -> list[str]:
    """How notes name cells: ``answer a1``, ``test t1``, ``setup cell 2``, ``grader cell 1``,
    ``hidden setup cell 1`` (the first ``# %% setup`` block of the hidden file)."""
    counts: dict[str, int] = {}
    labels = []
    for role in roles:
        if role.kind in ("answer", "test"):
            labels.append(f"{role.kind} {role.id}")
        else:
            kind = "hidden setup" if role.kind == "setup" and not role.visible else role.kind
            counts[kind] = counts.get(kind, 0) + 1
            labels.append(f"{kind} cell {counts[kind]}")
    return labels


def _test_result(role: CellRole, run: CellRun, guard: CellRun | None, limits: Limits) -> TestResult:
    guard_failed = guard is not None and not guard.passed and bool(guard.ename)
    passed = run.passed and not guard_failed
    if passed:
        message = ""
    elif guard_failed:
        message = "not graded: the grader's integrity check before this test failed"
    else:
        message = failure_message(run, limits)
    return TestResult(role.id or "?", role.points if passed else 0, role.points, role.visible, passed, message)


def failure_message(run: CellRun, limits: Limits) -> str:
    if run.kernel_exit is not None:
        return f"the kernel died while this check ran (exit code {run.kernel_exit})"
    if run.timed_out:
        return f"timed out after {limits.cell_timeout:g} s"
    if run.kernel_was_dead:
        return "not run: the kernel had died earlier"
    if run.ename:
        return describe_error(run.ename, run.evalue)
    return "not run" if run.nbval == "not run" else "failed"


def note_incident(where: str, run: CellRun, role: CellRole, notes: list[str], status: str, limits: Limits) -> str:
    """Record what went wrong in a cell (besides a test failing); return the new status."""
    if run.kernel_exit is not None:
        notes.append(f"kernel died in {where} (exit code {run.kernel_exit})")
        return status if status == "error" else "kernel-died"
    if run.timed_out:
        notes.append(f"cell timeout ({limits.cell_timeout:g} s) in {where}")
        status = "cell-timeout" if status == "ok" else status
    elif not run.passed and role.kind in ("setup", "answer", "other") and run.ename:
        notes.append(f"{where} raised {describe_error(run.ename, run.evalue, REASON_ITEM_LIMIT)}")
    if run.output_truncated:
        notes.append(f"output truncated in {where}")
    return status


def _graded(student: str, exercise: Exercise, tests: list[TestResult], notes: list[str], status: str) -> Result:
    failed = [t.id for t in tests if not t.passed]
    summary = f"failed: {', '.join(failed)}" if failed else "all tests passed"
    points = sum(t.points for t in tests)
    return Result(student, exercise.id, points, exercise.max_points, status, "; ".join(notes + [summary]), tests, notes)


def not_graded(student: str, exercise: Exercise | None, exercise_id: str, status: str, reason: str,
               message: str = "not graded") -> Result:
    """A row for a pair that earned nothing (malformed, missing, timeout, error)."""
    specs = exercise.tests if exercise else []
    tests = [TestResult(t.id, 0, t.points, t.visible, False, message) for t in specs]
    return Result(student, exercise_id, 0, exercise.max_points if exercise else 0, status, reason, tests, [reason])


# ------------------------------------------------------------------ one pair


def grade_pair(student: str, exercise: Exercise, answers: dict[str, str], notes: list[str],
               limits: Limits, guard: bool = True) -> Result:
    """Merge, run and score one submission."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix=f"optbook-grade-{exercise.id}-") as tmp:
        notebook, roles = merge(exercise, answers, guard)
        path = Path(tmp) / f"{exercise.id}.ipynb"
        nbformat.write(notebook, path)
        run = run_notebook(path, limits, grading=True)
        if run.timed_out:
            reason = f"timeout: the notebook ran past the {limits.timeout:g} s wall-clock limit and was killed"
            return not_graded(student, exercise, exercise.id, "timeout", "; ".join(notes + [reason]), reason)
        cells = read_junit(run.junit) if run.junit and run.returncode in (0, 1) else {}
        if not cells:
            last = run.log_tail.strip().splitlines()[-1:] or [""]
            reason = clip(f"no test report from pytest (exit code {run.returncode}): {last[0]}", REASON_ITEM_LIMIT)
            return not_graded(student, exercise, exercise.id, "error", reason)
        return score(student, exercise, roles, cells, notes, limits)


def cache_key(exercise: Exercise, answers: dict[str, str], limits: Limits, guard: bool) -> str:
    """What a cached result depends on: the answers, the exercise and hidden tests, the limits."""
    limit_values = [float(limits.cell_timeout), float(limits.timeout), limits.memory_mb]
    blob = json.dumps({"grader": GRADER_VERSION, "exercise": exercise.fingerprint, "answers": answers,
                       "limits": limit_values, "guard": guard}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Cache:
    """One JSON file per (student, exercise): the key it was graded under and the result."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def _path(self, student: str, exercise: str) -> Path:
        return self.folder / f"{student}__{exercise}.json"  # names are validated

    def get(self, student: str, exercise: str, key: str) -> Result | None:
        if self.folder is None:
            return None
        try:
            data = json.loads(self._path(student, exercise).read_text(encoding="utf-8"))
            return Result.from_dict(data["result"]) if data.get("key") == key else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: Result) -> None:
        if self.folder is None or result.status == "error":
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._path(result.student, result.exercise),
                      json.dumps({"key": key, "result": dataclasses.asdict(result)}, indent=1))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------ the whole run


@dataclass
class Options:
    submissions: Path
    out: Path
    exercises: Path = Path("exercises")
    hidden: Path = Path("solutions/hidden")
    jobs: int = os.cpu_count() or 1
    limits: Limits = field(default_factory=Limits)
    feedback_dir: Path | None = None  # default: <out's stem>-feedback/ next to out
    cache_dir: Path | None = None  # default: <out's folder>/.<out's stem>-cache
    prose: Path | None = None  # default: <out's stem>-prose.csv next to out
    use_cache: bool = True
    guard: bool = True
    quiet: bool = False

    def __post_init__(self):
        self.feedback_dir = self.feedback_dir or self.out.with_name(f"{self.out.stem}-feedback")
        self.cache_dir = self.cache_dir or self.out.parent / f".{self.out.stem}-cache"
        self.prose = self.prose or self.out.with_name(f"{self.out.stem}-prose.csv")


@dataclass
class GradeRun:
    results: list[Result]
    executed: int  # notebooks run this time
    cached: int  # results taken from the cache
    prose: list[tuple[str, str, str, str]]  # student, exercise, answer id, text


def grade(options: Options) -> GradeRun:
    """Grade every (student, exercise) under ``options.submissions`` and write the reports."""
    exercises = load_exercises(options.exercises, options.hidden)
    if not exercises:
        raise SystemExit(f"no exercise notebooks in {options.exercises}")
    for exercise_id in exercises:
        if not (options.hidden / f"{exercise_id}.py").exists() and not options.quiet:
            print(f"warning: {options.hidden / exercise_id}.py not found: no hidden tests", file=sys.stderr)
    submissions, rejected, students = discover(options.submissions, set(exercises))
    by_pair = {(s.student, s.exercise): s for s in submissions}
    cache = Cache(options.cache_dir if options.use_cache else None)
    results, jobs, prose, cached = list(rejected), [], [], 0
    rejected_pairs = {(r.student, r.exercise) for r in rejected}
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
    results.extend(_run_jobs(jobs, options, cache))
    results.sort(key=lambda r: (r.student, r.exercise, r.reason))
    write_reports(results, prose, students, options)
    return GradeRun(results, len(jobs), cached, prose)


def _prepare(student: str, exercise_id: str, exercise: Exercise | str, submission: Submission | None,
             options: Options, cache: Cache, prose: list) -> tuple[str, object]:
    """("done", Result) for missing/malformed/broken, ("cached", Result), or ("run", job)."""
    if isinstance(exercise, str):
        return "done", not_graded(student, None, exercise_id, "error", exercise)
    if submission is None:
        return "done", not_graded(student, exercise, exercise_id, "missing", "no submission", "no submission")
    try:
        answers, notes = read_answers(submission.path, exercise)
    except MalformedSubmission as exc:
        return "done", not_graded(student, exercise, exercise_id, "malformed", f"malformed: {exc}")
    prose.extend((student, exercise_id, i, answers[i]) for i in exercise.prose_ids if i in answers)
    key = cache_key(exercise, answers, options.limits, options.guard)
    hit = cache.get(student, exercise_id, key)
    if hit is not None:
        return "cached", hit
    return "run", (student, exercise, answers, notes, key)


def _run_jobs(jobs: list, options: Options, cache: Cache) -> list[Result]:
    results = []
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(_run_job, job, options): job for job in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            student, exercise, _, _, key = futures[future]
            result = future.result()
            cache.put(key, result)
            results.append(result)
            if not options.quiet:
                print(f"[{done}/{len(jobs)}] {student} {exercise.id}: {result.points}/{result.max_points} "
                      f"{result.status}", file=sys.stderr, flush=True)
    return results


def _run_job(job: tuple, options: Options, attempts: int = 2) -> Result:
    """Grade one pair; a problem on the grader's side (e.g. a kernel that did not start on
    a busy machine) is retried once, then recorded as an ``error`` row."""
    student, exercise, answers, notes, _ = job
    for _attempt in range(attempts):
        try:
            result = grade_pair(student, exercise, answers, notes, options.limits, options.guard)
        except Exception as exc:  # noqa: BLE001 - loses nothing: the pair gets an error row
            reason = clip(f"grader error: {type(exc).__name__}: {exc}", REASON_ITEM_LIMIT)
            result = not_graded(student, exercise, exercise.id, "error", reason)
        if result.status != "error":
            break
    return result


# ------------------------------------------------------------------ reports


CSV_COLUMNS = ["student", "exercise", "points", "max_points", "status", "reason", "tests"]


def write_reports(results: list[Result], prose: list[tuple], students: list[str], options: Options) -> None:
    write_gradebook(results, options.out)
    write_prose(prose, options.prose)
    for student in students:
        rows = [r for r in results if r.student == student]
        _write_atomic(options.feedback_dir / f"{student}.md", feedback_markdown(student, rows))


def write_gradebook(results: list[Result], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            tests = " ".join(f"{t.id}:{'pass' if t.passed else 'fail'}" for t in r.tests)
            writer.writerow([r.student, r.exercise, r.points, r.max_points, r.status, r.reason, tests])
    os.replace(tmp, path)


def write_prose(rows: list[tuple], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "exercise", "answer_id", "text"])
        writer.writerows(rows)


def feedback_markdown(student: str, results: list[Result]) -> str:
    """What the student sees: points, which checks failed and why; never test code."""
    lines = [f"# Feedback for {student}", ""]
    for r in results:
        lines += [f"## {r.exercise}: {r.points}/{r.max_points} points", "", f"Status: {r.status}.", ""]
        if r.notes:
            lines += ["Notes:", ""] + [f"- {_md_line(n)}" for n in r.notes] + [""]
        if r.tests:
            lines += ["| check | kind | points | result |", "|---|---|---|---|"]
            lines += [f"| {t.id} | {'visible' if t.visible else 'hidden'} | {t.points}/{t.max_points} | "
                      f"{'passed' if t.passed else 'failed'} |" for t in r.tests]
            lines.append("")
        failed = [t for t in r.tests if not t.passed]
        if failed and r.status not in ("missing", "malformed", "timeout"):
            lines += ["Failed checks:", ""]
            for t in failed:
                lines += [f"- **{t.id}** ({plural(t.max_points, 'point')}):", "", "  ```text"]
                lines += [f"  {line}" for line in clip(t.message, MESSAGE_LIMIT).splitlines() or [""]]
                lines += ["  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------ CLI


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m optbook.grade", description=__doc__.split("\n")[0])
    p.add_argument("submissions", type=Path, help="folder of <student>/<id>.ipynb or <student>__<id>.ipynb")
    p.add_argument("--out", type=Path, required=True, help="the gradebook CSV to write")
    p.add_argument("--exercises", type=Path, default=Path("exercises"),
                   help="pristine notebooks (default: exercises/)")
    p.add_argument("--hidden", type=Path, default=Path("solutions/hidden"),
                   help="hidden tests (default: solutions/hidden/)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks run at once (default: cores)")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell (default: 120)")
    p.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds per notebook (default: 600)")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help="RLIMIT_DATA per process, MiB (default: 4096; 0: none)")
    p.add_argument("--feedback-dir", type=Path, help="feedback Markdown per student (default: <out stem>-feedback/)")
    p.add_argument("--cache-dir", type=Path, help="results cache (default: .<out stem>-cache/ next to --out)")
    p.add_argument("--prose", type=Path, help="prose answers CSV (default: <out stem>-prose.csv)")
    p.add_argument("--no-cache", action="store_true", help="grade everything again (and do not write the cache)")
    a = p.parse_args(argv)
    if not a.submissions.is_dir():
        p.error(f"{a.submissions} is not a folder")
    limits = Limits(a.cell_timeout, a.timeout, a.memory_mb or None)
    return Options(a.submissions, a.out, a.exercises, a.hidden, a.jobs, limits, a.feedback_dir, a.cache_dir,
                   a.prose, use_cache=not a.no_cache)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    run = grade(options)
    errors = sum(r.status == "error" for r in run.results)
    print(f"{len(run.results)} results ({run.executed} executed, {run.cached} from cache, {errors} errors) "
          f"-> {options.out}; feedback in {options.feedback_dir}")
    return 1 if errors else 0


# --------------------------------------------- pytest plugin (child: -p optbook.grade)


def pytest_configure(config) -> None:
    """Teach nbval's kernel wrapper to notice a dead kernel at once (nbval 0.11)."""
    from nbval import kernel as nbval_kernel

    nbval_kernel.RunningKernel.await_reply = _await_reply_watching_kernel
    original_get_message = nbval_kernel.RunningKernel.get_message
    if getattr(original_get_message, "_optbook", False):
        return

    def get_message(self, stream, timeout=None):
        if getattr(self, "_optbook_exit", None) is not None and (timeout is None or timeout > 0.2):
            timeout = 0.2  # a dead kernel sends nothing more: do not wait for it
        return original_get_message(self, stream, timeout=timeout)

    get_message._optbook = True
    nbval_kernel.RunningKernel.get_message = get_message


def _await_reply_watching_kernel(self, msg_id, timeout=None):
    """nbval's await_reply, polling in short steps so that a kernel death ends the wait."""
    from queue import Empty

    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        step = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
        if step <= 0:
            raise Empty
        try:
            msg = self.get_message(stream="shell", timeout=step)
        except Empty:
            if not self.is_alive():
                process = getattr(getattr(self.km, "provisioner", None), "process", None)
                self._optbook_exit = getattr(process, "returncode", None)
                self._optbook_exit = "?" if self._optbook_exit is None else self._optbook_exit
                raise
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["content"]["status"] == "aborted":
                raise RuntimeError("Kernel aborted execution request")
            return


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Add exception type and message (not the traceback) as JUnit properties; cap sizes."""
    if call.when == "call":
        _record_cell(item, call)
    elif call.when == "setup" and call.excinfo is not None:  # e.g. the kernel did not start
        item.user_properties.append(("nbval", clip(f"{call.excinfo.typename}: {call.excinfo.value}", 300)))
    report = yield
    if report.longrepr is not None:
        report.longrepr = clip(str(report.longrepr), LONGREPR_LIMIT)
    return report


def _record_cell(item, call) -> None:
    props = item.user_properties
    outputs = getattr(item, "test_outputs", None) or []
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    if error is not None:
        props += [("ename", clip(error.get("ename", ""), 200)), ("evalue", clip(error.get("evalue", ""), 2000))]
    if call.excinfo is not None:
        props.append(("nbval", clip(str(call.excinfo.value).split("\n")[0], 300)))
    kernel = getattr(item.parent, "kernel", None)
    died = getattr(kernel, "_optbook_exit", None)
    if died is not None and not getattr(kernel, "_optbook_exit_reported", False):
        props.append(("kernel_exit", str(died)))
        kernel._optbook_exit_reported = True
    printed = sum(len(str(o.get("text", ""))) + sum(len(str(v)) for v in o.get("data", {}).values()) for o in outputs)
    if printed > OUTPUT_LIMIT or any(TRUNCATION_MARK in str(o.get("text", "")) for o in outputs):
        props.append(("output_truncated", str(printed)))
    if isinstance(outputs, list):
        outputs.clear()  # nbval keeps them for nothing in lax mode


if __name__ == "__main__":
    sys.exit(main())
