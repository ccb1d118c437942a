"""The Optimizer Playground: the reference app for exercise E (Streamlit).

    make playground        # = .venv/bin/streamlit run solutions/playground/app.py ...

Pick a surface and an optimizer in the sidebar, set its hyperparameters and the start
point, and the page redraws: the optimizer's path on the contours, the loss curves of
all six optimizers on that surface (each at its own settings), a summary of every run,
and the iteration table with a CSV download.  Every number comes from the core
functions of exercise E in ``playground_core.py``; this file only arranges them.

Each optimizer starts at the α that works best for it on the surface, by the book's
tuning rule (:func:`optbook.book.playground.tuned_lr`: 200 steps from the surface's standard
start, every other hyperparameter at the book's default, the same α as the book's
playground page) and at the book's defaults for the rest.  Settings are remembered per surface and
optimizer, so changing Adam's α on Beale leaves Adam on Rosenbrock as it was, and the
loss curves compare each optimizer at its own current settings.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import playground_core as core  # noqa: E402

from optbook.optimizers import OPTIMIZERS  # noqa: E402
from optbook.book.playground import draw_loss_curves  # noqa: E402
from optbook.book.figures import book_style  # noqa: E402

#: Slider values: α on a 1-2-3-5 log scale (up to 10, the largest tuned α), the
#: decays, ε and λ on log scales.
LR_OPTIONS = tuple(round(m * 10.0**e, 10) for e in range(-4, 1) for m in (1, 2, 3, 5)) + (10.0,)
BETA_OPTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)
EPSILON_OPTIONS = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1)
WEIGHT_DECAY_OPTIONS = (0.0, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
#: label and options of each hyperparameter's slider
SLIDERS = {
    "lr": ("α (learning rate)", LR_OPTIONS),
    "beta": ("β (decay of the average)", BETA_OPTIONS),
    "beta1": ("β₁ (first-moment decay)", BETA_OPTIONS),
    "beta2": ("β₂ (second-moment decay)", BETA_OPTIONS),
    "epsilon": ("ε", EPSILON_OPTIONS),
    "weight_decay": ("λ (weight decay)", WEIGHT_DECAY_OPTIONS),
}
SYMBOLS = {"lr": "α", "beta": "β", "beta1": "β₁", "beta2": "β₂", "epsilon": "ε",
           "weight_decay": "λ"}


DEFAULTS = {key: {name: inspect.signature(cls).parameters[key].default
                   for name, cls in OPTIMIZERS.items() if key in inspect.signature(cls).parameters}
            for key in SLIDERS}  # the book's defaults, per hyperparameter and optimizer


@st.cache_data(show_spinner="Tuning α for every optimizer and surface…")
def presets() -> dict:
    """(surface, optimizer) → starting settings: the tuned α (``core.presets``) and
    the book's defaults for the rest, as slider values."""
    out = {}
    for (s, name), hp in core.presets().items():
        out[s, name] = {key: _nearest(hp.get(key, DEFAULTS[key][name]), SLIDERS[key][1])
                        for key in core.HYPERPARAMETERS[name]}
    return out


def _nearest(value: float, options) -> float:
    return min(options, key=lambda o: abs(o - value))


def _fmt(value: float) -> str:
    return f"{value:g}"


def _step(t: int | None) -> str:
    return "—" if t is None else str(t)


def describe(hp: dict) -> str:
    """``α = 0.01, β = 0.9``: settings in the book's symbols."""
    return ", ".join(f"{SYMBOLS[k]} = {v:g}" for k, v in hp.items())


def number_columns(fmt: dict) -> dict:
    return {col: st.column_config.NumberColumn(col, format=f) for col, f in fmt.items()}


def settings_of(surface: str, name: str) -> dict:
    """The remembered settings of an optimizer on a surface (its presets at first)."""
    return dict(st.session_state.settings.get((surface, name), presets()[surface, name]))


def reset(surface: str, name: str) -> None:
    st.session_state.settings.pop((surface, name), None)
    for key in core.HYPERPARAMETERS[name]:
        st.session_state.pop(f"{key}:{surface}:{name}", None)


