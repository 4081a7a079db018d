"""What scoring needs from a trained model, as one typed thing.

A :class:`ModelArtifact` travels from the loaders (:func:`load_task_model`,
:func:`load_models`) to scoring and the report: the estimator, the feature set it was
trained on, the feature catalogue the reasons are worded from, the training window,
the drift reference and where it came from in the registry. The estimator stays a
plain scikit-learn estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from churnguard.config import TASKS, FeatureSet

__all__ = ["ModelArtifact", "as_artifact", "load_models"]


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model with everything scoring reads about it.

    Attributes
    ----------
    estimator : ChurnModel
        The fitted estimator (``predict_proba``, ``contributions``, ``encode``).
    task : {"churn", "maintenance"} or None
    feature_set : FeatureSet or None
        The resolved feature set the model was trained on; None for a model fitted
        outside churnguard's training (scoring then builds the default set).
    catalogue : DataFrame or None
        The feature catalogue (name, description, reason template, direction...).
    training_window : dict
        The cutoffs the model was trained, validated and evaluated on.
    drift_reference : dict
        Per feature, the training distribution (bins and shares) for the PSI check.
    name, version, run_id, uri : str or None
        Registry identity.

    Examples
    --------
    >>> import numpy as np
    >>> from churnguard.training import ChurnModel
    >>> X = pd.DataFrame({"x": np.arange(200.0)})
    >>> y = (X["x"] > 100).astype(int)
    >>> model = ChurnModel(params={"n_estimators": 5, "min_child_samples": 5}, calibration="none").fit(X, y)
    >>> artifact = as_artifact(model, task="churn")
    >>> artifact.task, artifact.feature_names
    ('churn', ['x'])
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


def as_artifact(model, *, task: str | None = None) -> ModelArtifact:
    """`model` as a :class:`ModelArtifact`: an artifact as it is, an estimator wrapped.

    A bare estimator (``ChurnModel`` fitted by hand, or loaded from its files) gets the
    metadata its saved schema carries, if any.
    """
    if isinstance(model, ModelArtifact):
        return model
    from churnguard.training.tracking import RegisteredModel

    entry = model if isinstance(model, RegisteredModel) else None
    estimator = entry.model if entry is not None else model
    meta = dict(getattr(estimator, "metadata_", {}) or {})
    fs = meta.get("feature_set")
    if fs is not None and not isinstance(fs, FeatureSet):
        fs = FeatureSet.from_dict(fs, "feature set stored with the model")
    catalogue = meta.get("catalogue")
    if catalogue is not None and not isinstance(catalogue, pd.DataFrame):
        catalogue = pd.DataFrame(catalogue)
    return ModelArtifact(
        estimator=estimator,
        task=(entry.task if entry is not None else None) or task or meta.get("task"),
        feature_set=fs,
        catalogue=catalogue,
        training_window=dict(meta.get("training_window") or {}),
        drift_reference=dict(getattr(estimator, "reference_", {}) or {}),
        name=entry.name if entry is not None else None,
        version=None if entry is None or entry.version is None else str(entry.version),
        run_id=entry.run_id if entry is not None else None,
        uri=entry.uri if entry is not None else None,
    )


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
    from churnguard.training.tracking import load_task_model

    models: dict[str, ModelArtifact] = {}
    if model_uris:
        for uri in model_uris:
            artifact = as_artifact(load_task_model(None, tracking_uri=tracking_uri, model_uri=uri))
            if artifact.task not in TASKS:
                raise ValueError(f"model {uri}: cannot tell which task it predicts (got {artifact.task!r})")
            if artifact.task in models:
                raise ValueError(f"two models given for task {artifact.task}: {uri} and an earlier --model")
            models[artifact.task] = artifact
        return models
    for task in TASKS:
        entry = load_task_model(task, tracking_uri=tracking_uri)
        if entry is not None:
            models[task] = as_artifact(entry)
    return models
