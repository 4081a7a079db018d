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
def campaign_world():
    return generate_world(3000, seed=11, end=END, campaigns=True)


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


def test_world_has_every_contract_table_and_truth(world, campaign_world):
    assert set(world) == set(TABLE_NAMES) - {"outreach_log", "uplift_truth"}
    assert all(len(frame) > 0 for frame in world.values())
    assert list(campaign_world) == list(TABLE_NAMES)
    assert all(len(frame) > 0 for frame in campaign_world.values())


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


@pytest.mark.parametrize("which", ["world", "campaign_world"])
def test_generated_world_passes_validation(which, request):
    world = request.getfixturevalue(which)
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
    paths = write_world(generate_world(60, seed=3, campaigns=True), tmp_path, fmt="csv")
    assert sorted(p.name for p in paths.values()) == sorted(f"{n}.csv" for n in TABLE_NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.csv" for n in TABLE_NAMES)
    assert pd.read_csv(paths["customers"], dtype=str)["customer_id"].iloc[0] == "0000001"


def test_write_world_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_world({}, tmp_path, fmt="xlsx")


def test_generate_world_rejects_empty_base():
    with pytest.raises(ValueError, match="n_customers"):
        generate_world(0, seed=1)


# --------------------------------------------------------------------------- past campaigns

LIST_DATES = [pd.Timestamp(d) for d in ("2025-11-01", "2026-02-01", "2026-05-01", "2026-08-01")]


@pytest.fixture(scope="module")
def campaigns(campaign_world):
    """uplift_truth joined to the truth at each list date, with the realised 90-day churn."""
    truth = campaign_world["truth"].rename(columns={"as_of": "list_date"})
    rows = campaign_world["uplift_truth"].merge(truth, on=["customer_id", "list_date"], how="left", validate="1:1")
    churn_date = campaign_world["customers"].set_index("customer_id")["churn_date"].reindex(rows["customer_id"]).to_numpy()
    rows["churned"] = (churn_date >= rows["list_date"].to_numpy()) & (churn_date < (rows["list_date"] + HORIZON).to_numpy())
    return rows


def test_campaign_lists_fall_every_third_month_in_the_second_half_with_complete_windows(campaign_world):
    log = campaign_campaign_world["outreach_log"]
    assert sorted(log["list_date"].unique()) == LIST_DATES
    assert set(log["action"]) == {"retention_call"}
    assert not log.duplicated(["customer_id", "list_date", "action"]).any()
    assert (log["list_date"] + HORIZON).max() <= END


def test_control_groups_and_reach_are_within_binomial_noise_of_their_shares(campaign_world):
    log = campaign_world["outreach_log"]
    control = (log["group"] == "control").to_numpy()
    n = len(log)
    assert abs(control.mean() - 0.20) < 3 * np.sqrt(0.2 * 0.8 / n)
    reached = log.loc[~control, "contacted_at"].notna().to_numpy()
    assert abs(reached.mean() - 0.80) < 3 * np.sqrt(0.8 * 0.2 / len(reached))


def test_controls_are_never_contacted_and_calls_fall_on_the_list_date_in_office_hours(campaign_world):
    log = campaign_world["outreach_log"]
    control = log["group"] == "control"
    assert log.loc[control, ["contacted_at", "channel", "outcome"]].isna().all().all()
    called = log[log["contacted_at"].notna()]
    assert (called["contacted_at"].dt.normalize() == called["list_date"]).all()
    assert called["contacted_at"].dt.hour.between(9, 16).all()
    assert set(log.loc[~control, "outcome"]) == {"reached", "no_answer"}
    assert (log.loc[~control, "outcome"] == "reached").tolist() == log.loc[~control, "contacted_at"].notna().tolist()


def test_every_contactable_customer_over_the_risk_threshold_is_on_the_list(campaign_world):
    truth, customers = campaign_world["truth"], campaign_world["customers"].set_index("customer_id")
    log = campaign_world["outreach_log"]
    for day in LIST_DATES:
        active = truth[truth["as_of"] == day]
        active = active[~customers["do_not_contact"].reindex(active["customer_id"]).to_numpy(bool)]
        listed = active["customer_id"].isin(log.loc[log["list_date"] == day, "customer_id"]).to_numpy()
        risky = (active["churn_probability"] >= 0.06).to_numpy()
        assert listed[risky].all()
        # The others only by the 5 % per-customer draw.
        assert abs(listed[~risky].mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / (~risky).sum())
    assert not log["customer_id"].isin(customers.index[customers["do_not_contact"].to_numpy(bool)]).any()


def test_uplift_truth_control_arm_is_the_oracle_and_the_effect_is_the_difference(campaigns):
    assert campaigns["churn_probability"].notna().all()
    np.testing.assert_array_equal(campaigns["churn_probability_control"], campaigns["churn_probability"])
    np.testing.assert_allclose(campaigns["treatment_effect"],
                               campaigns["churn_probability_treated"] - campaigns["churn_probability_control"])
    np.testing.assert_allclose(campaigns["churn_probability_treated"],
                               0.8 * campaigns["churn_probability_contacted"]
                               + 0.2 * campaigns["churn_probability_control"])
    assert (campaigns["horizon_days"] == 90).all()
    assert campaigns[["churn_probability_control", "churn_probability_treated"]].stack().between(0, 1).all()


def test_calls_keep_the_troubled_not_the_disengaged_and_wake_the_sleeping_dogs(campaign_world, campaigns):
    interactions = campaign_world["interactions"]
    unresolved = interactions[interactions["is_complaint"].to_numpy(bool) & ~interactions["resolved"].to_numpy(bool)]
    rows = campaigns.reset_index(drop=True)
    recent = rows.index.isin(_rows_with_event_in(
        rows.rename(columns={"list_date": "as_of"}), unresolved[["customer_id", "timestamp"]], -90, 0))
    disengaged, dog = rows["disengaged"].to_numpy(bool), rows["sleeping_dog"].to_numpy(bool)
    effect = rows["treatment_effect"].to_numpy()
    persuadable, quiet = recent & ~disengaged & ~dog, ~recent & ~disengaged & ~dog
    # An unresolved complaint in the last 90 days: the call clears it and keeps the customer.
    assert effect[persuadable].mean() < -0.025
    assert effect[persuadable].mean() < 5 * effect[quiet].mean() < 0  # about ten times: -3.4 vs -0.3 points
    assert abs(effect[disengaged & ~dog].mean()) < 0.002  # lost causes
    assert effect[dog & ~disengaged].mean() > 0.02 and (effect[dog & ~disengaged] > 0).all()


def test_realised_churn_of_each_group_follows_its_oracle_arm_on_average(campaigns):
    expected = np.where(campaigns["contacted"].to_numpy(bool), campaigns["churn_probability_contacted"],
                        campaigns["churn_probability_control"])
    for group in ("treatment", "control"):
        mine = (campaigns["group"] == group).to_numpy()
        assert campaigns["churned"][mine].mean() == pytest.approx(expected[mine].mean(), rel=0.3), group


def test_without_campaigns_the_history_before_the_first_list_is_the_same_and_no_log_is_written(
        world, campaign_world):
    assert "outreach_log" not in world and "uplift_truth" not in world
    first = LIST_DATES[0]
    # The campaign draws have a stream of their own: up to the first list the two worlds are one.
    # (Interactions are left out: a chain of follow-up contacts is written a step or more after
    # its time, so contacts stamped before the first list can come from later steps.)
    for name in ["purchases", "service_events", "usage"]:
        # (Service costs are drawn once the simulation is over.)
        before = [w[name][w[name]["timestamp"] < first].drop(columns="cost", errors="ignore").reset_index(drop=True)
                  for w in (campaign_world, world)]
        pd.testing.assert_frame_equal(*before)
    truths = [w["truth"][w["truth"]["as_of"] <= first].reset_index(drop=True) for w in (campaign_world, world)]
    pd.testing.assert_frame_equal(*truths)
