"""Sliders that work in JupyterLab *and* in the static site, with no kernel.

A static page keeps the widgets' saved state, but nothing in it can run Python, so a
slider whose callback redraws a figure would be dead there.  What does run in the
browser is a *link* between two widget properties (``widgets.jslink``).  So every
slider in the book is built the same way:

1. precompute one frame (a PNG of a matplotlib figure) per slider value;
2. put the frames in a ``widgets.Stack``, which shows one child at a time;
3. ``jslink`` the slider's ``index`` to the stack's ``selected_index``.

With several sliders the stacks are nested: the outer stack is indexed by the first
slider, each of its children is a stack indexed by the second slider, and so on; the
k-th slider is linked to every stack at depth k.  The cost is one frame per
combination of values, so keep each slider to a handful of values.

A choice among names (an optimizer, a surface) reads better as a row of buttons or a
drop-down list than as a slider.  Those widgets have the same ``index`` property, so
the same link drives them: ``controls={"optimizer": "toggle", "surface": "dropdown"}``.

The same object works unchanged in JupyterLab, where the link runs in the front end too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import traitlets

from optbook.book.figures import FRAME_STYLE, figure_png


def _label(value, fmt: str) -> str:
    """Slider text for a value: numbers with ``fmt``, anything else (a name) as ``str``."""
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


#: The kinds of control an axis can have, and the widget that draws each.
CONTROLS = {"slider": widgets.SelectionSlider, "toggle": widgets.ToggleButtons,
            "dropdown": widgets.Dropdown}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _control(kind: str, options, index: int, description: str) -> widgets.Widget:
    """The widget for one axis: every kind has an ``index`` that the stacks follow."""
    common = dict(options=options, value=index, description=description,
                  style={"description_width": "initial"})
    if kind == "slider":
        # As wide as the column allows, at most 420 px: on a phone the track shrinks
        # and the value read-out stays on screen.
        return widgets.SelectionSlider(continuous_update=True, **common,
                                       layout=widgets.Layout(width="100%", max_width="420px"))
    if kind == "toggle":
        common["style"]["button_width"] = "auto"
        return widgets.ToggleButtons(**common)
    return widgets.Dropdown(layout=widgets.Layout(width="100%", max_width="280px"), **common)


def _frame(render, values: dict, dpi: int, density: int, text: str) -> widgets.Image:
    """One frame: ``render`` returns a Figure or the bytes of a PNG it drew itself.

    A Figure is drawn with ``density`` pixels per CSS pixel (2: sharp on high-DPI
    screens) and shown at the size it would have at ``dpi``; PNG bytes are shown as
    they are, or ``1 / density`` as wide if they say that they were drawn at a
    ``density`` (:class:`optbook.book.figures.FramePNG`)."""
    frame = render(**values)
    width = ""
    if isinstance(frame, (bytes, bytearray)):
        png = bytes(frame)
        if not png.startswith(PNG_SIGNATURE):
            raise ValueError(f"render({values}) returned bytes that are not a PNG image")
        if getattr(frame, "density", 1) != 1:
            width = str(round(png_size(png)[0] / frame.density))
    elif hasattr(frame, "savefig"):
        png = figure_png(frame, dpi=dpi * density)
        width = str(round(png_size(png)[0] / density))
    else:
        raise TypeError(f"render({values}) returned a {type(frame).__name__}; it must return "
                        "a matplotlib Figure or the bytes of a PNG image")
    return Frame(value=png, format="png", width=width, alt=text,
                 layout=widgets.Layout(max_width="100%", height="auto"))


class Frame(widgets.Image):
    """A slider frame: an ``Image`` that also carries its alternative text.

    ``Image`` has no alt text, and its ``tooltip`` breaks the widget's view in the
    browser (the view reads a ``description`` that images lack). ``alt`` travels in the
    widget's saved state; the book's build gives it to the ``<img>``
    (``_ext/slider_frames.py``)."""

    alt = traitlets.Unicode("", help="what the frame shows, for screen readers").tag(sync=True)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, read from a PNG's header."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _check_axes(axes: dict[str, Sequence]) -> dict[str, list]:
    if not axes:
        raise ValueError("frame_slider needs at least one slider: pass name=[values, ...]")
    out = {}
    for name, values in axes.items():
        values = list(values)
        if len(values) < 2:
            raise ValueError(f"slider {name!r} needs at least two values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"slider {name!r} has repeated values: {values!r}")
        out[name] = values
    return out


def frame_slider(render: Callable[..., object], *, labels: dict[str, str] | None = None,
                 initial: dict[str, object] | None = None, fmt: str = "g", dpi: int = 90,
                 density: int = 2, controls: dict[str, str] | None = None,
                 style: dict | None = FRAME_STYLE, **axes: Sequence) -> widgets.VBox:
    r"""Sliders over precomputed frames, linked in the browser.

    ``render(**values)`` must return a matplotlib ``Figure`` for one combination of
    slider values (or the bytes of a PNG image it rendered itself); it is called once
    per combination, up front.  Each keyword in ``axes`` names a slider and lists its
    values; ``labels`` gives the text shown beside each slider (e.g. ``{"beta": "β"}``)
    and ``initial`` the starting values.  ``controls`` turns an axis into another kind
    of control (:data:`CONTROLS`): ``"toggle"`` for a row of buttons, ``"dropdown"`` for
    a drop-down list; the default is ``"slider"``. A Figure is shown at the size it has
    at ``dpi`` and drawn with ``density`` times as many pixels each way (sharp on
    high-DPI screens). Every frame is drawn with the rcParams ``style``: by default
    :data:`optbook.book.figures.FRAME_STYLE`, whose larger text stays readable when a phone
    shrinks the frame to its column (``None`` draws with the page's own style).

    >>> import matplotlib.pyplot as plt
    >>> def render(beta):
    ...     fig, ax = plt.subplots(); ax.set_title(str(beta)); return fig
    >>> box = frame_slider(render, beta=[0.5, 0.9, 0.99], labels={"beta": "β"})
    >>> slider, stack = box.children
    >>> len(stack.children), slider.description
    (3, 'β')
    >>> box = frame_slider(render, beta=[0.5, 0.9], controls={"beta": "toggle"})
    >>> type(box.children[0]).__name__
    'ToggleButtons'
    """
    axes = _check_axes(axes)
    labels = labels or {}
    initial = initial or {}
    controls = controls or {}
    names = list(axes)
    unknown = set(initial) - set(names)
    if unknown:
        raise ValueError(f"initial value given for unknown slider(s): {sorted(unknown)}")
    unknown = set(controls) - set(names)
    if unknown:
        raise ValueError(f"control kind given for unknown slider(s): {sorted(unknown)}")
    for name, kind in controls.items():
        if kind not in CONTROLS:
            raise ValueError(f"control {name!r} has unknown kind {kind!r}; choose one of "
                             f"{', '.join(map(repr, CONTROLS))}")

    sliders = []
    for name in names:
        values = axes[name]
        start = initial.get(name, values[len(values) // 2])
        if start not in values:
            raise ValueError(f"initial {name}={start!r} is not one of the slider's values {values!r}")
        sliders.append(_control(controls.get(name, "slider"),
                                [(_label(v, fmt), i) for i, v in enumerate(values)],
                                values.index(start), labels.get(name, name)))

    if density not in (1, 2, 3):
        raise ValueError(f"density must be 1, 2 or 3 pixels per CSS pixel, got {density!r}")
    def describe(combo) -> str:
        """Alternative text of a frame: the figure for the values that select it."""
        return "Figure for " + ", ".join(
            f"{labels.get(n, n)} = {_label(axes[n][i], fmt)}" for n, i in zip(names, combo))

    with plt.rc_context(style or {}):
        images = {
            combo: _frame(render, {n: axes[n][i] for n, i in zip(names, combo)}, dpi,
                          density, describe(combo))
            for combo in itertools.product(*(range(len(axes[n])) for n in names))
        }

    def build(depth: int, prefix: tuple[int, ...]):
        """The stack for one level of nesting; returns it and registers it for linking."""
        if depth == len(names):
            return images[prefix]
        children = [build(depth + 1, prefix + (i,)) for i in range(len(axes[names[depth]]))]
        stack = widgets.Stack(children=children, selected_index=sliders[depth].index)
        stacks_at_depth[depth].append(stack)
        return stack

    stacks_at_depth: list[list[widgets.Stack]] = [[] for _ in names]
    root = build(0, ())
    links = [widgets.jslink((slider, "index"), (stack, "selected_index"))
             for slider, stacks in zip(sliders, stacks_at_depth) for stack in stacks]

    box = widgets.VBox([*sliders, root])
    box._optbook_links = links  # keep the links alive with the widget
    box._optbook_grid = [(labels.get(n, n), [_label(v, fmt) for v in axes[n]]) for n in names]
    return box


def grid_sentence(box: widgets.VBox) -> str:
    """One sentence that says which values the frames of ``box`` (a :func:`frame_slider`)
    were precomputed for, taken from the lists the frames were made from.

    >>> import matplotlib.pyplot as plt
    >>> box = frame_slider(lambda beta: plt.figure(figsize=(1, 1)), beta=[0.5, 0.9, 0.99],
    ...                    labels={"beta": "β"})
    >>> grid_sentence(box)
    'The slider moves between 3 precomputed frames, one for each value of β: 0.5, 0.9, 0.99.'
    """
    grid = box._optbook_grid
    frames = 1
    for _, values in grid:
        frames *= len(values)
    if len(grid) == 1:
        (label, values), = grid
        return (f"The slider moves between {frames} precomputed frames, one for each "
                f"value of {label}: {', '.join(values)}.")
    parts = [f"{label} ({len(values)} values: {', '.join(values)})" for label, values in grid]
    return (f"The controls move between {frames} precomputed frames, one for each "
            f"combination of {', '.join(parts[:-1])} and {parts[-1]}.")
