"""The built book, checked as a reader meets it: strict build, then every page in Chromium.

The site is served from ``_build/html`` on 127.0.0.1 and every request that would leave
localhost is blocked and recorded, so these tests also prove the book works offline.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from site_helpers import (move_every_slider, open_offline, slider_boxes, toc_files,
                          wait_until_ready)

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "_ext"))
import parallel_read  # noqa: E402
EWA_PAGE = "chapters/03-exponentially-weighted-averages.html"


def toc_pages() -> list[str]:
    """Every page listed in _toc.yml (sections included), as its path in the built site."""
    return [f"{f}.html" for f in toc_files()]


def test_book_builds_strictly(book_build):
    log = book_build.stdout + book_build.stderr
    assert book_build.returncode == 0, "strict build failed:\n" + log[-6000:]
    assert "build succeeded" in log


def test_the_build_reads_the_pages_side_by_side_as_planned(site):
    """_ext/parallel_read: every page read, each by the process planned for it, and with
    more than one CPU by more than one process (the page times say which)."""
    table = json.loads((ROOT / "_build" / "page_times.json").read_text())
    rows = {page: table["pages"][page] for page in toc_files()}
    assert table["processes"] == parallel_read.jobs_wanted()
    by_plan: dict[int, set[int]] = {}
    for row in rows.values():
        by_plan.setdefault(row["planned_process"], set()).add(row["process_id"])
    assert all(len(pids) == 1 for pids in by_plan.values()), by_plan   # one process each
    pids = set().union(*by_plan.values())
    assert len(pids) == len(by_plan) == min(table["processes"], len(rows))


def test_toc_pages_exist(site):
    missing = [p for p in toc_pages() if not (HTML / p).is_file()]
    assert not missing


def test_no_page_references_a_cdn(site):
    offenders = {}
    for page in HTML.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        urls = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?://[^"']+)""", text)
        if urls:
            offenders[str(page.relative_to(HTML))] = urls
    assert not offenders


@pytest.mark.parametrize("path", toc_pages())
def test_page_works_offline(site, context, path):
    page, log = open_offline(context, site.url + path)
    wait_until_ready(page)
    page.wait_for_timeout(300)  # let late font/asset requests show up in the log
    assert not log.blocked, f"requests left localhost: {log.blocked}"
    assert not log.failed, f"local requests failed: {log.failed}"
    assert not log.errors, f"JavaScript errors: {log.errors}"
    math_nodes = page.locator("span.math, div.math").count()
    if math_nodes:
        assert page.locator("mjx-container").count() >= math_nodes
        assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    assert slider_boxes(page).count() == views, "every widget on a page is a frame slider"
    dead = [(b, s) for b, s, changed in move_every_slider(page) if not changed]
    assert not dead, f"sliders (widget, slider) that do not change their figure: {dead}"
    assert not log.errors
    page.close()


def test_ewa_page_has_math_and_sliders(site, context):
    page, log = open_offline(context, site.url + EWA_PAGE)
    wait_until_ready(page)
    assert page.locator("mjx-container").count() > 20
    assert page.locator(".widget-slider").count() == 2
    assert not log.blocked


