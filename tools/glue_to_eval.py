"""Convert a chapter page's glued numbers to {eval} expressions, so JupyterLab shows them.

    .venv/bin/python tools/glue_to_eval.py chapters/10-pytorch-in-practice.md [--dry-run]
    .venv/bin/python tools/glue_to_eval.py --citations chapters/NN-page.md [--dry-run]

Why: myst-nb's ``{glue:text}`` needs the book build (it reads the executed notebook), so
in JupyterLab the prose shows the reference itself. ``{eval}`` is understood by both:
myst-nb evaluates it while it executes the page (execution mode "inline"), and
jupyterlab-myst evaluates it in the running kernel when the Markdown cell is run (Run
All). A string is shown without its quotes in both, so each number becomes a formatted
string in the hidden cell that computed it, and the prose names that string.

What the script does to the page (docs/jupyterlab-pages.md has the whole recipe):

* ``glue("name", value)`` in a code cell becomes ``name = format(value, ".2f")``, with the
  format that the prose used (``{glue:text}`name:.2f```); ``str(value)`` where the prose
  gave none (and for ``{glue}`name```). A name used with several formats gets one string
  per format (``name_2f``, ``name_0f``); a name that the page's code already uses for
  something else gets ``_text`` appended; characters that cannot be in a Python name
  become ``_``. A glued value that the prose never uses stays as a plain assignment.
* ``{glue:text}`name:.2f``` and ``{glue}`name``` in the prose become ``{eval}`name```.
* ``{doc}`page``` and ``{ref}`label``` without a title get the title that the site shows
  (the page's title, the heading after the label), written out:
  ``{doc}`8.5 RMSprop and AdaGrad <05-rmsprop-and-adagrad>```, because jupyterlab-myst
  sees one notebook and cannot look them up. Titles with markup are left (and listed).
* ``glue`` is taken out of the page's imports once no call is left.
* The front matter gets ``mystnb: execution_mode: inline`` (myst-nb evaluates {eval}
  only in that mode); run tools/page_headers.py afterwards (it checks the header form).

With ``--citations`` it rewrites the page's citations instead, and nothing else (see
"Citations" in docs/jupyterlab-pages.md): ``{cite}`kingma2015adam``` becomes the link
``[[Kingma and Ba, 2015]](#kingma2015adam)``. On the site myst-parser hands ``#key`` to
sphinxcontrib-bibtex, which puts its own linked "[Kingma and Ba, 2015]" (the same text,
with the full reference on hover) in place of the link; jupyterlab-myst has no
bibliography and shows the link's text. The text is made here by sphinxcontrib-bibtex's
author-year style from references.bib, entries in the order the site lists them, and an
existing link whose text no longer matches is rewritten. It refuses keys that are not in
references.bib or on no bibliography list of 8.16 (the site could not resolve them) and
cite roles other than ``{cite}``/``{cite:p}``. Text-only pages (no jupytext header, like
17-exercises.md) are converted too; the glue conversion says they have no header and
skips them.

It refuses (exit 1, page unchanged) when a prose reference comes before the cell that
computes it (inline execution evaluates the prose in order), when a glue call's name is
not a string literal, or when a glued name is not glued anywhere; it lists what it left
for a person: comments that still mention ``glue`` and code lines longer than 88.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
MAX_CODE_LINE = 88

GLUE_REF = re.compile(r"\{glue(?P<role>:text)?\}`(?P<body>[^`]+)`")
OTHER_GLUE = re.compile(r"\{glue:(?!text\})[a-z]+\}|```\{glue")
XREF = re.compile(r"\{(?P<role>doc|ref)\}`(?P<target>[^`<>]+)`")
LABEL = re.compile(r"^\(([^)]+)\)=\s*$")
MARKUP = re.compile(r"[`$*_\\]")
CITE = re.compile(r"\{cite(?::p)?\}`(?P<keys>[^`]+)`")
OTHER_CITE = re.compile(r"\{cite:(?!p\})[a-z]+\}")
# a citation written as a link: [[Kingma and Ba, 2015]](#kingma2015adam)
CITE_LINK = re.compile(r"\[(?P<text>\[[^\[\]]*\])\]\(#(?P<keys>[^()\s#]+)\)")
BIB_FILTER = re.compile(r":filter: key in \{([^}]*)\}")
HEADER = "---\njupytext:"


@dataclass
class Cell:
    start: int            # index of the first code line in the page's lines
    lines: list[str]      # the code lines


@dataclass
class Glue:
    key: str
    cell: int             # index of the cell
    node: ast.Call
    stmt: ast.stmt
    formats: list[str] = field(default_factory=list)


def code_cells(lines: list[str]) -> list[Cell]:
    """The code cells of a MyST notebook: their code lines, after the cell options."""
    cells, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            j = i + 1
            if j < len(lines) and lines[j] == "---":          # options as a YAML block
                j = lines.index("---", j + 1) + 1
            while j < len(lines) and lines[j].startswith(":"):  # options as :key: value
                j += 1
            if j < len(lines) and lines[j] == "" and j > i + 1:
                j += 1
            end = lines.index("```", j)
            cells.append(Cell(j, lines[j:end]))
            i = end + 1
        else:
            i += 1
    return cells


def in_code(cells: list[Cell], line: int) -> bool:
    return any(c.start <= line < c.start + len(c.lines) for c in cells)


def names_in(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
    return found


def identifier(key: str) -> str:
    name = re.sub(r"\W", "_", key)
    return f"v_{name}" if name[0].isdigit() else name


def format_slug(fmt: str) -> str:
    return re.sub(r"\W", "", fmt.replace(",", "c")) or "str"


def doc_titles() -> dict[str, str]:
    """docname (relative to chapters/) -> the page's title."""
    titles = {}
    for page in CHAPTERS.glob("*.md"):
        title = next((ln[2:].strip() for ln in page.read_text().splitlines() if ln.startswith("# ")), None)
        if title:
            titles[page.stem] = title
    return titles


