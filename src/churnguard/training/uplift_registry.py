"""The MLflow side of the uplift model: logging a run, registering ``churnguard-uplift``, loading it back.

Registered like the churn and maintenance models (experiment and model name
``churnguard-uplift``, aliases ``champion`` and ``challenger``); the logged model holds
``uplift.json``, both effect models' LightGBM text and ``artifact.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnguard.config import UpliftSpec
from churnguard.training.artifact import ModelArtifact
from churnguard.training.qini import qini_coefficient, qini_curve
from churnguard.training.registry import Registration, artifact_location, mlflow_tracking, model_name, requirements
from churnguard.training.uplift_model import UPLIFT_FILE

if TYPE_CHECKING:  # an annotation only: uplift.py calls this module, not the other way
    from churnguard.training.uplift import UpliftEvaluation

__all__ = ["UPLIFT_MODEL", "champion_qini", "load_uplift_model", "log_uplift_run"]

UPLIFT_MODEL = model_name("uplift")


def load_uplift_model(*, tracking_uri: str | None = None, model_uri: str | None = None) -> ModelArtifact | None:
    """The uplift model scoring uses: the registered champion, or `model_uri`; None when none is registered.

    `model_uri` is ``models:/churnguard-uplift/3``, ``runs:/<id>/model`` or a local folder
    written by :meth:`ModelArtifact.save`.

    Examples
    --------
    >>> import os
    >>> load_uplift_model(tracking_uri="sqlite:///" + os.path.join(tempfile.mkdtemp(), "empty.db")) is None
    True
    """
    if model_uri is not None and "://" not in str(model_uri) and not str(model_uri).startswith("models:/"):
        return _replace_identity(_load_folder(Path(model_uri)), uri=str(model_uri))
    import mlflow

    with mlflow_tracking(tracking_uri):
        client = mlflow.MlflowClient()
        version = run_id = None
        if model_uri is None:
            try:
                mv = client.get_model_version_by_alias(UPLIFT_MODEL, "champion")
            except mlflow.exceptions.MlflowException:
                return None
            model_uri, version, run_id = f"models:/{UPLIFT_MODEL}@champion", str(mv.version), mv.run_id
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
            artifact = _load_folder(Path(local))
    return _replace_identity(artifact, uri=model_uri, name=UPLIFT_MODEL, version=version, run_id=run_id)


def _load_folder(path: Path) -> ModelArtifact:
    found = [path] if (path / UPLIFT_FILE).exists() else sorted(p.parent for p in path.rglob(UPLIFT_FILE))
    if not found:
        raise FileNotFoundError(f"no {UPLIFT_FILE} under {path}: not an uplift model")
    return ModelArtifact.load(found[0])


def _replace_identity(artifact: ModelArtifact, **identity) -> ModelArtifact:
    from dataclasses import replace

    return replace(artifact, task="uplift", **identity)


def champion_qini(evaluation: UpliftEvaluation, *, tracking_uri: str | None = None) -> float | None:
    """The registered champion's Qini on the new model's held-out rows; None without a usable champion.

    A champion trained on other features than today's rows hold cannot be judged on
    them: it is then treated as absent (and replaced).

    Examples
    --------
    >>> import os
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "empty.db")
    >>> champion_qini(None, tracking_uri=uri) is None
    True
    """
    champion = load_uplift_model(tracking_uri=tracking_uri)
    if champion is None:
        return None
    test = evaluation.test
    if any(f not in test.columns for f in champion.feature_names):
        return None
    score = champion.estimator.predict_uplift(test)
    return qini_coefficient(qini_curve(score, test["treated"].to_numpy(), test["label"].to_numpy(),
                                       ids=test["customer_id"].to_numpy()))


def _plot_qini(curves: pd.DataFrame, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if (curves["kind"] == "true").any() else 1, figsize=(10, 4), squeeze=False)
    for ax, kind in zip(axes[0], ("observed", "true")):
        for name, part in curves[curves["kind"] == kind].groupby("ranking", sort=False):
            ax.plot(part["share"], part["saved"], label=name)
        last = curves[(curves["kind"] == kind) & (curves["ranking"] == "uplift")]["saved"].iloc[-1]
        ax.plot([0, 1], [0, last], linestyle=":", color="grey", label="random")
        ax.set_xlabel("share of held-out customers called")
        ax.set_ylabel("customers saved")
        ax.set_title("Qini curve" if kind == "observed" else "customers truly saved (uplift_truth)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def log_uplift_run(
    spec: UpliftSpec,
    artifact: ModelArtifact,
    evaluation: UpliftEvaluation,
    *,
    promote: bool,
    reason: str,
    tracking_uri: str | None = None,
) -> Registration:
    """Log the run (spec, metrics, Qini curves and plot, the model), register it and set its alias.

    Examples
    --------
    >>> import os
    >>> from churnguard.training.uplift import UpliftData, evaluate_uplift
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "list_date": pd.Timestamp("2024-01-01"),
    ...                       "treated": rng.random(n) < 0.8, "label": (rng.random(n) < 0.3).astype(int),
    ...                       "x": rng.normal(size=n)})
    >>> small = {"n_estimators": 5, "min_child_samples": 50}
    >>> spec = UpliftSpec(lightgbm=small, effect_lightgbm=small)
    >>> evaluation = evaluate_uplift(UpliftData(frame, pd.DataFrame(), None, "contractual"), spec, log=lambda s: None)
    >>> artifact = ModelArtifact(evaluation.model, task="uplift", training_window={"holdout": "2024-01-01"})
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> registered = log_uplift_run(spec, artifact, evaluation, promote=True, reason="first", tracking_uri=uri)
    >>> registered.model_name, registered.version, registered.alias
    ('churnguard-uplift', '1', 'champion')
    >>> load_uplift_model(tracking_uri=uri).feature_names
    ['x']
    """
    import mlflow
    from mlflow.models import infer_signature

    from churnguard.training import uplift_pyfunc

    alias = "champion" if promote else "challenger"
    model, metrics = artifact.estimator, evaluation.metrics
    with mlflow_tracking(tracking_uri) as uri, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name(UPLIFT_MODEL)
        exp_id = exp.experiment_id if exp else client.create_experiment(UPLIFT_MODEL,
                                                                        artifact_location(uri, UPLIFT_MODEL))
        dates = artifact.training_window.get("list_dates") or []
        with mlflow.start_run(experiment_id=exp_id, run_name=f"uplift {spec.action} over {len(dates)} list date(s)") as run:
            params = {k: v for k, v in vars(spec).items() if k not in ("lightgbm", "effect_lightgbm")}
            params.update({f"lightgbm.{k}": v for k, v in spec.lightgbm.items()})
            params.update({f"effect_lightgbm.{k}": v for k, v in spec.effect_lightgbm.items()})
            params.update(list_dates=",".join(dates), n_features=len(model.feature_names_in_),
                          propensity=round(model.propensity_, 6))
            mlflow.log_params(params)
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            mlflow.log_text(evaluation.curves.to_csv(index=False), "qini_curves.csv")
            mlflow.log_artifact(str(_plot_qini(evaluation.curves, tmp / "qini.png")), "plots")
            if artifact.catalogue is not None and len(artifact.catalogue):
                mlflow.log_text(artifact.catalogue.to_csv(index=False), "feature_catalogue.csv")
            folder = artifact.save(tmp / "upliftmodel")
            example = evaluation.test[list(model.feature_names_in_)].head(5)
            example = example.astype({c: "float64" for c, kind in model.dtypes_.items() if kind == "numeric"})
            for c, kind in model.dtypes_.items():
                if kind == "category":
                    example[c] = example[c].astype(object).where(example[c].notna(), None)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(uplift_pyfunc.__file__)),
                artifacts={p.stem.replace(".", "_") + "_" + p.suffix.lstrip("."): str(p) for p in sorted(folder.iterdir())},
                signature=infer_signature(example, model.predict_uplift(example)),
                input_example=example,
                pip_requirements=requirements(),
            )
            version = str(mlflow.register_model(info.model_uri, UPLIFT_MODEL).version)
            client.set_registered_model_alias(UPLIFT_MODEL, alias, version)
            client.set_model_version_tag(UPLIFT_MODEL, version, "promotion", reason)
            client.set_model_version_tag(UPLIFT_MODEL, version, "evaluation",
                                         artifact.training_window.get("evaluation", "customers held out"))
            mlflow.set_tag("promotion", reason)
    return Registration(run.info.run_id, UPLIFT_MODEL, version, alias, ["plots/qini.png"])
