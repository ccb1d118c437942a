"""The Optimizer Playground (``solutions/playground/``): its core, and the app in Chromium.

The core (``playground_core.py``) must be exercise E's reference: it passes the
exercise's checks, agrees with the solution notebook on the four optimizers
the exercise names, and extends them correctly to AdaGrad and AdamW.

The app is then started as a user starts it (``streamlit run``, headless, on a free
localhost port) and driven in headless Chromium with every request that would leave
localhost blocked: it must render, a slider move and a change of surface and of
optimizer must change both figures and the iteration table, the CSV download must hold
exactly the run of the chosen settings, and no exception block, JavaScript error or
outside request may appear.  ``tools/playground_screenshots.py`` replays the same
scenario to make the README's screenshots.
"""

from __future__ import annotations

import ast
import csv
import inspect
import io
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optbook import optimizers, surfaces  # noqa: E402
from optbook.book import playground  # noqa: E402
from optbook.grade.checks import load_checks  # noqa: E402
from optbook.grade.judge import judge_value  # noqa: E402
from optbook.grade.probe import plain  # noqa: E402
from optbook.book.playground import tuned_lr  # noqa: E402
from site_helpers import open_offline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "solutions" / "playground"
APP = APP_DIR / "app.py"
sys.path.insert(0, str(APP_DIR))
import playground_core as core  # noqa: E402

HIDDEN = ROOT / "solutions" / "hidden" / "E-playground.py"
SOLUTION = ROOT / "solutions" / "E-playground.ipynb"
GRADED = ("run", "losses", "iteration_table", "contour_with_path")


# ================================================================== the core, exercise E
CHECKS = {check.id: check for check in load_checks(HIDDEN)[0]}


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_core_passes_the_checks_of_exercise_e(check_id):
    """Each check of E as the grader runs it: its probe on the core's functions in place
    of a student's answers, the value through JSON as plain data, then its judge."""
    check = CHECKS[check_id]
    namespace = {name: getattr(core, name) for name in GRADED}
    exec(compile(check.probe_function("_probe"), f"<probe {check_id}>", "exec"), namespace)
    value = json.loads(json.dumps(plain(namespace["_probe"]())))
    assert judge_value(check, value) == (True, "")
    plt.close("all")


def solution_functions() -> dict:
    """The solution notebook's answer cells, run in this process."""
    nb = nbformat.read(SOLUTION, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        role = cell.metadata.get("optbook", {}).get("role")
        if cell.cell_type == "code" and role in ("setup", "answer"):
            exec(cell.source, namespace)
    plt.close("all")
    return {name: namespace[name] for name in GRADED}


CASES = [  # (optimizer, surface, hyperparameters, start, steps)
    ("SGD", "quadratic", {"lr": 0.3}, (1.5, -1.0), 30),
    ("SGD", "rosenbrock", {"lr": 0.01}, (-1.2, 1.0), 40),          # diverges
    ("Momentum", "rastrigin", {"lr": 0.02, "beta": 0.95}, (-3.3, 2.6), 60),
    ("RMSprop", "beale", {"lr": 0.01, "beta": 0.9, "epsilon": 1e-6}, (0.7, 1.4), 80),
    ("Adam", "rosenbrock", {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "weight_decay": 3.0}, (0.0, 2.0), 90),
    ("Adam", "beale", {}, (1.0, 1.0), 25),
]


def test_core_agrees_with_the_solution_notebook():
    reference = solution_functions()
    for name, surface, hp, start, steps in CASES:
        ours = core.run(name, surface, hp, start, steps)
        theirs = reference["run"](name, surface, hp, start, steps)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{name} on {surface}")
        finite = ours[np.isfinite(ours).all(axis=1)]
        np.testing.assert_array_equal(core.losses(surface, finite), reference["losses"](surface, finite))
        assert core.iteration_table(finite, surface) == reference["iteration_table"](finite, surface)
        # the figures draw the same path lines
        lines = []
        for draw in (core.contour_with_path, reference["contour_with_path"]):
            fig = draw(surface, {name: ours})
            lines.append([np.column_stack(l.get_data()) for l in fig.axes[0].get_lines()
                          if len(l.get_xdata()) == len(ours)])
            plt.close(fig)
        assert len(lines[0]) == len(lines[1]) == 1
        np.testing.assert_array_equal(lines[0][0], lines[1][0])


@pytest.mark.parametrize("name, cls, hp", [
    ("AdaGrad", optimizers.AdaGrad, {"lr": 0.5, "epsilon": 1e-6}),
    ("AdamW", optimizers.AdamW, {"lr": 0.1, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-8,
                                  "weight_decay": 0.3}),
])
def test_adagrad_and_adamw_take_their_own_hyperparameters(name, cls, hp):
    start = (-1.2, 1.0)
    expected = surfaces.trajectory(cls(**hp), surfaces.rosenbrock, start=start, steps=50).points
    got = core.run(name, "rosenbrock", {**hp, "beta": 0.1}, start, 50)  # beta: not theirs
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)
    if name == "AdamW":  # the decay is used: without it the path is Adam's
        adam = core.run("Adam", "rosenbrock", hp, start, 50)
        assert np.abs(got - adam).max() > 1e-3


