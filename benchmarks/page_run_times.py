"""How long each chapter page takes to run top to bottom as a student runs it.

    .venv/bin/python benchmarks/page_run_times.py [chapters/NN-page.md ...]

Each page is converted by jupytext and executed in a fresh kernel, in the student's quick
mode (OPTBOOK_FULL_RUN unset; ``--full`` sets it, as the book build does). Prints the
wall time and the kernel's CPU time (user + system, its threads and child processes
included). The target is ≤ 20 s wall on 2 quiet cores; on a busy machine the CPU time
is the steadier number. Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
RUSAGE = ("import resource as _r\n"
          "_s, _c = _r.getrusage(_r.RUSAGE_SELF), _r.getrusage(_r.RUSAGE_CHILDREN)\n"
          "print(_s.ru_utime + _s.ru_stime + _c.ru_utime + _c.ru_stime)")


def run_page(page: Path) -> tuple[float, float]:
    nb = jupytext.read(page)
    nb.cells.append(nbformat.v4.new_code_cell(RUSAGE))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": tmp}}).execute()
        wall = time.perf_counter() - start
    cpu = float(nb.cells[-1].outputs[0]["text"].strip())
    return wall, cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--full", action="store_true", help="run at full size, as the book")
    args = parser.parse_args(argv)
    if args.full:
        os.environ["OPTBOOK_FULL_RUN"] = "1"
    else:
        os.environ.pop("OPTBOOK_FULL_RUN", None)
    pages = args.pages or sorted(p for p in (ROOT / "chapters").glob("*.md")
                                 if p.read_text().startswith("---\njupytext:"))
    print(f"{'page':45s} {'wall s':>8s} {'CPU s':>8s}   (load {os.getloadavg()[0]:.1f})")
    for page in pages:
        wall, cpu = run_page(page)
        print(f"{page.stem:45s} {wall:8.1f} {cpu:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
