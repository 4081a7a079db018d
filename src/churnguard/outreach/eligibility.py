"""Who each task's model scores at `as_of`, and a fast membership test over ids."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from churnguard.timeline import installed_owners

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
    return pd.Index(members).unique().get_indexer(pd.Index(values)) >= 0


def scored_customers(task: str, tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.Index | None:
    """Customers a task's model was trained to score; None = the whole population.

    The maintenance model learns from owners of a product installed before `as_of`
    (the label's population, :func:`churnguard.timeline.installed_owners`): a customer
    without one has no maintenance risk to predict, and the model's answer for them
    would be an extrapolation. Without an ``assets`` table nobody is told apart.

    Examples
    --------
    >>> assets = pd.DataFrame({"customer_id": ["a", "b"],
    ...                        "install_date": pd.to_datetime(["2023-01-01", "2024-06-01"])})
    >>> list(scored_customers("maintenance", {"assets": assets}, pd.Timestamp("2024-03-01")))
    ['a']
    >>> scored_customers("churn", {"assets": assets}, pd.Timestamp("2024-03-01")) is None
    True
    """
    if task != "maintenance" or tables.get("assets") is None:
        return None
    return installed_owners(tables["assets"], as_of)
