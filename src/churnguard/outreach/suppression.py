"""Who must not be contacted at `as_of`, and why.

Codes, in the order they are listed: ``do_not_contact``; ``contacted_recently`` (any
interaction in the ``rules.contact_cooldown_days`` before `as_of`); ``open_complaint``
(an unresolved complaint in the ``rules.open_complaint_days`` before `as_of`: care is
still handling it; older unresolved complaints are a reason to call, not to wait).
The windows are :func:`churnguard.timeline.in_lookback`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_outreach_rules  # noqa: F401 (the examples use it)
from churnguard.outreach.eligibility import member_mask
from churnguard.timeline import in_lookback

__all__ = ["suppression_reasons"]


def _flag(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def suppression_reasons(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None,
    ids: pd.Index,
    as_of: pd.Timestamp,
    rules: OutreachRules,
) -> pd.Series:
    """Why each customer must not be contacted: ``"; "``-joined codes, ``""`` if none.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
    ...                           "do_not_contact": pd.array([True, False, False], dtype="boolean")})
    >>> interactions = pd.DataFrame({"customer_id": ["b", "c"],
    ...     "timestamp": pd.to_datetime(["2024-02-25", "2023-06-01"]),
    ...     "is_complaint": pd.array([True, True], dtype="boolean"),
    ...     "resolved": pd.array([False, False], dtype="boolean")})
    >>> suppression_reasons(customers, interactions, pd.Index(["a", "b", "c"]),
    ...                     pd.Timestamp("2024-03-01"), load_outreach_rules()).tolist()
    ['do_not_contact', 'contacted_recently; open_complaint', '']
    """
    flags: dict[str, pd.Index] = {}
    if "do_not_contact" in customers.columns:
        flags["do_not_contact"] = pd.Index(customers.loc[_flag(customers["do_not_contact"]), "customer_id"])
    if interactions is not None and len(interactions):
        ts = interactions["timestamp"]
        recent = in_lookback(ts, as_of, rules.contact_cooldown_days)
        flags["contacted_recently"] = pd.Index(interactions.loc[recent, "customer_id"].unique())
        if rules.suppress_open_complaints and "is_complaint" in interactions and "resolved" in interactions:
            open_window = in_lookback(ts, as_of, rules.open_complaint_days).to_numpy(dtype=bool)
            mask = _flag(interactions["is_complaint"]) & ~_flag(interactions["resolved"]) & open_window
            flags["open_complaint"] = pd.Index(interactions.loc[mask, "customer_id"].unique())
    out = pd.Series("", index=pd.Index(ids, name="customer_id"), dtype=object)
    for code, who in flags.items():  # insertion order fixes the order of codes in the text
        hit = member_mask(out.index, who)
        out[hit] = np.where(out[hit] == "", code, out[hit] + "; " + code)
    return out
