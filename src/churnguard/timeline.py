"""Point-in-time rules shared by every path: what `as_of` means.

Features at `as_of` use events strictly before it; labels use ``[as_of, as_of +
horizon)``. Every entry point (the CLI, the Python API, Spark) turns the caller's
`as_of` into one kind of value with :func:`coerce_as_of`, so the same date means the
same instant everywhere.
"""

from __future__ import annotations

import datetime as _dt

import pandas as pd

__all__ = ["coerce_as_of"]


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
