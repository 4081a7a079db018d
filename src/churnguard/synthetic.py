"""A synthetic customer world with known ground truth.

`generate_world` simulates a business that sells, supports and services
products over about two years, writes every table of the data contract
(customers, interactions, purchases, assets, service_events, usage and, with
``campaigns=True``, the ``outreach_log`` of its past retention campaigns) and a
``truth`` table of the latent hazards behind it (and ``uplift_truth``, each
campaign customer's true effect of a call), so that a model trained on the
generated data can be measured against the best score any model could reach.
`write_world` writes the tables as ``NAME.parquet`` (or ``.csv``).

The simulation steps through time, not through customers: each step is two
weeks, cut short at the first of every month so that every monthly as-of date is
a step boundary. Within a step every process (churn, contacts, purchases,
usage, failures, services) is a Poisson process whose per-customer or
per-asset rates are fixed at the step's start; all customers and assets are
handled as numpy arrays at once. Events that one event causes later (a retry
after an abandoned call, a follow-up on an unresolved complaint, the repair
after a failure, a refund) wait in a queue and are processed in the step in
which they fall. Same seed, same tables, same bytes.

Planted causal drivers
----------------------
Churn. A customer's daily churn hazard is

    h_churn = exp(static + drivers) + 0.02 * disengaged

* ``static``: a base of 0.0004 per day, higher for consumers (+0.3) and the
  basic plan (+0.3), lower for enterprise (-0.5) and premium (-0.2), falling
  with ``value`` (-0.3 per unit of log value around 500), plus a latent
  per-customer frailty (normal, sd 0.3).
* ``drivers`` are exponentially decayed counts of observable events, each
  event weighted ``exp(-age / tau)``, so they behave like counts over the last
  one to three months (log-hazard per event, cap on the decayed count):

  - unresolved complaints (tau 90 days): +1.0 each, capped at 4;
  - repeat contacts, i.e. a contact within 7 days of the customer's previous
    one (tau 30 days): +0.5 each, capped at 4;
  - bad waits, i.e. a phone/IVR/chat wait over 600 s or an abandoned call
    (tau 30 days): +0.45 each, capped at 4;
  - detractor survey answers, csat <= 2 or nps <= 4 (tau 90 days): +0.8
    each, capped at 3;
  - failures or unplanned repairs of the customer's assets (tau 60 days):
    +0.9 each, capped at 3;
  - a retention call that reminded a sleeping dog of its contract (tau 60
    days): +1.5, capped at 1 (see past campaigns; zero without them);
  - purchases (tau 90 days): -0.8 * log1p(count), so fewer purchases, more
    churn;
  - tenure: -0.6 * log1p(tenure in years).
* ``disengaged``: a latent state a customer enters at
  ``0.0005 * exp(0.5 * (unresolved + detractor))`` per day (the decayed
  counts above, each capped at 3) and leaves at 0.004 per day. While
  disengaged the customer's product usage drops at once to 10 % of its usual
  level and fades further as ``0.1 * exp(-days_disengaged / 20)`` (from the
  onset day itself, also when the onset falls inside a step), the remaining
  active days are short (logins and feature uses 1 + Poisson(0.2 x usual),
  a third of the streaming minutes), purchases drop to 35 %, contacts come
  five times as often and turn to the cancellation topic (questions about
  terms, downgrades and cancelling; was 1.5x, which left the state nearly
  invisible in the contact log: held-out churn AUC 91 % of the oracle at
  1.5x, 92.2 % at 3x, 94.7 % at 5x on generate_world(50_000, seed=1)), those
  contacts go worse (the experience behind csat, nps, ces and sentiment is
  0.8 lower: a customer on the way out is an unhappy one; with this and a
  7-day usage window 95.6 %), and churn follows at an extra 0.02 per day, so
  usage collapses for some weeks before these customers churn. About a third
  of the churners leave this way; the others churn quietly with no usage
  decline.

  (Changed for issue 9's quality target: usage used to fade slowly as
  ``exp(-days / 20)`` from the step after the onset, at a mean of 0.095 rows
  a day with lognormal sd 1.0, so most disengaged customers looked like
  ordinary light users for weeks and the held-out churn AUC reached only
  86 % of the oracle; training on the features plus the hidden
  ``disengaged`` flag closed nearly all of the gap. Real disengagement shows
  at once as fewer and shorter sessions; the usage level is now 0.14 rows a
  day, lognormal sd 0.8: about 68 usage rows per customer over the default
  two years with telemetry, up from about 47.)

Maintenance. Each asset's daily hazard of an unplanned repair or failure is

    h_asset = base(product) * exp(frailty + 1.3 * min(overdue, 2)
              + 0.07 * min(age_years, 15) + 0.4 * out_of_warranty
              + 0.8 * min(load_ratio, 3))

with ``overdue = max(0, days_since_service - interval) / interval``,
``days_since_service`` counted from the last preventive service (or the
install date), ``load_ratio`` the running load (``run_hours`` or ``cycles``
in usage, logged against the asset) accumulated since that service divided by
the product's nominal load per interval, and a latent asset frailty (normal,
sd 0.25); ``base`` is 0.0003-0.00035 per day. Preventive services come once
an asset is due (90 % of its interval), at a latent per-customer diligence
rate (lognormal, median 0.03 per day), so some customers keep their products
overdue for months. A hazard event is a ``failure`` (65 %, followed by a
``repair`` 1-10 days later in 80 % of cases and, for half of them, by a
preventive service 7-30 days later) or a direct ``repair`` (35 %); 75 % of
them make the customer contact care about a ``breakdown`` (often a
complaint), and each raises that customer's churn hazard as above.

Hazards are re-evaluated at each step's start; the decayed counts, the usage
decline and the asset load are exact functions of the event times.

Past campaigns (issue 19)
-------------------------
With ``campaigns=True`` (off by default, see `generate_world`) the business
ran retention-call lists:
on every third first of the month in the second half of the window whose
90-day outcome window ends by ``end`` (on the default window 2025-11-01,
2026-02-01, 2026-05-01 and 2026-08-01). Each is decided per customer, never
by a rank over the base, so independent blocks of customers compose:

* on the list: an active customer without ``do_not_contact`` whose own 90-day
  churn probability at the list date (the oracle below, no contact) is at
  least 0.06, or who falls in a 5 % per-customer random draw (a sample to
  learn from): about 20 % of the active base, an eighth of them disengaged;
* group: ``control`` by a 20 % per-customer draw, never called; the others
  are ``treatment``, and an agent reaches 80 % of them by phone on the list
  date (``contacted_at`` between 09:00 and 17:00; ``outcome`` ``reached`` or
  ``no_answer``);
* the call's effect, from the moment of the list date:

  - persuadables: an engaged customer's service trouble is cleared, i.e. 70 %
    of the decayed counts of unresolved complaints, repeat contacts, bad waits,
    detractor answers and failures disappear (so do their share of the churn
    hazard and of the disengagement entry rate); customers whose risk comes
    from that trouble are saved, the others hardly change;
  - lost causes: a disengaged customer is not helped (the 0.02 per day stays);
  - sleeping dogs: a latent 25 % of the quiet customers (contact rate under
    0.012 per day, about a sixth of the base) and 3 % of the others are
    reminded of a contract they had forgotten: the driver ``reminded`` (tau
    60 days, +1.5 log-hazard, cap 1) rises by one and their trouble is not
    cleared, so their churn hazard rises for a couple of months.

On ``generate_world(20_000, seed=1)`` (and seed 2) the four lists hold
2,400-3,000 customers each, 5-6 % of them sleeping dogs; the mean true effect
is -1.3 (-1.2) points of 90-day churn: +4.7 (+5.1) for engaged sleeping dogs,
-1.8 for the other engaged customers, +0.1 for the disengaged; 20-35 customers
saved per list. The campaign draws
come from a random stream of their own (seeded ``[seed, 19]``): with
``campaigns=False`` the world is draw for draw the one generated before
campaigns existed, and without ``outreach_log`` and ``uplift_truth``.

``outreach_log`` (a contract table) has one row per listed customer:
``customer_id, list_date, action`` (``retention_call``), ``group``,
``contacted_at`` (empty when not reached and for control), ``channel``
(``phone`` for treatment) and ``outcome``. Outcomes are not in it: they are
the churn dates of ``customers``. ``uplift_truth`` (not a contract table) has
the same rows with ``group``, ``churn_probability_control`` (the oracle's
probability of churning in ``[list_date, list_date + 90 days)`` without a
call, equal to ``truth.churn_probability`` at that as-of),
``churn_probability_treated`` (on the treatment list: 80 % reached and
contacted, 20 % not, i.e. ``0.8 * contacted + 0.2 * control``),
``treatment_effect = treated - control`` (negative: the list keeps the
customer), ``horizon_days`` (90), ``contacted`` (this customer was reached;
False for control), ``churn_probability_contacted`` (if reached) and the
latent ``sleeping_dog`` flag. Both arms are computed the way ``truth``
computes ``churn_probability``, from the state at the list date. The
expected customers a list saved is ``-treatment_effect`` summed over its
treatment group; what a treatment-vs-control comparison of the realised churn
estimates.

Truth and oracle
----------------
``truth`` has one row per customer in the population (signed up before and
not churned before ``as_of``) for every first of the month from 12 months
after the start up to ``end``: ``customer_id, as_of, churn_hazard,
maintenance_hazard`` (the latent daily hazards at ``as_of``; maintenance sums
the customer's assets, 0 without assets), ``churn_probability,
maintenance_probability`` (the oracle: probability of the event in
``[as_of, as_of + 90 days)`` given the full latent state at ``as_of``),
``disengaged`` (the latent state) and ``window_complete`` (the 90-day window
ends on or before ``end``; the label of an incomplete window is unknown).

The oracle integrates the hazards over the 90 days (trapezoids on a 30-day
grid) assuming no new events: decayed counts keep decaying, tenure, asset
age, days overdue and load (at the asset's mean rate) keep growing; a
disengaged customer stays so with probability ``exp(-0.004 s)``, an engaged
one becomes disengaged at its current entry rate; a due asset gets its
preventive service at its owner's diligence rate, after which it runs at
the hazard of a freshly serviced asset. ``churn_probability = 1 -
exp(-H_churn(90))``; ``maintenance_probability`` is the probability of a
maintenance event before the customer churns,
``sum_k S_churn(s_k) S_maint(s_k) (1 - exp(-(H_maint(s_k+1) - H_maint(s_k))))``.
It ignores the future events that would change the hazards, as any model
must. On the default world the oracle's ROC-AUC against the realised labels
is about 0.74 for churn and 0.86 for maintenance, and its mean probability
matches the realised base rate within about 10 %.

Tables and conventions
----------------------
Ids are strings with leading zeros: customers ``0000001`` (at least 7
digits), assets ``A00000001``, orders ``O000000001``. Timestamps are tz-naive
``datetime64[us]`` in ``[end - years, end)``; dates (signup, churn, install,
warranty end) are midnights. Flags are nullable booleans, numbers float64,
categories strings. Returns are separate purchase rows with
``is_return=True``, the original ``order_id`` and quantity, and a negative
``amount`` (the refund). ``wait_seconds`` exists for phone, IVR and chat
(NaN for email and app); ``handle_seconds`` is NaN for abandoned calls;
``csat`` (1-5), ``nps`` (0-10) and ``ces`` (1-7, 7 = effortless) are filled on
the roughly 30 % of answered contacts that got a survey; ``sentiment``
(-1..1) on chat, email, app and half of the phone calls. Usage holds daily
aggregated rows ``(customer_id, day, event, value)`` (each customer's rows at a
latent rate, lognormal around a mean of 0.14 a day) for the customer events
``login``, ``stream_minutes``, ``feature_x`` and ``support_article_view``,
and asset telemetry ``run_hours`` / ``cycles`` (with ``asset_id``), each
telemetry row carrying the load since the asset's previous report.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from churnguard.io import write_table

__all__ = ["TABLE_NAMES", "generate_world", "write_world"]

TABLE_NAMES = (
    "customers",
    "interactions",
    "purchases",
    "assets",
    "service_events",
    "usage",
    "truth",
    "outreach_log",
    "uplift_truth",
)
HORIZON_DAYS = 90
_DAY_US = 86_400_000_000
_NEVER = np.int64(1 << 40)  # churn day of a customer who has not churned
# Rates are re-evaluated every two weeks: the O(customers) work per step is the cost.
_STEP_DAYS = 14

# --- customers -------------------------------------------------------------
SEGMENTS = ("consumer", "small_business", "enterprise")
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west", "central")
PREFERRED = ("phone", "chat", "email", "app")
_SEGMENT_P = (0.70, 0.22, 0.08)
_PLAN_P = (0.40, 0.40, 0.20)
_SEGMENT_VALUE = np.array([1.0, 3.0, 12.0])
_PLAN_VALUE = np.array([0.7, 1.0, 1.6])
_SEGMENT_CHURN = np.array([0.3, 0.0, -0.5])
_PLAN_CHURN = np.array([0.3, 0.0, -0.2])

# --- churn hazard ----------------------------------------------------------
_CHURN_BASE = 0.0004
# name: (time constant in days, log-hazard per event, cap on the decayed count)
_DRIVERS = {
    "unresolved": (90.0, 1.00, 4.0),
    "repeat": (30.0, 0.50, 4.0),
    "bad_wait": (30.0, 0.45, 4.0),
    "detractor": (90.0, 0.80, 3.0),
    "failure": (60.0, 0.90, 3.0),
    # A sleeping dog reminded of its contract by a retention call (zero without campaigns).
    "reminded": (60.0, 1.50, 1.0),
}
_PURCHASE_TAU = 90.0
_DIS_ENTRY = 0.0005
_DIS_HAZARD = 0.02
_DIS_RECOVERY = 0.004
_DIS_USAGE_TAU = 20.0
_DIS_USAGE_DROP = 0.1  # usage falls to this share at disengagement onset, then fades
_DIS_CONTACT = 5.0  # disengaged customers call about terms, downgrades and cancelling
_DIS_MOOD = -0.8  # and their contacts go worse: lower csat, nps, ces and sentiment

# --- past campaigns (issue 19) ---------------------------------------------
_CAMPAIGN_EVERY_MONTHS = 3
_CAMPAIGN_THRESHOLD = 0.06  # a customer is on a list when their own 90-day churn risk is at least this
_EXPLORE_SHARE = 0.05  # and, by a per-customer draw, this share of the others (a random sample to learn from)
_CONTROL_SHARE = 0.20  # per-customer draw: held out, never called
_REACH = 0.80  # share of the treatment group an agent reaches on the list date
_RESOLVE = 0.70  # share of an engaged customer's service trouble a call clears
_TROUBLE = ("unresolved", "repeat", "bad_wait", "detractor", "failure")  # the drivers a call can clear
_QUIET_CONTACT_RATE = 0.012  # customers who rarely call care (about the quietest sixth)
_SLEEPING_DOG_P = (0.03, 0.25)  # latent share of sleeping dogs: other customers, quiet ones
_CAMPAIGN_STREAM = 19  # the campaign draws come from their own stream: the rest of the world keeps its draws
CAMPAIGN_ACTION = "retention_call"

# --- interactions ----------------------------------------------------------
CHANNELS = ("phone", "ivr", "chat", "email", "app")
_PREFERRED_TO_CHANNEL = np.array([0, 2, 3, 4])
_CHANNEL_P = np.array([0.30, 0.20, 0.20, 0.15, 0.15])
_WAIT_MEAN = np.array([150.0, 60.0, 45.0, np.nan, np.nan])
_HANDLE_MEAN = np.array([420.0, 120.0, 600.0, 300.0, 240.0])
TOPICS = ("billing", "technical", "breakdown", "delivery", "cancellation", "account", "product_info")
_BREAKDOWN = 2
_TOPIC_P = np.array([0.28, 0.20, 0.04, 0.12, 0.03, 0.15, 0.18])
_TOPIC_P_DISENGAGED = np.array([0.20, 0.10, 0.02, 0.05, 0.40, 0.13, 0.10])
_COMPLAINT_P = np.array([0.30, 0.20, 0.60, 0.35, 0.40, 0.10, 0.03])
_LONG_WAIT = 600.0

# --- purchases -------------------------------------------------------------
CATEGORIES = ("device", "spare_parts", "consumables", "accessories", "service_plan")
_CATEGORY_P = np.array([0.05, 0.20, 0.45, 0.20, 0.10])
_UNIT_PRICE = np.array([600.0, 80.0, 25.0, 40.0, 120.0])
_RETURN_P = 0.04

# --- usage -----------------------------------------------------------------
USAGE_EVENTS = ("login", "stream_minutes", "feature_x", "support_article_view")
# Rows: usage profiles (streamer, worker, casual); columns: USAGE_EVENTS.
_EVENT_MIX = np.array(
    [[0.35, 0.50, 0.10, 0.05], [0.50, 0.05, 0.40, 0.05], [0.70, 0.15, 0.05, 0.10]]
)
# Rows: weekly rhythms (weekday, weekend, even); columns: Monday..Sunday.
_RHYTHM = np.array(
    [[1.3, 1.3, 1.3, 1.3, 1.2, 0.4, 0.3], [0.6, 0.6, 0.6, 0.7, 1.0, 2.0, 2.0], [1.0] * 7]
)
_USAGE_RATE = 0.14  # mean customer usage rows per day
_REPORT_RATE = 0.012  # telemetry reports per asset per day


# --- assets ----------------------------------------------------------------
@dataclass(frozen=True)
class _Product:
    name: str
    interval_days: int
    warranty_years: int
    load_event: str
    weekly_load: float  # mean running load per week (hours or cycles)
    base_hazard: float  # daily repair/failure hazard when new, serviced, under warranty
    seasonal: bool  # heating products run more in winter


PRODUCTS = (
    _Product("boiler", 365, 2, "run_hours", 35.0, 0.00035, True),
    _Product("heat_pump", 180, 3, "run_hours", 50.0, 0.00035, True),
    _Product("water_softener", 180, 2, "cycles", 12.0, 0.00030, False),
    _Product("coffee_machine", 90, 2, "cycles", 60.0, 0.00030, False),
    _Product("compressor", 90, 1, "run_hours", 30.0, 0.00035, False),
    _Product("washing_machine", 365, 2, "cycles", 5.0, 0.00030, False),
)
_PRODUCT_P = np.array([0.22, 0.15, 0.15, 0.18, 0.10, 0.20])
_ASSET_COUNT_P = np.array([0.40, 0.33, 0.18, 0.09])  # 0, 1, 2, 3 assets
SERVICE_KINDS = ("preventive", "inspection", "repair", "failure")
_PREVENTIVE, _INSPECTION, _REPAIR, _FAILURE = range(4)
_SERVICE_COST = np.array([90.0, 40.0, 250.0, np.nan])
_INSPECTION_RATE = 1 / 600


# --- random helpers --------------------------------------------------------
def _poisson_pick(rng: np.random.Generator, rates: np.ndarray) -> np.ndarray:
    """Sorted indices of a Poisson process: index i appears Poisson(rates[i]) times.

    One Poisson draw for the total and one sorted uniform per event replace a
    Poisson draw per element: the rates are mostly tiny, the events few.
    """
    if len(rates) == 0:
        return np.empty(0, np.int64)
    cum = np.cumsum(rates)
    total = float(cum[-1])
    k = int(rng.poisson(total)) if total > 0 else 0
    if k == 0:
        return np.empty(0, np.int64)
    # Sorted uniforms in O(k): normalised partial sums of exponentials.
    gaps = np.cumsum(rng.standard_exponential(k + 1))
    x = gaps[:-1] * (total / gaps[-1])
    return np.minimum(np.searchsorted(cum, x, side="right"), len(rates) - 1)


def _unique_sorted(idx: np.ndarray) -> np.ndarray:
    if len(idx) == 0:
        return idx
    return idx[np.r_[True, idx[1:] != idx[:-1]]]


def _choice_rows(rng: np.random.Generator, cdf_rows: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Draw one category per row from the cumulative distributions ``cdf_rows[which]``."""
    n_rows, n_cols = cdf_rows.shape
    # Row r's distribution occupies (r, r + 1] on one line: one searchsorted draws all.
    line = (cdf_rows + np.arange(n_rows)[:, None]).ravel()
    x = rng.random(len(which)) + which
    flat = np.minimum(np.searchsorted(line, x, side="right"), line.size - 1)
    return np.minimum(flat - which * n_cols, n_cols - 1)


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    return c / c[..., -1:]


