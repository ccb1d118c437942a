"""Cross-references on the pages converted for JupyterLab (tools/glue_to_eval.py).

JupyterLab cannot look a page's or a section's title up, so every {doc} and {ref} in the
prose writes its title out: {doc}`8.5 RMSprop and AdaGrad <05-rmsprop-and-adagrad>`. That
title must stay the one the site shows — the page's heading, or the heading under the
label — or the two renderings drift apart when a page is renamed or renumbered.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
ROLE = re.compile(r"\{(doc|ref)\}`([^`]*)`")
TITLED = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
LABEL = re.compile(r"^\(([^)\s]+)\)=\s*\n+#+ (.+)$", re.M)


def page_heading(stem: str) -> str:
    text = (CHAPTERS / f"{stem}.md").read_text(encoding="utf-8")
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def section_headings() -> dict[str, str]:
    """label → the heading right under it, over every page."""
    found: dict[str, str] = {}
    for page in CHAPTERS.glob("*.md"):
        found.update(LABEL.findall(page.read_text(encoding="utf-8")))
    return found


def wrong_titles(text: str) -> list[str]:
    """Every {doc}/{ref} in ``text`` without its title, or whose title is not the one the
    site shows (empty when all is well)."""
    labels, problems = section_headings(), []
    for role, body in ROLE.findall(text):
        titled = TITLED.match(body)
        if not titled:
            problems.append(f"{{{role}}}`{body}` has no title")
            continue
        title, target = titled.group(1).strip(), titled.group(2)
        shown = page_heading(target) if role == "doc" else labels.get(target)
        if " ".join(title.split()) != shown:
            problems.append(f"{{{role}}}`{body}`: the site shows {shown!r}")
    return problems


def without_references(text: str) -> str:
    """``text`` with its {doc}/{ref} roles removed (their titles are checked above)."""
    return ROLE.sub("", text)
