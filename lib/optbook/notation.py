"""The book's one notation table.

Every page, docstring and variable name in the chapter uses these symbols.  Many
courses write momentum's velocity as ``V_dW`` and RMSprop's running average as
``S_dW``; the book calls both by the name they have inside Adam (``m`` and
``v``), so that one symbol never means two things.

The table is data, so the book renders it from here (``notation_markdown()``) and the
tests check that the optimizers' keyword names are the ones listed.
"""

from __future__ import annotations

from typing import NamedTuple


class Symbol(NamedTuple):
    symbol: str  #: as printed in the text (MyST/LaTeX)
    code: str  #: the name used for it in ``optbook`` and in the chapter's code cells
    meaning: str


NOTATION: tuple[Symbol, ...] = (
    Symbol(r"$\theta$", "params", "the parameters being trained (W, b, … in a network)"),
    Symbol(r"$J(\theta)$", "loss", "the loss (cost) to be minimised"),
    Symbol(r"$g_t = \nabla J(\theta_{t-1})$", "grads", "the gradient used at step t; "
           "for a parameter `W` it is stored under the key `'dW'`"),
    Symbol(r"$t$", "t", "the step (iteration) counter, starting at 1 for the first update"),
    Symbol(r"$N$, $B$", "N, batch_size", "number of training examples (many texts "
           "write $m$); mini-batch size, so an epoch has $\\lceil N/B \\rceil$ updates"),
    Symbol(r"$\alpha$", "lr", "learning rate (a number, or a schedule $\\alpha_t$)"),
    Symbol(r"$\beta$", "beta", "decay of an exponentially weighted average "
           "(the 8.3 average, momentum, RMSprop)"),
    Symbol(r"$\beta_1$", "beta1", "Adam's decay for the first moment"),
    Symbol(r"$\beta_2$", "beta2", "Adam's decay for the second moment"),
    Symbol(r"$\varepsilon$", "epsilon", "small constant added to the denominator"),
    Symbol(r"$\lambda$", "weight_decay", "weight-decay coefficient (AdamW)"),
    Symbol(r"$V_t$", "V", "the exponentially weighted average of a sequence $\\theta_t$ (8.3)"),
    Symbol(r"$m_t$", "m", "first moment: average of gradients "
           "(momentum's velocity, written $V_{dW}$ in many courses)"),
    Symbol(r"$v_t$", "v", "second moment: average of squared gradients "
           "(RMSprop's $S_{dW}$)"),
    Symbol(r"$G_t$", "G", "AdaGrad's running sum of squared gradients"),
    Symbol(r"$\hat m_t,\ \hat v_t$", "m_hat, v_hat", "bias-corrected moments "
           "$m_t/(1-\\beta_1^t)$ and $v_t/(1-\\beta_2^t)$"),
    # 8.11 Beyond Adam (optbook.beyond_adam)
    Symbol(r"$\mu_t$", "mu", "NAdam's momentum at step t, rising from about "
           "$\\beta_1/2$ toward $\\beta_1$"),
    Symbol(r"$\rho_t,\ r_t$", "rho_t, r_t", "RAdam: how many squared gradients $v_t$ "
           "effectively averages, and the rectification factor of its step"),
    Symbol(r"$R_t,\ C_t$", "v_row, v_col", "Adafactor's factored second moment: one "
           "average per row and one per column of a matrix"),
    Symbol(r"$O_t$", "O", "Muon's orthogonalised update, Newton–Schulz applied to the "
           "momentum"),
    Symbol(r"$x_t,\ y_t,\ z_t$", "x, y, z", "Schedule-Free: the averaged weights to "
           "evaluate, the point where the gradient is taken, the gradient-step sequence"),
)


def notation_markdown() -> str:
    """The notation table as a Markdown table, for ``glue`` or ``display(Markdown(...))``."""
    rows = ["| Symbol | In code | Meaning |", "|---|---|---|"]
    rows += [f"| {s.symbol} | `{s.code}` | {s.meaning} |" for s in NOTATION]
    return "\n".join(rows)
