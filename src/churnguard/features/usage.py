"""Product usage and asset telemetry: activity per event, its trend, and asset load since service.

The family reads ``usage`` (required) and, when present, ``assets`` and ``service_events``.
Event names come from the data, never from code: :func:`resolve` picks the most frequent
events seen before ``as_of`` plus those the feature set lists, and :func:`build` makes one
group of columns per resolved event.

Usage is by far the largest table (tens of millions of rows), so :func:`build` makes one
DuckDB pass over the registered pandas frame that rolls events up to one row per customer,
event and day before ``as_of`` (long format, integer keys), then derives every window,
trend and share from those rows with numpy bincounts; one more DuckDB pass over the
asset-linked rows sums load per asset. Pandas goes in, pandas comes out. (A single wide
query with one ``FILTER`` aggregate per event and window was about 10x slower.)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from churnguard.config import UsageFeatures
from churnguard.features.catalogue import FeatureInfo
from churnguard.features.engine import bind, duckdb_cursor, name_parts, sql_string, sql_timestamp
from churnguard.features.service import (
    days_before,
    finish_frame,
    sql_list,
)

FAMILY = "usage"
TABLES: tuple[str, ...] = ("usage",)  # assets and service_events add the load columns

_USAGE_COLUMNS = ["customer_id", "timestamp", "event", "asset_id", "value"]
_ASSET_COLUMNS = ["asset_id", "customer_id", "product", "install_date", "service_interval_days"]
_US_PER_DAY = 86_400_000_000
_MONTH_DAYS = 30


def resolve(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, spec: UsageFeatures) -> UsageFeatures:
    """Fix the events to build: the ``top_k_events`` most frequent before `as_of`, plus ``events``.

    Frequency is the number of usage rows strictly before `as_of`; ties go to the name that
    sorts first, so the choice is deterministic. The result is stored sorted in
    ``resolved_events``. A spec that is already resolved comes back unchanged, so a model
    trained on one resolution keeps building the same columns.

    Examples
    --------
    >>> usage = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b", "b", "b"],
    ...     "event": ["post", "login", "login", "share", "stream"],
    ...     "timestamp": pd.to_datetime(["2024-01-01"] * 4 + ["2024-05-01"]).astype("datetime64[us]"),
    ... })
    >>> spec = resolve({"usage": usage}, pd.Timestamp("2024-02-01"),
    ...                UsageFeatures(top_k_events=2, events=("cycles",)))
    >>> spec.resolved_events
    ('cycles', 'login', 'post')
    """
    if spec.resolved_events is not None:
        return spec
    top: list[str] = []
    usage = tables.get("usage")
    if usage is not None and spec.top_k_events > 0:
        query = f"""
            SELECT event FROM usage
            WHERE timestamp < {sql_timestamp(as_of)} AND event IS NOT NULL
            GROUP BY event ORDER BY count(*) DESC, event LIMIT {int(spec.top_k_events)}
        """
        with duckdb_cursor() as con:
            bind(con, "usage", usage[["event", "timestamp"]])
            top = [row[0] for row in con.execute(query).fetchall()]
    return replace(spec, resolved_events=tuple(sorted(set(top) | set(spec.events))))


def _text(value: str) -> str:
    """`value` safe to embed in a str.format template."""
    return str(value).replace("{", "{{").replace("}", "}}")


def _infos(spec: UsageFeatures, names: dict[str, str], with_assets: bool) -> list[FeatureInfo]:
    windows = tuple(spec.windows)
    longest = max(windows)
    r, b = spec.trend_recent_days, spec.trend_baseline_days
    infos = [
        FeatureInfo("usage_days_since_last", FAMILY, "Days since the customer's last usage event of any kind", "days",
                    reason="no product activity for {usage_days_since_last:.0f} days", fact="activity",
                    reason_if="usage_days_since_last >= 1"),
    ]
    for w in windows:
        infos += [
            FeatureInfo(f"usage_events_{w}d", FAMILY, f"Usage events of any kind in the {w} days before as_of",
                        "count", direction="down"),
            FeatureInfo(f"usage_active_days_{w}d", FAMILY, f"Days with any usage in the {w} days before as_of",
                        "days", direction="down",
                        reason=f"active on {{usage_active_days_{w}d:.0f}} of the last {w} days", fact="activity",
                        reason_if=f"usage_active_days_{w}d < {w}"),
        ]
    for event, part in names.items():
        shown, p = _text(event), f"usage_{part}"
        for w in windows:
            infos += [
                FeatureInfo(f"{p}_count_{w}d", FAMILY, f"'{shown}' events in the {w} days before as_of", "count",
                            direction="down", reason=f"{shown} {{{p}_count_{w}d:.0f}} times in the last {w} days",
                            fact=f"usage {shown}"),
                FeatureInfo(f"{p}_value_{w}d", FAMILY, f"Sum of 'value' over '{shown}' events in the {w} days "
                            "before as_of", "value", direction="down"),
                FeatureInfo(f"{p}_active_days_{w}d", FAMILY, f"Days with a '{shown}' event in the {w} days before "
                            "as_of", "days", direction="down",
                            reason=f"{shown} on {{{p}_active_days_{w}d:.0f}} of the last {w} days",
                            fact=f"usage {shown}", reason_if=f"{p}_active_days_{w}d < {w}"),
                FeatureInfo(f"{p}_per_active_day_{w}d", FAMILY, f"'{shown}' value per active day over the {w} "
                            "days before as_of", "value", direction="down"),
            ]
        fell = f"{shown} fell from {{{p}_month_before:.0f}} to {{{p}_month_recent:.0f}} a month"
        infos += [
            FeatureInfo(f"{p}_month_before", FAMILY, f"'{shown}' value per {_MONTH_DAYS} days over the {b} days "
                        f"before the last {r}", "value", direction="down"),
            FeatureInfo(f"{p}_month_recent", FAMILY, f"'{shown}' value per {_MONTH_DAYS} days over the last {r} days",
                        "value", direction="down", reason=fell, fact=f"usage {shown}",
                        reason_if=f"{p}_month_recent < {p}_month_before"),
            FeatureInfo(f"{p}_trend", FAMILY, f"'{shown}' per-day rate in the last {r} days over the rate in the "
                        f"{b} days before (NaN when that was 0)", "ratio", direction="down", reason=fell,
                        fact=f"usage {shown}", reason_if=f"{p}_trend < 1"),
            FeatureInfo(f"{p}_share", FAMILY, f"Share of the customer's usage events in the last {longest} days "
                        f"that are '{shown}'", "share", direction="down"),
        ]
    if with_assets:
        unit = _text(spec.load_events[0]) if len(spec.load_events) == 1 else "load units"
        infos += [
            FeatureInfo("usage_asset_load_since_service_max", FAMILY, "Most load (sum of 'value' of load events) on "
                        "any product since its last preventive service (install date when none)", "value"),
            FeatureInfo("usage_asset_load_ratio_max", FAMILY, "Worst ratio of a product's load since its last "
                        "preventive service to its expected load per service interval (its own average load per "
                        "day from its first load event to as_of, times service_interval_days)", "ratio",
                        reason=("{usage_worst_asset_product} ran {usage_worst_asset_load:,.0f} " + unit
                                + " since its last service (interval {usage_worst_asset_interval_load:,.0f})")),
            FeatureInfo("usage_worst_asset_product", FAMILY, "Product with the worst load ratio (context for "
                        "reasons)", "text", model_input=False),
            FeatureInfo("usage_worst_asset_load", FAMILY, "Load since last service of that product (context for "
                        "reasons)", "value", model_input=False),
            FeatureInfo("usage_worst_asset_interval_load", FAMILY, "Expected load per service interval of that "
                        "product (context for reasons)", "value", model_input=False),
        ]
    return infos


def _span(spec: UsageFeatures) -> int:
    """Days before as_of that any window or the trend looks at."""
    return max(max(spec.windows), int(spec.trend_recent_days) + int(spec.trend_baseline_days))


def _activity_query(t: str, spec: UsageFeatures, events: list[str]) -> str:
    """Usage rolled up per customer position, event index and day before as_of (long format).

    Day ``d`` holds events with ``as_of - (d + 1) days <= timestamp < as_of - d days``, so
    "in the last w days" is exactly ``d < w`` at any as_of. Events older than every window
    collapse into ``d = -1``: they only feed recency. Event index ``len(events)`` holds the
    events that were not resolved, so totals still count them.

    The three parts are grouped as one integer (:func:`_cell_parts` takes it apart): a
    single BIGINT key costs a quarter less than three, and nearly every usage row is a
    group of its own.
    """
    span = _span(spec)
    event_index = " ".join(f"WHEN {sql_string(e)} THEN {i}" for i, e in enumerate(events))
    ei = f"coalesce(CASE event {event_index} END, {len(events)})" if events else "0"
    return f"""
    SELECT cell, count(*) AS n, coalesce(sum(value), 0) AS v, epoch_us(max(timestamp)) AS last_us
    FROM (
        SELECT (CAST(o.pos AS BIGINT) * {len(events) + 1} + {ei}) * {span + 1}
               + CASE WHEN epoch_us({t}) - epoch_us(u.timestamp) <= {span} * {_US_PER_DAY}
                      THEN (epoch_us({t}) - epoch_us(u.timestamp) - 1) // {_US_PER_DAY} + 1 ELSE 0 END AS cell,
               u.value, u.timestamp
        FROM usage u JOIN customer_order o ON u.customer_id = o.customer_id
        WHERE u.timestamp < {t}
    )
    GROUP BY cell
    """


def _cell_parts(rows: dict[str, np.ndarray], spec: UsageFeatures, n_events: int) -> dict[str, np.ndarray]:
    """`rows` of :func:`_activity_query` with its cell split into ``pos``, ``event_index`` and ``day``."""
    cell = np.asarray(rows.pop("cell"), dtype=np.int64)
    rest, slot = np.divmod(cell, _span(spec) + 1)
    pos, event_index = np.divmod(rest, n_events + 1)
    return {**rows, "pos": pos, "event_index": event_index, "day": slot - 1}


def _activity_columns(
    rows: dict[str, np.ndarray], n_customers: int, spec: UsageFeatures, names: dict[str, str], as_of_us: int
) -> dict[str, np.ndarray]:
    """Every window, trend and share from the long roll-up, with one bincount per column."""
    windows = tuple(spec.windows)
    r, b = int(spec.trend_recent_days), int(spec.trend_baseline_days)
    pos, ei, day = (np.asarray(rows[c], dtype=np.int64) for c in ("pos", "event_index", "day"))
    n, v = np.asarray(rows["n"], dtype=np.float64), np.asarray(rows["v"], dtype=np.float64)
    n_events = len(names)
    cols: dict[str, np.ndarray] = {}

    def per_customer(mask, weights=None):
        return np.bincount(pos[mask], None if weights is None else weights[mask], minlength=n_customers)

    last = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(last, pos, np.asarray(rows["last_us"], dtype=np.int64))
    cols["usage_days_since_last"] = np.where(last == np.iinfo(np.int64).min, np.nan,
                                             (as_of_us - last) / _US_PER_DAY)
    # Active days of any event: mark customer x day cells, then count them per window
    # (rows are per event, so a day with two kinds of event must count once).
    recent_rows = day >= 0
    active_cells = np.zeros((n_customers, _span(spec)), dtype=bool)
    active_cells[pos[recent_rows], day[recent_rows]] = True
    for w in windows:
        cols[f"usage_events_{w}d"] = per_customer(recent_rows & (day < w), n)
        cols[f"usage_active_days_{w}d"] = active_cells[:, :w].sum(axis=1).astype(np.float64)
    del active_cells

    # Per event: one bincount over customer x event cells, reshaped to a matrix.
    is_event = (ei >= 0) & (ei < n_events)
    cell = pos * max(n_events, 1) + np.where(is_event, ei, 0)

    def per_event(mask, weights=None):
        m = is_event & mask
        flat = np.bincount(cell[m], None if weights is None else weights[m], minlength=n_customers * n_events)
        return flat.astype(np.float64).reshape(n_customers, n_events)

    counts = {w: per_event((day >= 0) & (day < w), n) for w in windows}
    values = {w: per_event((day >= 0) & (day < w), v) for w in windows}
    active = {w: per_event((day >= 0) & (day < w)) for w in windows}
    recent = per_event((day >= 0) & (day < r), v)
    before = per_event((day >= r) & (day < r + b), v)
    longest = max(windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, part in enumerate(names.values()):
            p = f"usage_{part}"
            for w in windows:
                cols[f"{p}_count_{w}d"] = counts[w][:, i]
                cols[f"{p}_value_{w}d"] = values[w][:, i]
                cols[f"{p}_active_days_{w}d"] = active[w][:, i]
                cols[f"{p}_per_active_day_{w}d"] = np.where(active[w][:, i] > 0, values[w][:, i] / active[w][:, i],
                                                            np.nan)
            # Both rates per 30 days, so a reason reads "fell from 22 to 3 a month".
            cols[f"{p}_month_before"] = before[:, i] * _MONTH_DAYS / b
            cols[f"{p}_month_recent"] = recent[:, i] * _MONTH_DAYS / r
            cols[f"{p}_trend"] = np.where(before[:, i] > 0, (recent[:, i] / r) / (before[:, i] / b), np.nan)
            events_longest = cols[f"usage_events_{longest}d"]
            cols[f"{p}_share"] = np.where(events_longest > 0, counts[longest][:, i] / events_longest, np.nan)
    return cols


def _load_query(t: str, spec: UsageFeatures) -> str:
    """Per-customer asset load since last preventive service, against the expected load per interval."""
    load_filter = f"AND u.event IN ({', '.join(sql_string(e) for e in spec.load_events)})" if spec.load_events else ""
    return f"""
    a AS (
        SELECT asset_id, customer_id, coalesce(product, 'asset ' || asset_id) AS product, install_date,
               CASE WHEN service_interval_days > 0 THEN service_interval_days END AS interval_days
        FROM assets
        WHERE asset_id IS NOT NULL AND customer_id IS NOT NULL
          AND (install_date IS NULL OR install_date < {t})
    ),
    last_prev AS (
        SELECT asset_id, max(timestamp) AS last_prev FROM service_events
        WHERE timestamp < {t} AND lower(kind) IN {sql_list(spec.preventive_kinds)} GROUP BY asset_id
    ),
    anchored AS (
        SELECT a.*, coalesce(lp.last_prev, a.install_date) AS anchor
        FROM a LEFT JOIN last_prev lp ON a.asset_id = lp.asset_id
    ),
    asset_load AS (
        -- An asset with neither a service nor an install date counts its whole record.
        SELECT u.asset_id, sum(u.value) AS total, min(u.timestamp) AS first_ts,
               sum(u.value) FILTER (x.anchor IS NULL OR u.timestamp >= x.anchor) AS since
        FROM usage u JOIN anchored x ON u.asset_id = x.asset_id
        WHERE u.timestamp < {t} {load_filter}
        GROUP BY u.asset_id
    ),
    per_asset AS (
        SELECT customer_id, asset_id, product, load_since, expected,
               load_since / nullif(expected, 0) AS ratio
        FROM (
            SELECT x.customer_id, x.asset_id, x.product, coalesce(l.since, 0) AS load_since,
                   -- The asset's own average load per day from its first load event to as_of,
                   -- times its service interval. Not from the install date: telemetry often
                   -- starts years after install, which would make the expected load tiny.
                   coalesce(l.total, 0) / nullif({days_before(t, "l.first_ts")}, 0)
                       * x.interval_days AS expected
            FROM anchored x LEFT JOIN asset_load l ON x.asset_id = l.asset_id
        )
    ),
    ranked AS (
        SELECT *, row_number() OVER (PARTITION BY customer_id
                                     ORDER BY ratio DESC NULLS LAST, load_since DESC, asset_id) AS rk
        FROM per_asset
    ),
    load AS (
        SELECT customer_id,
               max(load_since) AS usage_asset_load_since_service_max,
               max(ratio) AS usage_asset_load_ratio_max,
               any_value(product) FILTER (rk = 1) AS usage_worst_asset_product,
               any_value(load_since) FILTER (rk = 1) AS usage_worst_asset_load,
               any_value(expected) FILTER (rk = 1) AS usage_worst_asset_interval_load
        FROM ranked GROUP BY customer_id
    )"""


def build(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customers: pd.Index, spec: UsageFeatures
) -> tuple[pd.DataFrame, list[FeatureInfo]]:
    """Usage and asset-load features per customer at `as_of`.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables; needs ``usage``, uses ``assets`` and ``service_events`` when present
        (without ``assets`` there are no asset-load columns).
    as_of : Timestamp
        Cut-off; only usage and service events strictly before it count, and only assets
        installed before it (or with an unknown install date) exist.
    customers : Index
        Customer ids to return, in this order.
    spec : UsageFeatures
        Windows, trend lengths, events (resolved here with :func:`resolve` when
        ``resolved_events`` is None), load events and preventive service kinds.

    Returns
    -------
    features : DataFrame
        Indexed by ``customer_id`` exactly as `customers`: float64 features plus the
        context columns ``usage_worst_asset_*`` (product as str) that reasons quote.
    infos : list of FeatureInfo
        One entry per column, in column order.

    Notes
    -----
    Per event ``e`` (its name part from ``engine.name_parts``) and window ``w``: ``usage_e_count_wd``,
    ``usage_e_value_wd`` (sum of ``value``), ``usage_e_active_days_wd`` and
    ``usage_e_per_active_day_wd`` (value per active day); the trend pair
    ``usage_e_month_before`` / ``usage_e_month_recent`` (value per 30 days over the
    ``trend_baseline_days`` before the last ``trend_recent_days``, and over those) and their
    ratio ``usage_e_trend``; ``usage_e_share`` of all events in the longest window.

    Load of an asset is the sum of ``value`` of its load events since its last preventive
    service (install date when none). Its expected load per interval is its own average load
    per day from its first load event to `as_of` (the observed record: telemetry often starts
    long after install), times ``service_interval_days``; ``usage_asset_load_ratio_max`` is the worst ratio of
    the two over the customer's assets. Own history, not a product-wide norm, so a customer's
    features depend on that customer's rows only and customers can be built in shards.

    Examples
    --------
    >>> day = lambda s: pd.Timestamp(s)
    >>> usage = pd.DataFrame({
    ...     "customer_id": ["a"] * 4 + ["b"],
    ...     "timestamp": pd.to_datetime(["2024-01-20", "2024-03-05", "2024-03-05", "2024-03-30",
    ...                                  "2024-03-31"]).astype("datetime64[us]"),
    ...     "event": ["login", "login", "login", "login", "cycles"],
    ...     "asset_id": pd.Series([None, None, None, None, "m1"], dtype="str"),
    ...     "value": [1.0, 1.0, 1.0, 1.0, 40.0],
    ... })
    >>> spec = UsageFeatures(windows=(30,), top_k_events=1, trend_recent_days=30, trend_baseline_days=60)
    >>> frame, infos = build({"usage": usage}, day("2024-04-01"), pd.Index(["a", "b", "c"]), spec)
    >>> frame.loc["a", ["usage_login_count_30d", "usage_login_active_days_30d", "usage_days_since_last"]].tolist()
    [3.0, 2.0, 2.0]
    >>> frame.loc["c", ["usage_login_count_30d", "usage_days_since_last"]].tolist()
    [0.0, nan]
    """
    as_of = pd.Timestamp(as_of)
    spec = resolve(tables, as_of, spec)
    names = name_parts(spec.resolved_events or ())
    with_assets = tables.get("assets") is not None
    infos = _infos(spec, names, with_assets)
    order = pd.DataFrame({"customer_id": pd.Series(np.asarray(customers, dtype=object), dtype="str"),
                          "pos": np.arange(len(customers), dtype=np.int64)})
    t = sql_timestamp(as_of)
    with duckdb_cursor() as con:
        bind(con, "usage", tables["usage"][_USAGE_COLUMNS])
        bind(con, "customer_order", order)
        rows = _cell_parts(con.execute(_activity_query(t, spec, list(names))).fetchnumpy(), spec, len(names))
        columns = _activity_columns(rows, len(customers), spec, names, int(as_of.value // 1000))
        del rows
        if with_assets:
            bind(con, "assets", tables["assets"][_ASSET_COLUMNS])
            events = tables.get("service_events")
            if events is None:
                events = pd.DataFrame({"asset_id": pd.Series([], dtype="str"),
                                       "timestamp": pd.Series([], dtype="datetime64[us]"),
                                       "kind": pd.Series([], dtype="str")})
            bind(con, "service_events", events[["asset_id", "timestamp", "kind"]])
            query = (f"WITH {_load_query(t, spec)} SELECT o.pos, ld.* EXCLUDE (customer_id) "
                     "FROM customer_order o LEFT JOIN load ld ON o.customer_id = ld.customer_id ORDER BY o.pos")
            load = con.execute(query).df()
            columns.update({c: load[c] for c in load.columns if c != "pos"})
    raw = pd.DataFrame(columns, copy=False)
    counts: list[str] = []  # every count above is already 0 where a customer had no rows
    return finish_frame(raw, customers, infos, counts), infos
