"""TreeShap must give LightGBM's own pred_contrib numbers, only faster."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnguard import treeshap
from churnguard.treeshap import TreeShap

# Agreement is to rounding: both sum the same Shapley terms in a different order.
ATOL = 1e-9


def customers(n_rows: int, *, seed: int, nan_fraction: float = 0.15) -> pd.DataFrame:
    """Float features with NaNs and exact zeros, plus two pandas-category features."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_rows, 5))
    values[rng.random(values.shape) < 0.1] = 0.0
    values[rng.random(values.shape) < nan_fraction] = np.nan
    frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(5)])
    frame["plan"] = pd.Categorical(rng.choice(["basic", "plus", "pro", "family", "trial"], size=n_rows))
    frame.loc[rng.random(n_rows) < 0.1, "plan"] = np.nan
    frame["region"] = pd.Categorical(rng.choice(["n", "s", "e", "w"], size=n_rows))
    return frame


def churned(frame: pd.DataFrame, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = frame.filter(like="x").fillna(0.5).to_numpy()
    logit = x[:, 0] - x[:, 1] * x[:, 2] + frame["plan"].isin(["trial", "basic"]) * 1.5
    logit += frame["x3"].isna() * 1.0 + (frame["x4"] == 0) * 1.0
    return (logit + rng.logistic(size=len(frame)) > 0).astype(int)


def train(frame: pd.DataFrame, y: np.ndarray, *, rounds: int = 30, **params) -> lgb.Booster:
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5,
              "min_data_per_group": 5, "cat_smooth": 1.0, **params}
    return lgb.train(params, lgb.Dataset(frame, y), num_boost_round=rounds)


def split_nodes(booster: lgb.Booster) -> list[dict]:
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    nodes = []
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            nodes.append(node)
            stack += [node["left_child"], node["right_child"]]
    return nodes


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    frame = customers(2000, seed=0)
    return frame, churned(frame, seed=1), customers(500, seed=2)


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 3, "max_depth": 1},
        {"num_leaves": 4, "max_depth": 2},
        {"num_leaves": 15, "max_depth": 5},
        {"num_leaves": 31, "max_depth": 6},
        {"num_leaves": 40, "max_depth": -1, "min_data_in_leaf": 2},  # deep, repeated features
    ],
    ids=["depth1", "depth2", "depth5", "depth6", "unlimited"],
)
def test_values_equal_lightgbm_pred_contrib_at_each_depth(data, params):
    frame, y, rows = data
    booster = train(frame, y, **params)
    expected = booster.predict(rows, pred_contrib=True)
    np.testing.assert_allclose(TreeShap(booster).shap_values(rows), expected, rtol=0, atol=ATOL)


def test_rows_sum_to_the_raw_margin(data):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=15, max_depth=5)
    phi = TreeShap(booster).shap_values(rows)
    np.testing.assert_allclose(phi.sum(axis=1), booster.predict(rows, raw_score=True), rtol=0, atol=ATOL)


def test_last_column_is_the_expected_value(data):
    frame, y, rows = data
    explainer = TreeShap(train(frame, y, num_leaves=7))
    phi = explainer.shap_values(rows)
    assert np.all(phi[:, -1] == explainer.expected_value_)


def test_nan_follows_default_left_in_both_directions(data):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=15, rounds=60)
    nan_nodes = [n for n in split_nodes(booster) if n["missing_type"] == "NaN"]
    # The claim needs both directions present in the model, or it tests nothing.
    assert {n["default_left"] for n in nan_nodes} == {True, False}
    np.testing.assert_allclose(TreeShap(booster).shap_values(rows),
                               booster.predict(rows, pred_contrib=True), rtol=0, atol=ATOL)


def test_zero_as_missing_sends_zeros_and_nans_the_default_way(data):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=15, rounds=60, zero_as_missing=True)
    assert any(n["missing_type"] == "Zero" for n in split_nodes(booster))
    assert (rows.filter(like="x") == 0).any().any()
    np.testing.assert_allclose(TreeShap(booster).shap_values(rows),
                               booster.predict(rows, pred_contrib=True), rtol=0, atol=ATOL)


