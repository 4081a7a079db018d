"""Reasons: positive SHAP only, worded by the catalogue, one sentence per template."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from churnguard.reasons import explain_reasons, explanation_json

CATALOGUE = pd.DataFrame(
    {
        "name": ["complaints_30d", "complaints_unresolved_30d", "days_overdue", "product", "tenure_days", "no_template"],
        "reason": [
            "{complaints_unresolved_30d:.0f} of {complaints_30d:.0f} complaints in the last 30 days unresolved",
            "{complaints_unresolved_30d:.0f} of {complaints_30d:.0f} complaints in the last 30 days unresolved",
            "{product} {days_overdue:.0f} days past its service interval",
            "",
            "customer for only {tenure_days:.0f} days",
            "",
        ],
        "direction": ["up", "up", "up", "up", "down", "up"],
    }
)


def frame(**columns):
    return pd.DataFrame(columns)


def test_only_features_pushing_risk_up_become_reasons():
    features = frame(complaints_30d=[3.0, 3.0], complaints_unresolved_30d=[2.0, 2.0], days_overdue=[40.0, 40.0],
                     product=["boiler", "boiler"], tenure_days=[30.0, 30.0], no_template=[1.0, 1.0])
    shap = frame(complaints_30d=[0.5, -0.5], complaints_unresolved_30d=[0.0, -0.2], days_overdue=[-0.3, 0.4],
                 tenure_days=[0.1, -0.1], no_template=[9.0, 9.0])
    typical = pd.Series({"complaints_30d": 0.0, "complaints_unresolved_30d": 0.0, "days_overdue": 0.0, "tenure_days": 400.0})
    reasons = explain_reasons({"churn": shap}, features, CATALOGUE, typical=typical)
    assert reasons.loc[0, ["reason_1", "reason_2", "reason_3"]].tolist() == [
        "2 of 3 complaints in the last 30 days unresolved", "customer for only 30 days", None]
    assert reasons.loc[1, ["reason_1", "reason_2"]].tolist() == ["boiler 40 days past its service interval", None]


def test_features_sharing_a_template_give_one_sentence_with_pooled_weight():
    features = frame(complaints_30d=[3.0], complaints_unresolved_30d=[2.0], days_overdue=[40.0], product=["boiler"],
                     tenure_days=[30.0])
    # Each complaint feature alone is below the overdue one; together they lead.
    shap = frame(complaints_30d=[0.3], complaints_unresolved_30d=[0.3], days_overdue=[0.5], tenure_days=[0.0])
    reasons = explain_reasons({"churn": shap}, features, CATALOGUE, typical=pd.Series(dtype=float))
    assert reasons.loc[0, ["reason_1", "reason_2", "reason_3"]].tolist() == [
        "2 of 3 complaints in the last 30 days unresolved", "boiler 40 days past its service interval", None]
    assert reasons.loc[0, "reason_key_1"] == "complaints_30d"


def test_a_template_with_missing_values_is_skipped():
    features = frame(complaints_30d=[np.nan], complaints_unresolved_30d=[np.nan], days_overdue=[40.0],
                     product=[None], tenure_days=[30.0])
    shap = frame(complaints_30d=[0.9], complaints_unresolved_30d=[0.9], days_overdue=[0.8], tenure_days=[0.1])
    reasons = explain_reasons({"churn": shap}, features, CATALOGUE, typical=pd.Series(dtype=float))
    assert reasons.loc[0, "reason_1"] == "customer for only 30 days"
    assert reasons.loc[0, "reason_2"] is None


def test_a_value_on_the_reassuring_side_is_no_reason_even_with_positive_shap():
    features = frame(complaints_30d=[0.0, 4.0], complaints_unresolved_30d=[0.0, 1.0], tenure_days=[3000.0, 3000.0])
    shap = frame(complaints_30d=[0.4, 0.4], complaints_unresolved_30d=[0.0, 0.0], tenure_days=[0.2, 0.2])
    reasons = explain_reasons({"churn": shap}, features, CATALOGUE)
    assert reasons["reason_1"].tolist() == [None, "1 of 4 complaints in the last 30 days unresolved"]


def test_the_task_that_drives_priority_drives_the_reasons():
    features = frame(complaints_30d=[3.0, 3.0], complaints_unresolved_30d=[2.0, 2.0], days_overdue=[40.0, 40.0],
                     product=["boiler", "boiler"])
    churn = frame(complaints_30d=[1.0, 1.0], complaints_unresolved_30d=[0.0, 0.0], days_overdue=[0.0, 0.0])
    maint = frame(complaints_30d=[0.0, 0.0], complaints_unresolved_30d=[0.0, 0.0], days_overdue=[1.0, 1.0])
    weights = {"churn": np.array([0.9, 0.1]), "maintenance": np.array([0.1, 0.9])}
    reasons = explain_reasons({"churn": churn, "maintenance": maint}, features, CATALOGUE, weights=weights,
                              typical=pd.Series(dtype=float))
    assert reasons["reason_1"].str.contains("complaints").tolist() == [True, False]
    assert reasons.loc[1, "reason_1"] == "boiler 40 days past its service interval"


def test_reasons_never_show_raw_feature_names():
    rng = np.random.default_rng(0)
    n = 500
    features = frame(complaints_30d=rng.poisson(2, n).astype(float), complaints_unresolved_30d=rng.poisson(1, n).astype(float),
                     days_overdue=rng.uniform(0, 300, n), product=rng.choice(["boiler", "pump"], n),
                     tenure_days=rng.uniform(1, 3000, n), no_template=rng.normal(size=n))
    shap = frame(**{c: rng.normal(size=n) for c in ["complaints_30d", "complaints_unresolved_30d", "days_overdue",
                                                    "tenure_days", "no_template"]})
    reasons = explain_reasons({"churn": shap}, features, CATALOGUE)
    texts = reasons[["reason_1", "reason_2", "reason_3"]].stack().dropna()
    assert len(texts) > n // 2
    assert not any(name in text for text in texts for name in CATALOGUE["name"])


def test_explanation_is_valid_json_with_top_features_by_absolute_shap():
    features = frame(a=[1.0, 2.0], b=[np.nan, 5.0], c=pd.Categorical(["x", None]))
    shap = frame(a=[0.1, -2.0], b=[-0.5, 0.3], c=[0.2, 0.0], bias=[-1.0, -1.0])
    texts = explanation_json({"churn": shap, "maintenance": shap}, features, top=2)
    first = json.loads(texts.iloc[0])
    assert first["churn"] == [{"feature": "b", "value": None, "shap": -0.5}, {"feature": "c", "value": "x", "shap": 0.2}]
    assert json.loads(texts.iloc[1])["maintenance"][0] == {"feature": "a", "value": 2.0, "shap": -2.0}


def test_the_same_sentence_over_two_windows_is_given_once_and_in_the_singular():
    features = pd.DataFrame({"c30": [1.0], "c90": [4.0], "w": [9.0]})
    catalogue = pd.DataFrame({
        "name": ["c30", "c90", "w"],
        "reason": ["{c30:.0f} complaints in the last 30 days", "{c90:.0f} complaints in the last 90 days",
                   "waited {w:.0f} minutes"],
        "direction": ["up", "up", "up"],
    })
    contributions = {"churn": pd.DataFrame({"c30": [0.9], "c90": [0.5], "w": [0.1], "bias": [-2.0]})}
    out = explain_reasons(contributions, features, catalogue, typical=pd.Series({"c30": 0.0, "c90": 0.0, "w": 0.0}))
    assert out.loc[0, "reason_1"] == "1 complaint in the last 30 days"
    assert out.loc[0, "reason_2"] == "waited 9 minutes"
    assert out.loc[0, "reason_3"] is None


def test_a_reason_template_without_fields_is_a_fixed_sentence():
    features = pd.DataFrame({"open": [1.0, 0.0], "n": [2.0, 0.0]})
    catalogue = pd.DataFrame({"name": ["open", "n"], "reason": ["has an unresolved complaint", "{n:.0f} calls"],
                              "direction": ["up", "up"]})
    contributions = {"churn": pd.DataFrame({"open": [0.8, 0.8], "n": [0.2, 0.2]})}
    out = explain_reasons(contributions, features, catalogue, typical=pd.Series({"open": 0.0, "n": 0.0}))
    assert out.loc[0, "reason_1"] == "has an unresolved complaint" and out.loc[0, "reason_2"] == "2 calls"
    assert out.loc[1, "reason_1"] is None  # value not on the worrying side: no reason
