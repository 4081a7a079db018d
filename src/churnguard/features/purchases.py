"""Purchase features: recency, frequency and monetary value per window, rhythm, returns.

A purchase is a row of the ``purchases`` table with ``is_return`` not true; returns
are counted apart (their amount as an absolute value, whatever its sign). One DuckDB
query computes every window.
"""

from __future__ import annotations

import pandas as pd

from churnguard.config import PurchasesFeatures
from churnguard.features.catalogue import FeatureInfo
from churnguard.features.engine import DAY_US, aggregate_for, sql_timestamp, with_columns

FAMILY = "purchases"
TABLES = ("purchases",)

# Spend trend compares the last TREND_RECENT_DAYS with the customer's own rate over
# the last TREND_BASELINE_DAYS: 1 is a steady customer, 0.2 one spending a fifth of usual.
TREND_RECENT_DAYS = 90
TREND_BASELINE_DAYS = 365


def catalogue(spec: PurchasesFeatures, tables: dict[str, pd.DataFrame] | None = None) -> list[FeatureInfo]:
    """The purchase features: exact names with `tables`, ``{window}`` placeholders without.

    Examples
    --------
    >>> [i.name for i in catalogue(PurchasesFeatures(windows=(30,)), {})][-4:]
    ['purchases_count_30d', 'purchases_amount_30d', 'purchases_returns_30d', 'purchases_returns_amount_30d']
    """
    p = FAMILY
    infos = [
        FeatureInfo(f"{p}_days_since_last", p, "Days since the last purchase before as_of", "days",
                    reason=f"last purchase {{{p}_days_since_last:.0f}} days ago", fact="purchase recency"),
        FeatureInfo(f"{p}_days_since_first", p, "Days since the first purchase (purchase tenure)", "days",
                    direction="down", grows_with_time=True),
        FeatureInfo(f"{p}_count_total", p, "Purchases before as_of, all history", "count", direction="down",
                    grows_with_time=True),
        FeatureInfo(f"{p}_amount_total", p, "Amount spent before as_of, all history", "currency", direction="down",
                    grows_with_time=True),
        FeatureInfo(f"{p}_avg_amount", p, "Average amount per purchase, all history", "currency", direction="down"),
        FeatureInfo(f"{p}_gap_mean_days", p, "Mean days between distinct purchase times (needs two)", "days"),
        FeatureInfo(
            f"{p}_gap_current_ratio", p, "Days since the last purchase divided by the mean gap between purchases",
            "ratio",
            reason=f"no purchase for {{{p}_days_since_last:.0f}} days (usually every {{{p}_gap_mean_days:.0f}})",
            fact="purchase recency", reason_if=f"{p}_gap_current_ratio > 1",
        ),
        FeatureInfo(
            f"{p}_spend_trend", p,
            f"Spend in the last {TREND_RECENT_DAYS} days relative to the customer's rate over the last "
            f"{TREND_BASELINE_DAYS} days (1 = steady)", "ratio",
            reason=f"spending in the last {TREND_RECENT_DAYS} days at {{{p}_spend_trend:.0%}} of their usual rate",
            direction="down", fact="spending", reason_if=f"{p}_spend_trend < 1",
        ),
    ]
    windows = spec.windows if tables is not None else ("{window}",)
    for w in windows:
        infos += [
            FeatureInfo(f"{p}_count_{w}d", p, f"Purchases in the {w} days before as_of", "count",
                        reason=f"{{{p}_count_{w}d:.0f}} purchases in the last {w} days", direction="down",
                        fact="purchase recency"),
            FeatureInfo(f"{p}_amount_{w}d", p, f"Amount spent in the {w} days before as_of", "currency",
                        reason=f"spent only ¤{{{p}_amount_{w}d:,.0f}} in the last {w} days", direction="down",
                        fact="spending", reason_if=f"{p}_amount_{w}d > 0"),
            FeatureInfo(f"{p}_returns_{w}d", p, f"Returns in the {w} days before as_of", "count",
                        reason=f"{{{p}_returns_{w}d:.0f}} returns in the last {w} days", fact="returns",
                        reason_if=f"{p}_returns_{w}d > 0"),
            FeatureInfo(f"{p}_returns_amount_{w}d", p, f"Amount returned in the {w} days before as_of", "currency",
                        reason=f"returned ¤{{{p}_returns_amount_{w}d:,.0f}} worth in the last {w} days",
                        fact="returns", reason_if=f"{p}_returns_amount_{w}d > 0"),
        ]
    return infos


