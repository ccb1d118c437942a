"""One tuning rule for the book's comparisons, and the worked example's second moment.

"Optimizers side by side" (8.9) and the playground page (Appendix B) start every
optimizer on every surface from a tuned α.  Both must get it from the same function,
``optbook.book.playground.tuned_lr``, called the same way (same grid, steps, criterion and
hyperparameters), so that they agree; and no tuned α may sit at an end of its grid,
where the best value could lie beyond it.  The worked Adam example (8.8) says that at
t = 40 the bias-corrected v̂ is close to the plain mean of all squared gradients so far
(not an average over the last 1/(1 − β₂) steps).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from optbook.book import playground
from optbook.optimizers import adam_step
from optbook.book.playground import (LOSS_FLOOR, OPTIMIZER_NAMES, SURFACE_NAMES,
                                     TUNING_GRID, TUNING_STEPS, best_lr, tuned_lr)
from optbook.surfaces import SURFACES, trajectory
from optbook.optimizers import SGD

ROOT = Path(__file__).resolve().parents[1]
SIDE_BY_SIDE = ROOT / "chapters" / "09-optimizers-side-by-side.md"
PLAYGROUND = ROOT / "chapters" / "appendix-b-playground.md"
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def code_of(page: Path) -> str:
    """All code cells of a MyST page, without their options (jupytext reads them off)."""
    import jupytext

    nb = jupytext.reads(page.read_text(encoding="utf-8"), fmt="md:myst")
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


# ------------------------------------------------------------------ the tuning rule
@pytest.fixture(scope="module")
def tuned():
    return {(s, name): tuned_lr(name, s) for s in SURFACE_NAMES for name in OPTIMIZER_NAMES}


def test_no_tuned_rate_is_at_an_end_of_the_grid_on_any_surface(tuned):
    """tuned_lr refuses an edge winner; check it independently as well."""
    ends = (min(TUNING_GRID), max(TUNING_GRID))
    at_an_end = {key: lr for key, lr in tuned.items() if lr in ends}
    assert not at_an_end, f"tuned α at an end of {ends}: {at_an_end}"
    assert set(tuned.values()) <= set(TUNING_GRID)


def test_tuned_rate_is_the_lowest_final_loss_with_the_floor_and_ties(tuned):
    """Recompute two entries by hand: the rule is what the pages say it is."""
    for surface, name in (("rosenbrock", "Adam"), ("quadratic", "SGD")):
        finals = {}
        for lr in TUNING_GRID:
            opt = playground._optimizer(name, {"lr": lr})
            path = trajectory(opt, SURFACES[surface], steps=TUNING_STEPS)
            if path.diverged_at is None:
                finals[lr] = max(path.losses[-1] - SURFACES[surface].f_min, LOSS_FLOOR)
        best = min(finals, key=lambda lr: (finals[lr], lr))
        assert tuned[surface, name] == best
    # on the round bowl SGD at α = 0.1 and 0.3 both end below the floor: a tie, the
    # smaller α wins (α = 0.3 ends lower, but only by rounding-level numbers)
    assert tuned["quadratic", "SGD"] == 0.1


@pytest.mark.parametrize("grid, surface, end", [
    ((0.01, 0.03, 0.1), "quadratic", "largest"),     # SGD: the larger, the better here
    ((0.001, 0.01, 0.03), "rosenbrock", "smallest"),  # SGD diverges at 0.01 and 0.03
])
def test_tuned_lr_refuses_a_winner_at_an_end_of_its_grid(grid, surface, end):
    with pytest.raises(ValueError, match=f"SGD on {surface}.*the {end} of the grid"):
        tuned_lr("SGD", surface, grid=grid)


def test_best_lr_ties_go_to_the_smaller_rate_and_failures_are_skipped():
    assert best_lr({0.001: 3.0, 0.003: 1.0, 0.01: 1.0, 0.03: None}) == 0.003
    assert best_lr({0.001: None, 0.003: 2.0, 0.01: 1.0, 0.03: 4.0}) == 0.01
    with pytest.raises(ValueError, match="fails at every lr"):
        best_lr({0.1: None, 0.3: None}, what="X")
    with pytest.raises(ValueError, match="largest of the grid"):
        best_lr({0.1: 2.0, 0.3: 1.0})
    with pytest.raises(ValueError, match="non-empty"):
        best_lr({})


def test_the_grid_is_a_factor_of_about_three_and_wide():
    grid = np.array(TUNING_GRID)
    assert np.all(np.diff(grid) > 0)
    assert np.allclose(grid[2:] / grid[:-2], 10)
    assert grid[0] <= 1e-5 and grid[-1] >= 30


# ------------------------------------------------------ both pages use that rule
@pytest.mark.parametrize("page", [SIDE_BY_SIDE, PLAYGROUND], ids=lambda p: p.stem)
def test_the_page_tunes_with_tuned_lr_called_plainly(page):
    """Every call of tuned_lr on the page passes just the optimizer and the surface:
    the grid, the number of steps, the criterion and every other hyperparameter are
    the function's own, the same on both pages."""
    tree = ast.parse(code_of(page))
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "optbook.book.playground" for alias in node.names}
    assert "tuned_lr" in imports
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "tuned_lr"]
    assert calls, "the page does not call tuned_lr"
    for call in calls:
        assert len(call.args) == 2 and not call.keywords, ast.unparse(call)
    # the runs the page shows are as long as the tuning runs
    assignments = {node.targets[0].id: ast.unparse(node.value) for node in ast.walk(tree)
                   if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert assignments.get("STEPS") == "TUNING_STEPS"
    # no page keeps a grid of its own for the surfaces
    assert "LR_GRID" not in code_of(page)


def test_both_pages_say_what_rmsprops_beta_is():
    for page in (SIDE_BY_SIDE, PLAYGROUND):
        prose = CODE_CELL.sub("", page.read_text(encoding="utf-8"))
        assert re.search(r"RMSprop[^.]*\\beta = 0\.999|\\beta = 0\.999[^.]*RMSprop", prose), \
            page.name


# --------------------------------------------- the worked example's second moment
def worked_example(steps: int):
    """Adam on f(w) = w² from w = 5 (α = 0.1, β₁ = 0.9, β₂ = 0.999): the last m̂ and
    v̂, and the gradients g_1, ..., g_steps."""
    w, m, v = np.array(5.0), np.array(0.0), np.array(0.0)
    grads = []
    for t in range(1, steps + 1):
        g = 2 * w
        grads.append(float(g))
        m_hat, v_hat = adam_step(w, g, m, v, t, 0.1, 0.9, 0.999, 1e-8)
    return float(m_hat), float(v_hat), np.array(grads)


def test_v_hat_is_a_weighted_mean_of_all_squared_gradients():
    beta2, t = 0.999, 40
    _, v_hat, g = worked_example(t)
    weights = (1 - beta2) * beta2 ** (t - np.arange(1, t + 1)) / (1 - beta2**t)
    assert weights.sum() == pytest.approx(1.0)
    assert v_hat == pytest.approx(np.sum(weights * g**2), rel=1e-9)
    assert weights[0] / weights[-1] == pytest.approx(beta2 ** (t - 1)) and \
        weights[0] / weights[-1] > 0.96


def test_at_t_40_v_hat_is_close_to_the_plain_mean_not_to_recent_gradients():
    m_hat, v_hat, g = worked_example(40)
    assert v_hat == pytest.approx(np.mean(g**2), rel=0.01)
    # it still remembers the start: far above the recent squared gradients
    assert v_hat > 2 * np.mean(g[-10:] ** 2) and np.sqrt(v_hat) > 2 * abs(g[-1])
    # m̂ forgets faster, so the step m̂/√v̂ is well below one α
    assert abs(g[-1]) < m_hat < np.sqrt(v_hat) and m_hat / np.sqrt(v_hat) < 0.7


def test_only_long_after_1_over_1_minus_beta2_steps_does_v_hat_forget():
    """The '1/(1 − β₂) steps' window describes t ≫ 1000: a gradient that drops from 10
    to 1 at step 40 still dominates v̂ at step 400, and is forgotten by step 10 000."""
    beta2 = 0.999
    v = 0.0
    g = np.where(np.arange(1, 10_001) <= 40, 10.0, 1.0)
    v_hat = {}
    for t, gt in enumerate(g, start=1):
        v = beta2 * v + (1 - beta2) * gt**2
        v_hat[t] = v / (1 - beta2**t)
    assert v_hat[400] > 5 * 1.0          # still remembers the first 40 gradients
    assert v_hat[10_000] < 1.01          # forgotten
