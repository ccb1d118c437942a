"""The book's own Sphinx extensions (_ext/), tested without a build."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))

import slider_frames  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"frame-bytes"


def image_model(data: bytes, fmt: str = "png", alt: str = "") -> dict:
    return {"model_name": "ImageModel", "state": {"format": fmt, "alt": alt},
            "buffers": [{"encoding": "base64", "path": ["value"],
                         "data": base64.b64encode(data).decode()}]}


def page_with(models: dict) -> str:
    state = {"version_major": 2, "version_minor": 0, "state": models}
    return ("<html><body><p>text</p><script type=\"application/vnd.jupyter.widget-state+json\">"
            + json.dumps(state).replace("</", "<\\/") + "</script></body></html>")


def test_frames_leave_the_page_as_files(tmp_path):
    out = tmp_path / "html"
    page = out / "chapters" / "p.html"
    page.parent.mkdir(parents=True)
    other = PNG + b"2"
    page.write_text(page_with({"a": image_model(PNG, alt="Figure for β = 0.9 </script>"),
                               "b": image_model(PNG),
                               "c": image_model(other), "s": {"model_name": "SliderModel"}}))
    assert slider_frames.externalize_page(page, out) == 3
    state = json.loads(page.read_text().split('json">')[1].split("</script>")[0])["state"]
    urls = {k: base64.b64decode(m["buffers"][0]["data"]).decode()
            for k, m in state.items() if m["model_name"] == "ImageModel"}
    assert all(state[k]["state"]["format"] == "url" for k in urls)
    assert urls["a"] == urls["b"] != urls["c"], "identical frames share one file"
    assert all(u.startswith("../_frames/") for u in urls.values()), "relative to the page"
    assert (page.parent / urls["a"]).read_bytes() == PNG
    assert (page.parent / urls["c"]).read_bytes() == other
    assert "<p>text</p>" in page.read_text()
    alts = page.read_text().split('id="optbook-frame-alt">')[1].split("</script>")[0]
    assert json.loads(alts) == {urls["a"]: "Figure for β = 0.9 </script>"}
    # a second pass (an incremental rebuild) changes nothing
    before = page.read_text()
    assert slider_frames.externalize_page(page, out) == 0
    assert page.read_text() == before


def test_a_frame_whose_bytes_are_not_its_format_is_refused(tmp_path):
    page = tmp_path / "p.html"
    page.write_text(page_with({"a": image_model(b"GIF89a...", "png")}))
    with pytest.raises(ValueError, match="not one"):
        slider_frames.externalize_page(page, tmp_path)


import notebook_downloads  # noqa: E402


def test_the_readers_zip_holds_the_repository_without_the_instructors_material(tmp_path):
    target = tmp_path / "chapter.zip"
    count = notebook_downloads.write_chapter_zip(ROOT, target)
    import zipfile

    names = zipfile.ZipFile(target).namelist()
    assert len(names) == count
    prefix = notebook_downloads.ZIP_NAME + "/"
    assert all(n.startswith(prefix) for n in names)
    names = {n[len(prefix):] for n in names}
    for needed in ("Makefile", "requirements.txt", "README.md", "_toc.yml",
                   "chapters/00-opening.md", "lib/optbook/__init__.py"):
        assert needed in names
    assert not [n for n in names if n.startswith(notebook_downloads.NOT_FOR_READERS)]
    assert not [n for n in names if n.startswith((".venv/", "_build/", "node_modules/"))]


def test_the_readers_zip_outside_a_git_checkout(tmp_path):
    root = tmp_path / "book"
    for name in ("Makefile", "chapters/a.md", "solutions/hidden/A.py", ".venv/x", "_build/y"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    files = notebook_downloads.repository_files(root)
    assert files == ["Makefile", "chapters/a.md"]


def test_every_download_menu_offers_the_chapter_and_how_to_run_it():
    menu = {"label": "download-buttons", "buttons": [{"label": "ipynb"}, {"label": "md"}]}
    context = {"header_buttons": [{"label": "fullscreen"}, menu],
               "pathto": lambda name, resource=0: f"../{name}" if resource else f"../{name}.html"}
    notebook_downloads._offer_chapter(None, "chapters/p", "page.html", context, None)
    labels = [b["label"] for b in menu["buttons"]]
    assert labels == ["ipynb", "download-chapter-button", "run-yourself-button", "md"]
    assert menu["buttons"][1]["url"] == "../_downloads/chapter-8-optimization.zip"
    assert menu["buttons"][2]["url"] == "../chapters/00-opening.html#run-it-yourself"
    # on the opening itself, a link within the page (pathto would give "#")
    menu["buttons"] = [{"label": "ipynb"}, {"label": "md"}]
    context["pathto"] = lambda name, resource=0: "#" if name == "chapters/00-opening" else name
    notebook_downloads._offer_chapter(None, "chapters/00-opening", "page.html", context, None)
    assert menu["buttons"][2]["url"] == "#run-it-yourself"


import parallel_read  # noqa: E402


def test_pages_are_split_so_the_processes_finish_together():
    seconds = {"a": 150, "b": 120, "c": 100, "d": 90, "e": 40, "f": 30, "g": 5}
    chunks = parallel_read.plan_chunks(seconds, seconds, 2)
    assert sorted(sum(chunks, [])) == sorted(seconds)           # every page, once
    loads = [sum(seconds[p] for p in chunk) for chunk in chunks]
    assert max(loads) - min(loads) <= 5                         # 270 vs 265
    assert chunks[0][0] == "a" and chunks[1][0] == "b"          # the longest start first
    # Sphinx's own split (alphabetical slices) would leave one process the long pages
    assert parallel_read.plan_chunks(seconds, seconds, 1) == [["a", "b", "c", "d", "e", "f", "g"]]


def test_a_page_never_timed_counts_as_an_average_page():
    chunks = parallel_read.plan_chunks(["new", "a", "b"], {"a": 10.0, "b": 2.0}, 2)
    assert chunks == [["a"], ["new", "b"]]     # "new" weighs 6: it joins the lighter process
    assert parallel_read.plan_chunks(["x", "y"], {}, 4) == [["x"], ["y"]]


def test_the_times_come_from_the_last_build_else_the_committed_copy(tmp_path):
    last = tmp_path / "page_times.json"
    assert parallel_read.known_times(last, parallel_read.COMMITTED)   # the committed copy
    last.write_text(json.dumps({"processes": 2, "pages": {"p": {"seconds": 3.5}}}))
    assert parallel_read.known_times(last, parallel_read.COMMITTED) == {"p": 3.5}
    last.write_text("not json")
    assert parallel_read.known_times(last) == {}
    # the committed copy names every page of the table of contents
    toc = (ROOT / "_toc.yml").read_text()
    committed = parallel_read.known_times(parallel_read.COMMITTED)
    for page in committed:
        assert page in toc
    for line in toc.splitlines():
        if "file:" in line:
            page = line.split("file:")[1].strip()
            assert page in committed, f"{page} has no time in _ext/page_times.json"


def test_the_number_of_processes(monkeypatch):
    assert parallel_read.jobs_wanted({}) == parallel_read.cpus()
    assert parallel_read.jobs_wanted({"OPTBOOK_BUILD_JOBS": "1"}) == 1
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="OPTBOOK_BUILD_JOBS"):
            parallel_read.jobs_wanted({"OPTBOOK_BUILD_JOBS": bad})


# ---- phone_tables: tables of sentences read as cards on a phone -------------------------

import phone_tables  # noqa: E402
from docutils import nodes  # noqa: E402
from docutils.core import publish_doctree  # noqa: E402

HTML_BUILD = SimpleNamespace(builder=SimpleNamespace(format="html"))

LONG = "per-parameter step sizes for features of very different scales, here"


def list_table(header: list[str], *rows: list[str]) -> str:
    """An RST list-table of these cells, its first row the header."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in (header, *rows):
        lines += [f"   {'*' if i == 0 else ' '} - {cell}" for i, cell in enumerate(row)]
    return "\n".join(lines) + "\n"


