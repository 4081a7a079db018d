"""Does `as_of` fit the data? A date far past the newest event, or before most events.

Both are legal (a back-test scores an old date; a quiet week has few events) but both
are also what a wrong date or a stale export look like: ``--as-of 2030-01-01`` scores
every customer as if nobody had been heard from in years, and an export that stopped
three weeks ago ranks every customer as lapsing. The checks return sentences for the
caller to print as warnings (or, for a strict job, to refuse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

# pandas is imported where it is used: the CLI reads STALE_AFTER_DAYS before any command runs.
if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STALE_AFTER_DAYS", "as_of_warnings", "newest_event"]

STALE_AFTER_DAYS = 7
# Event tables, with their time column: what "the data" means for these checks.
_EVENT_TIMES = {"interactions": "timestamp", "purchases": "timestamp", "service_events": "timestamp",
                "usage": "timestamp"}


def newest_event(tables: Mapping[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The latest event timestamp in the event tables (None when there are none).

    Examples
    --------
    >>> import pandas as pd
    >>> purchases = pd.DataFrame({"timestamp": pd.to_datetime(["2024-03-31 18:00", "2024-01-02 00:00"])})
    >>> newest_event({"purchases": purchases})
    Timestamp('2024-03-31 18:00:00')
    >>> newest_event({"customers": pd.DataFrame({"customer_id": ["a"]})}) is None
    True
    """
    import pandas as pd

    latest = [_stats(tables[name], column)[1] for name, column in _EVENT_TIMES.items()
              if tables.get(name) is not None and column in tables[name] and len(tables[name])]
    latest = [t for t in latest if pd.notna(t)]
    return pd.Timestamp(max(latest)) if latest else None


def _stats(frame, column: str, as_of=None) -> tuple:
    """(min, max, non-null count, count at or after `as_of`) of a time column, pandas or DuckDB-backed."""
    import numpy as np

    if hasattr(frame, "column_stats"):  # a table kept in DuckDB over its file: one scan, nothing loaded
        return frame.column_stats(column, as_of)
    ts = frame[column]
    later = int(np.count_nonzero((ts >= as_of).to_numpy())) if as_of is not None else 0
    return ts.min(), ts.max(), int(ts.notna().sum()), later


def _share_at_or_after(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> tuple[float, pd.Timestamp | None]:
    import pandas as pd

    later = total = 0
    oldest = None
    for name, column in _EVENT_TIMES.items():
        frame = tables.get(name)
        if frame is None or column not in frame or not len(frame):
            continue
        first, _, n, n_later = _stats(frame, column, as_of)
        later += n_later
        total += n
        if pd.notna(first) and (oldest is None or first < oldest):
            oldest = pd.Timestamp(first)
    return (later / total if total else 0.0), oldest


def _when(ts: pd.Timestamp) -> str:
    return str(ts.date()) if ts == ts.normalize() else ts.isoformat(sep=" ")


def as_of_warnings(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    stale_after_days: int = STALE_AFTER_DAYS,
) -> list[str]:
    """Sentences saying why `as_of` looks wrong for these tables (empty when it fits).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Validated tables (timestamps tz-naive UTC).
    as_of : Timestamp
        The cut-off the caller is about to use.
    stale_after_days : int, default=7
        Warn when `as_of` is more than this many days after the newest event.

    Examples
    --------
    >>> import pandas as pd
    >>> purchases = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", "2024-03-31", freq="D")})
    >>> as_of_warnings({"purchases": purchases}, pd.Timestamp("2024-04-01"))
    []
    >>> as_of_warnings({"purchases": purchases}, pd.Timestamp("2024-04-30"))
    ['2024-04-30 is 30 days after the newest event in the data (2024-03-31): is the export stale or the date wrong? (warns past 7 days)']
    >>> as_of_warnings({"purchases": purchases}, pd.Timestamp("2024-01-15"))
    ['2024-01-15 is before 85% of the events (data from 2024-01-01 to 2024-03-31): features use only the 15% before it']
    """
    import pandas as pd

    as_of = pd.Timestamp(as_of)
    newest = newest_event(tables)
    if newest is None:
        return []
    out = []
    gap = as_of - newest
    if gap > pd.Timedelta(days=stale_after_days):
        out.append(f"{_when(as_of)} is {gap.days:,} days after the newest event in the data ({_when(newest)}): "
                   f"is the export stale or the date wrong? (warns past {stale_after_days} days)")
    share, oldest = _share_at_or_after(tables, as_of)
    if share > 0.5:
        out.append(f"{_when(as_of)} is before {share:.0%} of the events (data from {_when(oldest)} to "
                   f"{_when(newest)}): features use only the {1 - share:.0%} before it")
    return out
