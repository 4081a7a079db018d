"""Why a customer is on the list: SHAP contributions, reasons, explanation JSON.

The reasons compare a customer's values with typical (median) values of the task's
own population (:func:`typical_values`) and are worded from the feature catalogue
stored with the models (:func:`merge_catalogues`). Both engines explain a chunk of
customers with :func:`explain_chunk`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_outreach_rules
from churnguard.outreach.frames import PROBABILITY
from churnguard.reasons import explain_reasons, explanation_json
from churnguard.training.artifact import as_artifact

__all__ = [
    "CONTEXT_COLUMNS",
    "FAST_SHAP_MIN_ROWS",
    "contributions",
    "explain_chunk",
    "explainers",
    "listing_context",
    "merge_catalogues",
    "merge_medians",
    "typical_values",
]

# Below this many rows LightGBM's own pred_contrib is quicker than compiling and
# building the fast explainer's tables.
FAST_SHAP_MIN_ROWS = 20_000

# What a care agent sees beside the reasons when a row of the report opens, and the
# feature each comes from.
CONTEXT_COLUMNS = {
    "segment": "customers_segment",
    "days_since_last_contact": "interactions_days_since_last_contact",
    "days_since_last_complaint": "interactions_days_since_last_complaint",
}

CATALOGUE_COLUMNS = ["name", "family", "description", "unit", "reason", "direction", "model_input", "fact", "reason_if", "grows_with_time"]


def listing_context(features: pd.DataFrame) -> pd.DataFrame:
    """The :data:`CONTEXT_COLUMNS` of each customer from their feature row (None where absent).

    Examples
    --------
    >>> listing_context(pd.DataFrame({"customers_segment": ["smb"],
    ...                               "interactions_days_since_last_contact": [3.0]})).iloc[0].tolist()
    ['smb', 3.0, None]
    """
    out = pd.DataFrame(index=features.index)
    for column, feature in CONTEXT_COLUMNS.items():
        if feature in features.columns:
            values = features[feature]
            out[column] = (values.astype("float64") if column.startswith("days") else values.astype(object)).to_numpy()
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        else:
            out[column] = None
    return out


def merge_medians(medians: list[pd.Series]) -> pd.Series:
    """One series of typical values from per-task medians; the first task's value wins.

    Examples
    --------
    >>> merge_medians([pd.Series({"a": 1.0, "b": 2.0}), pd.Series({"b": 5.0, "c": 3.0})]).to_dict()
    {'a': 1.0, 'b': 2.0, 'c': 3.0}
    >>> len(merge_medians([]))
    0
    """
    if not medians:
        return pd.Series(dtype="float64")
    merged = pd.concat(medians)
    return merged[~merged.index.duplicated()]


def typical_values(features: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Median of every numeric feature over each task's customers, merged (:func:`merge_medians`).

    Examples
    --------
    >>> features = {"churn": pd.DataFrame({"customer_id": ["a", "b"], "x": [1.0, 3.0]})}
    >>> typical_values(features).to_dict()
    {'x': 2.0}
    """
    return merge_medians([f.median(numeric_only=True) for f in features.values() if len(f)])


def merge_catalogues(models: Mapping[str, Any], tables, as_of, sets, set_of) -> pd.DataFrame:
    """The feature catalogue the reasons are worded from: the models' own, merged by name.

    Models stored without one fall back to
    :func:`churnguard.features.feature_catalogue` of `tables` at `as_of` for each
    feature set in `sets` (see :func:`churnguard.outreach.feature_set_groups`).

    Examples
    --------
    >>> from churnguard.training import ModelArtifact
    >>> cat = pd.DataFrame({"name": ["x"], "reason": ["x is {x}"]})
    >>> merge_catalogues({"churn": ModelArtifact(estimator=None, catalogue=cat)}, {}, None, {}, {})["name"].tolist()
    ['x']
    """
    parts = [c for c in (as_artifact(m).catalogue for m in models.values()) if c is not None]
    if not parts:
        try:
            from churnguard.features import feature_catalogue
        except ImportError:
            feature_catalogue = None
        if feature_catalogue is not None:
            for key in dict.fromkeys(set_of.values()):
                if key != "given":
                    parts.append(feature_catalogue(tables, as_of, feature_set=sets[key]))
                else:
                    parts.append(feature_catalogue(tables, as_of))
    if not parts:
        return pd.DataFrame(columns=CATALOGUE_COLUMNS)
    return pd.concat(parts, ignore_index=True).drop_duplicates("name").reset_index(drop=True)


def _no_single_reason(rows: pd.DataFrame) -> np.ndarray:
    """The first reason of a customer on the list whom no single warning sign explains."""
    action = rows["action"].astype(str).to_numpy() if "action" in rows else np.full(len(rows), "")
    churn = rows[PROBABILITY["churn"]].to_numpy(dtype="float64", na_value=np.nan)
    maint = rows[PROBABILITY["maintenance"]].to_numpy(dtype="float64", na_value=np.nan)
    use_maint = np.char.startswith(action.astype(str), "maintenance") | np.isnan(churn)
    p = np.where(use_maint, maint, churn)
    task = np.where(use_maint, "maintenance", "churn")
    out = np.empty(len(rows), dtype=object)
    for i in range(len(rows)):
        if action[i] == "win_back":
            out[i] = "lapsed buyer: no purchase in the churn model's look-back"
        elif np.isnan(p[i]):
            out[i] = "no single warning sign stands out"
        else:
            out[i] = f"{task[i]} risk {p[i]:.0%} from the overall pattern; no single warning sign stands out"
    return out


