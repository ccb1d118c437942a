"""Store each chapter page's header exactly as JupyterLab + jupytext write it on a save.

    .venv/bin/python tools/page_headers.py            # rewrite the headers that differ
    .venv/bin/python tools/page_headers.py --check    # list them; exit 1 if any differ

JupyterLab marks a page as modified as soon as its kernel starts: it sets the notebook's
``kernelspec`` to the running kernel's (name, display_name, language, in that order), and
autosave then writes the page back through jupytext, with the options of
``chapters/jupytext.toml``. A page whose header is already in that form comes back
byte for byte, so opening, running and saving it leaves ``git status`` clean.

Only the header (the front matter between the first two ``---`` lines) is rewritten; the
body is left as it is. The tool also names the pages whose *body* jupytext would write
differently (those would still change on a save; fix them in the page).
``saved_by_jupyterlab`` is what tests/test_page_headers.py compares with.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter with both ``---`` lines and its newline, the rest); ('', text) if none."""
    if not text.startswith("---\n"):
        return "", text
    end = text.index("\n---\n", 3) + len("\n---\n")
    return text[:end], text[end:]


def notebook_pages() -> list[Path]:
    """The chapter pages that are notebooks: those with a jupytext header."""
    return sorted(p for p in CHAPTERS.glob("*.md")
                  if "\njupytext:\n" in "\n" + split_front_matter(p.read_text())[0])


def running_kernelspec(name: str) -> dict:
    """The kernelspec JupyterLab writes into a notebook once kernel ``name`` runs."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(name)
    return {"name": name, "display_name": spec.display_name, "language": spec.language}


def saved_by_jupyterlab(page: Path) -> str:
    """The text jupytext writes when JupyterLab saves ``page`` after starting its kernel.

    Runs jupytext's own contents manager (the one JupyterLab uses) on a copy of the
    page next to a copy of chapters/jupytext.toml.
    """
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "chapters").mkdir()
        for path in (page, CHAPTERS / "jupytext.toml"):
            shutil.copy(path, Path(tmp) / "chapters" / path.name)
        manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=tmp)
        where = f"chapters/{page.name}"
        nb = manager.get(where)["content"]
        nb.metadata["kernelspec"] = running_kernelspec(nb.metadata["kernelspec"]["name"])
        nb.metadata["language_info"] = {"name": "python"}   # also set by the kernel
        manager.save({"type": "notebook", "format": "json", "content": nb}, where)
        return (Path(tmp) / where).read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="default: every notebook page")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a header differs")
    args = parser.parse_args()
    pages = [p.resolve() for p in args.pages] or notebook_pages()
    differ = []
    for page in pages:
        text = page.read_text()
        header, body = split_front_matter(text)
        saved_header, saved_body = split_front_matter(saved_by_jupyterlab(page))
        name = page.relative_to(ROOT)
        if saved_body != body:
            print(f"{name}: the body does not survive a save (jupytext writes it differently)")
        if saved_header != header:
            differ.append(name)
            if not args.check:
                page.write_text(saved_header + body)
            print(f"{name}: header {'differs' if args.check else 'rewritten'}")
    if args.check and differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
