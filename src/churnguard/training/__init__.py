"""Training: ChurnModel (calibrated LightGBM), honest evaluation, MLflow tracking and registry.

A run goes plan (cutoffs, training set) -> fit (fit, evaluate) -> promotion (a pure
decision) -> registry (log, register, alias); :func:`train_task` runs them in order.
"""

from churnguard.drift import reference_shares
from churnguard.training.artifact import ModelArtifact, as_artifact, load_models
from churnguard.training.evaluation import classification_metrics
from churnguard.training.model import ChurnModel, SchemaMismatchError, calibrate
from churnguard.training.pipeline import TrainResult, train_frame, train_task
from churnguard.training.promotion import promotion_decision
from churnguard.training.registry import default_tracking_uri, load_task_model, model_name
from churnguard.training.splits import NotEnoughHistory, TimeSplit, cut_tables, stratified_split, time_split

__all__ = [
    "ChurnModel",
    "ModelArtifact",
    "NotEnoughHistory",
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
