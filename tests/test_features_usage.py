"""The usage family: hand-computed customers, event resolution, point-in-time properties."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from churnguard.config import UsageFeatures
from churnguard.features import usage

AS_OF = pd.Timestamp("2024-07-01")


def usage_table(rows) -> pd.DataFrame:
    """rows: (customer_id, timestamp, event, asset_id or None, value)."""
    rows = list(rows)
    return pd.DataFrame({
        "customer_id": pd.Series([r[0] for r in rows], dtype="str"),
        "timestamp": pd.Series(pd.to_datetime([r[1] for r in rows]), dtype="datetime64[us]"),
        "event": pd.Series([r[2] for r in rows], dtype="str"),
        "asset_id": pd.Series([r[3] for r in rows], dtype="str"),
        "value": pd.Series([r[4] for r in rows], dtype="float64"),
    })


def asset_table(rows) -> pd.DataFrame:
    """rows: (asset_id, customer_id, product, install_date, service_interval_days)."""
    rows = list(rows)
    return pd.DataFrame({
        "asset_id": pd.Series([r[0] for r in rows], dtype="str"),
        "customer_id": pd.Series([r[1] for r in rows], dtype="str"),
        "product": pd.Series([r[2] for r in rows], dtype="str"),
        "install_date": pd.Series(pd.to_datetime([r[3] for r in rows]), dtype="datetime64[us]"),
        "warranty_end": pd.Series([pd.NaT] * len(rows), dtype="datetime64[us]"),
        "service_interval_days": pd.Series([r[4] for r in rows], dtype="float64"),
    })


def service_table(rows) -> pd.DataFrame:
    """rows: (asset_id, timestamp, kind)."""
    rows = list(rows)
    return pd.DataFrame({
        "asset_id": pd.Series([r[0] for r in rows], dtype="str"),
        "timestamp": pd.Series(pd.to_datetime([r[1] for r in rows]), dtype="datetime64[us]"),
        "kind": pd.Series([r[2] for r in rows], dtype="str"),
        "customer_id": pd.Series([None] * len(rows), dtype="str"),
        "cost": pd.Series([np.nan] * len(rows), dtype="float64"),
    })


def build(tables, customers=("a", "b", "c"), as_of=AS_OF, spec=None):
    frame, _ = usage.build(tables, as_of, pd.Index(list(customers), dtype="str"), spec or UsageFeatures())
    return frame


# --------------------------------------------------------------------------- hand-computed customers


def test_hand_built_customer_has_hand_computed_activity():
    # Customer a: 66 logins spread over the 90 days before the last 30 (22 a month), then 3.
    baseline = [("a", AS_OF - pd.Timedelta(days=31 + i % 89), "login", None, 1.0) for i in range(66)]
    recent = [("a", AS_OF - pd.Timedelta(days=d), "login", None, 1.0) for d in (1, 1, 20)]
    minutes = [("a", AS_OF - pd.Timedelta(days=d), "stream_minutes", None, v) for d, v in ((2, 30.0), (40, 90.0))]
    late = [("a", AS_OF, "login", None, 1.0)]  # at as_of: belongs to the label window
    spec = UsageFeatures(windows=(30, 90), trend_recent_days=30, trend_baseline_days=90)
    frame, infos = usage.build({"usage": usage_table(baseline + recent + minutes + late)}, AS_OF,
                               pd.Index(["a", "b"], dtype="str"), spec)
    a = frame.loc["a"]
    assert a["usage_login_count_30d"] == 3
    assert a["usage_login_active_days_30d"] == 2
    assert a["usage_login_per_active_day_30d"] == 1.5
    # 90-day window: the 3 recent plus baseline logins 31..89 days ago (i % 89 in 0..58).
    assert a["usage_login_count_90d"] == 3 + sum(1 for i in range(66) if 31 + i % 89 <= 90)
    assert a["usage_login_month_before"] == pytest.approx(22.0)
    assert a["usage_login_month_recent"] == pytest.approx(3.0)
    assert a["usage_login_trend"] == pytest.approx(3 / 22)
    assert a["usage_stream_minutes_value_30d"] == 30.0
    assert a["usage_stream_minutes_value_90d"] == 120.0
    assert a["usage_stream_minutes_share"] == pytest.approx(2 / (a["usage_login_count_90d"] + 2))
    assert a["usage_days_since_last"] == 1.0
    assert a["usage_active_days_30d"] == 3  # days 1, 2 and 20
    trend = next(i for i in infos if i.name == "usage_login_trend")
    assert trend.reason.format(**a) == "login fell from 22 to 3 a month"


def test_customer_without_usage_gets_zero_counts_and_nan_recency():
    frame = build({"usage": usage_table([("a", "2024-06-01", "login", None, 1.0)])})
    b = frame.loc["b"]
    assert b["usage_login_count_30d"] == 0 and b["usage_events_90d"] == 0 and b["usage_login_value_90d"] == 0
    assert b["usage_login_month_recent"] == 0
    assert np.isnan(b["usage_days_since_last"])
    assert np.isnan(b["usage_login_trend"]) and np.isnan(b["usage_login_share"])
    assert np.isnan(b["usage_login_per_active_day_30d"])


def test_event_at_window_start_counts_and_event_at_as_of_does_not():
    rows = [("a", AS_OF - pd.Timedelta(days=30), "login", None, 1.0), ("a", AS_OF, "login", None, 1.0)]
    a = build({"usage": usage_table(rows)}).loc["a"]
    assert a["usage_login_count_30d"] == 1
    assert a["usage_days_since_last"] == 30.0


def test_frame_is_indexed_by_the_given_customers_in_their_order():
    frame = build({"usage": usage_table([("a", "2024-06-01", "login", None, 1.0)])}, customers=("c", "a", "zz"))
    assert frame.index.tolist() == ["c", "a", "zz"]
    assert frame.index.name == "customer_id"


def test_features_are_float64_and_context_columns_str():
    tables = {"usage": usage_table([("a", "2024-06-01", "cycles", "m1", 5.0)]),
              "assets": asset_table([("m1", "a", "compressor", "2024-01-01", 100.0)])}
    frame, infos = usage.build(tables, AS_OF, pd.Index(["a", "b"], dtype="str"), UsageFeatures())
    assert list(frame.columns) == [i.name for i in infos]
    for info in infos:
        expected = "str" if info.unit == "text" else "float64"
        assert frame[info.name].dtype == expected, info.name
    assert {i.name for i in infos if not i.model_input} == {
        "usage_worst_asset_product", "usage_worst_asset_load", "usage_worst_asset_interval_load"}


def test_asset_load_since_service_is_relative_to_its_own_rate_times_interval():
    # First load 100 days before as_of with a 100-day interval: 1,000 cycles since is 10 a
    # day, so 1,000 expected per interval; 400 since the preventive service on 1 March.
    as_of = pd.Timestamp("2024-04-10")
    rows = [("a", "2024-01-01", "cycles", "m1", 300.0), ("a", "2024-02-15", "cycles", "m1", 300.0),
            ("a", "2024-03-15", "cycles", "m1", 200.0), ("a", "2024-04-05", "cycles", "m1", 200.0),
            ("a", "2024-04-06", "door_open", "m1", 5_000.0),  # not a load event
            ("a", "2024-04-10", "cycles", "m1", 9_000.0)]  # at as_of
    tables = {"usage": usage_table(rows),
              "assets": asset_table([("m1", "a", "compressor", "2023-01-01", 100.0),
                                     ("m2", "a", "pump", "2024-05-01", 10.0)]),  # installed later
              "service_events": service_table([("m1", "2024-03-01", "Preventive"),
                                               ("m1", "2024-04-10", "preventive")])}
    spec = UsageFeatures(load_events=("cycles",))
    frame, infos = usage.build(tables, as_of, pd.Index(["a", "b"], dtype="str"), spec)
    a = frame.loc["a"]
    assert a["usage_asset_load_since_service_max"] == 400.0
    assert a["usage_worst_asset_interval_load"] == pytest.approx(1_000.0)
    assert a["usage_asset_load_ratio_max"] == pytest.approx(0.4)
    ratio = next(i for i in infos if i.name == "usage_asset_load_ratio_max")
    assert ratio.reason.format(**a) == "compressor ran 400 cycles since its last service (interval 1,000)"
    assert np.isnan(frame.loc["b", "usage_asset_load_ratio_max"])


def test_asset_without_service_counts_load_since_install():
    rows = [("a", "2024-02-01", "hours", "m1", 50.0), ("a", "2024-06-01", "hours", "m1", 50.0)]
    tables = {"usage": usage_table(rows), "assets": asset_table([("m1", "a", None, "2024-01-01", 365.0)])}
    a = build(tables).loc["a"]
    assert a["usage_asset_load_since_service_max"] == 100.0
    assert a["usage_worst_asset_product"] == "asset m1"


def test_odd_event_names_become_sanitised_columns_and_safe_templates():
    rows = [("a", "2024-06-01", "Log-In {web}", None, 1.0)]
    frame, infos = usage.build({"usage": usage_table(rows)}, AS_OF, pd.Index(["a"], dtype="str"), UsageFeatures())
    assert "usage_log_in_web_count_30d" in frame.columns
    info = next(i for i in infos if i.name == "usage_log_in_web_count_30d")
    assert info.reason.format(**frame.loc["a"]) == "Log-In {web} 1 times in the last 30 days"


# --------------------------------------------------------------------------- resolution


def test_resolve_takes_top_k_before_as_of_with_ties_broken_by_name():
    rows = ([("a", "2024-01-01", "zeta", None, 1.0)] * 3 + [("a", "2024-01-01", "beta", None, 1.0)] * 2
            + [("a", "2024-01-01", "alpha", None, 1.0)] * 2 + [("a", "2024-08-01", "late", None, 1.0)] * 9)
    spec = usage.resolve({"usage": usage_table(rows)}, AS_OF, UsageFeatures(top_k_events=2, events=("manual",)))
    assert spec.resolved_events == ("alpha", "manual", "zeta")


def test_resolve_is_deterministic_under_row_order_and_keeps_a_resolved_spec():
    rows = [("a", "2024-01-01", e, None, 1.0) for e in ["x", "y", "z", "y", "x", "w"]]
    table = usage_table(rows)
    spec = UsageFeatures(top_k_events=2)
    first = usage.resolve({"usage": table}, AS_OF, spec)
    shuffled = usage.resolve({"usage": table.sample(frac=1, random_state=3)}, AS_OF, spec)
    assert first.resolved_events == shuffled.resolved_events == ("x", "y")
    fixed = replace(spec, resolved_events=("only",))
    assert usage.resolve({"usage": table}, AS_OF, fixed) is fixed


def test_resolved_events_fix_the_columns_whatever_the_data():
    spec = UsageFeatures(windows=(30,), resolved_events=("login",))
    frame = build({"usage": usage_table([("a", "2024-06-01", "other", None, 1.0)])}, spec=spec)
    assert [c for c in frame.columns if c.endswith("_count_30d")] == ["usage_login_count_30d"]
    assert frame.loc["a", "usage_events_30d"] == 1


# --------------------------------------------------------------------------- point-in-time properties

CUSTOMERS = ["a", "b", "c"]
EVENTS = ["login", "post", "cycles", "Stream Minutes"]
ASSETS = [None, "m1", "m2", "m3"]
START = pd.Timestamp("2024-01-01")
SPEC = UsageFeatures(windows=(7, 30), top_k_events=2, trend_recent_days=7, trend_baseline_days=21)


@st.composite
def usage_rows(draw, min_hours=0, max_hours=24 * 200):
    n = draw(st.integers(0, 12))
    return [(draw(st.sampled_from(CUSTOMERS)), START + pd.Timedelta(hours=draw(st.integers(min_hours, max_hours))),
             draw(st.sampled_from(EVENTS)), draw(st.sampled_from(ASSETS)), float(draw(st.integers(0, 50))))
            for _ in range(n)]


@st.composite
def world(draw):
    """Usage, assets and service events around an as_of, plus two sets of late rows."""
    as_of = START + pd.Timedelta(hours=draw(st.integers(24 * 20, 24 * 150)))
    late_hours = int((as_of - START) / pd.Timedelta(hours=1))
    assets = [(a, draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from(["pump", None])),
               draw(st.sampled_from([None, "2023-12-01", "2024-02-01", "2024-04-01"])),
               draw(st.sampled_from([np.nan, 30.0, 90.0]))) for a in ["m1", "m2"]]
    service = [(draw(st.sampled_from(["m1", "m2", "m3"])),
                START + pd.Timedelta(hours=draw(st.integers(0, 24 * 200))),
                draw(st.sampled_from(["preventive", "repair"]))) for _ in range(draw(st.integers(0, 4)))]

    def late_assets():
        # Installed at or after as_of: they do not exist yet.
        return [(a, draw(st.sampled_from(CUSTOMERS)), "late",
                 as_of + pd.Timedelta(hours=draw(st.integers(0, 500))), 10.0) for a in ["m3"][: draw(st.integers(0, 1))]]

    def late_service():
        return [(draw(st.sampled_from(["m1", "m2", "m3"])), as_of + pd.Timedelta(hours=draw(st.integers(0, 500))),
                 draw(st.sampled_from(["preventive", "repair"]))) for _ in range(draw(st.integers(0, 3)))]

    return dict(as_of=as_of, usage=draw(usage_rows()), assets=assets, service=service,
                late=[draw(usage_rows(late_hours, late_hours + 24 * 60)) for _ in range(2)],
                late_assets=[late_assets(), late_assets()], late_service=[late_service(), late_service()])


def tables_of(w, k):
    return {"usage": usage_table(w["usage"] + w["late"][k]),
            "assets": asset_table(w["assets"] + w["late_assets"][k]),
            "service_events": service_table(w["service"] + w["late_service"][k])}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=world())
def test_rows_at_or_after_as_of_never_change_features(w):
    # Two different sets of late rows stand for adding, deleting and altering any of them.
    first, second = tables_of(w, 0), tables_of(w, 1)
    assert_frame_equal(build(first, CUSTOMERS, w["as_of"], SPEC), build(second, CUSTOMERS, w["as_of"], SPEC))
    assert usage.resolve(first, w["as_of"], SPEC) == usage.resolve(second, w["as_of"], SPEC)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=world(), minutes_before=st.integers(1, 40 * 24 * 60), value=st.integers(1, 9))
def test_usage_before_as_of_moves_the_counts_of_the_windows_it_falls_in(w, minutes_before, value):
    spec = replace(SPEC, resolved_events=tuple(EVENTS))
    when = w["as_of"] - pd.Timedelta(minutes=minutes_before)
    before = tables_of(w, 0)
    after = dict(before, usage=pd.concat([before["usage"], usage_table([("b", when, "post", None, float(value))])],
                                         ignore_index=True))
    old_frame, new_frame = build(before, CUSTOMERS, w["as_of"], spec), build(after, CUSTOMERS, w["as_of"], spec)
    old, new = old_frame.loc["b"], new_frame.loc["b"]
    for days in spec.windows:
        inside = minutes_before <= days * 24 * 60
        assert new[f"usage_post_count_{days}d"] - old[f"usage_post_count_{days}d"] == inside
        assert new[f"usage_post_value_{days}d"] - old[f"usage_post_value_{days}d"] == value * inside
        assert new[f"usage_events_{days}d"] - old[f"usage_events_{days}d"] == inside
    expected_recency = np.nanmin([old["usage_days_since_last"], minutes_before / (24 * 60)])
    assert new["usage_days_since_last"] == pytest.approx(expected_recency)
    # Nobody else's features move.
    assert_frame_equal(old_frame.drop(index="b"), new_frame.drop(index="b"))
