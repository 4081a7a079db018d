"""Hold-out groups: which candidates of each action are kept off the list as a control.

A candidate (an eligible customer, :func:`churnguard.outreach.candidates`) is in the
``control`` group of its action when

    ``u = sha256(f"{salt}|{campaign}|{action}|{customer_id}")``, its first 13 hex digits
    read as an integer over ``16**13`` (a number in [0, 1), exact in a double),

is below the action's control share (``rules.control_share_per_action``, else
``rules.control_share``); every other candidate is ``treatment``. The draw depends on
nothing but those four strings, so it is the same in pandas, in Spark, in any order of
rows and on every rerun. The campaign key (:func:`campaign_key`) is
``rules.control_campaign``, or by default the calendar quarter of the list's ``as_of``
(``2026Q4``): a nightly list keeps every customer in the same group for the whole
quarter, and a new quarter draws fresh groups, so no customer is held out for ever.

Why the comparison is honest. Every candidate is ranked, control or not, by the
list's own order (rank tier, priority descending, customer id); the controls are then
drawn out and the caps (``rules.capacity_per_action``, ``--capacity``) apply to the
treatment rows only (:func:`churnguard.outreach.rank_outreach`). The control file holds
the controls **within the reach of the list** (:func:`held_out`): for an action whose
list the caps cut, the controls ranked above its last listed treatment customer; for
an action whose every treatment candidate was listed, all of its controls. Group is
a coin flip independent of rank, so within each action the control file and the list
are two random samples of the same customers (those the list reached), and the churn
rate of one against the other is the effect of the contact. Customers below the cut
are in neither file: comparing the list with them would measure the ranking, not the
call.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_outreach_rules  # noqa: F401 (the examples use it)
from churnguard.outreach.eligibility import member_mask

__all__ = [
    "CONTROL",
    "GROUP",
    "TREATMENT",
    "assign_groups",
    "campaign_key",
    "control_draw",
    "control_share",
    "held_out",
    "held_out_counts",
]

GROUP = "group"
TREATMENT = "treatment"
CONTROL = "control"
# 13 hex digits are 52 bits: the draw is an exact double in both engines, so `u < share`
# decides alike in Python and in Spark SQL.
HEX_DIGITS = 13


def campaign_key(as_of: pd.Timestamp, rules: OutreachRules) -> str:
    """The campaign a list at `as_of` belongs to: ``rules.control_campaign``, else the quarter of `as_of`.

    Examples
    --------
    >>> campaign_key(pd.Timestamp("2026-11-30"), load_outreach_rules())
    '2026Q4'
    >>> from dataclasses import replace
    >>> campaign_key(pd.Timestamp("2026-11-30"), replace(load_outreach_rules(), control_campaign="winter-push"))
    'winter-push'
    """
    if rules.control_campaign:
        return rules.control_campaign
    as_of = pd.Timestamp(as_of)
    return f"{as_of.year}Q{as_of.quarter}"


def control_share(action: str, rules: OutreachRules) -> float:
    """The share of `action`'s candidates held out: its override, else ``rules.control_share``.

    Examples
    --------
    >>> from dataclasses import replace
    >>> rules = replace(load_outreach_rules(), control_share_per_action={"maintenance_visit": 0.05})
    >>> control_share("maintenance_visit", rules), control_share("retention_call", rules)
    (0.05, 0.1)
    """
    return float(rules.control_share_per_action.get(action, rules.control_share))


def control_draw(customer_ids, actions, *, salt: str, campaign: str) -> np.ndarray:
    """Each (customer, action)'s draw in [0, 1) from ``sha256(f"{salt}|{campaign}|{action}|{customer_id}")``.

    The first 13 hex digits of the digest over ``16**13``. In Spark SQL the same number is
    ``conv(substr(sha2(concat_ws('|', salt, campaign, action, customer_id), 256), 1, 13), 16, 10)
    / pow(16, 13)``.

    Examples
    --------
    >>> draw = control_draw(["c1", "c2"], ["retention_call", "retention_call"], salt="churnguard", campaign="2026Q4")
    >>> [round(float(u), 6) for u in draw] == [round(int(hashlib.sha256(
    ...     f"churnguard|2026Q4|retention_call|{c}".encode()).hexdigest()[:13], 16) / 16**13, 6) for c in ["c1", "c2"]]
    True
    """
    scale = float(16**HEX_DIGITS)
    # One digest per row: hashlib has no vectorised form, and about a microsecond a row is
    # small next to scoring the row.
    return np.array(
        [int(hashlib.sha256(f"{salt}|{campaign}|{a}|{c}".encode()).hexdigest()[:HEX_DIGITS], 16) / scale
         for c, a in zip(pd.Series(customer_ids).astype(str), pd.Series(actions).astype(str))],
        dtype="float64",
    )


def assign_groups(scored: pd.DataFrame, as_of: pd.Timestamp, rules: OutreachRules) -> np.ndarray:
    """``treatment`` or ``control`` for each eligible row of `scored`, None for the others.

    `scored` needs ``customer_id``, ``action`` and a boolean ``eligible`` (the columns of
    :func:`churnguard.outreach.candidates`).

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1000)], "action": "retention_call",
    ...                        "eligible": [True] * 999 + [False]})
    >>> groups = assign_groups(scored, pd.Timestamp("2026-11-30"), load_outreach_rules())
    >>> int((groups == "control").sum()), int((groups == "treatment").sum()), groups[-1]
    (95, 904, None)
    """
    out = np.full(len(scored), None, dtype=object)
    eligible = scored["eligible"].to_numpy(dtype=bool)
    if not eligible.any():
        return out
    rows = scored[eligible]
    campaign = campaign_key(as_of, rules)
    draw = control_draw(rows["customer_id"], rows["action"], salt=rules.control_salt, campaign=campaign)
    actions = rows["action"].astype(str)
    share = actions.map({a: control_share(a, rules) for a in actions.unique()}).to_numpy(dtype="float64")
    out[eligible] = np.where(draw < share, CONTROL, TREATMENT)
    return out


def held_out(scored: pd.DataFrame, listed: pd.DataFrame) -> pd.DataFrame:
    """The control rows within the reach of the list, in list order, with their own ``rank`` (1, 2, ...).

    `scored` holds every candidate (``customer_id``, ``priority``, ``action``,
    ``eligible``, ``group`` and optionally ``rank_tier``), `listed` the list that
    :func:`churnguard.outreach.rank_outreach` made of its treatment rows. Per action: when
    the caps left a treatment candidate of it off the list, the controls ranked above
    its last listed treatment customer (none when none was listed); otherwise all of its
    controls. See the module docstring for why.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": list("abcdef"), "priority": [9.0, 8.0, 7.0, 6.0, 5.0, 4.0],
    ...                        "action": "retention_call", "eligible": True,
    ...                        "group": ["treatment", "control", "treatment", "treatment", "control", "treatment"]})
    >>> listed = pd.DataFrame({"customer_id": ["a", "c"]})    # capacity 2: d and f were cut
    >>> held_out(scored, listed)[["rank", "customer_id", "group"]].values.tolist()
    [[1, 'b', 'control']]
    >>> held_out(scored, pd.DataFrame({"customer_id": ["a", "c", "d", "f"]}))["customer_id"].tolist()
    ['b', 'e']
    """
    eligible = scored[scored["eligible"].to_numpy(dtype=bool)]
    tier = eligible["rank_tier"] if "rank_tier" in eligible else pd.Series(0, index=eligible.index)
    order = np.lexsort((eligible["customer_id"].to_numpy(dtype=object).astype(str),
                        -eligible["priority"].to_numpy(dtype="float64"), tier.to_numpy()))
    ranked = eligible.iloc[order].reset_index(drop=True)
    control = (ranked[GROUP] == CONTROL).to_numpy()
    on_list = member_mask(ranked["customer_id"], listed["customer_id"])
    position = pd.Series(np.arange(len(ranked), dtype="float64"))
    action = ranked["action"].astype(str)
    cut = pd.Series(~control & ~on_list).groupby(action.to_numpy()).any()
    last = position[on_list].groupby(action[on_list].to_numpy()).max()
    reach = np.where(cut.reindex(action).fillna(False).to_numpy(dtype=bool),
                     last.reindex(action).fillna(-1.0).to_numpy(), np.inf)
    kept = ranked[control & (position.to_numpy() < reach)].copy()
    kept.insert(0, "rank", np.arange(1, len(kept) + 1, dtype="int64"))
    return kept.reset_index(drop=True)


def held_out_counts(controls: pd.DataFrame, outreach: pd.DataFrame) -> dict[str, int]:
    """Held-out customers per action (every listed action appears, 0 when none was held out).

    Examples
    --------
    >>> held_out_counts(pd.DataFrame({"action": ["retention_call"]}),
    ...                 pd.DataFrame({"action": ["retention_call", "maintenance_visit"]}))
    {'maintenance_visit': 0, 'retention_call': 1}
    """
    actions = sorted({*outreach["action"].dropna().astype(str), *controls["action"].dropna().astype(str)})
    counts = controls["action"].astype(str).value_counts()
    return {a: int(counts.get(a, 0)) for a in actions}
