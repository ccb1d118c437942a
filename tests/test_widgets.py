"""The frame sliders: one precomputed frame per value, linked in the front end."""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from optbook.book.widgets import frame_slider, png_size


def _render(**values):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.set_title(repr(sorted(values.items())))
    return fig


def _links(box):
    return box._optbook_links


def test_one_slider_one_frame_per_value():
    calls = []

    def render(beta):
        calls.append(beta)
        return _render(beta=beta)

    box = frame_slider(render, beta=[0.5, 0.9, 0.99], labels={"beta": "β"}, initial={"beta": 0.99})
    slider, stack = box.children
    assert calls == [0.5, 0.9, 0.99]
    assert isinstance(stack, widgets.Stack) and len(stack.children) == 3
    assert all(isinstance(c, widgets.Image) and c.value[:4] == b"\x89PNG" for c in stack.children)
    assert slider.index == 2 and stack.selected_index == 2
    assert [o[0] for o in slider.options] == ["0.5", "0.9", "0.99"]
    (link,) = _links(box)
    assert isinstance(link, widgets.widget_link.Link)
    assert link.source == (slider, "index") and link.target == (stack, "selected_index")


def test_two_sliders_nest_stacks_and_link_every_inner_stack():
    box = frame_slider(_render, beta1=[0.8, 0.9], beta2=[0.99, 0.999, 0.9999])
    s1, s2, outer = box.children
    assert len(outer.children) == 2
    assert all(len(inner.children) == 3 for inner in outer.children)
    targets = {(id(l.source[0]), id(l.target[0])) for l in _links(box)}
    assert (id(s1), id(outer)) in targets
    assert all((id(s2), id(inner)) in targets for inner in outer.children)
    # frames are distinct pictures, one per combination
    frames = [img.value for inner in outer.children for img in inner.children]
    assert len(set(frames)) == 6


@pytest.mark.parametrize("kwargs, message", [
    ({}, "at least one slider"),
    ({"beta": [0.9]}, "at least two values"),
    ({"beta": [0.9, 0.9]}, "repeated values"),
    ({"beta": [0.5, 0.9], "initial": {"beta": 0.7}}, "not one of the slider's values"),
    ({"beta": [0.5, 0.9], "initial": {"alpha": 0.1}}, "unknown slider"),
])
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        frame_slider(_render, **kwargs)


def test_named_values_are_labelled_by_name():
    box = frame_slider(_render, surface=["ravine", "rosenbrock"], alpha=[0.01, 0.1])
    s_surface, s_alpha, _ = box.children
    assert [o[0] for o in s_surface.options] == ["ravine", "rosenbrock"]
    assert [o[0] for o in s_alpha.options] == ["0.01", "0.1"]


def test_named_axes_can_be_buttons_or_a_drop_down_linked_like_sliders():
    box = frame_slider(_render, optimizer=["SGD", "Adam", "AdaGrad"], surface=["quadratic", "beale"],
                       alpha=[0.01, 0.1], controls={"optimizer": "toggle", "surface": "dropdown"},
                       labels={"alpha": "α"}, initial={"optimizer": "Adam"})
    toggle, dropdown, slider, outer = box.children
    assert isinstance(toggle, widgets.ToggleButtons) and isinstance(dropdown, widgets.Dropdown)
    assert isinstance(slider, widgets.SelectionSlider) and slider.description == "α"
    assert [o[0] for o in toggle.options] == ["SGD", "Adam", "AdaGrad"]
    assert [o[0] for o in dropdown.options] == ["quadratic", "beale"]
    assert toggle.index == 1 and outer.selected_index == 1
    # every control is linked by its index to every stack at its depth
    middle = list(outer.children)
    inner = [stack for m in middle for stack in m.children]
    links = {(id(l.source[0]), l.source[1], id(l.target[0]), l.target[1]) for l in _links(box)}
    assert (id(toggle), "index", id(outer), "selected_index") in links
    assert all((id(dropdown), "index", id(m), "selected_index") in links for m in middle)
    assert all((id(slider), "index", id(s), "selected_index") in links for s in inner)
    assert len(links) == 1 + len(middle) + len(inner)
    # the frame under (optimizer, surface, alpha) = (AdaGrad, beale, 0.01) is that combination's
    frame = outer.children[2].children[1].children[0]
    from optbook.book.figures import FRAME_STYLE, figure_png
    with plt.rc_context(FRAME_STYLE):   # frames are drawn in the frame style
        reference = _render(optimizer="AdaGrad", surface="beale", alpha=0.01)
        # drawn at twice the pixels (sharp on high-DPI screens), shown at the size of dpi=90
        assert frame.value == figure_png(reference, dpi=180)
        at_90 = png_size(figure_png(_render(optimizer="AdaGrad", surface="beale",
                                            alpha=0.01), dpi=90))
    assert abs(int(frame.width) - at_90[0]) <= 0.02 * at_90[0]  # tight bbox rounds


