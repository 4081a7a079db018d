"""The MLflow side of training: where runs go, logging a run, registration, aliases, loading back.

MLflow is imported only here and in :mod:`churnguard.training.pyfunc` (and in scoring).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from churnguard.config import ModelSpec
from churnguard.training import evaluation as ev
from churnguard.training.artifact import ModelArtifact
from churnguard.training.fit import Evaluation
from churnguard.training.model import ChurnModel, SchemaMismatchError

__all__ = [
    "ChampionScore",
    "Registration",
    "RunRecord",
    "artifact_location",
    "champion_on_holdout",
    "default_tracking_uri",
    "load_task_model",
    "log_run",
    "mlflow_tracking",
    "model_name",
    "requirements",
]


def model_name(task: str) -> str:
    """Registered model name of a task.

    Examples
    --------
    >>> model_name("churn")
    'churnguard-churn'
    """
    return f"churnguard-{task}"


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file in the working directory.

    Examples
    --------
    >>> saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    >>> default_tracking_uri()
    'sqlite:///mlflow.db'
    >>> if saved is not None:
    ...     os.environ["MLFLOW_TRACKING_URI"] = saved
    """
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
def mlflow_tracking(tracking_uri: str | None):
    """Point MLflow at `tracking_uri` for the duration, then restore the caller's settings; yields the URI.

    Examples
    --------
    >>> import tempfile
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> with mlflow_tracking(uri) as used:
    ...     used == uri
    True
    """
    import mlflow

    uri = tracking_uri or default_tracking_uri()
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    # The registry follows the tracking URI unless the caller configured one of its own.
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


# --------------------------------------------------------------------------- the champion


@dataclass(frozen=True)
class ChampionScore:
    """The registered champion judged on the new model's held-out rows.

    `version` is None when no champion is registered; `problem` says why it could not be
    scored (its metrics are then None).
    """

    version: str | None
    metrics: dict[str, float] | None
    problem: str | None = None


def champion_on_holdout(
    spec: ModelSpec,
    test: pd.DataFrame,
    artifact: ModelArtifact,
    holdout_features: Callable[[dict], pd.DataFrame] | None = None,
    *,
    tracking_uri: str | None = None,
) -> ChampionScore:
    """Re-score the task's current champion on the new held-out rows, reading but never writing.

    When the champion was trained on another feature set than `artifact`, its columns are
    rebuilt for the same rows with `holdout_features` (a feature set as a dict -> frame).

    Examples
    --------
    >>> import tempfile
    >>> from churnguard.config import load_model_spec
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "empty.db")
    >>> champion_on_holdout(load_model_spec(task="churn"), pd.DataFrame(), ModelArtifact(None), tracking_uri=uri)
    ChampionScore(version=None, metrics=None, problem=None)
    """
    import mlflow

    with mlflow_tracking(tracking_uri) as uri:
        try:
            version = mlflow.MlflowClient().get_model_version_by_alias(model_name(spec.task), "champion")
        except mlflow.exceptions.MlflowException:
            return ChampionScore(None, None)
        champion = load_task_model(spec.task, tracking_uri=uri)
    X = test
    ours = None if artifact.feature_set is None else artifact.feature_set.to_dict()
    theirs = None if champion.feature_set is None else champion.feature_set.to_dict()
    if theirs is not None and theirs != ours and holdout_features is not None:
        rebuilt = holdout_features(theirs, sorted(pd.to_datetime(test["cutoff"]).unique()))
        X = test[["customer_id", "cutoff"]].merge(rebuilt.drop(columns="label"), on=["customer_id", "cutoff"], how="left")
    try:
        p = champion.estimator.predict_proba(X)[:, 1]
    except SchemaMismatchError as err:
        return ChampionScore(version.version, None,
                             f"champion v{version.version} cannot score the new held-out rows ({err})")
    return ChampionScore(version.version, ev.classification_metrics(test["label"].to_numpy(), p))


# --------------------------------------------------------------------------- logging a run


@dataclass(frozen=True)
class RunRecord:
    """Everything one training run logs, decided before logging starts.

    Attributes
    ----------
    spec : ModelSpec
    artifact : ModelArtifact
        The new model with its training metadata (no registry identity yet).
    evaluation : Evaluation
        Held-out metrics, scores, SHAP importance, row counts, input example.
    split : str
        The hold-out kind: ``"time_embargo"``, ``"time"`` or ``"grouped_customers"``.
    champion : ChampionScore
        The champion on the same held-out rows.
    promote : bool
    reason : str
        The promotion decision, from :func:`~churnguard.training.promotion_decision`.
    """

    spec: ModelSpec
    artifact: ModelArtifact
    evaluation: Evaluation
    split: str
    champion: ChampionScore
    promote: bool
    reason: str

    @property
    def alias(self) -> str:
        """``"champion"`` or ``"challenger"``."""
        return "champion" if self.promote else "challenger"


