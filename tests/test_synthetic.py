"""The synthetic world: contract types, determinism, and the planted drivers."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnguard.synthetic import TABLE_NAMES, generate_world, generate_world_files, write_world

END = pd.Timestamp("2026-11-01")
HORIZON = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def world():
    return generate_world(3000, seed=11, end=END)


@pytest.fixture(scope="module")
def truth(world):
    """Truth rows with complete windows and their realised 90-day labels."""
    tr = world["truth"][world["truth"]["window_complete"].to_numpy(bool)].reset_index(drop=True)
    churn_date = world["customers"].set_index("customer_id")["churn_date"]
    cd = churn_date.reindex(tr["customer_id"]).to_numpy()
    tr["churn"] = (cd >= tr["as_of"].to_numpy()) & (cd < (tr["as_of"] + HORIZON).to_numpy())
    se = world["service_events"]
    fails = se.loc[se["kind"].isin(["repair", "failure"]), ["customer_id", "timestamp"]]
    tr["maintenance"] = tr.index.isin(_rows_with_event_in(tr, fails, 0, 90))
    return tr


def _rows_with_event_in(rows, events, start_days, end_days):
    """Index of `rows` (customer_id, as_of) with an event in [as_of + start, as_of + end)."""
    pairs = rows[["customer_id", "as_of"]].reset_index().merge(events, on="customer_id")
    lo = pairs["as_of"] + pd.Timedelta(days=start_days)
    hi = pairs["as_of"] + pd.Timedelta(days=end_days)
    return pairs.loc[(pairs["timestamp"] >= lo) & (pairs["timestamp"] < hi), "index"].unique()


def _file_hashes(paths):
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in paths.items()}


def test_same_seed_writes_identical_files(tmp_path):
    first = write_world(generate_world(400, seed=5), tmp_path / "a")
    second = write_world(generate_world(400, seed=5), tmp_path / "b")
    assert _file_hashes(first) == _file_hashes(second)


def test_streaming_writer_writes_the_same_files_as_write_world(tmp_path):
    whole = generate_world(400, seed=5)
    expected = write_world(whole, tmp_path / "a")
    streamed = generate_world_files(tmp_path / "b", 400, seed=5)
    assert list(streamed) == list(expected)
    assert _file_hashes({name: t.path for name, t in streamed.items()}) == _file_hashes(expected)
    assert {name: t.rows for name, t in streamed.items()} == {name: len(frame) for name, frame in whole.items()}


def test_different_seeds_give_different_worlds():
    a = generate_world(200, seed=1)["interactions"]
    b = generate_world(200, seed=2)["interactions"]
    assert len(a) != len(b) or not a.equals(b)


def test_world_has_every_contract_table_and_truth(world):
    assert set(world) == set(TABLE_NAMES)
    assert all(len(frame) > 0 for frame in world.values())


def test_tables_have_validated_dtypes(world):
    for name, frame in world.items():
        for column, dtype in frame.dtypes.items():
            if column.endswith("_id") or column in {"channel", "topic", "kind", "event", "product"}:
                assert dtype == "str", (name, column, dtype)
            elif column in {"timestamp", "as_of"} or column.endswith("_date") or column == "warranty_end":
                assert dtype == "datetime64[us]", (name, column, dtype)
    flags = {
        "customers": ["do_not_contact"],
        "interactions": ["is_complaint", "resolved", "abandoned", "escalated"],
        "purchases": ["is_return"],
    }
    for name, columns in flags.items():
        for column in columns:
            assert world[name][column].dtype == "boolean", (name, column)
    for column in ["wait_seconds", "handle_seconds", "csat", "nps", "ces", "sentiment"]:
        assert world["interactions"][column].dtype == "float64"


def test_ids_keep_leading_zeros_and_are_unique(world):
    ids = world["customers"]["customer_id"]
    assert ids.iloc[0] == "0000001"
    assert ids.str.len().min() >= 7 and ids.is_unique
    assert world["assets"]["asset_id"].str.match(r"^A\d{8}$").all()
    assert set(world["interactions"]["customer_id"]) <= set(ids)
    assert set(world["usage"]["asset_id"].dropna()) <= set(world["assets"]["asset_id"])


def test_every_event_lies_in_the_window(world):
    start = END - pd.Timedelta(days=730)
    for name in ["interactions", "purchases", "service_events", "usage"]:
        ts = world[name]["timestamp"]
        assert ts.min() >= start and ts.max() < END, name
    churn = world["customers"]["churn_date"].dropna()
    assert churn.min() >= start and churn.max() < END


def test_no_event_before_signup_or_from_the_churn_date_on(world):
    customers = world["customers"].set_index("customer_id")
    for name in ["interactions", "purchases", "usage"]:
        events = world[name]
        signup = customers["signup_date"].reindex(events["customer_id"]).to_numpy()
        churn = customers["churn_date"].reindex(events["customer_id"]).to_numpy()
        ts = events["timestamp"].to_numpy()
        assert (ts >= signup).all(), name
        assert not (ts >= churn).any(), name


def test_usage_has_one_row_per_customer_day_event_and_asset(world):
    usage = world["usage"]
    key = ["customer_id", "timestamp", "event", "asset_id"]
    assert not usage[key].astype(str).duplicated().any()
    assert (usage["value"] > 0).all()
    assert {"login", "stream_minutes", "run_hours", "cycles"} <= set(usage["event"])


def test_returns_are_negative_rows_of_an_earlier_order(world):
    purchases = world["purchases"]
    returns = purchases[purchases["is_return"].to_numpy(bool)]
    sales = purchases[~purchases["is_return"].to_numpy(bool)].set_index("order_id")
    assert len(returns) > 0 and (returns["amount"] < 0).all()
    assert (sales.loc[returns["order_id"], "timestamp"].to_numpy() < returns["timestamp"].to_numpy()).all()


def test_generated_world_passes_validation(world):
    validation = pytest.importorskip("churnguard.validation")
    contract = {name: frame for name, frame in world.items() if name not in ("truth", "uplift_truth")}
    result = validation.validate_tables(contract, now=END)
    assert result.warnings == []
    assert {name: len(f) for name, f in result.tables.items() if name in contract} == {
        name: len(f) for name, f in contract.items()
    }


def test_truth_covers_exactly_the_population_at_each_as_of(world):
    tr, customers = world["truth"], world["customers"]
    as_of = tr["as_of"].drop_duplicates().sort_values()
    assert (as_of.dt.day == 1).all() and as_of.iloc[-1] == END
    for when in as_of.iloc[[0, -1]]:
        signed = customers["signup_date"] < when
        active = customers["churn_date"].isna() | (customers["churn_date"] >= when)
        expected = set(customers.loc[signed & active, "customer_id"])
        assert set(tr.loc[tr["as_of"] == when, "customer_id"]) == expected


def test_base_rates_are_in_the_planned_ranges(truth):
    assert 0.04 <= truth["churn"].mean() <= 0.15
    assert 0.04 <= truth["maintenance"].mean() <= 0.20


def test_oracle_ranks_realised_events_well_above_chance(truth):
    assert roc_auc_score(truth["churn"], truth["churn_probability"]) > 0.65
    assert roc_auc_score(truth["maintenance"], truth["maintenance_probability"]) > 0.75


def test_oracle_probabilities_are_calibrated_on_average(truth):
    assert truth["churn_probability"].mean() == pytest.approx(truth["churn"].mean(), rel=0.3)
    assert truth["maintenance_probability"].mean() == pytest.approx(truth["maintenance"].mean(), rel=0.3)


def test_unresolved_complaints_in_the_last_90_days_raise_churn(world, truth):
    it = world["interactions"]
    unresolved = it.loc[it["is_complaint"].to_numpy(bool) & ~it["resolved"].to_numpy(bool)]
    had = truth.index.isin(_rows_with_event_in(truth, unresolved[["customer_id", "timestamp"]], -90, 0))
    assert had.mean() > 0.03
    assert truth.loc[had, "churn"].mean() > 1.5 * truth.loc[~had, "churn"].mean()


def test_overdue_assets_fail_more(world):
    assets, se = world["assets"], world["service_events"]
    as_of = END - pd.Timedelta(days=180)
    before = se[se["timestamp"] < as_of]
    last = before[before["kind"] == "preventive"].groupby("asset_id")["timestamp"].max()
    churn = world["customers"].set_index("customer_id")["churn_date"].reindex(assets["customer_id"])
    # Assets of customers who already left get no service and no failures: leave them out.
    owner_active = (churn.isna() | (churn >= as_of)).to_numpy()
    old = (assets["install_date"] < as_of - pd.Timedelta(days=365)).to_numpy()
    a = assets[owner_active & old].set_index("asset_id")
    since = (as_of - last.reindex(a.index).fillna(a["install_date"])).dt.days
    overdue = since > a["service_interval_days"]
    window = se[(se["timestamp"] >= as_of) & (se["timestamp"] < as_of + HORIZON)]
    failed = a.index.isin(window.loc[window["kind"].isin(["repair", "failure"]), "asset_id"])
    assert overdue.mean() > 0.1
    assert failed[overdue.to_numpy()].mean() > 1.5 * failed[~overdue.to_numpy()].mean()


def test_usage_falls_before_churn_for_part_of_the_churners(world):
    customers, usage = world["customers"], world["usage"]
    usage = usage[usage["asset_id"].isna()]
    churners = customers.dropna(subset=["churn_date"])
    churners = churners[churners["churn_date"] >= END - pd.Timedelta(days=550)]
    u = usage.merge(churners[["customer_id", "churn_date"]], on="customer_id")
    days_before = (u["churn_date"] - u["timestamp"]).dt.days
    recent = u[days_before <= 42].groupby("customer_id").size()
    earlier = u[(days_before > 42) & (days_before <= 168)].groupby("customer_id").size() / 3
    ratio = (recent.reindex(earlier.index).fillna(0) / earlier)[earlier >= 2]
    assert len(ratio) > 30
    collapsed = (ratio < 0.3).mean()
    steady = (ratio >= 0.7).mean()
    # Some churners fade out first, others leave with their usage intact.
    assert collapsed > 0.2 and steady > 0.2


def test_write_world_writes_csv_atomically_named(tmp_path):
    paths = write_world(generate_world(60, seed=3), tmp_path, fmt="csv")
    assert sorted(p.name for p in paths.values()) == sorted(f"{n}.csv" for n in TABLE_NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.csv" for n in TABLE_NAMES)
    assert pd.read_csv(paths["customers"], dtype=str)["customer_id"].iloc[0] == "0000001"


def test_write_world_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_world({}, tmp_path, fmt="xlsx")


def test_generate_world_rejects_empty_base():
    with pytest.raises(ValueError, match="n_customers"):
        generate_world(0, seed=1)
