"""Serving the built book on localhost and loading its pages in headless Chromium.

Every request a page makes goes through ``OfflinePage``'s router: requests to the local
server pass, anything else is recorded and aborted, so a test can assert that nothing
left localhost (the site must work with the network off).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def toc_files(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` (chapters and their sections), in order, without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())

    def walk(entries):
        for entry in entries:
            yield entry["file"]
            yield from walk(entry.get("sections", []))

    return [toc["root"]] + [f for part in toc.get("parts", []) for f in walk(part["chapters"])]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium not found: install Debian's `chromium` package (make browser)")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


class SiteServer:
    """``python -m http.server`` for a folder, on a free localhost port, in a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class PageLog:
    blocked: list[str] = field(default_factory=list)  # requests that tried to leave localhost
    failed: list[str] = field(default_factory=list)  # local requests that failed (404, …)
    errors: list[str] = field(default_factory=list)  # uncaught JS errors and console errors


def open_offline(context, url: str):
    """Open ``url`` in a new page whose every non-local request is blocked and logged."""
    page = context.new_page()
    log = PageLog()

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:", "file:")) or host in LOCAL_HOSTS:
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and log.errors.append(f"console: {msg.text}"))
    page.on("requestfailed", lambda req: urlparse(req.url).hostname in LOCAL_HOSTS
            and log.failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400 and log.failed.append(f"{resp.url} ({resp.status})"))
    page.goto(url, wait_until="load")
    return page, log


def wait_until_ready(page) -> None:
    """Wait for MathJax to finish typesetting and for every widget view to render."""
    if page.locator("span.math, div.math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if views:
        page.wait_for_function(
            "n => document.querySelectorAll('.widget-slider').length >= n", arg=views, timeout=30_000)


def slider_boxes(page):
    """The frame-slider widgets on a page (a box holding sliders and the figure stack)."""
    return page.locator(".widget-vbox").filter(has=page.locator(".widget-slider"))


def move_every_slider(page) -> list[tuple[int, int, bool]]:
    """Move each slider of each frame-slider widget one notch (right, or left at the end)
    and report ``(widget, slider, figure_changed)``; every slider is put back after.

    A widget's row-of-buttons and drop-down controls (``frame_slider(controls=...)``)
    count as sliders too, numbered after its sliders: every other option of each is
    chosen in turn (a click, or a selection in the list), and ``figure_changed`` is true
    only if each of them shows a figure different from the starting one.
    """
    results = []
    boxes = slider_boxes(page)
    for b in range(boxes.count()):
        box = boxes.nth(b)
        box.scroll_into_view_if_needed()
        figure = box.locator("img.widget-image").filter(visible=True)
        n_sliders = box.locator(".widget-slider").count()
        for s in range(n_sliders):
            handle = box.locator(".noUi-handle").nth(s)
            at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            before = figure.screenshot()
            handle.focus()
            handle.press("ArrowLeft" if at_end else "ArrowRight")
            page.wait_for_timeout(150)
            results.append((b, s, figure.screenshot() != before))
            handle.press("ArrowRight" if at_end else "ArrowLeft")
            page.wait_for_timeout(100)
        s = n_sliders
        toggles = box.locator(".widget-toggle-buttons")
        for k in range(toggles.count()):
            buttons = toggles.nth(k).locator("button.widget-toggle-button")
            classes = buttons.evaluate_all("els => els.map(e => e.className)")
            start = next(i for i, c in enumerate(classes) if "mod-active" in c.split())
            before, changed = figure.screenshot(), True
            for i in range(buttons.count()):
                if i != start:
                    buttons.nth(i).click()
                    page.wait_for_timeout(150)
                    changed &= figure.screenshot() != before
            buttons.nth(start).click()
            page.wait_for_timeout(100)
            results.append((b, s, changed))
            s += 1
        lists = box.locator(".widget-dropdown select")
        for k in range(lists.count()):
            select = lists.nth(k)
            start = select.evaluate("e => e.selectedIndex")
            before, changed = figure.screenshot(), True
            for i in range(select.locator("option").count()):
                if i != start:
                    select.select_option(index=i)
                    page.wait_for_timeout(150)
                    changed &= figure.screenshot() != before
            select.select_option(index=start)
            page.wait_for_timeout(100)
            results.append((b, s, changed))
            s += 1
    return results