def sidebar() -> tuple[str, str, dict, tuple[float, float], int, bool]:
    bar = st.sidebar
    bar.header("Settings")
    surface = bar.selectbox("Surface", core.SURFACE_NAMES, format_func=str.capitalize,
                            key="surface")
    name = bar.selectbox("Optimizer", core.OPTIMIZER_NAMES, key="optimizer")
    bar.subheader(f"{name}'s hyperparameters")
    current = settings_of(surface, name)
    hp = {}
    for key in core.HYPERPARAMETERS[name]:
        label, options = SLIDERS[key]
        hp[key] = bar.select_slider(label, options=options, value=_nearest(current[key], options),
                                    format_func=_fmt, key=f"{key}:{surface}:{name}")
    st.session_state.settings[surface, name] = hp
    bar.button("Reset to the presets", on_click=reset, args=(surface, name),
               help="the tuned α for this surface, the book's defaults for the rest")

    bar.subheader("Start and length")
    where = core.surface(surface)
    (x0, x1), (y0, y1) = where.window
    sx, sy = where.default_start
    start = (bar.slider("start x₀", float(x0), float(x1), float(sx), 0.01, key=f"x0:{surface}"),
             bar.slider("start y₀", float(y0), float(y1), float(sy), 0.01, key=f"y0:{surface}"))
    steps = bar.slider("iterations", 10, 2000, core.PRESET_STEPS, 10, key="steps")
    all_paths = bar.checkbox("Draw every optimizer's path on the contours", key="all_paths")
    return surface, name, hp, start, steps, all_paths


def main() -> None:
    st.set_page_config(page_title="Optimizer Playground", layout="wide")
    book_style()
    st.session_state.setdefault("settings", {})
    surface, name, hp, start, steps, all_paths = sidebar()
    where = core.surface(surface)

    settings = {n: settings_of(surface, n) for n in core.OPTIMIZER_NAMES}
    paths = core.compare(surface, settings, start, steps)
    path = paths[name]
    info = core.summary(surface, path)

    st.title("Optimizer Playground")
    st.markdown(f"**{name}** on the **{surface}** surface. {where.description}")
    st.latex(rf"J(x, y) = {where.formula}")

    m1, m2, m3, m4 = st.columns(4)
    m1.metric("final loss J − J_min", f"{info['final_loss'] - (where.f_min or 0.0):.3g}")
    m2.metric("distance to the minimum", f"{info['distance']:.3g}")
    m3.metric("steps to J − J_min < 1e-6", _step(info["reached_at"]))
    m4.metric("diverged at step", _step(info["diverged_at"]))

    left, right = st.columns(2)
    with left:
        st.subheader("The path")
        shown = paths if all_paths else {name: path}
        fig = core.contour_with_path(surface, shown, title=f"{name}: {describe(hp)}")
        st.pyplot(fig, clear_figure=True)
        plt.close(fig)
    with right:
        st.subheader("All six optimizers")
        fig, ax = plt.subplots(figsize=(6.4, 5.0))
        draw_loss_curves(ax, where, {n: core.losses(surface, p) for n, p in paths.items()},
                         selected=name, title="loss per step, each at its own settings")
        fig.tight_layout()
        st.pyplot(fig, clear_figure=True)
        plt.close(fig)

    st.subheader("Every optimizer on this surface")
    rows = []
    for n, p in paths.items():
        s = core.summary(surface, p)
        rows.append({"optimizer": n,
                     "settings": describe(settings[n]),
                     "final J − J_min": s["final_loss"] - (where.f_min or 0.0),
                     "distance to minimum": s["distance"],
                     "steps to J − J_min < 1e-6": _step(s["reached_at"]),
                     "diverged at": _step(s["diverged_at"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=number_columns(
        {"final J − J_min": "%.3e", "distance to minimum": "%.3e"}))

    st.subheader(f"{name}: the parameters at every iteration")
    table = core.detailed_table(path, surface)
    st.dataframe(pd.DataFrame(table), height=360, hide_index=True, column_config=number_columns(
        {"x": "%.6f", "y": "%.6f", "loss": "%.4e", "dJ/dx": "%.3e", "dJ/dy": "%.3e",
         "step": "%.3e"}))
    st.download_button("Download the table as CSV", core.table_csv(table),
                       file_name=f"playground-{name}-{surface}.csv", mime="text/csv",
                       on_click="ignore")


main()
