"""Small data sets the chapter's pages use, all generated locally (no downloads)."""

from __future__ import annotations

import numpy as np

#: The five daily temperatures (°C) of the chapter's worked EWA example (section 8.3).
SEED_TEMPERATURES = (35.0, 33.0, 36.0, 34.0, 38.0)


#: Rounded monthly normals of Delhi's daily maximum temperature (°C), January first.
_MONTHLY_MAX_C = (21, 24, 30, 36, 40, 39, 35, 34, 34, 33, 28, 23)


def delhi_temperatures(days: int = 365, seed: int = 8, noise: float = 2.5):
    """A synthetic year of daily maximum temperatures shaped like Delhi's climate.

    Not measured data: a smooth seasonal trend through rounded monthly normals of
    Delhi's daily maximum (about 21 °C in January, 40 °C in May, a monsoon dip in
    July–August), plus Gaussian day-to-day noise of standard deviation ``noise``.
    Returns ``(day, temperature, trend)`` arrays, days numbered from 1.
    """
    if days < 1:
        raise ValueError(f"Invalid days: {days} (must be at least 1)")
    rng = np.random.default_rng(seed)
    day = np.arange(1, days + 1)
    mid_month = 15.2 + 30.4 * np.arange(12)
    trend = np.interp((day - 1) % 365 + 1, mid_month, _MONTHLY_MAX_C, period=365.0)
    temperature = trend + noise * rng.standard_normal(days)
    return day, temperature, trend