def explainers(models: Mapping[str, Any], n_rows: int) -> dict[str, Any]:
    """Fast TreeSHAP explainers per task for `n_rows` rows; none below :data:`FAST_SHAP_MIN_ROWS`.

    They are the ones the models' own large-batch prediction uses
    (``ChurnModel.tree_shap``), so a model's trees are parsed once.

    Examples
    --------
    >>> explainers({}, 10)
    {}
    """
    if n_rows < FAST_SHAP_MIN_ROWS:
        return {}
    out = {}
    for task, model in models.items():
        tree_shap = getattr(as_artifact(model).estimator, "tree_shap", None)
        explainer = tree_shap() if tree_shap is not None else None
        if explainer is not None:
            out[task] = explainer
    return out


def contributions(model, frame: pd.DataFrame, explainer=None) -> pd.DataFrame:
    """SHAP contributions of `frame`'s rows: one column per model input, then ``bias``.

    With an `explainer` (see :func:`explainers`) the fast TreeSHAP computes them, else
    LightGBM's own ``pred_contrib``.

    Examples
    --------
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": [0.0, 1.0] * 20})
    >>> model = ChurnModel(params={"n_estimators": 2}, calibration="none").fit(X, [0, 1] * 20)
    >>> contributions(model, X.head(2)).columns.tolist()
    ['x', 'bias']
    """
    estimator = as_artifact(model).estimator
    if explainer is None or not hasattr(estimator, "encode"):
        return estimator.contributions(frame)
    values = explainer.shap_values(estimator.encode(frame))
    return pd.DataFrame(values, columns=[*estimator.feature_names_in_, "bias"], index=frame.index)


def explain_chunk(
    models: Mapping[str, Any],
    frames: Mapping[str, pd.DataFrame],
    set_of: Mapping[str, str],
    rows: pd.DataFrame,
    catalogue: pd.DataFrame,
    explainers: Mapping[str, Any],
    *,
    typical: pd.Series,
    n_reasons: int,
    rules: OutreachRules | None = None,
) -> pd.DataFrame:
    """Reasons and explanation JSON of one chunk of customers, indexed by ``customer_id``.

    `frames` holds each feature-set key's features of the chunk, `rows` the same
    customers' scored rows (probabilities, stakes, priority) in the same order. The
    risk that drives the action drives the reasons: each task's contributions are
    weighted by its share of the chosen action's stake (``churn_stake``,
    ``maintenance_stake``). Names from the data and money are worded by `rules`
    (``display_names``, ``currency``). A customer for whom no warning sign stands out
    gets a first reason saying so, with the risk that put them on the list. An ``"uplift"``
    entry of `models` (the registered uplift model; ``rows`` then hold its ``uplift``)
    words a retention call's reasons from the SHAP contributions to the call's effect instead
    of the churn risk's, and adds its top features to the explanation JSON.

    Examples
    --------
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "x": [0.0, 1.0] * 20})
    >>> model = ChurnModel(params={"n_estimators": 2, "min_child_samples": 2},
    ...                    calibration="none").fit(X[["x"]], [0, 1] * 20)
    >>> rows = pd.DataFrame({"churn_probability": [0.9], "churn_stake": [90.0], "maintenance_stake": [0.0]})
    >>> catalogue = pd.DataFrame({"name": ["x"], "direction": ["up"], "reason": ["x is {x:.0f}"]})
    >>> out = explain_chunk({"churn": model}, {"k": X.iloc[[1]].reset_index(drop=True)}, {"churn": "k"}, rows,
    ...                     catalogue, {}, typical=pd.Series({"x": 0.5}), n_reasons=3)
    >>> out.loc["c1", "reason_1"]
    'x is 1'
    """
    keys = list(dict.fromkeys(set_of.values()))
    ids = frames[keys[0]]["customer_id"]
    total = (rows["churn_stake"].to_numpy(dtype="float64") + rows["maintenance_stake"].to_numpy(dtype="float64"))
    parts, weights = {}, {}
    for task, model in models.items():
        contribution = contributions(model, frames[set_of[task]], explainers.get(task))
        # No probability, no explanation: rows the task does not score are left empty.
        unscored = rows[PROBABILITY.get(task, task)].isna().to_numpy()
        if unscored.any():
            contribution.loc[unscored, :] = np.nan
        parts[task] = contribution
        stake = rows["maintenance_stake" if task == "maintenance" else "churn_stake"].to_numpy()
        # Equal shares at a zero stake.
        weights[task] = np.where(total > 0, stake / np.where(total > 0, total, 1.0), 1.0 / len(models))
    if "uplift" in parts and "churn" in weights:
        # Where the uplift model priced the call, its reasons say why a call helps this customer,
        # not why they might leave (a lost cause is at risk too, and a call does not keep them).
        priced = rows["uplift"].notna().to_numpy()
        weights["churn"] = np.where(priced, 0.0, weights["churn"])
        weights["uplift"] = np.where(priced, weights["uplift"], 0.0)
    # Reasons may quote any task's columns (context columns included): one merged row.
    merged = frames[keys[0]]
    for key in keys[1:]:
        extra = frames[key].columns.difference(merged.columns)
        merged = pd.concat([merged, frames[key][extra]], axis=1)
    rules = rules or load_outreach_rules()
    reasons = explain_reasons(parts, merged, catalogue, weights=weights, typical=typical, n_reasons=n_reasons,
                              display_names=rules.display_names, currency=rules.currency)
    none = reasons["reason_1"].isna().to_numpy()
    if none.any():
        reasons.loc[none, "reason_1"] = _no_single_reason(rows.iloc[np.flatnonzero(none)])
    reasons["explanation"] = explanation_json(parts, merged).to_numpy()
    context = listing_context(merged)
    for column in CONTEXT_COLUMNS:
        reasons[column] = context[column].to_numpy()
    reasons.index = pd.Index(ids, name="customer_id")
    return reasons
