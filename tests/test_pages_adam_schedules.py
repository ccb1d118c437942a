"""The corrected statements of 8.6 (Adam and AdamW) and 8.7 (learning-rate schedules),
held by tests that do not need a book build.

* AdamW has two forms.  PyTorch's (``torch.optim.AdamW``, ``optbook.optimizers.AdamW``)
  decays by lr·λ; Loshchilov & Hutter's Algorithm 2 decays by η_t·λ with a schedule
  multiplier η_t, and α scales only Adam's step.  They agree when λ_torch = λ_paper / α
  and lr_t = α·η_t.
* AdamW with exact gradients does not hold the weights away from the least-squares point:
  run long enough, they reach it (8.6, experiment 2); Adam + L2 reaches the ridge point.
* The newest 1/(1−β) values hold 63–65 % of an average's weight only for β ≥ 0.9.
* Correcting only v makes Adam's first step 0.1 α: ten times too short.
* One-cycle: the bounds α_max/25 and α_max/(25·10⁴) and the two half-cosines are
  PyTorch's defaults; ``three_phase=True, anneal_strategy='linear'`` gives the paper's
  linear cycle.  Stepped once per epoch with total_steps counted in batches, OneCycleLR
  never reaches its peak.
* Warm-up experiment: the sharpness bound 2/λ_max at initialisation is not a divergence
  threshold (peaks above it train without warm-up).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from torch.optim import lr_scheduler as tls

from optbook import ewa as ewa_lib
from optbook.optimizers import AdamW
from optbook.schedules import CosineAnnealingSchedule, OneCycleSchedule, lr_curve
from optbook.training.torch_loops import (nonlinear_regression, relu_mlp,
                                          top_hessian_eigenvalue, train_with_schedule)


# ------------------------------------------------------------------ AdamW, two forms
def paper_adamw_step(theta, g, state, alpha, lam, eta=1.0, beta1=0.9, beta2=0.999,
                     eps=1e-8):
    """Loshchilov & Hutter, Algorithm 2: θ_t = θ_{t−1} − η_t (α m̂/(√v̂ + ε) + λ θ_{t−1})."""
    state["t"] += 1
    t = state["t"]
    state["m"] = beta1 * state["m"] + (1 - beta1) * g
    state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
    m_hat = state["m"] / (1 - beta1**t)
    v_hat = state["v"] / (1 - beta2**t)
    return theta - eta * (alpha * m_hat / (np.sqrt(v_hat) + eps) + lam * theta)


def quadratic_problem(seed=0, n=6):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    H = A @ A.T / n + 0.1 * np.eye(n)           # a positive definite curvature
    b = rng.standard_normal(n)
    return H, b, rng.standard_normal(n)         # J = ½ θᵀHθ − bᵀθ, start θ₀


def torch_adamw_run(H, b, theta0, lrs, weight_decay):
    """torch.optim.AdamW on J = ½θᵀHθ − bᵀθ, with lr set to lrs[k] before step k."""
    w = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    Ht, bt = torch.tensor(H), torch.tensor(b)
    opt = torch.optim.AdamW([w], lr=float(lrs[0]), weight_decay=weight_decay)
    for lr in lrs:
        opt.param_groups[0]["lr"] = float(lr)
        opt.zero_grad()
        (0.5 * w @ Ht @ w - bt @ w).backward()
        opt.step()
    return w.detach().numpy()


@pytest.mark.parametrize("lr, lam", [(0.01, 0.1), (0.003, 0.5), (0.1, 0.01)])
def test_optbook_adamw_is_pytorchs_form(lr, lam):
    H, b, theta0 = quadratic_problem()
    params, opt = {"w": theta0.copy()}, AdamW(lr=lr, weight_decay=lam)
    for _ in range(150):
        opt.update(params, {"dw": H @ params["w"] - b})
    theirs = torch_adamw_run(H, b, theta0, [lr] * 150, weight_decay=lam)
    assert_allclose(params["w"], theirs, rtol=0, atol=1e-12)
    # and PyTorch's form written out: θ ← θ − lr·λ·θ − lr·m̂/(√v̂ + ε)
    theta, state = theta0.copy(), {"t": 0, "m": 0.0, "v": 0.0}
    for _ in range(150):
        theta = paper_adamw_step(theta, H @ theta - b, state, alpha=lr, lam=lam * lr)
    assert_allclose(theta, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha, lam_paper", [(0.01, 0.001), (0.001, 1e-4), (0.05, 0.02)])
def test_paper_form_is_torch_adamw_with_lambda_over_alpha(alpha, lam_paper):
    """η_t = 1: the paper's λ is PyTorch's weight_decay times α."""
    H, b, theta0 = quadratic_problem(seed=1)
    theta, state = theta0.copy(), {"t": 0, "m": 0.0, "v": 0.0}
    for _ in range(200):
        theta = paper_adamw_step(theta, H @ theta - b, state, alpha, lam_paper)
    theirs = torch_adamw_run(H, b, theta0, [alpha] * 200, weight_decay=lam_paper / alpha)
    assert_allclose(theta, theirs, rtol=0, atol=1e-12)
    # the same λ in both forms is a different regulariser (unless α = 1)
    same_lambda = torch_adamw_run(H, b, theta0, [alpha] * 200, weight_decay=lam_paper)
    assert np.abs(same_lambda - theta).max() > 1e-6


def test_paper_form_with_a_schedule_is_torch_with_lr_alpha_eta():
    """With a schedule multiplier η_t, PyTorch's lr_t = α·η_t and weight_decay = λ/α."""
    H, b, theta0 = quadratic_problem(seed=2)
    alpha, lam_paper, T = 0.02, 0.004, 120
    etas = lr_curve(CosineAnnealingSchedule(1.0, 0.0, T), T)  # η_t: 1 → 0
    theta, state = theta0.copy(), {"t": 0, "m": 0.0, "v": 0.0}
    for eta in etas:
        theta = paper_adamw_step(theta, H @ theta - b, state, alpha, lam_paper, eta=eta)
    theirs = torch_adamw_run(H, b, theta0, alpha * etas, weight_decay=lam_paper / alpha)
    assert_allclose(theta, theirs, rtol=0, atol=1e-12)


