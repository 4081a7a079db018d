"""Baselines for the feature builders on a sample: pandas groupby-apply and Featuretools DFS.

    python benchmarks/bench_features_baselines.py --data DIR --sample 20000 --as-of 2026-10-01

Same entities (customers, purchases, interactions), one cutoff, comparable features:

* churnguard: ``build_features`` with the purchases and interactions families (DuckDB);
* pandas: a straightforward ``groupby(...).apply`` computing ~50 of the same features
  per customer (counts, sums, means, maxima per window, recency, complaints, channels);
* Featuretools: deep feature synthesis (``max_depth=1``) with a cutoff time per customer,
  one run per window (``training_window``), count/sum/mean/max plus ``where`` counts on
  channel and complaint values. Featuretools is a benchmark-only extra
  (``pip install featuretools``). Featuretools 1.31 with woodwork fails on pandas 3
  (``WoodworkNotInitError``: the accessor's schema does not survive); run this script in
  an environment with pandas 2 for that row.

The machine is shared: compare the CPU seconds, which other load inflates less than wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import read_world  # noqa: E402

WINDOWS = (30, 90, 365)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def churnguard_features(world, as_of):
    from churnguard.config import load_feature_set, replace
    from churnguard.features import build_features

    fs = load_feature_set()
    fs = replace(fs, customers=replace(fs.customers, enabled=False),
                 purchases=replace(fs.purchases, windows=WINDOWS))
    return build_features({k: world[k] for k in ("customers", "purchases", "interactions")}, as_of, feature_set=fs)


def pandas_apply_features(world, as_of):
    """The straightforward implementation: one Python function per customer."""
    channels = sorted(world["interactions"]["channel"].dropna().unique())

    def per_purchases(g: pd.DataFrame) -> pd.Series:
        g = g[g["timestamp"] < as_of]
        buys = g[~g["is_return"].fillna(False)]
        out = {"days_since_last": (as_of - buys["timestamp"].max()) / pd.Timedelta(days=1),
               "count_total": len(buys), "amount_total": buys["amount"].sum(), "avg_amount": buys["amount"].mean()}
        for w in WINDOWS:
            recent = g[g["timestamp"] >= as_of - pd.Timedelta(days=w)]
            rb = recent[~recent["is_return"].fillna(False)]
            out[f"count_{w}d"] = len(rb)
            out[f"amount_{w}d"] = rb["amount"].sum()
            out[f"returns_{w}d"] = len(recent) - len(rb)
        return pd.Series(out)

    def per_interactions(g: pd.DataFrame) -> pd.Series:
        g = g[g["timestamp"] < as_of].sort_values("timestamp")
        complaint = g["is_complaint"].fillna(False)
        gaps = g["timestamp"].diff() / pd.Timedelta(days=1)
        out = {"days_since_last": (as_of - g["timestamp"].max()) / pd.Timedelta(days=1),
               "nps_latest": g["nps"].dropna().iloc[-1] if g["nps"].notna().any() else np.nan}
        for w in WINDOWS:
            m = g["timestamp"] >= as_of - pd.Timedelta(days=w)
            r = g[m]
            out[f"contacts_{w}d"] = len(r)
            for c in channels:
                out[f"contacts_{c}_{w}d"] = int((r["channel"] == c).sum())
            out[f"complaints_{w}d"] = int(complaint[m].sum())
            out[f"unresolved_{w}d"] = int((complaint[m] & (r["resolved"] == False)).sum())  # noqa: E712
            out[f"repeat_{w}d"] = int((gaps[m] <= 7).sum())
            out[f"wait_mean_{w}d"] = r["wait_seconds"].mean() / 60
            out[f"wait_max_{w}d"] = r["wait_seconds"].max() / 60
            out[f"csat_mean_{w}d"] = r["csat"].mean()
        return pd.Series(out)

    purchases = world["purchases"].groupby("customer_id").apply(per_purchases).add_prefix("purchases_")
    interactions = world["interactions"].groupby("customer_id").apply(per_interactions).add_prefix("interactions_")
    return purchases.join(interactions, how="outer")


def featuretools_features(world, as_of):
    import featuretools as ft

    es = ft.EntitySet("churn")
    customers = world["customers"][["customer_id"]].copy()
    purchases = world["purchases"][["customer_id", "timestamp", "amount", "is_return"]].copy()
    purchases["purchase_id"] = np.arange(len(purchases))
    interactions = world["interactions"][["customer_id", "timestamp", "channel", "is_complaint", "wait_seconds",
                                          "csat", "nps"]].copy()
    interactions["interaction_id"] = np.arange(len(interactions))
    for frame in (customers, purchases, interactions):  # woodwork wants object/categorical, not pandas "str"
        for c in frame.columns:
            if frame[c].dtype == "str":
                frame[c] = frame[c].astype("object")
            elif frame[c].dtype == "boolean":
                frame[c] = frame[c].fillna(False).astype("bool")
    es = es.add_dataframe(dataframe_name="customers", dataframe=customers, index="customer_id")
    es = es.add_dataframe(dataframe_name="purchases", dataframe=purchases, index="purchase_id",
                          time_index="timestamp", logical_types={"customer_id": "Categorical"})
    es = es.add_dataframe(dataframe_name="interactions", dataframe=interactions, index="interaction_id",
                          time_index="timestamp",
                          logical_types={"customer_id": "Categorical", "channel": "Categorical"})
    es = es.add_relationship("customers", "customer_id", "purchases", "customer_id")
    es = es.add_relationship("customers", "customer_id", "interactions", "customer_id")
    es.add_interesting_values(dataframe_name="interactions", values={
        "channel": sorted(interactions["channel"].dropna().unique()), "is_complaint": [True]})
    cutoff = pd.DataFrame({"customer_id": customers["customer_id"], "time": as_of})
    frames = []
    for w in WINDOWS:
        fm, _ = ft.dfs(entityset=es, target_dataframe_name="customers", cutoff_time=cutoff,
                       training_window=f"{w} days", agg_primitives=["count", "sum", "mean", "max", "last"],
                       trans_primitives=[], where_primitives=["count"], max_depth=1, n_jobs=1, verbose=False)
        frames.append(fm.add_suffix(f"_{w}d"))
    return pd.concat(frames, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--as-of", default="2026-10-01")
    parser.add_argument("--skip-featuretools", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    as_of = pd.Timestamp(args.as_of)
    world = read_world(args.data, ["purchases", "interactions"], args.sample)
    print(f"sample: {len(world['customers']):,} customers, {len(world['purchases']):,} purchases, "
          f"{len(world['interactions']):,} interactions; as_of {as_of.date()}")
    runs = {"churnguard (DuckDB)": churnguard_features, "pandas groupby-apply": pandas_apply_features}
    if not args.skip_featuretools:
        runs["featuretools DFS"] = featuretools_features
    base = None
    for name, fn in runs.items():
        try:
            frame, wall, cpu = timed(lambda: fn(world, as_of))
        except Exception as err:  # featuretools 1.31 / woodwork do not run on pandas 3 (accessor state is lost)
            print(f"{name:<22} failed: {type(err).__name__}: {str(err).splitlines()[0]}")
            continue
        base = base or (wall, cpu)
        print(f"{name:<22} {frame.shape[1]:>4} features  wall {wall:7.1f} s ({wall / base[0]:5.1f}x)  "
              f"cpu {cpu:7.1f} s ({cpu / base[1]:5.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
