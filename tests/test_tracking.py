"""MLflow tracking, registry aliases, promotion and loading models back (tmp SQLite stores)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from churnguard.config import load_model_spec  # noqa: E402
from churnguard.training import load_task_model, promotion_decision, time_split, train_frame  # noqa: E402

STRONG = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7, "max_depth": 3,
          "min_child_samples": 20, "early_stopping_rounds": 10}
WEAK = {"n_estimators": 1, "num_leaves": 2, "max_depth": 1, "min_child_samples": 20}
FEATURES = ["interactions_complaints_90d", "purchases_days_since_last", "customers_plan"]


def stacked_frame(n_customers=500, n_cutoffs=7, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for c in pd.date_range("2023-01-01", periods=n_cutoffs, freq="MS"):
        complaints = rng.poisson(0.8, n_customers).astype(float)
        recency = rng.exponential(60, n_customers)
        plan = rng.choice(["basic", "gold", "pro"], n_customers)
        logit = -2.5 + 0.9 * complaints + 0.012 * recency + (plan == "basic") * 0.5
        parts.append(pd.DataFrame({
            "customer_id": [f"c{i:05d}" for i in range(n_customers)],
            "cutoff": c,
            "interactions_complaints_90d": complaints,
            "purchases_days_since_last": recency,
            "customers_plan": pd.Categorical(plan),
            "label": (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(int),
        }))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store with three runs: weak (first champion), strong (beats it), weak again."""
    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp}/mlflow.db"
    frame = stacked_frame()
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    spec = replace(load_model_spec(task="churn"), horizon_days=60)
    lines: list[str] = []
    runs = [train_frame(frame, replace(spec, lightgbm=params), split=split, tracking_uri=uri, log=lines.append)
            for params in (WEAK, STRONG, WEAK)]
    holdout = frame[frame["cutoff"] == split.holdout]
    return {"uri": uri, "tmp": tmp, "runs": runs, "holdout": holdout, "lines": lines}


def test_first_model_becomes_champion_when_none_is_registered(store):
    first = store["runs"][0]
    assert first.promoted and first.alias == "champion" and first.version == "1"
    assert "no champion" in first.reason


def test_better_model_on_the_same_held_out_rows_takes_the_champion_alias(store):
    weak, strong = store["runs"][:2]
    assert strong.promoted and strong.alias == "champion"
    assert strong.champion_metrics["roc_auc"] == pytest.approx(weak.metrics["model_roc_auc"])
    assert "promoted to champion" in strong.reason


def test_worse_model_stays_challenger_and_says_why(store):
    worse = store["runs"][2]
    assert not worse.promoted and worse.alias == "challenger"
    assert worse.reason.startswith("stays challenger: held-out roc_auc")
    assert worse.reason in store["lines"]
    client = mlflow.MlflowClient(store["uri"])
    assert str(client.get_model_version_by_alias("churnguard-churn", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("churnguard-churn", "challenger").version) == "3"


def test_run_logs_metrics_baselines_plots_and_data_window(store):
    strong = store["runs"][1]
    client = mlflow.MlflowClient(store["uri"])
    run = client.get_run(strong.run_id)
    for key in ("model_roc_auc", "rule_roc_auc", "logistic_roc_auc", "model_brier", "model_lift_top10", "rows_train"):
        assert key in run.data.metrics
    assert run.data.params["holdout_cutoff"] == strong.cutoffs["holdout"]
    assert run.data.params["lightgbm.num_leaves"] == "7"
    plots = {a.path for a in client.list_artifacts(strong.run_id, "plots")}
    assert {"plots/roc.png", "plots/pr.png", "plots/gains.png", "plots/calibration.png",
            "plots/shap_summary.png"} <= plots
    # Artifacts land beside the SQLite file, never in the working directory.
    assert (store["tmp"] / "mlartifacts").is_dir()


def test_champion_loads_back_with_identical_predictions(store):
    strong = store["runs"][1]
    loaded = load_task_model("churn", tracking_uri=store["uri"])
    assert (loaded.name, loaded.version, loaded.run_id) == ("churnguard-churn", "2", strong.run_id)
    X = store["holdout"][FEATURES]
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), strong.model.predict_proba(X))
    assert set(loaded.drift_reference) == set(FEATURES)
    assert loaded.drift_reference == strong.artifact.drift_reference
    assert loaded.task == "churn" and loaded.training_window == strong.cutoffs


