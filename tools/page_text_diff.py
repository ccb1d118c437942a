"""The words that differ between two builds of a page (a converted page must read the same).

    .venv/bin/python tools/page_text_diff.py OLD.html NEW.html

Compares the text of the pages' <main> (scripts and styles left out), word by word, and
prints each difference with three words around it; exits 1 if there is any. Code cells
differ after a conversion (glue(...) became format(...)): read past those, the prose
must not differ.
"""

from __future__ import annotations

import difflib
import html
import re
import sys
from pathlib import Path


def words(path: Path) -> list[str]:
    page = path.read_text()
    page = page[page.index("<main"):page.index("</main>")]
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page)).split()


def main() -> None:
    old, new = (words(Path(p)) for p in sys.argv[1:3])
    differ = False
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op != "equal":
            differ = True
            print(f"{op}: {' '.join(old[max(0, i1 - 3):i2 + 3])}\n   -> {' '.join(new[max(0, j1 - 3):j2 + 3])}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
