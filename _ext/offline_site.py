"""Sphinx extension: make the built book work offline, with no request leaving the site.

Jupyter Book 1 and myst-nb point the page at CDNs for require.js, the ipywidgets HTML
manager and MathJax; ``_config.yml`` points them at local copies under
``_static/npm/`` (filled from ``package.json`` by ``make vendor``).  This extension
does the three things configuration alone cannot:

1. Tell require.js where the local packages live.  The widget bundle derives the URL of
   its fonts from require.js's ``baseUrl``; by default that is the page's own folder,
   which differs between pages.  A global ``require`` object defined *before*
   require.js loads sets it to ``<root>/_static/npm/`` on every page.
2. Let the widgets' label typesetting use MathJax 3.  The HTML manager calls the
   MathJax 2 API (``MathJax.Hub.Queue``); a small adapter forwards it to
   ``MathJax.typesetPromise``.
3. Give controls accessible names that match what is on screen (the theme's search
   button and show-code toggles; slider handles get their slider's label; slider frames
   get their alternative text, from the map ``slider_frames`` writes into the page).
4. Lighter pages: drop the Font Awesome script (1.5 MB on every page, to draw a dozen
   icons; ``_ext/static/chapter.css`` draws them from the webfont the theme already
   declares), and load figures lazily.
5. Drop the Thebe scripts.  Thebe ("live code" via Binder) needs a network, is off in
   this book, and Jupyter Book registers its configuration script twice, which is a
   JavaScript error on every page.
"""

from __future__ import annotations

import re
from pathlib import Path

REQUIRE_CONFIG = """
var require = {
  baseUrl: (document.documentElement.dataset.content_root || "") + "_static/npm/"
};
"""

MATHJAX2_ADAPTER = """
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj && !mj.Hub) {
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        if (mj.typesetPromise) {
          (mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve())
            .then(function () { return mj.typesetPromise(element ? [element] : undefined); });
        }
      }
    };
  }
});
"""


ACCESSIBLE_NAMES = """
(function () {
  // Accessible names that match what is on screen (WCAG 2.5.3, axe's
  // label-content-name-mismatch): the theme labels some controls "Search" or "Toggle
  // hidden content" while they show other words. Their visible text becomes the name.
  // Slider handles get the name of their slider (the label beside it).
  function visibleText(el) {
    var clone = el.cloneNode(true);
    clone.querySelectorAll(".expanded, .sr-only, .visually-hidden").forEach(function (n) {
      n.remove();
    });
    return (clone.textContent || "").replace(/\\s+/g, " ").trim();
  }
  function fix() {
    document.querySelectorAll("button[aria-label], summary[aria-label], a[aria-label]")
      .forEach(function (el) {
        var text = visibleText(el);
        var label = el.getAttribute("aria-label");
        if (text && label.toLowerCase().indexOf(text.toLowerCase()) < 0) {
          el.setAttribute("aria-label", text);
        }
      });
    // The bibliography's entries are not list items: its list role is wrong, not them.
    document.querySelectorAll('.citation-list[role="list"]').forEach(function (el) {
      el.removeAttribute("role");
    });
    document.querySelectorAll("summary:not([aria-label])").forEach(function (el) {
      if (!visibleText(el)) { el.setAttribute("aria-label", "Show or hide the sub-pages"); }
    });
    var alts = document.getElementById("optbook-frame-alt");
    if (alts) {
      var byUrl = JSON.parse(alts.textContent);
      document.querySelectorAll("img.widget-image:not([alt])").forEach(function (img) {
        var text = byUrl[img.getAttribute("src")];
        if (text) { img.setAttribute("alt", text); }
      });
    }
    document.querySelectorAll(".widget-slider, .widget-hslider").forEach(function (box) {
      var label = box.querySelector(".widget-label");
      var readout = box.querySelector(".widget-readout");
      box.querySelectorAll(".noUi-handle").forEach(function (handle) {
        if (label && label.textContent.trim()) {
          handle.setAttribute("aria-label", label.textContent.trim());
        }
        if (readout) {
          handle.setAttribute("aria-valuetext", readout.textContent.trim());
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", fix);
  window.addEventListener("load", function () {
    fix();
    var pending = false;
    new MutationObserver(function () {  // widgets draw (and redraw) after load
      if (!pending) {
        pending = true;
        window.requestAnimationFrame(function () { pending = false; fix(); });
      }
    }).observe(document.body, {
      subtree: true, childList: true, characterData: true
    });
  });
})();
"""


def _is_thebe(script) -> bool:
    filename = getattr(script, "filename", None) or ""
    body = (getattr(script, "attributes", None) or {}).get("body", "")
    return "thebe" in filename or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if scripts is not None:
        context["script_files"] = [s for s in scripts if not _is_thebe(s)]
    css = context.get("css_files")
    if css is not None:
        context["css_files"] = [c for c in css if "thebe" not in (getattr(c, "filename", "") or "")]


FONTAWESOME_JS = re.compile(r'\s*<script defer src="[^"]*/fontawesome\.js[^"]*"></script>')


IMG_WITHOUT_LOADING = re.compile(r"<img (?![^>]*\bloading=)")


def _lighter_pages(app, exception) -> None:
    """Two edits to every built page: the Font Awesome script tag, which the theme writes
    into its page template, goes; figures load lazily (``loading="lazy"``), so those
    below the fold do not hold up the page's load event."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = IMG_WITHOUT_LOADING.sub('<img loading="lazy" ', FONTAWESOME_JS.sub("", text))
        if new != text:
            page.write_text(new, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _lighter_pages)
    app.add_css_file("chapter.css")
    app.add_js_file(None, body=REQUIRE_CONFIG, priority=200)
    app.add_js_file(None, body=MATHJAX2_ADAPTER, priority=200)
    app.add_js_file(None, body=ACCESSIBLE_NAMES, priority=900)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
