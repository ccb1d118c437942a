"""Figure helpers shared by the chapter's pages.

Pages keep the teaching code visible and call these for the plumbing (hidden with
``hide-input``).  Every helper returns the matplotlib ``Figure`` it made, so a page can
show it, save it, or hand it to :func:`optbook.widgets.frame_slider` as one frame.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np

from .ewa import ewa, weights

#: One colour per idea, used on every page (raw data, averages, corrected averages).
COLORS = {
    "raw": "#94a3b8",
    "ewa": "#2563eb",
    "corrected": "#dc2626",
    "truth": "#111827",
    "SGD": "#ef4444",
    "Momentum": "#f59e0b",
    "RMSprop": "#22c55e",
    "Adam": "#7c3aed",
    "AdaGrad": "#64748b",
    "AdamW": "#0891b2",
}


def book_style() -> None:
    """Apply the book's matplotlib style (call once per page)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 11,
            "legend.frameon": False,
        }
    )


def figure_png(fig, dpi: int = 90) -> bytes:
    """Render ``fig`` to PNG bytes and close it (frames for sliders are made this way)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# --- 8.2 exponentially weighted averages ------------------------------------------


def ewa_figure(theta, beta: float, *, days=None, truth=None, bias_correction: bool = True,
               title: str | None = None, ylabel: str = "temperature (°C)"):
    r"""Raw series, its average :math:`V_t` and (optionally) :math:`\hat V_t`."""
    theta = np.asarray(theta, dtype=float)
    days = np.arange(1, len(theta) + 1) if days is None else np.asarray(days)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(days, theta, ".", ms=4, color=COLORS["raw"], label=r"data $\theta_t$")
    if truth is not None:
        ax.plot(days, truth, "--", lw=1, color=COLORS["truth"], label="underlying trend")
    ax.plot(days, ewa(theta, beta), lw=2, color=COLORS["ewa"], label=r"$V_t$ (no correction)")
    if bias_correction:
        ax.plot(days, ewa(theta, beta, bias_correction=True), lw=2,
                color=COLORS["corrected"], label=r"$\hat V_t = V_t/(1-\beta^t)$")
    ax.set_xlabel("day $t$")
    ax.set_ylabel(ylabel)
    lo, hi = np.nanmin(theta), np.nanmax(theta)
    ax.set_ylim(min(0.0, lo) - 1, hi + 3)
    ax.set_title(title or rf"$\beta = {beta:g}$: averages over about {1 / (1 - beta):.0f} days")
    ax.legend(loc="lower right", ncol=2, fontsize=9)
    fig.tight_layout()
    return fig


def ewa_weights_figure(betas, t: int = 60):
    r"""The weight :math:`(1-\beta)\beta^{t-k}` that :math:`V_t` gives to each past value."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    age = np.arange(t)  # how many days ago: t - k
    for beta in betas:
        w = weights(beta, t)[::-1]  # newest first
        ax.plot(age, w, "o-", ms=3, lw=1.5, label=rf"$\beta={beta:g}$ (window $\approx${1 / (1 - beta):.0f})")
    ax.set_xlabel("age of the value (days ago, $t-k$)")
    ax.set_ylabel(r"weight $(1-\beta)\beta^{t-k}$")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def bias_factor_figure(betas, t_max: int = 60):
    r"""The shortfall :math:`1-\beta^t` that bias correction divides out."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    t = np.arange(1, t_max + 1)
    for beta in betas:
        ax.plot(t, 1 - beta**t, lw=2, label=rf"$\beta={beta:g}$")
    ax.axhline(1.0, color=COLORS["truth"], lw=0.8)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$1-\beta^t$ (sum of the weights)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


# --- 2-D loss surfaces and optimizer paths (8.3 onwards) --------------------------


def color_of(name: str, i: int = 0) -> str:
    """The book's colour for an optimizer name (falls back to matplotlib's cycle)."""
    return COLORS.get(name, f"C{i}")


def contour_figure(surface, paths: dict | None = None, *, ax=None, levels: int = 25,
                   title: str | None = None, show_start: bool = True, figsize=(6.4, 4.8),
                   marker_every: int | None = None):
    r"""Contours of ``surface`` with each optimizer's path on top.

    ``paths`` maps a label to a :class:`optbook.surfaces.Trajectory` (or an ``(n, 2)``
    array of points).  Known minima are marked with a star; a path that diverged is
    drawn up to where it left the window and labelled "diverged".
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    X, Y, Z = surface.grid(201)
    ax.contour(X, Y, Z, levels=surface.contour_levels(levels), cmap="Greys_r",
               linewidths=0.7, alpha=0.8)
    for mx, my in surface.minima:
        ax.plot(mx, my, "*", ms=13, color="#facc15", mec="k", mew=0.8, zorder=5)
    for i, (label, path) in enumerate((paths or {}).items()):
        pts = np.asarray(getattr(path, "points", path))
        diverged = getattr(path, "diverged_at", None)
        name = label + (" (diverged)" if diverged else "")
        color = color_of(label.split(" ")[0], i)
        ax.plot(pts[:, 0], pts[:, 1], "-", color=color, lw=1.8, label=name, zorder=3,
                marker="o" if marker_every else None, ms=3, markevery=marker_every)
        if show_start and i == 0:
            ax.plot(pts[0, 0], pts[0, 1], "o", color="k", ms=5, zorder=4)
    (x0, x1), (y0, y1) = surface.window
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(title or f"{surface.name}: $J = {surface.formula}$", fontsize=10)
    if paths:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def loss_curves_figure(curves: dict, *, ax=None, logy: bool = True, xlabel: str = "step $t$",
                       ylabel: str = r"loss $J(\theta_t)$", title: str | None = None,
                       figsize=(6.4, 4.0)):
    """Loss curves, one per label (the book's colour per optimizer name), log scale by default."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(getattr(values, "losses", values), dtype=float)
        ax.plot(np.arange(len(values)), values, lw=2, color=color_of(label.split(" ")[0], i), label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
