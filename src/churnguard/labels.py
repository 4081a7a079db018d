"""Labels in [as_of, as_of + horizon), label cutoffs, and stacked training sets.

Features at a cutoff use only events before it; labels use only events in
``[cutoff, cutoff + horizon)``. A cutoff is usable only once its whole label window
has been observed, so :func:`label_cutoffs` never returns one whose window runs past
the end of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnguard.config import FeatureSet
from churnguard.features import build_features, resolve_feature_set
from churnguard.memory import release_free_memory
from churnguard.timeline import churn_definition, coerce_as_of, in_horizon, population, task_population

CHURN_DEFINITIONS = ("auto", "contractual", "inactivity", "supplied")
MAINTENANCE_DEFINITIONS = ("auto", "service", "supplied")
EVENT_TABLES = ("interactions", "purchases", "service_events", "usage")


def _series(ids: pd.Index, values, task: str) -> pd.Series:
    return pd.Series(np.asarray(values, dtype="int64"), index=pd.Index(ids, dtype="str", name="customer_id"),
                     name=task)


def _supplied(tables, as_of, task, eligible: pd.Index) -> pd.Series:
    labels = tables.get("labels")
    if labels is None or task not in labels:
        raise ValueError(f"definition 'supplied' needs a labels table with a {task!r} column")
    rows = labels[(labels["as_of"] == as_of) & labels[task].notna()].drop_duplicates("customer_id", keep="last")
    rows = rows[rows["customer_id"].isin(eligible)].sort_values("customer_id")
    return _series(pd.Index(rows["customer_id"]), rows[task].astype("int64"), task)


def _has_supplied(tables, task: str) -> bool:
    labels = tables.get("labels")
    return labels is not None and task in labels and bool(labels[task].notna().any())


def label_tables_problem(tables: dict[str, pd.DataFrame], task: str, *, definition: str = "auto") -> str | None:
    """Why `tables` cannot give `task` labels under `definition`, in words; None when they can.

    A caller checks this before building a training set, so a missing table is named
    up front instead of surfacing from deep inside training. Supplied labels (a
    ``labels`` table with a `task` column) serve any definition but ``contractual``,
    as in training.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a"]})
    >>> label_tables_problem({"customers": customers}, "maintenance")
    'maintenance labels need an assets table (assets.csv or assets.parquet: which customer owns which product) or a labels table with a maintenance column'
    >>> label_tables_problem({"customers": customers, "purchases": pd.DataFrame()}, "churn") is None
    True
    """
    if task not in ("churn", "maintenance"):
        return f"task must be 'churn' or 'maintenance', got {task!r}"
    if _has_supplied(tables, task) and definition != "contractual":
        return None
    if definition == "supplied":
        return f"label definition 'supplied' needs a labels table with a {task} column"
    if task == "maintenance":
        if tables.get("assets") is None:
            return ("maintenance labels need an assets table (assets.csv or assets.parquet: which customer owns "
                    "which product) or a labels table with a maintenance column")
        return None
    if churn_definition(tables, definition) == "inactivity" and tables.get("purchases") is None:
        return ("inactivity churn labels need a purchases table (no purchase within the horizon is churn), "
                "or customers.churn_date filled for contractual churn, or a labels table with a churn column")
    return None


def make_labels(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    task: str,
    horizon_days: int = 90,
    lookback_days: int = 365,
    definition: str = "auto",
    failure_kinds: Sequence[str] = ("repair", "failure"),
) -> pd.Series:
    """0/1 labels for the customers eligible for `task` at `as_of`.

    Parameters
    ----------
    task : {"churn", "maintenance"}
    horizon_days : int, default=90
        Label window ``[as_of, as_of + horizon_days)``.
    lookback_days : int, default=365
        Inactivity churn: only customers with a purchase in ``[as_of - lookback, as_of)``
        are eligible.
    definition : str, default="auto"
        churn: ``contractual`` (``churn_date`` in the window; population per
        :func:`churnguard.features.population`), ``inactivity`` (no purchase in the
        window), ``auto`` (contractual if any ``churn_date`` is filled) or ``supplied``
        (the ``labels`` table rows with this ``as_of``). maintenance: ``service`` (alias
        ``auto``: a service event of a failure kind on any of the customer's assets in
        the window; eligible are customers owning an asset installed before as_of) or
        ``supplied``.
    failure_kinds : sequence of str, default=("repair", "failure")

    Returns
    -------
    Series
        Index ``customer_id`` (sorted, a subset of the population), int 0/1, name `task`.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
    ...                           "churn_date": pd.to_datetime(["2024-03-31", "2024-04-01", None])})
    >>> make_labels({"customers": customers}, pd.Timestamp("2024-01-01"), task="churn", horizon_days=91)
    customer_id
    a    1
    b    0
    c    0
    Name: churn, dtype: int64
    """
    as_of = coerce_as_of(as_of)
    eligible = population(tables, as_of)
    if task == "churn":
        definition = churn_definition(tables, definition)
        if definition not in CHURN_DEFINITIONS:
            raise ValueError(f"churn label definition must be one of {CHURN_DEFINITIONS}, got {definition!r}")
        if definition == "supplied":
            return _supplied(tables, as_of, task, eligible)
        if definition == "contractual":
            customers = tables["customers"].drop_duplicates("customer_id").set_index("customer_id")
            churn_date = customers["churn_date"].reindex(eligible)
            return _series(eligible, in_horizon(churn_date, as_of, horizon_days).fillna(False), task)
        purchases = tables.get("purchases")
        if purchases is None:
            raise ValueError("inactivity churn needs a purchases table (or customers.churn_date, or supplied labels)")
        bought = purchases if "is_return" not in purchases else purchases[~purchases["is_return"].fillna(False)]
        active = task_population(tables, as_of, "churn", definition="inactivity", lookback_days=lookback_days)
        kept = bought.loc[in_horizon(bought["timestamp"], as_of, horizon_days), "customer_id"]
        return _series(active, ~active.isin(kept), task)
    if task == "maintenance":
        if definition not in MAINTENANCE_DEFINITIONS:
            raise ValueError(f"maintenance label definition must be one of {MAINTENANCE_DEFINITIONS}, "
                             f"got {definition!r}")
        if definition == "supplied":
            return _supplied(tables, as_of, task, eligible)
        assets = tables.get("assets")
        if assets is None:
            raise ValueError("maintenance labels need an assets table (or supplied labels)")
        owners = task_population(tables, as_of, "maintenance")
        events = tables.get("service_events")
        if events is None:
            return _series(owners, np.zeros(len(owners)), task)
        failed = events[in_horizon(events["timestamp"], as_of, horizon_days) & events["kind"].isin(list(failure_kinds))]
        failed_customers = assets.loc[assets["asset_id"].isin(failed["asset_id"]), "customer_id"]
        return _series(owners, owners.isin(failed_customers), task)
    raise ValueError(f"task must be 'churn' or 'maintenance', got {task!r}")


def data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The day after the latest timestamp in the data: the default "today" for cutoffs.

    Event timestamps count, and so do the customers' signup and churn dates.

    Examples
    --------
    >>> purchases = pd.DataFrame({"timestamp": pd.to_datetime(["2024-03-31 18:00", "2024-01-02 00:00"])})
    >>> data_end({"customers": pd.DataFrame({"customer_id": ["a"]}), "purchases": purchases})
    Timestamp('2024-04-01 00:00:00')
    """
    latest = []
    for name in EVENT_TABLES:
        if tables.get(name) is not None and len(tables[name]):
            latest.append(tables[name]["timestamp"].max())
    for column in ("signup_date", "churn_date"):
        if column in tables["customers"]:
            latest.append(tables["customers"][column].max())
    latest = [t for t in latest if pd.notna(t)]
    if not latest:
        raise ValueError("no timestamps in the data: cannot place label cutoffs")
    return pd.Timestamp(max(latest)).normalize() + pd.Timedelta(days=1)


