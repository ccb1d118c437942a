"""The kernel's side of grading: send a probe's value back as plain data.

This module runs in the student's kernel (the only part of the grader that does).  A
probe cell, which the grader writes after the notebook, defines a function holding the
probe's code and calls :func:`send`, which sends the function's value back as one
``display_data`` message of type :data:`MIME`: the cell's nonce and the value as JSON.

Nothing here is trusted.  Student code can patch this module, forge messages or send
anything at all; the grader treats what comes back as untrusted data, accepts exactly
one value per probe cell with that cell's nonce, from a cell that ended without an
error, and judges it in its own process against references the kernel never sees.  All
that forging can achieve is to send a value of its choosing, which earns the points only
if it is the right answer.

Plain data: ``None``, ``bool``, ``int``, ``float`` (NaN and infinities included), ``str``,
lists and dicts with string keys.  NumPy arrays and scalars and PyTorch tensors become
(nested) lists and numbers, tuples become lists.  Anything else is refused with a
``TypeError`` that names its type, and the check fails with that message.
"""

from __future__ import annotations

import json

MIME = "application/vnd.optbook.probe+json"
VALUE_LIMIT = 32 * 2**20  # characters of JSON one probe may send
ITEM_LIMIT = 4_000_000  # numbers, strings and containers in one value


def send(nonce: str, probe) -> None:
    """Run ``probe()`` and send its value, with ``nonce``, to the grader."""
    from IPython.display import display

    text = json.dumps(plain(probe()), allow_nan=True)
    if len(text) > VALUE_LIMIT:
        raise ValueError(f"the value is too large to send ({len(text):,} characters of JSON; "
                         f"at most {VALUE_LIMIT:,})")
    display({MIME: {"nonce": nonce, "json": text}}, raw=True)


def plain(value, _budget: list[int] | None = None):
    """``value`` as plain data (see the module's docstring), or TypeError."""
    budget = [ITEM_LIMIT] if _budget is None else _budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"the value is too large to send (more than {ITEM_LIMIT:,} items)")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (bool, int, float, str)):  # subclasses: their plain value
        return next(t(value) for t in (bool, int, float, str) if isinstance(value, t))
    if isinstance(value, (list, tuple)):
        return [plain(v, budget) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a dict with keys that are not strings cannot be sent; the probe should "
                            "convert it (e.g. to a list of [key, value] pairs)")
        return {str(k): plain(v, budget) for k, v in value.items()}
    if value is Ellipsis:
        raise TypeError("the value is still ..., the template's placeholder: fill in the answer")
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "tolist"):
        if getattr(value, "size", 1) > budget[0]:
            raise ValueError(f"the value is too large to send (more than {ITEM_LIMIT:,} items)")
        return plain(value.tolist(), budget)
    if module == "torch" and hasattr(value, "detach"):
        return plain(value.detach().cpu().numpy(), budget)
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent to the grader (plain data only: "
                    "numbers, strings, lists, dicts, arrays)")


def type_names(value) -> list[str]:
    """The qualified names of ``value``'s type and of its bases (``numpy.ndarray``,
    ``matplotlib.figure.Figure``, ...): what a probe sends when a judge needs a type."""
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__]


def cap_output(limit: int, mark: str) -> None:
    """Let each cell print at most ``limit`` characters (stdout and stderr together).

    A courtesy that keeps an honest flood of output cheap; the grader's side caps what it
    keeps on its own, whatever the kernel sends."""
    import sys

    from IPython import get_ipython

    printed = [0]

    def new_cell(*_args):
        printed[0] = 0

    def capped(write):
        def write_capped(text):
            before = printed[0]
            printed[0] += len(text)
            if before < limit:
                write(text[: limit - before])
                if printed[0] > limit:
                    write(mark)
            return len(text)

        return write_capped

    for stream in (sys.stdout, sys.stderr):
        stream.write = capped(stream.write)
    get_ipython().events.register("pre_execute", new_cell)