def test_challenger_loads_by_alias_uri_and_local_directory(store, tmp_path):
    worse = store["runs"][2]
    by_alias = load_task_model("churn", tracking_uri=store["uri"], model_uri="models:/churnguard-churn@challenger")
    assert by_alias.version == "3"
    worse.artifact.save(tmp_path / "m")
    local = load_task_model(None, model_uri=str(tmp_path / "m"))
    assert local.task == "churn"  # read from the artifact.json beside the model
    X = store["holdout"][FEATURES]
    np.testing.assert_array_equal(local.estimator.predict_proba(X), by_alias.estimator.predict_proba(X))


def test_no_registered_champion_gives_none(store):
    assert load_task_model("maintenance", tracking_uri=store["uri"]) is None


def test_pyfunc_model_predicts_the_same_probabilities(store):
    strong = store["runs"][1]
    mlflow.set_tracking_uri(store["uri"])
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/churnguard-churn@champion")
        X = store["holdout"][FEATURES].head(200).copy()
        X["customers_plan"] = X["customers_plan"].astype(object)  # the logged signature's string type
        np.testing.assert_allclose(np.asarray(pyfunc.predict(X)), strong.model.predict_proba(X)[:, 1])
    finally:
        mlflow.set_tracking_uri(None)


def test_lower_is_better_metrics_promote_on_a_decrease():
    spec = load_model_spec(task="churn")
    spec = replace(spec, promotion=replace(spec.promotion, metric="brier", higher_is_better=False))
    assert promotion_decision(spec, {"brier": 0.10}, {"brier": 0.12}, "1")[0]
    assert not promotion_decision(spec, {"brier": 0.12}, {"brier": 0.10}, "1")[0]


def test_logged_model_folder_holds_artifact_json_beside_the_model_files(store, tmp_path):
    import json

    strong = store["runs"][1]
    mlflow.set_tracking_uri(store["uri"])
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri="models:/churnguard-churn/2", dst_path=str(tmp_path))
    finally:
        mlflow.set_tracking_uri(None)
    files = {p.name: p for p in Path(local).rglob("*.json")}
    assert {"artifact.json", "schema.json"} <= set(files)
    assert files["artifact.json"].parent == files["schema.json"].parent
    meta = json.loads(files["artifact.json"].read_text())
    assert (meta["task"], meta["horizon_days"], meta["label"]) == ("churn", 60, "auto")
    assert meta["training_window"] == strong.cutoffs and set(meta["drift_reference"]) == set(FEATURES)


def test_model_saved_before_artifact_json_keeps_its_metadata(store, tmp_path):
    import json

    strong = store["runs"][1]
    strong.model.save(tmp_path)
    schema = json.loads((tmp_path / "schema.json").read_text())
    # The old layout: training metadata and the drift reference inside schema.json.
    schema.update(task="churn", training_window=strong.cutoffs, reference=strong.artifact.drift_reference)
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    loaded = load_task_model(None, model_uri=str(tmp_path))
    assert loaded.task == "churn" and loaded.training_window == strong.cutoffs
    assert loaded.drift_reference == strong.artifact.drift_reference
    X = store["holdout"][FEATURES]
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), strong.model.predict_proba(X))


def test_champion_that_cannot_score_the_new_rows_is_replaced_whatever_the_scores():
    spec = load_model_spec(task="churn")
    promote, reason = promotion_decision(spec, {"roc_auc": 0.5}, None, "4",
                                         champion_problem="champion v4 cannot score the new held-out rows")
    assert promote and reason == "promoted to champion: champion v4 cannot score the new held-out rows"


def test_registered_result_carries_its_registry_identity(store):
    strong = store["runs"][1]
    assert (strong.artifact.name, strong.artifact.version, strong.artifact.run_id) == \
        ("churnguard-churn", "2", strong.run_id)
    assert strong.artifact.uri == "models:/churnguard-churn/2"
