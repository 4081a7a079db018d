"""Fit a task's model on a stacked training frame and judge it on the held-out rows.

Metrics against the rule and logistic baselines (and the oracle on synthetic data),
SHAP importance, the drift reference of the training rows. No MLflow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from churnguard import drift
from churnguard.config import ModelSpec, OutreachRules, load_outreach_rules
from churnguard.memory import release_free_memory
from churnguard.training import evaluation as ev
from churnguard.training.emp import expected_maximum_profit
from churnguard.training.model import ChurnModel
from churnguard.training.plan import split_parts
from churnguard.training.splits import HoldOut, NotEnoughHistory, TimeSplit, choose_hold_out

__all__ = ["ID_COLUMNS", "Evaluation", "churn_emp", "fit_and_evaluate", "model_features", "row_runs", "select_rows"]

ID_COLUMNS = ("customer_id", "cutoff", "label")
SHAP_SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class Evaluation:
    """A fitted model and how it did on the held-out rows.

    Attributes
    ----------
    model : ChurnModel
    features : list of str
        The model's input columns.
    metrics : dict
        ``model_*``, ``rule_*``, ``logistic_*`` (and ``oracle_*``) held-out metrics, ``best_iteration``;
        for churn also the expected maximum profit ``model_emp`` (``logistic_emp``, ``rule_emp``),
        ``model_emp_share_contacted`` and the ``emp_clv`` it was computed with (:func:`churn_emp`).
    rows : dict
        Row and positive counts of train, valid and held-out parts.
    training_window : dict
        Train, valid and held-out cutoffs as ISO dates (and whether an embargo separates them).
    top_features : list of (str, float)
        Features by mean absolute SHAP value on a held-out sample, largest first.
    heuristic_feature : str or None
        The rule baseline's feature.
    shap_importance : Series
        Mean absolute SHAP value per feature, largest first.
    test : DataFrame
        The held-out rows (ids, cutoff, features, label).
    probability : ndarray
        The model's held-out probabilities.
    scores : dict of str to ndarray
        Held-out scores to plot: model, logistic, rule and oracle where known.
    drift_reference : dict
        The training rows' distribution per feature (:func:`churnguard.drift.reference`).
    example : DataFrame
        The first training rows, the logged model's input example.
    hold_out : HoldOut
        Which evaluation was used (out of time with or without embargo, or held-out
        customers) and why, in words.
    parts : ndarray
        ``"train"``, ``"valid"``, ``"test"`` or ``""`` per row of the training frame.
    """

    model: ChurnModel
    features: list[str]
    metrics: dict[str, float]
    rows: dict[str, int]
    training_window: dict[str, Any]
    top_features: list[tuple[str, float]]
    heuristic_feature: str | None
    shap_importance: pd.Series
    test: pd.DataFrame
    probability: np.ndarray
    scores: dict[str, np.ndarray]
    drift_reference: dict[str, Any]
    example: pd.DataFrame
    hold_out: HoldOut
    parts: np.ndarray

    def held_out_metrics(self) -> dict[str, float]:
        """The model's own held-out metrics without the ``model_`` prefix (what promotion compares)."""
        return {k[len("model_"):]: v for k, v in self.metrics.items() if k.startswith("model_")}


def model_features(frame: pd.DataFrame, catalogue: pd.DataFrame | None) -> list[str]:
    """Feature columns the model sees: everything but ids, cutoff, label and context columns.

    Examples
    --------
    >>> frame = pd.DataFrame(columns=["customer_id", "cutoff", "a", "ctx", "label"])
    >>> cat = pd.DataFrame({"name": ["a", "ctx"], "model_input": [True, False]})
    >>> model_features(frame, cat)
    ['a']
    """
    context = set()
    if catalogue is not None and "model_input" in catalogue:
        context = set(catalogue.loc[~catalogue["model_input"].astype(bool), "name"])
    return [c for c in frame.columns if c not in ID_COLUMNS and c not in context]