def test_a_diverged_run_is_nan_after_the_blow_up_and_summarised():
    path = core.run("SGD", "rosenbrock", {"lr": 0.01}, (-1.2, 1.0), 40)
    trajectory = surfaces.trajectory(optimizers.SGD(lr=0.01), surfaces.rosenbrock,
                                     start=(-1.2, 1.0), steps=40)
    k = trajectory.diverged_at
    assert k is not None and np.isfinite(path[:k]).all() and np.isnan(path[k:]).all()
    info = core.summary("rosenbrock", path)
    assert info["diverged_at"] == k and info["reached_at"] is None
    assert info["final_loss"] == pytest.approx(float(trajectory.losses[-1]))
    assert info["distance"] == pytest.approx(math.dist(trajectory.points[-1], (1.0, 1.0)))


def test_summary_counts_the_steps_to_the_tolerance():
    # SGD with α = 0.25 on x² + y² halves θ each step, so J_t = J_0 / 4^t exactly
    path = core.run("SGD", "quadratic", {"lr": 0.25}, (1.5, -1.0), 20)
    j0 = 1.5**2 + 1.0
    first = math.ceil(math.log(j0 / 1e-6, 4) + 1e-12)
    assert core.summary("quadratic", path)["reached_at"] == first
    assert core.summary("quadratic", path)["diverged_at"] is None


def test_detailed_table_and_its_csv():
    path = core.run("Momentum", "beale", {"lr": 0.01, "beta": 0.9}, (0.7, 1.4), 12)
    rows = core.detailed_table(path, "beale")
    assert [r["t"] for r in rows] == list(range(13))
    h = 1e-6
    for r in rows:  # the gradient columns against central differences
        fx = (surfaces.beale.f(r["x"] + h, r["y"]) - surfaces.beale.f(r["x"] - h, r["y"])) / (2 * h)
        fy = (surfaces.beale.f(r["x"], r["y"] + h) - surfaces.beale.f(r["x"], r["y"] - h)) / (2 * h)
        assert r["dJ/dx"] == pytest.approx(fx, rel=1e-6, abs=1e-6)
        assert r["dJ/dy"] == pytest.approx(fy, rel=1e-6, abs=1e-6)
    assert math.isnan(rows[0]["step"])
    assert rows[5]["step"] == pytest.approx(math.hypot(*(path[5] - path[4])))
    parsed = list(csv.DictReader(io.StringIO(core.table_csv(rows))))
    assert len(parsed) == 13 and list(parsed[0]) == list(rows[0])
    for r, p in zip(rows, parsed):  # full precision: the CSV gives back the same floats
        assert all(float(p[k]) == r[k] or (math.isnan(r[k]) and p[k] == "nan") for k in r)


@pytest.mark.parametrize("args, bad", [(("Nadam", "quadratic"), "Nadam"),
                                       (("Adam", "himmelblau"), "himmelblau")])