def test_nan_on_a_feature_trained_without_nans_is_read_as_zero():
    frame = customers(1500, seed=3, nan_fraction=0.0)
    booster = train(frame, churned(frame, seed=4), num_leaves=15)
    assert {n["missing_type"] for n in split_nodes(booster) if n["decision_type"] == "<="} == {"None"}
    rows = customers(300, seed=5, nan_fraction=0.3)
    np.testing.assert_allclose(TreeShap(booster).shap_values(rows),
                               booster.predict(rows, pred_contrib=True), rtol=0, atol=ATOL)


def test_categories_are_mapped_by_training_levels_not_by_scoring_order(data):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=15)
    assert any(n["decision_type"] == "==" for n in split_nodes(booster))
    # Reordered levels and an unseen level: LightGBM re-codes with the training categories.
    shuffled = rows.copy()
    shuffled["plan"] = shuffled["plan"].cat.set_categories(["pro", "trial", "new", "basic", "plus", "family"])
    np.testing.assert_allclose(TreeShap(booster).shap_values(shuffled),
                               booster.predict(shuffled, pred_contrib=True), rtol=0, atol=ATOL)


def test_matrix_of_category_codes_gives_the_same_values_as_the_frame(data):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=15)
    codes = rows.copy()
    for column in ["plan", "region"]:
        codes[column] = codes[column].cat.codes.where(codes[column].notna())
    matrix = codes.to_numpy(dtype=np.float64)
    # Odd codes LightGBM also accepts: negative (goes right) and beyond the known levels.
    matrix[:5, 5] = [-1.0, -0.5, 99.0, 1e12, 2.7]
    explainer = TreeShap(booster)
    np.testing.assert_allclose(explainer.shap_values(matrix),
                               booster.predict(matrix, pred_contrib=True), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(explainer.shap_values(matrix[5:]), explainer.shap_values(rows.iloc[5:]))


def test_single_leaf_trees_only_shift_the_bias():
    frame = customers(200, seed=6)
    # min_data_in_leaf above half the rows: no split is allowed, every tree is one leaf.
    booster = train(frame, churned(frame, seed=7), rounds=3, min_data_in_leaf=150)
    assert all("leaf_value" in t["tree_structure"] for t in booster.dump_model()["tree_info"])
    phi = TreeShap(booster).shap_values(frame)
    np.testing.assert_allclose(phi, booster.predict(frame, pred_contrib=True), rtol=0, atol=ATOL)
    assert np.all(phi[:, :-1] == 0)


def test_chunk_and_block_boundaries_do_not_change_values(data):
    frame, y, rows = data
    explainer = TreeShap(train(frame, y, num_leaves=15))
    whole = explainer.shap_values(rows)
    np.testing.assert_array_equal(explainer.shap_values(rows, chunk_size=37, n_threads=1), whole)


def test_sklearn_classifier_is_accepted(data):
    frame, y, rows = data
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, min_child_samples=5, n_jobs=1, verbose=-1).fit(frame, y)
    np.testing.assert_allclose(TreeShap(model).shap_values(rows),
                               model.predict(rows, pred_contrib=True), rtol=0, atol=ATOL)


def test_too_large_tables_fall_back_to_lightgbm_with_a_warning(data, monkeypatch):
    frame, y, rows = data
    booster = train(frame, y, num_leaves=7)
    monkeypatch.setattr(treeshap, "_MAX_TABLE_ENTRIES", 0)
    with pytest.warns(UserWarning, match="falling back"):
        explainer = TreeShap(booster)
    assert explainer.uses_fallback_
    np.testing.assert_allclose(explainer.shap_values(rows), booster.predict(rows, pred_contrib=True),
                               rtol=0, atol=ATOL)


def test_wrong_number_of_columns_is_an_error_not_a_misalignment(data):
    frame, y, rows = data
    explainer = TreeShap(train(frame, y, num_leaves=7))
    with pytest.raises(ValueError, match="expects 7 feature columns"):
        explainer.shap_values(rows.iloc[:, :-1])


