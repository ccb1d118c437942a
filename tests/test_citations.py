"""Citations that read the same on the site and in JupyterLab (docs/jupyterlab-pages.md).

A citation is written as a link to its key, ``[[Wang *et al.*, 2017]](#wang2017dcn)``:
on the site myst-parser hands ``#key`` to sphinxcontrib-bibtex, which puts in the linked
"[Wang et al., 2017]" of ``{cite}`wang2017dcn```; jupyterlab-myst, which has no
bibliography, shows the link's text. tools/glue_to_eval.py --citations writes the links.

Checked here, against a real Sphinx build (myst-parser + sphinxcontrib-bibtex with the
book's settings from _config.yml and the bibliography lists of 8.16) of every key the
chapter cites: the link resolves to the same text as ``{cite}``, and that is the text
the converter writes; every link in every page carries that text; the converter itself.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import glue_to_eval  # noqa: E402
from glue_to_eval import (CITE, CITE_LINK, bibliography_lists, citation_text,  # noqa: E402
                          convert, convert_citations)

# a cited key in either form: {cite}`a,b` or [[...]](#a,b)
CITED = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`|\[\[[^\[\]]*\]\]\(#([^()\s#]+)\)")
PAGES = sorted((ROOT / "chapters").glob("*.md"))


def cited_groups() -> list[str]:
    """Every citation of the chapter pages, as written ("a" or "a,b"), once each."""
    groups = []
    for page in PAGES:
        for m in CITED.finditer(page.read_text()):
            group = ",".join(k.strip() for k in (m[1] or m[2]).split(","))
            if group not in groups:
                groups.append(group)
    return groups


def plain(markdown: str) -> str:
    return markdown.replace("*", "")


@pytest.fixture(scope="module")
def site_texts(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """group -> (text of {cite}`group`, text of [x](#group)) in a Sphinx build."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]["config"]
    src = tmp_path_factory.mktemp("citations")
    (src / "conf.py").write_text(textwrap.dedent(f"""\
        extensions = ["myst_parser", "sphinxcontrib.bibtex"]
        bibtex_bibfiles = [{str(ROOT / "references.bib")!r}]
        bibtex_reference_style = {sphinx["bibtex_reference_style"]!r}
        bibtex_default_style = {sphinx["bibtex_default_style"]!r}
        """))
    groups = cited_groups()
    lines = ["# Citations", ""]
    for n, group in enumerate(groups):
        lines += [f"ROLE{n}: {{cite}}`{group}` END", "", f"LINK{n}: [x](#{group}) END", ""]
    # the references page's lists, in its order (as the book has them)
    text = (ROOT / "chapters" / "16-summary-and-references.md").read_text()
    lines += re.findall(r"^```\{bibliography\}\n.*?^```$", text, re.M | re.S)
    (src / "index.md").write_text("\n\n".join(lines) + "\n")
    out = src / "_html"
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q",
                             str(src), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    page = re.sub(r"<[^>]+>", "", (out / "index.html").read_text())
    page = html.unescape(page)
    found = {}
    for n, group in enumerate(groups):
        role = re.search(rf"ROLE{n}: (.*?) END", page, re.S)[1]
        link = re.search(rf"LINK{n}: (.*?) END", page, re.S)[1]
        found[group] = (" ".join(role.split()), " ".join(link.split()))
    return found


def test_every_key_cited_by_the_chapter_is_checked(site_texts):
    assert len(site_texts) >= 20
    assert "wang2017dcn" in site_texts


def test_a_link_to_a_key_reads_on_the_site_as_the_cite_role_does(site_texts):
    for group, (role, link) in site_texts.items():
        assert role.startswith("[") and role.endswith("]"), (group, role)
        assert link == role, f"{group}: the link shows {link!r}, {{cite}} shows {role!r}"


def test_the_converter_writes_the_text_the_site_shows(site_texts):
    for group, (role, _) in site_texts.items():
        assert plain(citation_text(group.split(","))) == role, group


def test_every_citation_link_in_the_pages_shows_the_site_text():
    for page in PAGES:
        for m in CITE_LINK.finditer(page.read_text()):
            expected = citation_text(m["keys"].split(","))
            assert m["text"] == expected, f"{page.name}: {m[0]} should read {expected}"


def test_the_converter_rewrites_citations_and_nothing_else():
    header = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n"
    page = header + textwrap.dedent('''\
        As {cite}`kingma2015adam` and {cite:p}`shallue2019dataparallelism,mccandlish2018largebatch`
        show; stale: [[Nobody, 1900]](#wang2017dcn).

        ```{code-cell} ipython3
        s = "{cite}`kingma2015adam`"
        ```
        ''')
    new, problems = convert_citations(page)
    assert not problems
    assert ("As [[Kingma and Ba, 2015]](#kingma2015adam) and "
            "[[McCandlish *et al.*, 2018, Shallue *et al.*, 2019]]"
            "(#shallue2019dataparallelism,mccandlish2018largebatch)\n"
            "show; stale: [[Wang *et al.*, 2017]](#wang2017dcn).") in new
    assert 's = "{cite}`kingma2015adam`"' in new       # code is left alone
    assert convert_citations(new) == (new, [])          # a second run changes nothing
    assert not CITE.search(new.split("```")[0])


def test_the_converter_refuses_keys_the_site_cannot_resolve(monkeypatch):
    text = "See {cite}`no_such_key2099`.\n"
    new, problems = convert_citations(text)
    assert new == text and "'no_such_key2099' is not in references.bib" in problems[0]
    new, problems = convert_citations("See {cite:t}`kingma2015adam`.\n")
    assert "other than {cite}" in problems[0]
    # a key in references.bib that no list of 8.16 names
    lists = [[k for k in keys if k != "kingma2015adam"] for keys in bibliography_lists()]
    monkeypatch.setattr(glue_to_eval, "bibliography_lists", lambda: lists)
    new, problems = convert_citations("See {cite}`kingma2015adam`.\n")
    assert "'kingma2015adam' is on no bibliography list" in problems[0]


def test_a_text_only_page_works_with_citations_and_is_skipped_by_the_glue_conversion():
    text = "# 8.17 Exercises\n\nWilson et al. (2017) {cite}`wilson2017marginal` compared\n"
    new, problems = convert_citations(text)
    assert not problems and "[[Wilson *et al.*, 2017]](#wilson2017marginal)" in new
    new, problems, _ = convert(text, "17-exercises.md")
    assert new == text and "no jupytext header" in problems[0]
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "glue_to_eval.py"), "--dry-run",
                             str(ROOT / "chapters" / "17-exercises.md")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "no jupytext header" in result.stdout
