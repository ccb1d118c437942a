"""The runs behind the README's analysis: every optimizer on every surface, and its α sweep.

    .venv/bin/python solutions/playground/analysis.py            # print the tables
    .venv/bin/python solutions/playground/analysis.py --write    # and write the figures
                                                                 # and the README's tables

Settings (the app's starting state): 200 steps from each surface's standard start,
each optimizer at its preset α (``playground_core.presets``: the best of
1e-4, 3e-4, ..., 1 for 200 steps) and at the book's defaults for everything else
(β = 0.9 for momentum, β = 0.999 for RMSprop, β₁ = 0.9, β₂ = 0.999, ε = 1e-8,
λ = 0.01).  The sweep runs each optimizer at every α of 1e-4, 3e-4, ..., 1, 3.
Everything is deterministic: the same numbers come out on every machine that has the
same NumPy.  ``tests/test_playground_app.py`` checks that the README's tables are the
ones printed here.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import playground_core as core  # noqa: E402

from optbook.optimizers import OPTIMIZERS  # noqa: E402
from optbook.book.playground import LR_GRID, compact_png, draw_loss_curves  # noqa: E402
from optbook.book.figures import book_style, color_of  # noqa: E402
from optbook.book.surface_figures import contour_figure  # noqa: E402

ROOT = HERE.parents[1]
FIGURES = ROOT / "docs" / "playground"
README = HERE / "README.md"
SWEEP = LR_GRID + (3.0,)
STEPS = core.PRESET_STEPS
TABLE_MARKERS = ("<!-- analysis tables: begin (written by analysis.py --write) -->",
                 "<!-- analysis tables: end -->")


@lru_cache(maxsize=None)
def preset_runs() -> dict:
    """(surface, optimizer) → the path of the app's starting settings."""
    return {(s, name): core.run(name, s, hp, core.surface(s).default_start, STEPS)
            for (s, name), hp in core.presets().items()}


def start_gap(s: str) -> float:
    """J − J_min at the surface's standard start."""
    where = core.surface(s)
    return float(where.value(where.default_start)) - (where.f_min or 0.0)


@lru_cache(maxsize=None)
def sweep() -> dict:
    """(surface, optimizer) → J − J_min after 200 steps at each α of :data:`SWEEP`
    (``inf`` where the run diverged)."""
    out = {}
    for s in core.SURFACE_NAMES:
        start, f_min = core.surface(s).default_start, core.surface(s).f_min or 0.0
        for name in core.OPTIMIZER_NAMES:
            finals = []
            for lr in SWEEP:
                info = core.summary(s, core.run(name, s, {"lr": lr}, start, STEPS))
                finals.append(math.inf if info["diverged_at"] else info["final_loss"] - f_min)
            out[s, name] = finals
    return out


def sensitivity(s: str, name: str) -> tuple[int, int]:
    """(how many α of the sweep cut J − J_min by 99 % in 200 steps, how many diverge)."""
    finals = np.array(sweep()[s, name])
    return int(np.sum(finals < 0.01 * start_gap(s))), int(np.sum(~np.isfinite(finals)))


def book_defaults() -> list[tuple[str, str, float]]:
    """(optimizer, keyword, default) for every hyperparameter but α, from the classes."""
    return [(name, key, inspect.signature(OPTIMIZERS[name]).parameters[key].default)
            for name in core.OPTIMIZER_NAMES for key in core.HYPERPARAMETERS[name][1:]]


