"""ChurnModel: LightGBM with native categoricals, calibrated probabilities, exact TreeSHAP.

The model is stored as LightGBM's own text format (``model.txt``) next to a JSON
schema (``schema.json``) holding the feature list, dtypes, category lists and the
calibration map as plain numbers. Loading never unpickles anything. What training
knows about the model (task, feature set, drift reference...) lives beside it, in
:class:`churnguard.training.ModelArtifact`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from churnguard.features.engine import threads
from churnguard.memory import release_free_memory

SCHEMA_VERSION = 1
# Batches from this size are predicted with churnguard.treeshap's compiled kernel.
FAST_PREDICT_MIN_ROWS = 20_000

# Sklearn-style names in models/*.toml mapped to LightGBM's native parameter names, so the
# stored model text and the MLflow params show one spelling.
_PARAM_ALIASES = {
    "min_child_samples": "min_data_in_leaf",
    "subsample": "bagging_fraction",
    "subsample_freq": "bagging_freq",
    "colsample_bytree": "feature_fraction",
    "reg_lambda": "lambda_l2",
    "reg_alpha": "lambda_l1",
}


CALIBRATIONS = ("beta", "isotonic", "sigmoid", "none")


class SchemaMismatchError(ValueError):
    """The frame given to a fitted model does not match the features it was trained on.

    Attributes
    ----------
    missing : list of str
        Features the model needs that the frame lacks.
    mistyped : dict
        Feature name -> ``(expected, found)`` dtype kinds (``numeric`` / ``category``).
    """

    def __init__(self, missing: list[str], mistyped: dict[str, tuple[str, str]]):
        self.missing = list(missing)
        self.mistyped = dict(mistyped)
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing feature(s): {', '.join(self.missing)}")
        if self.mistyped:
            wrong = ", ".join(f"{name} (expected {exp}, got {got})" for name, (exp, got) in self.mistyped.items())
            parts.append(f"{len(self.mistyped)} mistyped feature(s): {wrong}")
        super().__init__("feature schema does not match the model: " + "; ".join(parts))


def lightgbm_params(params: dict[str, Any] | None, *, random_state: int) -> tuple[dict[str, Any], int, int | None]:
    """Resolve spec parameters into LightGBM native params, number of rounds and early stopping.

    Determinism is forced here: fixed seeds, ``deterministic=True``, a fixed thread count
    (LightGBM's float sums depend on how rows are split among threads).

    Examples
    --------
    >>> p, rounds, stop = lightgbm_params({"n_estimators": 50, "subsample": 0.8}, random_state=3)
    >>> rounds, stop, p["bagging_fraction"], p["seed"], p["deterministic"]
    (50, None, 0.8, 3, True)
    """
    raw = dict(params or {})
    rounds = int(raw.pop("n_estimators", raw.pop("num_iterations", raw.pop("num_boost_round", 100))))
    stop = raw.pop("early_stopping_rounds", raw.pop("early_stopping_round", None))
    out: dict[str, Any] = {"objective": "binary", "metric": "auc", "verbosity": -1}
    for key, value in raw.items():
        out[_PARAM_ALIASES.get(key, key)] = value
    out.update(
        seed=random_state,
        bagging_seed=random_state,
        feature_fraction_seed=random_state,
        data_random_seed=random_state,
        deterministic=True,
        force_col_wise=True,
    )
    out.setdefault("num_threads", 1)
    return out, rounds, (int(stop) if stop else None)


def _kind(series: pd.Series) -> str:
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        return "category"
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return "numeric"
    return str(series.dtype)


def _category_values(series: pd.Series) -> list[str]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        values = [str(c) for c in series.cat.categories]
    else:
        values = sorted({str(v) for v in series.dropna().unique()})
    return values


class ChurnModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM classifier for one task, with exact TreeSHAP contributions.

    Parameters
    ----------
    params : dict, optional
        LightGBM parameters (the ``[lightgbm]`` table of a model spec). Sklearn-style names
        (``n_estimators``, ``subsample``, ``early_stopping_rounds``...) are accepted.
        Without ``scale_pos_weight``/``is_unbalance``, positives are weighted by
        ``n_negative / n_positive``; calibration then maps scores back to probabilities.
    calibration : {"beta", "isotonic", "sigmoid", "none"}, default="beta"
        Map from raw margin to probability, fitted on held-out rows only. ``"beta"``
        (beta calibration) and ``"sigmoid"`` (Platt) rise strictly with the raw score,
        so the probabilities keep the model's order; isotonic maps are step functions.
    categorical_features : "auto" or list of str, default="auto"
        ``"auto"``: every ``category``/string column is a native LightGBM categorical.
    random_state : int, default=1
        Seed of every random choice LightGBM makes.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained trees.
    feature_names_in_ : ndarray of str
        Features in model order.
    dtypes_ : dict
        Feature -> ``"numeric"`` or ``"category"``.
    categories_ : dict
        Categorical feature -> list of category values (codes are positions in the list).
    calibration_ : dict
        ``{"method": "isotonic", "x": [...], "y": [...]}``, ``{"method": "sigmoid", "a", "b"}``,
        ``{"method": "beta", "a", "b", "c"}``
        or ``{"method": "none"}``; applied to the raw margin.
    best_iteration_ : int
        Number of trees kept (early stopping on the validation rows).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"complaints": rng.poisson(1.0, 400).astype(float),
    ...                   "plan": pd.Categorical(rng.choice(["basic", "gold"], 400))})
    >>> y = (X["complaints"] + rng.normal(0, 1, 400) > 1.5).astype(int)
    >>> model = ChurnModel(params={"n_estimators": 20, "min_child_samples": 10}, calibration="none").fit(X, y)
    >>> model.predict_proba(X).shape
    (400, 2)
    >>> contrib = model.contributions(X.head(3))
    >>> list(contrib.columns)
    ['complaints', 'plan', 'bias']
    >>> bool(np.allclose(contrib.sum(axis=1), model.predict_margin(X.head(3))))
    True
    """

    def __init__(self, *, params=None, calibration="beta", categorical_features="auto", random_state=1):
        self.params = params
        self.calibration = calibration
        self.categorical_features = categorical_features
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, *, X_valid=None, y_valid=None, X_cal=None, y_cal=None) -> "ChurnModel":
        """Train on (X, y), early-stop on (X_valid, y_valid), calibrate on held-out rows.

        `X` is a DataFrame, or a list of DataFrames with the same columns read as their
        rows stacked in order (views of one stacked frame: the training rows are then
        never copied; the model is the one the stacked frame would give).
        Calibration uses ``(X_cal, y_cal)`` if given, else the validation rows; never the
        training rows, whose scores are optimistic.
        """
        blocks = row_blocks(X)
        X = blocks[0]  # columns and dtypes; the rows are the blocks'
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}")
        y = self._check_y(y, sum(len(b) for b in blocks), "y")
        if X_cal is None and X_valid is not None:
            X_cal, y_cal = X_valid, y_valid
        if self.calibration != "none" and X_cal is None:
            raise ValueError(
                f"calibration={self.calibration!r} needs held-out rows: pass X_cal/y_cal or "
                "X_valid/y_valid (or calibration='none')"
            )

        if self.categorical_features == "auto":
            cats = [c for c in X.columns if _kind(X[c]) == "category"]
        else:
            cats = list(self.categorical_features)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.dtypes_ = {str(c): ("category" if c in cats else "numeric") for c in X.columns}
        self.categories_ = {str(c): _category_values(_stacked(blocks, c)) for c in cats}
        bad = {c: ("numeric", _kind(X[c])) for c in X.columns if c not in cats and _kind(X[c]) != "numeric"}
        if bad:
            raise SchemaMismatchError([], bad)
        self.classes_ = np.array([0, 1])

        params, rounds, stop = lightgbm_params(self.params, random_state=self.random_state)
        if "scale_pos_weight" not in params and not params.get("is_unbalance"):
            n_pos = int(y.sum())
            params["scale_pos_weight"] = float((len(y) - n_pos) / max(n_pos, 1))
        cat_idx = [i for i, c in enumerate(self.feature_names_in_) if self.dtypes_[c] == "category"]
        train = lgb.Dataset(
            self._encode_columns(blocks), label=y, feature_name=list(self.feature_names_in_),
            categorical_feature=cat_idx, params={"verbosity": -1}, free_raw_data=True,
        )
        callbacks, valid_sets = [], []
        if X_valid is not None:
            yv = self._check_y(y_valid, len(X_valid), "y_valid")
            valid_sets = [lgb.Dataset(self._encode_columns(X_valid), label=yv, reference=train)]
            if stop:
                callbacks.append(lgb.early_stopping(stop, first_metric_only=True, verbose=False))
        booster = lgb.train(params, train, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        # Keep only the trees predictions use, so the fitted model, its saved text and any
        # external TreeSHAP over the booster all see the same trees.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
        self.params_ = params
        # The Datasets' bins and LightGBM's sample buffers are freed here: give their pages
        # back, so the next step (calibration, a fold's margins, the next fit) does not
        # stack its own peak on top of them.
        del booster, train, valid_sets
        release_free_memory()

        self.calibration_ = {"method": "none"}
        if self.calibration != "none":
            self.calibration_ = _fit_calibration(
                self.calibration, self.predict_margin(X_cal), self._check_y(y_cal, len(X_cal), "y_cal")
            )
        return self

    @staticmethod
    def _check_y(y, n: int, name: str) -> np.ndarray:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"{name} has {len(y)} rows, features have {n}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name} must be 0/1 labels")
        if n and len(np.unique(y)) < 2:
            raise ValueError(f"{name} holds a single class; need both 0 and 1")
        return y.astype("int64")

    # ------------------------------------------------------------------ prediction

    def check_schema(self, X: pd.DataFrame) -> None:
        """Raise :class:`SchemaMismatchError` naming every missing or mistyped feature."""
        check_is_fitted(self, "booster_")
        check_features(X, self.feature_names_in_, self.dtypes_)

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """Float matrix the booster sees: features in model order, categories as codes.

        Unknown or missing category values become NaN (LightGBM's missing branch). This is
        the input of any TreeSHAP implementation given to :meth:`contributions`.
        """
        self.check_schema(X)
        return self._encode(X)

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        return encode_features(X, self.feature_names_in_, self.dtypes_, self.categories_)

    def _encode_column(self, values: pd.Series, name: str) -> np.ndarray:
        return encode_column(values, self.dtypes_[name], self.categories_.get(name))

    def _encode_columns(self, X: pd.DataFrame | list[pd.DataFrame]) -> pa.Table:
        """The training input as Arrow columns, not one float64 matrix.

        LightGBM bins Arrow columns into the same histograms as the matrix (same sample,
        same bin bounds: a float32 value is read as the double it is exactly; tested), and
        the frame's float columns are passed without a copy, so fitting millions of stacked
        rows never holds a second dense copy of them. Row blocks become the chunks of each
        column, which LightGBM reads as the stacked rows (same model; tested).
        """
        blocks = row_blocks(X)
        columns = [pa.chunked_array([pa.array(self._encode_column(b[c], c)) for b in blocks])
                   for c in self.feature_names_in_]
        return pa.table(columns, names=list(self.feature_names_in_))

    def predict_margin(self, X: pd.DataFrame) -> np.ndarray:
        """Raw LightGBM score (log-odds before calibration), one value per row.

        Large batches go through :meth:`churnguard.treeshap.TreeShap.predict_margin`, which
        gives LightGBM's bits (same decisions, same summation order; tested) about 3x faster;
        small ones through ``booster.predict``, which has no compile or parse cost.
        """
        return self._margin(self.encode(X))

    def _margin(self, encoded: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "booster_")
        fast = self._parsed_trees()[0] if len(encoded) >= FAST_PREDICT_MIN_ROWS else None
        if fast is not None:
            return fast.predict_margin(encoded)
        # Rows are independent, so prediction threads change nothing but the speed (training
        # stays on the spec's thread count, which fixes the model's bits).
        return self.booster_.predict(encoded, raw_score=True, num_iteration=self.best_iteration_,
                                     num_threads=threads())

    def tree_shap(self):
        """:class:`churnguard.treeshap.TreeShap` over this model's trees, parsed once per booster.

        The same object serves large-batch prediction and explanation. None where it does not
        apply: numba missing, a model kind it cannot read, or a booster holding trees past
        ``best_iteration_`` (TreeShap would use them all; models after fit or load are trimmed).
        Its warning about SHAP tables too large for very deep trees is given here, where the
        explanation is asked for, not on every large prediction.
        """
        check_is_fitted(self, "booster_")
        explainer, caught = self._parsed_trees()
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=2)
        return explainer

    def _parsed_trees(self):
        """(TreeShap or None, warnings its construction gave), cached for the current booster."""
        cached = getattr(self, "_parsed_trees_", None)
        if cached is not None and cached[0] is self.booster_:
            return cached[1], cached[2]
        explainer, caught = None, []
        if self.booster_.current_iteration() == self.best_iteration_:
            try:
                from churnguard.treeshap import TreeShap

                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    explainer = TreeShap(self.booster_)
            except (ImportError, ValueError):  # numba missing, or a model kind it cannot read
                explainer = None
        self._parsed_trees_ = (self.booster_, explainer, list(caught))
        return explainer, list(caught)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2); column 1 is the risk."""
        check_is_fitted(self, "booster_")
        return self.predict_proba_encoded(self.encode(X))

    def encoding(self) -> tuple:
        """What :meth:`encode` depends on (feature order, kinds, categories), hashable.

        Two models with equal encodings read the same matrix from the same frame, so a
        caller scoring both tasks encodes each chunk once (:meth:`predict_proba_encoded`).

        Examples
        --------
        >>> X = pd.DataFrame({"x": [0.0, 1.0] * 20})
        >>> a = ChurnModel(params={"n_estimators": 2}, calibration="none").fit(X, [0, 1] * 20)
        >>> b = ChurnModel(params={"n_estimators": 3}, calibration="none").fit(X, [1, 0] * 20)
        >>> a.encoding() == b.encoding()
        True
        >>> bool((a.predict_proba_encoded(a.encode(X)) == a.predict_proba(X)).all())
        True
        """
        check_is_fitted(self, "booster_")
        return (tuple(self.feature_names_in_), tuple(sorted(self.dtypes_.items())),
                tuple(sorted((k, tuple(v)) for k, v in self.categories_.items())))

    def predict_proba_encoded(self, encoded: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of a matrix from :meth:`encode` (of this model or one of equal :meth:`encoding`)."""
        p = calibrate(self._margin(encoded), self.calibration_)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class 1 where the calibrated probability is at least 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")

    def booster_dump(self) -> dict[str, Any]:
        """LightGBM's JSON dump of the trees kept (input of an external TreeSHAP)."""
        check_is_fitted(self, "booster_")
        return self.booster_.dump_model(num_iteration=self.best_iteration_)

    def contributions(self, X: pd.DataFrame, *, method: str | Callable = "lightgbm") -> pd.DataFrame:
        """Exact TreeSHAP contributions to the raw margin; columns = features + ``"bias"``.

        Each row sums to :meth:`predict_margin` of that row.

        Parameters
        ----------
        method : "lightgbm" or callable, default="lightgbm"
            ``"lightgbm"`` uses the booster's ``pred_contrib``. A callable
            ``f(booster_dump, X_encoded) -> ndarray (n, n_features + 1)`` plugs in another
            exact implementation (e.g. ``churnguard.treeshap.tree_shap``).
        """
        check_is_fitted(self, "booster_")
        encoded = self.encode(X)
        if method == "lightgbm":
            values = self.booster_.predict(encoded, pred_contrib=True, num_iteration=self.best_iteration_)
        elif callable(method):
            values = np.asarray(method(self.booster_dump(), encoded))
        else:
            raise ValueError(f"method must be 'lightgbm' or a callable, got {method!r}")
        return pd.DataFrame(values, columns=[*self.feature_names_in_, "bias"], index=X.index)

    # ------------------------------------------------------------------ persistence

    def schema(self) -> dict[str, Any]:
        """Everything besides the trees, as plain JSON-able values."""
        check_is_fitted(self, "booster_")
        return {
            "schema_version": SCHEMA_VERSION,
            "features": list(self.feature_names_in_),
            "dtypes": dict(self.dtypes_),
            "categories": dict(self.categories_),
            "calibration": dict(self.calibration_),
            "best_iteration": self.best_iteration_,
            "init_params": {
                "params": self.params,
                "calibration": self.calibration,
                "categorical_features": self.categorical_features,
                "random_state": self.random_state,
            },
            "lightgbm_params": self.params_,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``model.txt`` (LightGBM text) and ``schema.json`` into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / "model.txt"), num_iteration=self.best_iteration_)
        (directory / "schema.json").write_text(json.dumps(self.schema(), indent=1, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ChurnModel":
        """Read a model written by :meth:`save` (no pickle involved)."""
        directory = Path(directory)
        return cls.from_files(directory / "model.txt", directory / "schema.json")

    @classmethod
    def from_files(cls, model_txt: str | Path, schema_json: str | Path) -> "ChurnModel":
        """Read a model from its two files, wherever they live (e.g. MLflow artifacts).

        Keys of ``schema.json`` other than the estimator's own (training metadata that
        models saved before :class:`~churnguard.training.ModelArtifact` carried there)
        are left for :meth:`ModelArtifact.load` to read.
        """
        schema = json.loads(Path(schema_json).read_text())
        init = schema["init_params"]
        model = cls(
            params=init["params"], calibration=init["calibration"],
            categorical_features=init["categorical_features"], random_state=init["random_state"],
        )
        model.booster_ = lgb.Booster(model_file=str(model_txt))
        model.feature_names_in_ = np.asarray(schema["features"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.dtypes_ = schema["dtypes"]
        model.categories_ = schema["categories"]
        model.calibration_ = schema["calibration"]
        model.best_iteration_ = int(schema["best_iteration"])
        model.params_ = schema["lightgbm_params"]
        model.classes_ = np.array([0, 1])
        return model


def row_blocks(X) -> list[pd.DataFrame]:
    """`X` as a list of row blocks: a DataFrame is one block, a list of DataFrames its own blocks.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    >>> [len(b) for b in row_blocks(frame)], [len(b) for b in row_blocks([frame[:1], frame[2:]])]
    ([3], [1, 1])
    """
    if isinstance(X, pd.DataFrame):
        return [X]
    blocks = list(X) if isinstance(X, (list, tuple)) else None
    if not blocks or not all(isinstance(b, pd.DataFrame) for b in blocks):
        raise TypeError("ChurnModel.fit expects a pandas DataFrame of features (or a list of them)")
    columns = list(blocks[0].columns)
    if any(list(b.columns) != columns for b in blocks[1:]):
        raise ValueError("row blocks must have the same columns in the same order")
    return blocks


def _stacked(blocks: list[pd.DataFrame], column: str) -> pd.Series:
    """One column of the stacked row blocks (a copy of that column only, where there are several)."""
    if len(blocks) == 1:
        return blocks[0][column]
    return pd.concat([b[column] for b in blocks], ignore_index=True)


def check_features(X: pd.DataFrame, names, dtypes: dict[str, str]) -> None:
    """Raise :class:`SchemaMismatchError` naming every feature of `names` missing from `X` or of the wrong kind.

    `dtypes` maps each name to ``"numeric"`` or ``"category"`` (a fitted model's ``dtypes_``).

    Examples
    --------
    >>> check_features(pd.DataFrame({"x": [1.0]}), ["x"], {"x": "numeric"})
    >>> check_features(pd.DataFrame({"x": ["a"]}), ["x", "y"], {"x": "numeric", "y": "numeric"})
    Traceback (most recent call last):
    ...
    churnguard.training.model.SchemaMismatchError: feature schema does not match the model: 1 missing feature(s): y; 1 mistyped feature(s): x (expected numeric, got category)
    """
    missing = [c for c in names if c not in X.columns]
    mistyped = {}
    for c in names:
        if c in X.columns and (found := _kind(X[c])) != dtypes[c]:
            mistyped[c] = (dtypes[c], found)
    if missing or mistyped:
        raise SchemaMismatchError(missing, mistyped)


def encode_features(X: pd.DataFrame, names, dtypes: dict[str, str], categories: dict[str, list[str]]) -> np.ndarray:
    """Float matrix a booster sees: `names` in order, categories as codes into `categories`.

    Unknown or missing category values become NaN (LightGBM's missing branch). The
    schema is not checked here (:func:`check_features`).

    Examples
    --------
    >>> X = pd.DataFrame({"plan": ["gold", "new", None], "n": [1, 2, 3]})
    >>> encode_features(X, ["n", "plan"], {"n": "numeric", "plan": "category"}, {"plan": ["basic", "gold"]}).tolist()
    [[1.0, 1.0], [2.0, nan], [3.0, nan]]
    """
    out = np.empty((len(X), len(names)), dtype="float64")
    for j, c in enumerate(names):
        out[:, j] = encode_column(X[c], dtypes[c], categories.get(c))
    return out


def encode_column(values: pd.Series, dtype: str, categories: list[str] | None = None) -> np.ndarray:
    """One feature column as a booster sees it: category codes, or the numbers.

    float32 and float64 columns come back as they are (no copy), so the Arrow path of
    training never holds a second dense copy of the stacked frame.

    Examples
    --------
    >>> encode_column(pd.Series(["gold", None, "new"]), "category", ["basic", "gold"]).tolist()
    [1.0, nan, nan]
    >>> encode_column(pd.Series([1, 2]), "numeric").tolist()
    [1.0, 2.0]
    """
    if dtype == "category":
        known = pd.Index(categories)
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Map the few levels, then take codes: no string per row.
            level_codes = known.get_indexer(values.cat.categories.astype("str"))
            codes = np.append(level_codes, -1)[values.cat.codes.to_numpy()]  # code -1 (missing) -> -1
        else:
            # Codes by hash lookup in C (a row-wise dict map took ~4.5 s a million rows).
            codes = known.get_indexer(values.astype("str"))
        return np.where(codes < 0, np.nan, codes)
    if values.dtype in (np.float32, np.float64):
        return values.to_numpy()
    return values.to_numpy(dtype="float64", na_value=np.nan)


def refit_on_all(model: ChurnModel, X, y, *, groups, n_folds: int = 2) -> ChurnModel:
    """`model` refitted on every row, for production: the same trees budget, calibration out of fold.

    Evaluation keeps the newest cutoffs out of training; the model that scores tomorrow's
    list can learn from them too. The refit grows ``model.best_iteration_`` trees (no early
    stopping: there is nothing left to stop on) with the same parameters and seed. Its
    calibration is fitted on out-of-fold margins: `n_folds` models of the same budget, each
    trained without one fold of customers (`groups`), score that fold, so no row is
    calibrated by a model that trained on it. `X` is a DataFrame or a list of row blocks
    (as :meth:`ChurnModel.fit` takes it); one fold's rows are copied at a time.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"complaints": rng.poisson(1.0, 600).astype(float)})
    >>> y = (X["complaints"] + rng.normal(0, 1, 600) > 1.5).astype(int).to_numpy()
    >>> first = ChurnModel(params={"n_estimators": 30, "min_child_samples": 10}).fit(
    ...     X[:400], y[:400], X_valid=X[400:], y_valid=y[400:])
    >>> final = refit_on_all(first, X, y, groups=np.arange(600) % 150)
    >>> final.best_iteration_ == first.best_iteration_, final.calibration_["method"]
    (True, 'beta')
    """
    check_is_fitted(model, "booster_")
    y = np.asarray(y)
    groups = np.asarray(groups)
    params = {k: v for k, v in (model.params or {}).items()
              if k not in ("early_stopping_rounds", "early_stopping_round", "n_estimators", "num_iterations",
                           "num_boost_round")}
    params["n_estimators"] = int(model.best_iteration_)

    def budget(calibration: str) -> ChurnModel:
        return ChurnModel(params=params, calibration=calibration, categorical_features=model.categorical_features,
                          random_state=model.random_state)

    blocks = row_blocks(X)
    final = budget("none").fit(blocks, y)
    if model.calibration == "none":
        return final
    # Fold by a hash-free rank of the group id: the same groups always give the same folds.
    _, codes = np.unique(groups, return_inverse=True)
    fold = codes % n_folds
    margin = np.empty(len(y), dtype="float64")
    for k in range(n_folds):
        held = fold == k
        fold_model = budget("none").fit(_rows_of(blocks, ~held), y[~held])
        margin[held] = _margin_in_batches(fold_model, blocks, held)
        del fold_model
        release_free_memory()
    final.calibration = model.calibration
    final.calibration_ = _fit_calibration(model.calibration, margin, y)
    return final


# Out-of-fold margins are predicted this many rows at a time (at least, so every batch takes
# the same compiled path as one big batch): the float64 matrix of a whole fold is ~1 GiB at
# a million stacked rows.
MARGIN_BATCH_ROWS = 100_000


def _rows_of(blocks: list[pd.DataFrame], mask: np.ndarray) -> list[pd.DataFrame]:
    """The rows of the stacked `blocks` where `mask` holds, as row blocks (a copy of those rows)."""
    out, start = [], 0
    for block in blocks:
        keep = mask[start : start + len(block)]
        start += len(block)
        if keep.any():
            out.append(block[keep])
    return out


def _margin_in_batches(model: ChurnModel, blocks: list[pd.DataFrame], mask: np.ndarray) -> np.ndarray:
    """``model.predict_margin`` of the stacked `blocks`' rows where `mask` holds, a batch at a time.

    Only one batch of rows is copied at a time. Rows are scored independently and every
    batch has at least MARGIN_BATCH_ROWS rows (or all of them), which picks the same
    prediction path as one call on all rows would, so the margins are that call's.
    """
    rows = np.flatnonzero(mask)
    starts = np.cumsum([0] + [len(b) for b in blocks])
    parts = []
    for batch in np.array_split(rows, max(len(rows) // MARGIN_BATCH_ROWS, 1)):
        if not len(batch):
            continue
        pieces = []
        for block, start in zip(blocks, starts):
            local = batch[(batch >= start) & (batch < start + len(block))] - start
            if len(local):
                pieces.append(block.iloc[local])
        parts.append(model.predict_margin(pieces[0] if len(pieces) == 1 else pd.concat(pieces)))
    return np.concatenate(parts) if parts else np.empty(0)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in schema.json")


# Calibrated probabilities stay this far from 0 and 1: a list rounded to 6 decimals never
# shows a certainty the model cannot have.
PROBABILITY_FLOOR = 1e-6


def _beta_features(margin: np.ndarray) -> np.ndarray:
    """``[ln s, -ln(1 - s)]`` of ``s = sigmoid(margin)``, computed without overflow."""
    margin = np.asarray(margin, dtype="float64")
    return np.column_stack([-np.logaddexp(0.0, -margin), np.logaddexp(0.0, margin)])


def _fit_beta(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    # Beta calibration (Kull, Silva Filho & Flach, 2017): a logistic fit on ln s and
    # -ln(1 - s). Both slopes must be >= 0 for the map to rise with the score; a negative
    # one is dropped and the other refitted, as the authors' reference code does.
    features = _beta_features(margin)
    lr = LogisticRegression(C=1e6).fit(features, y)
    a, b = (float(v) for v in lr.coef_[0])
    c = float(lr.intercept_[0])
    if a < 0 or b < 0:
        keep = 1 if a < 0 else 0
        lr = LogisticRegression(C=1e6).fit(features[:, [keep]], y)
        slope = max(float(lr.coef_[0, 0]), 1e-6)
        a, b = (0.0, slope) if keep == 1 else (slope, 0.0)
        c = float(lr.intercept_[0])
    if a + b <= 0:
        a = 1e-6
    return {"method": "beta", "a": a, "b": b, "c": c}


def _fit_calibration(method: str, margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method == "beta":
        return _fit_beta(margin, y)
    lr = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y)
    return {"method": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def calibrate(margin: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Apply a stored calibration map to raw margins.

    Isotonic maps are step functions that tie many customers at the same probability; a
    term of at most 1e-9 that rises with the margin breaks those ties in the model's own
    order, so top-K lists stay deterministic and ranking metrics see the full ranking.

    Examples
    --------
    >>> calibrate(np.array([-2.0, 0.0, 2.0]), {"method": "sigmoid", "a": 1.0, "b": 0.0}).round(3)
    array([0.119, 0.5  , 0.881])
    >>> p = calibrate(np.array([-1.0, 0.5, 3.0]), {"method": "isotonic", "x": [0.0, 1.0], "y": [0.1, 0.3]})
    >>> p.round(3), bool(p[0] < p[1] < p[2])
    (array([0.1, 0.2, 0.3]), True)

    Beta calibration is strictly increasing in the margin and stays inside
    ``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]``:

    >>> p = calibrate(np.array([-50.0, -1.0, 0.0, 1.0, 50.0]), {"method": "beta", "a": 1.2, "b": 0.8, "c": -0.3})
    >>> bool(np.all(np.diff(p[1:4]) > 0)), float(p.min()) >= 1e-6, float(p.max()) <= 1 - 1e-6
    (True, True, True)
    """
    method = calibration["method"]
    if method == "none":
        return 1.0 / (1.0 + np.exp(-margin))
    if method == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(calibration["a"] * margin + calibration["b"])))
    if method == "beta":
        z = _beta_features(margin) @ np.array([calibration["a"], calibration["b"]]) + calibration["c"]
        # |z| > 30 is already past the floor; bounding it keeps exp from overflowing.
        return np.clip(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    if method == "isotonic":
        p = np.interp(margin, calibration["x"], calibration["y"])
        return np.clip(p + 1e-9 * (1.0 / (1.0 + np.exp(-margin)) - 0.5), 0.0, 1.0)
    raise ValueError(f"unknown calibration method {method!r}")