def _decayed_counts(n: int, who: np.ndarray, when: np.ndarray, at: float, tau: float) -> np.ndarray:
    """Per-customer sums of ``exp(-(at - when) / tau)``: counts that fade with age."""
    return np.bincount(who, weights=np.exp(-(at - when) / tau), minlength=n)


# --- the world's state -----------------------------------------------------
class _Customers:
    """Static attributes, latent traits and the evolving state of every customer."""

    def __init__(self, rng: np.random.Generator, n: int, n_days: int):
        self.n = n
        self.segment = rng.choice(3, n, p=_SEGMENT_P)
        self.plan = rng.choice(3, n, p=_PLAN_P)
        self.region = rng.integers(0, len(REGIONS), n)
        self.value = np.round(
            500 * _SEGMENT_VALUE[self.segment] * _PLAN_VALUE[self.plan] * rng.lognormal(0, 0.6, n), 2
        )
        self.do_not_contact = rng.random(n) < 0.03
        self.preferred = rng.choice(4, n, p=[0.35, 0.25, 0.20, 0.20])
        # A quarter sign up during the window; the rest are the survivors of
        # earlier years, with tenure up to about ten years.
        new = rng.random(n) < 0.25
        before = -1 - np.minimum(np.floor(rng.exponential(900, n)), 3650)
        self.signup = np.where(new, rng.integers(0, n_days, n), before).astype(np.int64)
        self.churn_day = np.full(n, _NEVER, np.int64)

        value_term = np.clip(np.log(self.value / 500), -2, 2)
        self.static_log_hazard = (
            np.log(_CHURN_BASE)
            + _SEGMENT_CHURN[self.segment]
            + _PLAN_CHURN[self.plan]
            - 0.3 * value_term
            + rng.normal(0, 0.3, n)
        )
        # Latent behaviour: how often each customer contacts, buys, uses, services.
        self.contact_rate = rng.lognormal(np.log(0.022), 0.6, n)
        self.purchase_rate = rng.lognormal(np.log(0.011), 0.7, n) * np.array([1.0, 1.6, 2.5])[self.segment]
        self.usage_rate = rng.lognormal(0, 0.8, n) * (_USAGE_RATE / np.exp(0.32))
        self.usage_profile = rng.integers(0, len(_EVENT_MIX), n)
        self.rhythm = rng.integers(0, len(_RHYTHM), n)
        self.mood = rng.normal(0, 0.5, n)
        self.diligence = rng.lognormal(np.log(0.03), 1.0, n)  # preventive services per day once due

        self.counts = {name: np.zeros(n) for name in _DRIVERS}
        self.purchases = np.zeros(n)
        self.disengaged = np.zeros(n, bool)
        self.disengaged_since = np.zeros(n)
        self.last_contact = np.full(n, -1e9)

    def drivers_log_hazard(self, t: float, shift: float = 0.0) -> np.ndarray:
        """Log churn hazard without the disengaged term, `shift` days after `t` with no new events."""
        log_h = self.static_log_hazard.copy()
        for name, (tau, weight, cap) in _DRIVERS.items():
            counts = self.counts[name] * np.exp(-shift / tau) if shift else self.counts[name]
            log_h += weight * np.minimum(counts, cap)
        purchases = self.purchases * np.exp(-shift / _PURCHASE_TAU) if shift else self.purchases
        log_h -= 0.8 * np.log1p(purchases)
        tenure_years = np.maximum(t + shift - self.signup, 0) / 365.25
        log_h -= 0.6 * np.log1p(tenure_years)
        return log_h

    def entry_rate(self) -> np.ndarray:
        """Daily rate of becoming disengaged, raised by bad experiences."""
        bad = np.minimum(self.counts["unresolved"], 3) + np.minimum(self.counts["detractor"], 3)
        return _DIS_ENTRY * np.exp(0.5 * bad)

    def churn_hazard(self, t: float) -> np.ndarray:
        return np.exp(self.drivers_log_hazard(t)) + _DIS_HAZARD * self.disengaged

    def decay(self, step: float) -> None:
        for name, (tau, _, _) in _DRIVERS.items():
            self.counts[name] *= np.exp(-step / tau)
        self.purchases *= np.exp(-step / _PURCHASE_TAU)


