"""Figures that compare training runs: the optimizers' family tree (8.9), loss grids and
run groups (common mistakes), schedules and warm-up runs (8.7), loss panels (PyTorch in
practice)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from optbook.book.figures import COLORS, _finish_curves, _pt

# --- optimizers side by side -------------------------------------------------------


#: The nodes of :func:`family_tree_figure`: name -> (x, y, year, who, what it added).
FAMILY_TREE = {
    "SGD": (0.0, 0.0, "1951", "Robbins & Monro", r"step against $g_t$"),
    "Momentum": (3.0, 1.45, "1964", "Polyak", "+ velocity $m_t$,\nan average of $g_t$"),
    "Nesterov": (6.0, 1.45, "1983", "Nesterov", "+ gradient at the\nlook-ahead point"),
    "AdaGrad": (3.0, -1.45, "2011", "Duchi, Hazan & Singer",
                "+ a step per weight,\n$\\alpha/\\sqrt{G_t}$"),
    "RMSprop": (6.0, -1.45, "2012", "Hinton (lecture)", "sum $G_t$ $\\to$ decaying\naverage $v_t$"),
    "Adam": (9.0, 0.0, "2014", "Kingma & Ba", "$m_t$ and $v_t$\n+ bias correction"),
    "AdamW": (12.0, 0.0, "2017/2019", "Loshchilov & Hutter", "+ decoupled\nweight decay"),
}

#: The arrows of :func:`family_tree_figure`: (parent, child, bend); a non-zero bend
#: curves the arrow (matplotlib's ``arc3`` radius) around a box in its way.
FAMILY_EDGES = (("SGD", "Momentum", 0.0), ("Momentum", "Nesterov", 0.0),
                ("SGD", "AdaGrad", 0.0), ("AdaGrad", "RMSprop", 0.0),
                ("Momentum", "Adam", 0.25), ("RMSprop", "Adam", 0.0), ("Adam", "AdamW", 0.0))


def family_tree_figure(nodes: dict | None = None, edges=FAMILY_EDGES, *,
                       box=(2.7, 1.25), figsize=(11.0, 4.6)):
    r"""The optimizer family tree, drawn with matplotlib only (no graphviz): one rounded
    box per method with its year, authors and the mechanism it added, and an arrow from
    each method to the ones built on it.  ``nodes`` defaults to :data:`FAMILY_TREE`.

    Arrows start and end on the boxes' edges, so they never cross a box's text.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes = FAMILY_TREE if nodes is None else nodes
    w, h = box
    fig, ax = plt.subplots(figsize=figsize)
    for name, (x, y, year, who, added) in nodes.items():
        color = COLORS.get(name, "#b45309")
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc="white", ec=color, lw=2.2, zorder=2))
        ax.text(x, y + 0.38, f"{name} ({year})", ha="center", va="center",
                fontsize=_pt(11.5), fontweight="bold", color=color, zorder=3)
        ax.text(x, y + 0.12, who, ha="center", va="center", fontsize=_pt(9.5),
                color="#475569", zorder=3)
        ax.text(x, y - 0.27, added, ha="center", va="center", fontsize=_pt(9.5),
                linespacing=1.25, zorder=3)

    def edge_point(centre, towards):
        """Where the ray from a box's centre towards another point leaves the box."""
        (cx, cy), (tx, ty) = centre, towards
        dx, dy = tx - cx, ty - cy
        scale = min((w / 2) / abs(dx) if dx else np.inf, (h / 2) / abs(dy) if dy else np.inf)
        return cx + dx * scale, cy + dy * scale

    for parent, child, *bend in edges:
        p, c = nodes[parent][:2], nodes[child][:2]
        ax.add_patch(FancyArrowPatch(edge_point(p, c), edge_point(c, p), arrowstyle="-|>",
                                     connectionstyle=f"arc3,rad={bend[0] if bend else 0.0}",
                                     mutation_scale=16, lw=1.5, color="#334155", zorder=1,
                                     shrinkA=2, shrinkB=2))
    xs = [v[0] for v in nodes.values()]
    ys = [v[1] for v in nodes.values()]
    ax.set_xlim(min(xs) - w / 2 - 0.1, max(xs) + w / 2 + 0.1)
    ax.set_ylim(min(ys) - h / 2 - 0.1, max(ys) + h / 2 + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


# --- common mistakes ---------------------------------------------------------------


def loss_grid_figure(grid, row_values, col_values, *, row_label: str, col_label: str,
                     ax=None, title: str | None = None, vmin=None, vmax=None,
                     figsize=(6.0, 3.6), value_label: str = r"$J - J^*$"):
    r"""A heat map of ``log10`` of a grid of final excess losses :math:`J - J^*`, each
    cell annotated.

    ``grid[i, j]`` belongs to ``row_values[i]`` and ``col_values[j]``; a non-finite
    value (a diverged run) is drawn as a black cell marked "div".  ``vmin``/``vmax``
    (in ``log10`` units) fix the colour scale so that two panels can share it.
    ``value_label`` names what the grid holds, the loss above its minimum by default
    (the colour bar reads "log10 of final" and it); pass another name for a grid of
    something else, e.g. ``"loss"`` for plain final losses.
    """
    grid = np.asarray(grid, dtype=float)
    if grid.shape != (len(row_values), len(col_values)):
        raise ValueError(f"grid has shape {grid.shape} but there are {len(row_values)} rows "
                         f"and {len(col_values)} columns")
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    finite = np.isfinite(grid) & (grid > 0)
    logs = np.where(finite, np.log10(np.where(finite, grid, 1.0)), np.nan)
    cmap = plt.get_cmap("viridis").with_extremes(bad="black")
    image = ax.imshow(logs, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = f"{grid[i, j]:.2g}" if finite[i, j] else "div"
            ax.text(j, i, text, ha="center", va="center", fontsize=_pt(7.5),
                    color="white" if not finite[i, j] or logs[i, j] < np.nanmean(logs) else "black")
    ax.set_xticks(range(len(col_values)), [f"{v:g}" for v in col_values], fontsize=_pt(8))
    ax.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values], fontsize=_pt(8))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=r"$\log_{10}$ of final " + value_label)
    if title:
        ax.set_title(title, fontsize=_pt(10))
    fig.tight_layout()
    return fig