def tables() -> str:
    """The README's tables, as Markdown."""
    presets = core.presets()
    lines = ["| surface | optimizer | preset α | J − J_min after 200 steps | distance to the minimum "
             "| steps to J − J_min < 1e-6 | α values (of 10) that cut J − J_min by 99 % "
             "| α values that diverge |",
             "|---|---|---|---|---|---|---|---|"]
    for s in core.SURFACE_NAMES:
        f_min = core.surface(s).f_min or 0.0
        for name in core.OPTIMIZER_NAMES:
            info = core.summary(s, preset_runs()[s, name])
            good, bad = sensitivity(s, name)
            reached = "—" if info["reached_at"] is None else str(info["reached_at"])
            lines.append(f"| {s} | {name} | {presets[s, name]['lr']:g} | "
                         f"{info['final_loss'] - f_min:.2g} | {info['distance']:.2g} | {reached} "
                         f"| {good} | {bad} |")
    starts = ", ".join(f"{s} {start_gap(s):.3g}" for s in core.SURFACE_NAMES)
    diverged = ", ".join(f"{name} {sum(sensitivity(s, name)[1] for s in core.SURFACE_NAMES)}"
                         for name in core.OPTIMIZER_NAMES)
    defaults = ", ".join(f"{key} = {value:g} ({name})" for name, key, value in book_defaults())
    full = ["| surface | optimizer | " + " | ".join(f"α = {lr:g}" for lr in SWEEP) + " |",
            "|---|---|" + "---|" * len(SWEEP)]
    full += [f"| {s} | {name} | " + " | ".join("div" if math.isinf(v) else f"{v:.1g}"
                                              for v in sweep()[s, name]) + " |"
             for s in core.SURFACE_NAMES for name in core.OPTIMIZER_NAMES]
    return (f"Settings: {STEPS} steps from each surface's standard start, the preset α of "
            f"each optimizer, and the book's defaults for the rest: {defaults}.\n\n"
            + "\n".join(lines) + f"\n\nJ − J_min at the standard starts: {starts}. "
            f"Runs of the α sweep (4 surfaces × 10 α) that diverged: {diverged}.\n\n"
            "<details><summary>The whole α sweep: J − J_min after 200 steps "
            "(div = diverged)</summary>\n\n" + "\n".join(full) + "\n\n</details>")


# ------------------------------------------------------------------------------ figures
def paths_figure():
    """Top: each surface with the six paths; bottom: their loss curves."""
    fig, axes = plt.subplots(2, 4, figsize=(17.0, 8.0), gridspec_kw={"height_ratios": [1.1, 1.0]})
    for j, s in enumerate(core.SURFACE_NAMES):
        paths = {name: preset_runs()[s, name] for name in core.OPTIMIZER_NAMES}
        contour_figure(core.surface(s), paths, ax=axes[0, j], levels=20, title=s)
        axes[0, j].grid(False)
        if j:
            axes[0, j].get_legend().remove()
        draw_loss_curves(axes[1, j], s, {n: core.losses(s, p) for n, p in paths.items()},
                         title=f"{s}: loss, each at its preset α")
        if j:
            axes[1, j].get_legend().remove()
    fig.tight_layout()
    return fig


def sensitivity_figure():
    """One panel per surface: J − J_min after 200 steps against α, a cross where it diverged."""
    fig, axes = plt.subplots(1, 4, figsize=(17.0, 3.9))
    for ax, s in zip(axes, core.SURFACE_NAMES):
        top = 30 * start_gap(s)
        for i, name in enumerate(core.OPTIMIZER_NAMES):
            finals = np.array(sweep()[s, name])
            shown = np.clip(np.where(np.isfinite(finals), finals, top), 1e-12, top)
            ax.plot(SWEEP, shown, "o-", ms=4, lw=1.6, color=color_of(name, i), label=name)
            bad = ~np.isfinite(finals)
            ax.plot(np.array(SWEEP)[bad], shown[bad], "x", ms=9, mew=2, color=color_of(name, i))
        ax.axhline(0.01 * start_gap(s), color="k", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="α", title=f"{s}: J − J_min after {STEPS} steps")
        ax.title.set_fontsize(10)
    axes[0].set_ylabel("J − J_min (× = diverged; dotted: 1 % of the start)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_readme_tables(text: str) -> None:
    readme = README.read_text()
    begin, end = TABLE_MARKERS
    block = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not block.search(readme):
        raise SystemExit(f"{README} has no block between {begin!r} and {end!r}")
    README.write_text(block.sub(lambda _: f"{begin}\n\n{text}\n\n{end}", readme))


def main(argv: list[str]) -> None:
    book_style()
    text = tables()
    print(text)
    if "--write" in argv:
        FIGURES.mkdir(parents=True, exist_ok=True)
        for name, make in (("analysis-paths", paths_figure), ("analysis-alpha", sensitivity_figure)):
            target = FIGURES / f"{name}.png"
            target.write_bytes(compact_png(make(), dpi=80, colors=64))
            print(f"wrote {target.relative_to(ROOT)}")
        write_readme_tables(text)
        print(f"wrote the tables into {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
