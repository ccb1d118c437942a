"""The opening page, 8.1 (gradient descent variants) and 8.2 (the fraud story, measured):
the claims their text makes, recomputed from the pages' own code cells, and the shape
the pages must keep (titles, chapter map, objectives, voice, code width)."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from page_refs import page_heading, without_references, wrong_titles  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OPENING = ROOT / "chapters" / "00-opening.md"
VARIANTS = ROOT / "chapters" / "01-gradient-descent-variants.md"
FRAUD = ROOT / "chapters" / "02-fraud-story-measured.md"
PAGES = (OPENING, VARIANTS, FRAUD)

CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def code_cells(page):
    """The code of every code cell of a MyST page, cell options removed."""
    cells = []
    for body in CELL.findall(page.read_text()):
        if body.startswith("---\n"):                    # a YAML block of options
            body = body.split("---\n", 2)[2]
        body = "\n".join(line for line in body.splitlines() if not line.startswith(":"))
        cells.append(body)
    return cells


def cell_with(page, marker):
    found = [c for c in code_cells(page) if marker in c]
    assert len(found) == 1, f"{len(found)} cells of {page.name} contain {marker!r}"
    return found[0]


def run_cells(page, *markers):
    """Run the page's cells that contain the markers, in order, in one namespace."""
    namespace = {"glue": lambda *args, **kwargs: None}
    for marker in markers:
        exec(cell_with(page, marker), namespace)
    return namespace


# ------------------------------------------------------------- 8.1: sharp minima
@pytest.fixture(scope="module")
def well():
    ns = {"np": np}
    exec(cell_with(VARIANTS, "def dip("), ns)
    return ns


def test_double_well_has_a_deep_sharp_and_a_shallow_wide_minimum(well):
    sharp, wide = well["sharp"], well["wide"]
    assert abs(well["dJ1"](sharp)) < 1e-12 and abs(well["dJ1"](wide)) < 1e-12
    assert well["d2J1"](sharp) > 40 > 20 > 1.5 > well["d2J1"](wide) > 0
    assert well["J1"](sharp) < well["J1"](wide)          # the sharp one is deeper
    # the curvature formula is the derivative of the gradient formula
    for x in (sharp, -0.7, 0.3, wide):
        h = 1e-5
        numeric = (well["dJ1"](x + h) - well["dJ1"](x - h)) / (2 * h)
        assert numeric == pytest.approx(well["d2J1"](x), rel=1e-6, abs=1e-6)


def test_gradient_descent_cannot_settle_where_curvature_exceeds_two_over_alpha(well):
    sharp, wide, paths = well["sharp"], well["wide"], well["paths"]
    # α = 0.01: 2/α = 200 above the curvature, so it stays in the sharp minimum
    assert paths[0.01][-1] == pytest.approx(sharp, abs=1e-9)
    # α = 0.05: 2/α = 40 below it, so it never converges, yet stays in the dip
    tail = paths[0.05][-20:]
    assert np.all(np.abs(np.diff(tail)) > 0.1)
    assert np.all(np.abs(paths[0.05] - sharp) < 0.5)
    # α = 0.1: thrown out of the dip, it settles in the wide (shallower) minimum
    assert paths[0.1][-1] == pytest.approx(wide, abs=1e-9)


@pytest.mark.parametrize("margin, settles", [(0.97, True), (1.03, False)])
def test_the_threshold_is_two_over_the_curvature(well, margin, settles):
    """Just below 2/h the sharp minimum attracts; just above it, it does not."""
    sharp = well["sharp"]
    lr = margin * 2 / well["d2J1"](sharp)
    path = well["gd_path"](sharp + 1e-4, lr, steps=3000)
    assert bool(abs(path[-1] - sharp) < 1e-6) is settles


# ------------------------------------------------- 8.1: epochs against batch size
def test_smaller_batches_need_fewer_epochs_in_the_race():
    ns = run_cells(VARIANTS, "# Plumbing for this page", "full_grad = flat(",
                   "plan = {")
    J_star, N, race = ns["J_star"], ns["N"], ns["race"]
    epochs = []
    for run in race.values():
        hit = np.flatnonzero(run.losses - J_star <= 0.03)
        assert len(hit), "every run of the race reaches the target"
        epochs.append(run.updates[hit[0]] / ns["updates_per_epoch"](N, run.batch_size))
    assert all(np.diff(epochs) > 0), epochs            # B = 1 < 32 < 512 < N


