"""churnguard: point-in-time churn and maintenance-need models, and whom to contact first and why.

The public API, in the order of the flow (data in -> features -> models -> scoring -> reports).
Anything not in ``__all__`` may change without notice.
"""

from churnguard.config import (
    FeatureSet,
    ModelSpec,
    OutreachRules,
    load_feature_set,
    load_model_spec,
    load_outreach_rules,
)
from churnguard.drift import population_stability_index
from churnguard.features import build_features, feature_catalogue, population
from churnguard.io import read_raw_table, write_table
from churnguard.labels import label_cutoffs, make_labels, training_set
from churnguard.reasons import explain_reasons
from churnguard.report import write_report
from churnguard.scoring import ScoreResult, load_models, score, write_outreach
from churnguard.synthetic import generate_world, generate_world_files, write_world
from churnguard.training import (
    ChurnModel,
    SchemaMismatchError,
    TrainResult,
    load_task_model,
    train_task,
)
from churnguard.validation import Problem, ValidationError, ValidationResult, load_data, validate_tables

__version__ = "0.1.0"

__all__ = [
    "ChurnModel",
    "FeatureSet",
    "ModelSpec",
    "OutreachRules",
    "Problem",
    "SchemaMismatchError",
    "ScoreResult",
    "TrainResult",
    "ValidationError",
    "ValidationResult",
    "build_features",
    "explain_reasons",
    "feature_catalogue",
    "generate_world",
    "generate_world_files",
    "label_cutoffs",
    "load_data",
    "load_feature_set",
    "load_model_spec",
    "load_models",
    "load_outreach_rules",
    "load_task_model",
    "make_labels",
    "population",
    "population_stability_index",
    "read_raw_table",
    "score",
    "training_set",
    "train_task",
    "validate_tables",
    "write_outreach",
    "write_report",
    "write_table",
    "write_world",
]
