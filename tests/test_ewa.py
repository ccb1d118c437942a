"""8.2: the exponentially weighted average against the chapter's worked numbers and an
independent reference (the explicit weighted sum)."""

import numpy as np
import pytest

from optbook.data import SEED_TEMPERATURES, delhi_temperatures
from optbook.ewa import effective_window, ewa, weights


def test_chapter_trace_beta_0_9():
    # The source's trace: V1 = 3.5, V2 = 6.45, V3 = 9.405 (printed 9.41), V4 printed 11.87
    # (it rounds V3 to 9.41 first; exact is 11.8645), V5 = 14.48.
    V = ewa(SEED_TEMPERATURES, 0.9)
    np.testing.assert_allclose(V[:3], [3.5, 6.45, 9.405], rtol=1e-12)
    assert round(V[2], 2) == 9.41 or round(V[2], 2) == 9.40  # the source rounds half up
    assert round(V[3], 4) == 11.8645
    assert abs(V[3] - 11.87) < 0.01  # the source's value is off only by carried rounding
    assert round(V[4], 2) == 14.48


def test_chapter_bias_corrected_values():
    V_hat = ewa(SEED_TEMPERATURES, 0.9, bias_correction=True)
    assert V_hat[0] == pytest.approx(35.0, rel=1e-12)  # 3.5 / 0.1
    assert V_hat[1] == pytest.approx(6.45 / 0.19, rel=1e-12)
    assert int(V_hat[1] * 10) / 10 == 33.9  # the source prints 33.9 (truncated)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.98, 0.999])
def test_matches_explicit_weighted_sum(beta):
    _, theta, _ = delhi_temperatures(days=120)
    V = ewa(theta, beta)
    for t in (1, 2, 17, 120):
        assert V[t - 1] == pytest.approx(np.dot(weights(beta, t), theta[:t]), rel=1e-10)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.999])
def test_bias_correction_recovers_a_constant_exactly(beta):
    V_hat = ewa(np.full(50, 35.0), beta, bias_correction=True)
    np.testing.assert_allclose(V_hat, 35.0, rtol=1e-10)


def test_weights_sum_to_one_minus_beta_power_t():
    for beta in (0.5, 0.9, 0.98):
        for t in (1, 5, 40):
            assert weights(beta, t).sum() == pytest.approx(1 - beta**t, rel=1e-12)


def test_effective_window_and_chapter_table():
    assert effective_window(0.9) == pytest.approx(10)
    assert effective_window(0.98) == pytest.approx(50)
    assert effective_window(0.5) == pytest.approx(2)


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_beta_is_named(beta):
    with pytest.raises(ValueError, match="Invalid beta"):
        ewa([1.0, 2.0], beta)


def test_bad_values_shape():
    with pytest.raises(ValueError, match="1-D"):
        ewa(np.ones((2, 2)), 0.9)
