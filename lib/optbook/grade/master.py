"""An exercise's master: one MyST notebook with everything an exercise is made of.

``solutions/masters/<id>.md`` (jupytext's MyST format, so an instructor reads and edits it
like a chapter page, in an editor or in JupyterLab) holds the instructions, the setup,
every answer cell's student template and model answer side by side, the visible
self-checks, the hidden checks with their points and failure messages, and the prose
questions with a model answer.  :mod:`optbook.grade.assign` builds the released
notebook, the reference solution and the checks file from it.  The markers (read by
this module; ``exercises/README.md``, "Writing an exercise", shows a whole master):

Code cells, by their first line:

``# ANSWER <id>``
    a graded answer cell.  Lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` are
    the model answer; lines between ``# BEGIN PROMPT`` and ``# END PROMPT`` the student's
    template; other lines are in both.  Without a PROMPT region, each SOLUTION region
    becomes ``...`` in the template (as in otter-grader).
``# TEST <id> (<n> points)``
    a visible self-check: the rest of the cell, which passes if it runs without an
    exception.  A self-check worth points needs a hidden check of the same id and points
    (its verdict in the student's kernel could be forged).
``# BEGIN HIDDEN TESTS`` … ``# END HIDDEN TESTS``
    graded checks, never released: Python in the format of
    :mod:`optbook.grade.checks` (``@checks.add("<id>", points=<n>, probe=...)`` and a
    judge whose ``assert`` message is the student's feedback), plus the module-level code
    that computes their references.  ``checks`` is created by the builder.
any other code cell
    setup, released as it is.

Markdown cells: a cell whose first line is ``<!-- ANSWER <id>: <what> -->`` is a prose
answer, graded by hand, whose ``<!-- BEGIN SOLUTION -->`` … ``<!-- END SOLUTION -->``
region is the model answer (``<!-- BEGIN PROMPT -->`` … ``<!-- END PROMPT -->``: the
placeholder, default *Write your answer here.*); any other Markdown cell is
instructions.  In instructions, ``{{ hidden_points }}``, ``{{ visible_points }}`` and
``{{ total_points }}`` are replaced by the points the checks carry, and
``{{ how_this_notebook_works }}`` by the standard notes on answering.

Every problem is a :class:`MasterError` that names the file, the cell (its number and
its line in the file) and what to change.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from optbook.grade.checks import ID_RE

MARK = "# YOUR ANSWER (this cell is graded)"
ANSWER_RE = re.compile(r"#\s*ANSWER\s+(\S+)\s*$")
TEST_RE = re.compile(r"#\s*TEST\s+(\S+)(?:\s+\((\d+)\s+points?\))?\s*$")
PROSE_RE = re.compile(r"<!--\s*ANSWER\s+(\S+?)\s*:\s*(.+?)\s*-->\s*$")
HIDDEN_BEGIN, HIDDEN_END = "# BEGIN HIDDEN TESTS", "# END HIDDEN TESTS"
PLACEHOLDER_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
DEFAULT_PROSE_PROMPT = "*Write your answer here.*"
HOW_TO = """\
* Answer in the cells that start with `{mark}`. Only those cells are collected from
  your notebook when it is graded; every other cell, including the checks, comes from
  the notebook as it was handed out. So keep the variable and function names the cells
  ask for, and put everything an answer needs (imports, helper functions) inside its
  answer cell: cells you add yourself are not collected.
* Cells marked *graded by hand* are Markdown: double-click, replace the placeholder,
  and run the cell.
* The *self-check* cells let you test your answers before you submit. They are graded
  too, but passing them does not mean an answer is right: further checks run when your
  notebook is graded, and the feedback explains any that fail. On an unmodified
  notebook every check fails.