def label_titles() -> dict[str, str | None]:
    """label -> the heading after it (None when no heading follows it)."""
    titles = {}
    for page in CHAPTERS.glob("*.md"):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            m = LABEL.match(line)
            if m:
                nxt = next((ln for ln in lines[i + 1:] if ln.strip()), "")
                titles[m.group(1)] = nxt.lstrip("#").strip() if nxt.startswith("#") else None
    return titles


def render(var: str, fmt: str | None, value: str) -> str:
    if fmt is None:
        return f"{var} = {value}"
    if fmt == "":
        return f"{var} = str({value})"
    return f'{var} = format({value}, "{fmt}")'


def wrap(statement: str) -> str:
    """``x = format(value, "f")`` over two lines when it is longer than a code line may be."""
    m = re.fullmatch(r'( *)(\w+) = format\((.*), ("[^"]*")\)', statement)
    if len(statement) <= MAX_CODE_LINE or m is None:
        return statement
    indent, var, value, fmt = m.groups()
    return f"{indent}{var} = format(\n{indent}    {value}, {fmt})"


def bibliography_lists() -> list[list[str]]:
    """The keys of each bibliography on the references page (8.16), in page order."""
    text = (CHAPTERS / "16-summary-and-references.md").read_text()
    return [re.findall(r'"([^"]+)"', block) for block in BIB_FILTER.findall(text)]


def citation_text(keys: list[str]) -> str:
    """What the site shows for ``{cite}`keys```, as Markdown: "[Wang *et al.*, 2017]".

    Made by sphinxcontrib-bibtex's own author-year style (``bibtex_reference_style`` in
    _config.yml) from references.bib, with the entries in the order the site gives them:
    the order of the bibliography lists on 8.16, sorted within a list as the "plain"
    style sorts them (``bibtex_default_style``). Raises KeyError naming a key that is
    not in references.bib or on no list.
    """
    import pybtex.plugin
    import pybtex_docutils
    from docutils import nodes
    from pybtex.database import parse_file
    from sphinxcontrib.bibtex.plugin import find_plugin
    from sphinxcontrib.bibtex.style.referencing import format_references
    from sphinxcontrib.bibtex.style.template import SphinxReferenceInfo

    entries = parse_file(str(ROOT / "references.bib")).entries
    lists = bibliography_lists()
    for key in keys:
        if key not in entries:
            raise KeyError(f"{key!r} is not in references.bib")
        if not any(key in keys_ for keys_ in lists):
            raise KeyError(f"{key!r} is on no bibliography list of 16-summary-and-references.md")
    plain = pybtex.plugin.find_plugin("pybtex.style.formatting", "plain")()
    ordered = [entry for keys_ in lists
               for entry in plain.sort([entries[k] for k in keys_ if k in keys])]

    class Builder:              # what the reference nodes ask of Sphinx's builder
        name = "html"

        def get_relative_uri(self, from_doc: str, to_doc: str) -> str:
            return to_doc

    info = SphinxReferenceInfo(Builder(), "page", "references", "id", None, "", "")
    references = [(entry, formatted, info)
                  for entry, formatted in zip(ordered, plain.format_entries(ordered))]
    style = find_plugin("sphinxcontrib.bibtex.style.referencing", "author_year")()
    rendered = format_references(style, "p", references).render(pybtex_docutils.Backend())

    def markdown(node) -> str:
        if isinstance(node, nodes.Text):
            return str(node)
        inner = "".join(markdown(child) for child in node.children)
        return f"*{inner}*" if isinstance(node, nodes.emphasis) else inner

    return "".join(markdown(node) for node in rendered)


