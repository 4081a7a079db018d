"""Feature builders: hand-computed values, the frame contract, the catalogue, determinism."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from churnguard.config import load_feature_set
from churnguard.features import build_features, feature_catalogue, population, resolve_feature_set

AS_OF = pd.Timestamp("2024-03-01")


def ts(values) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")


def flags(values) -> pd.Series:
    return pd.Series(pd.array(values, dtype="boolean"))


def ids(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def customers_table() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ids(["b", "a", "c", "d"]),
        "signup_date": ts(["2023-03-01", "2022-03-01", "2022-01-01", "2024-03-01"]),
        "churn_date": ts([None, None, "2024-02-01", None]),
        "value": [10.0, 250.0, 5.0, 1.0],
        "do_not_contact": flags([False, True, False, False]),
        "preferred_channel": ids(["email", "phone", "chat", "chat"]),
        "plan": ids(["basic", "pro", "pro", "basic"]),
        "seats": [1.0, 12.0, 3.0, 1.0],
        "crm_id": ids(["x1", "x2", "x3", "x4"]),
    })


def purchases_table() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ids(["a"] * 5),
        # 366, 90, 29 and 15 days before AS_OF (2024 is a leap year), then one at AS_OF itself.
        "timestamp": ts(["2023-03-01", "2023-12-02", "2024-02-01", "2024-02-15", "2024-03-01"]),
        "amount": [100.0, 50.0, 30.0, -20.0, 999.0],
        "order_id": ids(["o1", "o2", "o3", "o4", "o5"]),
        "quantity": [1.0] * 5,
        "category": ids(["x"] * 5),
        "is_return": flags([False, False, False, True, False]),
    })


def interactions_table() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ids(["a"] * 4),
        "timestamp": ts(["2024-01-01", "2024-02-10", "2024-02-14", "2024-03-01"]),
        "channel": ids(["phone", "phone", "chat", "phone"]),
        "topic": ids(["billing", "billing", "outage", "billing"]),
        "is_complaint": flags([True, True, False, True]),
        "resolved": flags([True, False, None, False]),
        "wait_seconds": [300.0, 900.0, 1800.0, 7200.0],
        "handle_seconds": [600.0, 600.0, 60.0, 60.0],
        "abandoned": flags([False, False, True, True]),
        "escalated": flags([False, True, False, True]),
        "csat": [4.0, np.nan, np.nan, 1.0],
        "nps": [8.0, 3.0, np.nan, 0.0],
        "ces": [np.nan] * 4,
        "sentiment": [0.5, -0.5, -0.7, -1.0],
    })


def world() -> dict[str, pd.DataFrame]:
    return {"customers": customers_table(), "purchases": purchases_table(), "interactions": interactions_table()}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(world(), AS_OF).set_index("customer_id")


def test_population_excludes_customers_churned_before_or_signed_up_at_or_after_as_of():
    assert list(population(world(), AS_OF)) == ["a", "b"]


def test_frame_has_customer_id_first_one_sorted_row_per_customer_and_float_or_category_columns():
    frame = build_features(world(), AS_OF)
    assert frame.columns[0] == "customer_id"
    assert frame["customer_id"].tolist() == ["a", "b"]
    kinds = {str(t) for t in frame.dtypes.iloc[1:]}
    assert kinds <= {"float64", "category"}


def test_purchase_features_of_a_hand_built_customer_equal_hand_computed_values(features):
    a = features.loc["a"]
    expected = {
        "purchases_days_since_last": 29.0,  # 2024-02-01; the purchase at as_of does not count
        "purchases_days_since_first": 366.0,
        "purchases_count_total": 3.0,
        "purchases_amount_total": 180.0,
        "purchases_avg_amount": 60.0,
        "purchases_gap_mean_days": (366 - 29) / 2,
        "purchases_gap_current_ratio": 29 / ((366 - 29) / 2),
        "purchases_spend_trend": 80.0 / (80.0 * 90 / 365),
        "purchases_count_30d": 1.0,
        "purchases_amount_30d": 30.0,
        "purchases_count_90d": 2.0,  # exactly 90 days before as_of is inside the window
        "purchases_amount_90d": 80.0,
        "purchases_count_365d": 2.0,  # 366 days before is outside
        "purchases_returns_30d": 1.0,
        "purchases_returns_amount_30d": 20.0,
    }
    assert a[list(expected)].to_dict() == pytest.approx(expected)


def test_interaction_features_of_a_hand_built_customer_equal_hand_computed_values(features):
    a = features.loc["a"]
    expected = {
        "interactions_contacts_30d": 2.0,
        "interactions_contacts_90d": 3.0,
        "interactions_contacts_phone_30d": 1.0,
        "interactions_contacts_chat_30d": 1.0,
        "interactions_topic_billing_90d": 2.0,
        "interactions_topic_outage_30d": 1.0,
        "interactions_complaints_30d": 1.0,
        "interactions_complaints_unresolved_30d": 1.0,
        "interactions_complaints_unresolved_share_30d": 1.0,
        "interactions_complaints_90d": 2.0,
        "interactions_complaints_unresolved_share_90d": 0.5,
        "interactions_repeat_contacts_30d": 1.0,  # 2024-02-14 is 4 days after 2024-02-10
        "interactions_repeat_contacts_365d": 1.0,
        "interactions_escalations_30d": 1.0,
        "interactions_abandoned_30d": 1.0,
        "interactions_wait_mean_minutes_90d": (5 + 15 + 30) / 3,
        "interactions_wait_max_minutes_30d": 30.0,
        "interactions_handle_mean_minutes_90d": (10 + 10 + 1) / 3,
        "interactions_csat_latest": 4.0,
        "interactions_nps_latest": 3.0,
        "interactions_nps_detractor": 1.0,
        "interactions_nps_mean_365d": 5.5,
        "interactions_days_since_last_contact": 16.0,
        "interactions_days_since_last_complaint": 20.0,
        "interactions_open_complaint": 1.0,
        "interactions_sentiment_mean_30d": -0.6,
        "interactions_sentiment_trend": -0.6 - 0.5,
    }
    assert a[list(expected)].to_dict() == pytest.approx(expected)
    assert math.isnan(a["interactions_ces_latest"])


def test_customer_without_events_gets_zero_counts_and_nan_recency_and_averages(features):
    b = features.loc["b"]
    assert b["purchases_count_30d"] == 0 and b["interactions_complaints_365d"] == 0
    assert b["interactions_open_complaint"] == 0
    for name in ("purchases_days_since_last", "purchases_gap_mean_days", "interactions_wait_mean_minutes_30d",
                 "interactions_nps_latest", "interactions_nps_detractor", "interactions_complaints_unresolved_share_30d"):
        assert math.isnan(b[name]), name


def test_customer_attributes_become_numbers_and_categories_but_ids_dates_and_contact_settings_do_not(features):
    assert features.loc["a", "customers_tenure_days"] == (AS_OF - pd.Timestamp("2022-03-01")).days
    assert features.loc["a", "customers_value"] == 250.0
    assert features.loc["a", "customers_seats"] == 12.0
    assert features["customers_plan"].dtype == "category"
    assert features["customers_plan"].cat.categories.tolist() == ["basic", "pro"]
    for absent in ("customers_crm_id", "customers_signup_date", "customers_churn_date",
                   "customers_do_not_contact", "customers_preferred_channel"):
        assert absent not in features.columns


def test_missing_tables_drop_their_family():
    frame = build_features({"customers": customers_table(), "purchases": purchases_table()}, AS_OF)
    families = {c.split("_")[0] for c in frame.columns[1:]}
    assert families == {"customers", "purchases"}


def test_a_disabled_family_is_skipped():
    fs = load_feature_set()
    fs = replace(fs, interactions=replace(fs.interactions, enabled=False))
    frame = build_features(world(), AS_OF, feature_set=fs)
    assert not any(c.startswith("interactions_") for c in frame.columns)


def test_two_builds_and_shuffled_rows_give_identical_frames():
    tables = world()
    shuffled = {k: v.sample(frac=1.0, random_state=3).reset_index(drop=True) for k, v in tables.items()}
    assert_frame_equal(build_features(tables, AS_OF), build_features(tables, AS_OF))
    assert_frame_equal(build_features(tables, AS_OF), build_features(shuffled, AS_OF))


def test_resolved_feature_set_keeps_columns_fixed_when_new_channels_appear_later():
    tables = world()
    fs = resolve_feature_set(tables, AS_OF)
    later = tables["interactions"].copy()
    later.loc[len(later)] = later.iloc[0]
    later.loc[len(later) - 1, ["channel", "timestamp"]] = ["pigeon", pd.Timestamp("2024-03-05")]
    tables["interactions"] = later
    at_later = build_features(tables, pd.Timestamp("2024-04-01"), feature_set=fs)
    assert not any("pigeon" in c for c in at_later.columns)
    assert list(at_later.columns) == list(build_features(world(), AS_OF, feature_set=fs).columns)
    assert any("pigeon" in c for c in build_features(tables, pd.Timestamp("2024-04-01")).columns)


def test_topics_are_the_top_k_seen_before_as_of_sorted_by_name():
    fs = load_feature_set()
    fs = replace(fs, interactions=replace(fs.interactions, top_k_topics=1))
    resolved = resolve_feature_set(world(), AS_OF, fs)
    assert resolved.interactions.topics == ("billing",)
    assert resolved.interactions.channels == ("chat", "phone")


def test_catalogue_without_data_lists_generic_features_with_placeholders():
    catalogue = feature_catalogue()
    names = set(catalogue["name"])
    assert {"interactions_contacts_{channel}_{window}d", "purchases_count_{window}d",
            "customers_{attribute}"} <= names
    assert set(catalogue["direction"]) <= {"up", "down"}


def test_catalogue_with_data_names_exactly_the_built_columns_and_every_reason_formats(features):
    catalogue = feature_catalogue(world(), AS_OF)
    assert catalogue["name"].tolist() == list(features.columns)
    assert catalogue["name"].is_unique
    row = features.loc["a"].to_dict()
    for template in catalogue["reason"][catalogue["reason"] != ""]:
        template.format(**row)  # every placeholder names a column of the row


def test_value_derived_column_names_are_sanitised():
    tables = world()
    tables["interactions"]["channel"] = ids(["Phone Line", "Phone Line", "E-mail", "E-mail"])
    frame = build_features(tables, AS_OF)
    assert "interactions_contacts_phone_line_30d" in frame.columns
    assert "interactions_contacts_e_mail_30d" in frame.columns
    assert all(c == c.lower() and " " not in c for c in frame.columns)


def test_repeat_contact_counts_a_contact_within_repeat_days_of_the_previous_one_only():
    events = interactions_table().iloc[:3].copy()
    # 2024-02-17 is exactly 7 days after 2024-02-10 (a repeat); 2024-02-25 is 8 days after.
    events["timestamp"] = ts(["2024-02-10", "2024-02-17", "2024-02-25"])
    frame = build_features({"customers": customers_table(), "interactions": events}, AS_OF)
    assert frame.set_index("customer_id").loc["a", "interactions_repeat_contacts_30d"] == 1.0


def test_two_builds_of_a_generated_world_are_bit_identical():
    # Parallel float sums would add in a run-dependent order; the engine runs one thread.
    from churnguard.synthetic import generate_world

    world = generate_world(3000, seed=2)
    world.pop("truth")
    as_of = pd.Timestamp("2026-11-01")
    first, second = build_features(world, as_of), build_features(world, as_of)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
