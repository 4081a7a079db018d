"""Train a task end to end: plan the cutoffs, fit and evaluate, decide promotion, log and register.

The steps live in their own modules (:mod:`~churnguard.training.plan`,
:mod:`~churnguard.training.fit`, :mod:`~churnguard.training.promotion`,
:mod:`~churnguard.training.registry`); this one runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pandas as pd

from churnguard import drift
from churnguard.config import FeatureSet, ModelSpec
from churnguard.timeline import coerce_as_of
from churnguard.training.artifact import ModelArtifact
from churnguard.training.fit import fit_and_evaluate, row_runs
from churnguard.training.model import ChurnModel, refit_on_all
from churnguard.training.plan import holdout_rebuilder, plan_cutoffs, training_data
from churnguard.training.promotion import promotion_decision
from churnguard.training.registry import RunRecord, champion_on_holdout, log_run
from churnguard.training.splits import TimeSplit, cut_tables

__all__ = ["TrainResult", "train_frame", "train_task"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and decided.

    `model` is the fitted estimator; `artifact` the same model with its training metadata
    (and, once registered, its registry identity), as scoring takes it.
    """

    task: str
    model: ChurnModel
    metrics: dict[str, float]
    split: str  # the hold-out kind: "time_embargo", "time" or "grouped_customers"
    cutoffs: dict[str, Any]  # train / valid / holdout
    rows: dict[str, int]
    top_features: list[tuple[str, float]]
    heuristic_feature: str | None = None
    run_id: str | None = None
    model_name: str | None = None
    version: str | None = None
    alias: str | None = None
    promoted: bool = False
    reason: str = ""
    champion_metrics: dict[str, float] | None = None
    plots: list[str] = field(default_factory=list)
    artifact: ModelArtifact | None = None
    evaluation: str = ""  # which evaluation was used, in words
    refit: bool = False  # the registered model was refit on every planned cutoff after evaluation

    def summary(self) -> str:
        """Plain-text summary for the CLI."""
        m = self.metrics
        lines = [
            f"task {self.task}: {self.evaluation or self.split}",
            f"  train {self.rows.get('train', 0):,} rows, "
            f"valid {self.rows.get('valid', 0):,}, held-out {self.rows.get('holdout', 0):,}",
            f"  cutoffs: train {self.cutoffs.get('train')}, valid {self.cutoffs.get('valid')}, "
            f"held-out {self.cutoffs.get('holdout')}",
            f"  held-out ROC-AUC {m['model_roc_auc']:.4f}  PR-AUC {m['model_pr_auc']:.4f}  "
            f"Brier {m['model_brier']:.4f}  log loss {m['model_log_loss']:.4f}  "
            f"lift@10% {m['model_lift_top10']:.2f}",
        ]
        if "rule_roc_auc" in m:
            lines.append(f"  rule baseline ({self.heuristic_feature}) ROC-AUC {m['rule_roc_auc']:.4f} "
                         f"(model {m['auc_lift_over_rule']:+.4f})")
        if "logistic_roc_auc" in m:
            lines.append(f"  logistic regression ROC-AUC {m['logistic_roc_auc']:.4f} "
                         f"(model {m['auc_lift_over_logistic']:+.4f})")
        if "model_emp" in m:
            lines.append(f"  expected maximum profit (EMP) {m['model_emp']:.2f} per customer, contacting "
                         f"{m.get('model_emp_share_contacted', float('nan')):.1%}"
                         + (f" (logistic regression {m['logistic_emp']:.2f})" if "logistic_emp" in m else "")
                         + f"; CLV {m.get('emp_clv', float('nan')):,.2f}")
        if "oracle_roc_auc" in m:
            lines.append(f"  oracle (truth) ROC-AUC {m['oracle_roc_auc']:.4f}; model reaches "
                         f"{100 * m['share_of_oracle_auc']:.1f}% of it")
        if self.top_features:
            lines.append("  top features by mean |SHAP|: " + ", ".join(f for f, _ in self.top_features[:8]))
        if self.refit:
            lines.append("  the registered model was refit on every planned cutoff (same trees, calibration out of "
                         "fold); the scores above are the evaluated model's")
        if self.version is not None:
            lines.append(f"  registered {self.model_name} version {self.version} as {self.alias} (run {self.run_id})")
        if self.reason:
            lines.append(f"  {self.reason}")
        return "\n".join(lines)


