"""How many to call: the expected profit of calling the top k of the ranked list.

Each listed customer's ``priority`` is the expected value the contact saves net of
what it costs (:func:`churnguard.outreach.decide`: ``probability x stake x save_rate -
contact_cost``), so calling the top k of the list in rank order is expected to earn
the sum of their priorities. :func:`profit_curve` takes the list ranked without
``--capacity`` (treatment rows, per-action caps applied) and returns that sum at every
k, the k that maximises it and what a given capacity earns. The policy lists only
customers whose priority is positive, so under the packaged rules the curve rises to
the end of the uncapped list; a capacity below that leaves the rest of the curve's
money uncollected, and the output says how much. Rules whose priorities can be
negative (an uplift model's) make the maximum fall inside the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ProfitCurve", "profit_curve"]


@dataclass(frozen=True)
class ProfitCurve:
    """Cumulative expected profit of calling the top k of a ranked list.

    Attributes
    ----------
    cumulative : ndarray
        ``cumulative[k]``: the expected profit of calling the first k customers,
        ``k = 0 .. n`` (``cumulative[0] = 0``).

    Examples
    --------
    >>> curve = ProfitCurve(np.array([0.0, 5.0, 8.0, 7.0]))
    >>> curve.best_k, curve.best_profit, curve.at(1), curve.at(10), curve.n
    (2, 8.0, 5.0, 7.0, 3)
    """

    cumulative: np.ndarray

    @property
    def n(self) -> int:
        """Customers on the uncapped list."""
        return len(self.cumulative) - 1

    @property
    def best_k(self) -> int:
        """The fewest calls that reach the highest expected profit."""
        return int(np.argmax(self.cumulative))

    @property
    def best_profit(self) -> float:
        """The highest expected profit over k."""
        return float(self.cumulative[self.best_k])

    def at(self, k: int | None) -> float:
        """The expected profit of calling the top `k` (None or beyond the list: all of it)."""
        k = self.n if k is None else min(max(int(k), 0), self.n)
        return float(self.cumulative[k])


def profit_curve(priority) -> ProfitCurve:
    """The expected profit curve of a list whose priorities are given in rank order.

    Parameters
    ----------
    priority : array-like of float
        Each customer's priority (expected value saved less the contact cost), in the
        order of the list ranked without an overall capacity.

    Returns
    -------
    ProfitCurve

    Examples
    --------
    >>> curve = profit_curve([9.0, 4.0, 0.5, -2.0])
    >>> curve.cumulative.tolist(), curve.best_k, curve.best_profit
    ([0.0, 9.0, 13.0, 13.5, 11.5], 3, 13.5)
    """
    values = np.asarray(priority, dtype="float64")
    return ProfitCurve(np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))]))