* Before submitting, run the whole notebook from the top (*Restart kernel and run
  all cells*) and make sure that no answer cell raises an error. Then check it as the
  grader will, from a terminal: `python -m optbook.check <this notebook>` takes only
  your answer cells, puts them into the notebook as it was handed out, runs it and
  reports every self-check, and which of your cells are not collected.""".format(mark=MARK)


class MasterError(Exception):
    """A master that cannot be built; the message names the file, the cell and the fix."""


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    role: str  # instructions, setup, answer, test, hidden
    source: str  # released text (instructions, setup, test); the template of an answer
    number: int  # 1-based cell number in the master
    line: int  # line of the cell's first line in the master file
    id: str | None = None
    points: int | None = None  # tests
    solution: str | None = None  # answers
    what: str | None = None  # prose answers: "B4", "analysis, about 200 words"

    @property
    def prose(self) -> bool:
        return self.role == "answer" and self.kind == "markdown"


@dataclass
class HiddenCheck:
    id: str
    points: int
    cell: Cell


@dataclass
class Master:
    id: str
    path: Path
    cells: list[Cell]
    hidden: list[HiddenCheck] = field(default_factory=list)

    def where(self, cell: Cell) -> str:
        label = {"answer": f"ANSWER {cell.id}", "test": f"TEST {cell.id}", "hidden": "HIDDEN TESTS"}
        what = label.get(cell.role, cell.role)
        return f"{self.path}, cell {cell.number} (line {cell.line}, {what})"

    @property
    def hidden_source(self) -> list[tuple[Cell, str]]:
        return [(c, c.source) for c in self.cells if c.role == "hidden"]

    @property
    def visible_points(self) -> int:
        return sum(c.points for c in self.cells if c.role == "test")

    @property
    def hidden_points(self) -> int:
        visible = {c.id for c in self.cells if c.role == "test"}
        return sum(h.points for h in self.hidden if h.id not in visible)


def read_master(path: Path) -> Master:
    """Parse and check a master; MasterError names the cell of any problem."""
    import jupytext

    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md:myst")
    lines = text.splitlines()
    master = Master(path.stem, path, [])
    cursor = -1
    for number, nb_cell in enumerate(notebook.cells, start=1):
        source = nb_cell.source.strip("\n")
        cursor = _line_of(lines, source, cursor + 1)
        fake = Cell(nb_cell.cell_type, "cell", "", number, cursor + 1)
        if not source.strip():
            continue
        if nb_cell.cell_type == "code":
            cell = _code_cell(master, source, fake)
        elif nb_cell.cell_type == "markdown":
            cell = _markdown_cell(master, source, fake)
        else:
            raise MasterError(f"{master.where(fake)}: a {nb_cell.cell_type} cell; use Markdown or code cells")
        master.cells.append(cell)
    _check_ids(master)
    return master


def _line_of(lines: list[str], source: str, start: int) -> int:
    """Index of the line where ``source`` begins, searching from ``start``."""
    first = next((s for s in source.splitlines() if s.strip()), "")
    for i in range(start, len(lines)):
        if lines[i].strip() == first.strip():
            return i
    return max(start - 1, 0)


def _code_cell(master: Master, source: str, at: Cell) -> Cell:
    first, _, rest = source.partition("\n")
    if m := ANSWER_RE.fullmatch(first.strip()):
        cell = Cell("code", "answer", "", at.number, at.line, id=m.group(1))
        template, solution = _split_regions(master, cell, rest, "# ", "")
        cell.source, cell.solution = f"{MARK}\n{template}", f"{MARK}\n{solution}"
        return cell
    if first.strip().startswith("# TEST"):
        m = TEST_RE.fullmatch(first.strip())
        cell = Cell("code", "test", rest.strip("\n"), at.number, at.line, id=m.group(1) if m else None)
        if not m or m.group(2) is None:
            raise MasterError(f"{master.where(cell)}: a check without points: write its first line as "
                              f"'# TEST <id> (<n> points)', e.g. '# TEST {cell.id or 'W-form'} (0 points)'")
        cell.points = int(m.group(2))
        if not cell.source.strip():
            raise MasterError(f"{master.where(cell)}: the self-check has no code")
        return cell
    if first.strip() == HIDDEN_BEGIN:
        cell = Cell("code", "hidden", "", at.number, at.line)
        body = source.splitlines()
        if body[-1].strip() != HIDDEN_END:
            raise MasterError(f"{master.where(cell)}: the cell must end with '{HIDDEN_END}'")
        cell.source = "\n".join(body[1:-1]).strip("\n")
        master.hidden += _hidden_checks(master, cell)
        return cell
    if any(marker in source for marker in ("# BEGIN SOLUTION", "# BEGIN PROMPT", HIDDEN_BEGIN)):
        raise MasterError(f"{master.where(at)}: a SOLUTION, PROMPT or HIDDEN TESTS marker in a cell that is "
                          "not an answer: start the cell with '# ANSWER <id>' (or '# BEGIN HIDDEN TESTS')")
    return Cell("code", "setup", source, at.number, at.line)


def _markdown_cell(master: Master, source: str, at: Cell) -> Cell:
    first, _, rest = source.partition("\n")
    if m := PROSE_RE.fullmatch(first.strip()):
        cell = Cell("markdown", "answer", "", at.number, at.line, id=m.group(1), what=m.group(2))
        prompt, solution = _split_regions(master, cell, rest, "<!-- ", " -->", prose=True)
        head = f"**YOUR ANSWER ({cell.what}, graded by hand)**"
        cell.source = f"{head}\n\n{prompt.strip() or DEFAULT_PROSE_PROMPT}"
        cell.solution = f"{head}\n\n{solution.strip()}"
        return cell
    if first.strip().startswith("<!-- ANSWER"):
        raise MasterError(f"{master.where(at)}: write a prose answer's first line as "
                          "'<!-- ANSWER <id>: <what is asked> -->'")
    return Cell("markdown", "instructions", source, at.number, at.line)


def _split_regions(master: Master, cell: Cell, text: str, open_: str, close: str,
                   prose: bool = False) -> tuple[str, str]:
    """(template, solution) of an answer cell's body from its PROMPT and SOLUTION regions.

    Code: lines outside the regions are in both; without a PROMPT region each SOLUTION
    region is ``...`` in the template.  Prose: the regions only."""
    markers = {f"{open_}{w} {r}{close}": (w, r) for w in ("BEGIN", "END") for r in ("PROMPT", "SOLUTION")}
    template, solution, answer, region, has_prompt = [], [], [], None, False
    for line in text.splitlines():
        which, name = markers.get(line.strip(), (None, None))
        if which == "BEGIN":
            if region is not None:
                raise MasterError(f"{master.where(cell)}: BEGIN {name} inside the {region} region")
            region, has_prompt = name, has_prompt or name == "PROMPT"
            if name == "SOLUTION" and not prose:
                template.append((line[: len(line) - len(line.lstrip())] + "...", True))
        elif which == "END":
            if region != name:
                raise MasterError(f"{master.where(cell)}: END {name} without its BEGIN {name}")
            region = None
        elif prose and region is None:
            if line.strip():
                raise MasterError(f"{master.where(cell)}: text outside the PROMPT and SOLUTION regions of a "
                                  "prose answer")
        else:
            if region != "SOLUTION":
                template.append((line, False))
            if region != "PROMPT":
                solution.append(line)
            if region == "SOLUTION":
                answer.append(line)
    if region is not None:
        raise MasterError(f"{master.where(cell)}: BEGIN {region} without its END {region}")
    if not "".join(answer).strip():
        raise MasterError(f"{master.where(cell)}: no model answer: put it between "
                          f"'{open_}BEGIN SOLUTION{close}' and '{open_}END SOLUTION{close}'")
    kept = [line for line, ellipsis in template if not (ellipsis and has_prompt)]
    return "\n".join(kept).strip("\n"), "\n".join(solution).strip("\n")


def _hidden_checks(master: Master, cell: Cell) -> list[HiddenCheck]:
    """The ``checks.add`` calls of a hidden cell, each with literal id and points."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise MasterError(f"{master.where(cell)}, line {cell.line + (exc.lineno or 0)}: the hidden tests do "
                          f"not parse: {exc.msg}") from None
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "checks" for t in node.targets):
            raise MasterError(f"{master.where(cell)}: do not assign 'checks': the builder creates "
                              "`checks = Checks()` before the hidden tests")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"):
            continue
        check_id = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        label = f"check {check_id!r}" if check_id else "a check"
        points = next((k.value for k in node.keywords if k.arg == "points"), None)
        if not isinstance(check_id, str) or not ID_RE.fullmatch(check_id):
            raise MasterError(f"{master.where(cell)}, line {cell.line + node.lineno}: {label} needs an id, a string literal "
                              "of letters, digits, '.', '_', '-'")
        if not (isinstance(points, ast.Constant) and isinstance(points.value, int)
                and not isinstance(points.value, bool) and points.value >= 0):
            raise MasterError(f"{master.where(cell)}, line {cell.line + node.lineno}: {label} without points: write "
                              f"checks.add({check_id!r}, points=<n>, probe=...) with a whole number n ≥ 0")
        if not any(k.arg == "probe" for k in node.keywords):
            raise MasterError(f"{master.where(cell)}, line {cell.line + node.lineno}: {label} without a probe")
        found.append(HiddenCheck(check_id, points.value, cell))
    return found


