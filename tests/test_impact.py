"""What past outreach saved: intervals, rows per campaign and segment, the too-small rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnguard.config import load_outreach_rules
from churnguard.impact import (
    IMPACT_COLUMNS,
    NothingToMeasure,
    customers_needed,
    impact_metrics,
    impact_section,
    measure_impact,
    newcombe_interval,
)

LIST_DATE = pd.Timestamp("2026-01-05")


def _world(n_treatment=300, n_control=100, p_treatment=0.2, p_control=0.5, *, seed=0, list_date=LIST_DATE,
           segments=None, end=pd.Timestamp("2026-09-01")):
    """Customers whose churn in the 90 days after `list_date` is drawn at each group's rate, and their log."""
    rng = np.random.default_rng(seed)
    n = n_treatment + n_control
    ids = [f"c{i:04d}" for i in range(n)]
    group = np.array(["treatment"] * n_treatment + ["control"] * n_control)
    rate = np.where(group == "treatment", p_treatment, p_control)
    churned = rng.random(n) < rate
    days = rng.integers(0, 90, n)
    customers = pd.DataFrame({
        "customer_id": ids, "value": np.round(rng.uniform(50, 150, n), 2),
        "churn_date": [list_date + pd.Timedelta(days=int(d)) if c else pd.NaT for c, d in zip(churned, days)],
    })
    if segments is not None:
        customers["segment"] = [segments[i % len(segments)] for i in range(n)]
    log = pd.DataFrame({"customer_id": ids, "list_date": list_date, "action": "retention_call", "group": group,
                        "channel": "phone", "offer_cost": np.nan})
    usage = pd.DataFrame({"customer_id": ids[:1], "timestamp": [end - pd.Timedelta(days=1)], "event": "login"})
    return {"customers": customers, "outreach_log": log, "usage": usage}


def test_newcombe_interval_matches_newcombes_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
    cases = [((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090)),
             ((5, 56, 0, 29), (-0.0381, 0.1926))]
    for (x1, n1, x2, n2), expected in cases:
        low, high = newcombe_interval(x1, n1, x2, n2)
        assert (round(float(low), 4), round(float(high), 4)) == expected


@pytest.mark.parametrize("n_1, n_2, p_1, p_2", [(30, 30, 0.1, 0.2), (60, 20, 0.05, 0.15), (200, 40, 0.3, 0.3),
                                                 (25, 25, 0.02, 0.08)])
def test_newcombe_interval_keeps_its_coverage_at_small_counts(n_1, n_2, p_1, p_2):
    rng = np.random.default_rng(19)
    x1, x2 = rng.binomial(n_1, p_1, 20_000), rng.binomial(n_2, p_2, 20_000)
    low, high = newcombe_interval(x1, n_1, x2, n_2)
    coverage = np.mean((low <= p_1 - p_2) & (p_1 - p_2 <= high))
    # Wald's interval on the same draws, for contrast: it collapses at zero events.
    r1, r2 = x1 / n_1, x2 / n_2
    half = 1.96 * np.sqrt(r1 * (1 - r1) / n_1 + r2 * (1 - r2) / n_2)
    wald = np.mean((r1 - r2 - half <= p_1 - p_2) & (p_1 - p_2 <= r1 - r2 + half))
    assert coverage >= 0.93
    assert coverage >= wald - 0.005


def test_customers_needed_is_where_the_interval_starts_to_exclude_zero():
    x_t, n_t, x_c, n_c = 30, 200, 30, 100  # 15% against 30%, a 2:1 split
    needed = customers_needed(x_t, n_t, x_c, n_c)
    low, high = newcombe_interval(x_t, n_t, x_c, n_c)
    assert needed == 0 and high < 0
    x_t, n_t, x_c, n_c = 9, 60, 9, 30  # same rates, a third of the customers: not enough
    needed = customers_needed(x_t, n_t, x_c, n_c)
    assert needed > 0
    grown = (n_t + n_c + needed) / (n_t + n_c)
    assert newcombe_interval(x_t * grown, n_t * grown, x_c * grown, n_c * grown)[1] < 0
    short = (n_t + n_c + needed - 3) / (n_t + n_c)
    assert newcombe_interval(x_t * short, n_t * short, x_c * short, n_c * short)[1] >= 0


def test_equal_rates_need_no_finite_number_of_customers():
    assert customers_needed(10, 100, 5, 50) is None


