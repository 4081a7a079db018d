"""Scoring: schema checks, suppression, capacity, atomic and deterministic output, SHAP."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churnguard.config import load_outreach_rules
from churnguard.scoring import OUTREACH_COLUMNS, SUPPRESSED_COLUMNS, score, write_outreach
from churnguard.training.model import ChurnModel, SchemaMismatchError
from writes import fail_on_write

AS_OF = pd.Timestamp("2024-03-01")
N = 300


@pytest.fixture(scope="module")
def world():
    """Hand-made customers, features, catalogue and two small models trained on them."""
    rng = np.random.default_rng(7)
    ids = [f"c{i:04d}" for i in range(N)]
    complaints = rng.poisson(0.8, N).astype(float)
    unresolved = np.minimum(complaints, rng.poisson(0.5, N)).astype(float)
    overdue = rng.gamma(2.0, 60.0, N)
    features = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="str"),
            "complaints_90d": complaints,
            "complaints_unresolved_90d": unresolved,
            "service_overdue_days_max": overdue,
            "tenure_days": rng.uniform(30, 2000, N),
            "plan": pd.Categorical(rng.choice(["basic", "gold"], N)),
            "service_worst_asset_product": pd.Series(rng.choice(["boiler", "heat pump"], N), dtype="str"),
        }
    )
    churn = (unresolved * 1.5 - features["tenure_days"] / 1000 + rng.normal(0, 1, N) > 0.5).astype(int)
    maint = (overdue / 100 + rng.normal(0, 0.7, N) > 1.6).astype(int)
    inputs = ["complaints_90d", "complaints_unresolved_90d", "service_overdue_days_max", "tenure_days", "plan"]
    params = {"n_estimators": 30, "min_child_samples": 10, "num_leaves": 8}
    models = {
        "churn": ChurnModel(params=params, calibration="none").fit(features[inputs], churn),
        "maintenance": ChurnModel(params=params, calibration="none").fit(features[inputs], maint),
    }
    catalogue = pd.DataFrame(
        {
            "name": inputs + ["service_worst_asset_product"],
            "reason": [
                "{complaints_unresolved_90d:.0f} of {complaints_90d:.0f} complaints in the last 90 days unresolved",
                "{complaints_unresolved_90d:.0f} of {complaints_90d:.0f} complaints in the last 90 days unresolved",
                "{service_worst_asset_product} {service_overdue_days_max:.0f} days past its service interval",
                "customer for only {tenure_days:.0f} days",
                "",
                "",
            ],
            "direction": ["up", "up", "up", "down", "up", "up"],
            "model_input": [True] * 5 + [False],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="str"),
            "value": rng.uniform(100, 1000, N),
            "preferred_channel": pd.Series(rng.choice(["email", "sms", None], N), dtype="str"),
            "do_not_contact": pd.array([False] * N, dtype="boolean"),
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="str"),
            "timestamp": pd.Series([], dtype="datetime64[us]"),
            "channel": pd.Series([], dtype="str"),
            "is_complaint": pd.array([], dtype="boolean"),
            "resolved": pd.array([], dtype="boolean"),
        }
    )
    return {"features": features, "models": models, "catalogue": catalogue,
            "tables": {"customers": customers, "interactions": interactions}}


def run(world, **kwargs):
    kwargs.setdefault("models", world["models"])
    tables = kwargs.pop("tables", world["tables"])
    return score(tables, AS_OF, features=kwargs.pop("features", world["features"]),
                 catalogue=world["catalogue"], **kwargs)


def test_outreach_list_has_exactly_the_contract_columns(world):
    result = run(world)
    assert list(result.outreach.columns) == OUTREACH_COLUMNS
    assert list(result.suppressed.columns) == SUPPRESSED_COLUMNS


def test_without_capacity_every_eligible_customer_is_ranked(world):
    result = run(world)
    status = result.scored["status"]
    assert not (status == "over_capacity").any()
    assert len(result.outreach) == (status == "listed").sum() > 0
    assert result.outreach["rank"].tolist() == list(range(1, len(result.outreach) + 1))


def test_list_is_ordered_by_priority_then_customer_id(world):
    out = run(world).outreach
    key = list(zip(-out["priority"], out["customer_id"]))
    assert key == sorted(key)


def test_priority_is_the_expected_value_saved_net_of_the_contact_cost(world):
    result = run(world)
    rules = load_outreach_rules()
    scored = result.scored.set_index("customer_id")
    cost = scored["channel"].map(rules.contact_cost)
    churn_saved = scored["churn_probability"] * scored["value"] * rules.actions["retention_call"].save_rate
    visit = scored["maintenance_probability"] >= rules.visit_threshold
    maint_rate = np.where(visit, rules.actions["maintenance_visit"].save_rate,
                          rules.actions["maintenance_reminder"].save_rate)
    maint_saved = scored["maintenance_probability"] * rules.maintenance_cost * maint_rate
    expected = pd.Series(np.select(
        [scored["action"] == "retention_call", scored["action"].str.startswith("maintenance"),
         scored["action"] == "retention_call+maintenance_visit"],
        [churn_saved - cost, maint_saved - cost, churn_saved + maint_saved - cost]), index=scored.index)
    np.testing.assert_allclose(scored["priority"], expected)
    out = result.outreach.set_index("customer_id")
    assert (out["priority"] > 0).all()


def test_a_retention_call_needs_the_minimum_churn_probability_whatever_the_value(world):
    tables = dict(world["tables"])
    customers = tables["customers"].copy()
    customers["value"] = 1e7  # value alone must not make a safe customer a call
    tables["customers"] = customers
    result = run(world, tables=tables, models={"churn": world["models"]["churn"]})
    minimum = load_outreach_rules().actions["retention_call"].min_probability
    assert (result.outreach["churn_probability"] >= minimum).all()
    below = result.scored["churn_probability"] < minimum
    assert below.any() and (result.scored.loc[below, "status"] == "below_threshold").all()


def test_a_maintenance_visit_due_always_gets_a_maintenance_action_booked_by_phone(world):
    result = run(world)
    scored = result.scored
    rules = load_outreach_rules()
    due = scored["maintenance_probability"] >= rules.visit_threshold
    assert due.any()
    assert scored.loc[due, "action"].isin(["maintenance_visit", "retention_call+maintenance_visit"]).all()
    both = due & (scored["churn_probability"] >= rules.actions["retention_call"].min_probability)
    assert (scored.loc[both, "action"] == "retention_call+maintenance_visit").all()
    visits = scored["action"].str.contains("maintenance_visit")
    assert (scored.loc[visits, "channel"] == "phone").all()
    assert set(scored["channel"]) <= {"email", "sms", "phone"}


def test_high_risk_retention_calls_go_by_phone_unless_the_customer_refuses(world):
    tables = dict(world["tables"])
    customers = tables["customers"].copy()
    customers["preferred_channel"] = "email"
    customers["refuses_phone"] = pd.array([i % 2 == 0 for i in range(N)], dtype="boolean")
    tables["customers"] = customers
    result = run(world, tables=tables, models={"churn": world["models"]["churn"]})
    rules = load_outreach_rules()
    rows = result.scored.merge(customers[["customer_id", "refuses_phone"]], on="customer_id")
    high = (rows["churn_probability"] >= rules.phone_from_probability) & (rows["action"] == "retention_call")
    assert high.any()
    assert (rows.loc[high & ~rows["refuses_phone"], "channel"] == "phone").all()
    assert (rows.loc[high & rows["refuses_phone"], "channel"] == "email").all()
    assert (rows.loc[~high, "channel"] == "email").all()


def test_suppressed_customers_are_not_ranked_and_the_file_says_why(world):
    tables = dict(world["tables"])
    customers = tables["customers"].copy()
    customers.loc[customers["customer_id"] == "c0001", "do_not_contact"] = True
    tables["customers"] = customers
    day = pd.Timedelta(days=1)
    tables["interactions"] = pd.DataFrame(
        {
            "customer_id": pd.array(["c0002", "c0003", "c0004", "c0005", "c0006"], dtype="str"),
            "timestamp": pd.Series([AS_OF - 3 * day, AS_OF - 5 * day, AS_OF - 60 * day, AS_OF, AS_OF - 20 * day],
                                   dtype="datetime64[us]"),
            "channel": pd.array(["phone"] * 5, dtype="str"),
            "is_complaint": pd.array([False, True, True, True, False], dtype="boolean"),
            "resolved": pd.array([True, False, False, False, True], dtype="boolean"),
        }
    )
    result = run(world, tables=tables)
    reasons = dict(zip(result.suppressed["customer_id"], result.suppressed["reason"]))
    assert reasons == {
        "c0001": "do_not_contact",
        "c0002": "contacted_recently",
        "c0003": "contacted_recently; open_complaint",
    }
    # c0004's complaint is old (a reason to call), c0005's is stamped at as_of (not yet happened).
    assert not set(reasons) & set(result.outreach["customer_id"])
    assert {"c0004", "c0005", "c0006"} <= set(result.outreach["customer_id"])
    assert result.suppressed["churn_probability"].notna().all()


def test_capacity_caps_the_list_at_the_top_priorities(world):
    full = run(world).outreach
    capped = run(world, capacity=25).outreach
    assert len(capped) == 25
    assert capped["customer_id"].tolist() == full["customer_id"].head(25).tolist()


def test_capacity_per_action_caps_each_action_before_the_global_cap(world):
    full = run(world).outreach
    assert full["action"].value_counts().get("retention_call", 0) > 5
    rules = replace(load_outreach_rules(), capacity_per_action={"retention_call": 5})
    capped = run(world, rules=rules).outreach
    assert (capped["action"] == "retention_call").sum() == 5
    assert len(capped) == len(full) - (full["action"] == "retention_call").sum() + 5
    assert capped["rank"].tolist() == list(range(1, len(capped) + 1))


def test_only_churn_model_leaves_maintenance_columns_empty(world, tmp_path):
    result = run(world, models={"churn": world["models"]["churn"]})
    assert result.outreach["maintenance_probability"].isna().all()
    assert result.outreach["churn_probability"].notna().all()
    assert (result.outreach["action"] == "retention_call").all()
    explanation = json.loads(result.outreach["explanation"].iloc[0])
    assert list(explanation) == ["churn"]
    path, _ = write_outreach(result, tmp_path / "outreach.csv")
    assert pd.read_csv(path)["maintenance_probability"].isna().all()


def test_schema_mismatch_names_the_missing_and_mistyped_features(world):
    broken = world["features"].drop(columns=["tenure_days"]).assign(plan=1.0)
    with pytest.raises(SchemaMismatchError, match="tenure_days") as err:
        run(world, features=broken)
    assert err.value.missing == ["tenure_days"]
    assert "plan" in err.value.mistyped


def test_failing_write_leaves_no_file_at_either_path(world, tmp_path, monkeypatch):
    result = run(world)
    out = tmp_path / "lists" / "outreach.csv"
    fail_on_write(monkeypatch, 2)  # the outreach list is complete, the suppressed list fails
    with pytest.raises(OSError, match="disk full"):
        write_outreach(result, out)
    assert list(out.parent.iterdir()) == []


def test_same_inputs_give_the_same_list_bytes(world, tmp_path):
    a, _ = write_outreach(run(world), tmp_path / "a.csv")
    b, _ = write_outreach(run(world), tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()


def test_chunked_scoring_equals_scoring_in_one_chunk(world):
    one = run(world, explain="all")
    chunked = run(world, explain="all", chunk_size=64)
    pd.testing.assert_frame_equal(one.outreach, chunked.outreach)
    pd.testing.assert_frame_equal(one.suppressed, chunked.suppressed)


def test_only_listed_customers_are_explained_unless_explain_all(world):
    listed = run(world, capacity=10)
    assert listed.outreach["explanation"].notna().all()
    assert "explanation" not in listed.scored.columns
    everyone = run(world, capacity=10, explain="all")
    assert everyone.scored["explanation"].notna().all()
    pd.testing.assert_frame_equal(listed.outreach, everyone.outreach)


def test_reasons_are_sentences_not_feature_names(world):
    out = run(world).outreach
    names = set(world["catalogue"]["name"])
    texts = out[["reason_1", "reason_2", "reason_3"]].stack().dropna()
    assert len(texts) > N // 2
    assert not any(name in text for text in texts for name in names)


def test_explanation_lists_each_tasks_top_features_with_value_and_shap(world):
    out = run(world, capacity=5).outreach
    explanation = json.loads(out["explanation"].iloc[0])
    assert set(explanation) == {"churn", "maintenance"}
    entry = explanation["churn"][0]
    assert set(entry) == {"feature", "value", "shap"}
    shaps = [abs(e["shap"]) for e in explanation["churn"]]
    assert shaps == sorted(shaps, reverse=True)


def test_contributions_sum_to_the_model_margin(world):
    model = world["models"]["churn"]
    X = world["features"].head(50)
    contributions = model.contributions(X)
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_margin(X), atol=1e-9)


def test_lightgbm_and_shap_library_contributions_agree(world):
    shap = pytest.importorskip("shap")
    model = world["models"]["churn"]
    X = world["features"][["complaints_90d", "complaints_unresolved_90d", "service_overdue_days_max", "tenure_days"]]
    # shap's TreeExplainer reads numeric LightGBM models; train one without the categorical.
    numeric = ChurnModel(params={"n_estimators": 20, "num_leaves": 8, "min_child_samples": 10},
                         calibration="none").fit(X, (X["complaints_unresolved_90d"] > 0).astype(int))
    ours = numeric.contributions(X.head(40)).drop(columns="bias").to_numpy()
    theirs = shap.TreeExplainer(numeric.booster_).shap_values(X.head(40).to_numpy())
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_fast_treeshap_path_gives_the_same_list_as_lightgbm_contributions(world, monkeypatch):
    pytest.importorskip("churnguard.treeshap")
    import churnguard.outreach.explain as explain

    slow = run(world, explain="all")
    monkeypatch.setattr(explain, "FAST_SHAP_MIN_ROWS", 0)
    assert set(explain.explainers(world["models"], N)) == {"churn", "maintenance"}
    fast = run(world, explain="all")
    pd.testing.assert_frame_equal(slow.outreach.drop(columns="explanation"), fast.outreach.drop(columns="explanation"))
    for a, b in zip(slow.outreach["explanation"], fast.outreach["explanation"]):
        for task, entries in json.loads(a).items():
            np.testing.assert_allclose([e["shap"] for e in entries],
                                       [e["shap"] for e in json.loads(b)[task]], atol=1e-4)


def test_customers_without_an_installed_product_get_no_maintenance_score(world):
    tables = dict(world["tables"])
    tables["assets"] = pd.DataFrame({
        "asset_id": pd.array(["A1", "A2"], dtype="str"),
        "customer_id": pd.array(["c0001", "c0002"], dtype="str"),
        "install_date": pd.Series([AS_OF - pd.Timedelta(days=400), AS_OF + pd.Timedelta(days=3)], dtype="datetime64[us]"),
    })
    result = run(world, tables=tables, explain="all")
    scored = result.scored.set_index("customer_id")
    assert scored["maintenance_probability"].notna().tolist() == (scored.index == "c0001").tolist()
    assert not scored["action"].drop("c0001").str.startswith("maintenance").any()
    assert "maintenance" not in json.loads(scored.loc["c0002", "explanation"])
    assert "maintenance" in json.loads(scored.loc["c0001", "explanation"])


def test_a_time_zone_aware_as_of_scores_the_same_instant_as_its_utc_time(world):
    naive = run(world)
    aware = score(world["tables"], AS_OF.tz_localize("UTC").tz_convert("Europe/Paris"), world["models"],
                  features=world["features"], catalogue=world["catalogue"])
    assert aware.as_of == AS_OF
    pd.testing.assert_frame_equal(aware.outreach, naive.outreach)
    pd.testing.assert_frame_equal(aware.suppressed, naive.suppressed)


# --------------------------------------------------------------------------- issue 15: the population the model learned


def _shop(world, lookback_days=180):
    """The test world as a shop: a third bought recently, a third lapsed long ago, a third never."""
    from churnguard.training import ModelArtifact

    ids = world["tables"]["customers"]["customer_id"].tolist()
    recent = [c for i, c in enumerate(ids) if i % 3 == 0]
    lapsed = [c for i, c in enumerate(ids) if i % 3 == 1]
    purchases = pd.DataFrame({
        "customer_id": pd.array(recent + lapsed, dtype="str"),
        "timestamp": pd.Series([AS_OF - pd.Timedelta(days=20)] * len(recent)
                               + [AS_OF - pd.Timedelta(days=400)] * len(lapsed), dtype="datetime64[us]"),
        "amount": 10.0,
    })
    tables = {**world["tables"], "purchases": purchases}
    churn = ModelArtifact(world["models"]["churn"], task="churn", label="inactivity", lookback_days=lookback_days)
    return tables, {"churn": churn}, set(recent), set(lapsed)


def test_every_ranked_retention_customer_is_in_the_churn_label_population(world):
    from churnguard.timeline import task_population

    tables, models, recent, lapsed = _shop(world)
    result = run(world, tables=tables, models=models)
    members = set(task_population(tables, AS_OF, "churn", definition="inactivity", lookback_days=180))
    assert members == recent
    calls = result.outreach.loc[result.outreach["action"] == "retention_call", "customer_id"]
    assert len(calls) > 0 and set(calls) <= members
    outside = result.scored[~result.scored["customer_id"].isin(members)]
    assert outside["churn_probability"].isna().all()


def test_customers_outside_the_churn_population_are_suppressed_as_lapsed_or_never_bought(world):
    tables, models, recent, lapsed = _shop(world)
    result = run(world, tables=tables, models=models)
    reasons = dict(zip(result.suppressed["customer_id"], result.suppressed["reason"]))
    some_lapsed = sorted(lapsed)[0]
    assert reasons[some_lapsed] == "lapsed (400 days since last purchase)"
    never = sorted(set(tables["customers"]["customer_id"]) - recent - lapsed)[0]
    assert reasons[never] == "never_bought"
    assert result.suppressed["priority"].is_monotonic_decreasing


def test_the_win_back_rule_ranks_lapsed_buyers_after_every_other_action(world):
    tables, models, recent, lapsed = _shop(world)
    rules = replace(load_outreach_rules(), win_back=True)
    result = run(world, tables=tables, models=models, rules=rules)
    actions = result.outreach["action"].tolist()
    assert "win_back" in actions and "retention_call" in actions
    first_win_back = actions.index("win_back")
    assert set(actions[first_win_back:]) == {"win_back"}
    assert set(result.outreach.loc[result.outreach["action"] == "win_back", "customer_id"]) <= lapsed
    # Lapsed buyers left in the suppressed file are those a win-back would not pay for.
    still = result.suppressed[result.suppressed["reason"].str.startswith("lapsed")]
    assert (still["priority"] <= 0).all()
    # Off by default: the same lapsed buyers are suppressed instead.
    assert "win_back" not in run(world, tables=tables, models=models).outreach["action"].tolist()


def test_a_quiet_day_holds_everyone_back_and_the_rule_names_it(world):
    rules = replace(load_outreach_rules(), quiet_weekdays=(AS_OF.day_name(),))
    result = run(world, rules=rules)
    assert len(result.outreach) == 0
    assert result.suppressed["reason"].str.contains("quiet_day").all()


def test_a_customer_contacted_proactively_within_their_own_interval_is_held_back(world):
    tables = dict(world["tables"])
    customers = tables["customers"].copy()
    customers["contact_every_days"] = np.where(customers["customer_id"] == "c0001", 90.0, np.nan)
    tables["customers"] = customers
    tables["outreach_log"] = pd.DataFrame({
        "customer_id": ["c0001", "c0002", "c0003"], "list_date": [AS_OF - pd.Timedelta(days=60)] * 2 + [AS_OF],
        "action": "retention_call", "group": "treatment",
        "contacted_at": [AS_OF - pd.Timedelta(days=60)] * 2 + [AS_OF - pd.Timedelta(days=5)],
    })
    result = run(world, tables=tables)
    reasons = dict(zip(result.suppressed["customer_id"], result.suppressed["reason"]))
    assert reasons.get("c0001") == "contact_frequency"  # 60 days ago, asked for 90
    assert "c0002" not in reasons  # 60 days ago, the default 30 has passed
    assert reasons.get("c0003") == "contact_frequency"


def test_a_validated_outreach_log_holds_back_only_the_reached_and_changes_no_probability(world):
    from churnguard.validation import validate_tables

    tables = dict(world["tables"])
    raw_log = pd.DataFrame({
        "customer_id": ["c0001", "c0002", "c0003"], "list_date": [str((AS_OF - pd.Timedelta(days=10)).date())] * 3,
        "action": "retention_call", "group": ["Treatment", "treatment", "control"],
        "contacted_at": [str(AS_OF - pd.Timedelta(days=9)), None, None],
    })
    tables["outreach_log"] = validate_tables({"customers": tables["customers"], "outreach_log": raw_log},
                                             now=AS_OF).tables["outreach_log"]
    with_log, without = run(world, tables=tables), run(world)
    reasons = dict(zip(with_log.suppressed["customer_id"], with_log.suppressed["reason"]))
    assert reasons.get("c0001") == "contact_frequency"
    assert "c0002" not in reasons  # on the list but not reached: no contact
    assert "c0003" not in reasons  # control: never contacted
    pd.testing.assert_frame_equal(with_log.scored[["customer_id", "churn_probability", "maintenance_probability"]],
                                  without.scored[["customer_id", "churn_probability", "maintenance_probability"]])


def test_a_log_without_contact_times_counts_each_treatment_row_on_its_list_date(world):
    from churnguard.validation import validate_tables

    tables = dict(world["tables"])
    raw_log = pd.DataFrame({"customer_id": ["c0001", "c0003"], "list_date": str((AS_OF - pd.Timedelta(days=10)).date()),
                            "action": "retention_call", "group": ["treatment", "control"]})
    # Validation adds the optional contacted_at column, empty in every row.
    log = validate_tables({"customers": tables["customers"], "outreach_log": raw_log}, now=AS_OF).tables["outreach_log"]
    assert "contacted_at" in log and log["contacted_at"].isna().all()
    tables["outreach_log"] = log
    reasons = dict(zip(*run(world, tables=tables).suppressed[["customer_id", "reason"]].T.values))
    assert reasons.get("c0001") == "contact_frequency"
    assert "c0003" not in reasons
