"""Plain-text log-axis labels: the same ticks as matplotlib's, without mathtext."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from optbook.plotting import _decade_label, plain_log_axis  # noqa: E402

SUPER = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def value_of(label: str) -> float:
    mantissa, _, exponent = label.partition("10")
    mantissa = mantissa.rstrip("×") or "1"
    return float(mantissa) * 10.0 ** int(exponent.translate(SUPER))


@pytest.mark.parametrize("value, label", [(1e-5, "10⁻⁵"), (1.0, "10⁰"), (100.0, "10²"),
                                          (0.03, ""), (0.0, ""), (-10.0, "")])
def test_decade_labels(value, label):
    assert _decade_label(value) == label


@pytest.mark.parametrize("data", [[1e-6, 1.0, 1e3], [0.2, 0.5, 0.9], [3e-9, 2e-8, 5e-8]])
def test_labels_name_the_ticks_they_sit_on(data):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], data)
    ax.set_yscale("log")
    plain_log_axis(ax)
    fig.canvas.draw()
    labelled = [(t.get_text(), tick) for minor in (False, True)
                for t, tick in zip(ax.get_yticklabels(minor=minor), ax.get_yticks(minor=minor))
                if t.get_text()]
    low, high = ax.get_ylim()
    visible = [(text, tick) for text, tick in labelled if low <= tick <= high]
    assert len(visible) >= 2, labelled          # an axis never ends up unlabelled
    for text, tick in labelled:
        assert "$" not in text
        assert value_of(text) == pytest.approx(tick, rel=1e-9)
    plt.close(fig)