def build(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customers: pd.Index, spec: PurchasesFeatures
) -> tuple[pd.DataFrame, list[FeatureInfo]]:
    """Purchase features at `as_of` for `customers`, from purchases strictly before it.

    Examples
    --------
    >>> purchases = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "a"],
    ...     "timestamp": pd.to_datetime(["2023-12-02", "2024-01-01", "2024-01-21", "2024-02-01"]),
    ...     "amount": [10.0, 20.0, -5.0, 99.0],
    ...     "is_return": pd.array([False, False, True, False], dtype="boolean")})
    >>> frame, _ = build({"purchases": purchases}, pd.Timestamp("2024-02-01"),
    ...                  pd.Index(["a"], name="customer_id"), PurchasesFeatures(windows=(30,)))
    >>> frame.iloc[0][["purchases_days_since_last", "purchases_count_30d", "purchases_gap_mean_days",
    ...                "purchases_gap_current_ratio", "purchases_returns_amount_30d"]].tolist()
    [31.0, 0.0, 30.0, 1.0333333333333334, 5.0]
    """
    p = FAMILY
    as_of = pd.Timestamp(as_of)
    since = lambda days: sql_timestamp(as_of - pd.Timedelta(days=days))  # noqa: E731
    select = [
        # Timestamps travel as epoch microseconds: the outer query casts every column to DOUBLE.
        "epoch_us(max(timestamp) FILTER (WHERE NOT ret)) AS _last",
        "epoch_us(min(timestamp) FILTER (WHERE NOT ret)) AS _first",
        "count(DISTINCT timestamp) FILTER (WHERE NOT ret) AS _n_times",
        f"count(*) FILTER (WHERE NOT ret) AS {p}_count_total",
        f"sum(amount) FILTER (WHERE NOT ret) AS {p}_amount_total",
        f"avg(amount) FILTER (WHERE NOT ret) AS {p}_avg_amount",
        f"sum(amount) FILTER (WHERE NOT ret AND timestamp >= {since(TREND_RECENT_DAYS)}) AS _trend_recent",
        f"sum(amount) FILTER (WHERE NOT ret AND timestamp >= {since(TREND_BASELINE_DAYS)}) AS _trend_base",
    ]
    counts = [f"{p}_count_total", f"{p}_amount_total", "_trend_recent", "_trend_base", "_n_times"]
    for w in spec.windows:
        recent = f"timestamp >= {since(w)}"
        select += [
            f"count(*) FILTER (WHERE NOT ret AND {recent}) AS {p}_count_{w}d",
            f"sum(amount) FILTER (WHERE NOT ret AND {recent}) AS {p}_amount_{w}d",
            f"count(*) FILTER (WHERE ret AND {recent}) AS {p}_returns_{w}d",
            f"sum(abs(amount)) FILTER (WHERE ret AND {recent}) AS {p}_returns_amount_{w}d",
        ]
        counts += [f"{p}_count_{w}d", f"{p}_amount_{w}d", f"{p}_returns_{w}d", f"{p}_returns_amount_{w}d"]
    source = f"""(SELECT customer_id, timestamp, amount, coalesce(is_return, false) AS ret
                  FROM purchases WHERE timestamp < {sql_timestamp(as_of)})"""
    agg = aggregate_for(customers, select, source, {"purchases": with_columns(tables["purchases"], {"is_return": "boolean"})}, counts=counts)

    as_of_us = float(as_of.value // 1000)  # pd.Timestamp.value is in nanoseconds
    out = pd.DataFrame(index=customers)
    out[f"{p}_days_since_last"] = (as_of_us - agg["_last"]) / DAY_US
    out[f"{p}_days_since_first"] = (as_of_us - agg["_first"]) / DAY_US
    for name in (f"{p}_count_total", f"{p}_amount_total", f"{p}_avg_amount"):
        out[name] = agg[name]
    gaps = (agg["_n_times"] - 1).where(agg["_n_times"] >= 2)
    out[f"{p}_gap_mean_days"] = (agg["_last"] - agg["_first"]) / DAY_US / gaps
    out[f"{p}_gap_current_ratio"] = out[f"{p}_days_since_last"] / out[f"{p}_gap_mean_days"].where(
        out[f"{p}_gap_mean_days"] > 0
    )
    base_rate = agg["_trend_base"] * (TREND_RECENT_DAYS / TREND_BASELINE_DAYS)
    out[f"{p}_spend_trend"] = agg["_trend_recent"] / base_rate.where(base_rate > 0)
    for w in spec.windows:
        for what in ("count", "amount", "returns", "returns_amount"):
            out[f"{p}_{what}_{w}d"] = agg[f"{p}_{what}_{w}d"]
    return out.astype("float64"), catalogue(spec, tables)