@dataclass(frozen=True)
class Registration:
    """Where a logged run landed in MLflow."""

    run_id: str
    model_name: str
    version: str
    alias: str
    plots: list[str]


def log_run(record: RunRecord, *, tracking_uri: str | None = None) -> Registration:
    """Log a run (params, metrics, plots, model with ``artifact.json``), register it, set its alias.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from churnguard.config import load_model_spec
    >>> from churnguard.training.fit import fit_and_evaluate
    >>> from churnguard.training.splits import time_split
    >>> rng = np.random.default_rng(0)
    >>> cutoffs = pd.date_range("2023-01-01", periods=6, freq="MS")
    >>> frame = pd.concat([pd.DataFrame({"customer_id": [f"c{i}" for i in range(300)], "cutoff": c,
    ...                                  "purchases_days_since_last": rng.exponential(60, 300)})
    ...                    for c in cutoffs], ignore_index=True)
    >>> frame["label"] = (frame["purchases_days_since_last"] + rng.normal(0, 40, len(frame)) > 90).astype(int)
    >>> spec = replace(load_model_spec(task="churn"), horizon_days=31, lightgbm={"n_estimators": 20})
    >>> evaluation = fit_and_evaluate(frame, spec, split=time_split(cutoffs, horizon_days=31), log=lambda s: None)
    >>> artifact = ModelArtifact(evaluation.model, task="churn", training_window=evaluation.training_window)
    >>> record = RunRecord(spec, artifact, evaluation, "time", ChampionScore(None, None), True, "first model")
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> registered = log_run(record, tracking_uri=uri)
    >>> registered.model_name, registered.version, registered.alias
    ('churnguard-churn', '1', 'champion')
    >>> load_task_model("churn", tracking_uri=uri).training_window == evaluation.training_window
    True
    """
    import mlflow
    from mlflow.models import infer_signature

    from churnguard.training import pyfunc
    from churnguard.training.describe import version_description

    spec, ev_, artifact = record.spec, record.evaluation, record.artifact
    model, window = artifact.estimator, ev_.training_window
    y_test = ev_.test["label"].to_numpy()
    experiment = name = model_name(spec.task)
    with mlflow_tracking(tracking_uri) as uri, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plots = ev.write_plots(tmp / "plots", y_test, ev_.scores, probability=ev_.probability,
                               shap_importance=ev_.shap_importance, title=spec.task)
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location(uri, experiment))
        with mlflow.start_run(experiment_id=exp_id, run_name=f"{spec.task} held-out {window['holdout']}") as run:
            mlflow.log_params(_flat_params(spec, model))
            mlflow.log_params({
                "split": record.split, "train_cutoffs": ",".join(window["train"] or []),
                "valid_cutoff": window["valid"], "holdout_cutoff": window["holdout"],
                "n_features": len(model.feature_names_in_), "heuristic_feature": ev_.heuristic_feature,
            })
            mlflow.log_metrics({k: float(v) for k, v in ev_.metrics.items() if _finite(v)})
            mlflow.log_metrics({f"rows_{k}": float(v) for k, v in ev_.rows.items()})
            mlflow.log_artifacts(str(tmp / "plots"), "plots")
            if artifact.feature_set is not None:
                mlflow.log_dict(artifact.feature_set.to_dict(), "feature_set.json")
            if artifact.catalogue is not None:
                mlflow.log_text(artifact.catalogue.to_csv(index=False), "feature_catalogue.csv")
            mlflow.log_text(ev_.shap_importance.rename("mean_abs_shap").to_csv(), "shap_importance.csv")
            mlflow.log_text(ev.calibration_curve(y_test, ev_.probability).to_csv(index=False), "calibration_curve.csv")
            model_dir = artifact.save(tmp / "churnmodel")
            example = _input_example(ev_.example, model)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(pyfunc.__file__)),
                artifacts={"model_txt": str(model_dir / "model.txt"), "schema_json": str(model_dir / "schema.json"),
                           "artifact_json": str(model_dir / "artifact.json")},
                signature=infer_signature(example, model.predict_proba(example)[:, 1]),
                input_example=example,
                pip_requirements=requirements(),
            )
            version = str(mlflow.register_model(info.model_uri, name).version)
            client.set_registered_model_alias(name, record.alias, version)
            client.set_model_version_tag(name, version, "holdout_cutoff", window["holdout"])
            client.set_model_version_tag(name, version, "promotion", record.reason)
            client.update_model_version(name, version, description=version_description(
                spec, split=window.get("evaluation") or record.split, window=window, rows=ev_.rows, metrics=ev_.metrics, reason=record.reason,
                heuristic_feature=ev_.heuristic_feature, label=artifact.label, as_of=artifact.as_of))
            mlflow.set_tag("promotion", record.reason)
            # Which evaluation stands behind the metrics, in words: a customer hold-out on a short
            # history does not mean what an embargoed out-of-time hold-out means.
            mlflow.set_tag("evaluation", window.get("evaluation") or record.split)
            mlflow.set_tag("production_refit", str(bool(spec.production_refit)).lower())
            client.set_model_version_tag(name, version, "evaluation", window.get("evaluation") or record.split)
            if record.champion.metrics is not None:
                mlflow.log_metrics({f"champion_{k}": float(v) for k, v in record.champion.metrics.items()
                                    if _finite(v)})
    return Registration(run.info.run_id, name, version, record.alias, [f"plots/{p.name}" for p in plots.values()])


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


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def requirements() -> list[str]:
    """Pinned requirements of a logged model: churnguard and the libraries its estimators load with.

    Examples
    --------
    >>> [r.split("==")[0] for r in requirements()][:2]
    ['churnguard', 'lightgbm']
    """
    from importlib.metadata import version

    # Pinned so an outside batch job rebuilds the same environment; churnguard itself
    # provides ChurnModel, which the logged code file imports.
    return [f"{p}=={version(p)}" for p in ("churnguard", "lightgbm", "mlflow", "numpy", "pandas", "scikit-learn")]


