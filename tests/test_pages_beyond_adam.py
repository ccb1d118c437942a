"""Page-level checks for 8.11 Beyond Adam (chapters/11-beyond-adam.md).

* What the page claims about the optimizers, recomputed against the *reference*
  implementations (torch.optim, lion-pytorch, schedulefree), not against optbook:
  RAdam's first steps, Adafactor's state size, Lion's step size, NAdam's momentum.
* The page's mechanics: title, place in the table of contents, its quoted full-run
  numbers match the names it quotes, every citation is in references.bib, the FULL_RUN
  switch is visible, the book's voice, code lines of at most 88 characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
from lion_pytorch import Lion as ReferenceLion

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "chapters" / "11-beyond-adam.md"
RESULTS = ROOT / "chapters" / "_results" / "11-beyond-adam.json"


def _text() -> str:
    return PAGE.read_text()


def _cells():
    return jupytext.reads(_text(), fmt="md:myst").cells


# ------------------------------------------------------------ claims, against references
def test_radam_first_steps_are_momentum_steps_in_torch():
    """The page: with β₂ = 0.999 RAdam's first 5 steps are α m̂ (no division by √v),
    so they are as small as the gradient; Adam's first step is ±α everywhere."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(50) * 1e-2 for _ in range(7)]
    w = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RAdam([w], lr=1e-3, betas=(0.9, 0.999))
    m = np.zeros(50)
    for t, g in enumerate(grads, start=1):
        before = w.detach().numpy().copy()
        w.grad = torch.from_numpy(g)
        opt.step()
        m = 0.9 * m + 0.1 * g
        momentum_step = -1e-3 * m / (1 - 0.9**t)
        moved = w.detach().numpy() - before
        if t <= 5:
            np.testing.assert_allclose(moved, momentum_step, rtol=1e-10)
        else:   # from t = 6 on the adaptive step, rectified: no longer α m̂
            assert not np.allclose(moved, momentum_step, rtol=1e-3)
    w2 = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([w2], lr=1e-3)
    w2.grad = torch.from_numpy(grads[0])
    adam.step()
    np.testing.assert_allclose(np.abs(w2.detach().numpy()), 1e-3, rtol=1e-4)


def test_adafactor_keeps_n_plus_k_numbers_for_a_matrix_in_torch():
    n, k = 196, 64
    W, b = (torch.zeros(n, k, requires_grad=True), torch.zeros(k, requires_grad=True))
    opt = torch.optim.Adafactor([W, b])
    W.grad, b.grad = torch.ones(n, k), torch.ones(k)
    opt.step()
    kept = {p: sum(v.numel() for name, v in opt.state[p].items()
                   if torch.is_tensor(v) and name != "step") for p in (W, b)}
    assert kept[W] == n + k and kept[b] == k


def test_lion_moves_every_weight_by_exactly_lr_in_lion_pytorch():
    rng = np.random.default_rng(1)
    w = torch.tensor(rng.standard_normal(1000), requires_grad=True)
    opt = ReferenceLion([w], lr=1e-4)
    for _ in range(3):
        before = w.detach().clone()
        w.grad = torch.tensor(rng.standard_normal(1000))
        opt.step()
    np.testing.assert_allclose((w.detach() - before).abs().numpy(), 1e-4, rtol=1e-9)


def test_nadam_momentum_schedule_as_torch_computes_it():
    """The page's μ_t values come from optbook; torch's formula, written out, agrees."""
    from optbook.beyond_adam import nadam_momentum

    for t in (1, 10, 100, 1000, 10_000):
        torch_mu = 0.9 * (1.0 - 0.5 * (0.96 ** (t * 4e-3)))   # torch/optim/nadam.py
        assert nadam_momentum(t, 0.9, 4e-3) == pytest.approx(torch_mu, rel=1e-15)
    assert nadam_momentum(1, 0.9, 4e-3) < 0.46 < 0.8 < nadam_momentum(10_000, 0.9, 4e-3)


# ------------------------------------------------------------------------ mechanics
def test_muon_shape_factor_follows_pytorchs_layout():
    """The page: the factor is √max(1, rows/columns) of the stored matrix, so W₁ stored
    196×64 gets 1.75, where PyTorch's nn.Linear layout (64×196) gets 1."""
    from torch.optim._muon import _adjust_lr

    from optbook.muon import muon_lr

    linear_shape = torch.nn.Linear(196, 64).weight.shape        # outputs × inputs
    assert tuple(linear_shape) == (64, 196)
    assert _adjust_lr(1.0, None, linear_shape) == 1.0
    assert _adjust_lr(1.0, None, torch.Size((196, 64))) == pytest.approx(1.75)
    for shape in [(196, 64), (64, 196), (64, 10), (10, 64)]:
        assert muon_lr(1.0, shape) == pytest.approx(_adjust_lr(1.0, None,
                                                               torch.Size(shape)))


