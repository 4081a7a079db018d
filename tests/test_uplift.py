"""The uplift model: whom a call keeps, learned from past lists with a control group, and how score uses it."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnguard.cli import EXIT_NOTHING_TO_DO, EXIT_OK, main
from churnguard.config import load_uplift_spec
from churnguard.scoring import score
from churnguard.training import ChurnModel, ModelArtifact
from churnguard.training.qini import qini_coefficient, qini_curve, true_qini_curve
from churnguard.training.uplift import KEYS, UpliftData, evaluate_uplift, split_customers, uplift_training_set
from churnguard.training.uplift_model import UpliftModel

SMALL = {"n_estimators": 40, "num_leaves": 4, "min_child_samples": 100}


def run(*args) -> int:
    return main([str(a) for a in args])


def experiment(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers with service trouble are kept by a call, quiet ones leave sooner when called, the rest do not care."""
    rng = np.random.default_rng(seed)
    trouble = rng.integers(0, 2, n).astype(float)
    quiet = (rng.random(n) < 0.2) & (trouble == 0)
    treated = rng.random(n) < 0.8
    effect = 0.25 * trouble - 0.15 * quiet  # churn removed by a call
    churned = (rng.random(n) < 0.3 - effect * treated).astype(int)
    frame = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "list_date": pd.Timestamp("2024-01-01"),
                          "treated": treated, "label": churned, "trouble": trouble, "quiet": quiet.astype(float),
                          "noise": rng.normal(size=n)})
    return frame, effect


def test_the_x_learner_ranks_persuadables_first_and_sleeping_dogs_last():
    frame, effect = experiment()
    model = UpliftModel(params=SMALL, effect_params=SMALL).fit(frame[["trouble", "quiet", "noise"]],
                                                               frame["treated"], frame["label"])
    uplift = model.predict_uplift(frame[["trouble", "quiet", "noise"]])
    assert uplift[effect > 0].mean() > 0.15
    assert uplift[effect < 0].mean() < 0
    assert np.corrcoef(uplift, effect)[0, 1] > 0.9


def test_uplift_contributions_sum_to_the_uplift_and_name_the_driver():
    frame, _ = experiment()
    X = frame[["trouble", "quiet", "noise"]]
    model = UpliftModel(params=SMALL, effect_params=SMALL).fit(X, frame["treated"], frame["label"])
    contrib = model.contributions(X.head(200))
    assert np.allclose(contrib.sum(axis=1), model.predict_uplift(X.head(200)))
    in_trouble = X.head(200)["trouble"].to_numpy() == 1
    assert (contrib.loc[in_trouble, "trouble"] > 0).all()


def test_same_seed_gives_the_same_uplift_model_files_and_a_saved_model_predicts_the_same(tmp_path):
    frame, _ = experiment(3000)
    X = frame[["trouble", "quiet", "noise"]]
    digests = []
    for name in ("a", "b"):
        model = UpliftModel(params=SMALL, effect_params=SMALL, random_state=3).fit(X, frame["treated"], frame["label"])
        folder = ModelArtifact(model, task="uplift").save(tmp_path / name)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())})
    assert digests[0] == digests[1]
    loaded = ModelArtifact.load(tmp_path / "a")
    assert loaded.task == "uplift" and isinstance(loaded.estimator, UpliftModel)
    assert np.array_equal(loaded.estimator.predict_uplift(X), model.predict_uplift(X))


def test_held_out_customers_are_held_out_on_every_list_date_whatever_the_row_order():
    ids = pd.Index([f"c{i}" for i in range(500)])
    held = pd.Series(split_customers(ids, share=0.3, seed=1), index=ids)
    stacked = ids.append(ids[::-1])  # two list dates, rows in another order
    again = pd.Series(split_customers(stacked, share=0.3, seed=1), index=stacked)
    assert (again.groupby(level=0).nunique() == 1).all()
    assert again.groupby(level=0).first().reindex(ids).equals(held)


def test_qini_puts_the_oracle_above_a_random_ranking_and_a_reversed_one_below():
    frame, effect = experiment(20000, seed=1)
    t, y = frame["treated"].to_numpy(), frame["label"].to_numpy()
    oracle = qini_coefficient(qini_curve(effect, t, y))
    shuffled = qini_coefficient(qini_curve(np.random.default_rng(2).random(len(y)), t, y))
    reversed_ = qini_coefficient(qini_curve(-effect, t, y))
    assert oracle > 0 > reversed_ and abs(shuffled) < oracle / 3
    assert qini_coefficient(true_qini_curve(effect, effect)) > qini_coefficient(true_qini_curve(-effect, effect))


