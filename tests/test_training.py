"""ChurnModel, splits and evaluation: behaviour on small generated frames (no MLflow)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from churnguard import drift
from churnguard.config import load_model_spec
from churnguard.training import ChurnModel, SchemaMismatchError, calibrate, time_split, train_frame
from churnguard.training.model import PROBABILITY_FLOOR
from churnguard.training.evaluation import RuleBaseline, choose_heuristic_feature, classification_metrics
from churnguard.training.fit import model_features
from churnguard.training.plan import split_parts
from churnguard.training.splits import cut_tables

FAST = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7, "max_depth": 3,
        "min_child_samples": 20, "early_stopping_rounds": 10}


def stacked_frame(n_customers=600, n_cutoffs=8, seed=0):
    """customer_id, cutoff, features, label; churn driven by complaints and recency."""
    rng = np.random.default_rng(seed)
    cutoffs = pd.date_range("2023-01-01", periods=n_cutoffs, freq="MS")
    rows = []
    for c in cutoffs:
        complaints = rng.poisson(0.8, n_customers).astype(float)
        recency = rng.exponential(60, n_customers)
        recency[rng.random(n_customers) < 0.05] = np.nan
        plan = rng.choice(["basic", "gold", "pro"], n_customers)
        logit = -2.5 + 0.9 * complaints + 0.012 * np.nan_to_num(recency, nan=60) + (plan == "basic") * 0.5
        label = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(int)
        rows.append(pd.DataFrame({
            "customer_id": [f"c{i:05d}" for i in range(n_customers)],
            "cutoff": c,
            "interactions_complaints_90d": complaints,
            "purchases_days_since_last": recency,
            "customers_plan": pd.Categorical(plan, categories=["basic", "gold", "pro"]),
            "label": label,
        }))
    return pd.concat(rows, ignore_index=True)


FEATURES = ["interactions_complaints_90d", "purchases_days_since_last", "customers_plan"]


@pytest.fixture(scope="module")
def frame():
    return stacked_frame()


@pytest.fixture(scope="module")
def fitted(frame):
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    parts = split_parts(frame, split)
    train, valid = frame[parts == "train"], frame[parts == "valid"]
    model = ChurnModel(params=FAST).fit(train[FEATURES], train["label"],
                                        X_valid=valid[FEATURES], y_valid=valid["label"])
    return model, frame[parts == "test"]


# --------------------------------------------------------------------------- time split


def test_time_split_trains_only_on_strictly_older_cutoffs_and_never_on_held_out_rows(frame):
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    parts = split_parts(frame, split)
    train, valid, test = (frame[parts == p] for p in ("train", "valid", "test"))
    assert train["cutoff"].max() < valid["cutoff"].min() < test["cutoff"].min()
    keys = lambda f: set(zip(f["customer_id"], f["cutoff"]))  # noqa: E731
    assert not keys(train) & keys(valid)
    assert not keys(train) & keys(test)
    assert not keys(valid) & keys(test)


def test_no_training_or_validation_label_window_reaches_past_the_held_out_cutoff(frame):
    horizon = 60
    split = time_split(frame["cutoff"].unique(), horizon_days=horizon)
    assert split.embargo
    for c in (*split.train, split.valid):
        assert c + pd.Timedelta(days=horizon) <= split.holdout


def test_time_split_keeps_the_newest_n_training_cutoffs():
    cutoffs = pd.date_range("2022-01-01", periods=20, freq="MS")
    split = time_split(cutoffs, horizon_days=90, n_train=12)
    assert len(split.train) == 12 and split.train[-1] < split.valid


def test_time_split_refuses_fewer_than_three_cutoffs():
    with pytest.raises(ValueError, match="at least 3"):
        time_split(pd.date_range("2024-01-01", periods=2, freq="MS"), horizon_days=90)


def test_cut_tables_drops_everything_at_or_after_as_of():
    as_of = pd.Timestamp("2024-02-01")
    tables = {
        "customers": pd.DataFrame({"customer_id": ["a", "b"],
                                   "churn_date": pd.to_datetime(["2024-02-01", "2024-01-15"])}),
        "interactions": pd.DataFrame({"customer_id": ["a", "a"], "channel": ["x", "y"],
                                      "timestamp": pd.to_datetime(["2024-01-31 23:59", "2024-02-01 00:00"])}),
        "assets": pd.DataFrame({"asset_id": ["1", "2"], "customer_id": ["a", "a"],
                                "install_date": pd.to_datetime(["2023-01-01", "2024-03-01"])}),
    }
    cut = cut_tables(tables, as_of)
    assert list(cut["interactions"]["channel"]) == ["x"]
    assert cut["customers"]["churn_date"].isna().tolist() == [True, False]
    assert list(cut["assets"]["asset_id"]) == ["1"]


def test_context_columns_are_not_model_inputs():
    frame = pd.DataFrame(columns=["customer_id", "cutoff", "service_overdue_days_max",
                                  "service_worst_asset_product", "label"])
    catalogue = pd.DataFrame({"name": ["service_overdue_days_max", "service_worst_asset_product"],
                              "model_input": [True, False]})
    assert model_features(frame, catalogue) == ["service_overdue_days_max"]


# --------------------------------------------------------------------------- model


def test_model_ranks_held_out_rows_well(fitted):
    model, test = fitted
    auc = classification_metrics(test["label"], model.predict_proba(test[FEATURES])[:, 1])["roc_auc"]
    assert auc > 0.7


def test_default_beta_calibration_lowers_brier_and_keeps_the_model_order(fitted, frame):
    model, test = fitted
    assert model.calibration_["method"] == "beta"
    margin = model.predict_margin(test[FEATURES])
    raw = 1 / (1 + np.exp(-margin))  # the class-weighted score before calibration
    calibrated = model.predict_proba(test[FEATURES])[:, 1]
    assert brier_score_loss(test["label"], calibrated) < brier_score_loss(test["label"], raw)
    # Strictly increasing: a higher raw score always means a higher probability, no ties.
    order = np.argsort(margin, kind="mergesort")
    distinct = np.diff(margin[order]) > 0
    assert np.all(np.diff(calibrated[order])[distinct] > 0)
    assert calibrated.min() > 0 and calibrated.max() < 1


def test_beta_calibration_never_reaches_zero_or_one_even_at_extreme_scores(fitted):
    model, _ = fitted
    p = calibrate(np.array([-1e3, -60.0, 0.0, 60.0, 1e3]), model.calibration_)
    assert np.all(p >= PROBABILITY_FLOOR) and np.all(p <= 1 - PROBABILITY_FLOOR)
    assert np.all(np.round(p, 6) > 0) and np.all(np.round(p, 6) < 1)


def test_isotonic_calibration_lowers_held_out_brier_and_is_monotone(frame):
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    parts = split_parts(frame, split)
    train, valid, test = frame[parts == "train"], frame[parts == "valid"], frame[parts == "test"]
    model = ChurnModel(params=FAST, calibration="isotonic").fit(
        train[FEATURES], train["label"], X_valid=valid[FEATURES], y_valid=valid["label"])
    margin = model.predict_margin(test[FEATURES])
    raw = 1 / (1 + np.exp(-margin))
    calibrated = model.predict_proba(test[FEATURES])[:, 1]
    assert brier_score_loss(test["label"], calibrated) < brier_score_loss(test["label"], raw)
    order = np.argsort(margin)
    assert np.all(np.diff(calibrated[order]) >= 0)


def test_sigmoid_calibration_is_stored_as_two_numbers_and_monotone(frame):
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    parts = split_parts(frame, split)
    train, valid = frame[parts == "train"], frame[parts == "valid"]
    model = ChurnModel(params=FAST, calibration="sigmoid").fit(
        train[FEATURES], train["label"], X_cal=valid[FEATURES], y_cal=valid["label"])
    assert set(model.calibration_) == {"method", "a", "b"} and model.calibration_["a"] > 0
    p = calibrate(np.linspace(-3, 3, 50), model.calibration_)
    assert np.all(np.diff(p) > 0)


def test_calibration_without_held_out_rows_is_refused(frame):
    with pytest.raises(ValueError, match="held-out"):
        ChurnModel(params=FAST).fit(frame[FEATURES], frame["label"])


def test_same_data_and_seed_give_identical_model_text_and_predictions(frame):
    train, valid = frame[frame["cutoff"] < "2023-06-01"], frame[frame["cutoff"] == "2023-06-01"]
    fit = lambda: ChurnModel(params=FAST, random_state=7).fit(  # noqa: E731
        train[FEATURES], train["label"], X_valid=valid[FEATURES], y_valid=valid["label"])
    a, b = fit(), fit()
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    np.testing.assert_array_equal(a.predict_proba(valid[FEATURES]), b.predict_proba(valid[FEATURES]))


def test_contributions_sum_to_the_margin_and_name_every_feature(fitted):
    model, test = fitted
    contrib = model.contributions(test[FEATURES].head(50))
    assert list(contrib.columns) == [*FEATURES, "bias"]
    np.testing.assert_allclose(contrib.sum(axis=1), model.predict_margin(test[FEATURES].head(50)), atol=1e-9)


def test_contributions_accept_a_pluggable_treeshap(fitted):
    model, test = fitted
    X = test[FEATURES].head(5)
    calls = []

    def fake_shap(dump, encoded):
        calls.append((dump["tree_info"][0]["tree_index"], encoded.shape))
        return model.booster_.predict(encoded, pred_contrib=True, num_iteration=model.best_iteration_)

    pd.testing.assert_frame_equal(model.contributions(X, method=fake_shap), model.contributions(X))
    assert calls == [(0, (5, 3))]


def test_save_and_load_round_trip_gives_identical_predictions_without_pickle(fitted, tmp_path):
    model, test = fitted
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt", "schema.json"]
    loaded = ChurnModel.load(tmp_path)
    X = test[FEATURES]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.contributions(X.head(20)), model.contributions(X.head(20)))
    assert loaded.categories_ == {"customers_plan": ["basic", "gold", "pro"]}


def test_schema_mismatch_error_names_missing_and_mistyped_features(fitted):
    model, test = fitted
    X = test[FEATURES].drop(columns="interactions_complaints_90d")
    X["purchases_days_since_last"] = X["purchases_days_since_last"].astype(str)
    with pytest.raises(SchemaMismatchError) as err:
        model.predict_proba(X)
    assert err.value.missing == ["interactions_complaints_90d"]
    assert set(err.value.mistyped) == {"purchases_days_since_last"}
    assert "interactions_complaints_90d" in str(err.value) and "purchases_days_since_last" in str(err.value)


def test_unknown_category_values_and_string_columns_are_accepted(fitted):
    model, test = fitted
    X = test[FEATURES].head(4).copy()
    X["customers_plan"] = ["basic", "platinum", None, "pro"]  # plain strings, one unseen
    p = model.predict_proba(X)[:, 1]
    assert np.isfinite(p).all()


def test_reference_distribution_shares_sum_to_one(fitted, frame):
    model, _ = fitted
    reference = drift.reference(frame[FEATURES], model.dtypes_, model.categories_)
    assert list(reference) == FEATURES
    for ref in reference.values():
        assert sum(ref["shares"]) + ref["missing_share"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- evaluation


def test_rule_baseline_uses_recency_for_churn_and_overdue_days_for_maintenance():
    assert choose_heuristic_feature("churn", FEATURES) == "purchases_days_since_last"
    assert choose_heuristic_feature("maintenance", ["service_overdue_days_max", "x"]) == "service_overdue_days_max"
    X = pd.DataFrame({"f": [3.0, 1.0, 2.0]})
    assert list(RuleBaseline("f", "down").fit(X).score(X)) == [0.0, 1.0, 0.5]


def test_metrics_include_lift_and_precision_at_top_shares():
    y = np.array([1] * 10 + [0] * 90)
    p = np.linspace(1, 0, 100)
    m = classification_metrics(y, p)
    assert m["precision_top5"] == 1.0 and m["lift_top10"] == pytest.approx(10.0)
    assert m["precision_top20"] == 0.5


def test_train_frame_evaluates_against_both_baselines_and_the_oracle(frame):
    spec = replace(load_model_spec(task="churn"), lightgbm=FAST, horizon_days=60)
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    truth = frame[["customer_id", "cutoff"]].rename(columns={"cutoff": "as_of"}).assign(
        churn_probability=np.random.default_rng(1).random(len(frame)))
    result = train_frame(frame, spec, split=split, truth=truth, register=False, log=lambda s: None)
    for key in ("model_roc_auc", "rule_roc_auc", "logistic_roc_auc", "oracle_roc_auc", "share_of_oracle_auc",
                "auc_lift_over_rule", "auc_lift_over_logistic", "model_lift_top10", "model_brier"):
        assert key in result.metrics
    assert result.heuristic_feature == "purchases_days_since_last"
    assert result.top_features[0][0] == "interactions_complaints_90d"
    assert "held-out ROC-AUC" in result.summary()


def test_fitted_model_carries_no_training_metadata(fitted, tmp_path):
    model, _ = fitted
    for attribute in ("metadata_", "reference_", "feature_set_"):
        assert not hasattr(model, attribute), attribute
    model.save(tmp_path)
    import json

    schema = json.loads((tmp_path / "schema.json").read_text())
    assert set(schema) == {"schema_version", "features", "dtypes", "categories", "calibration",
                           "best_iteration", "init_params", "lightgbm_params"}


def test_train_frame_without_registering_never_touches_mlflow(frame, monkeypatch):
    import churnguard.training.pipeline as pipeline

    def no_registry(*args, **kwargs):
        raise AssertionError("register=False must not reach the registry")

    monkeypatch.setattr(pipeline, "champion_on_holdout", no_registry)
    monkeypatch.setattr(pipeline, "log_run", no_registry)
    spec = replace(load_model_spec(task="churn"), lightgbm=FAST, horizon_days=60)
    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    result = train_frame(frame, spec, split=split, register=False, log=lambda s: None)
    assert result.version is None and result.artifact.estimator is result.model
    assert set(result.artifact.drift_reference) == set(FEATURES)
    assert result.artifact.training_window == result.cutoffs


def test_fit_from_columns_grows_the_same_trees_as_from_one_matrix():
    # More rows than LightGBM samples for its bin bounds (200,000), float32 and float64
    # columns, missing values and a category: the cases where the two inputs could differ.
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    n = 250_000
    X = pd.DataFrame({
        "count": rng.poisson(2.0, n).astype("float32"),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n)),
        "days": rng.integers(0, 400, n).astype("int64"),
        "plan": pd.Categorical(rng.choice(["basic", "premium", "standard"], n)),
    })
    y = (X["count"] + np.log1p(X["amount"].fillna(0)) + rng.normal(0, 1, n) > 5).astype(int).to_numpy()
    model = ChurnModel(params={"n_estimators": 15, "num_threads": 1}, calibration="none").fit(X, y)
    matrix = lgb.Dataset(model.encode(X), label=y, feature_name=list(model.feature_names_in_),
                         categorical_feature=[3], params={"verbosity": -1})
    booster = lgb.train(model.params_, matrix, num_boost_round=15)
    assert model.booster_.model_to_string() == lgb.Booster(model_str=booster.model_to_string()).model_to_string()


def _mixed_frame(n, seed):
    """float32 and float64 columns, missing values, an integer and a category: the cases inputs differ on."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "count": rng.poisson(2.0, n).astype("float32"),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n)),
        "days": rng.integers(0, 400, n).astype("int64"),
        "plan": pd.Categorical(rng.choice(["basic", "premium", "standard"], n)),
    })


