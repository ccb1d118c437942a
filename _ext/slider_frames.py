"""Sphinx extension: slider frames become image files, fetched when first shown.

A slider of the book (``optbook.book.widgets.frame_slider``) is a stack of precomputed
frames. In the notebook each frame is an ``ipywidgets.Image`` that carries its PNG
bytes, which is what JupyterLab needs. Left like that in the static site, every frame
of every slider is inlined as base64 in the page's HTML: megabytes that the browser
must download before anything shows, and that nothing caches between pages.

After the build, this extension moves every such image out of the page into
``_frames/<digest>.png`` and leaves the widget the file's relative URL instead
(``format="url"``, which the ipywidgets HTML manager shows as ``<img src=…>``). The
manager draws only the selected child of a ``Stack``, so a frame is fetched the first
time a reader selects it, and the browser caches it like any image. Relative URLs work
from a local server and from ``file://`` alike. Identical frames share one file. Each frame's alternative text
(``optbook.book.widgets.Frame.alt``) goes into a small JSON map on the page, from which
``offline_site``'s script sets the ``alt`` of the frame's ``<img>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

STATE = re.compile(r'(<script type="application/vnd\.jupyter\.widget-state\+json">)(.*?)(</script>)',
                   re.S)
FRAMES = "_frames"
ALT_MAP = "optbook-frame-alt"
FORMATS = {"png": b"\x89PNG\r\n\x1a\n", "webp": b"RIFF", "jpeg": b"\xff\xd8\xff"}


def externalize(state: dict, page_dir: Path, outdir: Path, alts: dict | None = None) -> int:
    """Move the inline image bytes of ``state`` (a widget-state document) into files
    under ``outdir/_frames``; returns how many images were moved. The frames' ``alt``
    texts (``optbook.book.widgets.Frame``) are collected in ``alts``, by URL."""
    moved = 0
    alts = {} if alts is None else alts
    folder = outdir / FRAMES
    for model in state.get("state", {}).values():
        if model.get("model_name") != "ImageModel":
            continue
        attrs = model.get("state", {})
        buffers = [b for b in model.get("buffers", []) if b.get("path") == ["value"]]
        if attrs.get("format") == "url" or len(buffers) != 1:
            continue
        kind = attrs.get("format", "png")
        data = base64.b64decode(buffers[0]["data"])
        if kind not in FORMATS or not data.startswith(FORMATS[kind]):
            raise ValueError(f"a slider frame claims format {kind!r} but its bytes are not one")
        name = f"{hashlib.sha256(data).hexdigest()[:20]}.{kind}"
        folder.mkdir(exist_ok=True)
        target = folder / name
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(data)
            partial.replace(target)
        url = Path(os.path.relpath(target, page_dir)).as_posix()
        buffers[0]["data"] = base64.b64encode(url.encode()).decode()
        attrs["format"] = "url"
        if attrs.get("alt"):
            alts[url] = attrs["alt"]
        moved += 1
    return moved


def _script_json(data) -> str:
    """JSON that is safe inside a <script> element (no "</" can end it early)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def externalize_page(path: Path, outdir: Path) -> int:
    """Rewrite one built HTML page; returns how many frames left it."""
    text = path.read_text(encoding="utf-8")
    moved, alts = 0, {}

    def rewrite(match):
        nonlocal moved
        state = json.loads(match.group(2))
        count = externalize(state, path.parent, outdir, alts)
        if not count:
            return match.group(0)
        moved += count
        return match.group(1) + _script_json(state) + match.group(3)

    new = STATE.sub(rewrite, text)
    if alts:  # read by offline_site's script, which gives each frame's <img> its alt
        new = new.replace("</body>", f'<script type="application/json" id="{ALT_MAP}">'
                                     f"{_script_json(alts)}</script>\n</body>", 1)
    if moved:
        path.write_text(new, encoding="utf-8")
    return moved


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for page in outdir.rglob("*.html"):
        if FRAMES not in page.parts:
            externalize_page(page, outdir)


def setup(app):
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