def test_in_pytorchs_form_the_decay_scales_with_lr():
    """No gradient: torch AdamW keeps (1 − lr·λ)^t of a weight; the paper's form (1 − λ)^t
    whatever α is."""
    for lr in (0.001, 0.01):
        w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.AdamW([w], lr=lr, weight_decay=0.01)
        for _ in range(1000):
            opt.zero_grad()
            (0.0 * w).sum().backward()
            opt.step()
        assert w.item() == pytest.approx(2.0 * (1 - lr * 0.01) ** 1000, rel=1e-12)
        theta, state = np.array([2.0]), {"t": 0, "m": 0.0, "v": 0.0}
        for _ in range(1000):
            theta = paper_adamw_step(theta, np.zeros(1), state, alpha=lr, lam=1e-4)
        assert theta[0] == pytest.approx(2.0 * (1 - 1e-4) ** 1000, rel=1e-12)
    assert inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default == 0.01


# -------------------------------------------- 8.6 experiment 2: where the runs really end
def experiment_2(decoupled, steps, lam=0.5, lr=0.01):
    """Full-batch Adam + L2 (decoupled=False) or AdamW on the page's three features."""
    rng = np.random.default_rng(0)
    N, scale = 1000, np.array([10.0, 1.0, 0.1])
    X = rng.standard_normal((N, 3)) * scale
    y = X @ np.ones(3) + 0.1 * rng.standard_normal(N)
    w, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    path = np.empty((steps, 3))
    for t in range(1, steps + 1):
        g = 2 * X.T @ (X @ w - y) / N
        if decoupled:
            w = w - lr * lam * w
        else:
            g = g + lam * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        path[t - 1] = w
    least_squares = np.linalg.lstsq(X, y, rcond=None)[0]
    ridge = np.linalg.solve(2 * X.T @ X / N + lam * np.eye(3), 2 * X.T @ y / N)
    return path, least_squares, ridge


def test_full_batch_adamw_ends_at_least_squares_and_adam_l2_at_ridge():
    w, least_squares, ridge = experiment_2(True, 30_000)
    early, late = np.abs(w[2_999] - least_squares), np.abs(w[-1] - least_squares)
    assert early.max() > 0.03                      # at 3,000 steps: visibly shrunk ...
    assert np.all(late < early) and late.max() < 1e-3   # ... a transient
    assert np.all(0.5 * np.abs(least_squares) < 1)      # λ|θ*| < 1, as the page says
    l2, _, _ = experiment_2(False, 3_000)
    assert np.abs(l2[-1] - ridge).max() < 1e-3
    assert ridge[2] < 0.1 < 0.9 < ridge[0]         # L2 crushes the small feature only


