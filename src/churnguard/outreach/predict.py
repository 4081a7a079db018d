"""Models to probabilities: one feature build per feature set, one predict loop over tasks."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from churnguard.config import TASKS, FeatureSet
from churnguard.outreach.eligibility import member_mask
from churnguard.outreach.frames import PROBABILITY
from churnguard.training.artifact import as_artifact

__all__ = ["check_schema", "feature_set_groups", "predict_tasks", "predict_uplift"]


def feature_set_groups(
    models: Mapping[str, Any], *, given: bool = False
) -> tuple[dict[str, FeatureSet | None], dict[str, str]]:
    """The distinct feature sets the models were trained on, and which task uses which.

    Features are built once per distinct set (both tasks usually share one). Returns
    ``(sets, set_of)``: key -> feature set (None: derive from the data), and task ->
    key. With ``given=True`` the caller's own feature frame serves every task, under
    the key ``"given"``.

    Examples
    --------
    >>> from churnguard.training import ModelArtifact
    >>> models = {"churn": ModelArtifact(estimator=None), "maintenance": ModelArtifact(estimator=None)}
    >>> sets, set_of = feature_set_groups(models)
    >>> sets, set_of
    ({'None': None}, {'churn': 'None', 'maintenance': 'None'})
    """
    sets: dict[str, FeatureSet | None] = {}
    set_of: dict[str, str] = {}
    for task, model in models.items():
        fs = as_artifact(model).feature_set
        key = "given" if given else repr(fs.to_dict() if fs is not None else None)
        sets[key] = fs
        set_of[task] = key
    return sets, set_of


def check_schema(model, frame: pd.DataFrame) -> None:
    """Raise :class:`~churnguard.training.SchemaMismatchError` unless `frame` has the model's inputs.

    Examples
    --------
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": [0.0, 1.0] * 20})
    >>> model = ChurnModel(params={"n_estimators": 2}, calibration="none").fit(X, [0, 1] * 20)
    >>> check_schema(model, X)
    >>> check_schema(model, pd.DataFrame({"y": [1.0]}))
    Traceback (most recent call last):
    ...
    churnguard.training.model.SchemaMismatchError: ...
    """
    artifact = as_artifact(model)
    estimator = artifact.estimator
    if hasattr(estimator, "check_schema"):
        estimator.check_schema(frame)
        return
    missing = [f for f in artifact.feature_names if f not in frame.columns]
    if missing:
        from churnguard.training import SchemaMismatchError

        raise SchemaMismatchError(missing, {})


def predict_tasks(
    models: Mapping[str, Any],
    frames: Mapping[str, pd.DataFrame],
    set_of: Mapping[str, str],
    ids,
    scored_by: Mapping[str, pd.Index | None],
) -> pd.DataFrame:
    """Each task's probability for customers `ids`: ``customer_id`` and one column per task.

    `frames` holds each feature-set key's features of `ids` (same order); a task
    without a model gets NaN, and so does a customer outside the task's
    ``scored_by[task]`` (None: everyone; see
    :func:`churnguard.outreach.scored_customers`).

    Examples
    --------
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "x": [0.0, 1.0] * 20})
    >>> model = ChurnModel(params={"n_estimators": 2}, calibration="none").fit(X[["x"]], [0, 1] * 20)
    >>> probs = predict_tasks({"maintenance": model}, {"k": X}, {"maintenance": "k"}, X["customer_id"],
    ...                       {"maintenance": pd.Index(["c1"])})
    >>> probs.columns.tolist(), int(probs["maintenance_probability"].notna().sum())
    (['customer_id', 'churn_probability', 'maintenance_probability'], 1)
    """
    part = pd.DataFrame({"customer_id": np.asarray(ids, dtype=object)})
    encoded: dict[tuple, np.ndarray] = {}  # tasks whose models read the same matrix encode it once
    for task in TASKS:
        if task not in models:
            part[PROBABILITY[task]] = np.nan
            continue
        frame = frames[set_of[task]]
        check_schema(models[task], frame)
        estimator = as_artifact(models[task]).estimator
        if not len(frame):
            p = np.zeros(0)
        elif hasattr(estimator, "predict_proba_encoded"):
            key = (set_of[task], estimator.encoding())
            if key not in encoded:
                encoded[key] = estimator.encode(frame)
            p = estimator.predict_proba_encoded(encoded[key])[:, 1]
        else:
            p = estimator.predict_proba(frame)[:, 1]
        if scored_by.get(task) is not None:
            p = np.where(member_mask(part["customer_id"], scored_by[task]), p, np.nan)
        part[PROBABILITY[task]] = p
    return part


def predict_uplift(model, frame: pd.DataFrame, ids, population: pd.Index | None) -> np.ndarray:
    """The uplift model's effect of a call for customers `ids`: the churn probability it removes.

    `frame` holds the features of `ids` in the same order; a customer outside the churn
    model's `population` (None: everyone) gets NaN, as no retention call is priced for them.

    Examples
    --------
    >>> from churnguard.training.uplift_model import UpliftModel
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"customer_id": [f"c{i}" for i in range(400)], "x": rng.normal(size=400)})
    >>> small = {"n_estimators": 3, "min_child_samples": 20}
    >>> model = UpliftModel(params=small, effect_params=small).fit(X[["x"]], rng.random(400) < 0.5,
    ...                                                            (rng.random(400) < 0.3).astype(int))
    >>> effect = predict_uplift(model, X, X["customer_id"], pd.Index(["c1"]))
    >>> int(np.isfinite(effect).sum())
    1
    """
    check_schema(model, frame)
    effect = as_artifact(model).estimator.predict_uplift(frame) if len(frame) else np.zeros(0)
    if population is not None:
        effect = np.where(member_mask(pd.Index(ids), population), effect, np.nan)
    return effect
