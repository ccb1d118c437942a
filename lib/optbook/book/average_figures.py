"""Figures of averages and moments: exponentially weighted averages and their bias
(8.3), momentum's average gradient (8.4), effective steps (8.5), Adam's moments and
weight decay (8.6), the worked example's trace."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from optbook.book.figures import COLORS, _finish_curves, _path_color, _pt, color_of
from optbook.ewa import ewa, weights

# --- 8.3 exponentially weighted averages ------------------------------------------


def ewa_figure(theta, beta: float, *, days=None, truth=None, bias_correction: bool = True,
               title: str | None = None, ylabel: str = "temperature (°C)",
               figsize=(8, 3.6)):
    r"""Raw series, its average :math:`V_t` and (optionally) :math:`\hat V_t`."""
    theta = np.asarray(theta, dtype=float)
    days = np.arange(1, len(theta) + 1) if days is None else np.asarray(days)
    fig, ax = plt.subplots(figsize=figsize)
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
    ax.legend(loc="lower right", ncol=2, fontsize=_pt(9))
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
    ax.legend(fontsize=_pt(9))
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
    ax.legend(fontsize=_pt(9))
    fig.tight_layout()
    return fig


# --- 8.4 momentum ------------------------------------------------------------------


def gradient_average_figure(g, m, *, beta: float, names=("$x$ (along the ravine)",
                                                         "$y$ (across the ravine)"),
                            figsize=(11.0, 3.4)):
    r"""One panel per coordinate: the gradients :math:`g_t` (grey) and their running
    average :math:`m_t` with decay ``beta`` (blue), against the step :math:`t`.

    ``g`` and ``m`` have shape ``(T, n)`` for ``n`` coordinates (one panel each).
    """
    g, m = np.atleast_2d(np.asarray(g, dtype=float)), np.atleast_2d(np.asarray(m, dtype=float))
    if g.shape != m.shape:
        raise ValueError(f"g and m must have the same shape, got {g.shape} and {m.shape}")
    t = np.arange(1, g.shape[0] + 1)
    fig, axes = plt.subplots(1, g.shape[1], figsize=figsize, squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.plot(t, g[:, j], "o-", ms=3, lw=0.8, color=COLORS["raw"], label="gradient $g_t$")
        ax.plot(t, m[:, j], lw=2.2, color=COLORS["ewa"],
                label=rf"average $m_t$ ($\beta = {beta:g}$)")
        ax.axhline(0.0, color=COLORS["truth"], lw=0.7)
        ax.set_xlabel("step $t$")
        ax.set_title(f"component {j + 1}: {names[j]}" if j < len(names) else f"component {j + 1}",
                     fontsize=_pt(10))
        ax.legend(fontsize=_pt(8))
    fig.tight_layout()
    return fig


# --- 8.5 RMSprop and AdaGrad -------------------------------------------------------


def effective_step_figure(curves: dict, *, reference: dict | None = None,
                          colors: dict | None = None,
                          ylabel: str = r"effective step $\alpha/(\sqrt{\cdot}+\varepsilon)$",
                          title: str | None = None, figsize=(8.0, 3.8)):
    r"""Effective learning rates against the step :math:`t = 1, 2, \dots` on log–log axes.

    ``curves`` maps a label to an array; the label's first word picks the book's colour
    (``"AdaGrad"``, ``"RMSprop, β = 0.99"``) unless ``colors`` maps the label to one.
    ``reference`` maps a label to a constant drawn as a dotted horizontal line (e.g. the
    level :math:`\alpha/|g|`).
    """
    fig, ax = plt.subplots(figsize=figsize)
    for i, (label, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, lw=2,
                color=_path_color(label, i, colors), label=label)
    for label, level in (reference or {}).items():
        ax.axhline(level, ls=":", lw=1.2, color=COLORS["truth"], label=label)
    ax.set_xscale("log")
    return _finish_curves(fig, ax, logy=True, xlabel="step $t$", ylabel=ylabel, title=title)


# --- 8.6 Adam and AdamW -----------------------------------------------------------


def adam_moments_figure(g, beta1: float = 0.9, beta2: float = 0.999, *, mean=None,
                        mean_square=None):
    r"""Adam's moments on a gradient sequence ``g``: :math:`m_t, \hat m_t` (left) and
    :math:`v_t, \hat v_t` (right), with the values they estimate when given."""
    g = np.asarray(g, dtype=float)
    t = np.arange(1, len(g) + 1)
    fig, (ax_m, ax_v) = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = [(ax_m, g, beta1, "m", r"\beta_1", mean, r"$g_t$", r"$\mathbb{E}[g]$"),
              (ax_v, g**2, beta2, "v", r"\beta_2", mean_square, r"$g_t^2$", r"$\mathbb{E}[g^2]$")]
    for ax, x, beta, sym, bsym, target, data_label, target_label in panels:
        ax.plot(t, x, ".", ms=4, color=COLORS["raw"], label=data_label)
        if target is not None:
            ax.axhline(target, ls="--", lw=1, color=COLORS["truth"], label=target_label)
        ax.plot(t, ewa(x, beta), lw=2, color=COLORS["ewa"], label=rf"${sym}_t$")
        ax.plot(t, ewa(x, beta, bias_correction=True), lw=2, color=COLORS["corrected"],
                label=rf"$\hat {sym}_t = {sym}_t/(1-{bsym}^t)$")
        ax.set_xlabel("step $t$")
        ax.set_title(rf"${bsym} = {beta:g}$", fontsize=_pt(10))
        ax.legend(fontsize=_pt(9), loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax_m.set_ylabel("first moment")
    ax_v.set_ylabel("second moment")
    fig.tight_layout()
    return fig


def weight_decay_figure(adamw: dict, adam_l2: dict, *, alpha: float | None = None):
    r"""A weight's value over the steps under decoupled decay (AdamW) and under L2 in the
    gradient (Adam + L2): each dict maps :math:`\lambda` to the sequence
    :math:`\theta_0, \theta_1, \dots`."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    styles = ["-", "--", ":", "-."]
    for kind, runs, color in (("AdamW", adamw, COLORS["AdamW"]),
                              ("Adam + L2", adam_l2, COLORS["Adam"])):
        for i, (lam, theta) in enumerate(runs.items()):
            theta = np.asarray(theta, dtype=float)
            ax.plot(np.arange(len(theta)), theta, styles[i % len(styles)], lw=2, color=color,
                    label=rf"{kind}, $\lambda = {lam:g}$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\theta_t$")
    note = rf", $\alpha = {alpha:g}$" if alpha is not None else ""
    ax.set_title(r"zero data gradient: only the regulariser acts" + note, fontsize=_pt(10))
    ax.legend(fontsize=_pt(8), ncol=2)
    fig.tight_layout()
    return fig