def test_fit_on_row_blocks_grows_the_same_trees_as_on_the_stacked_rows():
    from churnguard.training.fit import row_runs

    n = 230_000  # more rows than LightGBM samples for its bin bounds (200,000)
    X = _mixed_frame(n, seed=4)
    rng = np.random.default_rng(4)
    y = (X["count"] + np.log1p(X["amount"].fillna(0)) + rng.normal(0, 1, n) > 5).astype(int).to_numpy()
    keep = np.ones(n, dtype=bool)
    keep[[10, 100_000, 100_001, 180_000]] = False  # three runs of rows
    blocks = row_runs(X, keep)
    assert len(blocks) == 4 and all(np.shares_memory(b["amount"].to_numpy(), X["amount"].to_numpy()) for b in blocks)
    params = {"n_estimators": 15, "num_threads": 1}
    on_blocks = ChurnModel(params=params, calibration="none").fit(blocks, y[keep])
    on_copy = ChurnModel(params=params, calibration="none").fit(X[keep], y[keep])
    assert on_blocks.booster_.model_to_string() == on_copy.booster_.model_to_string()
    assert on_blocks.categories_ == on_copy.categories_


def test_refit_on_row_blocks_in_margin_batches_equals_the_refit_on_copied_rows(frame, monkeypatch):
    from churnguard.training import model as model_module
    from churnguard.training.fit import row_runs

    split = time_split(frame["cutoff"].unique(), horizon_days=60)
    parts = split_parts(frame, split)
    train, valid = frame[parts == "train"], frame[parts == "valid"]
    first = ChurnModel(params=FAST).fit(train[FEATURES], train["label"], X_valid=valid[FEATURES],
                                        y_valid=valid["label"])
    planned = parts != ""
    blocks = [b[FEATURES] for b in row_runs(frame, planned)]
    y, groups = frame["label"].to_numpy()[planned], frame["customer_id"].to_numpy()[planned]
    assert len(blocks) == 2  # the embargo cutoffs sit between valid and held out

    copied = model_module.refit_on_all(first, frame.loc[planned, FEATURES], y, groups=groups)
    monkeypatch.setattr(model_module, "MARGIN_BATCH_ROWS", 700)  # batches across both blocks
    batched = model_module.refit_on_all(first, blocks, y, groups=groups)
    assert batched.booster_.model_to_string() == copied.booster_.model_to_string()
    assert batched.calibration_ == copied.calibration_
    assert drift.reference(blocks, batched.dtypes_, batched.categories_) == drift.reference(
        frame.loc[planned, FEATURES], copied.dtypes_, copied.categories_)