# ---------------------------------------------------------- shares and bias correction
def test_newest_window_holds_63_to_65_percent_only_for_beta_at_least_0_9():
    for beta in (0.9, 0.95, 0.99, 0.999, 0.9999):
        n = round(1 / (1 - beta))
        share = ewa_lib.weights(beta, 200_000)[-n:].sum()
        assert share == pytest.approx(1 - beta**n, abs=1e-9)
        assert 0.63 <= share <= 0.66
    assert 1 - 0.999**1000 == pytest.approx(0.632, abs=1e-3)
    assert 1 - 0.5**2 == 0.75                      # β = 0.5: the newest 2 values
    assert 1 - 0.8**5 > 0.67                       # β = 0.8: already above 65 %


def test_correcting_only_v_makes_the_first_step_ten_times_too_short():
    g, beta1, beta2 = 3.0, 0.9, 0.999
    m1, v1 = (1 - beta1) * g, (1 - beta2) * g**2
    step = m1 / np.sqrt(v1 / (1 - beta2))          # m uncorrected, v corrected
    assert step == pytest.approx(0.1)              # 0.1 α: ten times too short


# ------------------------------------------------------------------------ one-cycle
def test_one_cycle_defaults_are_pytorchs():
    defaults = inspect.signature(tls.OneCycleLR).parameters
    assert defaults["div_factor"].default == 25.0
    assert defaults["final_div_factor"].default == 1e4
    assert defaults["anneal_strategy"].default == "cos"
    assert defaults["three_phase"].default is False
    s = OneCycleSchedule(0.01, total_steps=100)
    assert s(0) == pytest.approx(0.01 / 25, rel=1e-12)
    assert s(99) == pytest.approx(0.01 / (25 * 1e4), rel=1e-12)
    curve = lr_curve(s, 100)
    # half-cosines: flat at the peak, not a corner as a linear cycle would have
    peak = int(np.argmax(curve))
    assert curve[peak - 1] > 0.99 * curve[peak] and curve[peak + 1] > 0.99 * curve[peak]


def test_three_phase_linear_is_the_papers_shape():
    """Linearly up, linearly down over the same length, then annealing far below."""
    s = OneCycleSchedule(0.01, total_steps=100, pct_start=0.45, anneal_strategy="linear",
                         three_phase=True, div_factor=10, final_div_factor=100)
    curve = lr_curve(s, 100)
    assert curve[0] == pytest.approx(0.001) and curve[44] == pytest.approx(0.01)
    assert curve[88] == pytest.approx(0.001) and curve[99] == pytest.approx(1e-5)
    assert_allclose(np.diff(curve[:45], 2), 0, atol=1e-15)      # straight up
    assert_allclose(np.diff(curve[44:89], 2), 0, atol=1e-15)    # straight down
    assert_allclose(curve[:45], curve[88:43:-1], rtol=1e-12)    # mirror images


def test_one_cycle_stepped_per_epoch_never_reaches_its_peak():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.01, momentum=0.9)
    sched = tls.OneCycleLR(opt, max_lr=0.01, total_steps=1000, pct_start=0.3)
    rates = []
    for _ in range(100):                           # once per epoch, 100 epochs
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert max(rates) < 0.3 * 0.01 and rates[-1] == max(rates)   # still rising


# ---------------------------------------------------------------- warm-up experiment
@pytest.fixture()
def one_thread():
    """The page runs its small networks on one thread; so does this test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_local_sharpness_bound_is_not_a_divergence_threshold(one_thread):
    """8.7: without warm-up, peak 0.02 trains for every seed although it is above every
    seed's 2/λ_max at initialisation; peak 0.1 blows up for every seed."""
    T, B = 300, 1024
    for seed in range(3):
        X, y = nonlinear_regression(seed=seed)
        model = relu_mlp(seed=seed)
        bound = 2 / top_hessian_eigenvalue(model, X[:1024], y[:1024], iters=30)
        assert bound < 0.02
        run = train_with_schedule(model, X, y, CosineAnnealingSchedule(0.02, 0.0, T), T,
                                  B, torch.Generator().manual_seed(seed))
        assert run.diverged_at is None
        hot = train_with_schedule(relu_mlp(seed=seed), X, y,
                                  CosineAnnealingSchedule(0.1, 0.0, T), T, B,
                                  torch.Generator().manual_seed(seed))
        assert hot.diverged_at is not None and hot.diverged_at < 10