def test_png_size_reads_the_header_and_refuses_other_bytes():
    import io

    buffer = io.BytesIO()
    fig = plt.figure(figsize=(3, 2))
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    assert png_size(buffer.getvalue()) == (300, 200)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_density_must_be_a_small_whole_number():
    with pytest.raises(ValueError, match="density"):
        frame_slider(lambda beta: None, beta=[0.5, 0.9], density=0)


def test_render_may_return_png_bytes():
    from optbook.book.figures import figure_png

    pngs = {v: figure_png(_render(beta=v), dpi=40) for v in (0.5, 0.9)}
    box = frame_slider(lambda beta: pngs[beta], beta=[0.5, 0.9])
    _, stack = box.children
    assert [img.value for img in stack.children] == [pngs[0.5], pngs[0.9]]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"controls": {"beta": "knob"}}, ValueError, "unknown kind 'knob'"),
    ({"controls": {"gamma": "toggle"}}, ValueError, "unknown slider"),
    ({"render": lambda beta: b"GIF89a"}, ValueError, "not a PNG"),
    ({"render": lambda beta: "figure"}, TypeError, "must return a matplotlib Figure"),
])
def test_bad_controls_and_frames_are_explained(kwargs, error, message):
    render = kwargs.pop("render", _render)
    with pytest.raises(error, match=message):
        frame_slider(render, beta=[0.5, 0.9], **kwargs)


def test_every_frame_says_what_it_shows():
    """Each frame's alternative text names the slider values that select it."""
    def render(alpha, beta):
        fig, ax = plt.subplots()
        ax.set_title(f"{alpha} {beta}")
        return fig

    box = frame_slider(render, alpha=[0.1, 1.0], beta=[0.5, 0.9], labels={"beta": "β"},
                       fmt=".1f")
    stack = box.children[-1]
    texts = {image.alt for outer in stack.children for image in outer.children}
    assert texts == {f"Figure for alpha = {a}, β = {b}"
                     for a in ("0.1", "1.0") for b in ("0.5", "0.9")}


def test_frames_are_drawn_in_the_frame_style_unless_told_otherwise():
    """Frames are read on phones, shrunk to the column: frame_slider draws them with
    FRAME_STYLE's larger text; style=None keeps the page's own."""
    from optbook.book.figures import FRAME_STYLE

    sizes = []

    def render(beta):
        fig, ax = plt.subplots(figsize=(2, 1))
        sizes.append(ax.set_title("t").get_fontsize())
        return fig

    with plt.rc_context({"axes.titlesize": 7}):     # the page's own style
        frame_slider(render, beta=[0.5, 0.9])
        frame_slider(render, beta=[0.5, 0.9], style=None)
    assert sizes == [FRAME_STYLE["axes.titlesize"]] * 2 + [7] * 2


def test_png_bytes_drawn_at_a_density_are_shown_that_much_smaller():
    """A FramePNG says how many pixels it has per CSS pixel; plain bytes are shown as
    they are."""
    from optbook.book.figures import FramePNG, figure_png

    png = figure_png(_render(beta=1), dpi=80)
    width = png_size(png)[0]
    box = frame_slider(lambda beta: FramePNG(png, density=2) if beta else png, beta=[0, 1])
    plain, dense = box.children[-1].children
    assert plain.width == "" and dense.width == str(round(width / 2))
    assert dense.value == png and isinstance(FramePNG(png, 2), bytes)