def _check_ids(master: Master) -> None:
    """No id twice; a self-check worth points has a hidden twin with the same points."""
    seen: dict[tuple[str, str], Cell] = {}
    for cell in master.cells:
        if cell.role in ("answer", "test"):
            if not ID_RE.fullmatch(cell.id or ""):
                raise MasterError(f"{master.where(cell)}: {cell.id!r} is not an id (letters, digits, '.', '_', '-')")
            key = ("answer" if cell.role == "answer" else "check", cell.id)
            if key in seen:
                raise MasterError(f"{master.where(cell)}: duplicate id {cell.id!r}, already used by "
                                  f"cell {seen[key].number} (line {seen[key].line})")
            seen[key] = cell
    hidden: dict[str, HiddenCheck] = {}
    for check in master.hidden:
        if check.id in hidden:
            first = hidden[check.id].cell
            raise MasterError(f"{master.where(check.cell)}: duplicate id {check.id!r}: a hidden check of that id "
                              f"is already in cell {first.number} (line {first.line})")
        hidden[check.id] = check
    for cell in master.cells:
        if cell.role != "test":
            continue
        twin = hidden.get(cell.id)
        worth = f"{cell.points} point{'s' * (cell.points != 1)}"
        if cell.points and twin is None:
            raise MasterError(f"{master.where(cell)}: the self-check is worth {worth} but no hidden "
                              f"check has the id {cell.id!r}: its verdict in the student's kernel could be forged, "
                              "so its points must come from a hidden check of the same id")
        if twin is not None and twin.points != cell.points:
            raise MasterError(f"{master.where(cell)}: the self-check is worth {worth} and its hidden "
                              f"check {cell.id!r} (cell {twin.cell.number}) {twin.points}")
    if not any(c.role == "answer" for c in master.cells):
        raise MasterError(f"{master.path}: no answer cell ('# ANSWER <id>' or '<!-- ANSWER <id>: … -->')")


def fill_placeholders(master: Master, cell: Cell) -> str:
    """An instructions cell with its ``{{ … }}`` placeholders filled in."""
    values = {"hidden_points": str(master.hidden_points), "visible_points": str(master.visible_points),
              "total_points": str(master.hidden_points + master.visible_points),
              "how_this_notebook_works": HOW_TO}

    def value(m: re.Match) -> str:
        if m.group(1) not in values:
            raise MasterError(f"{master.where(cell)}: unknown placeholder {m.group(0)}; the known ones are "
                              + ", ".join(f"{{{{ {k} }}}}" for k in values))
        return values[m.group(1)]

    return PLACEHOLDER_RE.sub(value, cell.source)
