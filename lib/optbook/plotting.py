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
