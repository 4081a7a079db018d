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
from churnguard.training.splits import NotEnoughHistory, TimeSplit, stratified_split, time_split

__all__ = ["CutoffPlan", "TrainingData", "holdout_rebuilder", "plan_cutoffs", "split_parts", "training_data"]


@dataclass(frozen=True)
class CutoffPlan:
    """The cutoffs a task trains on.

    Attributes
    ----------
    cutoffs : tuple of Timestamp
        Every cutoff the training set stacks, oldest first.
    definition : str
        The label definition used (``"supplied"`` when the data carries labels).
    horizon_days : int
    resolve_at : Timestamp
        Where the feature set's data-derived value lists (channels, topics, usage events)
        are resolved: the validation cutoff a time split would use, so the held-out
        cutoff's events never shape the columns.
    """

    cutoffs: tuple[pd.Timestamp, ...]
    definition: str
    horizon_days: int
    resolve_at: pd.Timestamp

    @property
    def holdout(self) -> pd.Timestamp:
        """The newest cutoff: the one a time hold-out judges the model on."""
        return self.cutoffs[-1]


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


def _resolve_point(cutoffs: list[pd.Timestamp], horizon_days: int) -> pd.Timestamp:
    if len(cutoffs) >= 3:
        return time_split(cutoffs, horizon_days=horizon_days).valid
    return cutoffs[-1]


def plan_cutoffs(
    tables: dict[str, pd.DataFrame], spec: ModelSpec, *, as_of=None, log: Callable[[str], Any] = print
) -> CutoffPlan:
    """Cutoffs for `spec`, read from the data: supplied label dates, or a grid from where the data begins.

    Derived labels: the newest cutoff is ``as_of - horizon`` (the newest complete label
    window), earlier ones step back ``spec.cutoff_step``, never before the first
    event plus ``spec.min_history_days``, never one with an empty population or a single
    class (:func:`churnguard.labels.usable_cutoffs`). Enough are planned for
    ``spec.n_cutoffs`` training cutoffs plus the validation, embargo and held-out ones.
    Each planned cutoff is logged with its population and positives.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables, already cut at `as_of` if one is given.
    spec : ModelSpec
    as_of : Timestamp, optional
        No label window may reach past it (default: the end of the data).
    log : callable
        Receives one line per planned cutoff.

    Raises
    ------
    NotEnoughHistory
        When no cutoff is usable, saying how much history is missing.

    Examples
    --------
    >>> from churnguard.config import load_model_spec
    >>> labels = pd.DataFrame({"customer_id": ["a", "b"], "as_of": pd.to_datetime(["2024-05-01"] * 2),
    ...                        "churn": [0, 1]})
    >>> plan = plan_cutoffs({"labels": labels}, load_model_spec(task="churn"), log=lambda line: None)
    >>> plan.definition, [c.date().isoformat() for c in plan.cutoffs]
    ('supplied', ['2024-05-01'])
    """
    from churnguard.labels import usable_cutoffs

    horizon = spec.horizon_days
    if _has_supplied_labels(tables, spec.task) and spec.label in ("auto", "supplied", "service"):
        label_dates = sorted(pd.Timestamp(d) for d in tables["labels"]["as_of"].dropna().unique())
        if as_of is not None:
            label_dates = [d for d in label_dates if d + pd.Timedelta(days=horizon) <= pd.Timestamp(as_of)] or label_dates
        label_dates = label_dates[-(spec.n_cutoffs + 2):]
        log(f"{spec.task}: supplied labels at {len(label_dates)} as_of date(s) "
            f"{label_dates[0].date()} .. {label_dates[-1].date()}")
        return CutoffPlan(tuple(label_dates), "supplied", horizon, _resolve_point(label_dates, horizon))
    # Enough for the training cutoffs, the validation one and the embargo before the held-out one.
    extra = math.ceil(horizon / spec.cutoff_step) + 1
    grid = usable_cutoffs(tables, task=spec.task, horizon_days=horizon, n_cutoffs=spec.n_cutoffs + extra,
                          step_days=spec.cutoff_step, min_history_days=spec.min_history_days, as_of=as_of,
                          lookback_days=spec.lookback_days, definition=spec.label,
                          failure_kinds=spec.failure_kinds)
    if not grid.cutoffs:
        raise NotEnoughHistory(f"{spec.task}: no usable training cutoff: {grid.shortfall()}")
    log(f"{spec.task}: {len(grid.cutoffs)} training cutoff(s) every {spec.cutoff_step} days from "
        f"{grid.cutoffs[0].date()} to {grid.cutoffs[-1].date()} (data from {grid.first_event.date()}; "
        f"horizon {horizon} days)")
    for line in grid.describe():
        log(f"  {line}")
    cutoffs = list(grid.cutoffs)
    return CutoffPlan(tuple(cutoffs), spec.label, horizon, _resolve_point(cutoffs, horizon))


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
                         failure_kinds=spec.failure_kinds, progress=progress, float32_where_exact=True)
    catalogue = feature_catalogue(tables, plan.resolve_at, feature_set=resolved)
    return TrainingData(frame, catalogue, resolved, plan)


def holdout_rebuilder(
    tables: dict[str, pd.DataFrame], spec: ModelSpec, plan: CutoffPlan
) -> Callable[..., pd.DataFrame]:
    """A function building held-out rows under another feature set (given as a dict).

    The champion may have been trained on another feature set: its columns are rebuilt for
    the same held-out customers so both models are judged on identical rows and labels.
    ``rebuild(feature_set, cutoffs=None)`` builds `cutoffs` (default: the newest cutoff).
    """
    from churnguard.labels import training_set

    def rebuild(feature_set: dict[str, Any], cutoffs=None) -> pd.DataFrame:
        when = list(cutoffs) if cutoffs is not None else [plan.holdout]
        return training_set(tables, when, task=spec.task, horizon_days=spec.horizon_days,
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
