"""What past outreach saved: treatment against control per list date, action and segment.

A campaign is the customers of one ``outreach_log`` list date and action, split at
random into a treatment group (on the list) and a control group (kept off it). Its
outcome is the task's label over ``[list_date, list_date + horizon)``, read by
:func:`churnguard.labels.make_labels` exactly as training reads it: contractual churn
(``customers.churn_date`` in the window), inactivity churn (no purchase in the window)
or, for the maintenance actions, a repair or failure on one of the customer's assets.
The comparison is intent-to-treat: every treatment customer counts, reached or not,
because reaching a customer is itself something the list decides.

Per row: customers and events in each group, the two rates, their difference
(treatment - control; negative means fewer churned when contacted) with Newcombe's
hybrid score interval (:mod:`churnguard.impact.intervals`), customers saved
(``-difference x treated customers``, the interval scaled alike), value saved (the
Welch interval of the difference in value lost per customer, times treated
customers) and the cost per saved customer (each treated customer's contact at its
channel's cost in the rules, plus any ``offer_cost``).

A row's ``status``:

* ``measured``: the horizon has passed, each group holds at least `min_group`
  customers and the interval excludes zero.
* ``provisional``: the horizon has not passed yet (the data ends inside it); its
  numbers cover the days seen so far and it is not counted.
* ``too_small``: otherwise; ``more_needed`` says how many more customers (same split)
  would make the interval exclude zero at the observed effect
  (:func:`churnguard.impact.intervals.customers_needed`), and the saved columns are left
  empty: an interval that holds zero has not shown that anybody was saved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnguard.config import OutreachRules, load_model_spec, load_outreach_rules
from churnguard.impact.intervals import customers_needed, mean_difference_interval, newcombe_interval
from churnguard.labels import data_end, data_start, make_labels
from churnguard.timeline import churn_definition, coerce_as_of

__all__ = ["IMPACT_COLUMNS", "METHOD", "ImpactResult", "NothingToMeasure", "measure_impact", "outcome_task"]

ALL = "all"
METHOD = ("Newcombe's hybrid score interval (Wilson score intervals of both rates, square-and-add) for the "
          "difference in rates; Welch's normal interval for the difference in value lost per customer; "
          "customers needed: the same interval at the observed rates, both groups grown in the same split")
IMPACT_COLUMNS = [
    "list_date", "action", "segment", "outcome", "horizon_days", "status", "n_treatment", "n_control", "n_excluded",
    "treatment_events", "control_events", "treatment_rate", "control_rate", "difference", "difference_low",
    "difference_high", "saved", "saved_low", "saved_high", "value_saved", "value_saved_low", "value_saved_high",
    "cost", "cost_per_saved", "cost_per_saved_low", "cost_per_saved_high", "more_needed", "reason",
]
_SAVED_COLUMNS = ["saved", "saved_low", "saved_high", "value_saved", "value_saved_low", "value_saved_high",
                  "cost_per_saved", "cost_per_saved_low", "cost_per_saved_high"]


class NothingToMeasure(Exception):
    """No campaign to measure (no outreach_log, an empty one, or no list at the date asked for)."""


def outcome_task(action: str) -> str:
    """The task whose label is an action's outcome: maintenance for the maintenance actions, else churn.

    A combined ``retention_call+maintenance_visit`` is measured on churn, its first aim.

    Examples
    --------
    >>> outcome_task("maintenance_reminder"), outcome_task("retention_call"), outcome_task("win_back")
    ('maintenance', 'churn', 'churn')
    """
    return "maintenance" if str(action).startswith("maintenance") else "churn"


@dataclass(frozen=True)
class ImpactResult:
    """The measured campaigns: one row per list date, action and segment (``all`` first).

    Attributes
    ----------
    rows : DataFrame
        :data:`IMPACT_COLUMNS`, sorted by list date, action, then ``all`` and the segments.
    data_end : Timestamp
        The day after the latest event: a campaign whose horizon ends later is provisional.
    confidence : float
    min_group : int
    method : str
    currency : str
    """

    rows: pd.DataFrame
    data_end: pd.Timestamp
    confidence: float = 0.95
    min_group: int = 30
    method: str = METHOD
    currency: str = "€"

    @property
    def campaigns(self) -> pd.DataFrame:
        """The ``all`` rows: one per list date and action."""
        return self.rows[self.rows["segment"] == ALL].reset_index(drop=True)

    @property
    def n_measured(self) -> int:
        """Campaigns (``all`` rows) whose effect is measured."""
        return int((self.campaigns["status"] == "measured").sum())

    def summary_lines(self) -> list[str]:
        """One line per measured campaign: customers saved with the interval, and the cost per saved customer.

        Examples
        --------
        >>> rows = pd.DataFrame([{"list_date": pd.Timestamp("2026-03-01"), "action": "retention_call",
        ...     "segment": "all", "status": "measured", "n_treatment": 900, "saved": 41.0, "saved_low": 12.3,
        ...     "saved_high": 69.9, "cost_per_saved": 131.7}])
        >>> ImpactResult(rows, pd.Timestamp("2026-09-01")).summary_lines()
        ['2026-03-01 retention_call: 41.0 customers saved (95% interval 12.3 .. 69.9) of 900 treated; €132 per saved customer']
        """
        money = OutreachRules(currency=self.currency).money
        lines = []
        for row in self.campaigns.itertuples():
            if row.status != "measured":
                continue
            cost = "" if pd.isna(row.cost_per_saved) else f"; {money(row.cost_per_saved)} per saved customer"
            lines.append(f"{row.list_date.date()} {row.action}: {row.saved:,.1f} customers saved "
                         f"({self.confidence:.0%} interval {row.saved_low:,.1f} .. {row.saved_high:,.1f}) "
                         f"of {row.n_treatment:,} treated{cost}")
        return lines

    def refusals(self) -> list[str]:
        """One sentence per campaign not measured, saying why (and what it would need).

        Examples
        --------
        >>> rows = pd.DataFrame([{"list_date": pd.Timestamp("2026-03-01"), "action": "retention_call",
        ...     "segment": "all", "status": "too_small", "reason": "the interval holds zero"}])
        >>> ImpactResult(rows, pd.Timestamp("2026-09-01")).refusals()
        ['2026-03-01 retention_call: too small: the interval holds zero']
        """
        return [f"{row.list_date.date()} {row.action}: {row.status.replace('_', ' ')}: {row.reason}"
                for row in self.campaigns.itertuples() if row.status != "measured"]


def _log(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    log = tables.get("outreach_log")
    if log is None:
        raise NothingToMeasure("no outreach_log table in the data (outreach_log.csv or .parquet: who was on "
                               "which list, in treatment or control): no campaign to measure")
    if not len(log):
        raise NothingToMeasure("the outreach_log table is empty: no campaign to measure")
    out = pd.DataFrame({
        "customer_id": log["customer_id"].astype(str).to_numpy(),
        "list_date": pd.to_datetime(log["list_date"]).dt.normalize().to_numpy(),
        "action": log["action"].astype(str).to_numpy(),
        "group": log["group"].astype(str).str.strip().str.lower().to_numpy(),
    })
    for column in ("channel", "offer_cost"):
        out[column] = log[column].to_numpy() if column in log else None
    return out


def _contact_costs(campaign: pd.DataFrame, action: str, rules: OutreachRules) -> np.ndarray:
    """Each row's contact at its channel's cost plus its offer; nothing for the control (never contacted)."""
    fallback = rules.action_channels.get(action, rules.default_channel)
    channel = campaign["channel"].where(campaign["channel"].notna(), fallback).astype(str)
    contact = channel.map(rules.contact_cost).to_numpy(dtype="float64")
    offer = pd.to_numeric(campaign["offer_cost"], errors="coerce").fillna(0.0).to_numpy(dtype="float64")
    return np.where(campaign["group"].to_numpy() == "treatment", contact + offer, 0.0)


def _row(frame: pd.DataFrame, *, confidence: float, min_group: int, provisional: str | None) -> dict:
    treated = frame["group"].to_numpy() == "treatment"
    y = frame["event"].to_numpy(dtype="float64")
    lost = y * frame["stake"].to_numpy(dtype="float64")
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    x_t, x_c = int(y[treated].sum()), int(y[~treated].sum())
    cost = float(frame["cost"].sum())
    row = {"n_treatment": n_t, "n_control": n_c, "treatment_events": x_t, "control_events": x_c,
           "cost": round(cost, 2)}
    if n_t == 0 or n_c == 0:
        missing = "control" if n_c == 0 else "treatment"
        row.update(status="too_small", reason=f"no {missing} group: nothing to compare with")
        return row
    low, high = (float(v) for v in newcombe_interval(x_t, n_t, x_c, n_c, confidence=confidence))
    d = x_t / n_t - x_c / n_c
    dv, dv_low, dv_high = mean_difference_interval(lost[treated].sum(), (lost[treated] ** 2).sum(), n_t,
                                                   lost[~treated].sum(), (lost[~treated] ** 2).sum(), n_c,
                                                   confidence=confidence)
    saved, saved_low, saved_high = -d * n_t, -high * n_t, -low * n_t
    row.update(
        treatment_rate=x_t / n_t, control_rate=x_c / n_c, difference=d, difference_low=low, difference_high=high,
        saved=saved, saved_low=saved_low, saved_high=saved_high,
        value_saved=-dv * n_t, value_saved_low=-dv_high * n_t, value_saved_high=-dv_low * n_t,
        cost_per_saved=cost / saved if saved > 0 else math.nan,
        # The most a saved customer can have cost is at the interval's fewest saved.
        cost_per_saved_low=cost / saved_high if saved_high > 0 and saved > 0 else math.nan,
        cost_per_saved_high=cost / saved_low if saved_low > 0 and saved > 0 else math.nan,
    )
    excludes_zero = low > 0 or high < 0
    needed = customers_needed(x_t, n_t, x_c, n_c, confidence=confidence, min_group=min_group)
    row["more_needed"] = needed
    pct = f"{confidence:.0%}"
    span = f"{pct} interval of the difference {100 * low:+.1f} .. {100 * high:+.1f} points"
    if provisional:
        row.update(status="provisional", reason=provisional)
    elif excludes_zero and min(n_t, n_c) >= min_group:
        row.update(status="measured", reason=f"{span} excludes zero", more_needed=0)
    else:
        if not excludes_zero:
            why = f"the {span} holds zero"
        else:
            why = f"{n_t:,} treated and {n_c:,} control customers; each group needs at least {min_group}"
        if needed is None:
            how = "the two rates are equal: no group size would show a difference"
        elif excludes_zero:
            how = (f"about {needed:,} more customers in the same split ({n_t + n_c + needed:,} in all) would "
                   f"bring each group to {min_group}")
        else:
            how = (f"about {needed:,} more customers in the same split ({n_t + n_c + needed:,} in all) would "
                   f"make it exclude zero if the observed rates held")
        row.update(status="too_small", reason=f"{why}; {how}")
    return row


def measure_impact(
    tables: dict[str, pd.DataFrame],
    *,
    list_date=None,
    rules: OutreachRules | None = None,
    horizon_days: int | None = None,
    confidence: float = 0.95,
    min_group: int = 30,
) -> ImpactResult:
    """Treatment against control for every campaign in ``outreach_log`` (or the one at `list_date`).

    Parameters
    ----------
    tables : dict of DataFrame
        Validated tables (:func:`churnguard.load_data`); needs ``outreach_log``.
    list_date : date or str, optional
        Measure only the lists of this date.
    rules : OutreachRules, optional
        Contact costs per channel, ``default_value`` and ``maintenance_cost`` (the stake of
        a failure); default the packaged rules.
    horizon_days : int, optional
        The outcome window; default each task's model spec (``models/churn.toml``: 90).
    confidence : float, default=0.95
    min_group : int, default=30
        Fewest customers per group for a campaign to count as measured.

    Returns
    -------
    ImpactResult

    Raises
    ------
    NothingToMeasure
        No outreach_log, an empty one, or no list at `list_date`.

    Examples
    --------
    >>> ids = [f"c{i:03d}" for i in range(400)]
    >>> treated = [i % 4 != 0 for i in range(400)]  # a quarter held out as control
    >>> churned = [(i % 5 == 0) if t else (i % 8 == 0) for i, t in enumerate(treated)]  # 20% against 50%
    >>> customers = pd.DataFrame({"customer_id": ids, "value": 100.0,
    ...     "churn_date": [pd.Timestamp("2026-02-01") if c else pd.NaT for c in churned]})
    >>> log = pd.DataFrame({"customer_id": ids, "list_date": pd.Timestamp("2026-01-05"),
    ...     "action": "retention_call", "group": ["treatment" if t else "control" for t in treated],
    ...     "channel": "phone"})
    >>> usage = pd.DataFrame({"customer_id": ids[:1], "timestamp": pd.Timestamp("2026-06-01"), "event": "login"})
    >>> result = measure_impact({"customers": customers, "outreach_log": log, "usage": usage})
    >>> print(result.campaigns[["status", "n_treatment", "n_control", "treatment_rate", "control_rate"]
    ...                         ].to_string(index=False))
      status  n_treatment  n_control  treatment_rate  control_rate
    measured          300        100             0.2           0.5
    >>> print(result.campaigns[["saved", "saved_low", "saved_high", "cost_per_saved"]].to_string(index=False))
     saved  saved_low  saved_high  cost_per_saved
      90.0      57.63       121.4            20.0
    """
    rules = rules or load_outreach_rules()
    log = _log(tables)
    if list_date is not None:
        wanted = coerce_as_of(list_date).normalize()
        log = log[log["list_date"] == wanted]
        if not len(log):
            raise NothingToMeasure(f"no outreach_log rows with list_date {wanted.date()}: no campaign to measure")
    end = data_end(tables)
    start = data_start(tables)
    customers = tables["customers"].drop_duplicates("customer_id").set_index("customer_id")
    customers.index = customers.index.astype(str)
    value = (pd.to_numeric(customers["value"], errors="coerce") if "value" in customers
             else pd.Series(np.nan, index=customers.index)).fillna(rules.default_value)
    segment = (customers["segment"].astype(object).where(customers["segment"].notna(), "(none)").astype(str)
               if "segment" in customers else None)
    rows, labels_cache = [], {}
    for (when, action), campaign in log.groupby(["list_date", "action"], sort=True):
        when = pd.Timestamp(when)
        task = outcome_task(action)
        spec = load_model_spec(task=task)
        horizon = int(horizon_days or spec.horizon_days)
        key = (when, task, horizon)
        if key not in labels_cache:
            # The whole history as look-back: a lapsed buyer on a win-back list has an outcome too
            # (no purchase in the window), where the churn model's 365-day population leaves them out.
            lookback = max((when - start).days + 1, 1)
            labels_cache[key] = make_labels(tables, when, task=task, horizon_days=horizon, lookback_days=lookback,
                                            definition=spec.label, failure_kinds=spec.failure_kinds)
        labels = labels_cache[key]
        frame = campaign.reset_index(drop=True)
        frame["event"] = labels.reindex(pd.Index(frame["customer_id"])).to_numpy(dtype="float64", na_value=np.nan)
        frame["stake"] = (value.reindex(frame["customer_id"]).fillna(rules.default_value).to_numpy()
                          if task == "churn" else rules.maintenance_cost)
        frame["cost"] = _contact_costs(frame, action, rules)
        frame["segment"] = ALL if segment is None else segment.reindex(frame["customer_id"]).fillna("(none)").to_numpy()
        excluded = frame["event"].isna()
        closes = when + pd.Timedelta(days=horizon)
        provisional = None
        if closes > end:
            seen = max((end - when).days, 0)
            provisional = (f"the {horizon}-day horizon ends {closes.date()} but the data ends {end.date()}: "
                           f"{seen} of {horizon} days seen")
        outcome = "repair or failure" if task == "maintenance" else f"{churn_definition(tables, spec.label)} churn"
        parts = [(ALL, frame)]
        if segment is not None:
            parts += list(frame.groupby("segment", sort=True))
        for name, part in parts:
            row = {"list_date": when, "action": action, "segment": str(name), "outcome": outcome,
                   "horizon_days": horizon, "n_excluded": int(excluded[part.index].sum())}
            row.update(_row(part[~excluded[part.index]], confidence=confidence, min_group=min_group,
                            provisional=provisional))
            rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=IMPACT_COLUMNS)
    out.loc[out["status"] == "too_small", _SAVED_COLUMNS] = np.nan
    for column in ("treatment_rate", "control_rate", "difference", "difference_low", "difference_high"):
        out[column] = out[column].astype("float64").round(6)
    for column in _SAVED_COLUMNS + ["cost"]:
        out[column] = out[column].astype("float64").round(2)
    out["more_needed"] = out["more_needed"].astype("Int64")
    out["list_date"] = pd.to_datetime(out["list_date"]).astype("datetime64[us]")
    return ImpactResult(out, end, confidence=confidence, min_group=min_group, currency=rules.currency)
