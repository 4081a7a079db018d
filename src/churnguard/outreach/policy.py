"""The contact policy: expected value saved, action and channel; ranking and capacity.

How a customer's row is decided (rules from :class:`churnguard.config.OutreachRules`,
the packaged ``defaults/outreach.toml``):

* **stakes**: ``churn_stake = churn_probability x value`` (``customers.value``, or
  ``rules.default_value`` when missing) and ``maintenance_stake =
  maintenance_probability x rules.maintenance_cost``: the expected money lost if we do
  nothing. ``value_at_risk`` is the stake of the chosen action(s), rounded to cents.
* **priority** = ``stake x save_rate(action) - contact_cost(channel)``: the expected
  value the contact saves, net of what it costs (``rules.actions``,
  ``rules.channel_costs``), so one list can mix retention calls and service visits.
  With a registered uplift model (an ``uplift`` column: the churn probability a call
  removes) a retention call's priority is ``uplift x value - contact_cost``, it needs a
  positive uplift instead of ``min_probability``, and a customer whom a call would push
  away (negative uplift) with nothing else to offer is suppressed as ``contact_backfires``.
* **action**: each needs its task's probability at or above its ``min_probability``.
  A maintenance probability at the visit threshold (``actions.maintenance_visit``)
  always gets a ``maintenance_visit``; with a qualifying churn risk too, and
  ``rules.combine_actions``, one ``retention_call+maintenance_visit`` call covers both.
  Otherwise the qualifying action that saves more wins (``retention_call`` or
  ``maintenance_reminder``). Customers outside the churn model's population who
  bought before become ``win_back`` when ``rules.win_back`` is on, ranked after every
  other action.
* **channel**: the customer's ``preferred_channel``, else ``rules.default_channel``;
  a retention call at ``rules.phone_from_probability`` or above goes by phone unless
  ``customers.refuses_phone``; an action in ``rules.action_channels`` always uses that
  channel (a technician visit is agreed by phone).
* **eligible**: not suppressed (:mod:`churnguard.outreach.suppression`, and the
  ``lapsed``/``never_bought`` customers outside the churn population), a qualifying
  action and a positive priority.
* **group**: each eligible customer is ``treatment`` or ``control`` of their action
  (:mod:`churnguard.outreach.groups`, a salted hash); controls are never listed.
* **ranking**: ``rank_tier`` (0, then ``win_back``'s 1), priority descending, then
  ``customer_id``; per-action caps, then the overall capacity, on treatment rows only.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from churnguard.config import BOTH_ACTIONS, OutreachRules, load_outreach_rules  # noqa: F401 (the examples use it)
from churnguard.outreach.eligibility import member_mask
from churnguard.outreach.groups import CONTROL, GROUP, assign_groups
from churnguard.outreach.suppression import lapse_reasons, suppression_reasons

__all__ = ["backfire_reasons", "candidates", "decide", "lapsed_days", "listing_status", "rank_outreach"]


def _column(info: pd.DataFrame, name: str, rows: np.ndarray, *, kind: str):
    """Column `name` of `info` at positions `rows` (-1: a customer it lacks, missing)."""
    if name not in info.columns:
        return None
    column = pd.Series(pd.api.extensions.take(info[name].array, rows, allow_fill=True))
    if kind == "number":
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if kind == "flag":
        # A flag read from text ("true", "yes", "1") counts as set; anything else does not.
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            return column.astype(str).str.strip().str.lower().isin(["true", "yes", "1", "y"]).to_numpy()
        return column.astype("boolean").fillna(False).to_numpy(dtype=bool)
    return column.astype(object).to_numpy()


def _costs(channel: np.ndarray, rules: OutreachRules) -> np.ndarray:
    codes, names = pd.factorize(channel, use_na_sentinel=False)
    return np.array([rules.contact_cost(str(c)) for c in names], dtype="float64")[codes]


def decide(
    probs: pd.DataFrame, customers: pd.DataFrame, rules: OutreachRules, *, lapsed: pd.Series | None = None
) -> pd.DataFrame:
    """Stakes, priority, action and channel for every scored customer.

    `probs` holds ``customer_id`` and both ``*_probability`` columns (NaN where a task
    does not score the customer). `lapsed`, indexed by ``customer_id``, lists the
    customers outside the churn model's population with their days since the last
    purchase (NaN: never bought); see :func:`lapsed_days`. Adds ``value, churn_stake,
    maintenance_stake, value_at_risk, priority, action, channel, rank_tier`` and
    ``above_threshold`` (a qualifying action with a positive priority).

    Examples
    --------
    >>> probs = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "churn_probability": [0.6, 0.02, 0.3, 0.4],
    ...                       "maintenance_probability": [None, 0.9, None, 0.7]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "value": [100.0, 5000.0, 100.0, 50.0],
    ...                           "preferred_channel": ["email", "email", "email", "sms"]})
    >>> decide(probs, customers, load_outreach_rules())[["priority", "action", "channel", "above_threshold"]
    ...     ].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[9.0, 'retention_call', 'phone', True], [210.0, 'maintenance_visit', 'phone', True],
     [7.3, 'retention_call', 'email', True], [167.0, 'retention_call+maintenance_visit', 'phone', True]]

    With an ``uplift`` column (a registered uplift model: the churn a call removes), a
    retention call saves ``uplift x value`` and qualifies only where the uplift is positive:

    >>> probs["uplift"] = [0.02, None, 0.3, -0.1]
    >>> decide(probs, customers, load_outreach_rules())[["priority", "action", "above_threshold"]
    ...     ].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[-4.0, 'retention_call', False], [210.0, 'maintenance_visit', True],
     [29.8, 'retention_call', True], [162.0, 'maintenance_visit', True]]
    """
    info = customers.drop_duplicates("customer_id").set_index("customer_id")
    ids = probs["customer_id"]
    n = len(ids)
    rows = info.index.get_indexer(ids)  # the ids are hashed once, not once per column read
    value = _column(info, "value", rows, kind="number")
    value = np.full(n, np.nan) if value is None else value
    value = np.where(np.isnan(value), rules.default_value, value)
    refuses = _column(info, "refuses_phone", rows, kind="flag")
    refuses = np.zeros(n, dtype=bool) if refuses is None else refuses
    preferred = _column(info, "preferred_channel", rows, kind="text")
    preferred = np.full(n, None, dtype=object) if preferred is None else preferred
    preferred = np.where(pd.isna(preferred), rules.default_channel, preferred).astype(object)
    forced = dict(rules.action_channels)

    def channel_of(action: str, base: np.ndarray) -> np.ndarray:
        return np.full(n, forced[action], dtype=object) if action in forced else base

    actions = rules.actions
    p_c = probs["churn_probability"].to_numpy(dtype="float64", na_value=np.nan)
    p_m = probs["maintenance_probability"].to_numpy(dtype="float64", na_value=np.nan)
    churn_stake = np.nan_to_num(p_c) * value
    maint_stake = np.nan_to_num(p_m) * rules.maintenance_cost

    retention = actions["retention_call"]
    ret_ok = ~np.isnan(p_c) & (np.nan_to_num(p_c) >= retention.min_probability)
    high_risk = (np.nan_to_num(p_c) >= rules.phone_from_probability) & ~refuses
    ret_channel = channel_of("retention_call", np.where(high_risk, "phone", preferred).astype(object))
    ret_saved = churn_stake * retention.save_rate
    if "uplift" in probs:
        # Learned from past campaigns: what a call saves is the churn it removes, not a flat share
        # of the risk; a call is worth making only where it helps (the policy's risk floor is moot).
        uplift = probs["uplift"].to_numpy(dtype="float64", na_value=np.nan)
        learned = ~np.isnan(uplift) & ~np.isnan(p_c)
        ret_saved = np.where(learned, np.nan_to_num(uplift) * value, ret_saved)
        ret_ok = np.where(learned, np.nan_to_num(uplift) > 0, ret_ok)
    ret_priority = ret_saved - _costs(ret_channel, rules)

    visit, reminder = actions["maintenance_visit"], actions["maintenance_reminder"]
    is_visit = ~np.isnan(p_m) & (np.nan_to_num(p_m) >= visit.min_probability)
    m_ok = is_visit | (~np.isnan(p_m) & (np.nan_to_num(p_m) >= reminder.min_probability))
    m_action = np.where(is_visit, "maintenance_visit", "maintenance_reminder").astype(object)
    m_channel = np.where(is_visit, channel_of("maintenance_visit", preferred),
                         channel_of("maintenance_reminder", preferred)).astype(object)
    m_saved = maint_stake * np.where(is_visit, visit.save_rate, reminder.save_rate)
    m_priority = m_saved - _costs(m_channel, rules)

    both = rules.combine_actions & ret_ok & is_visit
    both_channel = channel_of(BOTH_ACTIONS, np.full(n, "phone", dtype=object))
    both_priority = ret_saved + m_saved - _costs(both_channel, rules)

    outside = np.zeros(n, dtype=bool) if lapsed is None else member_mask(ids, lapsed.index)
    bought = outside & (lapsed.reindex(ids).notna().to_numpy() if lapsed is not None else False)
    win_back = actions["win_back"]
    wb_ok = rules.win_back & bought & ~m_ok
    wb_channel = channel_of("win_back", preferred)
    wb_priority = value * win_back.save_rate - _costs(wb_channel, rules)

    maintenance_wins = m_ok & (~ret_ok | (m_priority > ret_priority))
    choice = np.select(
        [both, is_visit, maintenance_wins, ret_ok, wb_ok, m_saved > ret_saved, bought],
        ["both", "maintenance", "maintenance", "retention", "win_back", "maintenance", "win_back"],
        default="retention",
    )
    action = np.select([choice == "both", choice == "maintenance", choice == "win_back"],
                       [BOTH_ACTIONS, m_action, "win_back"], default="retention_call").astype(object)
    channel = np.select([choice == "both", choice == "maintenance", choice == "win_back"],
                        [both_channel, m_channel, wb_channel], default=ret_channel).astype(object)
    priority = np.select([choice == "both", choice == "maintenance", choice == "win_back"],
                         [both_priority, m_priority, wb_priority], default=ret_priority)
    qualifies = np.select([choice == "both", choice == "maintenance", choice == "win_back"],
                          [both, m_ok, wb_ok], default=ret_ok)
    # The stakes behind the chosen action: they weigh each task's reasons.
    churn_part = np.isin(choice, ["both", "retention"])
    maint_part = np.isin(choice, ["both", "maintenance"])
    out = probs.copy()
    out["value"] = value
    out["churn_stake"] = np.where(churn_part, churn_stake, np.where(choice == "win_back", value, 0.0))
    out["maintenance_stake"] = np.where(maint_part, maint_stake, 0.0)
    out["value_at_risk"] = out["churn_stake"].to_numpy() + out["maintenance_stake"].to_numpy()
    out["priority"] = priority
    out["action"] = action
    out["channel"] = channel
    out["rank_tier"] = (action == "win_back").astype("int64")
    out["above_threshold"] = qualifies & (priority > 0)
    return out


def lapsed_days(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, ids, population: pd.Index
) -> pd.Series:
    """Customers of `ids` outside the churn model's `population`, with days since their last purchase.

    NaN for a customer who never bought before `as_of`. Returns are not purchases.

    Examples
    --------
    >>> purchases = pd.DataFrame({"customer_id": ["a", "b"], "amount": [5.0, 9.0],
    ...                           "timestamp": pd.to_datetime(["2024-02-20", "2022-01-01"])})
    >>> lapsed_days({"purchases": purchases}, pd.Timestamp("2024-03-01"), ["a", "b", "c"], pd.Index(["a"])).to_dict()
    {'b': 790.0, 'c': nan}
    """
    ids = pd.Index(ids, name="customer_id")
    outside = ids[~member_mask(ids, population)]
    days = pd.Series(np.nan, index=outside, dtype="float64")
    purchases = tables.get("purchases")
    if purchases is not None and len(outside):
        bought = purchases[(purchases["timestamp"] < as_of) & member_mask(purchases["customer_id"], outside)]
        if "is_return" in bought:
            bought = bought[~bought["is_return"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
        last = bought.groupby(bought["customer_id"].astype(str))["timestamp"].max()
        found = last.reindex(outside)
        days = ((as_of - found).dt.total_seconds() / 86400.0).floordiv(1.0).astype("float64")
        days.index = outside
    return days


def candidates(
    probs: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    rules: OutreachRules,
    *,
    churn_population: pd.Index | None = None,
) -> pd.DataFrame:
    """Every scored customer decided (:func:`decide`), suppressed or not, and eligible or not.

    `churn_population` is the churn model's label population at `as_of`
    (:func:`churnguard.outreach.scored_customers`; None: everyone). A customer outside
    it is no retention call: without another qualifying action (or ``rules.win_back``)
    they are suppressed as ``lapsed (N days since last purchase)`` or ``never_bought``.
    Adds to :func:`decide`'s columns ``suppressed_reason`` (``""`` when none),
    ``eligible`` and ``group`` (``treatment`` or ``control`` for the eligible, see
    :func:`churnguard.outreach.assign_groups`; None otherwise). Both engines call it on
    the same rows: Spark per shard, one machine on the whole population.

    Examples
    --------
    >>> probs = pd.DataFrame({"customer_id": ["a", "b", "c"], "churn_probability": [0.5, 0.6, None],
    ...                       "maintenance_probability": [None, None, None]})
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "value": 100.0,
    ...                           "do_not_contact": pd.array([False, True, False], dtype="boolean")})
    >>> rows = candidates(probs, {"customers": customers}, pd.Timestamp("2024-03-01"), load_outreach_rules(),
    ...                   churn_population=pd.Index(["a", "b"]))
    >>> rows[["customer_id", "suppressed_reason", "eligible", "group"]].values.tolist()
    [['a', '', True, 'control'], ['b', 'do_not_contact', False, None], ['c', 'never_bought', False, None]]
    """
    customers = tables["customers"]
    ids = pd.Index(probs["customer_id"])
    lapsed = None if churn_population is None else lapsed_days(tables, as_of, ids, churn_population)
    scored = decide(probs, customers, rules, lapsed=lapsed)
    reasons = suppression_reasons(customers, tables.get("interactions"), ids, as_of, rules,
                                  outreach_log=tables.get("outreach_log")).to_numpy()
    if lapsed is not None and len(lapsed):
        # Outside the churn population and nothing else to offer: say why they are not called.
        unlisted = lapsed[~scored.set_index("customer_id")["above_threshold"].reindex(lapsed.index).to_numpy()]
        lapse = lapse_reasons(unlisted).reindex(ids).fillna("").to_numpy(dtype=object)
        reasons = np.where(lapse == "", reasons, np.where(reasons == "", lapse, reasons + "; " + lapse))
    if "uplift" in scored:
        backfires = backfire_reasons(scored)
        reasons = np.where(backfires == "", reasons, np.where(reasons == "", backfires, reasons + "; " + backfires))
    scored["suppressed_reason"] = reasons
    scored["eligible"] = (reasons == "") & scored["above_threshold"].to_numpy()
    # Object dtype: None, not a string NaN, where a customer is not a candidate.
    scored[GROUP] = pd.Series(assign_groups(scored, as_of, rules), index=scored.index, dtype=object)
    return scored


def backfire_reasons(scored: pd.DataFrame) -> np.ndarray:
    """``contact_backfires (...)`` where the uplift model says a call would push the customer away.

    Only for customers with nothing else that qualifies (``above_threshold`` false): a visit
    that is due still stands.

    Examples
    --------
    >>> scored = pd.DataFrame({"uplift": [-0.04, 0.1, -0.2, None], "above_threshold": [False, False, True, False]})
    >>> backfire_reasons(scored).tolist()
    ['contact_backfires (a call raises the churn risk by 4.0 points)', '', '', '']
    """
    uplift = scored["uplift"].to_numpy(dtype="float64", na_value=np.nan)
    hit = (np.nan_to_num(uplift) < 0) & ~scored["above_threshold"].to_numpy(dtype=bool)
    points = np.char.mod("%.1f", -100.0 * np.nan_to_num(uplift)).astype(object)
    return np.where(hit, "contact_backfires (a call raises the churn risk by " + points + " points)", "").astype(object)


def rank_outreach(
    scored: pd.DataFrame, *, rules: OutreachRules, capacity: int | None = None
) -> pd.DataFrame:
    """Order eligible customers and apply the caps; returns the listed rows with ``rank``.

    `scored` needs ``customer_id``, ``priority``, ``action`` and a boolean ``eligible``;
    an optional ``rank_tier`` (0 first) puts ``win_back`` after every other action, and
    rows of an optional ``group`` that are ``control`` are never listed: the caps count
    treatment rows only (:func:`churnguard.outreach.held_out` finds the controls the
    list reached).

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
    eligible = scored[scored["eligible"]]
    if GROUP in eligible:
        eligible = eligible[(eligible[GROUP] != CONTROL).to_numpy()]
    tier = eligible["rank_tier"] if "rank_tier" in eligible else pd.Series(0, index=eligible.index)
    order = np.lexsort((eligible["customer_id"].to_numpy(dtype=object).astype(str),
                        -eligible["priority"].to_numpy(dtype="float64"), tier.to_numpy()))
    ranked = eligible.iloc[order]
    if rules.capacity_per_action:
        position = ranked.groupby("action", sort=False).cumcount()
        cap = ranked["action"].map(dict(rules.capacity_per_action)).astype("float64").fillna(np.inf)
        ranked = ranked[position.to_numpy() < cap.to_numpy()]
    if capacity is not None:
        ranked = ranked.head(int(capacity))
    ranked = ranked.copy()
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1, dtype="int64"))
    return ranked.reset_index(drop=True)


def listing_status(scored: pd.DataFrame, listed: pd.DataFrame, controls: pd.DataFrame | None = None) -> np.ndarray:
    """What became of each scored customer: ``listed``, ``control``, ``suppressed``, ``below_threshold``, ``over_capacity``.

    ``control``: held out within the list's reach (`controls`, :func:`churnguard.outreach.held_out`);
    a control beyond the reach counts as ``over_capacity``.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
    ...                        "suppressed_reason": ["", "do_not_contact", "", "", ""],
    ...                        "above_threshold": [True, True, False, True, True]})
    >>> listing_status(scored, pd.DataFrame({"customer_id": ["a"]}), pd.DataFrame({"customer_id": ["e"]})).tolist()
    ['listed', 'suppressed', 'below_threshold', 'over_capacity', 'control']
    """
    status = np.where(
        scored["suppressed_reason"] != "",
        "suppressed",
        np.where(~scored["above_threshold"], "below_threshold", "over_capacity"),
    ).astype(object)
    status[member_mask(scored["customer_id"], listed["customer_id"])] = "listed"
    if controls is not None:
        status[member_mask(scored["customer_id"], controls["customer_id"])] = CONTROL
    return status