def test_unknown_names_are_named(args, bad):
    with pytest.raises(ValueError, match=bad):
        core.run(*args, {}, (0.5, 0.5), 3)


# ======================================================= optbook.book.playground (shared with the book)
def test_each_optimizer_takes_the_hyperparameters_listed():
    for name, cls in optimizers.OPTIMIZERS.items():
        taken = [p for p in inspect.signature(cls).parameters if p != "nesterov"]
        assert list(playground.HYPERPARAMETERS[name]) == taken, name
    assert set(playground.OPTIMIZER_NAMES) == set(optimizers.OPTIMIZERS)


def test_tuned_lr_is_the_best_grid_value_that_does_not_diverge():
    grid = (0.001, 0.003, 0.01, 0.03)
    finals = {}
    for lr in grid:  # by hand: SGD on Rosenbrock diverges from α = 0.01 on
        path = surfaces.trajectory(optimizers.SGD(lr=lr), surfaces.rosenbrock, steps=100)
        if path.diverged_at is None:
            finals[lr] = path.losses[-1]
    assert len(finals) < len(grid)
    assert tuned_lr("SGD", "rosenbrock", steps=100, grid=grid) == min(finals, key=finals.get)
    # the other hyperparameters are passed through (momentum diverges at 0.1, so the
    # best α, 0.03, is not at the end of the grid)
    grid += (0.1,)
    beta = {}
    for lr in grid:
        path = surfaces.trajectory(optimizers.MomentumSGD(lr=lr, beta=0.5), surfaces.beale,
                                   steps=60)
        if path.diverged_at is None:
            beta[lr] = path.losses[-1]
    assert tuned_lr("Momentum", "beale", steps=60, grid=grid, beta=0.5) == min(beta, key=beta.get)


@pytest.mark.parametrize("args, kwargs, message", [
    (("SGD", "rosenbrock"), {"grid": (1.0, 3.0), "steps": 50}, "diverges on rosenbrock at every lr"),
    (("SGD", "quadratic"), {"grid": (0.01, 0.03, 0.1)}, "0.1, is the largest of the grid"),
    (("SGD", "quadratic"), {"lr": 0.1}, "chooses lr itself"),
    (("Adam", "quadratic"), {"beta": 0.9}, "Adam takes no beta"),
    (("Nadam", "quadratic"), {}, "Unknown optimizer 'Nadam'"),
    (("SGD", "himmelblau-ish"), {}, "Unknown surface 'himmelblau-ish'"),
])
def test_tuned_lr_explains_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tuned_lr(*args, **kwargs)


def test_loss_curves_mark_the_selected_and_the_diverged():
    traj = playground.runs("rosenbrock", {"SGD": {"lr": 0.01}, "Adam": {"lr": 0.1}}, steps=50)
    assert traj["SGD"].diverged_at is not None and traj["Adam"].diverged_at is None
    fig, ax = plt.subplots()
    playground.draw_loss_curves(ax, "rosenbrock", {**traj, "nan-padded": core.losses(
        "rosenbrock", core.run("SGD", "rosenbrock", {"lr": 0.01}, (-1.2, 1.0), 50))}, selected="Adam")
    curves = {l.get_label(): l for l in ax.get_lines() if not l.get_label().startswith("_")}
    assert set(curves) == {"SGD (diverged)", "Adam", "nan-padded (diverged)"}
    assert curves["Adam"].get_linewidth() > curves["SGD (diverged)"].get_linewidth()
    np.testing.assert_allclose(curves["Adam"].get_ydata(), traj["Adam"].losses)  # J_min = 0
    crosses = [l for l in ax.get_lines() if l.get_marker() == "x"]
    assert len(crosses) == 2 and ax.get_yscale() == "log"
    plt.close(fig)