def test_multiclass_models_are_rejected():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 3))
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(X, rng.integers(0, 3, size=300)), num_boost_round=2)
    with pytest.raises(ValueError, match="single-output"):
        TreeShap(booster)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"linear_tree": True}, "linear_tree"),
     ({"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.5}, "random forest")],
)
def test_models_whose_leaves_are_not_constants_summed_are_rejected(params, message):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 3))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, **params},
                        lgb.Dataset(X, (X[:, 0] > 0).astype(int)), num_boost_round=2)
    with pytest.raises(ValueError, match=message):
        TreeShap(booster)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(40, 300),
    num_leaves=st.integers(2, 12),
    max_depth=st.sampled_from([-1, 1, 3, 6]),
    rounds=st.integers(1, 8),
    nan_fraction=st.sampled_from([0.0, 0.2, 0.6]),
    zero_as_missing=st.booleans(),
)
def test_random_small_models_match_pred_contrib(seed, n_rows, num_leaves, max_depth, rounds,
                                                nan_fraction, zero_as_missing):
    frame = customers(n_rows, seed=seed, nan_fraction=nan_fraction)
    booster = train(frame, churned(frame, seed=seed + 1), rounds=rounds, num_leaves=num_leaves,
                    max_depth=max_depth, zero_as_missing=zero_as_missing, min_data_in_leaf=3)
    rows = customers(50, seed=seed + 2, nan_fraction=nan_fraction)
    np.testing.assert_allclose(TreeShap(booster).shap_values(rows),
                               booster.predict(rows, pred_contrib=True), rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- predict_margin


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 3, "max_depth": 1},
        {"num_leaves": 15, "max_depth": 5, "rounds": 60},
        {"num_leaves": 15, "rounds": 60, "zero_as_missing": True},
        {"num_leaves": 40, "max_depth": -1, "min_data_in_leaf": 2},
        {"rounds": 3, "min_data_in_leaf": 1500},  # single-leaf trees only
    ],
    ids=["depth1", "nan-default-both-ways", "zero-as-missing", "unlimited", "single-leaf"],
)
def test_margin_is_lightgbms_raw_score_bit_for_bit(data, params):
    frame, y, rows = data
    booster = train(frame, y, **params)
    explainer = TreeShap(booster)
    # Same decisions and the same summation order, so not just close: equal.
    np.testing.assert_array_equal(explainer.predict_margin(rows), booster.predict(rows, raw_score=True))
    codes = rows.copy()
    for column in ["plan", "region"]:
        codes[column] = codes[column].cat.codes.where(codes[column].notna())
    matrix = codes.to_numpy(dtype=np.float64)
    matrix[:4, 5] = [-1.0, 99.0, 1e12, 2.7]  # odd codes LightGBM also accepts
    np.testing.assert_array_equal(explainer.predict_margin(matrix, chunk_size=7),
                                  booster.predict(matrix, raw_score=True))


def test_margin_reads_nans_as_zero_where_training_saw_none():
    frame = customers(1500, seed=3, nan_fraction=0.0)
    booster = train(frame, churned(frame, seed=4), num_leaves=15)
    rows = customers(300, seed=5, nan_fraction=0.3)
    np.testing.assert_array_equal(TreeShap(booster).predict_margin(rows), booster.predict(rows, raw_score=True))


def test_churn_model_predicts_large_batches_with_the_kernel_and_the_same_bits():
    from churnguard.training import model as model_module
    from churnguard.training.model import ChurnModel

    frame = customers(3000, seed=8)
    y = churned(frame, seed=9)
    fitted = ChurnModel(params={"n_estimators": 40, "num_leaves": 15, "verbose": -1}, calibration="none",
                        random_state=1).fit(frame, y)
    rows = customers(25_000, seed=10)
    assert len(rows) >= model_module.FAST_PREDICT_MIN_ROWS
    fast = fitted.predict_margin(rows)
    assert fitted.tree_shap() is not None
    slow = fitted.booster_.predict(fitted.encode(rows), raw_score=True, num_iteration=fitted.best_iteration_)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fitted.predict_margin(rows.head(100)), slow[:100])
