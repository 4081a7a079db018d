"""The contact policy: stakes, priority, action and channel; ranking and capacity.

How a customer's row is decided (rules from :class:`churnguard.config.OutreachRules`):

* **stakes**: ``churn_stake = churn_probability x value`` (``customers.value``, or
  ``rules.default_value`` when missing) and ``maintenance_stake =
  maintenance_probability x rules.maintenance_cost``. A task without a model has
  empty probability columns and a stake of 0.
* **priority** = ``churn_stake + maintenance_stake``: the expected money lost if we do
  nothing, so one list can mix retention calls and service visits.
  ``value_at_risk`` is the same figure rounded to cents, for people; ``priority``
  keeps full precision, for ordering.
* **action**: ``retention_call`` when the churn stake is at least the maintenance
  stake; otherwise ``maintenance_visit`` when the maintenance probability reaches
  ``rules.visit_threshold``, else ``maintenance_reminder``.
* **channel**: the customer's ``preferred_channel``, else ``rules.default_channel``;
  an action listed in ``rules.action_channels`` always uses that channel (by default
  a technician visit is scheduled by phone, whatever the customer prefers).
* **eligible**: not suppressed (:mod:`churnguard.outreach.suppression`) and one
  probability at least ``rules.min_probability``.
* **capacity**: ``rules.capacity_per_action`` caps each action, then ``capacity``
  caps the whole list; without either every eligible customer is ranked.
* **order**: priority descending, then ``customer_id``: the same inputs always give
  the same bytes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_outreach_rules  # noqa: F401 (the examples use it)
from churnguard.outreach.eligibility import member_mask
from churnguard.outreach.suppression import suppression_reasons

__all__ = ["candidates", "decide", "listing_status", "rank_outreach"]


def decide(probs: pd.DataFrame, customers: pd.DataFrame, rules: OutreachRules) -> pd.DataFrame:
    """Stakes, priority, action and channel for every scored customer.

    `probs` holds ``customer_id`` and both ``*_probability`` columns (NaN where a task
    does not score the customer). Adds ``value, churn_stake, maintenance_stake,
    priority, action, channel`` and ``above_threshold``.

    Examples
    --------
    >>> probs = pd.DataFrame({"customer_id": ["a", "b"], "churn_probability": [0.5, 0.01],
    ...                       "maintenance_probability": [None, 0.9]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b"], "value": [100.0, None]})
    >>> decide(probs, customers, load_outreach_rules())[["priority", "action", "channel"]].values.tolist()
    [[50.0, 'retention_call', 'phone'], [360.01, 'maintenance_visit', 'phone']]
    """
    info = customers.drop_duplicates("customer_id").set_index("customer_id")
    ids = probs["customer_id"]
    value = (
        pd.to_numeric(info["value"], errors="coerce").reindex(ids).to_numpy(dtype="float64", na_value=np.nan)
        if "value" in info.columns
        else np.full(len(ids), np.nan)
    )
    value = np.where(np.isnan(value), rules.default_value, value)
    p_churn = probs["churn_probability"].to_numpy(dtype="float64", na_value=np.nan)
    p_maint = probs["maintenance_probability"].to_numpy(dtype="float64", na_value=np.nan)
    churn_stake = np.nan_to_num(p_churn) * value
    maint_stake = np.nan_to_num(p_maint) * rules.maintenance_cost
    priority = churn_stake + maint_stake
    action = np.where(
        churn_stake >= maint_stake,
        "retention_call",
        np.where(np.nan_to_num(p_maint) >= rules.visit_threshold, "maintenance_visit", "maintenance_reminder"),
    )
    preferred = (
        info["preferred_channel"].reindex(ids).astype(object).to_numpy()
        if "preferred_channel" in info.columns
        else np.full(len(ids), None, dtype=object)
    )
    channel = np.where(pd.isna(preferred), rules.default_channel, preferred).astype(object)
    for act, forced in dict(rules.action_channels).items():
        channel[action == act] = forced
    out = probs.copy()
    out["value"] = value
    out["churn_stake"] = churn_stake
    out["maintenance_stake"] = maint_stake
    out["priority"] = priority
    out["action"] = action
    out["channel"] = channel
    most = np.fmax(np.nan_to_num(p_churn, nan=-1.0), np.nan_to_num(p_maint, nan=-1.0))
    out["above_threshold"] = most >= rules.min_probability
    return out


def candidates(
    probs: pd.DataFrame, tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, rules: OutreachRules
) -> pd.DataFrame:
    """Every scored customer decided (:func:`decide`), suppressed or not, and eligible or not.

    Adds to :func:`decide`'s columns ``suppressed_reason`` (``""`` when none) and
    ``eligible`` (not suppressed and above ``rules.min_probability``). Both engines
    call it on the same rows: Spark per shard, one machine on the whole population.

    Examples
    --------
    >>> probs = pd.DataFrame({"customer_id": ["a", "b"], "churn_probability": [0.5, 0.6],
    ...                       "maintenance_probability": [None, None]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b"],
    ...                           "do_not_contact": pd.array([False, True], dtype="boolean")})
    >>> rows = candidates(probs, {"customers": customers}, pd.Timestamp("2024-03-01"), load_outreach_rules())
    >>> rows[["customer_id", "suppressed_reason", "eligible"]].values.tolist()
    [['a', '', True], ['b', 'do_not_contact', False]]
    """
    customers = tables["customers"]
    scored = decide(probs, customers, rules)
    reasons = suppression_reasons(customers, tables.get("interactions"), pd.Index(probs["customer_id"]), as_of,
                                  rules)
    scored["suppressed_reason"] = reasons.to_numpy()
    scored["eligible"] = (reasons.to_numpy() == "") & scored["above_threshold"].to_numpy()
    return scored


def rank_outreach(
    scored: pd.DataFrame, *, rules: OutreachRules, capacity: int | None = None
) -> pd.DataFrame:
    """Order eligible customers and apply the caps; returns the listed rows with ``rank``.

    `scored` needs ``customer_id``, ``priority``, ``action`` and a boolean ``eligible``.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "priority": [5.0, 9.0, 5.0, 1.0],
    ...                        "action": ["retention_call", "maintenance_visit", "retention_call", "retention_call"],
    ...                        "eligible": [True, True, True, False]})
    >>> rank_outreach(scored, rules=load_outreach_rules())[["rank", "customer_id"]].values.tolist()
    [[1, 'b'], [2, 'a'], [3, 'c']]
    >>> from dataclasses import replace
    >>> rules = replace(load_outreach_rules(), capacity_per_action={"maintenance_visit": 0})
    >>> rank_outreach(scored, rules=rules, capacity=1)["customer_id"].tolist()
    ['a']
    """
    ranked = scored[scored["eligible"]].sort_values(
        ["priority", "customer_id"], ascending=[False, True], kind="mergesort"
    )
    if rules.capacity_per_action:
        position = ranked.groupby("action", sort=False).cumcount()
        cap = ranked["action"].map(dict(rules.capacity_per_action)).astype("float64").fillna(np.inf)
        ranked = ranked[position.to_numpy() < cap.to_numpy()]
    if capacity is not None:
        ranked = ranked.head(int(capacity))
    ranked = ranked.copy()
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1, dtype="int64"))
    return ranked.reset_index(drop=True)


def listing_status(scored: pd.DataFrame, listed: pd.DataFrame) -> np.ndarray:
    """What became of each scored customer: ``listed``, ``suppressed``, ``below_threshold``, ``over_capacity``.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
    ...                        "suppressed_reason": ["", "do_not_contact", "", ""],
    ...                        "above_threshold": [True, True, False, True]})
    >>> listing_status(scored, pd.DataFrame({"customer_id": ["a"]})).tolist()
    ['listed', 'suppressed', 'below_threshold', 'over_capacity']
    """
    status = np.where(
        scored["suppressed_reason"] != "",
        "suppressed",
        np.where(~scored["above_threshold"], "below_threshold", "over_capacity"),
    ).astype(object)
    status[member_mask(scored["customer_id"], listed["customer_id"])] = "listed"
    return status
