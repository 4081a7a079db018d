"""The service family: hand-computed customers and point-in-time properties."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from churnguard.config import ServiceFeatures
from churnguard.features import service

AS_OF = pd.Timestamp("2024-07-01")


def asset_table(rows) -> pd.DataFrame:
    """rows: (asset_id, customer_id, product, install_date, warranty_end, service_interval_days)."""
    rows = list(rows)
    return pd.DataFrame({
        "asset_id": pd.Series([r[0] for r in rows], dtype="str"),
        "customer_id": pd.Series([r[1] for r in rows], dtype="str"),
        "product": pd.Series([r[2] for r in rows], dtype="str"),
        "install_date": pd.Series(pd.to_datetime([r[3] for r in rows]), dtype="datetime64[us]"),
        "warranty_end": pd.Series(pd.to_datetime([r[4] for r in rows]), dtype="datetime64[us]"),
        "service_interval_days": pd.Series([r[5] for r in rows], dtype="float64"),
    })


def event_table(rows) -> pd.DataFrame:
    """rows: (asset_id, timestamp, kind, cost)."""
    rows = list(rows)
    return pd.DataFrame({
        "asset_id": pd.Series([r[0] for r in rows], dtype="str"),
        "timestamp": pd.Series(pd.to_datetime([r[1] for r in rows]), dtype="datetime64[us]"),
        "kind": pd.Series([r[2] for r in rows], dtype="str"),
        "customer_id": pd.Series([None] * len(rows), dtype="str"),
        "cost": pd.Series([r[3] for r in rows], dtype="float64"),
    })


def build(tables, customers=("a", "b"), as_of=AS_OF, spec=ServiceFeatures()):
    frame, _ = service.build(tables, as_of, pd.Index(list(customers), dtype="str"), spec)
    return frame


def hand_built_tables():
    assets = asset_table([
        # Serviced 2024-01-01: 182 days ago against a 90-day interval, 92 days overdue.
        ("h1", "a", "heating unit", "2022-07-01", "2023-07-01", 90.0),
        # Never serviced: 100 days since install against 365, not overdue.
        ("h2", "a", "boiler", "2024-03-23", "2026-03-23", 365.0),
        # No interval: counted and aged, never overdue.
        ("h3", "a", None, None, None, np.nan),
        ("h9", "a", "future unit", "2024-07-01", None, 30.0),  # installed at as_of: not there yet
    ])
    events = event_table([
        ("h1", "2023-06-01", "preventive", 100.0),  # older than 365 days
        ("h1", "2024-01-01", "Preventive", 120.0),
        ("h1", "2024-05-02", "repair", 300.0),  # 60 days before as_of
        ("h2", "2024-06-21", "failure", np.nan),  # 10 days before as_of
        ("h2", "2024-06-25", "inspection", 50.0),
        ("h1", "2024-07-01", "failure", 999.0),  # at as_of: the label window's
        ("h9", "2024-06-01", "repair", 999.0),  # on an asset that does not exist yet
    ])
    return {"assets": assets, "service_events": events}


def test_hand_built_customer_has_hand_computed_service_features():
    frame, infos = service.build(hand_built_tables(), AS_OF, pd.Index(["a", "b"], dtype="str"), ServiceFeatures())
    a = frame.loc["a"]
    assert a["service_assets"] == 3
    age_h1, age_h2 = (AS_OF - pd.Timestamp("2022-07-01")).days, 100
    assert a["service_asset_age_days_mean"] == pytest.approx((age_h1 + age_h2) / 2)
    assert a["service_asset_age_days_max"] == age_h1
    assert a["service_assets_out_of_warranty"] == 1
    assert a["service_out_of_warranty_share"] == pytest.approx(1 / 3)
    assert a["service_overdue_days_max"] == 92
    assert a["service_overdue_ratio_max"] == pytest.approx(182 / 90)
    assert a["service_overdue_assets"] == 1
    assert a["service_failures_90d"] == 2 and a["service_failures_365d"] == 2
    assert a["service_preventive_90d"] == 0 and a["service_preventive_365d"] == 1
    assert a["service_inspections_90d"] == 1
    assert a["service_cost_90d"] == 350.0 and a["service_cost_365d"] == 470.0
    assert a["service_days_since_failure"] == 10
    assert a["service_worst_asset_product"] == "heating unit"
    assert a["service_worst_asset_interval_days"] == 90
    reason = next(i for i in infos if i.name == "service_overdue_days_max").reason
    assert reason.format(**a) == "heating unit is 92 days past its 90-day service interval"


def test_customer_without_assets_gets_zero_counts_and_nan_recency():
    b = build(hand_built_tables()).loc["b"]
    assert b["service_assets"] == 0 and b["service_failures_365d"] == 0 and b["service_cost_90d"] == 0
    assert np.isnan(b["service_days_since_failure"]) and np.isnan(b["service_asset_age_days_mean"])
    assert np.isnan(b["service_overdue_days_max"]) and np.isnan(b["service_out_of_warranty_share"])
    assert pd.isna(b["service_worst_asset_product"])


def test_no_overdue_asset_gives_zero_overdue_days():
    tables = {"assets": asset_table([("p", "a", "pump", "2024-06-01", None, 365.0)])}
    a = build(tables).loc["a"]
    assert a["service_overdue_days_max"] == 0 and a["service_overdue_assets"] == 0
    assert a["service_overdue_ratio_max"] == pytest.approx(30 / 365)
    assert a["service_worst_asset_product"] == "pump"


def test_service_events_table_is_optional():
    frame = build({"assets": hand_built_tables()["assets"]})
    # Without service history every asset counts from its install date.
    assert frame.loc["a", "service_overdue_days_max"] == (AS_OF - pd.Timestamp("2022-07-01")).days - 90
    assert frame.loc["a", "service_failures_365d"] == 0


def test_frame_has_given_customers_in_order_with_float_features_and_str_context():
    frame, infos = service.build(hand_built_tables(), AS_OF, pd.Index(["zz", "a"], dtype="str"), ServiceFeatures())
    assert frame.index.tolist() == ["zz", "a"] and frame.index.name == "customer_id"
    assert list(frame.columns) == [i.name for i in infos]
    for info in infos:
        assert frame[info.name].dtype == ("str" if info.unit == "text" else "float64"), info.name
    assert {i.name for i in infos if not i.model_input} == {
        "service_worst_asset_product", "service_worst_asset_interval_days"}


def test_configured_kinds_decide_what_counts_as_failure_and_preventive():
    spec = ServiceFeatures(windows=(30,), preventive_kinds=("tune-up",), failure_kinds=("breakdown",))
    tables = {"assets": asset_table([("p", "a", "pump", "2024-01-01", None, 30.0)]),
              "service_events": event_table([("p", "2024-06-21", "Tune-Up", 0.0), ("p", "2024-06-22", "breakdown", 0.0),
                                             ("p", "2024-06-23", "repair", 0.0)])}
    a = build(tables, spec=spec).loc["a"]
    assert a["service_failures_30d"] == 1 and a["service_preventive_30d"] == 1
    assert a["service_overdue_days_max"] == 0  # serviced 10 days ago


# --------------------------------------------------------------------------- point-in-time properties

START = pd.Timestamp("2024-01-01")
KINDS = ["preventive", "repair", "failure", "inspection"]


@st.composite
def world(draw):
    as_of = START + pd.Timedelta(hours=draw(st.integers(24 * 30, 24 * 300)))

    def when(lo, hi):
        return START + pd.Timedelta(hours=draw(st.integers(lo, hi)))

    hours = int((as_of - START) / pd.Timedelta(hours=1))
    assets = [(a, draw(st.sampled_from(["a", "b", "c"])), draw(st.sampled_from(["pump", None])),
               draw(st.sampled_from([None, when(-24 * 400, hours - 1)])),
               draw(st.sampled_from([None, when(-24 * 100, hours + 24 * 100)])),
               draw(st.sampled_from([np.nan, 30.0, 180.0]))) for a in ["p1", "p2", "p3"]]
    events = [(draw(st.sampled_from(["p1", "p2", "p3", "late"])), when(-24 * 100, hours + 24 * 50),
               draw(st.sampled_from(KINDS)), float(draw(st.integers(0, 500)))) for _ in range(draw(st.integers(0, 10)))]

    def late():
        rows = [(draw(st.sampled_from(["p1", "p2", "p3", "late"])), when(hours, hours + 24 * 100),
                 draw(st.sampled_from(KINDS)), float(draw(st.integers(0, 500)))) for _ in range(draw(st.integers(0, 4)))]
        late_asset = [("late", draw(st.sampled_from(["a", "b"])), "new", when(hours, hours + 24 * 100), None, 30.0)]
        return rows, late_asset[: draw(st.integers(0, 1))]

    return dict(as_of=as_of, assets=assets, events=[e for e in events if e[1] < as_of], late=[late(), late()])


def tables_of(w, k):
    late_events, late_assets = w["late"][k]
    return {"assets": asset_table(w["assets"] + late_assets), "service_events": event_table(w["events"] + late_events)}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=world())
def test_events_and_assets_at_or_after_as_of_never_change_features(w):
    # Two different sets of late rows stand for adding, deleting and altering any of them.
    customers = ["a", "b", "c"]
    assert_frame_equal(build(tables_of(w, 0), customers, w["as_of"]), build(tables_of(w, 1), customers, w["as_of"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=world(), hours_before=st.integers(1, 400 * 24))
def test_failure_before_as_of_moves_the_windows_it_falls_in(w, hours_before):
    before = tables_of(w, 0)
    when = w["as_of"] - pd.Timedelta(hours=hours_before)
    after = dict(before, service_events=pd.concat([before["service_events"], event_table([("p1", when, "failure", 7.0)])],
                                                  ignore_index=True))
    owner = before["assets"].set_index("asset_id").loc["p1", "customer_id"]
    old_frame, new_frame = build(before, ["a", "b", "c"], w["as_of"]), build(after, ["a", "b", "c"], w["as_of"])
    old, new = old_frame.loc[owner], new_frame.loc[owner]
    for days in ServiceFeatures().windows:
        inside = hours_before <= days * 24
        assert new[f"service_failures_{days}d"] - old[f"service_failures_{days}d"] == inside
        assert new[f"service_cost_{days}d"] - old[f"service_cost_{days}d"] == 7.0 * inside
    assert new["service_days_since_failure"] == pytest.approx(
        np.nanmin([old["service_days_since_failure"], hours_before / 24]))
    assert_frame_equal(old_frame.drop(index=owner), new_frame.drop(index=owner))