def run_groups_figure(groups: dict, *, colors: dict | None = None, logy: bool = True,
                      xlabel: str = "step", ylabel: str = "loss", title: str | None = None,
                      figsize=(8.0, 3.8)):
    r"""Repeated runs of a few settings: one colour per setting, one thin line per run.

    ``groups`` maps a setting's label (e.g. ``"no warm-up"``) to a list of curves (one
    per seed).  The legend names each setting once, with its number of runs.
    ``colors`` maps a label to a colour; by default the settings take matplotlib's
    colour cycle in order.
    """
    fig, ax = plt.subplots(figsize=figsize)
    for i, (label, curves) in enumerate(groups.items()):
        color = (colors or {}).get(label, f"C{i}")
        for k, curve in enumerate(curves):
            curve = np.asarray(curve, dtype=float)
            ax.plot(np.arange(len(curve)), curve, lw=1.4, alpha=0.85, color=color,
                    label=f"{label} ({len(curves)} runs)" if k == 0 else None)
    return _finish_curves(fig, ax, logy=logy, xlabel=xlabel, ylabel=ylabel, title=title)


# --- 8.7 schedules -----------------------------------------------------------------


def schedules_figure(curves: dict, *, xlabel: str = "epoch $t$", title: str | None = None,
                     figsize=(8.5, 7.0)):
    r"""Learning-rate curves :math:`\alpha_t`, one per label: linear scale (top), log scale
    (bottom), with one legend for both underneath.

    ``curves`` maps a label to the rates :math:`\alpha_0, \alpha_1, \dots` (e.g. from
    :func:`optbook.schedules.lr_curve`).  The log panel shows what the linear one hides:
    how many orders of magnitude each schedule falls by the end.
    """
    fig, axes = plt.subplots(2, 1, figsize=figsize, sharex=True)
    for ax, logy in zip(axes, (False, True)):
        for i, (label, lrs) in enumerate(curves.items()):
            lrs = np.asarray(lrs, dtype=float)
            ax.plot(np.arange(len(lrs)), lrs, lw=2, color=f"C{i}", label=label)
        ax.set_ylabel(r"learning rate $\alpha_t$" + (" (log scale)" if logy else ""))
        if logy:
            ax.set_yscale("log")
    axes[1].set_xlabel(xlabel)
    if title:
        axes[0].set_title(title, fontsize=_pt(11))
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = min(3, len(labels)) or 1
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=_pt(9))
    rows = -(-len(labels) // ncol)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.01, 1, 1))
    return fig


def schedule_frame_figure(lrs, *, spans=(), marks=(), title: str | None = None,
                          ymax: float | None = None, xlabel: str = "epoch $t$",
                          color: str = "C0", figsize=(8.0, 3.4)):
    r"""One schedule :math:`\alpha_t` (a slider frame): shaded ``spans`` ``[(start, end,
    label)]`` (e.g. the warm-up) and dotted vertical lines at ``marks`` (e.g. restarts).
    The legend is one row at the top right: leave room for it above the curve with
    ``ymax``."""
    lrs = np.asarray(lrs, dtype=float)
    fig, ax = plt.subplots(figsize=figsize)
    for start, end, label in spans:
        ax.axvspan(start, end, color="#fde68a", alpha=0.6, lw=0, label=label)
    for j, x in enumerate(marks):
        ax.axvline(x, color=COLORS["truth"], lw=0.8, ls=":", label="restart" if j == 0 else None)
    ax.plot(np.arange(len(lrs)), lrs, lw=2, color=color, label=r"$\alpha_t$")
    ax.set_xlim(0, len(lrs) - 1)
    ax.set_ylim(0, ymax if ymax is not None else 1.08 * lrs.max())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"learning rate $\alpha_t$")
    if title:
        ax.set_title(title, fontsize=_pt(10))
    entries = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=_pt(9), loc="upper right", ncol=max(entries, 1))
    fig.tight_layout()
    return fig


