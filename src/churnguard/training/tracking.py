"""Train a task end to end: split, fit, evaluate, log to MLflow, register, promote.

MLflow is imported only here and in :mod:`churnguard.training.pyfunc` (and in scoring).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from churnguard.config import FeatureSet, ModelSpec
from churnguard.training import evaluation as ev
from churnguard.training.model import ChurnModel, SchemaMismatchError
from churnguard.training.splits import TimeSplit, cut_tables, stratified_split, time_split

ID_COLUMNS = ("customer_id", "cutoff", "label")
SHAP_SAMPLE_ROWS = 5_000


def model_name(task: str) -> str:
    """Registered model name of a task.

    Examples
    --------
    >>> model_name("churn")
    'churnguard-churn'
    """
    return f"churnguard-{task}"


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Local artifact folder beside a SQLite store; None (the server decides) otherwise.

    Examples
    --------
    >>> artifact_location("sqlite:////tmp/x/mlflow.db", "churnguard-churn")
    'file:///tmp/x/mlartifacts/churnguard-churn'
    >>> artifact_location("http://mlflow:5000", "churnguard-churn") is None
    True
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri[len("sqlite:///"):]).resolve()
    return (db.parent / "mlartifacts" / experiment).as_uri()


@contextlib.contextmanager
def _mlflow_uri(tracking_uri: str | None):
    """Point MLflow at `tracking_uri` for the duration, then restore the caller's settings."""
    import mlflow

    uri = tracking_uri or default_tracking_uri()
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    # The registry follows the tracking URI unless the caller configured one of its own.
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


@dataclass
class RegisteredModel:
    """A model loaded back for scoring, with where it came from."""

    model: ChurnModel
    task: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    uri: str | None = None

    @property
    def reference_features(self) -> dict[str, Any]:
        """Training distribution of each feature (bins and shares) for the PSI drift check."""
        return self.model.reference_


