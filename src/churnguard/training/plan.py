"""Plan a training run: which cutoffs train, validate and report, and the stacked training set.

Pure of MLflow and of the estimator: a plan depends on the tables and the model spec only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from churnguard.config import FeatureSet, ModelSpec
from churnguard.training.splits import TimeSplit, stratified_split, time_split

__all__ = ["CutoffPlan", "TrainingData", "holdout_rebuilder", "plan_cutoffs", "split_parts", "training_data"]


@dataclass(frozen=True)
class CutoffPlan:
    """The cutoffs a task trains on and how they split.

    Attributes
    ----------
    cutoffs : tuple of Timestamp
        Every cutoff the training set stacks, oldest first.
    split : TimeSplit or None
        Train / valid / held-out cutoffs; None for one snapshot (customers are split).
    definition : str
        The label definition used (``"supplied"`` when the data carries labels).
    """

    cutoffs: tuple[pd.Timestamp, ...]
    split: TimeSplit | None
    definition: str

    @property
    def resolve_at(self) -> pd.Timestamp:
        """Where the feature set's data-derived value lists are resolved (the validation cutoff)."""
        return self.split.valid if self.split is not None else self.cutoffs[-1]

    @property
    def holdout(self) -> pd.Timestamp:
        """The cutoff the model is judged on."""
        return self.split.holdout if self.split is not None else self.cutoffs[-1]


@dataclass(frozen=True)
class TrainingData:
    """The stacked training set of a plan, with the features it was built from."""

    frame: pd.DataFrame  # customer_id, cutoff, <features>, label
    catalogue: pd.DataFrame
    feature_set: FeatureSet
    plan: CutoffPlan


def _has_supplied_labels(tables, task: str) -> bool:
    labels = tables.get("labels")
    return labels is not None and task in labels and labels[task].notna().any()


def plan_cutoffs(
    tables: dict[str, pd.DataFrame], spec: ModelSpec, *, as_of=None, log: Callable[[str], Any] = print
) -> CutoffPlan:
    """Cutoffs for `spec`: supplied label dates when the data has labels, else monthly cutoffs.

    With three or more label dates (or derived labels) the split is in time, newest cutoff
    held out; with fewer supplied dates, customers of the newest date are split instead.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables, already cut at `as_of` if one is given.
    spec : ModelSpec
    as_of : Timestamp, optional
        No label window may reach past it (default: the end of the data).
    log : callable
        Receives a line when the plan falls short (no embargo, a customer split).

    Examples
    --------
    >>> from churnguard.config import load_model_spec
    >>> labels = pd.DataFrame({"customer_id": ["a", "b"], "as_of": pd.to_datetime(["2024-05-01"] * 2),
    ...                        "churn": [0, 1]})
    >>> plan = plan_cutoffs({"labels": labels}, load_model_spec(task="churn"), log=lambda line: None)
    >>> plan.split is None, plan.definition, plan.holdout.date()
    (True, 'supplied', datetime.date(2024, 5, 1))
    """
    from churnguard.labels import label_cutoffs

    horizon = spec.horizon_days
    if _has_supplied_labels(tables, spec.task) and spec.label in ("auto", "supplied", "service"):
        label_dates = sorted(pd.Timestamp(d) for d in tables["labels"]["as_of"].dropna().unique())
        if len(label_dates) >= 3:
            split = time_split(label_dates, horizon_days=horizon, n_train=spec.n_cutoffs)
            return CutoffPlan((*split.train, split.valid, split.holdout), split, "supplied")
        log(f"{spec.task}: supplied labels share {len(label_dates)} as_of date(s) "
            f"({', '.join(str(d.date()) for d in label_dates)}); no time to split on, so customers "
            "are split instead (stratified 60/20/20 train/valid/test, newest labels only)")
        return CutoffPlan(tuple(label_dates[-1:]), None, "supplied")
    # Over-ask: the embargo between validation and held-out cutoffs skips ~horizon of them.
    extra = math.ceil(horizon / 28) + 2
    all_cutoffs = label_cutoffs(tables, n_cutoffs=spec.n_cutoffs + extra, horizon_days=horizon,
                                as_of=as_of, freq=spec.cutoff_freq)
    split = time_split(all_cutoffs, horizon_days=horizon, n_train=spec.n_cutoffs)
    if not split.embargo:
        log(f"{spec.task}: too few cutoffs for an embargo; validation label windows overlap the held-out one")
    return CutoffPlan((*split.train, split.valid, split.holdout), split, spec.label)