# --- worked example: Adam step by step ---------------------------------------------


def adam_trace_figure(w, alpha: float, *, compare: dict | None = None, target: float = 0.1,
                      stacked: bool = False, figsize=None):
    r"""Adam's iterates :math:`w_t` on :math:`f(w) = w^2` (left, with the band
    :math:`|w| <` ``target``) and its step sizes :math:`|w_t - w_{t-1}|` against
    :math:`\alpha` (right).  ``compare`` adds other runs' iterates to the left panel.
    With ``stacked`` the step sizes are under the iterates (a figure narrow enough for
    a phone); ``figsize`` defaults to (10, 3.6) inches side by side, (5.4, 6.0) stacked."""
    w = np.asarray(w, dtype=float)
    t = np.arange(len(w))
    if stacked:
        fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=figsize or (5.4, 6.0), sharex=True)
    else:
        fig, (ax_w, ax_s) = plt.subplots(1, 2, figsize=figsize or (10, 3.6))
    ax_w.axhspan(-target, target, color="#facc15", alpha=0.35, lw=0,
                 label=rf"$|w| < {target:g}$")
    for i, (label, other) in enumerate((compare or {}).items()):
        other = np.asarray(other, dtype=float)
        ax_w.plot(np.arange(len(other)), other, "--", lw=1.5,
                  color=color_of(label.split(" ")[0], i + 1), label=label)
    ax_w.plot(t, w, lw=2, color=COLORS["Adam"], label="Adam")
    ax_w.axhline(0, color=COLORS["truth"], lw=0.8)
    if not stacked:   # stacked, the panels share the axis labelled under the lower one
        ax_w.set_xlabel("iteration $t$")
    ax_w.set_ylabel("$w_t$")
    ax_w.set_title(rf"iterates, $\alpha = {alpha:g}$", fontsize=_pt(10))
    ax_w.legend(fontsize=_pt(8))
    steps = np.abs(np.diff(w))
    ax_s.plot(t[1:], steps, lw=2, color=COLORS["Adam"], label=r"$|w_t - w_{t-1}|$")
    ax_s.axhline(alpha, ls="--", lw=1, color=COLORS["truth"], label=r"$\alpha$")
    ax_s.set_xlabel("iteration $t$")
    ax_s.set_ylabel("step size")
    ax_s.set_ylim(0, 1.25 * max(alpha, steps.max(initial=0.0)))
    ax_s.set_title("how far each step moves $w$", fontsize=_pt(10))
    ax_s.legend(fontsize=_pt(8))
    fig.tight_layout()
    return fig


def bias_correction_compact_figure(t, moments: dict, steps: dict, *, figsize=(11.0, 3.6)):
    r"""Bias correction in two panels, against the step :math:`t` (log scale).

    Left, ``moments``: running averages of a constant gradient :math:`g = 1` with and
    without correction (label → values); the true value 1 is the dotted line.  Right,
    ``steps``: the size of each update divided by :math:`\alpha` (label → values), where
    1 is the step Adam is designed to take.  A label's first word picks the book's
    colour; labels containing "corrected" (but not "uncorrected") are drawn dashed.
    """
    t = np.asarray(t)
    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=figsize)
    for ax, curves in ((ax_m, moments), (ax_s, steps)):
        for i, (label, values) in enumerate(curves.items()):
            dashed = "corrected" in label and "uncorrected" not in label
            ax.plot(t, np.asarray(values, dtype=float), "--" if dashed else "-", lw=2,
                    color=color_of(label.split(" ")[0], i), label=label)
        ax.axhline(1.0, ls=":", lw=1.2, color=COLORS["truth"])
        ax.set_xscale("log")
        ax.set_xlabel("step $t$ (log scale)")
        ax.legend(fontsize=_pt(8))
    ax_m.set_ylabel("estimate of $g$ or $g^2$ (true value 1)")
    ax_m.set_title("the averages, for a constant gradient $g = 1$", fontsize=_pt(10))
    ax_s.set_yscale("log")
    ax_s.set_ylabel(r"step size $/\ \alpha$ (log scale)")
    ax_s.set_title("how far one update moves a weight", fontsize=_pt(10))
    fig.tight_layout()
    return fig
