"""What the ranking case study (8.14) and its lab (8.15) teach, checked outside the pages.

* Clipping rescales the gradient to norm c: an SGD step then has length αc, while an
  Adam step hardly changes when the gradient is rescaled (its first step not at all, up
  to ε), and rescaling every gradient leaves every Adam step unchanged.
* Two processes of data-parallel training agree with one process to float32 rounding
  per step, and Adam turns a rounding-level difference in a tiny gradient coordinate
  into a difference of ordinary step size (so the weights drift further than the loss).
* The two pages link to each other through labels that exist, and speak in the book's
  own voice.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from optbook.optimizers import adam_step
from optbook.training.ranking import DeepCrossNetwork, click_loss

ROOT = Path(__file__).resolve().parents[1]
NARRATIVE = ROOT / "chapters" / "14-case-study-search-ranking.md"
LAB = ROOT / "chapters" / "15-case-study-search-ranking-lab.md"
LR, EPS = 0.0057, 1e-8


def adam_first_step(g, epsilon=EPS):
    theta, m, v = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)
    adam_step(theta, g, m, v, t=1, lr=LR, beta1=0.9, beta2=0.999, epsilon=epsilon)
    return theta


def torch_steps(make_optimizer, grads):
    """The parameter after each step of a torch optimizer fed the given gradients."""
    p = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt = make_optimizer([p])
    out = []
    for g in grads:
        p.grad = torch.as_tensor(g, dtype=torch.float64).clone()
        opt.step()
        out.append(p.detach().clone().numpy())
    return np.array(out)


# ------------------------------------------------------- clipping and the step's length
@pytest.mark.parametrize("scale", [1e-3, 1 / 375, 0.5, 10.0, 1e4])
def test_adam_first_step_ignores_the_gradient_scale_sgd_does_not(scale):
    g = np.random.default_rng(0).standard_normal(1000)
    g *= 375 / np.linalg.norm(g)
    base, scaled = adam_first_step(g), adam_first_step(scale * g)
    # every coordinate moves by α·g/(|g| + ε) = α·sign(g)·(1 − ε/(|g| + ε)): the scale
    # only enters through ε, so a coordinate changes by at most α·ε/min(|g|, s·|g|)
    bound = LR * EPS / (min(1.0, scale) * np.abs(g))
    assert (np.abs(scaled - base) <= 1.01 * bound).all()
    length = np.linalg.norm(base)
    assert np.linalg.norm(scaled) == pytest.approx(length, rel=1e-4)
    # with ε = 0 the step is exactly α·sign(g), whatever the scale
    assert np.allclose(adam_first_step(scale * g, 0.0), -LR * np.sign(g), rtol=1e-15)
    # SGD's step scales with the gradient
    assert np.allclose(-LR * scale * g, scale * (-LR * g))
    assert np.linalg.norm(LR * scale * g) == pytest.approx(scale * np.linalg.norm(LR * g))


def test_clipped_gradient_has_norm_c_sgd_step_alpha_c_adam_step_unchanged():
    torch.manual_seed(0)
    c = 1.0
    raw = torch.randn(3, 50, dtype=torch.float64) * 100     # three "parameters"
    params = [torch.nn.Parameter(torch.zeros(50, dtype=torch.float64)) for _ in range(3)]
    for p, g in zip(params, raw):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=c)
    clipped = torch.stack([p.grad for p in params])
    assert float(norm) == pytest.approx(float(raw.norm()))
    assert float(clipped.norm()) == pytest.approx(c, rel=1e-6)      # the gradient: c
    assert torch.allclose(clipped / clipped.norm(), raw / raw.norm())   # same direction

    flat_raw, flat_clipped = raw.flatten().numpy(), clipped.flatten().numpy()
    sgd = [torch_steps(lambda ps: torch.optim.SGD(ps, lr=LR), g[None, :])[0]
           for g in (flat_raw, flat_clipped)]
    assert np.linalg.norm(sgd[1]) == pytest.approx(LR * c, rel=1e-6)     # step: αc
    assert np.linalg.norm(sgd[0]) == pytest.approx(LR * float(norm), rel=1e-6)
    adam = [torch_steps(lambda ps: torch.optim.Adam(ps, lr=LR, eps=EPS), g[None, :])[0]
            for g in (flat_raw, flat_clipped)]
    bound = LR * EPS / np.abs(flat_clipped)               # ε's share, coordinate-wise
    assert (np.abs(adam[1] - adam[0]) <= 1.01 * bound).all()            # unchanged
    assert np.linalg.norm(adam[1]) == pytest.approx(np.linalg.norm(adam[0]), rel=1e-5)
    assert np.allclose(adam[0], adam_first_step(flat_raw), rtol=1e-12, atol=1e-18)


def test_rescaling_every_gradient_leaves_every_adam_step_unchanged():
    grads = np.random.default_rng(1).standard_normal((30, 20))
    exact = lambda ps: torch.optim.Adam(ps, lr=LR, eps=0.0)   # noqa: E731
    usual = lambda ps: torch.optim.Adam(ps, lr=LR, eps=EPS)   # noqa: E731
    base = torch_steps(exact, grads)
    for k in (1e-2, 1e3):
        # without ε: the same steps, to rounding; with ε: close, more so for large k
        assert np.allclose(torch_steps(exact, k * grads), base, rtol=1e-12, atol=0)
        gap = np.abs(torch_steps(usual, k * grads) - base).max()
        assert gap < len(grads) * LR * EPS / (k * np.abs(grads).min())
        assert gap < 1e-4 * LR
    sgd = lambda ps: torch.optim.SGD(ps, lr=LR)   # noqa: E731
    assert np.allclose(torch_steps(sgd, 10 * grads), 10 * torch_steps(sgd, grads))


# ----------------------------------------------------- one process against two (exp. 5)
def test_two_half_batch_means_equal_the_batch_mean_to_float32_rounding():
    torch.manual_seed(0)
    X, y = torch.randn(256, 216), (torch.rand(256) < 0.12).float()
    net = DeepCrossNetwork(216, n_cross=3, hidden=(128, 64), seed=0)
    with torch.no_grad():
        full = float(click_loss(net, (X, y)))
        halves = [float(click_loss(net, (X[:128], y[:128]))),
                  float(click_loss(net, (X[128:], y[128:])))]
    assert abs(full - sum(halves) / 2) < 1e-6 * full

    grads = []
    for parts in ([(X, y)], [(X[:128], y[:128]), (X[128:], y[128:])]):
        net.zero_grad()
        for part in parts:
            (click_loss(net, part) / len(parts)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert float((grads[0] - grads[1]).norm() / grads[0].norm()) < 1e-5


def test_adam_turns_a_rounding_difference_in_a_tiny_gradient_into_a_full_step():
    # two gradients that differ only at rounding level (1e-9 against a norm of 1)
    g = np.array([1.0, 0.3, 1e-9])
    g_other = np.array([1.0, 0.3, -1e-9])
    sgd_gap = np.abs(LR * g - LR * g_other).max()
    adam_gap = np.abs(adam_first_step(g, 1e-12) - adam_first_step(g_other, 1e-12)).max()
    assert sgd_gap == pytest.approx(2e-9 * LR)
    assert adam_gap > 1.9 * LR           # the tiny coordinate moves ±α: a full step apart
    assert adam_gap / sgd_gap > 1e8


# ------------------------------------------------------------------- the pages' text
LABEL_DEF = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([\w-]+)>?`")


def test_narrative_and_lab_link_through_labels_that_exist():
    narrative, lab = NARRATIVE.read_text(encoding="utf-8"), LAB.read_text(encoding="utf-8")
    assert LABEL_DEF.findall(narrative)[0] == "sec-case-flipkart"
    assert LABEL_DEF.findall(lab)[0] == "sec-case-ranking-lab"
    lines = narrative.splitlines()
    assert lines[lines.index("(sec-case-flipkart)=") + 1].startswith("# 8.14 Case study: search ranking")
    assert "# 8.15 Lab: the ranking case, reproduced" in lab
    labels = set(LABEL_DEF.findall(narrative)) | set(LABEL_DEF.findall(lab))
    for path in (ROOT / "chapters").glob("*.md"):
        labels |= set(LABEL_DEF.findall(path.read_text(encoding="utf-8")))
    lab_refs = {r for r in REF.findall(narrative) if r.startswith("sec-case-ranking-lab")}
    assert len(lab_refs) >= 5                       # the narrative links to the lab
    for text in (narrative, lab):
        missing = set(REF.findall(text)) - labels
        assert not missing, missing
    # each page links to the other (with the title written out, as JupyterLab needs)
    assert "{doc}`8.15 Lab: the ranking case, reproduced <15-case-study-search-ranking-lab>`" in narrative
    assert "{doc}`8.14 Case study: search ranking at scale <14-case-study-search-ranking>`" in lab


@pytest.mark.parametrize("page", [NARRATIVE, LAB], ids=lambda p: p.stem)
def test_pages_speak_in_their_own_voice(page):
    text = page.read_text(encoding="utf-8")
    words = re.findall(r"(?<!open )\bsources?\b(?! code)", text, re.I)
    assert not words
    assert "flipkart_search_ranking" not in text     # no citation readers cannot look up
    assert "as reported" not in text.lower()


def test_narrative_says_once_that_the_story_is_illustrative():
    text = NARRATIVE.read_text(encoding="utf-8")
    assert text.count("illustrative scenario") == 1
    # measured experiments live in the lab: the narrative trains nothing
    assert "fit(" not in text and "torch" not in text
