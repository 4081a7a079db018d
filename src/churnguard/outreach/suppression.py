"""Who must not be contacted at `as_of`, and why.

Codes, in the order they are listed: ``do_not_contact``; ``contacted_recently`` (any
interaction in the ``rules.contact_cooldown_days`` before `as_of`); ``open_complaint``
(an unresolved complaint in the ``rules.open_complaint_days`` before `as_of`: care is
still handling it; older unresolved complaints are a reason to call, not to wait);
``contact_frequency`` (a proactive contact in the ``outreach_log`` within the customer's
``contact_every_days``, default ``rules.contact_every_days``); ``quiet_day`` (`as_of`
is one of ``rules.quiet_weekdays`` or ``rules.quiet_dates``: nobody is called). The
windows are :func:`churnguard.timeline.in_lookback`. Customers outside the churn
model's population get :func:`lapse_reasons` (``lapsed (N days since last purchase)``,
``never_bought``) from the policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_outreach_rules  # noqa: F401 (the examples use it)
from churnguard.outreach.eligibility import member_mask
from churnguard.timeline import in_lookback

__all__ = ["lapse_reasons", "suppression_reasons", "suppression_code"]


def _flag(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def suppression_reasons(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None,
    ids: pd.Index,
    as_of: pd.Timestamp,
    rules: OutreachRules,
    *,
    outreach_log: pd.DataFrame | None = None,
) -> pd.Series:
    """Why each customer must not be contacted: ``"; "``-joined codes, ``""`` if none.

    `outreach_log` holds past proactive contacts (``customer_id`` and ``contacted_at``;
    when no row has a ``contacted_at``, ``list_date`` of rows not in the ``control`` group).

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
    if outreach_log is not None and len(outreach_log):
        flags["contact_frequency"] = _contacted_too_recently(customers, outreach_log, as_of, rules)
    day = pd.Timestamp(as_of)
    if day.day_name() in rules.quiet_weekdays or str(day.date()) in rules.quiet_dates:
        flags["quiet_day"] = pd.Index(ids)
    out = pd.Series("", index=pd.Index(ids, name="customer_id"), dtype=object)
    for code, who in flags.items():  # insertion order fixes the order of codes in the text
        hit = member_mask(out.index, who)
        out[hit] = np.where(out[hit] == "", code, out[hit] + "; " + code)
    return out


def _contacted_too_recently(customers, outreach_log, as_of, rules) -> pd.Index:
    """Customers whose last proactive contact is within their own contact_every_days."""
    contacted = outreach_log.get("contacted_at")
    listed = pd.to_datetime(outreach_log["list_date"], errors="coerce")
    # Decided on the lists before as_of only: a later export must not change the rule.
    if contacted is not None and contacted[(listed < as_of).to_numpy()].notna().any():
        # An empty contacted_at is a customer who was not reached: not a contact.
        when = pd.to_datetime(contacted, errors="coerce")
    else:
        # A log without contact times (validation adds the column empty): every
        # treatment row counts as contacted on its list date.
        when = listed
        if "group" in outreach_log:
            when = when.where(outreach_log["group"].astype(str) != "control")
    log = pd.DataFrame({"customer_id": outreach_log["customer_id"].astype(str), "when": when})
    log = log[log["when"] < as_of]
    last = log.groupby("customer_id")["when"].max()
    every = pd.Series(float(rules.contact_every_days), index=last.index)
    if "contact_every_days" in customers:
        own = pd.to_numeric(customers.drop_duplicates("customer_id").set_index("customer_id")["contact_every_days"],
                            errors="coerce").reindex(last.index)
        every = own.fillna(every)
    too_soon = (as_of - last) < pd.to_timedelta(every, unit="D")
    return pd.Index(last.index[too_soon.to_numpy()])


def lapse_reasons(days_since_purchase: pd.Series) -> pd.Series:
    """``lapsed (N days since last purchase)``, or ``never_bought`` for NaN, per customer.

    Examples
    --------
    >>> lapse_reasons(pd.Series([400.0, np.nan], index=["a", "b"])).tolist()
    ['lapsed (400 days since last purchase)', 'never_bought']
    """
    days = days_since_purchase.to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(days)
    text = np.full(len(days), "never_bought", dtype=object)
    whole = np.char.mod("%d", np.round(days[known]).astype("int64")).astype(object)
    text[known] = "lapsed (" + whole + " days since last purchase)"
    return pd.Series(text, index=days_since_purchase.index, dtype=object)


def suppression_code(reason: str) -> str:
    """The code of one ``"; "``-separated suppression reason, without its detail.

    Examples
    --------
    >>> suppression_code("lapsed (400 days since last purchase)")
    'lapsed'
    """
    return reason.split(" (", 1)[0]
