"""Sphinx extension: text tables read as cards on a phone.

A table of sentences (the ranking case's recipe, the summary's optimizers with their
update rules) squeezed into a 390 px screen shows one or two words per line and hides
its last columns behind a sideways scroll.  Such a table is marked ``phone-cards``:
below 600 px ``_ext/static/chapter.css`` shows each row as a card, its first cell the
card's title and every other cell under its column's name.  The names are copies of the
header cells, placed at the start of each cell and hidden on wider screens, where the
table is an ordinary table.

Tables of numbers keep their columns (reading down a column is what they are for) and
scroll sideways in their own box instead.  A table is one of sentences when it has at
least ``MIN_COLUMNS`` columns, a header row, and a cell of at least ``MIN_CELL_CHARS``
characters.  Only the book's own Markdown tables are concerned: a code cell's output
table is HTML the notebook wrote.
"""

from __future__ import annotations

from docutils import nodes

MIN_COLUMNS = 3
MIN_CELL_CHARS = 60
CARDS = "phone-cards"
LABEL = "phone-card-label"


def rows(table: nodes.table, part: type[nodes.Element]) -> list[list[nodes.entry]]:
    """The cells of the table's head (``nodes.thead``) or body (``nodes.tbody``), row by row."""
    return [[entry for entry in row.children if isinstance(entry, nodes.entry)]
            for section in table.findall(part) for row in section.children if isinstance(row, nodes.row)]


def reads_as_cards(head: list[list[nodes.entry]], body: list[list[nodes.entry]]) -> bool:
    """Whether a table with these header rows and body rows (:func:`rows`) is one of sentences."""
    if len(head) != 1 or not body or len(head[0]) < MIN_COLUMNS:
        return False
    if any(len(row) != len(head[0]) or any("morecols" in e or "morerows" in e for e in row)
           for row in head + body):
        return False  # spanning cells: no one name per cell
    return max(len(entry.astext()) for row in body for entry in row) >= MIN_CELL_CHARS


def label_for(header: nodes.entry) -> nodes.inline:
    """A copy of a header cell's words (math included), to stand before a body cell."""
    words = [child.deepcopy() for par in header.findall(nodes.paragraph) for child in par.children]
    if not words:
        words = [nodes.Text(header.astext())]
    return nodes.inline("", "", *words, classes=[LABEL])


def mark_card_tables(app, doctree: nodes.document) -> None:
    if app.builder.format != "html":
        return  # the names are for a narrow screen; a PDF keeps its tables as written
    for table in doctree.findall(nodes.table):
        head, body = rows(table, nodes.thead), rows(table, nodes.tbody)
        if not reads_as_cards(head, body):
            continue
        table["classes"].append(CARDS)
        for row in body:
            for header, entry in list(zip(head[0], row))[1:]:  # the first cell is the card's title
                first = entry.children[0] if entry.children else None
                if isinstance(first, nodes.paragraph):
                    first.insert(0, label_for(header))
                else:
                    entry.insert(0, nodes.paragraph("", "", label_for(header)))


def setup(app):
    app.connect("doctree-read", mark_card_tables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