@pytest.mark.parametrize("opened_as", ["http", "file"])
def test_ewa_slider_changes_the_figure_without_a_kernel(site, context, opened_as):
    """Moving the β slider shows another figure; moving it back shows the first again.

    Checked both served from localhost and opened straight from _build/html (file://),
    as a reader who downloaded the site would.
    """
    url = site.url + EWA_PAGE if opened_as == "http" else (HTML / EWA_PAGE).as_uri()
    page, log = open_offline(context, url)
    wait_until_ready(page)
    for i in range(2):
        box = slider_boxes(page).nth(i)
        box.scroll_into_view_if_needed()
        handle = box.locator(".noUi-handle")
        readout = box.locator(".widget-readout")
        figure = box.locator("img.widget-image").filter(visible=True)
        assert figure.count() == 1, "exactly one frame is shown at a time"

        before_value, before_png = readout.inner_text(), figure.screenshot()
        handle.focus()
        handle.press("ArrowLeft")  # keyboard, as a reader without a mouse would
        page.wait_for_timeout(200)
        after_value, after_png = readout.inner_text(), figure.screenshot()
        assert after_value != before_value
        assert after_png != before_png, f"slider {i}: the figure did not change"

        handle.press("ArrowRight")
        page.wait_for_timeout(200)
        assert readout.inner_text() == before_value
        assert figure.screenshot() == before_png, f"slider {i}: the original frame did not come back"

    # a real drag with the mouse, all the way to the right end of the first slider
    box = slider_boxes(page).nth(0)
    box.scroll_into_view_if_needed()
    track = box.locator(".noUi-base").bounding_box()
    handle = box.locator(".noUi-handle").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 20, handle["y"] + handle["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_timeout(200)
    assert box.locator(".widget-readout").inner_text() == "0.99"
    assert not log.blocked and not log.errors


def test_solutions_in_the_book_are_folded(site):
    """The exercise pages with solutions: every model answer starts folded away (prose in
    a <details> block, code behind Jupyter Book's hide-input toggle)."""
    import nbformat

    pages = [p for p in toc_pages() if p.startswith("solutions/")]
    assert len(pages) >= 6
    for path in pages:
        nb = nbformat.read(ROOT / path.replace(".html", ".ipynb"), as_version=4)
        answers = [c for c in nb.cells if c.metadata.get("optbook", {}).get("role") == "answer"]
        prose = sum(c.cell_type == "markdown" for c in answers)
        code = len(answers) - prose
        html = (HTML / path).read_text(encoding="utf-8")
        assert html.count("<summary>Show the model answer</summary>") == prose, path
        assert html.count("tag_hide-input") >= code, path
        assert "Write your answer here" not in html, path


PROVENANCE_NOTE = "About this chapter"
SOURCE_WORD = re.compile(r"(?<!open )\bsources?\b(?! code)", re.I)


def article_text(html: str, drop_note: str = PROVENANCE_NOTE) -> str:
    """A built page's article text (prose, tables, code), without the admonition titled
    ``drop_note``: the one place where the chapter may say what it was built from."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    for title in article.select("div.admonition > p.admonition-title"):
        if title.get_text(strip=True) == drop_note:
            title.parent.decompose()
    return article.get_text(" ")


def test_article_text_counts_only_outside_the_note():
    html = ('<article><p>The source of it.</p><div class="admonition">'
            '<p class="admonition-title">About this chapter</p><p>source</p></div>'
            '<p>open source and source code</p></article>')
    assert len(SOURCE_WORD.findall(article_text(html))) == 1


def test_the_book_speaks_in_its_own_voice(site):
    """The book teaches; it does not review a draft its readers never see. Outside the one
    "About this chapter" note, "source" (not "source code", not "open source") appears at
    most 10 times in the whole site's article text, and the note exists exactly once."""
    counts, notes = {}, 0
    for path in toc_pages():
        html = (HTML / path).read_text(encoding="utf-8")
        notes += html.count(f">{PROVENANCE_NOTE}<")
        found = len(SOURCE_WORD.findall(article_text(html)))
        if found:
            counts[path] = found
    assert notes == 1, f"the '{PROVENANCE_NOTE}' note appears {notes} times"
    assert sum(counts.values()) <= 10, f"'source' outside the note: {counts}"


def widget_states(html: str) -> list[dict]:
    import json

    return [json.loads(m) for m in re.findall(
        r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', html, re.S)]


@pytest.mark.parametrize("path", toc_pages())
def test_slider_frames_are_files_not_inline_bytes(site, path):
    """Every frame of every slider is an image file under _frames/ (fetched when first
    shown, cached between pages), never base64 inside the page."""
    import base64

    html_path = HTML / path
    for state in widget_states(html_path.read_text(encoding="utf-8")):
        for model in state["state"].values():
            if model["model_name"] != "ImageModel":
                continue
            assert model["state"]["format"] == "url", f"{path}: a frame is inline"
            url = base64.b64decode(model["buffers"][0]["data"]).decode()
            frame = (html_path.parent / url).resolve()
            assert frame.is_file() and (HTML / "_frames") in frame.parents, (path, url)


def frame_text_on_phone(html_path: Path) -> dict[str, float]:
    """CSS px of a slider frame's smallest text (FRAME_STYLE's legend) once a 390 px phone
    has shrunk the frame to its 358 px column, for each frame width on the page. A frame
    is shown at its drawn width (frame_slider's 90 dpi) wherever the column is wider."""
    from optbook.book.figures import FRAME_STYLE

    column, dpi = 358, 90
    legend = FRAME_STYLE["legend.fontsize"] * dpi / 72
    widths = {int(model["state"]["width"])
              for state in widget_states(html_path.read_text(encoding="utf-8"))
              for model in state["state"].values() if model["model_name"] == "ImageModel"}
    return {f"{width} px wide": legend * min(1.0, column / width) for width in widths}


@pytest.mark.parametrize("path", toc_pages())
def test_slider_frames_stay_readable_on_a_phone(site, path):
    """A frame is one image, so a phone shrinks its text with it: two panels side by
    side (600-800 CSS px) left a legend of 5-7 px. Frames at most about 5.5 inches wide
    (one panel, or two stacked) keep it at 9 px or more, as tests/test_plotting.py holds
    the library's stacked frames."""
    small = {width: round(px, 1) for width, px in frame_text_on_phone(HTML / path).items()
             if px < 9}
    assert not small, f"{path}: frames whose legend is under 9 CSS px on a phone: {small}"


@pytest.mark.parametrize("path", [p for p in toc_pages() if p.startswith("chapters/")])
def test_each_page_offers_its_executed_notebook_and_its_source(site, path):
    """The download menu of a chapter page links its .md source and its .ipynb with the
    outputs the site shows, so it opens ready in JupyterLab."""
    import nbformat

    html = (HTML / path).read_text(encoding="utf-8")
    stem = Path(path).stem
    assert f'href="../_sources/chapters/{stem}.md"' in html
    # ... and the whole chapter, with the way to run it (the opening's section)
    assert 'href="../_downloads/chapter-8-optimization.zip"' in html
    assert (HTML / "_downloads" / "chapter-8-optimization.zip").is_file()
    assert ('href="#run-it-yourself"' if stem == "00-opening"
            else 'href="00-opening.html#run-it-yourself"') in html
    assert 'id="run-it-yourself"' in (HTML / "chapters" / "00-opening.html").read_text()
    if f"chapters/{stem}.ipynb" not in html:
        text = (ROOT / "chapters" / f"{stem}.md").read_text(encoding="utf-8")
        assert "```{code-cell}" not in text, f"{path} runs code but offers no notebook"
        return
    nb = nbformat.read(HTML / "_sources" / "chapters" / f"{stem}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and any(c.outputs for c in code), f"{stem}.ipynb has no outputs"


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("path", toc_pages())
def test_no_serious_accessibility_violations(site, context, path):
    """axe-core (from npm, injected from disk: no request leaves localhost) finds no
    serious or critical violation: images have alt text, controls have names that
    match what they show, contrast is sufficient."""
    page, log = open_offline(context, site.url + path)
    wait_until_ready(page)
    page.wait_for_timeout(300)  # the page's own script names the widgets after they draw
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]}))
        .violations.filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0].html.slice(0, 160)}`)""")
    assert not found, "\n".join(found)
    assert not log.blocked
    page.close()


@pytest.mark.parametrize("path", toc_pages())
def test_phone_width_keeps_everything_on_screen(site, browser, path):
    """At 390 px (a phone) no control, read-out or frame reaches past the viewport and
    the page itself never scrolls sideways; wide equations and tables scroll inside
    their own box. At 1280 px no equation or table is cut off and no code block (hidden
    ones opened) scrolls sideways."""
    for width in (390, 1280):
        ctx = browser.new_context(viewport={"width": width, "height": 844}, has_touch=width < 500,
                                  service_workers="block")
        page, log = open_offline(ctx, site.url + path)
        wait_until_ready(page)
        page.evaluate("""async () => {  // load the lazy figures too, so that all are measured
          for (const img of document.querySelectorAll("img[loading=lazy]")) img.loading = "eager";
          await Promise.all([...document.images].map(img => img.complete ? null :
            new Promise(done => { img.onload = img.onerror = done; setTimeout(done, 5000); })));
        }""")
        report = page.evaluate("""(width) => {
          const out = [];
          const doc = document.documentElement;
          if (doc.scrollWidth > width + 1) out.push(`page scrolls sideways: ${doc.scrollWidth}px`);
          const controls = ".widget-readout, .widget-slider, .widget-toggle-buttons, " +
                           ".widget-dropdown, img.widget-image";
          for (const el of document.querySelectorAll(controls)) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > width + 1)
              out.push(`${el.className.split(" ").pop()} ends at ${Math.round(r.right)}px`);
          }
          if (width >= 1280) {
            for (const el of document.querySelectorAll("div.cell_input div.highlight pre")) {
              el.closest("details")?.setAttribute("open", "");  // hidden cells count too
              if (el.scrollWidth > el.clientWidth + 1)
                out.push(`code scrolls sideways: ${el.textContent.slice(0, 40)}`);
            }
          }
          for (const el of document.querySelectorAll('mjx-container[display="true"], ' +
                                                     ".bd-content table")) {
            if (el.scrollWidth <= el.clientWidth + 1) continue;
            let box = el, scrolls = false;
            for (; box && box !== document.body; box = box.parentElement) {
              const o = getComputedStyle(box).overflowX;
              if (o === "auto" || o === "scroll") { scrolls = true; break; }
            }
            if (!scrolls) out.push(`cut off: ${el.tagName} ${el.textContent.slice(0, 40)}`);
          }
          // figures (static and frames) keep their aspect ratio: scaled, never squashed
          for (const img of document.querySelectorAll(".bd-content div.cell_output img")) {
            const r = img.getBoundingClientRect();
            if (!r.width || !img.naturalWidth || !img.complete) continue;
            const shown = r.height / r.width, drawn = img.naturalHeight / img.naturalWidth;
            if (Math.abs(shown / drawn - 1) > 0.03)
              out.push(`figure squashed: ${Math.round(r.width)}x${Math.round(r.height)} shows ` +
                       `${img.naturalWidth}x${img.naturalHeight}`);
          }
          return out;
        }""", width)
        ctx.close()
        assert not report, f"{path} at {width}px: {report[:6]}"


def test_tables_of_sentences_read_as_cards_on_a_phone(site, browser):
    """On a phone each row of a table of sentences (_ext/phone_tables.py) is a card within
    the screen: no sideways scroll, every cell but the title under its column's name. On
    a laptop the same table is an ordinary table with its header row, the names hidden."""
    pages = [p for p in toc_pages() if "phone-cards" in (HTML / p).read_text(encoding="utf-8")]
    assert {"chapters/14-case-study-search-ranking.html", "chapters/16-summary-and-references.html"} <= set(pages)
    for path in pages:
        for width in (390, 1280):
            ctx = browser.new_context(viewport={"width": width, "height": 844}, service_workers="block")
            page, log = open_offline(ctx, site.url + path)
            wait_until_ready(page)
            report = page.evaluate("""(width) => {
              const out = [];
              const shown = el => getComputedStyle(el).display !== "none" && el.getClientRects().length > 0;
              for (const table of document.querySelectorAll("table.phone-cards")) {
                const names = [...table.querySelectorAll("thead th")].map(th => th.textContent.trim());
                const title = table.querySelector("tbody td").textContent.trim().slice(0, 30);
                const cards = width < 600;
                if (cards && (table.getBoundingClientRect().right > width + 1 || table.scrollWidth > table.clientWidth + 1))
                  out.push(`${title}: wider than the screen`);
                if (cards === shown(table.querySelector("thead"))) out.push(`${title}: header row shown is ${!cards}`);
                for (const row of table.querySelectorAll("tbody tr")) {
                  const cells = [...row.children];
                  cells.forEach((td, i) => {
                    const label = td.querySelector(".phone-card-label");
                    if (i === 0) { if (label) out.push(`${title}: a label on the card's title`); return; }
                    if (!label || label.textContent.trim() !== names[i]) out.push(`${title}: cell ${i} not named ${names[i]}`);
                    else if (shown(label) !== cards) out.push(`${title}: label ${names[i]} shown is ${!cards}`);
                  });
                }
              }
              return out;
            }""", width)
            ctx.close()
            assert not report, f"{path} at {width}px: {report[:6]}"


@pytest.mark.parametrize("path", toc_pages())
def test_page_weight_before_load_is_at_most_2_mb(site, browser, path):
    """With the cache disabled, what a page fetches before its load event is at most
    2 MB gzip-equivalent (slider frames come later, when first shown). Load *times* on a
    slow link are measured by benchmarks/page_load.py, not asserted here."""
    import gzip

    ctx = browser.new_context(service_workers="block")
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    bodies, loaded = [], []
    page.on("load", lambda: loaded.append(len(bodies)))

    def record(response):
        if loaded:
            return
        try:
            bodies.append((len(gzip.compress(response.body(), 6)), response.url))
        except Exception:  # a response without a body (redirect, aborted)
            pass

    page.on("response", record)
    page.goto(site.url + path, wait_until="load")
    ctx.close()
    total = sum(size for size, _ in bodies)
    biggest = sorted(bodies, reverse=True)[:4]
    assert total <= 2_000_000, f"{path}: {total / 1e6:.2f} MB before load; largest {biggest}"
    assert not any("fontawesome.js" in url for _, url in bodies)


def test_widgets_follow_dark_mode(site, browser):
    """In dark mode a slider sits on the page, not on a light slab, and its label and
    read-out are drawn in the theme's text colour."""
    ctx = browser.new_context(color_scheme="dark", service_workers="block")
    ctx.add_init_script("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
    page, log = open_offline(ctx, site.url + EWA_PAGE)
    wait_until_ready(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    colours = page.evaluate("""() => {
      const box = document.querySelector(".widget-subarea");
      const label = box.querySelector(".widget-readout");
      const body = getComputedStyle(document.body);
      return [getComputedStyle(box).backgroundColor, getComputedStyle(label).color, body.color];
    }""")
    ctx.close()
    background, readout, text = colours
    assert background == "rgba(0, 0, 0, 0)", f"a slab behind the widget: {background}"
    assert readout == text, "the read-out is not drawn in the theme's text colour"
