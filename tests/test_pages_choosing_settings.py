"""8.12 Choosing settings in practice: the page's bookkeeping and the mechanisms its prose
relies on, checked on small problems over several seeds.

* every number the prose quotes from the full run is stored in chapters/_results (and
  nothing else is), every citation resolves (references.bib and 8.16's lists), the
  sliders have at least twelve positions, the switch for the quick run is visible;
* the prose's mechanisms: an average of noisy constant-rate iterates is better than the
  last iterate (and a too-long EMA remembers the start); a range test's minimum lies
  below the rate at which noisy gradient descent on a quadratic becomes unstable, so
  "a tenth of the minimum" is a stable rate; bf16 Adam state stops moving under the
  defaults while float32 follows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch

from optbook.averaging import EMA, SWA
from optbook.precision import ewa_in_dtype
from optbook.tuning import lr_range_test

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "chapters" / "12-choosing-settings.md"
RESULTS = ROOT / "chapters" / "_results" / "12-choosing-settings.json"
QUOTED = re.compile(r"quoted\(\s*\"(\w+)\"")
CITATION = re.compile(r"\]\(#([\w,]+)\)")


@pytest.fixture(scope="module")
def notebook():
    return jupytext.read(PAGE)


def code(notebook, visible_only=False):
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    if visible_only:
        cells = [c for c in cells if not {"hide-cell", "hide-input"}
                 & set(c.metadata.get("tags", []))]
    return "\n".join(c.source for c in cells)


def test_quoted_results_match_the_page(notebook):
    names = set(QUOTED.findall(code(notebook)))
    stored = json.loads(RESULTS.read_text())
    assert names == set(stored), (names ^ set(stored))
    assert all(isinstance(v, str) and v for v in stored.values())


def test_citations_resolve():
    text = PAGE.read_text()
    keys = {k for group in CITATION.findall(text) for k in group.split(",")}
    assert {"smith2017cyclical", "mccandlish2018largebatch", "izmailov2018swa",
            "micikevicius2018mixed"} <= keys
    bib = (ROOT / "references.bib").read_text()
    listed = (ROOT / "chapters" / "16-summary-and-references.md").read_text()
    for key in keys:
        assert re.search(r"@\w+\{" + key + ",", bib), f"{key} is not in references.bib"
        assert f'"{key}"' in listed, f"{key} is on none of 8.16's bibliography lists"


def test_switch_is_visible_and_sliders_have_twelve_positions(notebook):
    visible = code(notebook, visible_only=True)
    assert "FULL_RUN = pages.full_run()" in visible
    for name in ("BETAS", "BETA2S"):
        match = re.search(rf"^{name} = (\[[^\]]*\])", code(notebook), re.M | re.S)
        values = eval(match.group(1))     # a literal list on the page
        assert len(values) >= 12 and values == sorted(values), name


def test_figures_are_readable_on_a_phone(notebook):
    """Every figure and slider frame is one column wide (panels stacked), its text as
    large as the slider frames'; the figures were 7-11 inches wide, side by side."""
    from test_pages_beyond_adam import phone_layout_problems

    assert not phone_layout_problems(notebook.cells)


def test_no_code_line_is_over_88_characters(notebook):
    long = [line for line in code(notebook).splitlines() if len(line) > 88]
    assert not long, long


# ------------------------------------------------------------- the prose's mechanisms
def noisy_adam_run(seed, steps=600, lr=0.05, dim=50):
    """Adam at a constant rate on (1/2)|θ|² with gradient noise: the iterates settle
    into a cloud around 0; returns |θ|² of the last iterate, of SWA over the second
    half and of EMAs with β = 0.9 and 0.9995 (started at θ₀ far from 0)."""
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(dim, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    short, long_, swa = EMA(model, 0.9), EMA(model, 0.9995), None
    for step in range(1, steps + 1):
        model.weight.grad = model.weight.detach() + torch.randn(1, dim, generator=g)
        opt.step()
        short.update(model)
        long_.update(model)
        if step == steps // 2:
            swa = SWA(model)
        elif step > steps // 2:
            swa.update(model)
    sq = lambda t: float((t ** 2).sum())                              # noqa: E731
    return (sq(model.weight.detach()), sq(swa.average[0]), sq(short.average[0]),
            sq(long_.average[0]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_averages_beat_the_last_noisy_iterate_and_a_long_ema_remembers_the_start(seed):
    last, swa, short, long_ = noisy_adam_run(seed)
    assert swa < last / 3 and short < last
    assert long_ > 5 * last          # the 2,000-step window still holds θ₀ = 1


@pytest.mark.parametrize("lam", [0.5, 4.0, 40.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_range_test_minimum_sits_below_the_stability_limit(lam, seed):
    """Noisy gradient descent on (λ/2)|θ - ξ|² (ξ a fresh standard-normal target every
    step, as mini-batches make it) is unstable for α > 2/λ; the range test's smoothed
    loss is lowest below that limit, since the noise's share of the loss grows with α
    first, so a tenth of the minimum's rate is well inside the stable range."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.nn.Parameter(3 * torch.ones(20, dtype=torch.float64))
    targets = (torch.randn(20, generator=g, dtype=torch.float64) for _ in range(200))
    result = lr_range_test(lambda xi: theta - xi,
                           lambda m, xi: 0.5 * lam * (m(xi) ** 2).sum(), targets,
                           torch.optim.SGD([theta], lr=1.0), lr_min=1e-4, lr_max=1e3,
                           steps=200)
    lowest = result.lrs[int(np.argmin(result.smoothed))]
    assert result.stopped_at is not None and result.lrs[result.stopped_at] > 2 / lam
    assert lowest < 2 / lam
    assert result.suggestion() < 0.2 / lam


@pytest.mark.parametrize("scale", [4.0, 0.25])
def test_bf16_second_moment_freezes_under_adams_default_beta2(scale):
    g2 = np.r_[np.ones(100), scale * np.ones(3000)]
    bf16 = ewa_in_dtype(g2, 0.999, torch.bfloat16, start=1.0)
    fp32 = ewa_in_dtype(g2, 0.999, torch.float32, start=1.0)
    assert np.ptp(bf16[-1000:]) == 0                  # frozen
    assert abs(fp32[-1] - scale) < 0.1 * abs(scale - 1)   # float32 follows g²
    assert abs(bf16[-1] - scale) > 0.3 * abs(scale - 1)