def test_logistic_baseline_gives_the_probabilities_of_the_sklearn_pipeline_it_replaces():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from churnguard.training.evaluation import logistic_baseline, predict_logistic

    n = 6_000
    X = _mixed_frame(n, seed=5)
    rng = np.random.default_rng(5)
    X["empty"] = np.nan
    X["constant"] = 3.0
    X["region"] = pd.Series(rng.choice(["north", "south", "rare", None], n, p=[0.5, 0.496, 0.002, 0.002]),
                            dtype="str")
    y = (X["count"] + rng.normal(0, 1, n) > 2).astype(int).to_numpy()
    test = _mixed_frame(500, seed=6).assign(empty=np.nan, constant=3.0, region="unknown")
    cats, nums = ["plan", "region"], ["count", "amount", "days", "empty", "constant"]
    X, test = X[nums[:3] + ["plan", "empty", "constant", "region"]], test[nums[:3] + ["plan", "empty", "constant", "region"]]

    def plain(frame):
        return frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), np.nan).astype(object)
                               for c in cats})

    pipeline = make_pipeline(ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), nums),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False)), cats),
    ]), LogisticRegression(max_iter=500, C=1.0))
    for max_rows in (n, 4_000):  # all rows, and a sample of them
        rows = np.sort(np.random.default_rng(1).choice(n, max_rows, replace=False)) if max_rows < n else np.arange(n)
        expected = pipeline.fit(plain(X.iloc[rows]), y[rows]).predict_proba(plain(test))[:, 1]
        fitted = logistic_baseline(X, y, max_rows=max_rows, random_state=1)
        np.testing.assert_array_equal(predict_logistic(fitted, test), expected)
