"""Plumbing for the chapter pages (kept out of the pages themselves).

``glue`` wraps ``myst_nb.glue`` so a page can hand it whatever its computation returned
(NumPy scalars included) and use the number in the prose with
``{glue:text}`name:.2f```. myst-nb formats glued text from the value's ``repr``, which
for a NumPy scalar is ``np.float64(…)`` and cannot be formatted — so values are turned
into plain Python numbers first.
"""

from __future__ import annotations

import numbers

import numpy as np


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for use in the page's text (shown nowhere else)."""
    from myst_nb import glue as _glue

    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TypeError(f"glue({name!r}, …) expects a number, got {type(value).__name__}")
    _glue(name, value, display=display)

