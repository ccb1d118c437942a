"""``python -m optbook.grade.assign``: build the exercises from their masters.

    .venv/bin/python -m optbook.grade.assign                 # every master
    .venv/bin/python -m optbook.grade.assign C-long-answers  # one
    .venv/bin/python -m optbook.grade.assign --keep-outputs D2-batch-size
    .venv/bin/python -m optbook.grade.assign --check         # are the built files up to date?

For every master ``solutions/masters/<id>.md`` (its format: :mod:`optbook.grade.master`
and ``exercises/README.md``, "Writing an exercise") this writes

* ``exercises/<id>.ipynb``: the released notebook, answer cells holding the templates,
  no outputs, no key, no hidden checks;
* ``solutions/<id>.ipynb``: the same cells with every answer filled in, executed in a
  fresh kernel (outputs kept);
* ``solutions/hidden/<id>.py``: the checks file the grader reads
  (:mod:`optbook.grade.checks`), made of the master's hidden tests.  It is imported
  (its references computed) before anything is written, so a broken check stops the
  build with a message that names the master's cell.

``--keep-outputs`` keeps the stored solution's outputs instead of executing it, and
refuses if any code cell changed other than in comments and layout (use it for D2,
whose full experiment runs for a long time); ``--reuse-outputs`` (what ``make
exercises`` passes) keeps them where the code is unchanged and executes the others.  ``--check`` builds into a temporary
folder and compares the released notebooks and checks files with the stored ones
(solutions by their cells' sources); it exits 1 and names what differs.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from optbook.grade.checks import ChecksError, load_checks
from optbook.grade.master import Master, MasterError, fill_placeholders, read_master

ROOT = Path(__file__).resolve().parents[3]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CHECKS_HEADER = '''"""Checks of {id} (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/{id}.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()
'''


@dataclass
class Folders:
    masters: Path = ROOT / "solutions" / "masters"
    exercises: Path = ROOT / "exercises"
    solutions: Path = ROOT / "solutions"
    hidden: Path = ROOT / "solutions" / "hidden"

    def under(self, root: Path) -> Folders:
        """The same layout under another root (a temporary folder)."""
        return Folders(self.masters, root / "exercises", root / "solutions", root / "solutions" / "hidden")


def notebook(master: Master, *, solution: bool):
    """The released notebook (``solution=False``) or the reference solution, unexecuted."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"},
                   "optbook": {"exercise": master.id}}
    prefix = master.id.split("-")[0].lower()
    for cell in (c for c in master.cells if c.role != "hidden"):
        source = cell.solution if (solution and cell.role == "answer") else cell.source
        meta, tags = {"role": cell.role}, []
        if cell.role == "instructions":
            source = fill_placeholders(master, cell)
        elif cell.role == "answer":
            meta["id"] = cell.id
            tags = ["answer"]
            if cell.prose:
                meta["kind"] = "prose"
                if solution:
                    source = dropdown(source)
        elif cell.role == "test":
            meta.update(id=cell.id, points=cell.points, visible=True)
            tags = ["test"]
        if solution and cell.kind == "code" and cell.role in ("answer", "test"):
            tags.append("hide-input")  # the book shows the code behind a toggle
        new = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        out = new(source)
        out.id = f"{prefix}-{len(nb.cells):02d}"
        out.metadata = {"optbook": meta, **({"tags": tags} if tags else {})}
        nb.cells.append(out)
    nbformat.validate(nb)
    return nb


def dropdown(answer: str) -> str:
    """A prose model answer folded into an HTML ``<details>`` block, which Markdown
    renders in JupyterLab and in the book alike: the reader decides when to look."""
    head, _, body = answer.partition("\n\n")
    return f"{head}\n\n<details>\n<summary>Show the model answer</summary>\n\n{body}\n\n</details>"


def checks_source(master: Master) -> tuple[str, list[tuple[int, object]]]:
    """The checks file's text, and (first line, cell) for each hidden cell in it."""
    text = CHECKS_HEADER.format(id=master.id)
    starts = []
    for cell, source in master.hidden_source:
        text += "\n\n"
        starts.append((text.count("\n") + 1, cell))
        text += source.rstrip() + "\n"
    return text, starts


def write_checks(master: Master, path: Path) -> None:
    """Write the checks file and import it as the grader will; a problem names the cell."""
    text, starts = checks_source(master)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        checks, _ = load_checks(path)
    except ChecksError as exc:
        m = re.match(rf"{re.escape(str(path))}(?::(\d+))?: (.*)", str(exc), re.S)
        line, message = (int(m.group(1)) if m and m.group(1) else None), (m.group(2) if m else str(exc))
        first, cell = next(((f, c) for f, c in reversed(starts) if line and line >= f), (None, None))
        where = f"{master.where(cell)}, line {cell.line + line - first + 1}" if cell else str(master.path)
        raise MasterError(f"{where}: the hidden tests fail when imported: {message}") from None
    built = [(c.id, c.points) for c in checks]
    declared = [(h.id, h.points) for h in master.hidden]
    if built != declared:  # e.g. a checks.add inside a loop or a function
        raise MasterError(f"{master.path}: the hidden tests added {built} when imported, but their cells declare "
                          f"{declared}: write each check as its own @checks.add(...) with literal id and points")


def execute(nb, timeout: float | None = None, env: dict[str, str] | None = None, allow_errors: bool = False) -> None:
    """Run a notebook in a fresh kernel in a temporary folder (no time limit by default:
    D2's full experiment takes many minutes on a CPU); ``env``: variables set for it."""
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                           allow_errors=allow_errors, resources={"metadata": {"path": tmp}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def program(source: str) -> str:
    """The code as Python sees it: its syntax tree, without comments or layout."""
    return ast.dump(ast.parse(source))


def changed_code(stored_path: Path, solved) -> list[str] | None:
    """Ids of the code cells of ``solved`` that differ from the stored solution's other
    than in comments and layout; new self-checks after the stored cells do not count
    (None: cells were removed)."""
    import nbformat

    stored = {c.id: c for c in nbformat.read(stored_path, as_version=4).cells if c.cell_type == "code"}
    code = [c for c in solved.cells if c.cell_type == "code"]
    old, new = code[:len(stored)], code[len(stored):]
    changed = [c.id for c in old if c.id not in stored or program(stored[c.id].source) != program(c.source)]
    changed += [c.id for c in new if c.metadata["optbook"]["role"] != "test"]
    return changed if len(old) == len(stored) else None


def same_code(stored_path: Path, solved) -> bool:
    return changed_code(stored_path, solved) == []


def reuse(stored_path: Path, solved) -> None:
    """Give ``solved`` the stored solution's outputs; refuse if any code cell changed
    other than in comments and layout.  Self-checks added after the stored cells get
    what they print when the solution runs in the grader's short setting
    (``OPTBOOK_GRADING=1``), numbered after the stored cells; one that fails refuses."""
    import nbformat

    if not stored_path.exists():
        raise MasterError(f"--keep-outputs: there is no stored solution {stored_path}; build it without the flag")
    changed = changed_code(stored_path, solved)
    if changed != []:
        raise MasterError(f"--keep-outputs: the code of {stored_path.stem} changed (cells "
                          f"{', '.join(changed or []) or 'added or removed'}); build it without the flag")
    stored = {c.id: c for c in nbformat.read(stored_path, as_version=4).cells if c.cell_type == "code"}
    code = [c for c in solved.cells if c.cell_type == "code"]
    for cell in code[:len(stored)]:
        cell.outputs = stored[cell.id].outputs
        cell.execution_count = stored[cell.id].execution_count
    new = code[len(stored):]
    if new:
        short = nbformat.from_dict(copy.deepcopy(dict(solved)))
        execute(short, env={"OPTBOOK_GRADING": "1"}, allow_errors=True)
        ran = {c.id: c for c in short.cells}
        count = max((c.execution_count or 0 for c in code[:len(stored)]), default=0)
        for count, cell in enumerate(new, start=count + 1):
            errors = [o for o in ran[cell.id].outputs if o.get("output_type") == "error"]
            if errors:
                raise MasterError(f"--keep-outputs: the new check {cell.metadata['optbook']['id']} of "
                                  f"{stored_path.stem} fails on the solution: {errors[0]['ename']}: "
                                  f"{errors[0]['evalue']}")
            cell.outputs, cell.execution_count = ran[cell.id].outputs, count


def build(master_path: Path, folders: Folders, *, keep_outputs: bool = False, run: bool = True,
          reuse_outputs: bool = False) -> Master:
    """Build one master into ``folders``; nothing is written if the master is refused.

    ``reuse_outputs``: keep the stored solution's outputs when its code is unchanged,
    execute it otherwise."""
    import nbformat

    master = read_master(master_path)
    pristine, solved = notebook(master, solution=False), notebook(master, solution=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_checks(master, Path(tmp) / f"{master.id}.py")  # refuses before anything is written
    stored = folders.solutions / f"{master.id}.ipynb"
    if keep_outputs or (reuse_outputs and stored.exists() and same_code(stored, solved)):
        reuse(stored, solved)
    elif run:
        execute(solved)
    solved.metadata = {k: v for k, v in solved.metadata.items() if k in ("kernelspec", "language_info", "optbook")}
    solved.metadata["language_info"] = {"name": "python"}
    for folder in (folders.exercises, folders.solutions):
        folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(pristine, folders.exercises / f"{master.id}.ipynb")
    nbformat.write(solved, folders.solutions / f"{master.id}.ipynb")
    write_checks(master, folders.hidden / f"{master.id}.py")
    return master


def masters(folder: Path, ids: list[str]) -> list[Path]:
    found = {p.stem: p for p in sorted(folder.glob("*.md")) if p.name != "README.md"}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise MasterError(f"no master {', '.join(unknown)} in {folder}; there are: {', '.join(found) or 'none'}")
    return [found[i] for i in ids] if ids else list(found.values())


def check_up_to_date(paths: list[Path], folders: Folders) -> list[str]:
    """What differs between a fresh build (not executed) and the stored files."""
    import nbformat

    differences = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = folders.under(Path(tmp))
        for path in paths:
            master = build(path, fresh, run=False)
            exercise = f"{master.id}.ipynb"
            for old, new, what in [(folders.exercises / exercise, fresh.exercises / exercise, "released notebook"),
                                   (folders.hidden / f"{master.id}.py", fresh.hidden / f"{master.id}.py",
                                    "checks file")]:
                if not old.exists() or old.read_bytes() != new.read_bytes():
                    differences.append(f"{old}: the {what} differs from {path}")
            stored = folders.solutions / exercise
            cells = [(c.id, c.source) for c in nbformat.read(fresh.solutions / exercise, as_version=4).cells]
            if not stored.exists() or cells != [(c.id, c.source) for c in nbformat.read(stored, as_version=4).cells]:
                differences.append(f"{stored}: the reference solution's cells differ from {path}")
    return differences


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m optbook.grade.assign", description=__doc__.split("\n\n")[0])
    p.add_argument("ids", nargs="*", help="masters to build (default: all in --masters)")
    p.add_argument("--masters", type=Path, default=Folders.masters, help="default: solutions/masters/")
    p.add_argument("--exercises", type=Path, default=Folders.exercises, help="default: exercises/")
    p.add_argument("--solutions", type=Path, default=Folders.solutions, help="default: solutions/")
    p.add_argument("--hidden", type=Path, help="checks files (default: <solutions>/hidden/)")
    p.add_argument("--keep-outputs", action="store_true",
                   help="keep the stored solutions' outputs (refused if their code changed)")
    p.add_argument("--reuse-outputs", action="store_true",
                   help="keep the stored outputs of solutions whose code is unchanged, execute the others")
    p.add_argument("--no-execute", action="store_true", help="write the solutions without running them")
    p.add_argument("--check", action="store_true", help="compare a fresh build with the stored files")
    a = p.parse_args(argv)
    folders = Folders(a.masters, a.exercises, a.solutions, a.hidden or a.solutions / "hidden")
    try:
        paths = masters(a.masters, a.ids)
        if a.check:
            differences = check_up_to_date(paths, folders)
            for line in differences:
                print(line, file=sys.stderr)
            print(f"{len(paths)} masters: {'up to date' if not differences else f'{len(differences)} differences'}")
            return 1 if differences else 0
        for path in paths:
            master = build(path, folders, keep_outputs=a.keep_outputs, run=not a.no_execute,
                           reuse_outputs=a.reuse_outputs)
            print(f"{path}: wrote {folders.exercises / master.id}.ipynb, {folders.solutions / master.id}.ipynb, "
                  f"{folders.hidden / master.id}.py ({master.visible_points} visible + {master.hidden_points} "
                  "hidden points)")
    except MasterError as exc:
        print(f"python -m optbook.grade.assign: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