def warmup_runs_figure(runs: dict, *, schedules: dict | None = None,
                       blowup: float | None = None, title: str | None = None,
                       figsize=(8.5, 7.0)):
    r"""The warm-up experiment: each schedule's :math:`\alpha_t` (top) and the training
    loss of every seed (bottom, log scale).

    ``runs`` maps a label to a list of :class:`optbook.training.torch_loops.TrainRun` (one per
    seed).  ``schedules`` (same labels) gives each schedule's whole curve
    :math:`\alpha_t`; without it, the rates the longest run used are drawn.  A run that
    blew up ends in a cross; the loss axis is cut at ``blowup`` (drawn as a dotted line),
    so a cross sits on that line when the loss went beyond it.
    """
    fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=figsize, sharex=True,
                                         gridspec_kw={"height_ratios": [1.0, 1.6]})
    floor = np.inf
    for i, (label, seed_runs) in enumerate(runs.items()):
        color = f"C{i}"
        if schedules is not None:
            lrs = np.asarray(schedules[label], dtype=float)
        else:
            lrs = max(seed_runs, key=lambda r: len(r.lrs)).lrs
        ax_lr.plot(np.arange(len(lrs)), lrs, lw=2, color=color, label=label)
        for j, run in enumerate(seed_runs):
            losses = np.asarray(run.losses, dtype=float)
            if blowup is not None:
                losses = np.where(np.isfinite(losses), np.minimum(losses, blowup), blowup)
            floor = min(floor, np.nanmin(losses))
            steps = np.arange(len(losses))
            ax_loss.plot(steps, losses, lw=1.2, color=color, alpha=0.85,
                         label=label if j == 0 else None)
            if run.diverged_at is not None:
                ax_loss.plot(steps[-1], losses[-1], "x", ms=10, mew=2.5, color=color,
                             clip_on=False, zorder=5)
    if blowup is not None:
        ax_loss.axhline(blowup, color=COLORS["truth"], lw=0.8, ls=":")
        ax_loss.text(0.99, blowup, "blow-up threshold ", transform=ax_loss.get_yaxis_transform(),
                     ha="right", va="top", fontsize=_pt(8))
        ax_loss.set_ylim(0.5 * floor, 3 * blowup)
    ax_lr.set_ylabel(r"learning rate $\alpha_t$")
    ax_lr.set_title(title or "the three schedules (top) and the training loss of each seed "
                    "(bottom; × = blew up)", fontsize=_pt(10))
    ax_lr.legend(fontsize=_pt(9))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("update $t$")
    ax_loss.set_ylabel("mini-batch loss (MSE, log scale)")
    ax_loss.legend(fontsize=_pt(9), loc="center right")
    fig.tight_layout()
    return fig


# --- PyTorch in practice -----------------------------------------------------------


def loss_panels_figure(panels: dict, *, clip: float | None = None, xlabel: str = "epoch",
                       ylabel: str = "training loss", colors=("#2563eb", "#dc2626"),
                       figsize=None):
    r"""One log-scale panel of loss curves per entry of ``panels`` (``{title: {label:
    losses}}``), the same colour for the same label position in every panel.

    With ``clip``, a curve that exceeds it (or stops being finite) is drawn up to the
    clip line and ends in a cross there, so one blow-up does not flatten the others.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.0 * n, 3.8), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for i, (label, losses) in enumerate(curves.items()):
            losses = np.asarray(losses, dtype=float)
            color = colors[i % len(colors)]
            bad = ~np.isfinite(losses) | ((losses > clip) if clip is not None else False)
            if clip is not None and bad.any():
                k = int(np.argmax(bad))
                shown = np.append(losses[:k], clip)
                ax.plot(np.arange(k + 1), shown, lw=2, color=color, label=label)
                ax.plot(k, clip, "x", ms=10, mew=2.5, color=color, clip_on=False, zorder=5)
            else:
                ax.plot(np.arange(len(losses)), losses, lw=2, color=color, label=label)
        if clip is not None:
            ax.axhline(clip, color=COLORS["truth"], lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=_pt(10))
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=_pt(9))
    fig.tight_layout()
    return fig
