"""Who each task's model scores at `as_of`, and a fast membership test over ids."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from churnguard.timeline import churn_definition, installed_owners, task_population

__all__ = ["member_mask", "scored_customers"]


def member_mask(values, members) -> np.ndarray:
    """``values.isin(members)`` as a boolean array, through a hash index.

    pandas' ``isin`` on Arrow-backed strings walks a large `members` in Python
    (seconds per million ids); an index look-up stays vectorised.

    Examples
    --------
    >>> member_mask(pd.Series(["a", "b", "c"]), ["c", "a", "a"]).tolist()
    [True, False, True]
    """
    # A unique Index keeps its hash table: a population asked about chunk after chunk is hashed once.
    if not (isinstance(members, pd.Index) and members.is_unique):
        members = pd.Index(members).unique()
    return members.get_indexer(pd.Index(values)) >= 0


def scored_customers(
    task: str,
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    definition: str | None = "auto",
    lookback_days: int | None = 365,
) -> pd.Index | None:
    """Customers a task's model was trained to score: its label population; None = everyone.

    The population comes from the one place that defines it for labels too,
    :func:`churnguard.timeline.task_population`, under the model's own label
    `definition` and `lookback_days` (``ModelArtifact.label``, ``.lookback_days``):
    inactivity churn scores the customers with a purchase in the look-back (one who
    never bought, or lapsed long ago, cannot "stop buying"), contractual churn the
    active customers, maintenance the owners of a product installed before `as_of`.
    A model's answer outside its population would be an extrapolation. None when the
    population is everyone (contractual churn) or cannot be told apart (no ``assets``
    table for maintenance).

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b"]})
    >>> assets = pd.DataFrame({"customer_id": ["a", "b"],
    ...                        "install_date": pd.to_datetime(["2023-01-01", "2024-06-01"])})
    >>> list(scored_customers("maintenance", {"customers": customers, "assets": assets}, pd.Timestamp("2024-03-01")))
    ['a']
    >>> purchases = pd.DataFrame({"customer_id": ["b"], "amount": [5.0], "timestamp": pd.to_datetime(["2024-01-01"])})
    >>> list(scored_customers("churn", {"customers": customers, "purchases": purchases}, pd.Timestamp("2024-03-01")))
    ['b']
    """
    if task == "maintenance":
        if tables.get("assets") is None:
            return None
        return installed_owners(tables["assets"], as_of)
    # Without a purchases table there is no inactivity population to tell apart (a model
    # given bare features, e.g.): everyone is scored.
    if tables.get("purchases") is None or churn_definition(dict(tables), definition or "auto") != "inactivity":
        return None
    return task_population(dict(tables), as_of, task, definition="inactivity", lookback_days=int(lookback_days or 365))
