"""Training: ChurnModel (calibrated LightGBM), honest evaluation, MLflow tracking and registry."""

from churnguard.training.artifact import ModelArtifact, as_artifact, load_models
from churnguard.training.evaluation import classification_metrics
from churnguard.training.model import ChurnModel, SchemaMismatchError, calibrate, reference_shares
from churnguard.training.splits import NotEnoughHistory, TimeSplit, cut_tables, stratified_split, time_split
from churnguard.training.tracking import (
    RegisteredModel,
    TrainResult,
    default_tracking_uri,
    load_task_model,
    model_name,
    promotion_decision,
    train_frame,
    train_task,
)

__all__ = [
    "ChurnModel",
    "ModelArtifact",
    "NotEnoughHistory",
    "RegisteredModel",
    "SchemaMismatchError",
    "TimeSplit",
    "TrainResult",
    "as_artifact",
    "calibrate",
    "classification_metrics",
    "cut_tables",
    "default_tracking_uri",
    "load_models",
    "load_task_model",
    "model_name",
    "promotion_decision",
    "reference_shares",
    "stratified_split",
    "time_split",
    "train_frame",
    "train_task",
]
