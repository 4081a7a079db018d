"""UpliftModel: how much a contact lowers each customer's churn risk, as an X-learner over LightGBM.

Why an X-learner (Kuenzel, Sekhon, Bickel and Yu, PNAS 2019) and not a T- or DR-learner:

* the control groups are small on purpose (10% of a list by default); the X-learner
  imputes each group's effect from the *other* group's outcome model and fits one effect
  model per group, so the large treated group carries most of the estimate where a
  T-learner would subtract two models, one of them fitted on few rows. The two effect
  models are weighted by the share of rows each was fitted on (``1 - propensity`` for the
  control rows' model): their targets are a 0/1 outcome minus a probability, so the one
  fitted on more rows is the less noisy. Kuenzel et al. suggest the propensity itself as
  the control model's weight; on generated worlds that ranked worse (35% and 40% of the
  oracle's true Qini against 44% and 44%, ``benchmarks/README.md``);
* a DR-learner's pseudo-outcome divides control rows by ``1 - propensity`` (10x at a 90/10
  split): its targets are very noisy with a binary churn outcome;
* the effect itself is a tree model (two boosters in the effect's own unit), so its exact
  TreeSHAP contributions say *why contact helps this customer*, summing to the effect.

causalml offers X-learners too, but stores models by pickle and brings its own
dependency tree; this one reuses churnguard's LightGBM conventions (fixed seeds, one
thread, LightGBM's text format plus a JSON schema, no pickle).

Signs: ``uplift = P(churn | not contacted) - P(churn | contacted)``: positive means the
contact keeps the customer, negative that it drives them away (a generated world's
``uplift_truth.treatment_effect`` is ``-uplift``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from churnguard.training.model import ChurnModel, check_features, encode_features, lightgbm_params

__all__ = ["UPLIFT_FILE", "UpliftModel"]

UPLIFT_FILE = "uplift.json"
UPLIFT_SCHEMA_VERSION = 1
_EFFECT_FILES = {"control": "effect_control.txt", "treated": "effect_treated.txt"}


def _is_category(values: pd.Series) -> bool:
    return (isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(values.dtype)
            or values.dtype == object)


def _treated(treatment, n: int) -> np.ndarray:
    t = np.asarray(treatment)
    if len(t) != n:
        raise ValueError(f"treatment has {len(t)} rows, features have {n}")
    if t.dtype.kind in "biuf":
        return t.astype(bool)
    return pd.Series(t).astype(str).str.lower().eq("treatment").to_numpy()


class UpliftModel(BaseEstimator):
    """X-learner of the reduction in churn risk a contact brings, over LightGBM.

    Parameters
    ----------
    params : dict, optional
        LightGBM parameters of the two outcome models (churn of the control and of the
        treated customers; binary, unweighted, uncalibrated).
    effect_params : dict, optional
        LightGBM parameters of the two effect models (regressions on the imputed effects).
    random_state : int, default=1
        Seed of every random choice LightGBM makes.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
    dtypes_ : dict
        Feature -> ``"numeric"`` or ``"category"``.
    categories_ : dict
        Categorical feature -> its known values.
    propensity_ : float
        Share of treated rows in training (assignment was random): the weight of the effect
        model fitted on the treated rows; the control rows' model weighs ``1 - propensity_``.
    effect_control_, effect_treated_ : lightgbm.Booster
        Effect models fitted on the control rows (``y - mu_treated(x)``) and on the treated
        rows (``mu_control(x) - y``).
    n_treated_, n_control_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> X = pd.DataFrame({"trouble": rng.integers(0, 2, n).astype(float), "noise": rng.normal(size=n)})
    >>> treated = rng.random(n) < 0.7
    >>> p = 0.3 - 0.2 * X["trouble"].to_numpy() * treated   # a call helps the customers in trouble
    >>> y = (rng.random(n) < p).astype(int)
    >>> params = {"n_estimators": 40, "num_leaves": 4, "min_child_samples": 100}
    >>> model = UpliftModel(params=params, effect_params=params).fit(X, treated, y)
    >>> effect = model.predict_uplift(pd.DataFrame({"trouble": [1.0, 0.0], "noise": [0.0, 0.0]}))
    >>> effect.round(2).tolist()  # true effects: 0.2 and 0
    [0.16, -0.01]
    >>> contrib = model.contributions(X.head(3))
    >>> list(contrib.columns), bool(np.allclose(contrib.sum(axis=1), model.predict_uplift(X.head(3))))
    (['trouble', 'noise', 'bias'], True)
    """

    def __init__(self, *, params=None, effect_params=None, random_state=1):
        self.params = params
        self.effect_params = effect_params
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, treatment, y) -> "UpliftModel":
        """Fit the outcome models per group, impute each row's effect, fit the effect models."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("UpliftModel.fit expects a pandas DataFrame of features")
        treated = _treated(treatment, len(X))
        y = np.asarray(y).astype("int64")
        for name, rows in (("treated", treated), ("control", ~treated)):
            if len(np.unique(y[rows])) < 2:
                raise ValueError(f"uplift: the {name} rows ({int(rows.sum())}) need both churners and stayers")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        cats = [c for c in self.feature_names_in_ if _is_category(X[c])]
        self.dtypes_ = {c: ("category" if c in cats else "numeric") for c in self.feature_names_in_}
        self.categories_ = {c: sorted({str(v) for v in X[c].dropna().unique()}) for c in cats}
        # Both groups' outcome models see the same categories, so one encoding serves all four models.
        X = X.copy()
        for c in cats:
            X[c] = pd.Categorical(X[c].astype(object).where(X[c].notna(), None), categories=self.categories_[c])

        # No class weights and no calibration: the outcome models' probabilities are subtracted.
        outcome = {**(self.params or {}), "scale_pos_weight": 1.0}
        mu_control = ChurnModel(params=outcome, calibration="none", random_state=self.random_state)
        mu_treated = ChurnModel(params=outcome, calibration="none", random_state=self.random_state)
        mu_control.fit(X[~treated], y[~treated])
        mu_treated.fit(X[treated], y[treated])
        # Each group's effect is imputed with the other group's outcome model: rows it never saw.
        effect_of_control = y[~treated] - mu_treated.predict_proba(X[~treated])[:, 1]
        effect_of_treated = mu_control.predict_proba(X[treated])[:, 1] - y[treated]

        encoded = self.encode(X)
        self.effect_control_ = self._fit_effect(encoded[~treated], effect_of_control)
        self.effect_treated_ = self._fit_effect(encoded[treated], effect_of_treated)
        self.propensity_ = float(treated.mean())
        self.n_treated_, self.n_control_ = int(treated.sum()), int((~treated).sum())
        return self

    def _fit_effect(self, encoded: np.ndarray, target: np.ndarray) -> lgb.Booster:
        params, rounds, _ = lightgbm_params({"objective": "regression", "metric": "l2", **(self.effect_params or {})},
                                            random_state=self.random_state)
        cat_idx = [i for i, c in enumerate(self.feature_names_in_) if self.dtypes_[c] == "category"]
        data = lgb.Dataset(encoded, label=target, feature_name=list(self.feature_names_in_),
                           categorical_feature=cat_idx, params={"verbosity": -1}, free_raw_data=True)
        return lgb.train(params, data, num_boost_round=rounds)

    # ------------------------------------------------------------------ prediction

    def check_schema(self, X: pd.DataFrame) -> None:
        """Raise :class:`~churnguard.training.SchemaMismatchError` unless `X` has the model's features."""
        check_is_fitted(self, "feature_names_in_")
        check_features(X, self.feature_names_in_, self.dtypes_)

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """Float matrix the boosters see: features in model order, categories as codes."""
        self.check_schema(X)
        return encode_features(X, self.feature_names_in_, self.dtypes_, self.categories_)

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """Expected reduction of each customer's churn probability by a contact (negative: it backfires)."""
        check_is_fitted(self, "effect_control_")
        encoded = self.encode(X)
        if not len(encoded):
            return np.zeros(0)
        e = self.propensity_
        return (1.0 - e) * self.effect_control_.predict(encoded) + e * self.effect_treated_.predict(encoded)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions to the uplift; columns = features + ``"bias"``, rows sum to it."""
        check_is_fitted(self, "effect_control_")
        encoded = self.encode(X)
        columns = [*self.feature_names_in_, "bias"]
        if not len(encoded):
            return pd.DataFrame(np.zeros((0, len(columns))), columns=columns, index=X.index)
        e = self.propensity_
        values = ((1.0 - e) * self.effect_control_.predict(encoded, pred_contrib=True)
                  + e * self.effect_treated_.predict(encoded, pred_contrib=True))
        return pd.DataFrame(values, columns=columns, index=X.index)

    # ------------------------------------------------------------------ persistence

    def schema(self) -> dict[str, Any]:
        """Everything besides the trees, as plain JSON values (the content of ``uplift.json``)."""
        check_is_fitted(self, "effect_control_")
        return {
            "kind": "x_learner",
            "schema_version": UPLIFT_SCHEMA_VERSION,
            "features": list(self.feature_names_in_),
            "dtypes": dict(self.dtypes_),
            "categories": dict(self.categories_),
            "propensity": self.propensity_,
            "n_treated": self.n_treated_,
            "n_control": self.n_control_,
            "init_params": {"params": self.params, "effect_params": self.effect_params,
                            "random_state": self.random_state},
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``uplift.json`` and the two effect models (LightGBM text) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.effect_control_.save_model(str(directory / _EFFECT_FILES["control"]))
        self.effect_treated_.save_model(str(directory / _EFFECT_FILES["treated"]))
        (directory / UPLIFT_FILE).write_text(json.dumps(self.schema(), indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "UpliftModel":
        """Read a model written by :meth:`save` (no pickle involved)."""
        directory = Path(directory)
        schema = json.loads((directory / UPLIFT_FILE).read_text())
        model = cls(**schema["init_params"])
        model.feature_names_in_ = np.asarray(schema["features"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.dtypes_ = schema["dtypes"]
        model.categories_ = schema["categories"]
        model.propensity_ = float(schema["propensity"])
        model.n_treated_, model.n_control_ = int(schema["n_treated"]), int(schema["n_control"])
        model.effect_control_ = lgb.Booster(model_file=str(directory / _EFFECT_FILES["control"]))
        model.effect_treated_ = lgb.Booster(model_file=str(directory / _EFFECT_FILES["treated"]))
        return model
