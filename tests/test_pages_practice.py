"""Tests for what the practice pages (8.10 PyTorch in practice, 8.13 Common mistakes,
8.16 Summary and references, 8.17 Exercises) claim.

* 8.10: ``zero_grad(set_to_none=True)`` is not the same as zeroing: ``torch.optim``
  skips a parameter whose ``.grad`` is ``None`` (no momentum, no weight decay, no state
  change), while a zero gradient still moves it. Checked against hand-written updates.
* 8.13: the "within noise" verdict on the curved-boundary task and the clear gap on the
  product task, recomputed independently of the page.
* 8.16: every key cited anywhere in the book is listed by one of the references page's
  bibliographies (so the strict build can resolve every citation).
* All four pages: the book's voice (no "source"), their numbered titles, and code lines
  of at most 88 characters.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "10-pytorch-in-practice": "8.10 PyTorch in practice",
    "13-common-mistakes": "8.13 Common mistakes and misconceptions",
    "16-summary-and-references": "8.16 Summary and references",
    "17-exercises": "8.17 Exercises",
}


def _text(stem: str) -> str:
    return (ROOT / "chapters" / f"{stem}.md").read_text()


# --------------------------------------------------------------------------------------
# 8.10: None is not zero
# --------------------------------------------------------------------------------------


def _step_with(grad, make, first_grad=1.0):
    """One parameter w = 1: a first step with gradient `first_grad`, then a second step
    whose .grad is `grad` (None or a tensor). Returns (w after 1, w after 2, state
    after 1, state after 2)."""
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = make([w])
    w.grad = torch.tensor([first_grad], dtype=torch.float64)
    opt.step()
    w1 = w.item()
    state1 = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[w].items()}
    w.grad = grad
    opt.step()
    state2 = dict(opt.state[w])
    return w1, w.item(), state1, state2


def test_sgd_momentum_and_decay_skip_a_none_gradient_but_not_a_zero_one():
    lr, mu, wd = 0.1, 0.9, 0.01

    def make(p):
        return torch.optim.SGD(p, lr=lr, momentum=mu, weight_decay=wd)

    w1, w2_none, s1, s2_none = _step_with(None, make)
    _, w2_zero, _, s2_zero = _step_with(torch.zeros(1, dtype=torch.float64), make)
    # By hand: b1 = g + λ w0, w1 = w0 - lr b1; with a zero gradient
    # b2 = μ b1 + λ w1 and w2 = w1 - lr b2.
    b1 = 1.0 + wd * 1.0
    assert w1 == pytest.approx(1.0 - lr * b1, rel=1e-15)
    assert w2_none == w1                                   # skipped: no move at all
    assert torch.equal(s2_none["momentum_buffer"], s1["momentum_buffer"])
    b2 = mu * b1 + wd * w1
    assert w2_zero == pytest.approx(w1 - lr * b2, rel=1e-14)
    assert s2_zero["momentum_buffer"].item() == pytest.approx(b2, rel=1e-14)
    assert abs(w2_zero - w2_none) > 0.05                   # a real difference


def test_weight_decay_alone_shrinks_a_zero_gradient_parameter_only():
    wd, lr = 0.1, 0.5

    def make(p):
        return torch.optim.SGD(p, lr=lr, weight_decay=wd)

    w1, w2_none, *_ = _step_with(None, make)
    _, w2_zero, *_ = _step_with(torch.zeros(1, dtype=torch.float64), make)
    assert w2_none == w1
    assert w2_zero == pytest.approx(w1 * (1 - lr * wd), rel=1e-14)


def test_plain_sgd_is_the_same_either_way():
    def make(p):
        return torch.optim.SGD(p, lr=0.1)

    w1, w2_none, *_ = _step_with(None, make)
    _, w2_zero, *_ = _step_with(torch.zeros(1, dtype=torch.float64), make)
    assert w2_none == w2_zero == w1


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_state_frozen_by_none_but_advanced_by_zero(name):
    def make(p):
        return getattr(torch.optim, name)(p, lr=0.1)

    w1, w2_none, s1, s2_none = _step_with(None, make)
    _, w2_zero, _, s2_zero = _step_with(torch.zeros(1, dtype=torch.float64), make)
    assert w2_none == w1
    assert float(s2_none["step"]) == float(s1["step"]) == 1.0
    assert torch.equal(s2_none["exp_avg"], s1["exp_avg"])
    assert float(s2_zero["step"]) == 2.0
    # Adam with a zero gradient: m2 = β1 m1, v2 = β2 v1, and the step is
    # lr m̂2 / (√v̂2 + ε) (+ AdamW's decay lr λ w1 with λ = 0.01).
    b1, b2, lr = 0.9, 0.999, 0.1
    m2, v2 = b1 * (1 - b1), b2 * (1 - b2)
    step = lr * (m2 / (1 - b1 ** 2)) / (np.sqrt(v2 / (1 - b2 ** 2)) + 1e-8)
    decay = lr * 0.01 * w1 if name == "AdamW" else 0.0
    assert w2_zero == pytest.approx(w1 - decay - step, rel=1e-12)
    assert w1 - w2_zero > 0.05


def test_zero_grad_defaults_to_none_and_can_zero():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    w.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and torch.count_nonzero(w.grad) == 0
    w.sum().backward()
    opt.zero_grad()
    assert w.grad is None


def test_the_page_shows_none_is_not_zero():
    text = _text("10-pytorch-in-practice")
    assert "set_to_none" in text
    assert "has the same effect" not in text
    assert "none_w2_zeros" in text and "none_adam_w2_zeros" in text


# --------------------------------------------------------------------------------------
# 8.13: the paired differences of the generalization experiment
# --------------------------------------------------------------------------------------


def _accuracies(rule, optimizer_name, seed, steps=200):
    """The page's small-network experiment, written out again (CPU, float32)."""
    rules = {"curved": lambda X: torch.sin(2 * X[:, 0]) + X[:, 1],
             "product": lambda X: X[:, 0] * X[:, 1] + 0.5 * X[:, 2]}
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(2200, 10, generator=g)
    y = (rules[rule](X) > 0).float()
    X_tr, y_tr, X_te, y_te = X[:200], y[:200], X[200:], y[200:]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1))
    if optimizer_name == "Adam":
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(net(X_tr).squeeze(1), y_tr).backward()
        opt.step()
    with torch.no_grad():
        return ((net(X_te).squeeze(1) > 0).float() == y_te).float().mean().item()