def label_cutoffs(
    tables: dict[str, pd.DataFrame],
    *,
    n_cutoffs: int,
    horizon_days: int,
    as_of: pd.Timestamp | None = None,
    freq: str = "MS",
    definition: str = "auto",
) -> list[pd.Timestamp]:
    """The newest `n_cutoffs` cutoffs whose label window ends on or before `as_of`, oldest first.

    Parameters
    ----------
    n_cutoffs : int
    horizon_days : int
        A cutoff ``c`` is usable when ``c + horizon_days <= as_of``.
    as_of : Timestamp, optional
        "Today"; default the day after the latest timestamp in the data (:func:`data_end`).
    freq : str, default="MS"
        pandas frequency of the cutoff grid (month starts).
    definition : str, default="auto"
        ``"supplied"``: the distinct ``as_of`` values of the labels table (on or before
        `as_of` when given) instead of a grid.

    Examples
    --------
    >>> purchases = pd.DataFrame({"timestamp": pd.to_datetime(["2023-06-15", "2024-06-14"])})
    >>> tables = {"customers": pd.DataFrame({"customer_id": ["a"]}), "purchases": purchases}
    >>> [c.date().isoformat() for c in label_cutoffs(tables, n_cutoffs=3, horizon_days=90)]
    ['2024-01-01', '2024-02-01', '2024-03-01']
    """
    if definition == "supplied":
        values = pd.Series(tables["labels"]["as_of"].dropna().unique()).sort_values()
        if as_of is not None:
            values = values[values <= coerce_as_of(as_of)]
        return [pd.Timestamp(v) for v in values.iloc[-n_cutoffs:]]
    end = coerce_as_of(as_of) if as_of is not None else data_end(tables)
    last = end - pd.Timedelta(days=horizon_days)
    start = last - pd.DateOffset(months=n_cutoffs + 1) - pd.Timedelta(days=366)
    grid = pd.date_range(start.normalize(), last, freq=freq)
    return [pd.Timestamp(c) for c in grid[grid <= last][-n_cutoffs:]]