# --------------------------------------------------------------------------- loading


def load_task_model(task: str | None, *, tracking_uri: str | None = None,
                    model_uri: str | None = None) -> ModelArtifact | None:
    """Load a task's model for scoring: the registered champion, or `model_uri`.

    Parameters
    ----------
    task : {"churn", "maintenance"} or None
        None only with `model_uri`: the task is then read from the model's ``artifact.json``.
    tracking_uri : str, optional
        MLflow store; default MLFLOW_TRACKING_URI, else ``sqlite:///mlflow.db`` in the cwd.
    model_uri : str, optional
        ``models:/churnguard-churn@champion``, ``models:/churnguard-churn/3``,
        ``runs:/<run_id>/model``, or a local directory holding ``model.txt`` and
        ``schema.json`` (as written by :meth:`ModelArtifact.save`, ``ChurnModel.save`` or
        an MLflow model folder) and, beside them, ``artifact.json``.

    Returns
    -------
    ModelArtifact or None
        None when `model_uri` is not given and no champion is registered for `task`.

    Examples
    --------
    >>> import tempfile
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": np.arange(200.0)})
    >>> model = ChurnModel(params={"n_estimators": 5}, calibration="none").fit(X, (X["x"] > 100).astype(int))
    >>> folder = ModelArtifact(model, task="churn").save(tempfile.mkdtemp())
    >>> loaded = load_task_model(None, model_uri=str(folder))
    >>> loaded.task, loaded.feature_names
    ('churn', ['x'])
    >>> load_task_model("churn", tracking_uri="sqlite:///" + os.path.join(tempfile.mkdtemp(), "empty.db")) is None
    True
    """
    if task is None and model_uri is None:
        raise ValueError("load_task_model needs a task or a model_uri")
    if model_uri is not None and "://" not in str(model_uri) and not str(model_uri).startswith("models:/"):
        path = Path(model_uri)
        if not path.exists():
            raise FileNotFoundError(f"model directory {path} does not exist")
        artifact = _load_from_dir(path)
        return replace(artifact, task=task or artifact.task, uri=str(path))

    import mlflow

    with mlflow_tracking(tracking_uri):
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
            artifact = _load_from_dir(Path(local))
    return replace(artifact, task=task or artifact.task, name=name, version=version, run_id=run_id, uri=model_uri)


def _load_from_dir(path: Path) -> ModelArtifact:
    if (path / "schema.json").exists():
        return ModelArtifact.load(path)
    schemas = sorted(path.rglob("schema.json"))
    if not schemas or not (schemas[0].parent / "model.txt").exists():
        raise FileNotFoundError(f"no model.txt + schema.json under {path}")
    return ModelArtifact.load(schemas[0].parent)
