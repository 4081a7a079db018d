"""Training cutoffs come from the data, and the evaluation degrades honestly with short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnguard.labels import usable_cutoffs
from churnguard.training.splits import NotEnoughHistory, choose_hold_out


def _subscription_world(start: str, days: int, n: int = 60, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Daily logins from `start` for `days` days; a third of the customers churn at random dates."""
    rng = np.random.default_rng(seed)
    start_ts = pd.Timestamp(start)
    ids = [f"c{i:03d}" for i in range(n)]
    churn = [start_ts + pd.Timedelta(days=int(d)) if rng.random() < 0.35 else pd.NaT
             for d in rng.integers(10, days, n)]
    customers = pd.DataFrame({"customer_id": ids, "churn_date": pd.to_datetime(churn)})
    usage = pd.DataFrame({
        "customer_id": np.repeat(ids, 4),
        "timestamp": start_ts + pd.to_timedelta(rng.integers(0, days, 4 * n), unit="D"),
        "event": "login",
    })
    return {"customers": customers, "usage": usage}


@settings(max_examples=40, deadline=None)
@given(days=st.integers(20, 400), horizon=st.integers(7, 120), step=st.integers(1, 45),
       min_history=st.integers(0, 60), start=st.dates(min_value=pd.Timestamp("2020-01-01").date(),
                                                        max_value=pd.Timestamp("2025-01-01").date()))
def test_no_planned_cutoff_is_before_the_first_event_plus_min_history(days, horizon, step, min_history, start):
    tables = _subscription_world(str(start), days)
    first = tables["usage"]["timestamp"].min()
    plan = usable_cutoffs(tables, task="churn", horizon_days=horizon, n_cutoffs=12, step_days=step,
                        min_history_days=min_history)
    assert all(c >= first + pd.Timedelta(days=min_history) for c in plan.cutoffs)
    # Every planned label window is complete and every cutoff holds both classes.
    assert all(c + pd.Timedelta(days=horizon) <= plan.end for c in plan.cutoffs)
    assert all(0 < k < n for n, k in zip(plan.population, plan.positives))
    assert list(plan.cutoffs) == sorted(plan.cutoffs)


def test_newest_cutoff_is_as_of_minus_horizon_and_the_rest_step_back():
    tables = _subscription_world("2024-01-01", 300, n=200)
    as_of = pd.Timestamp("2024-10-15")
    plan = usable_cutoffs(tables, task="churn", horizon_days=30, n_cutoffs=4, step_days=7, as_of=as_of)
    assert plan.cutoffs[-1] == as_of - pd.Timedelta(days=30)
    assert [b - a for a, b in zip(plan.cutoffs, plan.cutoffs[1:])] == [pd.Timedelta(days=7)] * 3


def test_a_cutoff_with_a_single_class_is_skipped_with_its_reason():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
                              "churn_date": pd.to_datetime(["2024-05-10", None, None])})
    usage = pd.DataFrame({"customer_id": ["a", "b", "c"], "event": "login",
                          "timestamp": pd.to_datetime(["2024-01-01"] * 3)})
    plan = usable_cutoffs({"customers": customers, "usage": usage}, task="churn", horizon_days=30,
                        n_cutoffs=3, step_days=30, as_of=pd.Timestamp("2024-06-01"))
    assert [c.date().isoformat() for c in plan.cutoffs] == ["2024-05-02"]
    assert any("single class" in why for _, why in plan.skipped)


def test_too_short_a_history_says_how_many_days_are_missing():
    tables = _subscription_world("2024-01-01", 40)
    plan = usable_cutoffs(tables, task="churn", horizon_days=90, n_cutoffs=12)
    assert plan.cutoffs == ()
    assert "more days of history" in plan.shortfall()


def _stacked(n_cutoffs: int, n_customers: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cutoffs = pd.date_range("2024-01-01", periods=n_cutoffs, freq="30D")
    return pd.DataFrame({
        "customer_id": np.tile([f"c{i:03d}" for i in range(n_customers)], n_cutoffs),
        "cutoff": np.repeat(cutoffs, n_customers),
        "label": (rng.random(n_cutoffs * n_customers) < 0.2).astype(int),
    })


def test_long_history_gets_the_embargoed_time_hold_out():
    parts, evaluation = choose_hold_out(_stacked(10), horizon_days=90)
    assert evaluation.kind == "time_embargo" and "embargo" in evaluation.description
    frame = _stacked(10)
    assert frame.loc[parts == "test", "cutoff"].nunique() == 1


def test_three_cutoffs_inside_one_horizon_get_a_time_hold_out_without_embargo():
    _, evaluation = choose_hold_out(_stacked(3), horizon_days=90)
    assert evaluation.kind == "time" and "without embargo" in evaluation.description


@pytest.mark.parametrize("n_cutoffs", [1, 2])
def test_grouped_hold_out_shares_no_customer_with_training(n_cutoffs):
    frame = _stacked(n_cutoffs)
    parts, evaluation = choose_hold_out(frame, horizon_days=90)
    assert evaluation.kind == "grouped_customers"
    train = set(frame.loc[parts == "train", "customer_id"])
    held_out = set(frame.loc[parts == "test", "customer_id"])
    valid = set(frame.loc[parts == "valid", "customer_id"])
    assert held_out and train and not (train & held_out) and not (valid & held_out)


def test_too_few_positives_for_any_evaluation_is_an_insufficient_history_error():
    frame = _stacked(1, n_customers=30)
    frame["label"] = 0
    frame.loc[0, "label"] = 1
    with pytest.raises(NotEnoughHistory, match="1 positive"):
        choose_hold_out(frame, horizon_days=30)