def test_a_clear_effect_is_measured_with_saved_customers_and_their_interval():
    result = measure_impact(_world(seed=1))
    row = result.campaigns.iloc[0]
    assert list(result.rows.columns) == IMPACT_COLUMNS
    assert row["status"] == "measured" and row["n_treatment"] == 300 and row["n_control"] == 100
    assert row["saved"] == pytest.approx(-row["difference"] * 300, abs=0.01)
    assert row["saved_low"] == pytest.approx(-row["difference_high"] * 300, abs=0.01)
    assert row["saved_low"] < row["saved"] < row["saved_high"]
    assert row["value_saved_low"] < row["value_saved"] < row["value_saved_high"]
    assert row["more_needed"] == 0


def test_churn_on_the_last_day_of_the_horizon_is_not_counted_but_on_the_list_date_it_is():
    tables = _world(n_treatment=40, n_control=40, p_treatment=0.0, p_control=0.0)
    customers = tables["customers"]
    customers.loc[0, "churn_date"] = LIST_DATE  # treatment: churned on the list date itself
    customers.loc[40, "churn_date"] = LIST_DATE + pd.Timedelta(days=90)  # control: the day after the window
    row = measure_impact(tables).campaigns.iloc[0]
    assert (row["treatment_events"], row["control_events"]) == (1, 0)


def test_a_campaign_whose_horizon_has_not_passed_is_provisional_and_not_counted():
    tables = _world(seed=2, end=LIST_DATE + pd.Timedelta(days=40))
    tables["customers"]["churn_date"] = tables["customers"]["churn_date"].where(
        tables["customers"]["churn_date"] < LIST_DATE + pd.Timedelta(days=40))
    result = measure_impact(tables)
    row = result.campaigns.iloc[0]
    assert row["status"] == "provisional"
    assert "40 of 90 days seen" in row["reason"]
    assert result.n_measured == 0


def test_a_too_small_campaign_leaves_saved_empty_and_says_how_many_more_customers_it_needs():
    result = measure_impact(_world(n_treatment=40, n_control=8, p_treatment=0.2, p_control=0.4, seed=3))
    row = result.campaigns.iloc[0]
    assert row["status"] == "too_small"
    assert row["more_needed"] > 0
    assert pd.isna(row["saved"]) and pd.isna(row["value_saved"]) and pd.isna(row["cost_per_saved"])
    assert not pd.isna(row["difference_low"])  # the interval itself is shown: it holds zero
    assert f"about {row['more_needed']:,} more customers" in row["reason"]
    assert result.refusals() == [f"2026-01-05 retention_call: too small: {row['reason']}"]


def test_a_significant_effect_on_a_group_below_the_minimum_is_too_small():
    result = measure_impact(_world(n_treatment=40, n_control=12, p_treatment=0.0, p_control=1.0, seed=4))
    row = result.campaigns.iloc[0]
    assert row["difference_high"] < 0
    assert row["status"] == "too_small" and "needs at least 30" in row["reason"]
    # The split stays 40:12: control grows to 30 (x 2.5), treatment with it to 100.
    assert row["more_needed"] == 60 + 18


def test_segments_get_rows_of_their_own_beside_all():
    result = measure_impact(_world(n_treatment=600, n_control=200, seed=5, segments=["consumer", "business"]))
    rows = result.rows
    assert rows["segment"].tolist() == ["all", "business", "consumer"]
    parts = rows[rows["segment"] != "all"]
    assert parts["n_treatment"].sum() == 600 and parts["n_control"].sum() == 200


def test_contact_costs_follow_the_rules_channels_plus_offers_and_control_costs_nothing():
    tables = _world(n_treatment=100, n_control=100, seed=6)
    log = tables["outreach_log"]
    log.loc[:49, "channel"] = "email"
    log.loc[0, "offer_cost"] = 25.0
    log.loc[1, "channel"] = None  # the rules' default channel (phone)
    rules = load_outreach_rules()
    row = measure_impact(tables, rules=rules).campaigns.iloc[0]
    expected = 49 * rules.contact_cost("email") + 51 * rules.contact_cost("phone") + 25.0
    assert row["cost"] == pytest.approx(expected)


