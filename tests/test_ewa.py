"""8.3: the exponentially weighted average against the page's worked numbers and an
independent reference (the explicit weighted sum)."""

import numpy as np
import pytest

from optbook.book.data import SEED_TEMPERATURES, delhi_temperatures
from optbook.ewa import effective_window, ewa, newest_share, weights, window_length


def test_chapter_trace_beta_0_9():
    # The page's trace: V1 = 3.5, V2 = 6.45, V3 = 9.405, V4 = 11.8645 (11.87 if V3 is
    # rounded to 9.41 first, as one does by hand), V5 = 14.48.
    V = ewa(SEED_TEMPERATURES, 0.9)
    np.testing.assert_allclose(V[:3], [3.5, 6.45, 9.405], rtol=1e-12)
    assert round(V[2], 2) == 9.41 or round(V[2], 2) == 9.40  # 9.405: half up or even
    assert round(V[3], 4) == 11.8645
    assert round(0.9 * 9.41 + 0.1 * 34, 2) == 11.87  # V3 rounded half up by hand
    assert abs(V[3] - 11.87) < 0.01  # off only by the carried rounding
    assert round(V[4], 2) == 14.48


def test_chapter_bias_corrected_values():
    V_hat = ewa(SEED_TEMPERATURES, 0.9, bias_correction=True)
    assert V_hat[0] == pytest.approx(35.0, rel=1e-12)  # 3.5 / 0.1
    assert V_hat[1] == pytest.approx(6.45 / 0.19, rel=1e-12)
    assert round(V_hat[1], 2) == 33.95


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


# --- the share of the weight on the newest 1/(1 - beta) values -------------------------


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999])
def test_newest_share_matches_formula_and_direct_sum(beta):
    n = window_length(beta)
    assert n == int(np.ceil(1 / (1 - beta) - 1e-9))
    assert n - 1 < 1 / (1 - beta) <= n + 1e-9
    share = newest_share(beta)
    assert share == pytest.approx(1 - beta**n, rel=1e-12)
    # directly: the newest n weights of a long average (whose weights sum to ~1)
    w = weights(beta, 20_000)
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    assert w[-n:].sum() == pytest.approx(share, rel=1e-10)
    # with an explicit n as well
    assert newest_share(beta, 3) == pytest.approx(w[-3:].sum(), rel=1e-10)


def test_newest_share_63_to_65_percent_only_for_large_beta():
    # the page's statement: 63-65 % for the betas optimizers use (0.9 and up) ...
    for beta in (0.9, 0.95, 0.98, 0.99, 0.999):
        assert 0.63 <= newest_share(beta) <= 0.652
    assert round(100 * newest_share(0.9)) == 65
    assert round(100 * newest_share(0.999)) == 63
    # ... but not for small beta (the page's table shows beta = 0.5) ...
    assert newest_share(0.5) == pytest.approx(0.75)
    assert newest_share(0.7) == pytest.approx(1 - 0.7**4)   # window 3.33 -> 4 values
    # ... and the share falls towards 1 - 1/e as beta -> 1
    limit = 1 - np.exp(-1)
    shares = [newest_share(1 - 1 / n) for n in (10, 100, 1000, 10_000, 100_000)]
    assert all(a > b > limit for a, b in zip(shares, shares[1:]))
    assert shares[-1] == pytest.approx(limit, abs=1e-5)


def test_newest_share_rejects_bad_input():
    with pytest.raises(ValueError, match="Invalid beta"):
        newest_share(1.0)
    with pytest.raises(ValueError, match="n must be"):
        newest_share(0.9, -1)
