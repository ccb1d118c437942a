"""How fast each page of the built book loads on a slow link (a phone on 9 Mbit/s, 70 ms).

    .venv/bin/python benchmarks/page_load.py            # every page of _toc.yml
    .venv/bin/python benchmarks/page_load.py chapters/03-exponentially-weighted-averages
    .venv/bin/python benchmarks/page_load.py --site OTHER/_build/html chapters/…

Serves _build/html on localhost as a static host would (gzip for text types), opens each
page in headless Chromium with the cache disabled and the link throttled by Chrome's
network emulation, and prints the time to the load event and the bytes fetched before it
(as sent, and gzip-equivalent). The target is a load event within 4 s; this script
reports, it asserts nothing (times depend on the machine).
"""

from __future__ import annotations

import functools
import gzip
import http.server
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from site_helpers import CHROMIUM_ARGS, chromium_path, toc_files  # noqa: E402

HTML = ROOT / "_build" / "html"
LINK = {"offline": False, "latency": 70, "downloadThroughput": 9e6 / 8,
        "uploadThroughput": 2e6 / 8}
COMPRESSIBLE = (".html", ".js", ".css", ".json", ".svg", ".txt", ".map", ".ipynb", ".md")


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, gzip-compressed for text types when the browser accepts it."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if (path.suffix in COMPRESSIBLE and path.is_file()
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(path.read_bytes(), 6)
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return _Body(body)
        return super().send_head()


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


def measure(browser, url: str) -> tuple[float, int, int]:
    ctx = browser.new_context(service_workers="block")
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", LINK)
    sent, loaded = [], []
    cdp.on("Network.loadingFinished",
           lambda e: None if loaded else sent.append(e.get("encodedDataLength", 0)))
    start = time.perf_counter()
    page.goto(url, wait_until="load", timeout=120_000)
    seconds = time.perf_counter() - start
    loaded.append(True)
    ctx.close()
    return seconds, sum(sent), len(sent)


def main(pages: list[str], site: Path = HTML) -> None:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(GzipHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        print(f"{'page':55} {'load event':>10} {'sent before it':>15} {'requests':>9}")
        for doc in pages:
            seconds, sent, requests = measure(browser, f"{base}{doc}.html")
            print(f"{doc:55} {seconds:9.1f}s {sent / 1e6:12.2f} MB {requests:9d}")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    site = HTML
    if args[:1] == ["--site"]:  # another built copy of the book, e.g. tools/check_page.py's
        site, args = Path(args[1]), args[2:]
    main(args or toc_files(), site)