def test_curved_task_gap_is_within_noise_and_product_gap_is_not():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        diffs = {rule: 100 * np.array([_accuracies(rule, "SGD", s)
                                       - _accuracies(rule, "Adam", s) for s in range(4)])
                 for rule in ("curved", "product")}
    finally:
        torch.set_num_threads(threads)
    curved, product = diffs["curved"], diffs["product"]
    # Within noise: the mean of 4 paired differences lies within one sample s.d.
    # (= two standard errors) of zero.
    assert abs(curved.mean()) < curved.std(ddof=1)
    assert abs(product.mean()) > 2 * product.std(ddof=1)


def test_the_mistakes_page_says_within_noise_behind_a_guard():
    text = _text("13-common-mistakes")
    assert "A note on the source" not in text
    guard = text.index("assert abs(diff_mean[0]) < diff_sd[0]")
    assert guard < text.index("this gap is within the noise")   # the prose's verdict
    assert guard < text.index("(within the noise)")              # and the box's
    assert text.count(":class: common-claim") >= 5


# --------------------------------------------------------------------------------------
# 8.16: every citation resolves on the references page
# --------------------------------------------------------------------------------------

# a cited key in either form: {cite}`a,b` or, as JupyterLab can show it, [[...]](#a,b)
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`|\[\[[^\[\]]*\]\]\(#([^()\s#]+)\)")


def _cited_keys() -> set[str]:
    keys = set()
    for path in list((ROOT / "chapters").glob("*.md")) + list((ROOT / "solutions").glob("*")):
        if path.suffix not in (".md", ".ipynb"):
            continue
        for role, link in CITE.findall(path.read_text()):
            keys.update(k.strip() for k in (role or link).split(","))
    return keys


def _listed_keys() -> set[str]:
    text = _text("16-summary-and-references")
    keys = set()
    for block in re.findall(r":filter: key in \{([^}]*)\}", text):
        keys.update(re.findall(r'"([^"]+)"', block))
    return keys


def test_every_cited_key_is_listed_on_the_references_page():
    bib = (ROOT / "references.bib").read_text()
    in_bib = set(re.findall(r"^@\w+\{([^,\s]+),", bib, re.M))
    cited, listed = _cited_keys(), _listed_keys()
    assert cited, "no citations found"
    assert not cited - in_bib, f"cited but not in references.bib: {cited - in_bib}"
    assert not cited - listed, f"cited but on no bibliography list: {cited - listed}"
    assert not listed - in_bib, f"listed but not in references.bib: {listed - in_bib}"


def test_every_work_on_the_references_page_is_described_in_its_prose():
    """A work on one of 8.16's bibliography lists gets a sentence that cites it there:
    a bare entry tells the reader nothing about why it is listed."""
    text = _text("16-summary-and-references")
    described = set()
    for role, link in CITE.findall(text):
        described.update(k.strip() for k in (role or link).split(","))
    assert _listed_keys(), "no bibliography lists found"
    assert not _listed_keys() - described, (
        f"listed on 8.16 but cited by no sentence there: {_listed_keys() - described}")


# --------------------------------------------------------------------------------------
# The four pages: voice, titles, code lines
# --------------------------------------------------------------------------------------

SOURCE_WORD = re.compile(r"(?<!open )\bsources?\b(?! code)", re.I)


@pytest.mark.parametrize("stem", sorted(PAGES))
def test_page_title_voice_and_code_lines(stem):
    text = _text(stem)
    titles = [ln for ln in text.splitlines() if ln.startswith("# ")]
    assert titles[0] == f"# {PAGES[stem]}"
    assert not SOURCE_WORD.findall(text)
    for phrase in ("the slides", "the original", "the draft", "as printed"):
        assert phrase not in text.lower(), phrase
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```{code-cell}"):
            in_code = True
            continue
        if in_code and line.startswith("```"):
            in_code = False
            continue
        if in_code:
            assert len(line) <= 88, f"{stem}.md:{number} is {len(line)} characters"


