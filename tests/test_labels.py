"""Labels in [as_of, as_of + horizon), cutoffs with complete label windows, training sets."""

from __future__ import annotations

import pandas as pd
import pytest

from churnguard.labels import data_end, label_cutoffs, make_labels, training_set

AS_OF = pd.Timestamp("2024-01-01")
END = AS_OF + pd.Timedelta(days=90)  # first instant outside a 90-day label window


def ts(values) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")


def ids(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def customers(churn_dates=None, signup_dates=None) -> pd.DataFrame:
    n = len(churn_dates or signup_dates)
    return pd.DataFrame({
        "customer_id": ids([f"c{i}" for i in range(n)]),
        "signup_date": ts(signup_dates or [None] * n),
        "churn_date": ts(churn_dates or [None] * n),
    })


def test_contractual_churn_window_includes_as_of_and_excludes_as_of_plus_horizon():
    table = customers([AS_OF - pd.Timedelta(microseconds=1), AS_OF, END - pd.Timedelta(microseconds=1), END, None])
    labels = make_labels({"customers": table}, AS_OF, task="churn", horizon_days=90)
    # c0 churned before as_of: not in the population at all.
    assert labels.to_dict() == {"c1": 1, "c2": 1, "c3": 0, "c4": 0}
    assert labels.name == "churn" and labels.dtype == "int64" and labels.index.name == "customer_id"


def test_contractual_churn_leaves_out_customers_who_sign_up_at_or_after_as_of():
    table = customers(signup_dates=["2023-01-01", AS_OF, "2024-02-01"])
    table.loc[0, "churn_date"] = pd.Timestamp("2024-02-01")
    labels = make_labels({"customers": table}, AS_OF, task="churn")
    assert list(labels.index) == ["c0"]


def purchases(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ids([r[0] for r in rows]),
        "timestamp": ts([r[1] for r in rows]),
        "amount": [10.0] * len(rows),
        "is_return": pd.array([r[2] if len(r) > 2 else False for r in rows], dtype="boolean"),
    })


def test_inactivity_churn_counts_only_buyers_in_the_lookback_and_purchases_inside_the_window():
    table = customers([None] * 5)
    bought = purchases([
        ("c0", AS_OF - pd.Timedelta(days=10)), ("c0", AS_OF),  # buys again at as_of: stays
        ("c1", AS_OF - pd.Timedelta(days=10)), ("c1", END),  # next purchase just outside: churns
        ("c2", AS_OF - pd.Timedelta(days=365)), ("c2", END - pd.Timedelta(days=1)),  # lookback edge: eligible
        ("c3", AS_OF - pd.Timedelta(days=366)),  # bought only before the lookback: not eligible
        ("c4", AS_OF - pd.Timedelta(days=5)), ("c4", AS_OF + pd.Timedelta(days=5), True),  # a return is no purchase
    ])
    labels = make_labels({"customers": table, "purchases": bought}, AS_OF, task="churn", horizon_days=90,
                         lookback_days=365)
    assert labels.to_dict() == {"c0": 0, "c1": 1, "c2": 0, "c4": 1}


def test_auto_definition_is_inactivity_when_no_churn_date_is_filled():
    table = customers([None, None])
    bought = purchases([("c0", AS_OF - pd.Timedelta(days=1))])
    labels = make_labels({"customers": table, "purchases": bought}, AS_OF, task="churn")
    assert labels.to_dict() == {"c0": 1}


def maintenance_tables(event_times, kinds) -> dict[str, pd.DataFrame]:
    return {
        "customers": customers([None] * 4),
        "assets": pd.DataFrame({
            "asset_id": ids(["x0", "x1", "x2", "x3"]),
            "customer_id": ids(["c0", "c1", "c2", "c3"]),
            "install_date": ts(["2020-01-01", None, "2020-01-01", AS_OF]),
        }),
        "service_events": pd.DataFrame({
            "asset_id": ids(["x0", "x1", "x2", "x3"][: len(event_times)]),
            "timestamp": ts(event_times),
            "kind": ids(kinds),
        }),
    }


def test_maintenance_label_is_a_failure_kind_event_in_the_window_among_owners_of_installed_assets():
    tables = maintenance_tables([AS_OF, END - pd.Timedelta(seconds=1), END], ["repair", "failure", "repair"])
    labels = make_labels(tables, AS_OF, task="maintenance", horizon_days=90)
    # c3's only asset is installed at as_of: not yet owned, not eligible.
    assert labels.to_dict() == {"c0": 1, "c1": 1, "c2": 0}


def test_preventive_service_in_the_window_is_not_a_maintenance_need():
    tables = maintenance_tables([AS_OF + pd.Timedelta(days=3)], ["preventive"])
    assert make_labels(tables, AS_OF, task="maintenance")["c0"] == 0