class _Assets:
    """Installed products: static attributes and service state."""

    def __init__(self, rng: np.random.Generator, customers: _Customers, n_days: int):
        n_assets = rng.choice(4, customers.n, p=_ASSET_COUNT_P)
        self.customer = np.repeat(np.arange(customers.n), n_assets)
        m = len(self.customer)
        self.m = m
        self.product = rng.choice(len(PRODUCTS), m, p=_PRODUCT_P)
        self.interval = np.array([p.interval_days for p in PRODUCTS], float)[self.product]
        signup = customers.signup[self.customer]
        # Installed between signup and the end, earlier installs more likely.
        span = np.maximum(n_days - 1 - signup, 1)
        self.install = (signup + np.floor(span * rng.random(m) ** 1.6)).astype(np.int64)
        warranty = np.array([p.warranty_years for p in PRODUCTS])[self.product]
        self.warranty_end = self.install + np.round(warranty * 365.25).astype(np.int64)
        nominal = np.array([p.weekly_load for p in PRODUCTS])[self.product]
        self.load_rate = nominal * rng.lognormal(-0.125, 0.5, m) / 7  # per day
        self.nominal_per_interval = nominal * self.interval / 7
        self.seasonal = np.array([p.seasonal for p in PRODUCTS])[self.product]
        self.base_log_hazard = np.log(np.array([p.base_hazard for p in PRODUCTS]))[self.product] + rng.normal(
            0, 0.25, m
        )
        # State at the start: days since the last preventive service, which
        # lax owners (low diligence) let run well past the interval.
        diligence = customers.diligence[self.customer]
        since = rng.random(m) * (0.9 * self.interval + 1 / diligence)
        since = np.minimum(since, np.maximum(-self.install, 0))
        self.last_service = np.where(self.install < 0, -since, self.install).astype(float)
        self.load = np.where(self.install < 0, since * self.load_rate, 0.0)
        self.unreported = np.zeros(m)

    def log_hazard(self, t: float, shift: float = 0.0, *, serviced: bool = False) -> np.ndarray:
        """Log daily hazard `shift` days after `t`; `serviced`: as if serviced at `t`."""
        since = shift if serviced else t + shift - self.last_service
        overdue = np.clip((since - self.interval) / self.interval, 0, 2)
        age_years = np.minimum(np.maximum(t + shift - self.install, 0) / 365.25, 15)
        out_of_warranty = t + shift >= self.warranty_end
        load = 0.0 if serviced else self.load
        load_ratio = (load + self.load_rate * shift) / self.nominal_per_interval
        return (
            self.base_log_hazard
            + 1.3 * overdue
            + 0.07 * age_years
            + 0.4 * out_of_warranty
            + 0.8 * np.minimum(load_ratio, 3)
        )