def convert_citations(text: str) -> tuple[str, list[str]]:
    """(new text, problems): ``{cite}`keys``` -> ``[[Author, year]](#keys)``, outside code.

    Links already written this way get their text made again (so a changed entry shows).
    """
    problems = []
    lines = text.split("\n")
    cells = code_cells(lines) if text.startswith(HEADER) else []

    def link(i: int, keys: str) -> str:
        try:
            label = citation_text([k.strip() for k in keys.split(",")])
        except KeyError as exc:
            problems.append(f"line {i + 1}: {exc.args[0]}")
            return ""
        return f"[{label}](#{','.join(k.strip() for k in keys.split(','))})"

    for i, line in enumerate(lines):
        if in_code(cells, i):
            continue
        if OTHER_CITE.search(line):
            problems.append(f"line {i + 1}: a cite role other than {{cite}} / {{cite:p}}: by hand")
        line = CITE_LINK.sub(lambda m: link(i, m["keys"]) or m[0], line)
        lines[i] = CITE.sub(lambda m: link(i, m["keys"]) or m[0], line)
    if problems:
        return text, problems
    return "\n".join(lines), problems


def convert(text: str, page_name: str = "page") -> tuple[str, list[str], list[str]]:
    """(new text, problems that stop the conversion, notes for a person)."""
    problems, notes = [], []
    if not text.startswith(HEADER):
        return text, [f"{page_name} has no jupytext header (a text-only page, not a "
                      "notebook): nothing to convert"], notes
    lines = text.split("\n")
    cells = code_cells(lines)

    # 1. the glue calls and every name the page's code uses
    glues: dict[str, Glue] = {}
    used: set[str] = set()
    trees = []
    for k, cell in enumerate(cells):
        try:
            tree = ast.parse("\n".join(cell.lines))
        except SyntaxError as exc:
            problems.append(f"code cell at line {cell.start + 1} does not parse: {exc}")
            trees.append(None)
            continue
        trees.append(tree)
        used |= names_in(tree)
        for stmt in ast.walk(tree):
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                    and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "glue"):
                continue
            call = stmt.value
            line = cell.start + stmt.lineno
            if not (call.args and isinstance(call.args[0], ast.Constant)
                    and isinstance(call.args[0].value, str)) or len(call.args) != 2:
                problems.append(f"line {line}: glue(...) without a literal name and one value")
                continue
            if any(kw.arg != "display" or not (isinstance(kw.value, ast.Constant)
                                               and kw.value.value is False) for kw in call.keywords):
                problems.append(f"line {line}: glue(...) with display or other keywords")
                continue
            key = call.args[0].value
            if key in glues:
                problems.append(f"line {line}: {key!r} is glued twice")
                continue
            glues[key] = Glue(key, k, call, stmt)

    # 2. the prose's references, in order
    refs = []   # (line index, match)
    for i, line in enumerate(lines):
        if in_code(cells, i):
            continue
        if OTHER_GLUE.search(line):
            problems.append(f"line {i + 1}: a glue role or directive other than {{glue}} / {{glue:text}}")
        for m in GLUE_REF.finditer(line):
            key, fmt = m["body"], ""
            if m["role"]:
                key, _, fmt = m["body"].partition(":")
            if key not in glues:
                problems.append(f"line {i + 1}: {key!r} is used in the text but glued nowhere")
                continue
            if cells[glues[key].cell].start > i:
                problems.append(f"line {i + 1}: {key!r} is used before the cell that computes it "
                                f"(line {cells[glues[key].cell].start + 1})")
            if fmt not in glues[key].formats:
                glues[key].formats.append(fmt)
            refs.append((i, m, key, fmt))
    if problems:
        return text, problems, notes

    # 3. a variable per (name, format)
    taken = used | set(dir(builtins)) | set(keyword.kwlist)
    var_of: dict[tuple[str, str], str] = {}
    for key, g in glues.items():
        base = identifier(key)
        for fmt in g.formats:
            var = base if len(g.formats) == 1 else f"{base}_{format_slug(fmt)}"
            if var in taken or var in var_of.values():
                var += "_text"
            if var in taken or var in var_of.values():
                problems.append(f"no free name for {key!r} ({var} is taken)")
            var_of[key, fmt] = var
        if not g.formats:
            notes.append(f"{key!r} is glued but not used in the text: kept as a plain assignment")
            var_of[key, None] = base + ("_value" if base in taken else "")
    if problems:
        return text, problems, notes

    # 4. rewrite the glue statements (bottom up, so line numbers stay valid)
    edits = []  # (first line index, last line index, new lines)
    for key, g in glues.items():
        cell = cells[g.cell]
        code = "\n".join(cell.lines)
        stmt = g.stmt
        indent = " " * stmt.col_offset
        value = ast.get_source_segment(code, g.node.args[1])
        simple = isinstance(g.node.args[1], (ast.Name, ast.Attribute, ast.Subscript, ast.Constant))
        statements = []
        fmts = g.formats or [None]
        if len(fmts) > 1 and not simple:
            temp = f"{identifier(key)}_value"
            if temp in taken:
                problems.append(f"no free name for the value of {key!r}")
            statements.append(f"{temp} = {value}")
            value = temp
        statements += [render(var_of[key, fmt], fmt, value) for fmt in fmts]
        # each statement starts at the call's indentation; the lines that continue a
        # multi-line value keep their own (get_source_segment leaves them as written)
        new = [line for st in statements for line in wrap(indent + st).split("\n")]
        edits.append((cell.start + stmt.lineno - 1, cell.start + stmt.end_lineno - 1, new))
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last + 1] = new
    if problems:
        return text, problems, notes

    # 5. the prose: {eval} for glue, written-out titles for {doc} and {ref}
    docs, labels = doc_titles(), label_titles()
    text = "\n".join(lines)

    def glue_ref(m: re.Match) -> str:
        key, fmt = m["body"], ""
        if m["role"]:
            key, _, fmt = m["body"].partition(":")
        return f"{{eval}}`{var_of[key, fmt]}`"

    def xref(m: re.Match) -> str:
        target = m["target"].strip()
        title = (docs.get(Path(target).name) if m["role"] == "doc" else labels.get(target))
        if title is None:
            notes.append(f"{{{m['role']}}}`{target}`: no title found, left as it is")
            return m[0]
        if MARKUP.search(title):
            notes.append(f"{{{m['role']}}}`{target}`: its title has markup ({title}), left as it is")
            return m[0]
        return f"{{{m['role']}}}`{title} <{target}>`"

    lines = text.split("\n")
    cells = code_cells(lines)
    for i, line in enumerate(lines):
        if not in_code(cells, i):
            lines[i] = XREF.sub(xref, GLUE_REF.sub(glue_ref, line))

    # 6. the import of glue, once no call is left
    text = "\n".join(lines)
    if not re.search(r"\bglue\(", "\n".join(ln for c in code_cells(lines) for ln in c.lines)):
        text, n = re.subn(r"^from optbook\.book\.pages import glue\n", "", text, flags=re.M)
        if not n:
            text = re.sub(r"^(from optbook\.book\.pages import .*)\bglue, |, glue\b", r"\1", text, flags=re.M)

    # 7. the front matter: inline execution
    header_end = text.index("\n---\n", 3)
    header = text[:header_end]
    if "execution_mode:" in header:
        header = re.sub(r"(?m)^  execution_mode: .*$", "  execution_mode: inline", header)
    elif "\nmystnb:" in header:
        header = re.sub(r"(?m)^mystnb:$", "mystnb:\n  execution_mode: inline", header)
    else:
        header += "\nmystnb:\n  execution_mode: inline"
    text = header + text[header_end:]

    # 8. what a person should look at
    lines = text.split("\n")
    for cell in code_cells(lines):
        for j, line in enumerate(cell.lines):
            if "glue" in line and line.lstrip().startswith("#"):
                notes.append(f"line {cell.start + j + 1}: a comment mentions glue: {line.strip()}")
            if len(line) > MAX_CODE_LINE:
                notes.append(f"line {cell.start + j + 1}: {len(line)} characters")
    return text, problems, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    parser.add_argument("--citations", action="store_true",
                        help="rewrite the citations as links (and nothing else)")
    args = parser.parse_args()
    failed = False
    for page in args.pages:
        if args.citations:
            new, problems = convert_citations(page.read_text())
            notes = []
        elif not page.read_text().startswith(HEADER):
            print(f"{page}: no jupytext header (a text-only page, not a notebook): skipped")
            continue
        else:
            new, problems, notes = convert(page.read_text(), page.name)
        for line in problems:
            print(f"{page}: CANNOT CONVERT: {line}")
        for line in notes:
            print(f"{page}: note: {line}")
        if problems:
            failed = True
        elif not args.dry_run:
            page.write_text(new)
            print(f"{page}: converted")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