def train_task(
    tables: dict[str, pd.DataFrame],
    spec: ModelSpec,
    *,
    as_of=None,
    tracking_uri: str | None = None,
    feature_set: FeatureSet | None = None,
    truth: pd.DataFrame | None = None,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> TrainResult:
    """Build the stacked training set, train, evaluate on the held-out cutoff, track and register.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables.
    spec : ModelSpec
        Task, label definition, horizon, LightGBM parameters, calibration, promotion rule.
    as_of : date-like, optional
        Train as if today were `as_of`: tables are cut so no event at or after it, and no
        label window reaching past it, is used. Default: the end of the data.
    tracking_uri : str, optional
        MLflow store; default MLFLOW_TRACKING_URI, else ``sqlite:///mlflow.db`` in the cwd.
    feature_set : FeatureSet, optional
        Features to build; the packaged default when omitted. Resolved once and stored.
    truth : DataFrame, optional
        Synthetic truth (customer_id, as_of, <task>_probability) for the oracle AUC.
    log : callable
        Receives one line per step (``print`` by default).

    Examples
    --------
    >>> import os, tempfile
    >>> from dataclasses import replace
    >>> from churnguard.config import load_model_spec
    >>> from churnguard.synthetic import generate_world
    >>> from churnguard.validation import validate_tables
    >>> world = generate_world(300, seed=1)
    >>> tables = validate_tables({k: v for k, v in world.items() if k != "truth"}).tables
    >>> spec = replace(load_model_spec(task="churn"), n_cutoffs=2, lightgbm={"n_estimators": 20})
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> result = train_task(tables, spec, tracking_uri=uri, progress=False, log=lambda line: None)
    >>> result.version, result.alias, result.reason
    ('1', 'champion', 'promoted to champion: no champion was registered')
    >>> result.artifact.name, result.artifact.feature_set is not None
    ('churnguard-churn', True)
    """
    if as_of is not None:
        as_of = coerce_as_of(as_of)
        tables = cut_tables(tables, as_of)
    plan = plan_cutoffs(tables, spec, as_of=as_of, log=log)
    data = training_data(tables, spec, plan, feature_set=feature_set, progress=progress, log=log)
    return train_frame(data.frame, spec, tracking_uri=tracking_uri, catalogue=data.catalogue,
                       feature_set=data.feature_set, truth=truth, log=log,
                       holdout_features=holdout_rebuilder(tables, spec, plan), as_of=as_of, label=plan.definition)


def train_frame(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    split: TimeSplit | None = None,
    tracking_uri: str | None = None,
    catalogue: pd.DataFrame | None = None,
    feature_set: FeatureSet | None = None,
    truth: pd.DataFrame | None = None,
    log: Callable[[str], Any] = print,
    holdout_features: Callable[[dict], pd.DataFrame] | None = None,
    as_of=None,
    register: bool = True,
    label: str | None = None,
) -> TrainResult:
    """Fit, evaluate and track a model on an already built frame (customer_id, cutoff, features, label).

    Without `split`, the most honest hold-out the frame allows is chosen (out of time with
    an embargo, out of time without, or customers held out). With
    ``spec.production_refit`` the model registered is refit on every planned row after
    evaluation (:func:`~churnguard.training.model.refit_on_all`). The champion is
    scored and promotion decided before anything is logged; with ``register=False``
    nothing touches MLflow. `label` is the label definition the frame was built with
    (default ``spec.label``), stored with the model.

    Examples
    --------
    >>> import numpy as np
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
    >>> result = train_frame(frame, spec, split=time_split(cutoffs, horizon_days=31), register=False,
    ...                      log=lambda line: None)
    >>> result.split, result.version, sorted(result.artifact.drift_reference)
    ('time_embargo', None, ['purchases_days_since_last'])
    """
    evaluation = fit_and_evaluate(frame, spec, split=split, catalogue=catalogue, truth=truth, log=log)
    model, reference = evaluation.model, evaluation.drift_reference
    if spec.production_refit:
        # Evaluation kept the newest cutoffs out of training; tomorrow's list should learn from them.
        planned = evaluation.parts != ""
        # The planned rows are the frame less the embargo cutoffs: views of its runs, not a copy.
        X_all = [block[evaluation.features] for block in row_runs(frame, planned)]
        y_all = frame["label"].to_numpy()[planned]
        model = refit_on_all(evaluation.model, X_all, y_all, groups=frame["customer_id"].to_numpy()[planned])
        reference = drift.reference(X_all, model.dtypes_, model.categories_)
        log(f"{spec.task}: refit on all {int(planned.sum()):,} planned rows for production "
            f"({model.best_iteration_} trees, calibration out of fold)")
    artifact = ModelArtifact(
        model, task=spec.task, feature_set=feature_set, catalogue=catalogue,
        training_window=evaluation.training_window, drift_reference=reference,
        horizon_days=spec.horizon_days, label=label or spec.label, lookback_days=spec.lookback_days,
        as_of=None if as_of is None else str(pd.Timestamp(as_of).date()),
    )
    result = TrainResult(
        task=spec.task, model=model, metrics=evaluation.metrics, split=evaluation.hold_out.kind,
        evaluation=evaluation.hold_out.description, refit=spec.production_refit,
        cutoffs=evaluation.training_window, rows=evaluation.rows, top_features=evaluation.top_features,
        heuristic_feature=evaluation.heuristic_feature, artifact=artifact,
    )
    if not register:
        return result

    champion = champion_on_holdout(spec, evaluation.test, artifact, holdout_features, tracking_uri=tracking_uri)
    promote, reason = promotion_decision(spec, evaluation.held_out_metrics(), champion.metrics, champion.version,
                                         champion_problem=champion.problem)
    record = RunRecord(spec, artifact, evaluation, result.split, champion, promote, reason)
    registered = log_run(record, tracking_uri=tracking_uri)
    result = replace(
        result, run_id=registered.run_id, model_name=registered.model_name, version=registered.version,
        alias=registered.alias, promoted=promote, reason=reason, champion_metrics=champion.metrics,
        plots=registered.plots,
        artifact=replace(artifact, name=registered.model_name, version=registered.version,
                         run_id=registered.run_id, uri=f"models:/{registered.model_name}/{registered.version}"),
    )
    log(result.reason)
    return result