# --- event buffers ---------------------------------------------------------
class _Buffer:
    """Column chunks of one event table, concatenated once at the end.

    Chunks are kept in the narrowest exact dtype (int32 indices and seconds,
    int8 codes, float32 small integers): the buffers of a million customers
    hold about 75 million rows.
    """

    def __init__(self, **dtypes):
        self.dtypes = dtypes
        self.chunks = {c: [] for c in dtypes}

    def add(self, **arrays: np.ndarray) -> None:
        for name, values in arrays.items():
            self.chunks[name].append(np.asarray(values).astype(self.dtypes[name], copy=False))

    def concat(self, name: str) -> np.ndarray:
        chunks = self.chunks.pop(name)
        return np.concatenate(chunks) if chunks else np.empty(0)


class _Queue:
    """Events caused by earlier events, waiting for the step in which they happen."""

    def __init__(self, **dtypes):
        self.cols = {k: np.empty(0, dtype=v) for k, v in dtypes.items()}

    def push(self, **arrays: np.ndarray) -> None:
        for k, v in arrays.items():
            self.cols[k] = np.concatenate([self.cols[k], v.astype(self.cols[k].dtype)])

    def pop_before(self, t1: float) -> dict[str, np.ndarray]:
        due = self.cols["time"] < t1
        out = {k: v[due] for k, v in self.cols.items()}
        self.cols = {k: v[~due] for k, v in self.cols.items()}
        return out


