"""How many to call: the expected profit curve of the list, and the EMP of the churn model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from churnguard.config import load_outreach_rules
from churnguard.outreach import profit_curve
from churnguard.training.emp import expected_maximum_profit


def test_the_curve_is_the_cumulative_priority_and_peaks_where_priorities_turn_negative():
    curve = profit_curve([12.0, 7.5, 3.0, -1.0, -4.0])
    np.testing.assert_allclose(curve.cumulative, [0.0, 12.0, 19.5, 22.5, 21.5, 17.5])
    assert (curve.best_k, curve.best_profit) == (3, 22.5)
    assert curve.at(2) == 19.5 and curve.at(None) == 17.5 and curve.at(99) == 17.5


def test_an_empty_list_earns_nothing():
    curve = profit_curve([])
    assert (curve.n, curve.best_k, curve.best_profit) == (0, 0, 0.0)


# --------------------------------------------------------------------------- EMP


def _emp_by_brute_force(y, score, *, clv, d, f, alpha, beta, n_grid=40_001):
    """Every threshold's profit for each gamma on a fine grid, the best one, integrated against Beta."""
    y = np.asarray(y, dtype=float)
    pi0, pi1 = y.mean(), 1 - y.mean()
    thresholds = np.r_[np.inf, np.unique(score)[::-1]]
    f0 = np.array([(score >= t)[y == 1].mean() for t in thresholds])
    f1 = np.array([(score >= t)[y == 0].mean() for t in thresholds])
    delta, phi = d / clv, f / clv
    gamma = np.linspace(0.0, 1.0, n_grid)
    profit = clv * ((gamma[:, None] * (1 - delta) - phi) * pi0 * f0[None, :] - (delta + phi) * pi1 * f1[None, :])
    best = profit.max(axis=1)
    return np.trapezoid(best * stats.beta.pdf(gamma, alpha, beta), gamma)


@pytest.mark.parametrize("seed, clv, d, f, alpha, beta", [
    (0, 200.0, 10.0, 1.0, 6.0, 14.0),     # the paper's defaults
    (1, 500.0, 0.0, 6.0, 6.0, 14.0),      # churnguard's: no offer, a phone call
    (2, 80.0, 20.0, 5.0, 2.0, 3.0),       # a costly offer, a wide acceptance rate
])
def test_emp_equals_a_brute_force_integration_over_the_acceptance_rate(seed, clv, d, f, alpha, beta):
    rng = np.random.default_rng(seed)
    n = 600
    y = rng.random(n) < 0.2
    # A noisy score with ties (rounded), so the ROC has steps and a non-trivial hull.
    score = np.round(y * 0.8 + rng.normal(0, 0.6, n), 1)
    got = expected_maximum_profit(y, score, clv=clv, offer_cost=d, contact_cost=f, alpha=alpha, beta=beta)
    expected = _emp_by_brute_force(y, score, clv=clv, d=d, f=f, alpha=alpha, beta=beta)
    assert got.emp == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert 0.0 <= got.share_contacted <= 1.0


def test_emp_never_falls_below_contacting_nobody_and_a_better_score_earns_more():
    rng = np.random.default_rng(4)
    y = rng.random(2_000) < 0.1
    noise = rng.normal(0, 1, 2_000)
    weak = expected_maximum_profit(y, y * 0.3 + noise, clv=200, offer_cost=10, contact_cost=1)
    strong = expected_maximum_profit(y, y * 2.0 + noise, clv=200, offer_cost=10, contact_cost=1)
    useless = expected_maximum_profit(y, noise, clv=200, offer_cost=50, contact_cost=30)
    assert strong.emp > weak.emp > 0
    assert useless.emp >= 0.0


def test_emp_does_not_depend_on_row_order():
    rng = np.random.default_rng(5)
    y = rng.random(500) < 0.3
    score = np.round(rng.random(500) + y * 0.5, 2)
    order = rng.permutation(500)
    a = expected_maximum_profit(y, score, clv=100, offer_cost=5, contact_cost=2)
    b = expected_maximum_profit(y[order], score[order], clv=100, offer_cost=5, contact_cost=2)
    assert a.emp == pytest.approx(b.emp, rel=1e-12) and a.share_contacted == pytest.approx(b.share_contacted)


def test_churn_emp_takes_clv_and_costs_from_the_rules():
    from churnguard.training.fit import churn_emp

    rng = np.random.default_rng(6)
    y = (rng.random(400) < 0.25).astype(int)
    test = pd.DataFrame({"label": y, "customers_value": 300.0})
    score = y + rng.normal(0, 0.5, 400)
    rules = replace(load_outreach_rules(), offer_cost=15.0, emp_alpha=3.0, emp_beta=7.0)
    m = churn_emp(test, {"model": score}, rules)
    direct = expected_maximum_profit(y, score, clv=300.0, offer_cost=15.0, contact_cost=rules.contact_cost("phone"),
                                     alpha=3.0, beta=7.0)
    assert m["emp_clv"] == 300.0 and m["model_emp"] == direct.emp
