"""Point-in-time rules shared by every path: what `as_of` means.

Features at `as_of` use events strictly before it; labels use ``[as_of, as_of +
horizon)``. Every entry point (the CLI, the Python API, Spark) turns the caller's
`as_of` into one kind of value with :func:`coerce_as_of`, so the same date means the
same instant everywhere. Who is in the population at `as_of` (for features, labels
and scoring alike) and the windows that look back from it (the outreach cooldowns)
are decided here once.
"""

from __future__ import annotations

import datetime as _dt

import pandas as pd

__all__ = [
    "churn_definition",
    "coerce_as_of",
    "in_horizon",
    "in_lookback",
    "installed_owners",
    "population",
    "recent_buyers",
    "task_population",
]


def coerce_as_of(value) -> pd.Timestamp:
    """`value` as a tz-naive timestamp holding UTC (the tables' own convention).

    A time-zone-aware value is converted to UTC first; a naive one is taken as UTC.

    Parameters
    ----------
    value : str, date, datetime or Timestamp
        ISO 8601 text (``"2024-03-01"``, ``"2024-03-01T00:00:00+01:00"``) or a date value.

    Examples
    --------
    >>> coerce_as_of("2024-03-01")
    Timestamp('2024-03-01 00:00:00')
    >>> coerce_as_of("2024-03-01T01:00:00+01:00")
    Timestamp('2024-03-01 00:00:00')
    >>> coerce_as_of(pd.Timestamp("2024-03-01", tz="America/New_York"))
    Timestamp('2024-03-01 05:00:00')
    """
    if value is None:
        raise ValueError("as_of is required")
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        raise ValueError(f"as_of is not a date: {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def population(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.Index:
    """Customers in the population at `as_of`, sorted by ``customer_id``.

    A customer is in the population if they signed up before `as_of` (or the signup
    date is unknown) and had not churned before it (``churn_date`` empty or on or
    after `as_of`).

    Examples
    --------
    >>> customers = pd.DataFrame({
    ...     "customer_id": ["c", "a", "b", "d"],
    ...     "signup_date": pd.to_datetime(["2023-01-01", None, "2024-03-01", "2023-01-01"]),
    ...     "churn_date": pd.to_datetime([None, None, None, "2024-01-15"]),
    ... })
    >>> list(population({"customers": customers}, pd.Timestamp("2024-02-01")))
    ['a', 'c']
    """
    customers = tables["customers"]
    keep = pd.Series(True, index=customers.index)
    if "signup_date" in customers:
        keep &= customers["signup_date"].isna() | (customers["signup_date"] < as_of)
    if "churn_date" in customers:
        keep &= customers["churn_date"].isna() | (customers["churn_date"] >= as_of)
    ids = customers.loc[keep, "customer_id"].astype("str").drop_duplicates().sort_values()
    return pd.Index(ids.to_numpy(), dtype="str", name="customer_id")


def installed_owners(assets: pd.DataFrame, as_of: pd.Timestamp) -> pd.Index:
    """Customers owning a product installed before `as_of` (unknown install dates count).

    The maintenance task's population: a product installed on or after `as_of` is not
    there yet, and a customer without one has no maintenance risk. Order of first
    appearance, not sorted.

    Examples
    --------
    >>> assets = pd.DataFrame({"customer_id": ["b", "a", "c", "b"],
    ...                        "install_date": pd.to_datetime(["2023-01-01", None, "2024-03-01", "2023-06-01"])})
    >>> list(installed_owners(assets, pd.Timestamp("2024-03-01")))
    ['b', 'a']
    """
    if "install_date" in assets:
        installed = assets["install_date"].isna() | (assets["install_date"] < as_of)
        return pd.Index(assets.loc[installed, "customer_id"].unique())
    return pd.Index(assets["customer_id"].unique())


def churn_definition(tables: dict[str, pd.DataFrame], definition: str = "auto") -> str:
    """Which churn label applies: contractual when ``customers.churn_date`` holds a date, else inactivity.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a"], "churn_date": pd.to_datetime([None])})
    >>> churn_definition({"customers": customers})
    'inactivity'
    """
    if definition != "auto":
        return definition
    churn_date = tables["customers"].get("churn_date")
    return "contractual" if churn_date is not None and churn_date.notna().any() else "inactivity"


def recent_buyers(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, lookback_days: int) -> pd.Index:
    """Customers with a purchase (not a return) in ``[as_of - lookback_days, as_of)``.

    Examples
    --------
    >>> purchases = pd.DataFrame({"customer_id": ["a", "b"], "amount": [5.0, 9.0],
    ...                           "timestamp": pd.to_datetime(["2024-02-20", "2023-01-01"])})
    >>> list(recent_buyers({"purchases": purchases}, pd.Timestamp("2024-03-01"), 365))
    ['a']
    """
    purchases = tables.get("purchases")
    if purchases is None:
        return pd.Index([], dtype="str", name="customer_id")
    if "is_return" in purchases:
        purchases = purchases[~purchases["is_return"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    recent = in_lookback(purchases["timestamp"], as_of, lookback_days)
    return pd.Index(purchases.loc[recent, "customer_id"].astype("str").unique(), name="customer_id")


def task_population(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    task: str,
    *,
    definition: str = "auto",
    lookback_days: int = 365,
) -> pd.Index:
    """The customers a `task`'s labels and model are about at `as_of`, sorted.

    The one definition that training's labels and scoring's eligibility share:

    * ``churn``, contractual (``customers.churn_date`` in use) or supplied labels: the
      :func:`population`;
    * ``churn``, inactivity: the population's customers with a purchase in the
      `lookback_days` before `as_of` (:func:`recent_buyers`): one who never bought, or
      lapsed long ago, cannot "stop buying" within the horizon;
    * ``maintenance``: the population's owners of a product installed before `as_of`
      (:func:`installed_owners`); it needs an ``assets`` table.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"]})
    >>> assets = pd.DataFrame({"customer_id": ["c", "a"],
    ...                        "install_date": pd.to_datetime(["2023-01-01", "2024-06-01"])})
    >>> list(task_population({"customers": customers, "assets": assets}, pd.Timestamp("2024-03-01"), "maintenance"))
    ['c']
    >>> purchases = pd.DataFrame({"customer_id": ["b"], "amount": [5.0], "timestamp": pd.to_datetime(["2024-01-01"])})
    >>> list(task_population({"customers": customers, "purchases": purchases}, pd.Timestamp("2024-03-01"), "churn"))
    ['b']
    """
    eligible = population(tables, as_of)
    if task == "churn":
        if churn_definition(tables, definition) != "inactivity":
            return eligible
        return eligible[eligible.isin(recent_buyers(tables, as_of, lookback_days))]
    if task == "maintenance":
        assets = tables.get("assets")
        if assets is None:
            raise ValueError("the maintenance population needs an assets table")
        return eligible[eligible.isin(installed_owners(assets, as_of))]
    raise ValueError(f"task must be 'churn' or 'maintenance', got {task!r}")


def in_lookback(timestamps: pd.Series, as_of: pd.Timestamp, days: int) -> pd.Series:
    """Whether each event falls in the `days` before `as_of`: ``[as_of - days, as_of)``.

    Events at or after `as_of` have not happened yet. The windows of the outreach
    rules (contact cooldown, open complaints) and the inactivity look-back use it.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2024-02-01", "2024-02-02", "2024-03-01"]))
    >>> in_lookback(ts, pd.Timestamp("2024-03-01"), 28).tolist()
    [False, True, False]
    """
    return (timestamps < as_of) & (timestamps >= as_of - pd.Timedelta(days=days))


def in_horizon(timestamps: pd.Series, as_of: pd.Timestamp, days: int) -> pd.Series:
    """Whether each event falls in a label window: ``[as_of, as_of + days)``.

    Half-open: an event at ``as_of + days`` belongs to the next cutoff's window.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2024-02-29", "2024-03-01", "2024-03-31"]))
    >>> in_horizon(ts, pd.Timestamp("2024-03-01"), 30).tolist()
    [False, True, False]
    """
    return (timestamps >= as_of) & (timestamps < as_of + pd.Timedelta(days=days))
