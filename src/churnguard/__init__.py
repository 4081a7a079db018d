"""churnguard: point-in-time churn and maintenance-need models, and whom to contact first and why.

The public API, in the order of the flow (data in -> features -> models -> scoring -> reports).
Anything not in ``__all__`` may change without notice.

Names resolve lazily (PEP 562): ``import churnguard`` (and so ``import churnguard.cli``)
loads no LightGBM, MLflow, DuckDB or scikit-learn; ``churnguard.score`` imports
:mod:`churnguard.scoring` the first time it is read.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_SOURCES: dict[str, str] = {
    "FeatureSet": "churnguard.config",
    "ModelSpec": "churnguard.config",
    "OutreachRules": "churnguard.config",
    "load_feature_set": "churnguard.config",
    "load_model_spec": "churnguard.config",
    "load_outreach_rules": "churnguard.config",
    "population_stability_index": "churnguard.drift",
    "build_features": "churnguard.features",
    "feature_catalogue": "churnguard.features",
    "population": "churnguard.features",
    "ImpactResult": "churnguard.impact",
    "measure_impact": "churnguard.impact",
    "read_raw_table": "churnguard.io",
    "write_table": "churnguard.io",
    "label_cutoffs": "churnguard.labels",
    "Mapping": "churnguard.mapping",
    "MappingError": "churnguard.mapping",
    "load_mapping": "churnguard.mapping",
    "make_labels": "churnguard.labels",
    "training_set": "churnguard.labels",
    "SqlTable": "churnguard.relations",
    "load_relations": "churnguard.relations",
    "explain_reasons": "churnguard.reasons",
    "write_report": "churnguard.report",
    "ScoreResult": "churnguard.scoring",
    "load_models": "churnguard.scoring",
    "score": "churnguard.scoring",
    "write_outreach": "churnguard.scoring",
    "generate_world": "churnguard.synthetic",
    "generate_world_files": "churnguard.synthetic",
    "write_world": "churnguard.synthetic",
    "ChurnModel": "churnguard.training",
    "SchemaMismatchError": "churnguard.training",
    "TrainResult": "churnguard.training",
    "load_task_model": "churnguard.training",
    "train_task": "churnguard.training",
    "Problem": "churnguard.validation",
    "ValidationError": "churnguard.validation",
    "ValidationResult": "churnguard.validation",
    "load_data": "churnguard.validation",
    "validate_tables": "churnguard.validation",
}

__all__ = [
    "ChurnModel",
    "FeatureSet",
    "ImpactResult",
    "Mapping",
    "MappingError",
    "ModelSpec",
    "OutreachRules",
    "Problem",
    "SchemaMismatchError",
    "ScoreResult",
    "SqlTable",
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
    "load_mapping",
    "load_relations",
    "load_model_spec",
    "load_models",
    "load_outreach_rules",
    "load_task_model",
    "make_labels",
    "measure_impact",
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


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        # ``churnguard.scoring`` read as an attribute, as the eager imports allowed.
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # resolved once: later reads skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the names as they resolve
    from churnguard.config import (  # noqa: F401
        FeatureSet,
        ModelSpec,
        OutreachRules,
        load_feature_set,
        load_model_spec,
        load_outreach_rules,
    )
    from churnguard.drift import population_stability_index  # noqa: F401
    from churnguard.features import build_features, feature_catalogue, population  # noqa: F401
    from churnguard.impact import ImpactResult, measure_impact  # noqa: F401
    from churnguard.io import read_raw_table, write_table  # noqa: F401
    from churnguard.labels import label_cutoffs, make_labels, training_set  # noqa: F401
    from churnguard.mapping import Mapping, MappingError, load_mapping  # noqa: F401
    from churnguard.reasons import explain_reasons  # noqa: F401
    from churnguard.relations import SqlTable, load_relations  # noqa: F401
    from churnguard.report import write_report  # noqa: F401
    from churnguard.scoring import ScoreResult, load_models, score, write_outreach  # noqa: F401
    from churnguard.synthetic import generate_world, generate_world_files, write_world  # noqa: F401
    from churnguard.training import (  # noqa: F401
        ChurnModel,
        SchemaMismatchError,
        TrainResult,
        load_task_model,
        train_task,
    )
    from churnguard.validation import (  # noqa: F401
        Problem,
        ValidationError,
        ValidationResult,
        load_data,
        validate_tables,
    )