def training_data(
    tables: dict[str, pd.DataFrame],
    spec: ModelSpec,
    plan: CutoffPlan,
    *,
    feature_set: FeatureSet | None = None,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> TrainingData:
    """Resolve the feature set once, at the plan's validation cutoff, and stack the training set.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from churnguard.config import load_model_spec
    >>> from churnguard.synthetic import generate_world
    >>> from churnguard.validation import validate_tables
    >>> world = generate_world(200, seed=1)
    >>> tables = validate_tables({k: v for k, v in world.items() if k != "truth"}).tables
    >>> spec = replace(load_model_spec(task="churn"), n_cutoffs=2)
    >>> plan = plan_cutoffs(tables, spec, log=lambda line: None)
    >>> data = training_data(tables, spec, plan, progress=False, log=lambda line: None)
    >>> list(data.frame.columns[:2]), data.frame["cutoff"].nunique() == len(plan.cutoffs)
    (['customer_id', 'cutoff'], True)
    """
    from churnguard.features import feature_catalogue, resolve_feature_set
    from churnguard.labels import training_set

    cutoffs = list(plan.cutoffs)
    resolved = resolve_feature_set(tables, plan.resolve_at, feature_set)
    log(f"{spec.task}: building training set over {len(cutoffs)} cutoff(s) "
        f"{cutoffs[0].date()} .. {cutoffs[-1].date()} (horizon {spec.horizon_days} days)")
    frame = training_set(tables, cutoffs, task=spec.task, horizon_days=spec.horizon_days,
                         lookback_days=spec.lookback_days, definition=plan.definition, feature_set=resolved,
                         failure_kinds=spec.failure_kinds, progress=progress)
    catalogue = feature_catalogue(tables, plan.resolve_at, feature_set=resolved)
    return TrainingData(frame, catalogue, resolved, plan)


def holdout_rebuilder(
    tables: dict[str, pd.DataFrame], spec: ModelSpec, plan: CutoffPlan
) -> Callable[[dict[str, Any]], pd.DataFrame]:
    """A function building the held-out cutoff's rows under another feature set (given as a dict).

    The champion may have been trained on another feature set: its columns are rebuilt for
    the same held-out customers so both models are judged on identical rows and labels.
    """
    from churnguard.labels import training_set

    def rebuild(feature_set: dict[str, Any]) -> pd.DataFrame:
        return training_set(tables, [plan.holdout], task=spec.task, horizon_days=spec.horizon_days,
                            lookback_days=spec.lookback_days, definition=plan.definition,
                            feature_set=FeatureSet.from_dict(feature_set), failure_kinds=spec.failure_kinds)

    return rebuild


def split_parts(frame: pd.DataFrame, split: TimeSplit | None, *, random_state: int = 1) -> np.ndarray:
    """``"train"``/``"valid"``/``"test"``/``""`` per row of a stacked training frame.

    Examples
    --------
    >>> from churnguard.training.splits import TimeSplit
    >>> frame = pd.DataFrame({"cutoff": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-05-01", "2024-03-01"])})
    >>> split = TimeSplit((pd.Timestamp("2024-01-01"),), pd.Timestamp("2024-02-01"), pd.Timestamp("2024-05-01"), True)
    >>> split_parts(frame, split).tolist()
    ['train', 'valid', 'test', '']
    """
    if split is None:
        return stratified_split(frame["label"].to_numpy(), random_state=random_state)
    cutoff = pd.to_datetime(frame["cutoff"])
    parts = np.full(len(frame), "", dtype=object)
    parts[cutoff.isin(list(split.train)).to_numpy()] = "train"
    parts[(cutoff == split.valid).to_numpy()] = "valid"
    parts[(cutoff == split.holdout).to_numpy()] = "test"
    return parts