def select_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows of `frame` where `mask` holds; a view, not a copy, when they are one run.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> select_rows(frame, np.array([False, True, True, False]))["x"].tolist()
    [2.0, 3.0]
    >>> select_rows(frame, np.array([True, False, False, True])).index.tolist()
    [0, 3]
    """
    rows = np.flatnonzero(mask)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return frame.iloc[rows[0] : rows[-1] + 1]
    return frame[np.asarray(mask, bool)]


def row_runs(frame: pd.DataFrame, mask: np.ndarray) -> list[pd.DataFrame]:
    """The rows of `frame` where `mask` holds, as views: one per run of consecutive rows.

    The row blocks :meth:`ChurnModel.fit` and :func:`~churnguard.training.model.refit_on_all`
    take: a time split's planned rows are the stacked frame less the embargo cutoffs between
    valid and held out, two runs, so they are fitted without a copy of the frame.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> [b["x"].tolist() for b in row_runs(frame, np.array([True, True, False, True, True]))]
    [[1.0, 2.0], [4.0, 5.0]]
    """
    rows = np.flatnonzero(mask)
    if not len(rows):
        return [frame.iloc[:0]]
    breaks = np.flatnonzero(np.diff(rows) > 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    stops = np.concatenate([rows[breaks] + 1, [rows[-1] + 1]])
    return [frame.iloc[a:b] for a, b in zip(starts, stops)]


VALUE_FEATURE = "customers_value"


def churn_emp(test: pd.DataFrame, scores: dict[str, np.ndarray], rules: OutreachRules) -> dict[str, float]:
    """Expected maximum profit of each churn score on the held-out rows, as metrics.

    The EMP's constant CLV is the mean ``customers_value`` of the held-out customers
    (``rules.default_value`` for a missing one; the rules' ``default_value`` alone when
    the feature is absent); the offer cost is ``rules.offer_cost``, the contact cost a
    phone call's (``rules.contact_cost("phone")``: a retention call), and the acceptance
    rate ``Beta(rules.emp_alpha, rules.emp_beta)``
    (:func:`churnguard.training.emp.expected_maximum_profit`).

    Examples
    --------
    >>> test = pd.DataFrame({"label": [1, 0, 0, 0], "customers_value": [200.0, 200.0, None, 200.0]})
    >>> rules = load_outreach_rules()
    >>> m = churn_emp(test, {"model": np.array([0.9, 0.2, 0.1, 0.3])}, rules)
    >>> m["emp_clv"], round(m["model_emp"], 2), round(m["model_emp_share_contacted"], 3)
    (150.25, 9.77, 0.25)
    """
    if VALUE_FEATURE in test:
        value = pd.to_numeric(test[VALUE_FEATURE], errors="coerce").fillna(rules.default_value)
        clv = float(value.mean()) if len(value) else rules.default_value
    else:
        clv = rules.default_value
    y = test["label"].to_numpy()
    out = {"emp_clv": clv}
    if clv <= 0:
        return out
    for name, score in scores.items():
        result = expected_maximum_profit(y, score, clv=clv, offer_cost=rules.offer_cost,
                                         contact_cost=rules.contact_cost("phone"),
                                         alpha=rules.emp_alpha, beta=rules.emp_beta)
        out[f"{name}_emp"] = result.emp
        if name == "model":
            out["model_emp_share_contacted"] = result.share_contacted
    return out


def fit_and_evaluate(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    split: TimeSplit | None = None,
    catalogue: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    log: Callable[[str], Any] = print,
    rules: OutreachRules | None = None,
) -> Evaluation:
    """Fit on the train rows, early-stop and calibrate on the valid rows, judge on the held-out rows.

    Parameters
    ----------
    frame : DataFrame
        customer_id, cutoff, features, label (a stacked training set).
    spec : ModelSpec
    split : TimeSplit, optional
        A time split to use as it is. Without one, the most honest hold-out the frame
        allows is chosen (:func:`~churnguard.training.splits.choose_hold_out`).
    catalogue : DataFrame, optional
        Feature catalogue: context columns are left out, the rule's direction read.
    truth : DataFrame, optional
        Synthetic truth (customer_id, as_of, <task>_probability) for the oracle AUC.
    rules : OutreachRules, optional
        The value and cost figures of the churn model's expected maximum profit
        (:func:`churn_emp`); default the packaged ``outreach.toml``.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from churnguard.config import load_model_spec
    >>> from churnguard.training.splits import time_split
    >>> rng = np.random.default_rng(0)
    >>> cutoffs = pd.date_range("2023-01-01", periods=6, freq="MS")
    >>> frame = pd.concat([pd.DataFrame({"customer_id": [f"c{i}" for i in range(300)], "cutoff": c,
    ...                                  "purchases_days_since_last": rng.exponential(60, 300)})
    ...                    for c in cutoffs], ignore_index=True)
    >>> frame["label"] = (frame["purchases_days_since_last"] + rng.normal(0, 40, len(frame)) > 90).astype(int)
    >>> spec = replace(load_model_spec(task="churn"), horizon_days=31, lightgbm={"n_estimators": 20})
    >>> result = fit_and_evaluate(frame, spec, split=time_split(cutoffs, horizon_days=31), log=lambda s: None)
    >>> result.heuristic_feature, result.rows["holdout"], result.metrics["model_roc_auc"] > 0.7
    ('purchases_days_since_last', 300, True)
    """
    features = model_features(frame, catalogue)
    if split is not None:
        parts, hold_out = split_parts(frame, split, random_state=spec.seed), HoldOut.of_split(split)
    else:
        parts, hold_out = choose_hold_out(frame, horizon_days=spec.horizon_days, n_train=spec.n_cutoffs,
                                          random_state=spec.seed)
    log(f"{spec.task}: evaluation: {hold_out.description}")
    # The stacked frame can run to GBs: a part that is one run of rows (a time split's
    # cutoffs, sorted) is a view of it, not a copy.
    is_train = parts == "train"
    X_train, y_train = select_rows(frame, is_train)[features], frame["label"].to_numpy()[is_train]
    valid, test = select_rows(frame, parts == "valid"), select_rows(frame, parts == "test")
    for name, labels in (("train", y_train), ("valid", valid["label"]), ("held-out", test["label"])):
        if len(np.unique(labels)) < 2:
            raise NotEnoughHistory(f"{spec.task}: the {name} rows hold a single class ({len(labels)} rows); "
                                   "need more history or customers")
    rows = {"train": len(X_train), "valid": len(valid), "holdout": len(test),
            "train_positives": int(y_train.sum()), "holdout_positives": int(test["label"].sum())}
    log(f"{spec.task}: training on {rows['train']:,} rows ({rows['train_positives']:,} positive), "
        f"early-stopping/calibrating on {rows['valid']:,}, reporting on {rows['holdout']:,}")

    model = ChurnModel(params=spec.lightgbm, calibration=spec.calibration, random_state=spec.seed)
    model.fit(X_train, y_train, X_valid=valid[features], y_valid=valid["label"])
    reference = drift.reference(X_train, model.dtypes_, model.categories_)

    X_test, y_test = test[features], test["label"].to_numpy()
    probability = model.predict_proba(X_test)[:, 1]
    heuristic = ev.choose_heuristic_feature(spec.task, features, catalogue)
    rule = None
    if heuristic is not None:
        rule = ev.RuleBaseline(heuristic, _direction(catalogue, heuristic)).fit(X_train).score(test)
    logistic = ev.predict_logistic(ev.logistic_baseline(X_train, y_train, random_state=spec.seed), X_test)
    # The next step's peak (the refit) then starts from what is alive, not from these pages.
    release_free_memory()
    oracle, oracle_rows = _oracle(truth, test, spec.task, log)
    metrics = ev.evaluation_report(y_test, probability, rule=rule, logistic=logistic)
    if oracle is not None:
        m_rows = ev.classification_metrics(y_test[oracle_rows], probability[oracle_rows])
        o = ev.classification_metrics(y_test[oracle_rows], oracle)
        metrics.update(oracle_roc_auc=o["roc_auc"], oracle_pr_auc=o["pr_auc"],
                       oracle_rows=int(oracle_rows.sum()),
                       share_of_oracle_auc=m_rows["roc_auc"] / o["roc_auc"])
    if spec.task == "churn" and len(np.unique(y_test)) == 2:
        baselines = {"model": probability, "logistic": logistic, **({"rule": rule} if rule is not None else {})}
        metrics.update(churn_emp(test, baselines, rules or load_outreach_rules()))
    metrics["best_iteration"] = model.best_iteration_

    sample = X_test.sample(min(SHAP_SAMPLE_ROWS, len(X_test)), random_state=spec.seed) if len(X_test) else X_test
    shap_importance = model.contributions(sample).drop(columns="bias").abs().mean().sort_values(ascending=False)

    scores = {"model": probability, "logistic": logistic}
    if rule is not None:
        scores["rule"] = rule
    if oracle is not None:
        # Plot the oracle on all held-out rows it covers; other curves use every held-out row.
        scores_o = np.full(len(y_test), np.nan)
        scores_o[oracle_rows] = oracle
        if oracle_rows.all():
            scores["oracle"] = scores_o
    return Evaluation(
        model=model, features=features, metrics=metrics, rows=rows,
        training_window=_training_window(frame, parts, hold_out),
        top_features=[(str(k), float(v)) for k, v in shap_importance.items()],
        heuristic_feature=heuristic, shap_importance=shap_importance, test=test,
        probability=probability, scores=scores, drift_reference=reference, example=X_train.head(5),
        hold_out=hold_out, parts=parts,
    )


def _direction(catalogue: pd.DataFrame | None, feature: str) -> str:
    if catalogue is None or "direction" not in catalogue:
        return "up"
    hit = catalogue.loc[catalogue["name"] == feature, "direction"]
    return str(hit.iloc[0]) if len(hit) else "up"


def _training_window(frame: pd.DataFrame, parts: np.ndarray, hold_out: HoldOut) -> dict[str, Any]:
    """Train, valid and held-out cutoffs as ISO dates, and the evaluation in words."""
    cutoff = pd.to_datetime(frame["cutoff"]) if "cutoff" in frame else pd.Series(pd.NaT, index=frame.index)

    def dates(part: str) -> list[str]:
        return [str(pd.Timestamp(c).date()) for c in sorted(cutoff[parts == part].dropna().unique())]

    train, valid, test = dates("train"), dates("valid"), dates("test")
    return {"train": train, "valid": valid[-1] if valid else None, "holdout": test[-1] if test else None,
            "embargo": hold_out.kind == "time_embargo", "hold_out": hold_out.kind,
            "evaluation": hold_out.description}


def _oracle(truth, test: pd.DataFrame, task: str, log) -> tuple[np.ndarray | None, np.ndarray]:
    """Truth probability for the held-out rows it covers (matched on customer and cutoff)."""
    none = np.zeros(len(test), dtype=bool)
    column = f"{task}_probability"
    if truth is None or column not in truth:
        return None, none
    t = truth[["customer_id", "as_of", column]].copy()
    t["customer_id"] = t["customer_id"].astype("str")
    t["as_of"] = pd.to_datetime(t["as_of"]).astype("datetime64[us]")
    keys = pd.DataFrame({"customer_id": test["customer_id"].astype("str").to_numpy(),
                         "as_of": pd.to_datetime(test["cutoff"]).astype("datetime64[us]").to_numpy()})
    merged = keys.merge(t.drop_duplicates(["customer_id", "as_of"]), on=["customer_id", "as_of"], how="left")
    covered = merged[column].notna().to_numpy()
    if not covered.any():
        log(f"{task}: truth has no rows at the held-out cutoff; oracle AUC skipped")
        return None, none
    y = test["label"].to_numpy()[covered]
    if len(np.unique(y)) < 2:
        return None, none
    return merged.loc[covered, column].to_numpy(dtype="float64"), covered