def test_the_uplift_model_beats_churn_risk_and_reaches_most_of_the_oracle_on_customers_it_never_saw():
    frame, effect = experiment(8000)
    truth = pd.DataFrame({"customer_id": frame["customer_id"], "list_date": "2024-01-01",
                          "action": "retention_call", "treatment_effect": -effect})
    spec = replace(load_uplift_spec(), lightgbm=SMALL, effect_lightgbm=SMALL)
    m = evaluate_uplift(UpliftData(frame, pd.DataFrame(), None, "contractual"), spec, truth=truth,
                        log=lambda s: None).metrics
    assert m["uplift_qini"] > m["churn_risk_qini"]
    assert m["uplift_share_of_oracle_true_qini"] > 0.9
    assert m["customers_holdout"] == pytest.approx(0.3 * 8000, rel=0.1)


def test_training_rows_take_features_before_the_list_date_and_churn_within_the_horizon():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
                              "signup_date": pd.to_datetime(["2023-01-01"] * 3),
                              "churn_date": pd.to_datetime(["2024-02-01", "2024-06-01", None])})
    interactions = pd.DataFrame({"customer_id": ["a", "a", "b"], "channel": "phone",
                                 "timestamp": pd.to_datetime(["2023-12-20", "2024-01-01", "2024-01-05"]),
                                 "is_complaint": pd.array([True, True, True], dtype="boolean"),
                                 "resolved": pd.array([False, False, False], dtype="boolean")})
    log = pd.DataFrame({"customer_id": ["a", "b", "c"], "list_date": pd.to_datetime(["2024-01-01"] * 3),
                        "action": "retention_call", "group": ["treatment", "control", "TREATMENT"]})
    tables = {"customers": customers, "interactions": interactions, "outreach_log": log}
    spec = replace(load_uplift_spec(), horizon_days=60)
    frame = uplift_training_set(tables, spec, log=lambda s: None).frame.set_index("customer_id")
    # a churned 31 days after the list date (inside the horizon), b 152 days after (outside it).
    assert frame["label"].to_dict() == {"a": 1, "b": 0, "c": 0}
    assert frame["treated"].to_dict() == {"a": True, "b": False, "c": True}
    # The complaint stamped on the list date itself belongs to the outcome window, not the features.
    complaints = [c for c in frame.columns if c.startswith("interactions_complaints") and c.endswith("_30d")]
    assert complaints and frame.loc["a", complaints[0]] == 1 and frame.loc["b", complaints[0]] == 0


def test_list_dates_whose_horizon_is_not_over_are_left_out_and_said():
    customers = pd.DataFrame({"customer_id": ["a", "b"], "churn_date": pd.to_datetime(["2024-01-20", None]),
                              "signup_date": pd.to_datetime(["2023-01-01", "2023-01-01"])})
    log = pd.DataFrame({"customer_id": ["a", "b", "a", "b"],
                        "list_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-15"]),
                        "action": "retention_call", "group": ["treatment", "control"] * 2})
    data = uplift_training_set({"customers": customers, "outreach_log": log}, replace(load_uplift_spec(), horizon_days=10),
                               log=lambda s: None)
    assert data.frame["list_date"].unique().tolist() == [pd.Timestamp("2024-01-01")]
    assert any("2024-01-15" in s for s in data.skipped)


def _scoring_fixture():
    frame, effect = experiment(4000, seed=3)
    features = frame[["customer_id", "trouble", "quiet", "noise"]]
    X = features.drop(columns="customer_id")
    churn = ChurnModel(params=SMALL, calibration="none").fit(X, frame["label"])
    uplift = UpliftModel(params=SMALL, effect_params=SMALL).fit(X, frame["treated"], frame["label"])
    customers = pd.DataFrame({"customer_id": frame["customer_id"], "value": 100.0})
    catalogue = pd.DataFrame({"name": ["trouble", "quiet", "noise"], "direction": ["up", "up", "up"],
                              "reason": ["unresolved service trouble", "rarely calls care", "noise {noise:.1f}"]})
    return features, churn, uplift, customers, catalogue, effect