@pytest.mark.parametrize("stem", ["10-pytorch-in-practice", "13-common-mistakes",
                                  "16-summary-and-references"])
def test_every_code_cell_is_parsed_as_code(stem):
    """A fence that swallows the rest of the page (for example a backtick in an
    admonition's title) turns later code cells into Markdown; catch it here."""
    import jupytext

    text = _text(stem)
    nb = jupytext.reads(text, fmt="md:myst")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == text.count("```{code-cell}")
    assert not any("```{code-cell}" in c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("stem", ["10-pytorch-in-practice", "13-common-mistakes",
                                  "16-summary-and-references"])
def test_plumbing_is_in_hidden_cells(stem):
    """Visible code is teaching code: the first cell (imports, book_style) is folded,
    and every number formatted for the prose (glue(...), or `name = format(...)` for
    {eval}) and every display(Markdown(...)) sits in a hidden cell."""
    import jupytext

    nb = jupytext.reads(_text(stem), fmt="md:myst")
    cells = [(set(c.metadata.get("tags", [])), c.source) for c in nb.cells
             if c.cell_type == "code"]
    assert "hide-cell" in cells[0][0] and "book_style()" in cells[0][1]
    hidden = {"hide-cell", "hide-input", "remove-cell", "remove-input"}
    for tags, code in cells:
        if "glue(" in code or " = format(" in code or "display(Markdown" in code:
            assert tags & hidden, code[:200]
