"""Grades for Gradescope: one ``results.json`` per student, and an autograder package.

``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv --gradescope DIR`` writes
``DIR/<student>/results.json`` in Gradescope's autograder schema (its specification:
``gradescope/autograder_samples``, ``docs/specs.md``)::

    {"score": 7.0, "output": "...", "tests": [
        {"name": "T-demo · h-step-size", "score": 0.0, "max_score": 2.0,
         "output": "<the judge's message, in words>", "visibility": "after_due_date",
         "status": "failed"}, ...]}

One test per check of every exercise, in the checks' order.  A test's ``output`` is
what the student's feedback says (the judge's message, or the type and message of an
exception the student's own code raised), never a check's code or the value it compares
with.  Visible self-checks are ``"visible"``; the hidden checks are ``after_due_date``
by default (``hidden`` in Gradescope's sense would drop their points from what the
student sees; ``--gradescope-visibility`` chooses).

``python -m optbook.grade --gradescope-package OUT.zip`` writes the zip that Gradescope
runs: ``setup.sh`` (installs Python, bubblewrap, libseccomp and this grader's
requirements) and ``run_autograder`` (copies ``/autograder/submission`` into a
one-student submissions folder, runs this grader on it with the sandbox, and copies that student's
``results.json`` to ``/autograder/results/results.json``; if the grader fails, a
``results.json`` that says so, worth 0).  The zip carries ``lib/`` (the grader), the
pristine exercises and the checks files; the checks never enter the student's kernel,
whose sandbox does not show them.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

from optbook.grade.judge import MESSAGE_LIMIT, Result, clip
from optbook.grade.report import write_atomic

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
STUDENT = "student"  # the one student of a Gradescope run
ROOT = Path(__file__).resolve().parents[3]


def results_json(results: list[Result], hidden_visibility: str = "after_due_date") -> dict:
    """One student's results (all their exercises) in Gradescope's schema."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"visibility {hidden_visibility!r} is not one of {', '.join(VISIBILITIES)}")
    tests, lines = [], []
    for r in sorted(results, key=lambda r: r.exercise):
        lines.append(summary_line(r, hidden_visibility))
        for c in r.checks:
            output = "passed" if c.passed else clip(c.message or "failed", MESSAGE_LIMIT)
            tests.append({"name": f"{r.exercise} · {c.id}", "score": float(c.points),
                          "max_score": float(c.max_points), "output": output,
                          "visibility": "visible" if c.visible else hidden_visibility,
                          "status": "passed" if c.passed else "failed"})
    return {"score": float(sum(r.points for r in results)), "output": "\n".join(lines),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def summary_line(r: Result, hidden_visibility: str) -> str:
    """The always-visible top of a student's results: with the hidden checks not visible,
    only the visible checks' count and the notes that name no hidden check (the gradebook's
    reason lists failed hidden checks by id, e.g. "failed: D1-final")."""
    if hidden_visibility == "visible":
        return f"{r.exercise}: {r.points}/{r.max_points} points ({r.status}; {r.reason})"
    visible = [c for c in r.checks if c.visible]
    hidden = {c.id for c in r.checks if not c.visible}
    notes = [n for n in r.notes if not any(h in n for h in hidden)]
    line = (f"{r.exercise}: {sum(c.passed for c in visible)} of {len(visible)} visible checks "
            f"passed; the other checks' results are shown {hidden_visibility.replace('_', ' ')}")
    if r.status != "ok":
        line += f" ({r.status})"
    return line + "".join(f"\n  {n}" for n in notes)


def write_results(results: list[Result], folder: Path, hidden_visibility: str = "after_due_date") -> list[Path]:
    """``folder/<student>/results.json`` for every student with a row."""
    by_student: dict[str, list[Result]] = {}
    for r in results:
        by_student.setdefault(r.student, []).append(r)
    paths = []
    for student, rows in sorted(by_student.items()):
        path = folder / student / "results.json"
        write_atomic(path, json.dumps(results_json(rows, hidden_visibility), indent=1, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (as root).
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip bubblewrap libseccomp2
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
cd /autograder/source && /autograder/venv/bin/python -m pip install --quiet -r requirements.txt
# the grader and the book's library (optbook), importable by the grader and by the kernel
/autograder/venv/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/optbook.pth", "w").write(sys.argv[1] + "\\n")' /autograder/source/lib
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission with
# optbook's grader (a sandboxed kernel; the checks stay in this process) and write
# /autograder/results/results.json.  AUTOGRADER and PYTHON may be set to try it
# elsewhere (the tests emulate Gradescope's layout in a temporary folder).
set -uo pipefail
AUTOGRADER="${AUTOGRADER:-/autograder}"
PYTHON="${PYTHON:-$AUTOGRADER/venv/bin/python}"
SOURCE="$AUTOGRADER/source"
RESULTS="$AUTOGRADER/results"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS" "$WORK/submissions/__STUDENT__"
fail() {  # a results.json that says what went wrong, worth 0
  "$PYTHON" -c 'import json, sys; print(json.dumps({"score": 0.0, "output": sys.argv[1], "tests": []}))' \
    "$1" > "$RESULTS/results.json"
  exit 0
}
shopt -s nullglob
notebooks=("$AUTOGRADER"/submission/*.ipynb "$AUTOGRADER"/submission/*/*.ipynb)
[ ${#notebooks[@]} -gt 0 ] || fail "No notebook (.ipynb) was found in the submission."
exercises=("$SOURCE"/exercises/*.ipynb)
if [ ${#exercises[@]} -eq 1 ]; then
  # one exercise in this assignment: the notebook of its name, else the first one,
  # whatever it is called
  want="$(basename "${exercises[0]}")"
  pick="${notebooks[0]}"
  for nb in "${notebooks[@]}"; do [ "$(basename "$nb")" = "$want" ] && pick="$nb"; done
  cp "$pick" "$WORK/submissions/__STUDENT__/$want"
else
  for nb in "${notebooks[@]}"; do cp "$nb" "$WORK/submissions/__STUDENT__/$(basename "$nb")"; done
fi
cd "$WORK"
"$PYTHON" -m optbook.grade "$WORK/submissions" \
  --out "$WORK/gradebook.csv" --exercises "$SOURCE/exercises" --hidden "$SOURCE/checks" \
  --gradescope "$WORK/gradescope" --gradescope-visibility __VISIBILITY__ --jobs 1 __EXTRA__ \
  > "$WORK/grader.log" 2>&1
status=$?
cat "$WORK/grader.log"
if [ -f "$WORK/gradescope/__STUDENT__/results.json" ]; then
  cp "$WORK/gradescope/__STUDENT__/results.json" "$RESULTS/results.json"
else
  fail "The grader could not grade this submission (exit code $status); please tell your instructor."
fi
"""


def package(out: Path, exercises_dir: Path, checks_dir: Path, only: list[str] | None = None,
            hidden_visibility: str = "after_due_date", extra_args: list[str] | None = None) -> list[str]:
    """Write the Gradescope autograder zip ``out``; return the exercise ids it grades.

    ``only``: the exercise ids of this Gradescope assignment (default: every notebook in
    ``exercises_dir``).  ``extra_args`` are passed to the grader (e.g. limits)."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"visibility {hidden_visibility!r} is not one of {', '.join(VISIBILITIES)}")
    available = {p.stem: p for p in sorted(exercises_dir.glob("*.ipynb"))}
    ids = list(only) if only else list(available)
    unknown = [i for i in ids if i not in available]
    if unknown or not ids:
        raise ValueError(f"no exercise notebook {', '.join(unknown) or '(none)'} in {exercises_dir}; "
                         f"there are: {', '.join(available) or 'none'}")
    missing = [i for i in ids if not (checks_dir / f"{i}.py").exists()]
    if missing:
        raise ValueError(f"no checks file for {', '.join(missing)} in {checks_dir}")
    run = (RUN_AUTOGRADER.replace("__STUDENT__", STUDENT).replace("__VISIBILITY__", hidden_visibility)
           .replace("__EXTRA__", " ".join(_quote(a) for a in extra_args or [])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        _add(z, "setup.sh", SETUP_SH, executable=True)
        _add(z, "run_autograder", run, executable=True)
        _add(z, "requirements.txt", _requirements())
        for i in ids:
            z.write(available[i], f"exercises/{i}.ipynb")
            z.write(checks_dir / f"{i}.py", f"checks/{i}.py")
        lib = ROOT / "lib"
        for path in sorted(lib.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".so", ".pyc")):
                z.write(path, f"lib/{path.relative_to(lib)}")
    write_bytes_atomic(out, buffer.getvalue())
    return ids


def _requirements() -> str:
    """The project's pins without the editable install of the project itself (the zip
    carries lib/, which setup.sh puts on the venv's path with a .pth file)."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("-e")) + "\n"


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _add(z: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, text)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
