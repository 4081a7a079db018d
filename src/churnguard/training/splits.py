"""Which rows train, validate and report: time splits over cutoffs, or a customer split.

The held-out cutoff plays "today": no row the model trains or early-stops on may have a
label window reaching past it, exactly as in production, where the newest usable label
window ends on the day the model is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Timestamp columns after which an event is "in the future" of a training as_of.
_EVENT_TIMES = {
    "interactions": "timestamp",
    "purchases": "timestamp",
    "service_events": "timestamp",
    "usage": "timestamp",
}


@dataclass(frozen=True)
class TimeSplit:
    """Cutoffs used for training, validation (early stopping, calibration) and the report."""

    train: tuple[pd.Timestamp, ...]
    valid: pd.Timestamp
    holdout: pd.Timestamp
    embargo: bool  # True when no train/valid label window overlaps the holdout's


def cut_tables(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Tables as they were known just before `as_of`: nothing stamped at or after it survives.

    Events at or after `as_of` are dropped; churn dates on or after it are cleared (the
    customer was still active that day); assets installed on or after it are dropped;
    supplied labels whose window would start at or after it are dropped.

    Examples
    --------
    >>> tables = {"customers": pd.DataFrame({"customer_id": ["a"],
    ...                                      "churn_date": pd.to_datetime(["2024-03-01"])}),
    ...           "purchases": pd.DataFrame({"customer_id": ["a", "a"], "amount": [1.0, 2.0],
    ...                                      "timestamp": pd.to_datetime(["2024-01-05", "2024-02-01"])})}
    >>> cut = cut_tables(tables, pd.Timestamp("2024-02-01"))
    >>> len(cut["purchases"]), cut["customers"]["churn_date"].isna().all()
    (1, np.True_)
    """
    as_of = pd.Timestamp(as_of)
    out = dict(tables)
    for name, column in _EVENT_TIMES.items():
        if out.get(name) is not None and column in out[name]:
            out[name] = out[name][out[name][column] < as_of]
    if out.get("customers") is not None and "churn_date" in out["customers"]:
        customers = out["customers"].copy()
        customers["churn_date"] = customers["churn_date"].where(customers["churn_date"] < as_of)
        out["customers"] = customers
    if out.get("assets") is not None and "install_date" in out["assets"]:
        installed = out["assets"]["install_date"]
        out["assets"] = out["assets"][installed.isna() | (installed < as_of)]
    if out.get("labels") is not None and "as_of" in out["labels"]:
        out["labels"] = out["labels"][out["labels"]["as_of"] < as_of]
    return out


class NotEnoughHistory(ValueError):
    """The data covers too short a period (or too few customers) to split it honestly."""


def time_split(cutoffs, *, horizon_days: int, n_train: int | None = None) -> TimeSplit:
    """Newest cutoff = holdout; newest cutoff whose label window ends by the holdout = valid.

    Training takes the cutoffs strictly older than the validation one (the newest
    `n_train` of them). Where too few cutoffs exist for that embargo, validation falls back
    to the next-newest cutoff and ``embargo`` is False.

    Examples
    --------
    >>> cutoffs = pd.date_range("2024-01-01", periods=8, freq="MS")
    >>> s = time_split(cutoffs, horizon_days=90)
    >>> s.holdout.date(), s.valid.date(), len(s.train), s.train[-1].date(), s.embargo
    (datetime.date(2024, 8, 1), datetime.date(2024, 5, 1), 4, datetime.date(2024, 4, 1), True)
    """
    cutoffs = sorted(pd.Timestamp(c) for c in set(cutoffs))
    if len(cutoffs) < 3:
        raise NotEnoughHistory(
            f"need at least 3 label cutoffs (train, validation, held-out), got {len(cutoffs)}: "
            "the data covers too short a period for this horizon"
        )
    holdout = cutoffs[-1]
    horizon = pd.Timedelta(days=horizon_days)
    clear = [c for c in cutoffs[:-1] if c + horizon <= holdout]
    embargo = bool(clear) and cutoffs.index(clear[-1]) >= 1
    valid = clear[-1] if embargo else cutoffs[-2]
    train = [c for c in cutoffs if c < valid]
    if n_train is not None:
        train = train[-n_train:]
    return TimeSplit(tuple(train), valid, holdout, embargo)


def stratified_split(
    y, *, shares: tuple[float, float, float] = (0.6, 0.2, 0.2), random_state: int = 1
) -> np.ndarray:
    """Assign each row to ``"train"``, ``"valid"`` or ``"test"``, keeping the label rate in each.

    For user-supplied labels that all share one as_of: no time to split on, so customers
    are split instead.

    Examples
    --------
    >>> parts = stratified_split(np.array([0] * 80 + [1] * 20))
    >>> {p: int((parts == p).sum()) for p in ("train", "valid", "test")}
    {'train': 60, 'valid': 20, 'test': 20}
    """
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    parts = np.empty(len(y), dtype=object)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        rng.shuffle(rows)
        n_train = int(round(shares[0] * len(rows)))
        n_valid = int(round(shares[1] * len(rows)))
        parts[rows[:n_train]] = "train"
        parts[rows[n_train : n_train + n_valid]] = "valid"
        parts[rows[n_train + n_valid :]] = "test"
    return parts


