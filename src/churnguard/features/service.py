"""Installed products and their service history: age, warranty, overdue maintenance, failures.

The family reads ``assets`` (required) and ``service_events`` (optional) and computes every
feature in one DuckDB query: per asset first (age, days since its last preventive service
against its own interval), then per customer (counts, worst asset, events per window).

Point-in-time rules: an asset with ``install_date >= as_of`` does not exist yet (a missing
``install_date`` counts as existing), and only service events stamped strictly before
``as_of`` on existing assets count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnguard.config import ServiceFeatures
from churnguard.features.catalogue import FeatureInfo
from churnguard.features.engine import bind, duckdb_cursor, sql_string, sql_timestamp

FAMILY = "service"
TABLES: tuple[str, ...] = ("assets",)  # service_events only add to what the assets give

# The data contract names "inspection" as a service kind; ServiceFeatures has no option for
# it because, unlike preventive and failure kinds, it feeds no rule (overdue, labels).
INSPECTION_KINDS: tuple[str, ...] = ("inspection",)

_ASSET_COLUMNS = ["asset_id", "customer_id", "product", "install_date", "warranty_end", "service_interval_days"]
_EVENT_COLUMNS = ["asset_id", "timestamp", "kind", "cost"]
_US_PER_DAY = 86_400_000_000


def sql_list(values) -> str:
    """A SQL ``IN`` list of lower-cased string literals; never empty, so the SQL stays valid.

    Examples
    --------
    >>> sql_list(["Repair", "failure"])
    "('repair', 'failure')"
    >>> sql_list([])
    '(NULL)'
    """
    items = [sql_string(str(v).lower()) for v in values]
    return "(" + ", ".join(items or ["NULL"]) + ")"


def days_before(as_of_sql: str, ts: str) -> str:
    """SQL for the (fractional) days from `ts` to `as_of_sql`; NULL when `ts` is NULL."""
    return f"((epoch_us({as_of_sql}) - epoch_us({ts})) / {_US_PER_DAY}.0)"


def _table(tables: dict[str, pd.DataFrame], name: str, columns: list[str]) -> pd.DataFrame:
    """The contract columns of `name`, or an empty frame of the contract types when absent."""
    frame = tables.get(name)
    if frame is not None:
        return frame[columns]
    empty = {
        "asset_id": pd.Series([], dtype="str"),
        "timestamp": pd.Series([], dtype="datetime64[us]"),
        "kind": pd.Series([], dtype="str"),
        "cost": pd.Series([], dtype="float64"),
    }
    return pd.DataFrame({c: empty[c] for c in columns})


def _infos(spec: ServiceFeatures) -> list[FeatureInfo]:
    worst = (
        "{service_worst_asset_product} is {service_overdue_days_max:.0f} days past its "
        "{service_worst_asset_interval_days:.0f}-day service interval"
    )
    infos = [
        FeatureInfo("service_assets", FAMILY, "Installed products (install date before as_of or unknown)", "count",
                    direction="down"),
        FeatureInfo("service_asset_age_days_mean", FAMILY, "Mean days since install over the customer's products",
                    "days", reason="products installed {service_asset_age_days_mean:.0f} days ago on average",
                    fact="product age", grows_with_time=True),
        FeatureInfo("service_asset_age_days_max", FAMILY, "Days since install of the oldest product", "days",
                    reason="oldest product installed {service_asset_age_days_max:.0f} days ago", fact="product age",
                    grows_with_time=True),
        FeatureInfo("service_assets_out_of_warranty", FAMILY, "Products whose warranty ended before as_of", "count",
                    reason="{service_assets_out_of_warranty:.0f} of {service_assets:.0f} products out of warranty",
                    fact="warranty", reason_if="service_assets_out_of_warranty > 0"),
        FeatureInfo("service_out_of_warranty_share", FAMILY, "Share of the customer's products out of warranty",
                    "share",
                    reason="{service_assets_out_of_warranty:.0f} of {service_assets:.0f} products out of warranty",
                    fact="warranty", reason_if="service_assets_out_of_warranty > 0"),
        FeatureInfo("service_overdue_days_max", FAMILY,
                    "Most days any product is past its service interval since its last preventive service "
                    "(install date when none); 0 when none is overdue", "days", reason=worst, fact="service overdue",
                    reason_if="service_overdue_days_max >= 1"),
        FeatureInfo("service_overdue_ratio_max", FAMILY,
                    "Worst ratio of days since last preventive service to the product's service interval",
                    "ratio", reason=worst, fact="service overdue", reason_if="service_overdue_days_max >= 1"),
        FeatureInfo("service_overdue_assets", FAMILY, "Products past their service interval", "count",
                    reason="{service_overdue_assets:.0f} products overdue for service", fact="service overdue",
                    reason_if="service_overdue_assets > 0"),
    ]
    for w in spec.windows:
        infos += [
            FeatureInfo(f"service_failures_{w}d", FAMILY,
                        f"Service events of a failure kind ({', '.join(spec.failure_kinds)}) in the {w} days "
                        "before as_of", "count",
                        reason=f"{{service_failures_{w}d:.0f}} repairs or failures in the last {w} days",
                        fact="failures", reason_if=f"service_failures_{w}d > 0"),
            FeatureInfo(f"service_preventive_{w}d", FAMILY,
                        f"Preventive services ({', '.join(spec.preventive_kinds)}) in the {w} days before as_of",
                        "count", direction="down"),
            FeatureInfo(f"service_inspections_{w}d", FAMILY, f"Inspections in the {w} days before as_of", "count"),
            FeatureInfo(f"service_cost_{w}d", FAMILY, f"Total service cost in the {w} days before as_of",
                        "currency", reason=f"service costs of ¤{{service_cost_{w}d:,.0f}} in the last {w} days",
                        fact="service costs", reason_if=f"service_cost_{w}d > 0"),
        ]
    infos += [
        FeatureInfo("service_days_since_failure", FAMILY, "Days since the last repair or failure", "days",
                    reason="last repair or failure {service_days_since_failure:.0f} days ago", direction="down",
                    fact="failures"),
        FeatureInfo("service_worst_asset_product", FAMILY,
                    "Product name of the most overdue product (context for reasons)", "text", model_input=False),
        FeatureInfo("service_worst_asset_interval_days", FAMILY,
                    "Service interval of the most overdue product (context for reasons)", "days", model_input=False),
    ]
    return infos


def build(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customers: pd.Index, spec: ServiceFeatures
) -> tuple[pd.DataFrame, list[FeatureInfo]]:
    """Asset and service features per customer at `as_of`.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables; needs ``assets``, uses ``service_events`` when present.
    as_of : Timestamp
        Cut-off; only service events strictly before it count, and only assets installed
        before it (or with an unknown install date) exist.
    customers : Index
        Customer ids to return, in this order.
    spec : ServiceFeatures
        Windows and the service kinds that count as preventive and as failures
        (matched case-insensitively).

    Returns
    -------
    features : DataFrame
        Indexed by ``customer_id`` exactly as `customers`; float64 features, plus the
        context columns ``service_worst_asset_product`` (str) and
        ``service_worst_asset_interval_days`` (float64) that reasons quote.
    infos : list of FeatureInfo
        One entry per column, in column order.

    Notes
    -----
    Days since last preventive service fall back to the install date when an asset has
    had none. An asset is overdue when that exceeds its ``service_interval_days``; the
    worst asset is the one furthest past (or, when none is overdue, closest to) its
    interval, ties broken by ``asset_id``. Customers without assets get counts 0 and NaN
    ages, shares and overdue figures.

    Examples
    --------
    >>> tables = {
    ...     "assets": pd.DataFrame({
    ...         "asset_id": ["h1", "h2"], "customer_id": ["a", "a"],
    ...         "product": ["heating unit", "boiler"],
    ...         "install_date": pd.to_datetime(["2023-01-01", "2024-06-01"]).astype("datetime64[us]"),
    ...         "warranty_end": pd.to_datetime(["2024-01-01", "2026-01-01"]).astype("datetime64[us]"),
    ...         "service_interval_days": [180.0, 365.0]}),
    ...     "service_events": pd.DataFrame({
    ...         "asset_id": ["h1", "h1"], "kind": ["preventive", "repair"], "cost": [80.0, 250.0],
    ...         "timestamp": pd.to_datetime(["2024-01-17", "2024-07-01"]).astype("datetime64[us]")}),
    ... }
    >>> frame, infos = build(tables, pd.Timestamp("2024-08-01"), pd.Index(["a", "b"]), ServiceFeatures())
    >>> frame.loc["a", ["service_assets", "service_overdue_days_max", "service_failures_90d"]].tolist()
    [2.0, 17.0, 1.0]
    >>> info = next(i for i in infos if i.name == "service_overdue_days_max")
    >>> info.reason.format(**frame.loc["a"])
    'heating unit is 17 days past its 180-day service interval'
    >>> frame.loc["b", ["service_assets", "service_overdue_days_max"]].tolist()
    [0.0, nan]
    """
    as_of = pd.Timestamp(as_of)
    infos = _infos(spec)
    assets = _table(tables, "assets", _ASSET_COLUMNS)
    events = _table(tables, "service_events", _EVENT_COLUMNS)
    order = pd.DataFrame({"customer_id": pd.Series(np.asarray(customers, dtype=object), dtype="str"),
                          "pos": np.arange(len(customers), dtype=np.int64)})

    t = sql_timestamp(as_of)
    prev, fail, insp = sql_list(spec.preventive_kinds), sql_list(spec.failure_kinds), sql_list(INSPECTION_KINDS)
    window_aggs = []
    for w in spec.windows:
        # Strictly before as_of and no earlier than as_of - w days, like every family's windows.
        in_w = f"ts >= {t} - INTERVAL {int(w)} DAY"
        window_aggs += [
            f"count(*) FILTER (kind IN {fail} AND {in_w}) AS service_failures_{w}d",
            f"count(*) FILTER (kind IN {prev} AND {in_w}) AS service_preventive_{w}d",
            f"count(*) FILTER (kind IN {insp} AND {in_w}) AS service_inspections_{w}d",
            f"sum(cost) FILTER ({in_w}) AS service_cost_{w}d",
        ]
    count_columns = ["service_assets", "service_assets_out_of_warranty", "service_overdue_assets"] + [
        f"service_{what}_{w}d" for w in spec.windows for what in ("failures", "preventive", "inspections", "cost")
    ]
    query = f"""
    WITH a AS (
        SELECT asset_id, customer_id, product, install_date, warranty_end,
               CASE WHEN service_interval_days > 0 THEN service_interval_days END AS interval_days
        FROM assets
        WHERE asset_id IS NOT NULL AND customer_id IS NOT NULL
          AND (install_date IS NULL OR install_date < {t})
    ),
    e AS (
        SELECT a.customer_id, ev.asset_id, ev.timestamp AS ts, lower(ev.kind) AS kind, ev.cost
        FROM service_events ev JOIN a ON ev.asset_id = a.asset_id
        WHERE ev.timestamp < {t}
    ),
    last_prev AS (
        SELECT asset_id, max(ts) AS last_prev FROM e WHERE kind IN {prev} GROUP BY asset_id
    ),
    per_asset AS (
        SELECT a.customer_id, a.asset_id, coalesce(a.product, 'asset ' || a.asset_id) AS product,
               a.interval_days,
               {days_before(t, 'a.install_date')} AS age_days,
               coalesce(a.warranty_end < {t}, false) AS out_of_warranty,
               {days_before(t, 'coalesce(lp.last_prev, a.install_date)')} - a.interval_days AS overdue,
               {days_before(t, 'coalesce(lp.last_prev, a.install_date)')} / a.interval_days AS ratio
        FROM a LEFT JOIN last_prev lp ON a.asset_id = lp.asset_id
    ),
    ranked AS (
        SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY overdue DESC NULLS LAST, asset_id)
                  AS worst_rank
        FROM per_asset
    ),
    by_assets AS (
        SELECT customer_id,
               count(*) AS service_assets,
               avg(age_days) AS service_asset_age_days_mean,
               max(age_days) AS service_asset_age_days_max,
               count(*) FILTER (out_of_warranty) AS service_assets_out_of_warranty,
               count(*) FILTER (out_of_warranty) / count(*) AS service_out_of_warranty_share,
               max(greatest(overdue, 0)) AS service_overdue_days_max,
               max(ratio) AS service_overdue_ratio_max,
               count(*) FILTER (overdue > 0) AS service_overdue_assets,
               any_value(product) FILTER (worst_rank = 1 AND overdue IS NOT NULL) AS service_worst_asset_product,
               any_value(interval_days) FILTER (worst_rank = 1 AND overdue IS NOT NULL)
                   AS service_worst_asset_interval_days
        FROM ranked GROUP BY customer_id
    ),
    by_events AS (
        SELECT customer_id, {", ".join(window_aggs + [""])}
               min({days_before(t, 'ts')}) FILTER (kind IN {fail}) AS service_days_since_failure
        FROM e GROUP BY customer_id
    )
    SELECT o.pos, ba.* EXCLUDE (customer_id), be.* EXCLUDE (customer_id)
    FROM customer_order o
    LEFT JOIN by_assets ba ON o.customer_id = ba.customer_id
    LEFT JOIN by_events be ON o.customer_id = be.customer_id
    ORDER BY o.pos
    """
    with duckdb_cursor() as con:
        bind(con, "assets", assets)
        bind(con, "service_events", events)
        bind(con, "customer_order", order)
        raw = con.execute(query).df()
    return finish_frame(raw, customers, infos, count_columns), infos


def finish_frame(
    raw: pd.DataFrame, customers: pd.Index, infos: list[FeatureInfo], counts: list[str]
) -> pd.DataFrame:
    """Columns in `infos` order: float64 (0 for `counts` where a customer had no rows), "str" for text.

    Examples
    --------
    >>> raw = pd.DataFrame({"n": [2, None], "name": ["pump", None]})
    >>> infos = [FeatureInfo("n", "x", "", "count"), FeatureInfo("name", "x", "", "text")]
    >>> finish_frame(raw, pd.Index(["a", "b"]), infos, counts=["n"])
                   n  name
    customer_id
    a            2.0  pump
    b            0.0   NaN
    """
    columns = {}
    for info in infos:
        col = raw[info.name]
        if info.unit == "text":
            columns[info.name] = pd.array(col.to_numpy(dtype=object), dtype="str")
        else:
            values = col.to_numpy(dtype="float64", na_value=np.nan)
            columns[info.name] = np.nan_to_num(values, nan=0.0) if info.name in counts else values
    return pd.DataFrame(columns, index=pd.Index(customers, name="customer_id"))
