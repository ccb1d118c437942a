"""The chapter in a real JupyterLab, as a student uses it (`make lab`), in headless Chromium.

JupyterLab (from this virtual environment, with jupytext, jupyterlab-myst and
labextension/optbook-chapter-pages installed by `make setup`) runs on a free localhost
port, with a token, in a temporary copy of the chapter pages and README.md that is a git
repository of its own (with the .gitignore); its settings, workspaces and runtime files are temporary too.
In the browser:

* README.md opens as Markdown (the text editor), with no kernel;
* chapters/10-pytorch-in-practice.md opens as a notebook (a double click in the file
  browser), Run All runs it, and its Markdown cells show no raw MyST (no {glue}, {eval},
  ```{admonition}, :class:, {doc}, {ref}, labels), the prose shows the numbers the code
  computed (jupyterlab-myst's {eval}), cross-references show their titles, and the
  answer drop-downs are closed;
* after a save the copy's `git status` is clean (the page is byte for byte the same).

No request may leave localhost. Runs in about a minute (the page's run is most of it).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from site_helpers import CHROMIUM_ARGS, LOCAL_HOSTS, chromium_path

ROOT = Path(__file__).resolve().parents[1]
PAGE = "chapters/10-pytorch-in-practice.md"
RAW_MYST = ["{glue", "{eval}", "```{admonition", ":class:", "{doc}", "{ref}", "(sec-", "```{"]
LAB_SETTINGS = {   # user settings of the temporary JupyterLab
    # every cell in the page (not only those on screen), so all can be read
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # no requests to jupyter.org for news or updates
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token, the copy's root) of a JupyterLab serving a copy of the pages."""
    labext = Path(sys.prefix) / "share/jupyter/labextensions/optbook-chapter-pages"
    if not labext.is_dir():
        pytest.fail(f"{labext} is missing: run `make setup`")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    work = tmp / "book"
    for name in _git(ROOT, "ls-files", "chapters", "README.md", ".gitignore").split():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, work / name)
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "-c", "user.name=test", "-c", "user.email=test@example.invalid",
         "commit", "-q", "-m", "copy")
    settings = tmp / "settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           # PyTorch's small tensors on two busy cores: one thread is several times faster
           "OMP_NUM_THREADS": "1"}
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
               f"--ServerApp.root_dir={work}", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token, work
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def lab_page(lab):
    """A browser tab on JupyterLab; requests that leave localhost are aborted and listed."""
    from playwright.sync_api import sync_playwright

    url, token, _ = lab
    blocked = []

    def route(r):
        from urllib.parse import urlparse

        if urlparse(r.request.url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", route)
        page.goto(f"{url}/lab?token={token}&reset")
        page.wait_for_selector(".jp-DirListing-item", timeout=90_000)
        yield page, blocked
        browser.close()


def _open_in_file_browser(page, *names: str) -> None:
    """Double-click each name in turn in the file browser (folders, then the file)."""
    for name in names:
        label = page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
        page.locator(".jp-DirListing-item", has=label).first.dblclick()
    page.wait_for_timeout(500)


def _current(page, expression: str):
    return page.evaluate(f"() => {{ const w = jupyterapp.shell.currentWidget; return {expression}; }}")


def test_readme_opens_as_markdown_not_as_a_notebook(lab_page):
    page, _ = lab_page
    _open_in_file_browser(page, "README.md")
    page.wait_for_function("() => jupyterapp.shell.currentWidget?.title.label === 'README.md'")
    assert page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-FileEditor").count() == 1
    assert page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-Notebook").count() == 0
    assert page.locator(".jp-Dialog").count() == 0            # no "select a kernel"
    page.evaluate("() => jupyterapp.commands.execute('application:close')")


def test_chapter_page_runs_renders_and_stays_clean(lab, lab_page):
    page, blocked = lab_page
    work = lab[2]
    original = (work / PAGE).read_bytes()
    written = (work / PAGE).stat().st_mtime_ns
    _open_in_file_browser(page, "chapters", Path(PAGE).name)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=60_000)
    assert _current(page, "w.context.path") == PAGE
    page.wait_for_function("() => jupyterapp.shell.currentWidget.sessionContext"
                           ".session?.kernel?.status === 'idle'", timeout=60_000)

    # Run → Run All Cells, as a student would (again if the kernel was not yet listening)
    done = ("() => { const w = jupyterapp.shell.currentWidget; const code = [...w.content.model"
            ".cells].filter(c => c.type === 'code'); return w.sessionContext.session.kernel.status"
            " === 'idle' && code.every(c => c.executionCount !== null); }")
    for attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function("() => [...jupyterapp.shell.currentWidget.content.model.cells]"
                                   ".some(c => c.type === 'code' && c.executionCount !== null)",
                                   timeout=20_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.wait_for_function(done, timeout=240_000, polling=1000)
    errors = _current(page, "[...w.content.model.cells].flatMap(c => c.type === 'code' ? "
                            "c.outputs.toJSON().filter(o => o.output_type === 'error')"
                            ".map(o => o.ename + ': ' + o.evalue) : [])")
    assert not errors

    # jupyterlab-myst evaluated every {eval}, and the prose shows the values
    evaluated = _current(page, "[...w.content.model.cells].filter(c => c.type === 'markdown')"
                               ".flatMap(c => c.getMetadata('user_expressions') || [])")
    expressions = re.findall(r"\{eval\}`([^`]+)`", original.decode())
    assert {e["expression"] for e in evaluated} == set(expressions)
    assert all(e["result"]["status"] == "ok" for e in evaluated)
    page.wait_for_timeout(1000)
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell")
    text = "\n".join(cells.all_inner_texts())
    for fragment in RAW_MYST:
        assert fragment not in text, fragment
    values = {e["expression"]: e["result"]["data"]["text/plain"].strip("'") for e in evaluated}
    assert re.fullmatch(r"\d(\.\d+)?e-\d+", values["map_max_diff"])
    assert f"the two agree to {values['map_max_diff']}, the" in " ".join(text.split())
    for name, value in values.items():
        assert value in text, name
    # cross-references show the titles the site shows; answers sit in closed drop-downs
    for title in ("Appendix C · Notation", "AdamW: decoupled weight decay",
                  "8.5 RMSprop and AdaGrad"):
        assert title in text
    dropdowns = cells.locator("details")
    assert dropdowns.count() >= 2
    assert all(not d.evaluate("e => e.open") for d in dropdowns.all())

    # save (Ctrl+S; autosave may have saved too): JupyterLab writes the page through
    # jupytext, and it is the same file, so the copy's git status is clean
    page.evaluate("() => jupyterapp.shell.currentWidget.content.node.focus()")
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=30_000)
    page.wait_for_timeout(1000)
    assert (work / PAGE).stat().st_mtime_ns != written, "the page was not saved"
    assert (work / PAGE).read_bytes() == original
    assert _git(work, "status", "--porcelain") == ""
    assert not blocked, f"requests left localhost: {blocked}"