@dataclass(frozen=True)
class HoldOut:
    """Which rows trained, validated and reported, and how that was chosen, in words.

    Attributes
    ----------
    kind : {"time_embargo", "time", "grouped_customers"}
    description : str
        One sentence for the training log, the MLflow tags and the report.
    split : TimeSplit or None
        The time split, for the two out-of-time kinds.
    """

    kind: str
    description: str
    split: TimeSplit | None = None

    @classmethod
    def of_split(cls, split: TimeSplit) -> "HoldOut":
        """The out-of-time hold-out of a given time split, described in words.

        Examples
        --------
        >>> s = time_split(pd.date_range("2024-01-01", periods=8, freq="MS"), horizon_days=90)
        >>> HoldOut.of_split(s).kind
        'time_embargo'
        """
        last_train = split.train[-1].date() if split.train else None
        if split.embargo:
            return cls("time_embargo",
                       f"out-of-time hold-out with embargo: trained on cutoffs up to {last_train}, validated on "
                       f"{split.valid.date()}, reported on {split.holdout.date()}; no training or validation "
                       "label window overlaps the held-out one", split)
        return cls("time",
                   f"out-of-time hold-out without embargo (too little history for one): trained on cutoffs up to "
                   f"{last_train}, validated on {split.valid.date()}, reported on {split.holdout.date()}; their "
                   "label windows overlap, so the held-out score may be optimistic", split)


def _both_classes(labels: np.ndarray, parts: np.ndarray) -> bool:
    return all(len(np.unique(labels[parts == p])) == 2 for p in ("train", "valid", "test"))


def _time_parts(cutoff: pd.Series, split: TimeSplit) -> np.ndarray:
    parts = np.full(len(cutoff), "", dtype=object)
    parts[cutoff.isin(list(split.train)).to_numpy()] = "train"
    parts[(cutoff == split.valid).to_numpy()] = "valid"
    parts[(cutoff == split.holdout).to_numpy()] = "test"
    return parts


def grouped_split(
    customer_ids, labels, *, shares: tuple[float, float, float] = (0.6, 0.2, 0.2), random_state: int = 1
) -> np.ndarray:
    """``"train"``/``"valid"``/``"test"`` per row, whole customers at a time.

    Every row of one customer (one per cutoff) lands in the same part, so no customer
    is both learned from and reported on. Customers are drawn per class of their newest
    label, keeping the positive rate in each part.

    Examples
    --------
    >>> ids = np.array(["a", "a", "b", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
    >>> y = np.array([0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0])
    >>> parts = grouped_split(ids, y)
    >>> all(len(set(parts[ids == c])) == 1 for c in set(ids))
    True
    """
    ids = pd.Series(np.asarray(customer_ids, dtype=object))
    labels = np.asarray(labels)
    newest = pd.Series(labels).groupby(ids.to_numpy(), sort=True).last()
    customer_parts = pd.Series(stratified_split(newest.to_numpy(), shares=shares, random_state=random_state),
                               index=newest.index)
    return customer_parts.reindex(ids.to_numpy()).to_numpy(dtype=object)


def choose_hold_out(
    frame: pd.DataFrame, *, horizon_days: int, n_train: int | None = None, random_state: int = 1
) -> tuple[np.ndarray, HoldOut]:
    """The most honest evaluation the stacked training frame allows, and its row parts.

    In order: an out-of-time hold-out with an embargo (no training or validation label
    window overlaps the held-out one); an out-of-time hold-out without it; a hold-out of
    whole customers never seen in training (when the history is too short for time);
    otherwise :class:`NotEnoughHistory`, saying what is missing. Each needs
    both classes in its train, validation and held-out rows.

    Parameters
    ----------
    frame : DataFrame
        ``customer_id``, ``cutoff``, ``label`` (the output of :func:`churnguard.labels.training_set`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cutoffs = pd.date_range("2024-01-01", periods=8, freq="MS")
    >>> frame = pd.DataFrame({"customer_id": np.tile([f"c{i}" for i in range(50)], 8),
    ...                       "cutoff": np.repeat(cutoffs, 50), "label": rng.integers(0, 2, 400)})
    >>> parts, evaluation = choose_hold_out(frame, horizon_days=90)
    >>> evaluation.kind, int((parts == "test").sum())
    ('time_embargo', 50)
    >>> parts, evaluation = choose_hold_out(frame[frame["cutoff"] == cutoffs[-1]], horizon_days=90)
    >>> evaluation.kind
    'grouped_customers'
    """
    labels = frame["label"].to_numpy()
    cutoff = pd.to_datetime(frame["cutoff"])
    cutoffs = sorted(pd.Timestamp(c) for c in cutoff.unique())
    if len(cutoffs) >= 3:
        split = time_split(cutoffs, horizon_days=horizon_days, n_train=n_train)
        if split.embargo:
            parts = _time_parts(cutoff, split)
            if _both_classes(labels, parts):
                return parts, HoldOut.of_split(split)
        loose = TimeSplit(tuple(cutoffs[:-2][-n_train:] if n_train else cutoffs[:-2]), cutoffs[-2], cutoffs[-1], False)
        parts = _time_parts(cutoff, loose)
        if _both_classes(labels, parts):
            return parts, HoldOut.of_split(loose)
    parts = grouped_split(frame["customer_id"].to_numpy(), labels, random_state=random_state)
    if _both_classes(labels, parts):
        n_customers = frame["customer_id"].nunique()
        return parts, HoldOut(
            "grouped_customers",
            f"customer hold-out: {len(cutoffs)} cutoff(s) {cutoffs[0].date()} .. {cutoffs[-1].date()} are too few "
            f"to hold one out in time, so 20% of the {n_customers:,} customers (all their rows) are held out and "
            "never trained on; the score says how well the model ranks customers it has not seen, not how it "
            "holds up over time",
            None,
        )
    positives = int(labels.sum())
    raise NotEnoughHistory(
        f"{len(labels):,} labelled rows over {len(cutoffs)} cutoff(s) hold {positives:,} positive(s): too few to "
        "train, validate and report on both classes (at least 3 positives and 3 negatives, in different "
        "customers, are needed); give more history, more customers or a longer --horizon"
    )
