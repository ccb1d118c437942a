"""Screenshots of the Optimizer Playground app for its README, taken the way the test takes them.

    .venv/bin/python tools/playground_screenshots.py

Starts the app (``solutions/playground/app.py``) on a free localhost port, replays the
browser test's scenario in headless Chromium with the network blocked (open; move α;
switch to Rosenbrock; switch to Adam; download the table: ``play`` in
``tests/test_playground_app.py``), stops the server, and writes the screenshots to
``docs/playground/`` as palette PNGs (a few hundred kB each instead of a few MB).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from site_helpers import CHROMIUM_ARGS, chromium_path, open_offline  # noqa: E402
from test_playground_app import StreamlitApp, play  # noqa: E402

OUT = ROOT / "docs" / "playground"
VIEWPORT = {"width": 1400, "height": 1720}


def main() -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        with StreamlitApp(tmp / "streamlit.log") as app:
            context = browser.new_context(viewport=VIEWPORT, accept_downloads=True,
                                          service_workers="block")
            page, log = open_offline(context, app.url)
            play(page, tmp)
            context.close()
        browser.close()
        if log.blocked or log.failed or log.errors:
            raise SystemExit(f"the app misbehaved: {log}")
        for shot in sorted(tmp.glob("*.png")):
            image = Image.open(shot).convert("RGB").quantize(colors=128)
            target = OUT / f"app-{shot.name}"
            image.save(target, optimize=True)
            print(f"{target.relative_to(ROOT)}  {target.stat().st_size // 1024} kB")


if __name__ == "__main__":
    main()