# --- the simulation --------------------------------------------------------
def _campaign_days(start: pd.Timestamp, n_days: int) -> tuple[int, ...]:
    """List dates of the past campaigns (days since `start`): every third first of the
    month in the second half of the window whose 90-day outcome window ends by its end."""
    months = pd.date_range(start, start + pd.Timedelta(days=n_days), freq="MS")
    days = [(m - start).days for m in months]
    days = [d for d in days if n_days // 2 <= d <= n_days - HORIZON_DAYS]
    return tuple(days[::_CAMPAIGN_EVERY_MONTHS])


class _World:
    def __init__(self, n_customers: int, seed: int, start: pd.Timestamp, n_days: int, *, campaigns: bool = False):
        self.rng = np.random.default_rng(seed)
        self.n_days = n_days
        self.start_weekday = start.dayofweek
        self.cust = _Customers(self.rng, n_customers, n_days)
        self.assets = _Assets(self.rng, self.cust, n_days)
        self.start_doy = start.dayofyear
        self.congestion = 0.0
        self._increments: dict[str, np.ndarray] = {}
        self.next_order = 1
        i4, i2, i1, f4, f8 = np.int32, np.int16, np.int8, np.float32, np.float64
        self.interactions = _Buffer(
            customer=i4, time=i4, channel=i1, topic=i1, is_complaint=bool, resolved=bool, wait=f4,
            handle=f4, abandoned=bool, escalated=bool, csat=f4, nps=f4, ces=f4, sentiment=f8,
        )  # fmt: skip
        self.purchases = _Buffer(
            customer=i4, time=i4, order=i4, amount=f8, quantity=f4, category=i1, is_return=bool
        )
        self.services = _Buffer(asset=i4, time=i4, kind=i1)
        self.usage = _Buffer(customer=i4, day=i2, event=i1, asset=i4, value=f8)
        self.truth = _Buffer(
            customer=i4, as_of=i2, churn_hazard=f8, maintenance_hazard=f8, churn_probability=f8,
            maintenance_probability=f8, disengaged=bool, window_complete=bool,
        )  # fmt: skip
        self.contact_queue = _Queue(customer=np.int64, time=float, topic=np.int64)
        self.return_queue = _Queue(
            customer=np.int64, time=float, order=np.int64, amount=float, quantity=float, category=np.int64
        )
        self.service_queue = _Queue(asset=np.int64, time=float, kind=np.int64)
        self.campaigns = campaigns
        self.campaign_days = frozenset(_campaign_days(start, n_days)) if campaigns else frozenset()
        if campaigns:
            # Drawn per customer from a stream of their own, so that a world without
            # campaigns keeps every draw of the main stream.
            self.campaign_rng = np.random.default_rng([seed, _CAMPAIGN_STREAM])
            quiet = self.cust.contact_rate < _QUIET_CONTACT_RATE
            other_p, quiet_p = _SLEEPING_DOG_P
            self.sleeping_dog = self.campaign_rng.random(n_customers) < np.where(quiet, quiet_p, other_p)
            self.outreach = _Buffer(customer=i4, list_day=i2, control=bool, contacted=bool, contacted_at=i4)
            self.uplift = _Buffer(
                customer=i4, list_day=i2, control=bool, contacted=bool, p_control=f8, p_treated=f8, p_contacted=f8
            )

    # -- one step [t0, t1) --------------------------------------------------
    def step(self, t0: int, t1: int) -> None:
        c, rng = self.cust, self.rng
        length = t1 - t0
        if t0 in self.campaign_days:
            self._campaign(t0)
        alive = c.churn_day > t0
        # Customers are at risk from signup (churn from the day after).
        start_at = np.maximum(t0, c.signup)
        exposure = np.where(alive, np.clip(t1 - start_at, 0, length), 0).astype(float)
        churn_from = np.maximum(t0, c.signup + 1)
        churn_exposure = np.where(alive, np.clip(t1 - churn_from, 0, length), 0)

        hazard = c.churn_hazard(t0)
        who = _unique_sorted(_poisson_pick(rng, hazard * churn_exposure))
        offset = np.floor(rng.random(len(who)) * churn_exposure[who]).astype(np.int64)
        c.churn_day[who] = churn_from[who] + offset

        # Disengagement: enter, or recover, at the rates of the step's start.
        entering = _unique_sorted(_poisson_pick(rng, np.where(c.disengaged, 0.0, c.entry_rate() * exposure)))
        leaving = _unique_sorted(_poisson_pick(rng, np.where(c.disengaged, _DIS_RECOVERY * exposure, 0.0)))
        c.disengaged[leaving] = False
        c.disengaged[entering] = True
        c.disengaged_since[entering] = t0 + rng.random(len(entering)) * length

        self.congestion = 0.7 * self.congestion + rng.normal(0, 0.25)
        self._increments = {}
        self._contacts(t0, t1, exposure)
        self._purchases(t0, t1, exposure)
        self._customer_usage(t0, t1, exposure)
        self._assets_step(t0, t1)

        c.decay(length)
        for name, (tau, _, _) in _DRIVERS.items():
            c.counts[name] += self._increments.pop(name, 0.0)
        c.purchases += self._increments.pop("purchases", 0.0)

    def _add_increment(self, name: str, who: np.ndarray, when: np.ndarray, t1: float, tau: float) -> None:
        inc = _decayed_counts(self.cust.n, who, when, t1, tau)
        self._increments[name] = self._increments.get(name, 0.0) + inc

    def _contacts(self, t0: int, t1: int, exposure: np.ndarray) -> None:
        c, rng = self.cust, self.rng
        rate = c.contact_rate * np.where(c.disengaged, _DIS_CONTACT, 1.0)
        who = _poisson_pick(rng, rate * exposure)
        start_at = np.maximum(t0, c.signup[who])
        time = start_at + rng.random(len(who)) * (t1 - start_at)
        topic_cdf = _cdf(np.stack([_TOPIC_P, _TOPIC_P_DISENGAGED]))
        topic = _choice_rows(rng, topic_cdf, c.disengaged[who].astype(np.int64))
        queued = self.contact_queue.pop_before(t1)
        who = np.concatenate([who, queued["customer"]])
        time = np.concatenate([time, queued["time"]])
        topic = np.concatenate([topic, queued["topic"]])
        keep = time < np.minimum(c.churn_day[who], self.n_days)
        who, time, topic = who[keep], time[keep], topic[keep]
        n = len(who)
        if n == 0:
            return
        # Contacts happen in waking hours: move the time of day into 07:00-22:00.
        time = np.floor(time) + (7 + 15 * (time - np.floor(time))) / 24

        channel = np.where(
            rng.random(n) < 0.55,
            _PREFERRED_TO_CHANNEL[c.preferred[who]],
            _choice_rows(rng, _cdf(_CHANNEL_P)[None, :], np.zeros(n, np.int64)),
        )
        wait = rng.exponential(1.0, n) * _WAIT_MEAN[channel] * np.exp(self.congestion)
        queueing = channel <= 1
        patience = rng.exponential(400.0, n)
        abandoned = queueing & ((wait > patience) | ((channel == 1) & (rng.random(n) < 0.12)))
        wait = np.where(abandoned, np.minimum(wait, patience), wait)
        long_wait = wait > _LONG_WAIT  # NaN compares False
        complaint = ~abandoned & (rng.random(n) < _COMPLAINT_P[topic] + 0.15 * long_wait)
        escalated = complaint & (rng.random(n) < 0.15) | ~complaint & ~abandoned & (rng.random(n) < 0.02)
        p_resolved = np.where(complaint, np.where(topic == _BREAKDOWN, 0.45, 0.55), 0.9) + 0.1 * escalated
        resolved = ~abandoned & (rng.random(n) < p_resolved)
        handle = np.where(abandoned, np.nan, rng.lognormal(-0.125, 0.5, n) * _HANDLE_MEAN[channel])
        experience = (
            0.6
            + 1.0 * resolved
            - 0.9 * (complaint & ~resolved)
            - 0.6 * long_wait
            - 0.3 * escalated
            + c.mood[who]
            + _DIS_MOOD * c.disengaged[who]
            + rng.normal(0, 0.6, n)
        )
        surveyed = ~abandoned & (rng.random(n) < 0.3)
        csat = np.where(surveyed, np.clip(np.round(3.2 + experience), 1, 5), np.nan)
        nps = np.where(surveyed & (rng.random(n) < 0.5), np.clip(np.round(7 + 2 * experience), 0, 10), np.nan)
        ces_asked = surveyed & (rng.random(n) < 0.5)
        ces = np.where(ces_asked, np.clip(np.round(4.5 + 1.2 * experience), 1, 7), np.nan)
        has_sentiment = ~abandoned & ((channel >= 2) | (rng.random(n) < 0.5))
        sentiment = np.where(
            has_sentiment, np.round(np.tanh(0.7 * experience + rng.normal(0, 0.3, n)), 3), np.nan
        )

        # Repeat contacts: within 7 days of the customer's previous contact.
        order = np.lexsort((time, who))
        who_s, time_s = who[order], time[order]
        previous = c.last_contact[who_s].copy()
        same = np.r_[False, who_s[1:] == who_s[:-1]]
        previous[same] = time_s[:-1][same[1:]]
        repeat = time_s - previous < 7
        latest = np.r_[who_s[1:] != who_s[:-1], True]
        c.last_contact[who_s[latest]] = time_s[latest]

        unresolved = complaint & ~resolved
        detractor = (csat <= 2) | (nps <= 4)
        self._add_increment("unresolved", who[unresolved], time[unresolved], t1, _DRIVERS["unresolved"][0])
        self._add_increment("repeat", who_s[repeat], time_s[repeat], t1, _DRIVERS["repeat"][0])
        bad = long_wait | abandoned
        self._add_increment("bad_wait", who[bad], time[bad], t1, _DRIVERS["bad_wait"][0])
        self._add_increment("detractor", who[detractor], time[detractor], t1, _DRIVERS["detractor"][0])

        # Abandoned calls are retried soon; unresolved complaints come back.
        retry = abandoned & (rng.random(n) < 0.6)
        follow = unresolved & (rng.random(n) < 0.45)
        delay = np.where(retry, rng.uniform(0.01, 1.5, n), rng.uniform(0.3, 6.0, n))
        again = retry | follow
        self.contact_queue.push(customer=who[again], time=time[again] + delay[again], topic=topic[again])

        self.interactions.add(
            customer=who, time=_seconds(time), channel=channel, topic=topic, is_complaint=complaint,
            resolved=resolved, wait=np.round(wait), handle=np.round(handle), abandoned=abandoned,
            escalated=escalated,
            csat=csat, nps=nps, ces=ces, sentiment=sentiment,
        )  # fmt: skip

    def _purchases(self, t0: int, t1: int, exposure: np.ndarray) -> None:
        c, rng = self.cust, self.rng
        rate = c.purchase_rate * np.where(c.disengaged, 0.35, 1.0)
        who = _poisson_pick(rng, rate * exposure)
        start_at = np.maximum(t0, c.signup[who])
        time = start_at + rng.random(len(who)) * (t1 - start_at)
        keep = time < c.churn_day[who]
        who, time = who[keep], time[keep]
        n = len(who)
        category = _choice_rows(rng, _cdf(_CATEGORY_P)[None, :], np.zeros(n, np.int64))
        quantity = np.where(category == 0, 1, 1 + rng.poisson(0.4, n)).astype(float)
        amount = np.round(_UNIT_PRICE[category] * rng.lognormal(-0.08, 0.4, n) * quantity, 2)
        order = self.next_order + np.arange(n)
        self.next_order += n
        self._add_increment("purchases", who, time, t1, _PURCHASE_TAU)
        returned = rng.random(n) < _RETURN_P
        self.return_queue.push(
            customer=who[returned], time=time[returned] + rng.uniform(3, 30, returned.sum()),
            order=order[returned], amount=-amount[returned], quantity=quantity[returned],
            category=category[returned],
        )  # fmt: skip
        refunds = self.return_queue.pop_before(t1)
        ok = refunds["time"] < np.minimum(c.churn_day[refunds["customer"]], self.n_days)
        refunds = {k: v[ok] for k, v in refunds.items()}
        self.purchases.add(
            customer=np.concatenate([who, refunds["customer"]]),
            time=_seconds(np.concatenate([time, refunds["time"]])),
            order=np.concatenate([order, refunds["order"]]),
            amount=np.concatenate([amount, refunds["amount"]]),
            quantity=np.concatenate([quantity, refunds["quantity"]]),
            category=np.concatenate([category, refunds["category"]]),
            is_return=np.r_[np.zeros(n, bool), np.ones(len(refunds["time"]), bool)],
        )

    def _customer_usage(self, t0: int, t1: int, exposure: np.ndarray) -> None:
        c, rng = self.cust, self.rng
        # Disengagement cuts usage at its onset (to _DIS_USAGE_DROP), then it fades further.
        # Rows are drawn at the step's highest rate and thinned by the level on their day,
        # so a customer who disengages mid-step stops using the product from that day on.
        since = np.where(c.disengaged, c.disengaged_since, np.inf)
        ceiling = np.where(since <= t0, _DIS_USAGE_DROP * np.exp(-(t0 - since) / _DIS_USAGE_TAU), 1.0)
        who = _poisson_pick(rng, c.usage_rate * ceiling * exposure)
        # The day follows the customer's weekly rhythm over the step's weekdays.
        weekdays = (self.start_weekday + np.arange(t0, t1)) % 7
        day = t0 + _choice_rows(rng, _cdf(_RHYTHM[:, weekdays]), c.rhythm[who])
        event = _choice_rows(rng, _cdf(_EVENT_MIX), c.usage_profile[who])
        midday = day + 0.5 - since[who]
        level = np.where(midday >= 0, _DIS_USAGE_DROP * np.exp(-np.maximum(midday, 0) / _DIS_USAGE_TAU), 1.0)
        thin = rng.random(len(who)) * ceiling[who] < level
        quiet = midday >= 0  # a disengaged day: short sessions
        who, day, event, quiet = who[thin], day[thin], event[thin], quiet[thin]
        n = len(who)
        # Counts per day for login, feature_x, article views; minutes for streaming.
        # Disengaged days are short: one login, few feature uses, a third of the minutes.
        extra = np.array([1.0, 0.0, 2.0, 0.5])[event] * np.where(quiet, 0.2, 1.0)
        value = (1 + rng.poisson(extra)).astype(float)
        streams = np.flatnonzero(event == 1)
        minutes = rng.gamma(2.0, 25.0, len(streams)) * np.where(quiet[streams], 1 / 3, 1.0)
        value[streams] = np.maximum(np.round(minutes), 1)
        # One row per (customer, day, event): merge the rare collisions.
        # `who` is sorted, so only customers with several rows can collide.
        multi = np.zeros(n, bool)
        same = who[1:] == who[:-1]
        multi[1:] |= same
        multi[:-1] |= same
        sub = np.flatnonzero(multi)
        keep = ~multi
        if len(sub):
            key = (who[sub] * 32 + (day[sub] - t0)) * 8 + event[sub]
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            value[sub[first]] = np.bincount(inverse, weights=value[sub])
            keep[sub[first]] = True
        keep &= (day >= c.signup[who]) & (day < c.churn_day[who])
        self.usage.add(
            customer=who[keep], day=day[keep], event=event[keep],
            asset=np.full(keep.sum(), -1), value=value[keep],
        )  # fmt: skip

    def _assets_step(self, t0: int, t1: int) -> None:
        a, c, rng = self.assets, self.cust, self.rng
        length = t1 - t0
        owner_churn = c.churn_day[a.customer]
        start_at = np.maximum(t0, np.maximum(a.install, c.signup[a.customer]))
        end_at = np.minimum(t1, owner_churn)
        exposure = np.clip(end_at - start_at, 0, length).astype(float)
        running = exposure > 0

        def times(idx: np.ndarray) -> np.ndarray:
            return start_at[idx] + rng.random(len(idx)) * exposure[idx]

        # Unplanned: failures and repairs at the asset's hazard.
        hit = _unique_sorted(_poisson_pick(rng, np.exp(a.log_hazard(t0)) * exposure))
        hit_time = times(hit)
        is_failure = rng.random(len(hit)) < 0.65
        kind = np.where(is_failure, _FAILURE, _REPAIR)
        repair_later = is_failure & (rng.random(len(hit)) < 0.8)
        self.service_queue.push(
            asset=hit[repair_later], time=hit_time[repair_later] + rng.uniform(1, 10, repair_later.sum()),
            kind=np.full(repair_later.sum(), _REPAIR),
        )  # fmt: skip
        # After a breakdown half the owners book the overdue preventive service.
        book = rng.random(len(hit)) < 0.5
        self.service_queue.push(
            asset=hit[book], time=hit_time[book] + rng.uniform(7, 30, book.sum()),
            kind=np.full(book.sum(), _PREVENTIVE),
        )  # fmt: skip
        owner = a.customer[hit]
        calls = rng.random(len(hit)) < 0.75
        self.contact_queue.push(
            customer=owner[calls], time=hit_time[calls] + rng.uniform(0, 2.5, calls.sum()),
            topic=np.full(calls.sum(), _BREAKDOWN),
        )  # fmt: skip
        self._add_increment("failure", owner, hit_time, t1, _DRIVERS["failure"][0])

        # Planned: preventive services once due, at the owner's diligence.
        due = running & (t0 - a.last_service >= 0.9 * a.interval)
        serviced = _unique_sorted(_poisson_pick(rng, np.where(due, c.diligence[a.customer] * exposure, 0.0)))
        serviced_time = times(serviced)
        inspected = _unique_sorted(_poisson_pick(rng, _INSPECTION_RATE * exposure))
        inspected_time = times(inspected)

        queued = self.service_queue.pop_before(t1)
        ok = queued["time"] < np.minimum(owner_churn[queued["asset"]], self.n_days)
        queued = {k: v[ok] for k, v in queued.items()}

        asset = np.concatenate([hit, serviced, inspected, queued["asset"]])
        time = np.concatenate([hit_time, serviced_time, inspected_time, queued["time"]])
        kinds = np.concatenate(
            [kind, np.full(len(serviced), _PREVENTIVE), np.full(len(inspected), _INSPECTION), queued["kind"]]
        )
        # Technicians work 08:00-17:00.
        visit = np.floor(time) + (8 + 9 * (time - np.floor(time))) / 24
        self.services.add(asset=asset, time=_seconds(visit), kind=kinds)

        # Running load accrues; a preventive service resets the load and the clock.
        season = 1 + 0.5 * np.cos(2 * np.pi * ((t0 + self.start_doy) % 365.25 - 15) / 365.25)
        rate = a.load_rate * np.where(a.seasonal, season, 1.0)
        a.load += rate * exposure
        a.unreported += rate * exposure
        prev = kinds == _PREVENTIVE
        p_asset, p_time = asset[prev], time[prev]
        if len(p_asset):
            order = np.lexsort((p_time, p_asset))  # the latest service per asset wins
            p_asset, p_time = p_asset[order], p_time[order]
            a.last_service[p_asset] = p_time
            a.load[p_asset] = rate[p_asset] * np.maximum(np.minimum(t1, owner_churn[p_asset]) - p_time, 0)

        # Telemetry: each report carries the load since the asset's previous one.
        report = _unique_sorted(_poisson_pick(rng, _REPORT_RATE * exposure))
        report_day = np.floor(times(report)).astype(np.int64)
        value = np.round(a.unreported[report], 1)
        a.unreported[report] = 0.0
        positive = value > 0
        report, report_day, value = report[positive], report_day[positive], value[positive]
        load_event = np.array([len(USAGE_EVENTS) + (p.load_event == "cycles") for p in PRODUCTS])
        self.usage.add(
            customer=a.customer[report], day=report_day, event=load_event[a.product[report]],
            asset=report, value=value,
        )  # fmt: skip

    # -- past campaigns -----------------------------------------------------
    def _campaign(self, t: int) -> None:
        """A retention-call list at day `t`: targeted on each customer's own risk, randomised."""
        c, rng = self.cust, self.campaign_rng
        population = np.flatnonzero((c.signup < t) & (c.churn_day >= t) & ~c.do_not_contact)
        p_all = 1 - np.exp(-_cumulative(self._churn_hazards(t, population))[-1])
        explore = rng.random(len(population)) < _EXPLORE_SHARE
        on_list = (p_all >= _CAMPAIGN_THRESHOLD) | explore
        target, p_control = population[on_list], p_all[on_list]
        control = rng.random(len(target)) < _CONTROL_SHARE
        reached = ~control & (rng.random(len(target)) < _REACH)
        hours = rng.uniform(9, 17, len(target))
        # Both arms for every listed customer: contact them all, measure, undo, then contact
        # only those who were reached.
        before = {name: c.counts[name].copy() for name in (*_TROUBLE, "reminded")}
        self._contact(target)
        p_contacted = 1 - np.exp(-_cumulative(self._churn_hazards(t, target))[-1])
        c.counts.update(before)
        self._contact(target[reached])
        self.outreach.add(
            customer=target, list_day=np.full(len(target), t), control=control, contacted=reached,
            contacted_at=_seconds(t + hours / 24),
        )  # fmt: skip
        self.uplift.add(
            customer=target, list_day=np.full(len(target), t), control=control, contacted=reached,
            p_control=p_control, p_treated=_REACH * p_contacted + (1 - _REACH) * p_control, p_contacted=p_contacted,
        )  # fmt: skip

    def _contact(self, who: np.ndarray) -> None:
        """A retention call's effect: an engaged customer's trouble is cleared; a sleeping dog is reminded."""
        c = self.cust
        dog = self.sleeping_dog[who]
        # A disengaged customer has already decided: the call changes nothing (a lost cause).
        # A sleeping dog is not helped either: the call reminds it of a contract it had forgotten.
        engaged = who[~c.disengaged[who] & ~dog]
        for name in _TROUBLE:
            c.counts[name][engaged] *= 1 - _RESOLVE
        c.counts["reminded"][who[dog]] += 1.0

    # -- truth --------------------------------------------------------------
    def _churn_hazards(self, t: int, population: np.ndarray) -> np.ndarray:
        """Daily churn hazards of `population` on the oracle's grid after `t`, shape (grid, customers)."""
        c = self.cust
        entry = c.entry_rate()[population]
        dis = c.disengaged[population]
        leave = _DIS_HAZARD + _DIS_RECOVERY
        churn_h = []
        for s in _GRID:
            h = np.exp(c.drivers_log_hazard(t, s)[population])
            # Disengaged customers recover or churn; engaged ones may become disengaged.
            p_dis = np.where(dis, np.exp(-_DIS_RECOVERY * s), entry * (1 - np.exp(-leave * s)) / leave)
            churn_h.append(h + _DIS_HAZARD * p_dis)
        return np.array(churn_h)

    def record_truth(self, t: int) -> None:
        c, a = self.cust, self.assets
        population = np.flatnonzero((c.signup < t) & (c.churn_day >= t))
        grid = _GRID
        dis = c.disengaged[population]
        owned = (a.install < t) & (c.signup[a.customer] < t) & (c.churn_day[a.customer] >= t)
        owners = a.customer[owned]
        maint_h = []
        # Due assets get their preventive service at the owner's diligence rate.
        until_due = np.maximum(0.9 * a.interval - (t - a.last_service), 0)[owned]
        diligence = c.diligence[owners]
        for s in grid:
            unserviced = np.exp(-diligence * np.maximum(s - until_due, 0))
            h_asset = unserviced * np.exp(a.log_hazard(t, s)[owned]) + (1 - unserviced) * np.exp(
                a.log_hazard(t, min(s, 30.0), serviced=True)[owned]
            )
            m = np.bincount(owners, weights=h_asset, minlength=c.n)
            maint_h.append(m[population])
        churn_h, maint_h = self._churn_hazards(t, population), np.array(maint_h)
        cum_churn, cum_maint = _cumulative(churn_h), _cumulative(maint_h)
        survive = np.exp(-cum_churn[:-1] - cum_maint[:-1])
        p_maint = (survive * (1 - np.exp(-np.diff(cum_maint, axis=0)))).sum(0)
        self.truth.add(
            customer=population,
            as_of=np.full(len(population), t),
            churn_hazard=np.exp(c.drivers_log_hazard(t)[population]) + _DIS_HAZARD * dis,
            maintenance_hazard=maint_h[0],
            churn_probability=1 - np.exp(-cum_churn[-1]),
            maintenance_probability=p_maint,
            disengaged=dis.copy(),
            window_complete=np.full(len(population), t + HORIZON_DAYS <= self.n_days),
        )


_GRID = np.arange(0, HORIZON_DAYS + 1, 30, dtype=float)  # the oracle's integration grid (days after as_of)


def _cumulative(hazards: np.ndarray) -> np.ndarray:
    """Cumulative hazards at each grid point from daily hazards on `_GRID` (trapezoids)."""
    step = np.diff(_GRID)[:, None]
    zero = np.zeros((1, hazards.shape[1]))
    return np.vstack([zero, np.cumsum((hazards[1:] + hazards[:-1]) / 2 * step, 0)])


# --- building the output frames --------------------------------------------
def _digits(numbers: np.ndarray, width: int, prefix: str = "") -> np.ndarray:
    """Rows of ASCII bytes ``prefix + zero-padded number``, shape (n, len(prefix) + width)."""
    head = np.frombuffer(prefix.encode(), np.uint8)
    body = np.empty((len(numbers), len(head) + width), np.uint8)
    body[:, : len(head)] = head
    rest = np.asarray(numbers, np.int64).copy()
    for j in range(body.shape[1] - 1, len(head) - 1, -1):
        body[:, j] = rest % 10 + 48
        rest //= 10
    return body


def _arrow_strings(body: np.ndarray, missing: np.ndarray | None = None) -> pd.api.extensions.ExtensionArray:
    """Fixed-width byte rows as a pandas "str" array (zero-copy into one Arrow buffer)."""
    n, size = body.shape
    offsets = np.arange(0, n * size + 1, size, dtype=np.int64)
    validity = None
    if missing is not None and missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(body.ravel()), validity)
    return pd.array(array, dtype="str")


