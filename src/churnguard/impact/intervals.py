"""Intervals for a difference of two proportions and of two means, and the group size a result needs.

The difference of churn rates between a treatment and a control group uses Newcombe's
hybrid score interval (Newcombe 1998, method 10): each rate gets its Wilson score
interval and the two are combined by the square-and-add rule. Unlike the Wald interval
it stays inside [-1, 1], does not collapse to a point at 0 or n events, and keeps close
to its nominal coverage with a few dozen customers per group
(``tests/test_impact.py::test_newcombe_interval_keeps_its_coverage_at_small_counts``).
Money (the value a campaign saved) is a mean over customers, not a proportion: it gets
a Wald interval for a difference of means with each group's own variance (Welch).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = ["customers_needed", "mean_difference_interval", "newcombe_interval", "wilson_interval", "z_value"]


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile of `confidence`.

    Examples
    --------
    >>> round(z_value(0.95), 4)
    1.96
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(events, n, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of the proportion ``events / n`` (NaN where n is 0).

    Examples
    --------
    >>> low, high = wilson_interval(0, 20)
    >>> float(low), round(float(high), 4)
    (0.0, 0.1611)
    """
    x = np.asarray(events, dtype="float64")
    n = np.asarray(n, dtype="float64")
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (x + z * z / 2.0) / (n + z * z)
        half = z * np.sqrt(np.clip(n * p * (1.0 - p), 0.0, None) + z * z / 4.0) / (n + z * z)
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def newcombe_interval(events_1, n_1, events_2, n_2, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for ``events_1 / n_1 - events_2 / n_2``.

    Parameters
    ----------
    events_1, n_1 : int or array
        Events and customers of the first group (treatment).
    events_2, n_2 : int or array
        Those of the second group (control).
    confidence : float, default=0.95

    Returns
    -------
    low, high : ndarray
        NaN where either group is empty.

    Examples
    --------
    Newcombe's own example (56/70 against 48/80; his Table II gives 0.0524 to 0.3339):

    >>> low, high = newcombe_interval(56, 70, 48, 80)
    >>> round(float(low), 4), round(float(high), 4)
    (0.0524, 0.3339)
    >>> low, high = newcombe_interval(0, 30, 0, 30)  # no events at all: still an interval, around 0
    >>> round(float(low), 4), round(float(high), 4)
    (-0.1135, 0.1135)
    """
    x1, n1 = np.asarray(events_1, dtype="float64"), np.asarray(n_1, dtype="float64")
    x2, n2 = np.asarray(events_2, dtype="float64"), np.asarray(n_2, dtype="float64")
    l1, u1 = wilson_interval(x1, n1, confidence=confidence)
    l2, u2 = wilson_interval(x2, n2, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def mean_difference_interval(sum_1, sum_sq_1, n_1, sum_2, sum_sq_2, n_2, *,
                             confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of two means with a Welch (unequal variances) Wald interval, from sums.

    Returns ``(difference, low, high)`` of ``mean_1 - mean_2``; NaN where a group has
    fewer than two customers.

    Examples
    --------
    >>> values_1, values_2 = np.array([0.0, 10.0, 0.0, 0.0]), np.array([10.0, 10.0, 0.0, 0.0])
    >>> d, low, high = mean_difference_interval(values_1.sum(), (values_1 ** 2).sum(), 4,
    ...                                         values_2.sum(), (values_2 ** 2).sum(), 4)
    >>> d, round(low, 2), round(high, 2)
    (-2.5, -9.98, 4.98)
    """
    if n_1 < 2 or n_2 < 2:
        return math.nan, math.nan, math.nan
    m1, m2 = sum_1 / n_1, sum_2 / n_2
    v1 = max(sum_sq_1 - n_1 * m1 * m1, 0.0) / (n_1 - 1)
    v2 = max(sum_sq_2 - n_2 * m2 * m2, 0.0) / (n_2 - 1)
    half = z_value(confidence) * math.sqrt(v1 / n_1 + v2 / n_2)
    return float(m1 - m2), float(m1 - m2 - half), float(m1 - m2 + half)


def customers_needed(events_1: int, n_1: int, events_2: int, n_2: int, *, confidence: float = 0.95,
                     min_group: int = 0) -> int | None:
    """How many more customers (both groups together, same split) make the interval exclude zero.

    The observed rates are held fixed and both groups grow by the same factor (the split
    between treatment and control stays as it is) until Newcombe's interval at those
    counts no longer contains zero: the size at which an effect as large as the one seen
    would be shown, about half the time (50% power; for 80% power multiply by
    ``((z + 0.84) / z) ** 2``, about 2.0 at 95%). Each group also needs at least
    `min_group` customers. 0 when the interval already excludes zero; None when no size
    would do (the two rates are equal, or a group is empty).

    Examples
    --------
    >>> customers_needed(10, 100, 15, 100)  # 10% against 15%: the interval still holds zero
    478
    >>> customers_needed(10, 100, 20, 100)  # 10% against 20%: it excludes zero already
    0
    >>> customers_needed(10, 100, 10, 100) is None  # no difference seen: no size shows one
    True
    >>> customers_needed(2, 10, 8, 10, min_group=30)  # significant already, but 30 per group are asked for
    40
    """
    if n_1 <= 0 or n_2 <= 0 or events_1 * n_2 == events_2 * n_1:
        return None

    def excludes_zero(k: float) -> bool:
        low, high = newcombe_interval(events_1 * k, n_1 * k, events_2 * k, n_2 * k, confidence=confidence)
        return bool(low > 0 or high < 0)

    floor_k = max(min_group / n_1, min_group / n_2, 1.0)
    if excludes_zero(floor_k):
        k = floor_k
    else:
        low, high = floor_k, 2.0 * floor_k
        while not excludes_zero(high):
            low, high = high, 2.0 * high
        # The interval narrows as both groups grow: bisect to whole customers.
        while (high - low) * (n_1 + n_2) > 0.5:
            mid = (low + high) / 2.0
            low, high = (low, mid) if excludes_zero(mid) else (mid, high)
        k = high
    return max(math.ceil(k * n_1 - 1e-9), n_1) + max(math.ceil(k * n_2 - 1e-9), n_2) - n_1 - n_2