def test_canvas_frames_are_same_size_palette_pngs_and_do_not_pile_up():
    from PIL import Image

    traj = playground.runs("beale", {n: {"lr": 0.01} for n in ("SGD", "Adam")}, steps=40)
    canvas = playground.PlaygroundCanvas("beale", dpi=50)
    lines_before = len(canvas.ax_path.get_lines())
    frames = [canvas.png(traj, name) for name in ("SGD", "Adam", "SGD")]
    assert len(canvas.ax_path.get_lines()) == lines_before + 3   # path, start, end: once
    images = [Image.open(io.BytesIO(f)) for f in frames]
    assert {im.size for im in images} == {images[0].size} and images[0].mode == "P"
    assert frames[0] != frames[1] and frames[0] == frames[2]
    with pytest.raises(ValueError, match="not one of the trajectories"):
        canvas.draw(traj, "RMSprop")
    with pytest.raises(ValueError, match="Invalid colors"):
        canvas.png(traj, "SGD", colors=1)
    canvas.close()


def test_canvas_frames_are_a_full_redraw_of_the_same_figure():
    """png() draws on a kept image of the contours; a full redraw gives the same pixels."""
    from PIL import Image

    traj = playground.runs("rosenbrock", {n: {"lr": 0.002} for n in ("SGD", "Momentum", "Adam")},
                           steps=60)
    canvas = playground.PlaygroundCanvas("rosenbrock", dpi=50)
    for name in ("SGD", "Adam", "Momentum"):
        frame = canvas.png(traj, name, title=f"{name} frame", colors=256)
    canvas.fig.canvas.draw()
    full = np.asarray(canvas.fig.canvas.buffer_rgba())[..., :3]
    kept = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))
    # the palette (≤ 256 colours) is computed from the image: compare after quantising
    # the full redraw the same way
    reference = np.asarray(Image.open(io.BytesIO(playground._palette_png(
        Image.fromarray(np.ascontiguousarray(full)), 256))).convert("RGB"))
    assert np.array_equal(kept, reference)
    canvas.close()


def test_compact_png_is_a_smaller_palette_png():
    from PIL import Image
    from optbook.book.figures import figure_png

    def fig():
        return playground.playground_figure("rosenbrock", playground.runs(
            "rosenbrock", {"Adam": {"lr": 0.1}}, steps=30), "Adam")

    small, full = playground.compact_png(fig(), dpi=60), figure_png(fig(), dpi=60)
    assert Image.open(io.BytesIO(small)).mode == "P" and len(small) < len(full) / 2


def app_lr_options() -> tuple:
    """The app's α slider values (``LR_OPTIONS`` in app.py, read without running it)."""
    tree = ast.parse(APP.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "LR_OPTIONS")
    return eval(compile(ast.Expression(node.value), str(APP), "eval"))


def test_the_app_can_start_every_optimizer_at_its_tuned_alpha():
    """Each preset α (the book's tuning rule, also the static page's table) is one of
    the α slider's values, so the app starts exactly there."""
    options = app_lr_options()
    presets = core.presets()
    assert {hp["lr"] for hp in presets.values()} <= set(options)
    assert presets["rosenbrock", "Adam"]["lr"] == tuned_lr("Adam", "rosenbrock")


