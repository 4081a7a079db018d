"""Features of a large population in chunks of customers, so memory is bounded by a chunk.

Over tables kept in DuckDB (`churnguard.relations`) a chunk is a filter on the views:
its customers' id range and the ids themselves. The range reaches the Parquet reader,
so a file kept in customer order (``churnguard generate`` writes one row group per
block of customers) is read about once over all chunks; a file in another order is
read once per chunk, which costs time, never memory. Every row of a chunk equals the
row of a build over the whole population (tested): no feature looks across customers;
only a float sum may differ in its last bit (within 1e-12), as DuckDB may meet a
customer's rows in another order behind a filter. The same chunk size gives the same
bytes on every run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd

from churnguard.config import FeatureSet
from churnguard.features import build_features, population, resolve_feature_set
from churnguard.features.engine import positions
from churnguard.relations import SqlTable
from churnguard.timeline import coerce_as_of

# Customers per chunk: a million rows of ~230 float64 features are ~1.8 GB in pandas,
# about what DuckDB's default share of this project's 24 GiB machine leaves free.
CHUNK_CUSTOMERS = 1_000_000


def subset_tables(tables: Mapping[str, object], ids: pd.Index) -> dict[str, object]:
    """The slice of every table that belongs to customers `ids`.

    Service events are kept by their asset's owner: in DuckDB they already carry it as
    ``customer_id``; a pandas frame keeps the events of the assets kept.

    Examples
    --------
    >>> tables = {"customers": pd.DataFrame({"customer_id": ["a", "b"]}),
    ...           "purchases": pd.DataFrame({"customer_id": ["a", "b", "b"], "amount": [1.0, 2.0, 3.0]})}
    >>> subset_tables(tables, pd.Index(["b"]))["purchases"]["amount"].tolist()
    [2.0, 3.0]
    """
    ids = pd.Index(ids)
    out: dict[str, object] = {}
    for name, table in tables.items():
        if isinstance(table, SqlTable):
            out[name] = table.for_customers(ids) if "customer_id" in table.columns else table
        elif table is not None and "customer_id" in table.columns and name != "service_events":
            out[name] = table[positions(table["customer_id"], ids) >= 0]
        else:
            out[name] = table
    events = tables.get("service_events")
    if events is not None and not isinstance(events, SqlTable) and out.get("assets") is not None:
        out["service_events"] = events[positions(events["asset_id"], pd.Index(out["assets"]["asset_id"])) >= 0]
    return out


def feature_chunks(
    tables: Mapping[str, object],
    as_of: pd.Timestamp,
    *,
    feature_set: FeatureSet | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> Iterator[pd.DataFrame]:
    """`churnguard.build_features` for the population at `as_of`, as frames of at most `chunk_size` customers.

    The feature set is resolved once over all the tables first, so every chunk has the
    same columns; chunks come in ``customer_id`` order, as the one frame's rows do.
    `chunk_size` defaults to `CHUNK_CUSTOMERS`.

    Examples
    --------
    >>> tables = {"customers": pd.DataFrame({"customer_id": ["a", "b", "c"]}),
    ...           "purchases": pd.DataFrame({"customer_id": ["a", "c", "c"], "amount": [1.0, 2.0, 3.0],
    ...                                      "timestamp": pd.to_datetime(["2024-01-01"] * 3)})}
    >>> [len(f) for f in feature_chunks(tables, pd.Timestamp("2024-02-01"), chunk_size=2)]
    [2, 1]
    """
    as_of = coerce_as_of(as_of)
    chunk_size = CHUNK_CUSTOMERS if chunk_size is None else chunk_size
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    feature_set = resolve_feature_set(tables, as_of, feature_set)
    customers = population(tables, as_of)
    if len(customers) <= chunk_size:
        yield build_features(tables, as_of, feature_set=feature_set, progress=progress)
        return
    for start in range(0, len(customers), chunk_size):
        chunk = customers[start:start + chunk_size]
        yield build_features(subset_tables(tables, chunk), as_of, feature_set=feature_set, progress=progress)


__all__ = ["CHUNK_CUSTOMERS", "feature_chunks", "subset_tables"]