def data_start(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The earliest event timestamp in the data (signup dates when there are no events).

    Examples
    --------
    >>> purchases = pd.DataFrame({"timestamp": pd.to_datetime(["2024-03-31 18:00", "2024-01-02 09:00"])})
    >>> data_start({"customers": pd.DataFrame({"customer_id": ["a"]}), "purchases": purchases})
    Timestamp('2024-01-02 09:00:00')
    """
    earliest = [tables[name]["timestamp"].min() for name in EVENT_TABLES
                if tables.get(name) is not None and len(tables[name])]
    if not any(pd.notna(t) for t in earliest) and "signup_date" in tables["customers"]:
        earliest = [tables["customers"]["signup_date"].min()]
    earliest = [t for t in earliest if pd.notna(t)]
    if not earliest:
        raise ValueError("no timestamps in the data: cannot place label cutoffs")
    return pd.Timestamp(min(earliest))


@dataclass(frozen=True)
class UsableCutoffs:
    """The training cutoffs read from the data, oldest first, with what each holds.

    Attributes
    ----------
    cutoffs : tuple of Timestamp
        Usable cutoffs, oldest first; the newest is ``end - horizon`` when it is usable.
    population, positives : tuple of int
        Labelled customers and positives at each cutoff.
    skipped : tuple of (Timestamp, str)
        Cutoffs of the grid left out, and why (empty population, a single class).
    first_event, end : Timestamp
        Where the data begins, and "today" (the end of the newest label window).
    min_history_days, step_days, horizon_days : int
    """

    cutoffs: tuple[pd.Timestamp, ...]
    population: tuple[int, ...]
    positives: tuple[int, ...]
    skipped: tuple[tuple[pd.Timestamp, str], ...]
    first_event: pd.Timestamp
    end: pd.Timestamp
    min_history_days: int
    step_days: int
    horizon_days: int

    def describe(self) -> list[str]:
        """One line per planned cutoff, for the training log.

        Examples
        --------
        >>> plan = UsableCutoffs((pd.Timestamp("2024-01-01"),), (120,), (9,), (), pd.Timestamp("2023-06-01"),
        ...                   pd.Timestamp("2024-04-01"), 30, 30, 91)
        >>> plan.describe()
        ['cutoff 2024-01-01: 120 customers, 9 positive (7.5%)']
        """
        return [f"cutoff {c.date()}: {n:,} customers, {k:,} positive ({k / n:.1%})"
                for c, n, k in zip(self.cutoffs, self.population, self.positives)]

    def shortfall(self) -> str:
        """What is missing for even one usable cutoff, in words (empty when nothing is)."""
        span = (self.end - self.first_event).days
        needed = self.min_history_days + self.horizon_days
        if span < needed:
            return (f"the data covers {span} days ({self.first_event.date()} .. {self.end.date()}); a cutoff needs "
                    f"{self.min_history_days} days of history before it and a complete {self.horizon_days}-day "
                    f"label window after it, {needed} days in all: {needed - span} more days of history, "
                    "or a shorter --horizon")
        if self.skipped and not self.cutoffs:
            why = "; ".join(f"{c.date()}: {reason}" for c, reason in self.skipped[:3])
            return f"no cutoff holds both classes ({why}): more customers or a longer history are needed"
        return ""


def usable_cutoffs(
    tables: dict[str, pd.DataFrame],
    *,
    task: str,
    horizon_days: int,
    n_cutoffs: int,
    step_days: int = 30,
    min_history_days: int = 30,
    as_of: pd.Timestamp | None = None,
    lookback_days: int = 365,
    definition: str = "auto",
    failure_kinds: Sequence[str] = ("repair", "failure"),
) -> UsableCutoffs:
    """Training cutoffs from where the data begins to the newest complete label window.

    The newest cutoff is ``as_of - horizon_days`` (default `as_of`: the day after the
    last event, :func:`data_end`); earlier ones step back `step_days` at a time, up to
    `n_cutoffs` of them, never earlier than the first event plus `min_history_days`
    (features need some history behind them), and never one whose population or either
    class is empty.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": list("abcdef"),
    ...     "churn_date": pd.to_datetime(["2024-02-10", "2024-03-20", None, "2024-04-25", None, None])})
    >>> usage = pd.DataFrame({"customer_id": list("abcdef"), "event": "login",
    ...                       "timestamp": pd.to_datetime(["2024-01-01"] * 6)})
    >>> plan = usable_cutoffs({"customers": customers, "usage": usage}, task="churn", horizon_days=30,
    ...                     n_cutoffs=5, step_days=30, as_of=pd.Timestamp("2024-05-01"))
    >>> [c.date().isoformat() for c in plan.cutoffs], plan.positives
    (['2024-02-01', '2024-03-02', '2024-04-01'], (1, 1, 1))
    >>> plan.skipped[0][0].date().isoformat(), plan.skipped[0][1]
    ('2024-01-02', 'before the first event + 30 days of history')
    """
    if step_days <= 0:
        raise ValueError(f"step_days must be positive, got {step_days}")
    end = pd.Timestamp(as_of).normalize() if as_of is not None else data_end(tables)
    first = data_start(tables)
    earliest = first + pd.Timedelta(days=min_history_days)
    newest = end - pd.Timedelta(days=horizon_days)
    kept: list[tuple[pd.Timestamp, int, int]] = []
    skipped: list[tuple[pd.Timestamp, str]] = []
    cutoff = newest
    while len(kept) < n_cutoffs:
        if cutoff < earliest:
            skipped.append((cutoff, f"before the first event + {min_history_days} days of history"))
            break
        labels = make_labels(tables, cutoff, task=task, horizon_days=horizon_days, lookback_days=lookback_days,
                             definition=definition, failure_kinds=failure_kinds)
        n, k = len(labels), int(labels.sum())
        if n == 0:
            skipped.append((cutoff, "no customer in the label population"))
        elif k == 0 or k == n:
            skipped.append((cutoff, f"a single class ({k} of {n} positive)"))
        else:
            kept.append((cutoff, n, k))
        cutoff = cutoff - pd.Timedelta(days=step_days)
    kept.reverse()
    return UsableCutoffs(
        cutoffs=tuple(c for c, _, _ in kept), population=tuple(n for _, n, _ in kept),
        positives=tuple(k for _, _, k in kept), skipped=tuple(skipped), first_event=first, end=end,
        min_history_days=min_history_days, step_days=step_days, horizon_days=horizon_days,
    )


def training_set(
    tables: dict[str, pd.DataFrame],
    cutoffs: Sequence[pd.Timestamp],
    *,
    task: str,
    horizon_days: int = 90,
    lookback_days: int = 365,
    definition: str = "auto",
    feature_set: FeatureSet | None = None,
    failure_kinds: Sequence[str] = ("repair", "failure"),
    progress: bool = False,
    float32_where_exact: bool = False,
) -> pd.DataFrame:
    """Features and labels stacked over `cutoffs`: one row per eligible customer and cutoff.

    The feature set is resolved once, at the newest cutoff, and reused for every
    cutoff, so all rows share the same columns (and scoring can rebuild them).
    With `float32_where_exact`, a float64 column every value of which is a float32
    exactly (counts, days, flags: most features) is stacked as float32: the same
    numbers in half the memory.

    Returns
    -------
    DataFrame
        ``customer_id, cutoff, <features>..., label``, sorted by cutoff then customer.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b"],
    ...                           "churn_date": pd.to_datetime(["2024-02-10", None])})
    >>> cutoffs = [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]
    >>> ts = training_set({"customers": customers}, cutoffs, task="churn", horizon_days=30)
    >>> ts[["customer_id", "cutoff", "label"]]
      customer_id     cutoff  label
    0           a 2024-01-01      0
    1           b 2024-01-01      0
    2           a 2024-02-01      1
    3           b 2024-02-01      0
    """
    cutoffs = sorted(coerce_as_of(c) for c in cutoffs)
    if not cutoffs:
        raise ValueError("training_set needs at least one cutoff")
    feature_set = resolve_feature_set(tables, cutoffs[-1], feature_set)
    iterator = cutoffs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(cutoffs, desc=f"training set ({task})", unit="cutoff")
    # Labels first (cheap): they fix every cutoff's row count, so the stacked frame is
    # allocated once and each cutoff's features are copied in and dropped. Peak memory is
    # the stacked frame plus one cutoff's build, not every cutoff's frame plus their concat.
    labels_at = {}
    for cutoff in cutoffs:
        labels = make_labels(tables, cutoff, task=task, horizon_days=horizon_days, lookback_days=lookback_days,
                             definition=definition, failure_kinds=failure_kinds)
        labels_at[cutoff] = labels[labels.index.isin(population(tables, cutoff))]
    total = sum(len(labels) for labels in labels_at.values())
    stacked: _Stacked | None = None
    for cutoff in iterator:
        labels = labels_at[cutoff]
        features = build_features(tables, cutoff, feature_set=feature_set)
        rows = features[features["customer_id"].isin(labels.index)].reset_index(drop=True)
        del features
        rows.insert(1, "cutoff", cutoff)
        rows["label"] = labels.reindex(pd.Index(rows["customer_id"])).to_numpy()
        stacked = stacked or _Stacked(rows, total, float32_where_exact=float32_where_exact)
        stacked.add(rows)
        del rows
        # The next cutoff's build then reuses pages given back, not ones kept from this one.
        release_free_memory()
    out = stacked.frame()
    out["cutoff"] = out["cutoff"].astype("datetime64[us]")
    return out


class _Stacked:
    """Columns of a frame of known length, filled one block of rows at a time (a concat without the copy)."""

    def __init__(self, first: pd.DataFrame, n_rows: int, *, float32_where_exact: bool = False):
        self.n, self.at = n_rows, 0
        self.columns: dict[str, np.ndarray] = {}
        self.categories: dict[str, pd.CategoricalDtype] = {}
        for name in first.columns:
            column = first[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                self.categories[name] = column.dtype
                self.columns[name] = np.empty(n_rows, dtype=column.cat.codes.dtype)
            elif float32_where_exact and column.dtype == np.float64:
                # Widened to float64 by `add` at the first value float32 cannot hold.
                self.columns[name] = np.empty(n_rows, dtype=np.float32)
            elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiubM":
                self.columns[name] = np.empty(n_rows, dtype=column.dtype)
            else:
                self.columns[name] = np.empty(n_rows, dtype=object)
        self.dtypes = first.dtypes

    def add(self, rows: pd.DataFrame) -> None:
        end = self.at + len(rows)
        for name, target in self.columns.items():
            column = rows[name]
            if name in self.categories:
                if column.dtype != self.categories[name]:
                    raise ValueError(f"{name}: categories differ between cutoffs")
                target[self.at:end] = column.cat.codes.to_numpy()
            elif target.dtype == np.float32:
                values = column.to_numpy(dtype=np.float64)
                narrow = values.astype(np.float32)
                if np.array_equal(narrow, values, equal_nan=True):
                    target[self.at:end] = narrow
                else:
                    self.columns[name] = target = target.astype(np.float64)
                    target[self.at:end] = values
            else:
                target[self.at:end] = column.to_numpy(dtype=target.dtype)
        self.at = end

    def frame(self) -> pd.DataFrame:
        if self.at != self.n:
            raise RuntimeError(f"stacked {self.at} rows, expected {self.n}")
        out = {}
        for name, values in self.columns.items():
            if name in self.categories:
                out[name] = pd.Categorical.from_codes(values, dtype=self.categories[name])
            elif values.dtype.kind in "fiubM":
                out[name] = values
            else:
                out[name] = pd.array(values, dtype=self.dtypes[name])
        return pd.DataFrame(out, copy=False)


__all__ = [
    "UsableCutoffs", "churn_definition", "data_end", "data_start", "label_cutoffs", "label_tables_problem",
    "make_labels", "usable_cutoffs", "training_set",
]