# ======================================================================= the app, served
class StreamlitApp:
    """``streamlit run solutions/playground/app.py`` on a free localhost port, as a
    subprocess; stopped with SIGTERM (the way Ctrl-C stops it) when the block ends."""

    def __init__(self, log_path: Path, timeout: float = 90.0):
        self.log_path, self.timeout = log_path, timeout
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"

    def __enter__(self):
        cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.headless", "true", "--server.address", "127.0.0.1",
               "--server.port", str(self.port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not answer within {self.timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text()[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def __exit__(self, *exc):
        self.stop()


IDLE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-stale="true"]')
              && (document.querySelector('[data-testid="stException"]')
                  || document.querySelectorAll('[data-testid="stImage"] img').length == 2
                     && [...document.querySelectorAll('[data-testid="stDataFrame"]')]
                          .filter(t => t.querySelector('[data-testid^="glide-cell-"]')).length == 2)"""
BUSY_OR_CHANGED = """before => document.querySelector('[data-testid="stStatusWidget"]')
              || document.querySelector('[data-stale="true"]')
              || [...document.querySelectorAll('[data-testid="stImage"] img')]
                   .map(e => e.src).join(' ') != before"""


def image_sources(page) -> list[str]:
    return page.eval_on_selector_all('[data-testid="stImage"] img', "els => els.map(e => e.src)")


def after_rerun(page, action) -> None:
    """Do ``action``, then wait until Streamlit has started and finished the rerun."""
    before = " ".join(image_sources(page))
    action()
    try:  # a rerun marks the old elements stale at once; the pictures change during it
        page.wait_for_function(BUSY_OR_CHANGED, arg=before, timeout=10_000, polling=50)
    except Exception:  # nothing happened: the checks after this will say what did not change
        pass
    settle(page)


def settle(page, timeout: float = 60.0) -> None:
    """Wait until the script has finished and the data grids have drawn their cells,
    and the page then stays the same for a moment (the grids fill in after the run)."""
    page.wait_for_function(IDLE, timeout=timeout * 1000)
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = (image_sources(page),
               page.locator('[data-testid^="glide-cell-"]').all_inner_texts())
        if now == last:
            return
        last = now
        page.wait_for_timeout(300)
    raise AssertionError("the page did not settle")


def snapshot(page) -> dict:
    """What a user sees: the two pictures (their URLs), the first visible rows of the
    iteration table (the data grid's accessible cells), the headline and the sliders."""
    tables = page.locator('[data-testid="stDataFrame"]')
    headline = page.locator('[data-testid="stMain"] [data-testid="stMarkdown"]')
    return {
        "images": image_sources(page),
        "table": tables.nth(1).locator('[data-testid^="glide-cell-"]').all_inner_texts()
        if tables.count() == 2 else [],
        "headline": headline.first.inner_text() if headline.count() else "",
        "sliders": page.locator('[data-testid="stSidebar"] input[type="range"]').evaluate_all(
            "els => els.map(e => [e.getAttribute('aria-label'), e.getAttribute('aria-valuetext')])"),
        "exceptions": page.locator('[data-testid="stException"]').count(),
    }


def play(page, shots: Path | None = None) -> dict:
    """The scenario: open, move α one notch, switch to Rosenbrock, switch to Adam, and
    download the table.  Returns a snapshot after each step and the downloaded CSV;
    with ``shots``, saves a screenshot of the page after each step there."""
    seen = {}

    def record(step: str) -> None:
        seen[step] = snapshot(page)
        if shots is not None:
            page.screenshot(path=str(shots / f"{step}.png"))

    settle(page, timeout=90.0)
    record("1-start")
    lr = page.get_by_role("slider", name="α (learning rate)")
    after_rerun(page, lambda: (lr.focus(), lr.press("ArrowLeft")))
    record("2-alpha-moved")

    def choose(box: str, option: str):
        page.get_by_role("combobox", name=box).click()
        page.get_by_role("option", name=option, exact=True).click()

    after_rerun(page, lambda: choose("Surface", "Rosenbrock"))
    record("3-rosenbrock")
    after_rerun(page, lambda: choose("Optimizer", "Adam"))
    record("4-rosenbrock-adam")
    if page.locator('[data-testid="stException"]').count():
        return seen  # the test reports the exception; there is no table to download
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the table as CSV").click()
    seen["csv"] = Path(download.value.path()).read_text()
    seen["csv_name"] = download.value.suggested_filename
    return seen


def changed(a: dict, b: dict, key: str) -> bool:
    return a[key] != b[key]


def test_the_app_in_chromium(browser, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    with StreamlitApp(tmp_path / "streamlit.log") as app:
        context = browser.new_context(viewport={"width": 1400, "height": 2000},
                                      accept_downloads=True, service_workers="block")
        page, log = open_offline(context, app.url)
        try:
            seen = play(page, shots)
        finally:
            context.close()
        server_log = app.log_tail()
        code = app.stop()
    assert code is not None, "the server did not stop"
    start, moved, rosen, adam = (seen[k] for k in ("1-start", "2-alpha-moved", "3-rosenbrock",
                                                   "4-rosenbrock-adam"))
    # nothing went wrong on the way: no exception block, no JS error, nothing left localhost
    assert all(s["exceptions"] == 0 for s in (start, moved, rosen, adam)), server_log
    assert "Traceback" not in server_log, server_log
    assert not log.blocked, f"requests left localhost: {log.blocked}"
    assert not log.failed, f"local requests failed: {log.failed}"
    assert not log.errors, f"JavaScript errors: {log.errors}"
    # it rendered: two pictures, tables with the start point in row 0
    assert len(start["images"]) == 2 and start["table"][:3] == ["0", "-1.5", "1"]
    assert "SGD" in start["headline"] and "quadratic" in start["headline"]
    # the slider moved α and everything that depends on it changed; the start did not
    preset = tuned_lr("SGD", "quadratic")           # the tuned α is the slider's start
    assert dict(start["sliders"])["α (learning rate)"] == f"{preset:g}"
    one_down = max(lr for lr in app_lr_options() if lr < preset)
    assert dict(moved["sliders"])["α (learning rate)"] == f"{one_down:g}"
    for key in ("images", "table"):
        assert changed(start, moved, key), f"moving α did not change the {key}"
    assert all(a != b for a, b in zip(start["images"], moved["images"])), "a figure did not change"
    assert moved["table"][:3] == start["table"][:3]
    # the surface changed: new pictures, a new table from Rosenbrock's start
    assert "rosenbrock" in rosen["headline"]
    assert all(a != b for a, b in zip(moved["images"], rosen["images"])), "a figure did not change"
    assert rosen["table"][:3] == ["0", "-1.2", "1"] and changed(moved, rosen, "table")
    # the optimizer changed: Adam's own sliders, new pictures and table
    labels = [label for label, _ in adam["sliders"]]
    assert {"β₁ (first-moment decay)", "β₂ (second-moment decay)", "ε"} <= set(labels)
    assert changed(rosen, adam, "images") and changed(rosen, adam, "table")
    # the download is exactly Adam's run at its presets: the tuned α, the book's defaults
    alpha = float(dict(adam["sliders"])["α (learning rate)"])
    assert alpha == tuned_lr("Adam", "rosenbrock", steps=200)
    expected = core.detailed_table(core.run("Adam", "rosenbrock", {"lr": alpha}, (-1.2, 1.0), 200),
                                   "rosenbrock")
    rows = list(csv.DictReader(io.StringIO(seen["csv"])))
    assert seen["csv_name"] == "playground-Adam-rosenbrock.csv" and len(rows) == 201
    for want, got in zip(expected, rows):
        assert all(float(got[k]) == want[k] or (math.isnan(want[k]) and got[k] == "nan")
                   for k in want)
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-start.png", "2-alpha-moved.png", "3-rosenbrock.png", "4-rosenbrock-adam.png"]


# ======================================================================= the README
def test_readme_tables_and_quoted_numbers_are_the_analysis_scripts():
    """The README's tables are what ``analysis.py`` computes now, and every decimal or
    scientific number in its analysis prose is one of the numbers in those tables."""
    import analysis

    readme = (APP_DIR / "README.md").read_text()
    begin, end = analysis.TABLE_MARKERS
    block = readme[readme.index(begin) + len(begin):readme.index(end)].strip()
    assert block == analysis.tables(), "README out of date: run solutions/playground/analysis.py --write"
    number = r"(?<![\w.])\d+(?:\.\d+)?e[+-]?\d+|(?<![\w.])\d+\.\d+(?![\d])"
    in_tables = {float(x) for x in re.findall(number, block)}
    prose = readme[readme.index("## Analysis"):readme.index(begin)]
    quoted = re.findall(number, prose)
    assert len(quoted) > 20
    missing = sorted({q for q in quoted if float(q) not in in_tables})
    assert not missing, f"numbers in the analysis that no table holds: {missing}"
    for figure in re.findall(r"\]\((\.\./\.\./docs/playground/[\w-]+\.png)\)", readme):
        assert (APP_DIR / figure).resolve().is_file(), figure