SLIDER_PAGE = "chapters/03-exponentially-weighted-averages.md"


def test_sliders_move_their_figures_and_plumbing_is_folded(lab, lab_page):
    """A page with sliders, after Run All: moving a slider (keyboard, as on the site)
    shows another frame; the plumbing cells (hide-cell/hide-input on the site) are folded
    and the teaching code is in view."""
    page, blocked = lab_page
    # opened with the file's default viewer (the file browser may be in any folder now)
    page.evaluate(f"() => {{ jupyterapp.commands.execute('docmanager:open', {{path: '{SLIDER_PAGE}'}}); }}")
    page.wait_for_function(f"() => jupyterapp.shell.currentWidget?.context?.path === '{SLIDER_PAGE}'"
                           " && jupyterapp.shell.currentWidget.sessionContext.session?.kernel"
                           "?.status === 'idle'", timeout=60_000)
    done = ("() => { const w = jupyterapp.shell.currentWidget; const code = [...w.content.model"
            ".cells].filter(c => c.type === 'code'); return w.sessionContext.session.kernel.status"
            " === 'idle' && code.every(c => c.executionCount !== null); }")
    page.evaluate("() => jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(done, timeout=240_000, polling=1000)

    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    handles = panel.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle")
    assert handles.count() >= 1, "no slider in the outputs"
    for i in range(handles.count()):
        handle = handles.nth(i)
        handle.scroll_into_view_if_needed()
        output = handle.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea')][1]")
        shown = "(els) => els.filter(e => e.offsetParent !== null).map(e => e.src).join()"
        before = output.locator("img").evaluate_all(shown)
        handle.focus()
        page.keyboard.press("End")
        page.wait_for_timeout(300)
        after = output.locator("img").evaluate_all(shown)
        assert before and after and before != after, f"slider {i} did not change its figure"

    # plumbing folded, teaching code shown (jupyter.source_hidden, as the site's toggles)
    tags = _current(page, "[...w.content.model.cells].filter(c => c.type === 'code')"
                          ".map(c => [(c.getMetadata('tags') || []).join(), "
                          "!!(c.getMetadata('jupyter') || {}).source_hidden])")
    assert tags and all(hidden == ("hide-" in t) for t, hidden in tags), tags
    folded = _current(page, "w.content.widgets.filter(c => c.model.type === 'code')"
                            ".map(c => c.inputHidden)")
    assert folded == [hidden for _, hidden in tags]
    assert panel.locator(".jp-CodeCell .jp-InputPlaceholder").count() == sum(folded)
    assert not blocked, f"requests left localhost: {blocked}"
    page.evaluate("() => jupyterapp.commands.execute('application:close')")