def test_supplied_labels_are_the_rows_of_the_labels_table_at_that_as_of():
    tables = {
        "customers": customers([None] * 3),
        "labels": pd.DataFrame({
            "customer_id": ids(["c0", "c1", "c0", "c2"]),
            "as_of": ts([AS_OF, AS_OF, "2023-12-01", AS_OF]),
            "churn": [1.0, 0.0, 0.0, None],
        }),
    }
    labels = make_labels(tables, AS_OF, task="churn", definition="supplied")
    assert labels.to_dict() == {"c0": 1, "c1": 0}
    assert label_cutoffs(tables, n_cutoffs=5, horizon_days=90, definition="supplied") == [
        pd.Timestamp("2023-12-01"), AS_OF]


def test_cutoffs_are_the_newest_month_starts_whose_label_window_is_complete():
    tables = {"customers": customers([None]), "purchases": purchases([("c0", "2024-06-29 10:00")])}
    assert data_end(tables) == pd.Timestamp("2024-06-30")
    cutoffs = label_cutoffs(tables, n_cutoffs=3, horizon_days=90)
    # 2024-04-01 + 90 days = 2024-06-30, exactly the data end: its window is complete.
    assert cutoffs == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")]
    assert label_cutoffs(tables, n_cutoffs=1, horizon_days=91)[0] == pd.Timestamp("2024-03-01")
    assert label_cutoffs(tables, n_cutoffs=1, horizon_days=30, as_of=pd.Timestamp("2024-03-31")) == [
        pd.Timestamp("2024-03-01")]


def test_training_set_stacks_cutoffs_with_identical_columns_resolved_at_the_newest_cutoff():
    table = customers(["2024-03-15", None, None])
    interactions = pd.DataFrame({
        "customer_id": ids(["c0", "c1", "c2"]),
        # "store" appears only after the first cutoff, yet gets its column at every cutoff.
        "timestamp": ts(["2023-12-20", "2024-01-20", "2024-02-20"]),
        "channel": ids(["phone", "phone", "store"]),
    })
    cutoffs = [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]
    frame = training_set({"customers": table, "interactions": interactions}, cutoffs, task="churn",
                         horizon_days=30)
    assert list(frame.columns[:2]) == ["customer_id", "cutoff"] and frame.columns[-1] == "label"
    assert "interactions_contacts_store_30d" in frame.columns
    assert frame.groupby("cutoff").size().to_dict() == {cutoffs[0]: 3, cutoffs[1]: 3}
    first = frame[frame["cutoff"] == cutoffs[0]].set_index("customer_id")
    last = frame[frame["cutoff"] == cutoffs[1]].set_index("customer_id")
    assert first["interactions_contacts_store_30d"].sum() == 0
    assert last.loc["c2", "interactions_contacts_store_30d"] == 1
    assert last["label"].to_dict() == {"c0": 1, "c1": 0, "c2": 0}
    assert first["label"].sum() == 0


def test_unknown_task_or_definition_fails_loudly():
    with pytest.raises(ValueError, match="task"):
        make_labels({"customers": customers([None])}, AS_OF, task="upsell")
    with pytest.raises(ValueError, match="definition"):
        make_labels({"customers": customers([None])}, AS_OF, task="churn", definition="vibes")


def test_training_set_equals_the_concatenation_of_each_cutoffs_rows(tmp_path):
    """Stacked in place (bounded memory), the frame is exactly what a concat of the cutoffs gave."""
    from churnguard.features import build_features, resolve_feature_set
    from churnguard.labels import make_labels, training_set
    from churnguard.synthetic import generate_world_files
    from churnguard.validation import load_data

    generate_world_files(tmp_path, 200, seed=4)
    tables = load_data(tmp_path, now=pd.Timestamp("2026-11-02")).tables
    cutoffs = [pd.Timestamp("2026-04-01"), pd.Timestamp("2026-07-01")]
    feature_set = resolve_feature_set(tables, cutoffs[-1])
    parts = []
    for cutoff in cutoffs:
        labels = make_labels(tables, cutoff, task="maintenance", horizon_days=90)
        features = build_features(tables, cutoff, feature_set=feature_set)
        rows = features[features["customer_id"].isin(labels.index)].reset_index(drop=True)
        rows.insert(1, "cutoff", cutoff)
        rows["label"] = labels.reindex(pd.Index(rows["customer_id"])).to_numpy()
        parts.append(rows)
    expected = pd.concat(parts, ignore_index=True)
    expected["cutoff"] = expected["cutoff"].astype("datetime64[us]")

    got = training_set(tables, cutoffs, task="maintenance", horizon_days=90)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