RECIPE = list_table(["Component", "Choice", "Why it matters"], ["Optimizer", "AdamW", LONG],
                    ["Schedule", "warm-up", "the first steps are the dangerous ones"])


def marked(rst: str) -> nodes.table:
    doctree = publish_doctree(rst, settings_overrides={"report_level": 5})
    phone_tables.mark_card_tables(HTML_BUILD, doctree)
    return next(doctree.findall(nodes.table))


def labels(table: nodes.table) -> list[list[str]]:
    return [[label.astext() for label in row.findall(nodes.inline) if phone_tables.LABEL in label["classes"]]
            for row in table.findall(nodes.row)]


def test_a_table_of_sentences_gets_its_column_names_before_each_cell():
    table = marked(RECIPE)
    assert phone_tables.CARDS in table["classes"]
    # the header row has none; in each body row every cell but the first (the card's title)
    assert labels(table) == [[], ["Choice", "Why it matters"], ["Choice", "Why it matters"]]
    body = list(table.findall(nodes.tbody))[0]
    assert [[entry.astext() for entry in row.findall(nodes.entry)] for row in body.children] == [
        ["Optimizer", "ChoiceAdamW", "Why it matters" + LONG],  # the label, then the cell's own words
        ["Schedule", "Choicewarm-up", "Why it mattersthe first steps are the dangerous ones"]]


def test_the_label_copies_the_header_math_and_all():
    table = marked(RECIPE.replace("- Choice", "- :math:`B`"))
    label = next(n for n in table.findall(nodes.inline) if phone_tables.LABEL in n["classes"])
    assert isinstance(label.children[0], nodes.math) and label.astext() == "B"


@pytest.mark.parametrize("rst, why", [
    (RECIPE.replace(LONG, "per-parameter step sizes"), "no cell of 60 characters: a table of numbers or words"),
    (list_table(["Component", "Why it matters"], ["Optimizer", LONG]), "two columns read well as a table"),
])
def test_other_tables_stay_tables(rst, why):
    table = marked(rst)
    assert phone_tables.CARDS not in table["classes"], why
    assert labels(table) == [[]] * len(labels(table))


def test_only_the_html_build_changes_tables():
    doctree = publish_doctree(RECIPE, settings_overrides={"report_level": 5})
    phone_tables.mark_card_tables(SimpleNamespace(builder=SimpleNamespace(format="latex")), doctree)
    table = next(doctree.findall(nodes.table))
    assert phone_tables.CARDS not in table["classes"] and labels(table) == [[], [], []]


def test_a_table_with_a_spanning_cell_stays_a_table():
    doctree = publish_doctree(RECIPE, settings_overrides={"report_level": 5})
    table = next(doctree.findall(nodes.table))
    list(table.findall(nodes.entry))[-1]["morerows"] = 1
    phone_tables.mark_card_tables(HTML_BUILD, doctree)
    assert phone_tables.CARDS not in table["classes"] and labels(table) == [[], [], []]