class _IdMaker:
    """Ids ``prefix + zero-padded (index + 1)``, rendered once and gathered per row."""

    def __init__(self, n: int, width: int, prefix: str = ""):
        self.rows = _digits(np.arange(1, n + 1), width, prefix)
        self.size = self.rows.shape[1]

    def __call__(self, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
        index = np.asarray(index, np.int64)
        missing = index < 0
        # One fixed-width record per id: a single gather copies `size` bytes a row.
        records = self.rows.view(f"V{self.size}").ravel()
        if not missing.any():
            return _arrow_strings(records[index].view(np.uint8).reshape(len(index), self.size))
        # Missing ids take no bytes: most usage rows have no asset.
        data = records[index[~missing]].view(np.uint8)
        offsets = np.zeros(len(index) + 1, np.int64)
        np.cumsum(np.where(missing, 0, self.size), out=offsets[1:])
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
        array = pa.LargeStringArray.from_buffers(
            len(index), pa.py_buffer(offsets), pa.py_buffer(data), validity
        )
        return pd.array(array, dtype="str")


def _strings(labels: pa.Array, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a pandas "str" array; negative codes become missing."""
    codes = np.asarray(codes, np.int64)
    taken = labels.take(pa.array(codes, mask=codes < 0))
    return pd.array(taken, dtype="str")


def _boolean(values: np.ndarray) -> pd.arrays.BooleanArray:
    values = np.asarray(values, bool)
    return pd.arrays.BooleanArray(values, np.zeros(len(values), bool))


def _seconds(days: np.ndarray) -> np.ndarray:
    """Event times in days since the start, floored to whole seconds."""
    return np.floor(np.asarray(days) * 86_400).astype(np.int64)


def _timestamps(start_us: int, offsets: np.ndarray, *, seconds: bool = True) -> np.ndarray:
    """Whole seconds (or, with ``seconds=False``, days) since the start as datetime64[us]."""
    unit = 1_000_000 if seconds else _DAY_US
    return (start_us + np.asarray(offsets).astype(np.int64) * unit).astype("datetime64[us]")


def _frames(world: _World, start: pd.Timestamp) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each table in turn, built from the simulation's buffers (which it empties as it goes)."""
    c, a = world.cust, world.assets
    start_us = int(np.datetime64(start, "us").astype(np.int64))
    width = max(7, len(str(c.n)))
    customer_ids = _IdMaker(c.n, width)
    asset_ids = _IdMaker(a.m, max(8, len(str(a.m))), "A")

    def text(values) -> pa.Array:
        return pa.array(list(values), type=pa.large_string())

    # The largest table first, while the other tables are still compact buffers.
    b = world.usage
    usage_events = text((*USAGE_EVENTS, "run_hours", "cycles"))
    yield "usage", pd.DataFrame(
        {
            "customer_id": customer_ids(b.concat("customer")),
            "timestamp": _timestamps(start_us, b.concat("day"), seconds=False),
            "event": _strings(usage_events, b.concat("event")),
            "asset_id": asset_ids(b.concat("asset")),
            "value": b.concat("value"),
        }
    )

    churned = c.churn_day < world.n_days
    churn_date = _timestamps(start_us, np.where(churned, c.churn_day, 0), seconds=False)
    churn_date[~churned] = np.datetime64("NaT")
    yield "customers", pd.DataFrame(
        {
            "customer_id": customer_ids(np.arange(c.n)),
            "signup_date": _timestamps(start_us, c.signup, seconds=False),
            "churn_date": churn_date,
            "segment": _strings(text(SEGMENTS), c.segment),
            "plan": _strings(text(PLANS), c.plan),
            "region": _strings(text(REGIONS), c.region),
            "value": c.value.astype(float),
            "do_not_contact": _boolean(c.do_not_contact),
            "preferred_channel": _strings(text(PREFERRED), c.preferred),
        }
    )

    b = world.interactions
    who = b.concat("customer").astype(np.int64)
    yield "interactions", pd.DataFrame(
        {
            "customer_id": customer_ids(who),
            "timestamp": _timestamps(start_us, b.concat("time")),
            "channel": _strings(text(CHANNELS), b.concat("channel")),
            "topic": _strings(text(TOPICS), b.concat("topic")),
            "is_complaint": _boolean(b.concat("is_complaint")),
            "resolved": _boolean(b.concat("resolved")),
            "wait_seconds": b.concat("wait").astype(float),
            "handle_seconds": b.concat("handle").astype(float),
            "abandoned": _boolean(b.concat("abandoned")),
            "escalated": _boolean(b.concat("escalated")),
            "csat": b.concat("csat").astype(float),
            "nps": b.concat("nps").astype(float),
            "ces": b.concat("ces").astype(float),
            "sentiment": b.concat("sentiment").astype(float),
        }
    )
    del who

    b = world.purchases
    orders = b.concat("order").astype(np.int64)
    yield "purchases", pd.DataFrame(
        {
            "customer_id": customer_ids(b.concat("customer")),
            "timestamp": _timestamps(start_us, b.concat("time")),
            "order_id": _arrow_strings(_digits(orders, max(9, len(str(world.next_order))), "O")),
            "amount": b.concat("amount").astype(float),
            "quantity": b.concat("quantity").astype(float),
            "category": _strings(text(CATEGORIES), b.concat("category")),
            "is_return": _boolean(b.concat("is_return")),
        }
    )

    yield "assets", pd.DataFrame(
        {
            "asset_id": asset_ids(np.arange(a.m)),
            "customer_id": customer_ids(a.customer),
            "product": _strings(text(p.name for p in PRODUCTS), a.product),
            "install_date": _timestamps(start_us, a.install, seconds=False),
            "warranty_end": _timestamps(start_us, a.warranty_end, seconds=False),
            "service_interval_days": a.interval.astype(float),
        }
    )

    b = world.services
    asset = b.concat("asset").astype(np.int64)
    kind = b.concat("kind").astype(np.int64)
    time = b.concat("time")
    yield "service_events", pd.DataFrame(
        {
            "asset_id": asset_ids(asset),
            "timestamp": _timestamps(start_us, time),
            "kind": _strings(text(SERVICE_KINDS), kind),
            "customer_id": customer_ids(a.customer[asset]),
            "cost": np.round(_SERVICE_COST[kind] * world.rng.lognormal(-0.08, 0.4, len(kind)), 2),
        }
    )

    if world.campaigns:
        yield from _campaign_frames(world, start_us, customer_ids, text)

    b = world.truth
    yield "truth", pd.DataFrame(
        {
            "customer_id": customer_ids(b.concat("customer")),
            "as_of": _timestamps(start_us, b.concat("as_of"), seconds=False),
            "churn_hazard": b.concat("churn_hazard"),
            "maintenance_hazard": b.concat("maintenance_hazard"),
            "churn_probability": b.concat("churn_probability"),
            "maintenance_probability": b.concat("maintenance_probability"),
            "disengaged": _boolean(b.concat("disengaged")),
            "window_complete": _boolean(b.concat("window_complete")),
        }
    )


def _campaign_frames(world: _World, start_us: int, customer_ids: _IdMaker, text) -> Iterator[tuple[str, pd.DataFrame]]:
    """The past campaigns' ``outreach_log`` (a contract table) and their ``uplift_truth``."""
    b = world.outreach
    who = b.concat("customer")
    n = len(who)
    list_date = _timestamps(start_us, b.concat("list_day"), seconds=False)
    control = b.concat("control").astype(bool)
    contacted = b.concat("contacted").astype(bool)
    contacted_at = _timestamps(start_us, b.concat("contacted_at"))
    contacted_at[~contacted] = np.datetime64("NaT")
    action = _strings(text([CAMPAIGN_ACTION]), np.zeros(n, np.int64))
    group = _strings(text(("treatment", "control")), control.astype(np.int64))
    by_phone = np.where(control, -1, 0)  # code of "phone", or missing for control
    yield "outreach_log", pd.DataFrame(
        {
            "customer_id": customer_ids(who),
            "list_date": list_date,
            "action": action,
            "group": group,
            "contacted_at": contacted_at,
            "channel": _strings(text(["phone"]), by_phone),
            "outcome": _strings(text(("reached", "no_answer")), np.where(control, -1, (~contacted).astype(np.int64))),
        }
    )
    b = world.uplift
    who = b.concat("customer")
    p_control, p_treated = b.concat("p_control"), b.concat("p_treated")
    yield "uplift_truth", pd.DataFrame(
        {
            "customer_id": customer_ids(who),
            "list_date": _timestamps(start_us, b.concat("list_day"), seconds=False),
            "action": _strings(text([CAMPAIGN_ACTION]), np.zeros(len(who), np.int64)),
            "group": _strings(text(("treatment", "control")), b.concat("control").astype(np.int64)),
            "churn_probability_control": p_control,
            "churn_probability_treated": p_treated,
            "treatment_effect": p_treated - p_control,
            "horizon_days": np.full(len(who), HORIZON_DAYS, np.int64),
            "contacted": _boolean(b.concat("contacted")),
            "churn_probability_contacted": b.concat("p_contacted"),
            "sleeping_dog": _boolean(world.sleeping_dog[who.astype(np.int64)]),
        }
    )


def _step_bounds(start: pd.Timestamp, n_days: int) -> np.ndarray:
    """Step boundaries (in days since `start`) every two weeks and at each first of the month."""
    weeks = np.arange(0, n_days, _STEP_DAYS)
    months = pd.date_range(start, start + pd.Timedelta(days=n_days), freq="MS")
    month_days = np.array([(m - start).days for m in months], dtype=np.int64)
    bounds = np.union1d(np.r_[weeks, month_days[(month_days > 0) & (month_days < n_days)]], [n_days])
    return bounds.astype(np.int64)


def generate_world(
    n_customers: int,
    *,
    seed: int,
    end: str | pd.Timestamp = "2026-11-01",
    years: float = 2.0,
    progress: bool = False,
    campaigns: bool = False,
) -> dict[str, pd.DataFrame]:
    """Simulate a customer base with planted churn and maintenance drivers.

    Parameters
    ----------
    n_customers : int
        Number of customers ever in the base (signed up before or during the
        window); about 60 % of them own 1-3 assets.
    seed : int
        Seed of the one random generator; the same seed gives the same tables.
    end : str or Timestamp, default="2026-11-01"
        Exclusive end of the simulated window (normalised to midnight).
    years : float, default=2.0
        Length of the window; every event lies in ``[end - years, end)``.
    progress : bool, default=False
        Show a progress bar over the simulated time steps on stderr.
    campaigns : bool, default=False
        Run the past retention-call campaigns (see the module docstring) and
        return their ``outreach_log`` and ``uplift_truth``. Off by default: the
        calls change who churns after each list, which no feature sees, and the
        churn model's share of the oracle falls (91.2 % -> 85.4 % on 5,000
        customers, seed 1); without them the world is draw for draw as before.

    Returns
    -------
    dict of str to DataFrame
        The contract tables ``customers, interactions, purchases, assets,
        service_events, usage`` (and ``outreach_log`` with campaigns) typed as
        validation returns them, plus ``truth`` and ``uplift_truth`` (see the
        module docstring for drivers, campaigns and the oracle).

    Examples
    --------
    >>> world = generate_world(300, seed=7, end="2025-01-01", years=1.5)
    >>> sorted(world)
    ['assets', 'customers', 'interactions', 'purchases', 'service_events', 'truth', 'usage']
    >>> world["customers"]["customer_id"].iloc[0]
    '0000001'
    >>> bool(world["interactions"]["timestamp"].max() < pd.Timestamp("2025-01-01"))
    True
    >>> truth = world["truth"]
    >>> bool(truth["churn_probability"].between(0, 1).all())
    True
    >>> with_campaigns = generate_world(300, seed=7, end="2025-01-01", years=1.5, campaigns=True)
    >>> sorted(set(with_campaigns) - set(world))
    ['outreach_log', 'uplift_truth']
    >>> log = with_campaigns["outreach_log"]
    >>> sorted(log["group"].unique()), bool(log.loc[log["group"] == "control", "contacted_at"].isna().all())
    (['control', 'treatment'], True)
    """
    world, start = _simulate(n_customers, seed, end, years, progress, campaigns)
    tables = dict(_frames(world, start))
    return {name: tables[name] for name in TABLE_NAMES if name in tables}


class WrittenTable(NamedTuple):
    """A table `generate_world_files` wrote: its file and its number of rows."""

    path: Path
    rows: int


def generate_world_files(
    out_dir: Path | str,
    n_customers: int,
    *,
    seed: int,
    fmt: str = "parquet",
    end: str | pd.Timestamp = "2026-11-01",
    years: float = 2.0,
    progress: bool = False,
    campaigns: bool = False,
) -> dict[str, WrittenTable]:
    """Simulate like `generate_world` and write each table as soon as it is built.

    The same tables and bytes as ``write_world(generate_world(...), out_dir)``, with a
    lower memory peak: only one finished table is held at a time (at a million customers
    the usage table alone is about 67 million rows), which is how `churnguard generate`
    writes a world.

    Returns
    -------
    dict of str to WrittenTable
        The file written for each table and its number of rows, in the order of
        `generate_world`'s keys.

    Examples
    --------
    >>> import tempfile
    >>> written = generate_world_files(tempfile.mkdtemp(), 50, seed=1, fmt="csv")
    >>> written["customers"].path.name, written["customers"].rows
    ('customers.csv', 50)
    >>> sorted(written) == sorted(generate_world(50, seed=1))
    True
    """
    _check_format(fmt)
    out_dir = Path(out_dir)
    world, start = _simulate(n_customers, seed, end, years, progress, campaigns)
    written = {}
    for name, frame in _frames(world, start):
        written[name] = WrittenTable(write_table(frame, out_dir / f"{name}.{fmt}"), len(frame))
        del frame  # before the next table is built
    return {name: written[name] for name in TABLE_NAMES if name in written}


def _simulate(n_customers: int, seed: int, end, years: float, progress: bool,
              campaigns: bool = False) -> tuple[_World, pd.Timestamp]:
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    end = pd.Timestamp(end).normalize()
    n_days = int(round(years * 365.25))
    if n_days < 28:
        raise ValueError(f"years must cover at least four weeks, got {years}")
    start = end - pd.Timedelta(days=n_days)
    world = _World(n_customers, seed, start, n_days, campaigns=campaigns)
    bounds = _step_bounds(start, n_days)
    # Truth from a year in (half the window if shorter): earlier as-ofs lack history.
    first_truth = start + pd.Timedelta(days=min(365, n_days // 2))
    truth_days = {(m - start).days for m in pd.date_range(first_truth, end, freq="MS")}
    steps = tqdm(
        zip(bounds[:-1], bounds[1:]),
        total=len(bounds) - 1,
        disable=not progress,
        desc="generate",
        unit="step",
    )
    for t0, t1 in steps:
        if int(t0) in truth_days:
            world.record_truth(int(t0))
        world.step(int(t0), int(t1))
    if n_days in truth_days:
        world.record_truth(n_days)
    return world, start


def _check_format(fmt: str) -> None:
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")


def write_world(
    world: dict[str, pd.DataFrame], out_dir: Path | str, *, fmt: str = "parquet"
) -> dict[str, Path]:
    """Write each table of `world` to ``out_dir/NAME.fmt``, each file atomically.

    Parameters
    ----------
    world : dict of str to DataFrame
        Tables as returned by `generate_world`.
    out_dir : path
        Directory to write into; created if missing.
    fmt : {"parquet", "csv"}, default="parquet"

    Returns
    -------
    dict of str to Path
        The file written for each table.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_world(generate_world(50, seed=1), tempfile.mkdtemp(), fmt="csv")
    >>> paths["customers"].name
    'customers.csv'
    """
    _check_format(fmt)
    out_dir = Path(out_dir)
    return {name: write_table(frame, out_dir / f"{name}.{fmt}") for name, frame in world.items()}