def test_one_newton_schulz_round_is_the_pages_polynomial_in_torch():
    """The page: one round maps each singular value σ (after X = G/‖G‖_F) to
    p(σ) = aσ + bσ³ + cσ⁵ with PyTorch's (a, b, c), and p(1) = a + b + c ≈ 0.70."""
    import inspect

    from torch.optim._muon import _zeropower_via_newtonschulz

    a, b, c = inspect.signature(torch.optim.Muon).parameters["ns_coefficients"].default
    assert (a, b, c) == pytest.approx((3.4445, -4.7750, 2.0315))
    assert a + b + c == pytest.approx(0.70, abs=0.005)
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((64, 32)))
    V, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    s = np.geomspace(1.0, 0.01, 32)
    G = torch.tensor(U @ np.diag(s) @ V.T, dtype=torch.float32)
    out = _zeropower_via_newtonschulz(G, (a, b, c), 1, 1e-7).float().numpy()
    sigma = s / np.linalg.norm(s)
    expected = np.sort(a * sigma + b * sigma**3 + c * sigma**5)[::-1]
    got = np.linalg.svd(out, compute_uv=False)
    np.testing.assert_allclose(got, expected, rtol=0.03)      # torch works in bfloat16


def test_title_and_place_in_the_table_of_contents():
    assert re.search(r"^# 8\.11 Beyond Adam$", _text(), re.M)
    toc = (ROOT / "_toc.yml").read_text().splitlines()
    files = [line.split("file:")[1].strip() for line in toc if "file:" in line]
    i = files.index("chapters/10-pytorch-in-practice")
    assert files[i + 1] == "chapters/11-beyond-adam"


def test_quoted_full_run_numbers_are_the_ones_the_page_quotes():
    quoted = set(re.findall(r'quoted\("(\w+)"', _text()))
    stored = json.loads(RESULTS.read_text())
    assert quoted and quoted == set(stored)
    assert all(isinstance(v, str) and v for v in stored.values())


def test_full_run_switch_is_visible_and_explained():
    for cell in _cells():
        if "FULL_RUN = pages.full_run()" in cell.source:
            assert not set(cell.metadata.get("tags", [])) & {"hide-cell", "hide-input",
                                                             "remove-cell"}
            assert "quick run" in cell.source and "full run" in cell.source.lower()
            return
    pytest.fail("no FULL_RUN switch on the page")


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "references.bib").read_text()
    # citations are links to their keys (docs/jupyterlab-pages.md, Citations)
    groups = re.findall(r"\]\(#([\w,]+)\)", _text())
    groups += re.findall(r"\{cite[^}]*\}`([^`]+)`", _text())
    keys = {k.strip() for group in groups for k in group.split(",")}
    assert {"dozat2016nadam", "liu2020radam", "shazeer2018adafactor", "chen2023lion",
            "jordan2024muon", "defazio2024schedulefree"} <= keys
    for key in keys:
        assert re.search(rf"@\w+\{{{re.escape(key)},", bib), key


def test_book_voice_and_line_length():
    text = _text()
    for word in ("the source", "the draft", "the original", "the slides"):
        assert word not in text.lower(), word
    for cell in _cells():
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                assert len(line) <= 88, line
    assert ':class: common-claim' in text and "**Verdict.**" in text


# ------------------------------------------------------------------- read on a phone
def phone_layout_problems(cells) -> list[str]:
    """What keeps a page's figures from being read on a 390 px phone (issue 15), found in
    its code cells: a figure wider than 5.4 inches (about 490 CSS px: a phone shrinks it
    to its 358 px column, text and all), panels side by side instead of stacked
    (``two_panels(True, …)``), a static figure not drawn in the slider frames' larger
    text (``plt.rc_context(FRAME_STYLE)``)."""
    import ast

    problems = []
    for cell in cells:
        if cell.cell_type != "code" or "%" in cell.source.split("\n", 1)[0]:
            continue
        calls = [node for node in ast.walk(ast.parse(cell.source))
                 if isinstance(node, ast.Call) and ast.unparse(node.func) in
                 ("plt.subplots", "two_panels")]
        for call in calls:
            name, args = ast.unparse(call.func), [ast.unparse(a) for a in call.args]
            keywords = {k.arg: k.value for k in call.keywords}
            size = keywords.get("figsize") or keywords.get("above")
            if isinstance(size, ast.Tuple) and "above" in keywords and "figsize" not in keywords:
                size = size.elts[0]
            width = ast.literal_eval(size)[0] if isinstance(size, ast.Tuple) else None
            if name == "plt.subplots" and (width is None or len(args) > 1 and args[1] != "1"):
                problems.append(f"{ast.unparse(call)}: side by side or default size")
            if name == "two_panels" and args[:1] != ["True"]:
                problems.append(f"{ast.unparse(call)}: panels not stacked")
            if width is not None and width > 5.4:
                problems.append(f"{ast.unparse(call)}: {width} inches wide")
        if calls and "frame_slider(" not in cell.source \
                and "rc_context(FRAME_STYLE)" not in cell.source:
            problems.append(f"a static figure in the page's style: {cell.source[:60]!r}")
    return problems


def test_figures_are_readable_on_a_phone():
    """Every figure and slider frame of the page is one column wide (panels stacked) and
    its text as large as the slider frames'; before, the ravine's frames were two
    panels side by side, 10 inches wide, with a legend of about 5 CSS px on a phone."""
    assert not phone_layout_problems(_cells())
    before = "```{code-cell} ipython3\nfig, axes = plt.subplots(1, 2, figsize=(10, 3.8))\n```"
    assert len(phone_layout_problems(jupytext.reads(before, fmt="md:myst").cells)) == 3