def test_maintenance_actions_are_measured_on_repairs_of_the_customers_assets():
    ids = [f"m{i:03d}" for i in range(80)]
    customers = pd.DataFrame({"customer_id": ids})
    assets = pd.DataFrame({"asset_id": [f"a{i}" for i in range(80)], "customer_id": ids,
                           "install_date": pd.Timestamp("2024-01-01")})
    failed = [0, 1, 2, 40, 41, 42, 43, 44, 45]  # 3 of the 40 visited, 6 of the 40 in control
    events = pd.DataFrame({"asset_id": [f"a{i}" for i in failed] + ["a5"],
                           "timestamp": [LIST_DATE + pd.Timedelta(days=10)] * len(failed) + [pd.Timestamp("2026-08-01")],
                           "kind": ["repair"] * len(failed) + ["preventive"]})
    log = pd.DataFrame({"customer_id": ids, "list_date": LIST_DATE, "action": "maintenance_visit",
                        "group": ["treatment"] * 40 + ["control"] * 40})
    result = measure_impact({"customers": customers, "assets": assets, "service_events": events, "outreach_log": log})
    row = result.campaigns.iloc[0]
    assert row["outcome"] == "repair or failure"
    assert (row["treatment_events"], row["control_events"]) == (3, 6)


def test_a_lapsed_buyer_on_a_win_back_list_has_an_outcome_under_inactivity_churn():
    ids = ["w1", "w2"]
    customers = pd.DataFrame({"customer_id": ids})
    purchases = pd.DataFrame({"customer_id": ["w1", "w2", "w1"], "amount": 10.0,
                              "timestamp": pd.to_datetime(["2023-01-10", "2023-02-01", "2026-02-01"])})
    log = pd.DataFrame({"customer_id": ids, "list_date": LIST_DATE, "action": "win_back",
                        "group": ["treatment", "control"]})
    tables = {"customers": customers, "purchases": purchases, "outreach_log": log,
              "usage": pd.DataFrame({"customer_id": ["w1"], "timestamp": [pd.Timestamp("2026-09-01")], "event": "x"})}
    row = measure_impact(tables, min_group=1).campaigns.iloc[0]
    assert row["outcome"] == "inactivity churn"
    assert (row["n_excluded"], row["treatment_events"], row["control_events"]) == (0, 0, 1)


def test_impact_rows_do_not_depend_on_the_order_of_the_log():
    tables = _world(n_treatment=300, n_control=100, seed=7, segments=["a", "b", "c"])
    shuffled = dict(tables, outreach_log=tables["outreach_log"].sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(measure_impact(tables).rows, measure_impact(shuffled).rows)


def test_a_list_date_without_lists_and_a_missing_log_are_nothing_to_measure():
    tables = _world(seed=8)
    with pytest.raises(NothingToMeasure, match="no outreach_log rows with list_date 2026-02-01"):
        measure_impact(tables, list_date="2026-02-01")
    with pytest.raises(NothingToMeasure, match="no outreach_log table"):
        measure_impact({k: v for k, v in tables.items() if k != "outreach_log"})


def test_metrics_are_named_per_action_with_the_list_date_as_step():
    result = measure_impact(_world(seed=9))
    names = {(name, step) for name, _, step in impact_metrics(result)}
    assert ("retention_call.saved_low", 20260105) in names and ("retention_call.measured", 20260105) in names


def test_the_report_section_shows_each_campaign_and_the_method():
    result = measure_impact(_world(seed=10, segments=["x", "y"]))
    html = impact_section(result)
    assert html.count('data-status="measured"') >= 1
    assert "Newcombe" in html and 'id="impact-segments"' in html


def test_on_generated_worlds_the_interval_covers_the_true_customers_saved():
    from churnguard.synthetic import generate_world

    covered = total = 0
    for seed in (1, 2, 3):
        world = generate_world(2000, seed=seed, campaigns=True)
        tables = {k: v for k, v in world.items() if k not in ("truth", "uplift_truth")}
        campaigns = measure_impact(tables).campaigns
        truth = world["uplift_truth"]
        treated = truth[truth["group"] == "treatment"]
        true_saved = (-treated.groupby("list_date")["treatment_effect"].sum()).rename("true_saved")
        true_saved.index = pd.to_datetime(true_saved.index).astype("datetime64[us]")
        rows = campaigns.join(true_saved, on="list_date")
        assert rows["true_saved"].notna().all() and (rows["true_saved"] > 0).all()
        # Newcombe's interval of the difference, scaled by the treated customers (a too-small
        # row leaves its saved columns empty, but its interval is there).
        low, high = -rows["difference_high"] * rows["n_treatment"], -rows["difference_low"] * rows["n_treatment"]
        covered += int(((low <= rows["true_saved"]) & (rows["true_saved"] <= high)).sum())
        total += len(rows)
    assert total == 12
    assert covered >= 11  # 95% intervals: one miss in twelve is within chance; benchmarks/README.md has 120