def test_score_with_an_uplift_model_prices_calls_by_the_churn_they_remove_and_suppresses_backfires():
    features, churn, uplift, customers, catalogue, effect = _scoring_fixture()
    result = score({"customers": customers}, "2024-03-01", {"churn": churn}, uplift=uplift,
                   features=features, catalogue=catalogue)
    scored = result.scored.set_index("customer_id")
    listed = result.outreach.set_index("customer_id")
    # Priority is uplift x value - the phone call's cost (6.0), and only positive uplifts are called.
    priced = scored.loc[listed.index]
    assert np.allclose(priced["priority"], priced["uplift"] * 100.0 - 6.0, atol=1e-6)
    # Half of the customers are persuadable; the list is mostly them.
    assert (effect > 0).mean() == pytest.approx(0.5, abs=0.03)
    assert (effect[features["customer_id"].isin(listed.index).to_numpy()] > 0).mean() > 0.8
    backfired = result.suppressed[result.suppressed["reason"].str.startswith("contact_backfires")]
    assert len(backfired) and (scored.loc[backfired["customer_id"], "uplift"] < 0).all()
    assert not set(backfired["customer_id"]) & set(listed.index)
    # The reasons say why a call helps this customer: the trouble it can clear.
    in_trouble = features.set_index("customer_id").loc[listed.index, "trouble"].to_numpy() == 1
    assert (listed.loc[in_trouble, "reason_1"] == "unresolved service trouble").mean() > 0.95
    assert '"uplift": [' in listed["explanation"].iloc[0]


def test_score_without_an_uplift_model_is_unchanged_by_it():
    features, churn, uplift, customers, catalogue, _ = _scoring_fixture()
    plain = score({"customers": customers}, "2024-03-01", {"churn": churn}, features=features, catalogue=catalogue)
    assert "uplift" not in plain.scored.columns
    assert not plain.suppressed["reason"].str.startswith("contact_backfires").any()


def test_train_uplift_without_an_outreach_log_exits_3_and_says_why(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"customer_id": ["a", "b"], "signup_date": ["2024-01-01", "2024-01-02"]}).to_csv(
        data / "customers.csv", index=False)
    code = run("train", "--data", data, "--task", "uplift", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--quiet")
    assert code == EXIT_NOTHING_TO_DO
    assert "no outreach_log table" in capsys.readouterr().err
    from churnguard.training.uplift_registry import load_uplift_model

    assert load_uplift_model(tracking_uri=f"sqlite:///{tmp_path}/m.db") is None


@pytest.mark.slow
def test_train_uplift_then_score_uses_it_and_the_same_seed_gives_the_same_list(tmp_path, capsys):
    data = tmp_path / "data"
    assert run("generate", "--customers", 3000, "--seed", 2, "--campaigns", "--out", data, "--quiet") == EXIT_OK
    churn_spec = tmp_path / "churn.toml"
    churn_spec.write_text('task = "churn"\nn_cutoffs = 2\n[lightgbm]\nn_estimators = 40\nnum_leaves = 7\n')
    uplift_spec = tmp_path / "uplift.toml"
    uplift_spec.write_text("[lightgbm]\nn_estimators = 40\nnum_leaves = 4\nmin_child_samples = 50\n"
                           "[effect_lightgbm]\nn_estimators = 40\nnum_leaves = 4\nmin_child_samples = 50\n")
    outputs = []
    for name in ("one", "two"):
        uri = f"sqlite:///{tmp_path}/{name}.db"
        assert run("train", "--data", data, "--task", "churn", "--spec", churn_spec, "--tracking-uri", uri,
                   "--quiet") == EXIT_OK
        assert run("train", "--data", data, "--task", "uplift", "--spec", uplift_spec, "--tracking-uri", uri,
                   "--quiet") == EXIT_OK
        summary = capsys.readouterr().out
        assert "Qini coefficient" in summary and "oracle (true effects)" in summary
        # Whatever the promotion said, score with this run's uplift model.
        model = "models:/churnguard-uplift/1"
        out = tmp_path / name / "outreach.csv"
        assert run("score", "--data", data, "--as-of", "2026-10-01", "--out", out, "--model", model,
                   "--tracking-uri", uri, "--quiet") == EXIT_OK
        outputs.append((out.read_bytes(), (tmp_path / name / "outreach.suppressed.csv").read_bytes()))
    assert outputs[0] == outputs[1]
    listed = pd.read_csv(tmp_path / "one" / "outreach.csv", dtype={"customer_id": str})
    assert len(listed) and listed["explanation"].str.contains('"uplift": ').any()


def test_keys_are_not_features():
    frame, _ = experiment(100)
    assert UpliftData(frame, pd.DataFrame(), None, "contractual").features == ["trouble", "quiet", "noise"]
    assert set(KEYS) <= set(frame.columns)