# ------------------------------------------------ 8.2: learning-rate searches
def test_every_fraud_search_keeps_a_rate_inside_its_grid():
    """Each set-up of 8.2 is searched over at least three rates, and the rate it keeps
    (`pick`, checked against the full search when the book is built) is never at an end
    of them, so no set-up's result is an artefact of where its search stopped."""
    calls = re.findall(r"tried\(\(([^)]*)\),\s*(?:pick=)?([0-9.]+)\)", FRAUD.read_text())
    assert len(calls) == 6, calls            # before, after and four ablation set-ups
    for rates, pick in calls:
        rates = sorted(float(r) for r in rates.split(","))
        assert len(rates) >= 3 and rates[0] < float(pick) < rates[-1], (rates, pick)
    ns = run_cells(FRAUD, "def tried(")
    with pytest.raises(AssertionError, match="inside the search"):
        ns["tried"]((1.0, 3.0), 3.0)


# ----------------------------------------------------------- the opening's numbers
def test_scenario_bills_are_one_price_times_two_times():
    ns = run_cells(OPENING, "# Plumbing for this page", "N, B, gpus = ")
    assert ns["mini_cost_same_price"] == pytest.approx(ns["mini_cost"], rel=1e-12)
    assert ns["updates_mini"] == 93_750 and ns["updates_full"] == 1


def test_chapter_map_lists_every_page_in_reading_order():
    toc = re.findall(r"file:\s*(chapters/\S+)", (ROOT / "_toc.yml").read_text())
    text = OPENING.read_text()
    table = text[text.index("### Chapter map"):text.index("## Check yourself")]
    listed = re.findall(r"^\| \{doc\}`[^`<]*<([^`>]+)>`", table, re.M)
    assert ["chapters/" + name for name in listed] == toc


def test_learning_objectives_stay_and_blooms_table_is_in_the_teaching_notes():
    text = OPENING.read_text()
    assert "Bloom" not in text
    objectives = text[text.index("## What you will be able to do"):
                      text.index("## How to use this book")]
    assert len(re.findall(r"^\d+\. ", objectives, re.M)) >= 8
    notes = (ROOT / "solutions" / "teaching-notes.md").read_text()
    for level in ("Remember", "Understand", "Apply", "Analyze", "Evaluate", "Create"):
        assert re.search(rf"^\| {level} \|", notes, re.M), level


# ------------------------------------------------------------------ voice and form
TITLES = {OPENING: "# Chapter 8 · Optimization",
          VARIANTS: "# 8.1 Gradient descent variants",
          FRAUD: "# 8.2 The fraud-detection story, measured"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_title(page):
    h1 = [line for line in page.read_text().splitlines() if line.startswith("# ")][0]
    assert h1.startswith(TITLES[page])


def about_note(text):
    start = text.index("```{admonition} About this chapter")
    return start, text.index("\n```\n", start)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_provenance_only_in_the_about_note(page):
    text = page.read_text()
    if page == OPENING:
        start, end = about_note(text)
        text = text[:start] + text[end:]
    prose = re.sub(r"source code|open source|source_hidden", "", text, flags=re.I)
    for phrase in ("source", "draft", "as reported", "not independently verified",
                   "the original", "the slides", "as printed",
                   "a claim that needs a correction"):
        assert phrase not in prose.lower(), phrase


def test_about_note_names_the_corrections():
    text = OPENING.read_text()
    start, end = about_note(text)
    note = text[start:end]
    for topic in ("AdamW", "clipping", "set_to_none", "hat v", "One-cycle", "share",
                  "2/\\alpha", "powers of two"):
        assert topic in note, topic


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_code_lines_fit_88_characters(page):
    long = [line for cell in code_cells(page) for line in cell.splitlines()
            if len(line) > 88]
    assert not long, long


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_cross_references_carry_the_titles_the_site_shows(page):
    prose = CELL.sub("", page.read_text())
    assert "{doc}" in prose and not wrong_titles(prose), wrong_titles(prose)


def test_a_stale_or_missing_title_is_reported():
    title = page_heading(VARIANTS.stem)
    assert wrong_titles(f"{{doc}}`{title} <{VARIANTS.stem}>`") == []
    assert wrong_titles(f"{{doc}}`{title}, renamed <{VARIANTS.stem}>`")
    assert wrong_titles(f"{{doc}}`{VARIANTS.stem}`")
    assert wrong_titles("{ref}`When 6 hours became 12 minutes <sec-opening-hook>`") == []
    assert wrong_titles("{ref}`Chapter map <sec-opening-hook>`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_no_old_section_numbers(page):
    # the titles written out in cross-references are checked above
    prose = without_references(CELL.sub("", page.read_text()))
    numbers = set(re.findall(r"(?<![\d.])8\.(\d+)\b", prose))
    allowed = {"1"} if page == VARIANTS else {"2"} if page == FRAUD else set()
    assert numbers <= allowed, numbers
