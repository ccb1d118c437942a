"""The numbers in the prose of converted pages: {eval} expressions (tools/glue_to_eval.py).

myst-nb evaluates ``{eval}`name``` only while it executes a page in execution mode
"inline", in page order; jupyterlab-myst evaluates it when Run All reaches the Markdown
cell. So on a converted page every {eval} names a string that a hidden cell *above* it
formats, and no {glue} is left. tests/test_jupyterlab.py checks the rendering in a real
JupyterLab; tools/check_page.py (and the book build) on the site.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from glue_to_eval import convert  # noqa: E402

EVAL = re.compile(r"\{eval\}`([^`]*)`")
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")   # myst-nb's default nb_eval_name_regex
HIDDEN = {"hide-cell", "hide-input", "remove-cell", "remove-input"}
PAGES = sorted(p for p in (ROOT / "chapters").glob("*.md") if "{eval}" in p.read_text())


def test_the_prototype_page_is_converted():
    assert ROOT / "chapters" / "10-pytorch-in-practice.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_eval_names_a_string_formatted_above_it_in_a_hidden_cell(page):
    text = page.read_text()
    nb = jupytext.reads(text, fmt="md:myst")
    assert nb.metadata.get("mystnb", {}).get("execution_mode") == "inline"
    assert "{glue" not in text and "glue(" not in text
    defined: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for name in EVAL.findall(cell.source):
                assert NAME.match(name), f"{{eval}}`{name}`: a bare name, please"
                assert name in defined, f"{{eval}}`{name}` comes before the cell that formats it"
            continue
        hidden = bool(HIDDEN & set(cell.metadata.get("tags", [])))
        # format(...) or str(...), or quoted(...): a full run's text (optbook.book.pages.QuotedResults)
        for name in re.findall(r"^\s*(\w+) = (?:format|str|quoted)\(", cell.source, re.M):
            assert hidden, f"{name} is formatted in a visible cell"
            defined.add(name)


def test_the_converter():
    page = textwrap.dedent('''\
        ---
        jupytext:
          text_representation:
            extension: .md
            format_name: myst
            format_version: 0.13
        kernelspec:
          name: python3
          display_name: Python 3 (ipykernel)
          language: python
        ---

        ```{code-cell} ipython3
        :tags: [hide-cell]

        from optbook.book.pages import glue
        gap = 0.5
        glue("gap", gap)
        glue("window_0.9", 1 / (1 - 0.9))
        for k in range(2):
            glue("loss", 1.23456 * k)
        ```

        Gap {glue:text}`gap:.2f`, window {glue:text}`window_0.9:.0f` or
        {glue:text}`window_0.9:.1f`, loss {glue}`loss`; see {doc}`04-momentum`.
        ''')
    new, problems, _ = convert(page)
    assert not problems
    assert 'gap_text = format(gap, ".2f")' in new            # `gap` is the code's own name
    assert "window_0_9_value = 1 / (1 - 0.9)" in new          # two formats: one value...
    assert 'window_0_9_0f = format(window_0_9_value, ".0f")' in new   # ...two strings
    assert "    loss = str(1.23456 * k)" in new
    assert ("Gap {eval}`gap_text`, window {eval}`window_0_9_0f` or\n"
            "{eval}`window_0_9_1f`, loss {eval}`loss`; see {doc}`8.4 Gradient descent with momentum <04-momentum>`."
            in new)
    assert "import glue" not in new and "execution_mode: inline" in new
    exec(jupytext.reads(new, "md:myst").cells[0].source, ns := {})
    assert (ns["gap_text"], ns["window_0_9_0f"], ns["window_0_9_1f"]) == ("0.50", "10", "10.0")


def test_the_converter_refuses_a_forward_reference():
    page = textwrap.dedent('''\
        ---
        jupytext:
          text_representation:
            format_name: myst
        ---

        The answer is {glue:text}`x:.1f`.

        ```{code-cell} ipython3
        glue("x", 42)
        ```
        ''')
    new, problems, _ = convert(page)
    assert new == page and "'x' is used before the cell that computes it" in problems[0]
