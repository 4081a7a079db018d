"""What scoring needs from a trained model, as one typed thing.

A :class:`ModelArtifact` travels from training and the loaders (:func:`load_task_model`,
:func:`load_models`) to scoring and the report: the estimator, the feature set it was
trained on, the feature catalogue the reasons are worded from, the training window,
the drift reference and where it came from in the registry. The estimator stays a
plain scikit-learn estimator; what training knows about it is saved beside its own
files, as ``artifact.json`` (:meth:`ModelArtifact.save`, and in the logged MLflow model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnguard.config import TASKS, FeatureSet

__all__ = ["ARTIFACT_FILE", "ModelArtifact", "as_artifact", "from_metadata", "load_models"]

ARTIFACT_FILE = "artifact.json"
ARTIFACT_VERSION = 1
# Keys that models saved before artifact.json kept in schema.json, beside the estimator's own.
_LEGACY_KEYS = ("task", "horizon_days", "feature_set", "catalogue", "training_window", "as_of")


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model with everything scoring reads about it.

    Attributes
    ----------
    estimator : ChurnModel or UpliftModel
        The fitted estimator (``predict_proba`` or ``predict_uplift``, ``contributions``, ``encode``).
    task : {"churn", "maintenance", "uplift"} or None
    feature_set : FeatureSet or None
        The resolved feature set the model was trained on; None for a model fitted
        outside churnguard's training (scoring then builds the default set).
    catalogue : DataFrame or None
        The feature catalogue (name, description, reason template, direction...).
    training_window : dict
        The cutoffs the model was trained, validated and evaluated on.
    drift_reference : dict
        Per feature, the training distribution (bins and shares) for the PSI check
        (:func:`churnguard.drift.reference`).
    name, version, run_id, uri : str or None
        Registry identity.
    horizon_days : int or None
        Label horizon the model predicts over.
    label : str or None
        Label definition trained on (``"auto"``, ``"supplied"``, ...).
    as_of : str or None
        The date training was run as of (None: the end of the data).
    lookback_days : int, default=365
        Look-back of the inactivity churn population the model learned from
        (:func:`churnguard.timeline.task_population`); scoring rebuilds that population.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": np.arange(200.0)})
    >>> y = (X["x"] > 100).astype(int)
    >>> model = ChurnModel(params={"n_estimators": 5, "min_child_samples": 5}, calibration="none").fit(X, y)
    >>> artifact = ModelArtifact(model, task="churn", training_window={"holdout": "2024-01-01"})
    >>> artifact.task, artifact.feature_names
    ('churn', ['x'])
    >>> folder = artifact.save(tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['artifact.json', 'model.txt', 'schema.json']
    >>> ModelArtifact.load(folder).training_window
    {'holdout': '2024-01-01'}
    """

    estimator: Any
    task: str | None = None
    feature_set: FeatureSet | None = None
    catalogue: pd.DataFrame | None = None
    training_window: dict[str, Any] = field(default_factory=dict)
    drift_reference: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    uri: str | None = None
    horizon_days: int | None = None
    label: str | None = None
    as_of: str | None = None
    lookback_days: int = 365

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in order."""
        return [str(n) for n in self.estimator.feature_names_in_]

    def info(self) -> dict[str, Any]:
        """Task, name, version, run id and training window, for reports and MLflow tags."""
        return {
            "task": self.task,
            "name": self.name or type(self.estimator).__name__,
            "version": None if self.version is None else str(self.version),
            "run_id": self.run_id,
            "trained_window": self.training_window or None,
        }

    def metadata(self) -> dict[str, Any]:
        """The training metadata as plain JSON values: the content of ``artifact.json``."""
        return {
            "artifact_version": ARTIFACT_VERSION,
            "task": self.task,
            "horizon_days": self.horizon_days,
            "label": self.label,
            "lookback_days": self.lookback_days,
            "as_of": self.as_of,
            "feature_set": None if self.feature_set is None else self.feature_set.to_dict(),
            "catalogue": None if self.catalogue is None else json.loads(self.catalogue.to_json(orient="records")),
            "training_window": dict(self.training_window),
            "drift_reference": dict(self.drift_reference),
        }

    def save(self, directory: str | Path) -> Path:
        """Write the estimator's files and ``artifact.json`` into `directory`; returns it."""
        directory = self.estimator.save(directory)
        (directory / ARTIFACT_FILE).write_text(json.dumps(self.metadata(), indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ModelArtifact":
        """Read a folder written by :meth:`save` (or by ``ChurnModel.save``: no metadata then).

        A folder holding ``uplift.json`` is an :class:`~churnguard.training.uplift_model.UpliftModel`'s.
        """
        from churnguard.training.model import ChurnModel
        from churnguard.training.uplift_model import UPLIFT_FILE, UpliftModel

        directory = Path(directory)
        estimator = UpliftModel.load(directory) if (directory / UPLIFT_FILE).exists() else ChurnModel.load(directory)
        path = directory / ARTIFACT_FILE
        meta = json.loads(path.read_text()) if path.exists() else _legacy_metadata(directory / "schema.json")
        return from_metadata(estimator, meta)


def from_metadata(estimator, meta: dict[str, Any]) -> ModelArtifact:
    """An artifact of `estimator` from the plain values of :meth:`ModelArtifact.metadata`.

    Examples
    --------
    >>> artifact = from_metadata(None, {"task": "churn", "catalogue": [{"name": "x", "direction": "up"}]})
    >>> artifact.task, list(artifact.catalogue["name"])
    ('churn', ['x'])
    """
    fs = meta.get("feature_set")
    catalogue = meta.get("catalogue")
    return ModelArtifact(
        estimator=estimator,
        task=meta.get("task"),
        feature_set=None if fs is None else FeatureSet.from_dict(fs, "feature set stored with the model"),
        catalogue=None if catalogue is None else pd.DataFrame(catalogue),
        training_window=dict(meta.get("training_window") or {}),
        drift_reference=dict(meta.get("drift_reference") or {}),
        horizon_days=meta.get("horizon_days"),
        label=meta.get("label"),
        as_of=meta.get("as_of"),
        # Models saved before the field learned from the default look-back.
        lookback_days=int(meta.get("lookback_days") or 365),
    )


def _legacy_metadata(schema_json: Path) -> dict[str, Any]:
    """Training metadata of a model saved before artifact.json (it rode in schema.json)."""
    schema = json.loads(schema_json.read_text())
    meta = {k: schema[k] for k in _LEGACY_KEYS if k in schema}
    if "reference" in schema:
        meta["drift_reference"] = schema["reference"]
    return meta


def as_artifact(model, *, task: str | None = None) -> ModelArtifact:
    """`model` as a :class:`ModelArtifact`: an artifact as it is, a bare estimator wrapped.

    A bare estimator carries no training metadata: its artifact has no feature set,
    catalogue or drift reference (scoring then builds the default feature set).

    Examples
    --------
    >>> import numpy as np
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": np.arange(200.0)})
    >>> model = ChurnModel(params={"n_estimators": 5}, calibration="none").fit(X, (X["x"] > 100).astype(int))
    >>> artifact = as_artifact(model, task="churn")
    >>> artifact.task, artifact.feature_set, artifact.drift_reference
    ('churn', None, {})
    >>> as_artifact(artifact) is artifact
    True
    """
    if isinstance(model, ModelArtifact):
        return model
    return ModelArtifact(estimator=model, task=task)


def load_models(
    *, model_uris: tuple[str, ...] | list[str] = (), tracking_uri: str | None = None
) -> dict[str, ModelArtifact]:
    """Each task's model: the given URIs, else each task's champion in the registry.

    Tasks without a registered model are left out (a business with no installed
    products has no maintenance model).

    Examples
    --------
    >>> import tempfile, os
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "empty.db")
    >>> load_models(tracking_uri=uri)  # an empty registry: nothing to score with
    {}
    """
    from churnguard.training.registry import load_task_model

    models: dict[str, ModelArtifact] = {}
    if model_uris:
        for uri in model_uris:
            artifact = load_task_model(None, tracking_uri=tracking_uri, model_uri=uri)
            if artifact.task not in TASKS:
                raise ValueError(f"model {uri}: cannot tell which task it predicts (got {artifact.task!r})")
            if artifact.task in models:
                raise ValueError(f"two models given for task {artifact.task}: {uri} and an earlier --model")
            models[artifact.task] = artifact
        return models
    for task in TASKS:
        artifact = load_task_model(task, tracking_uri=tracking_uri)
        if artifact is not None:
            models[task] = artifact
    return models