@dataclass
class TrainResult:
    """What a training run produced and decided."""

    task: str
    model: ChurnModel
    metrics: dict[str, float]
    split: str  # "time" or "stratified customers"
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

    def summary(self) -> str:
        """Plain-text summary for the CLI."""
        m = self.metrics
        lines = [
            f"task {self.task}: {self.split} split; train {self.rows.get('train', 0):,} rows, "
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
        if "oracle_roc_auc" in m:
            lines.append(f"  oracle (truth) ROC-AUC {m['oracle_roc_auc']:.4f}; model reaches "
                         f"{100 * m['share_of_oracle_auc']:.1f}% of it")
        if self.top_features:
            lines.append("  top features by mean |SHAP|: " + ", ".join(f for f, _ in self.top_features[:8]))
        if self.version is not None:
            lines.append(f"  registered {self.model_name} version {self.version} as {self.alias} (run {self.run_id})")
        if self.reason:
            lines.append(f"  {self.reason}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- training


def _has_supplied_labels(tables, task: str) -> bool:
    labels = tables.get("labels")
    return labels is not None and task in labels and labels[task].notna().any()


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
    """
    from churnguard.features import feature_catalogue, resolve_feature_set
    from churnguard.labels import label_cutoffs, training_set

    if as_of is not None:
        as_of = pd.Timestamp(as_of)
        tables = cut_tables(tables, as_of)
    horizon = spec.horizon_days
    definition = spec.label
    split: TimeSplit | None = None
    if _has_supplied_labels(tables, spec.task) and spec.label in ("auto", "supplied", "service"):
        definition = "supplied"
        label_dates = sorted(pd.Timestamp(d) for d in tables["labels"]["as_of"].dropna().unique())
        if len(label_dates) >= 3:
            split = time_split(label_dates, horizon_days=horizon, n_train=spec.n_cutoffs)
            cutoffs = [*split.train, split.valid, split.holdout]
        else:
            cutoffs = label_dates[-1:]
            log(f"{spec.task}: supplied labels share {len(label_dates)} as_of date(s) "
                f"({', '.join(str(d.date()) for d in label_dates)}); no time to split on, so customers "
                "are split instead (stratified 60/20/20 train/valid/test, newest labels only)")
    else:
        # Over-ask: the embargo between validation and held-out cutoffs skips ~horizon of them.
        extra = math.ceil(horizon / 28) + 2
        all_cutoffs = label_cutoffs(tables, n_cutoffs=spec.n_cutoffs + extra, horizon_days=horizon,
                                    as_of=as_of, freq=spec.cutoff_freq)
        split = time_split(all_cutoffs, horizon_days=horizon, n_train=spec.n_cutoffs)
        cutoffs = [*split.train, split.valid, split.holdout]
        if not split.embargo:
            log(f"{spec.task}: too few cutoffs for an embargo; validation label windows overlap the held-out one")
    resolve_at = split.valid if split is not None else cutoffs[-1]
    resolved = resolve_feature_set(tables, resolve_at, feature_set)
    log(f"{spec.task}: building training set over {len(cutoffs)} cutoff(s) "
        f"{cutoffs[0].date()} .. {cutoffs[-1].date()} (horizon {horizon} days)")
    frame = training_set(tables, cutoffs, task=spec.task, horizon_days=horizon, lookback_days=spec.lookback_days,
                         definition=definition, feature_set=resolved, failure_kinds=spec.failure_kinds,
                         progress=progress)
    catalogue = feature_catalogue(tables, resolve_at, feature_set=resolved)

    def holdout_features(feature_set_dict: dict[str, Any]) -> pd.DataFrame:
        # The champion may have been trained on another feature set: rebuild its columns for
        # the same held-out customers so both models are judged on identical rows and labels.
        fs = FeatureSet.from_dict(feature_set_dict)
        when = split.holdout if split is not None else cutoffs[-1]
        return training_set(tables, [when], task=spec.task, horizon_days=horizon, lookback_days=spec.lookback_days,
                            definition=definition, feature_set=fs, failure_kinds=spec.failure_kinds)

    return train_frame(frame, spec, split=split, tracking_uri=tracking_uri, catalogue=catalogue,
                       feature_set=resolved, truth=truth, log=log, holdout_features=holdout_features,
                       as_of=as_of)


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


def split_parts(frame: pd.DataFrame, split: TimeSplit | None, *, random_state: int = 1) -> np.ndarray:
    """``"train"``/``"valid"``/``"test"``/``""`` per row of a stacked training frame."""
    if split is None:
        return stratified_split(frame["label"].to_numpy(), random_state=random_state)
    cutoff = pd.to_datetime(frame["cutoff"])
    parts = np.full(len(frame), "", dtype=object)
    parts[cutoff.isin(list(split.train)).to_numpy()] = "train"
    parts[(cutoff == split.valid).to_numpy()] = "valid"
    parts[(cutoff == split.holdout).to_numpy()] = "test"
    return parts


def train_frame(
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    split: TimeSplit | None,
    tracking_uri: str | None = None,
    catalogue: pd.DataFrame | None = None,
    feature_set: FeatureSet | None = None,
    truth: pd.DataFrame | None = None,
    log: Callable[[str], Any] = print,
    holdout_features: Callable[[dict], pd.DataFrame] | None = None,
    as_of=None,
    register: bool = True,
) -> TrainResult:
    """Fit, evaluate and track a model on an already built frame (customer_id, cutoff, features, label).

    `split` None means one snapshot: a stratified split of customers.
    """
    features = model_features(frame, catalogue)
    parts = split_parts(frame, split, random_state=spec.seed)
    # One copy of the (large) training rows, features only: the stacked frame can run to GBs.
    is_train = parts == "train"
    X_train, y_train = frame.loc[is_train, features], frame["label"].to_numpy()[is_train]
    valid, test = frame[parts == "valid"], frame[parts == "test"]
    for name, labels in (("train", y_train), ("valid", valid["label"]), ("held-out", test["label"])):
        if len(np.unique(labels)) < 2:
            raise ValueError(f"{spec.task}: the {name} rows hold a single class ({len(labels)} rows); "
                             "need more history or customers")
    rows = {"train": len(X_train), "valid": len(valid), "holdout": len(test),
            "train_positives": int(y_train.sum()), "holdout_positives": int(test["label"].sum())}
    cutoffs = _cutoff_summary(split, frame)
    log(f"{spec.task}: training on {rows['train']:,} rows ({rows['train_positives']:,} positive), "
        f"early-stopping/calibrating on {rows['valid']:,}, reporting on {rows['holdout']:,}")

    model = ChurnModel(params=spec.lightgbm, calibration=spec.calibration, random_state=spec.seed)
    model.fit(X_train, y_train, X_valid=valid[features], y_valid=valid["label"])
    fs_dict = feature_set.to_dict() if feature_set is not None else None
    model.metadata_.update(
        task=spec.task,
        horizon_days=spec.horizon_days,
        feature_set=fs_dict,
        catalogue=_records(catalogue),
        training_window=cutoffs,
        as_of=None if as_of is None else str(pd.Timestamp(as_of).date()),
    )

    X_test, y_test = test[features], test["label"].to_numpy()
    probability = model.predict_proba(X_test)[:, 1]
    heuristic = ev.choose_heuristic_feature(spec.task, features, catalogue)
    rule = None
    if heuristic is not None:
        direction = _direction(catalogue, heuristic)
        rule = ev.RuleBaseline(heuristic, direction).fit(X_train).score(test)
    logistic = ev.predict_logistic(ev.logistic_baseline(X_train, y_train, random_state=spec.seed), X_test)
    oracle, oracle_rows = _oracle(truth, test, spec.task, log)
    metrics = ev.evaluation_report(y_test, probability, rule=rule, logistic=logistic)
    if oracle is not None:
        m_rows = ev.classification_metrics(y_test[oracle_rows], probability[oracle_rows])
        o = ev.classification_metrics(y_test[oracle_rows], oracle)
        metrics.update(oracle_roc_auc=o["roc_auc"], oracle_pr_auc=o["pr_auc"],
                       oracle_rows=int(oracle_rows.sum()),
                       share_of_oracle_auc=m_rows["roc_auc"] / o["roc_auc"])
    metrics["best_iteration"] = model.best_iteration_

    sample = X_test.sample(min(SHAP_SAMPLE_ROWS, len(X_test)), random_state=spec.seed) if len(X_test) else X_test
    shap_importance = model.contributions(sample).drop(columns="bias").abs().mean().sort_values(ascending=False)
    top = [(str(k), float(v)) for k, v in shap_importance.items()]
    result = TrainResult(
        task=spec.task, model=model, metrics=metrics,
        split="time" if split is not None else "stratified customers",
        cutoffs=cutoffs, rows=rows, top_features=top, heuristic_feature=heuristic,
    )
    if not register:
        return result

    scores = {"model": probability, "logistic": logistic}
    if rule is not None:
        scores["rule"] = rule
    if oracle is not None:
        # Plot the oracle on all held-out rows it covers; other curves use every held-out row.
        scores_o = np.full(len(y_test), np.nan)
        scores_o[oracle_rows] = oracle
        if oracle_rows.all():
            scores["oracle"] = scores_o
    with _mlflow_uri(tracking_uri) as uri, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plots = ev.write_plots(tmp / "plots", y_test, scores, probability=probability,
                               shap_importance=shap_importance, title=spec.task)
        result.plots = [f"plots/{p.name}" for p in plots.values()]
        champion = _champion_on_holdout(spec, test, features, model, holdout_features, log)
        _log_run(uri, spec, result, model, X_train, tmp, catalogue, fs_dict, shap_importance,
                 ev.calibration_curve(y_test, probability), champion)
    log(result.reason)
    return result


def _records(catalogue: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if catalogue is None:
        return None
    return json.loads(catalogue.to_json(orient="records"))


def _direction(catalogue: pd.DataFrame | None, feature: str) -> str:
    if catalogue is None or "direction" not in catalogue:
        return "up"
    hit = catalogue.loc[catalogue["name"] == feature, "direction"]
    return str(hit.iloc[0]) if len(hit) else "up"


def _cutoff_summary(split: TimeSplit | None, frame: pd.DataFrame) -> dict[str, Any]:
    if split is None:
        when = str(pd.Timestamp(frame["cutoff"].max()).date()) if "cutoff" in frame and len(frame) else None
        return {"train": [when], "valid": when, "holdout": when}
    return {"train": [str(c.date()) for c in split.train], "valid": str(split.valid.date()),
            "holdout": str(split.holdout.date()), "embargo": split.embargo}


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


# --------------------------------------------------------------------------- promotion


@dataclass
class _Champion:
    version: str | None
    metrics: dict[str, float] | None
    problem: str | None = None


def _champion_on_holdout(spec, test, features, model, holdout_features, log) -> _Champion:
    """Re-score the current champion on the new held-out rows (None version if there is none)."""
    import mlflow

    name = model_name(spec.task)
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except mlflow.exceptions.MlflowException:
        return _Champion(None, None)
    champion = load_task_model(spec.task, tracking_uri=mlflow.get_tracking_uri())
    X = test
    champion_fs = champion.model.metadata_.get("feature_set")
    ours = model.metadata_.get("feature_set")
    if champion_fs is not None and champion_fs != ours and holdout_features is not None:
        rebuilt = holdout_features(champion_fs)
        X = test[["customer_id", "cutoff"]].merge(rebuilt.drop(columns="label"), on=["customer_id", "cutoff"], how="left")
    try:
        p = champion.model.predict_proba(X)[:, 1]
    except SchemaMismatchError as err:
        return _Champion(version.version, None, f"champion v{version.version} cannot score the new held-out rows ({err})")
    return _Champion(version.version, ev.classification_metrics(test["label"].to_numpy(), p))


def promotion_decision(spec: ModelSpec, new: dict[str, float], champion: dict[str, float] | None,
                       champion_version: str | None = None) -> tuple[bool, str]:
    """Does the new model take the champion alias? Returns (promote, reason in words).

    Examples
    --------
    >>> from churnguard.config import load_model_spec
    >>> spec = load_model_spec(task="churn")
    >>> promotion_decision(spec, {"roc_auc": 0.80}, {"roc_auc": 0.82}, "3")
    (False, 'stays challenger: held-out roc_auc 0.8000 vs champion v3 0.8200 on the same rows (needs > +0.0000)')
    """
    rule = spec.promotion
    if champion is None:
        return True, "promoted to champion: no champion was registered"
    ours, theirs = new[rule.metric], champion[rule.metric]
    gain = (ours - theirs) if rule.higher_is_better else (theirs - ours)
    words = (f"held-out {rule.metric} {ours:.4f} vs champion v{champion_version} {theirs:.4f} "
             f"on the same rows (needs {'>' if rule.higher_is_better else '<'} "
             f"{'+' if rule.higher_is_better else '-'}{rule.min_improvement:.4f})")
    if gain > rule.min_improvement:
        return True, "promoted to champion: " + words
    return False, "stays challenger: " + words


# --------------------------------------------------------------------------- MLflow


def _flat_params(spec: ModelSpec, model: ChurnModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(spec).items():
        if key == "lightgbm":
            continue
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    out.update({f"lightgbm.{k}": v for k, v in model.params_.items()})
    return out


def _input_example(X: pd.DataFrame, model: ChurnModel) -> pd.DataFrame:
    # Categories as plain strings: MLflow's schema types have no "category"; the model
    # maps strings to its stored category codes itself.
    example = X.head(5).copy()
    for c, kind in model.dtypes_.items():
        example[c] = example[c].astype(object).where(example[c].notna(), None) if kind == "category" \
            else example[c].astype("float64")
    return example


def _log_run(uri, spec, result, model, X_train, tmp: Path, catalogue, fs_dict, shap_importance, curve, champion):
    import mlflow
    from mlflow.models import infer_signature

    from churnguard.training import pyfunc
    from churnguard.training.describe import version_description

    experiment = model_name(spec.task)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location(uri, experiment))
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{spec.task} held-out {result.cutoffs['holdout']}") as run:
        mlflow.log_params(_flat_params(spec, model))
        mlflow.log_params({
            "split": result.split, "train_cutoffs": ",".join(result.cutoffs["train"] or []),
            "valid_cutoff": result.cutoffs["valid"], "holdout_cutoff": result.cutoffs["holdout"],
            "n_features": len(model.feature_names_in_), "heuristic_feature": result.heuristic_feature,
        })
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items() if _finite(v)})
        mlflow.log_metrics({f"rows_{k}": float(v) for k, v in result.rows.items()})
        mlflow.log_artifacts(str(tmp / "plots"), "plots")
        if fs_dict is not None:
            mlflow.log_dict(fs_dict, "feature_set.json")
        if catalogue is not None:
            mlflow.log_text(catalogue.to_csv(index=False), "feature_catalogue.csv")
        mlflow.log_text(shap_importance.rename("mean_abs_shap").to_csv(), "shap_importance.csv")
        mlflow.log_text(curve.to_csv(index=False), "calibration_curve.csv")
        model_dir = model.save(tmp / "churnmodel")
        example = _input_example(X_train, model)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(pyfunc.__file__)),
            artifacts={"model_txt": str(model_dir / "model.txt"), "schema_json": str(model_dir / "schema.json")},
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            pip_requirements=_requirements(),
        )
        name = model_name(spec.task)
        version = mlflow.register_model(info.model_uri, name).version
        new_metrics = {k[len("model_"):]: v for k, v in result.metrics.items() if k.startswith("model_")}
        if champion.problem is not None:
            promote, reason = True, f"promoted to champion: {champion.problem}"
        else:
            promote, reason = promotion_decision(spec, new_metrics, champion.metrics, champion.version)
        alias = "champion" if promote else "challenger"
        client.set_registered_model_alias(name, alias, version)
        client.set_model_version_tag(name, version, "holdout_cutoff", result.cutoffs["holdout"])
        client.set_model_version_tag(name, version, "promotion", reason)
        client.update_model_version(name, version, description=version_description(spec, result, reason))
        mlflow.set_tag("promotion", reason)
        if champion.metrics is not None:
            mlflow.log_metrics({f"champion_{k}": float(v) for k, v in champion.metrics.items() if _finite(v)})
        result.run_id, result.model_name, result.version = run.info.run_id, name, str(version)
        result.alias, result.promoted, result.reason = alias, promote, reason
        result.champion_metrics = champion.metrics


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def _requirements() -> list[str]:
    from importlib.metadata import version

    # Pinned so an outside batch job rebuilds the same environment; churnguard itself
    # provides ChurnModel, which the logged code file imports.
    return [f"{p}=={version(p)}" for p in ("churnguard", "lightgbm", "mlflow", "numpy", "pandas", "scikit-learn")]


# --------------------------------------------------------------------------- loading


def load_task_model(task: str | None, *, tracking_uri: str | None = None, model_uri: str | None = None) -> RegisteredModel | None:
    """Load a task's model for scoring: the registered champion, or `model_uri`.

    Parameters
    ----------
    task : {"churn", "maintenance"} or None
        None only with `model_uri`: the task is then read from the model's schema.
    model_uri : str, optional
        ``models:/churnguard-churn@champion``, ``models:/churnguard-churn/3``,
        ``runs:/<run_id>/model``, or a local directory holding ``model.txt`` and
        ``schema.json`` (as written by :meth:`ChurnModel.save` or an MLflow model folder).

    Returns
    -------
    RegisteredModel or None
        None when `model_uri` is not given and no champion is registered for `task`.
    """
    if task is None and model_uri is None:
        raise ValueError("load_task_model needs a task or a model_uri")
    if model_uri is not None and "://" not in str(model_uri) and not str(model_uri).startswith("models:/"):
        path = Path(model_uri)
        if not path.exists():
            raise FileNotFoundError(f"model directory {path} does not exist")
        model = _load_from_dir(path)
        return RegisteredModel(model, task or model.metadata_.get("task"), uri=str(path))

    import mlflow

    with _mlflow_uri(tracking_uri):
        client = mlflow.MlflowClient()
        name = version = run_id = None
        if model_uri is None:
            name = model_name(task)
            try:
                mv = client.get_model_version_by_alias(name, "champion")
            except mlflow.exceptions.MlflowException:
                return None
            model_uri = f"models:/{name}@champion"
            version, run_id = str(mv.version), mv.run_id
        elif model_uri.startswith("models:/"):
            ref = model_uri[len("models:/"):]
            if "@" in ref:
                name, alias = ref.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
                version, run_id = str(mv.version), mv.run_id
            elif "/" in ref:
                name, version = ref.split("/", 1)
                run_id = client.get_model_version(name, version).run_id
        elif model_uri.startswith("runs:/"):
            run_id = urlparse(model_uri).netloc or model_uri[len("runs:/"):].split("/")[0]
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
            model = _load_from_dir(Path(local))
    return RegisteredModel(model, task or model.metadata_.get("task"), name=name, version=version,
                           run_id=run_id, uri=model_uri)


def _load_from_dir(path: Path) -> ChurnModel:
    if (path / "schema.json").exists():
        return ChurnModel.load(path)
    schemas = sorted(path.rglob("schema.json"))
    if not schemas or not (schemas[0].parent / "model.txt").exists():
        raise FileNotFoundError(f"no model.txt + schema.json under {path}")
    return ChurnModel.load(schemas[0].parent)
