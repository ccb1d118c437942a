"""What pages 8.3 (EWA), 8.4 (momentum) and 8.5 (RMSprop and AdaGrad) say, held by tests.

* All three: the book's voice (no "source", no "A claim that needs a correction" box;
  common-claim boxes in the book's form), their numbered titles, the first plumbing
  cell hidden, every number formatted for the prose ({eval}) in a hidden cell, code
  lines of at most 88 characters; cross-references carry the titles the site shows.
* 8.4: "use a smaller α with momentum" — the chapter's (1 − β) form keeps the steady
  step at α·g, PyTorch's ``SGD(lr=α, momentum=β)`` makes it α·g/(1 − β), and
  ``lr = α(1 − β)`` is the exact match. Nesterov credited to Nesterov 1983 and to
  Sutskever et al. 2013 for the constant-β form.
* 8.5: RMSprop's usual β: 0.9 in Hinton's lecture, torch's default ``alpha`` 0.99 (0.999
  is Adam's β₂); Hinton's RMSprop as a mini-batch Rprop, cited.
(The share of the weight on the newest 1/(1 − β) values is tested in test_ewa.py.)
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from optbook.optimizers import MomentumSGD
from page_refs import without_references, wrong_titles

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "03-exponentially-weighted-averages": "8.3 Exponentially weighted averages",
    "04-momentum": "8.4 Gradient descent with momentum",
    "05-rmsprop-and-adagrad": "8.5 RMSprop and AdaGrad",
}
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```$", re.S | re.M)


def _text(stem: str) -> str:
    return (ROOT / "chapters" / f"{stem}.md").read_text(encoding="utf-8")


def _cells(stem: str) -> list[tuple[set[str], str]]:
    """(tags, code) of every code cell; tags from ``:tags: [...]`` or a YAML header."""
    cells = []
    for body in CELL.findall(_text(stem)):
        tags: set[str] = set()
        header = re.match(r"---\n(.*?)\n---\n", body, re.S)
        if header:
            body = body[header.end():]
            found = re.search(r"^tags:\s*\[([^\]]*)\]", header.group(1), re.M)
            tags = {t.strip() for t in found.group(1).split(",")} if found else set()
        lines = body.split("\n")
        while lines and lines[0].startswith(":"):
            found = re.match(r":tags:\s*\[([^\]]*)\]", lines.pop(0))
            if found:
                tags |= {t.strip() for t in found.group(1).split(",")}
        cells.append((tags, "\n".join(lines)))
    return cells


@pytest.mark.parametrize("stem", PAGES)
def test_no_source_and_no_correction_boxes(stem):
    text = _text(stem).lower()
    assert "source" not in (text.replace("source code", "").replace("open source", "")
                            .replace("source_hidden", ""))  # JupyterLab's fold
    assert "claim that needs" not in text
    assert "the slides" not in text and "the draft" not in text


@pytest.mark.parametrize("stem", PAGES)
def test_common_claim_boxes_have_the_books_form(stem):
    text = _text(stem)
    boxes = re.findall(r"```\{admonition\} Common claim: \"[^\"]+\"\n:class: common-claim\n"
                       r"(.*?)\n```", text, re.S)
    assert text.count("Common claim:") == len(boxes)
    for box in boxes:
        assert box.index("**The claim.**") < box.index("**What we measured.**") \
            < box.index("**Verdict.**")
        assert "{eval}`" in box              # the measurement comes from code


def test_the_claims_of_issue_13_are_common_claim_boxes():
    assert 'Common claim: "β = 0.9 is the standard choice' in _text("04-momentum")
    assert 'Common claim: "Use a slightly smaller α with momentum' in _text("04-momentum")
    assert "Common claim: \"RMSprop's β is 0.999" in _text("05-rmsprop-and-adagrad")


@pytest.mark.parametrize("stem,title", PAGES.items())
def test_numbered_title_and_no_old_section_numbers(stem, title):
    text = _text(stem)
    assert re.search(r"^# (.*)$", text, re.M).group(1) == title
    # the only section numbers left are the page's own title and 8.3 for the EWA page,
    # besides the titles written out in cross-references (checked below)
    numbers = set(re.findall(r"\b8\.\d+\b", without_references(text)))
    assert numbers <= {title.split()[0], "8.3"}, numbers


@pytest.mark.parametrize("stem", PAGES)
def test_cross_references_carry_the_titles_the_site_shows(stem):
    prose = CELL.sub("", _text(stem))
    assert "{doc}" in prose and not wrong_titles(prose), wrong_titles(prose)


@pytest.mark.parametrize("stem", PAGES)
def test_plumbing_is_hidden_and_code_lines_are_short(stem):
    cells = _cells(stem)
    assert "hide-cell" in cells[0][0] and "book_style()" in cells[0][1]
    hidden = {"hide-cell", "hide-input", "remove-cell"}
    for tags, code in cells:
        formats = re.search(r"^\w+ = (format|str)\(", code, re.M)
        if "glue(" in code or formats or "display(Markdown" in code:
            assert tags & hidden, code[:200]
        for line in code.split("\n"):
            assert len(line) <= 88, line


# --------------------------------------------------------------------------------------
# 8.4: does momentum amplify the step?
# --------------------------------------------------------------------------------------


def _steady_steps(alpha, beta, steps=200):
    ours, opt = {"w": np.zeros(1)}, MomentumSGD(lr=alpha, beta=beta)
    chapter = []
    for _ in range(steps):
        before = ours["w"].copy()
        opt.update(ours, {"dw": np.ones(1)})
        chapter.append(float((before - ours["w"])[0]))

    def torch_form(lr):
        w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        t_opt, out = torch.optim.SGD([w], lr=lr, momentum=beta), []
        for _ in range(steps):
            before = w.detach().clone()
            w.grad = torch.ones_like(w)
            t_opt.step()
            out.append(float((before - w.detach())[0]))
        return np.array(out)

    return np.array(chapter), torch_form(alpha), torch_form(alpha * (1 - beta))


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_momentum_amplifies_only_in_torchs_form(beta):
    alpha = 0.01
    chapter, same_lr, matched = _steady_steps(alpha, beta, steps=2000)
    assert chapter[-1] == pytest.approx(alpha, rel=1e-6)               # no amplification
    assert same_lr[-1] == pytest.approx(alpha / (1 - beta), rel=1e-6)  # 1/(1 − β) larger
    np.testing.assert_allclose(matched, chapter, rtol=1e-12, atol=0)   # lr = α(1 − β)


def _cites(text: str, key: str) -> bool:
    """``key`` cited alone, as {cite}`key` or as the link [[Author, year]](#key)."""
    return f"{{cite}}`{key}`" in text or re.search(rf"\]\]\(#{key}\)", text) is not None


def test_nesterov_and_rprop_credited_and_in_the_bibliography():
    bib = (ROOT / "references.bib").read_text(encoding="utf-8")
    momentum, rmsprop = _text("04-momentum"), _text("05-rmsprop-and-adagrad")
    for key in ("nesterov1983method", "sutskever2013importance"):
        assert _cites(momentum, key) and f"{{{key}," in bib
    for key in ("hinton2012rmsprop", "riedmiller1993rprop"):
        assert _cites(rmsprop, key) and f"{{{key}," in bib
    assert not _cites(rmsprop, "nesterov1983method")
    assert "mini-batch version of **Rprop**" in rmsprop
    assert "Lecture 6e" in rmsprop


# --------------------------------------------------------------------------------------
# 8.5: RMSprop's β
# --------------------------------------------------------------------------------------


def test_torch_rmsprop_default_alpha_is_0_99_not_0_999():
    defaults = inspect.signature(torch.optim.RMSprop).parameters
    assert defaults["alpha"].default == 0.99
    assert defaults["lr"].default == 0.01
    adam = inspect.signature(torch.optim.Adam).parameters
    assert adam["betas"].default == (0.9, 0.999)     # 0.999 is Adam's β₂


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999])
def test_rmsprop_first_step_is_alpha_over_sqrt_one_minus_beta(beta):
    from optbook.optimizers import RMSprop

    for g in (10.0, 0.01):
        params = {"w": np.zeros(1)}
        RMSprop(lr=0.001, beta=beta, epsilon=0.0).update(params, {"dw": np.array([g])})
        assert -params["w"][0] == pytest.approx(0.001 / np.sqrt(1 - beta), rel=1e-12)
