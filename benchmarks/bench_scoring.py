"""Scoring benchmark: probabilities, list reasons, --explain-all and the shap library's time.

Run: ``python benchmarks/bench_scoring.py [--customers 1000000] [--features 80] [--trees 300]``

Features are taken as already built (the scorer's ``features=`` argument): a synthetic
frame of ``--features`` columns (numbers with missing values plus a few categoricals)
and a model shaped like the default churn spec (``--trees`` trees, 15 leaves, depth 5),
trained for each task on 20,000 rows. Targets on 2 cores: probabilities for 1M
customers < 15 s; reasons for the top 50,000 < 20 s; explain-all on 1M < 5 min;
peak RSS < 6 GiB. Timings are wall clock on whatever else the machine is running.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from churnguard.scoring import score
from churnguard.training.model import ChurnModel


def make_features(n: int, n_features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_cat = 4
    data: dict[str, object] = {"customer_id": pd.array([f"{i:08d}" for i in range(n)], dtype="str")}
    for j in range(n_features - n_cat):
        x = rng.gamma(1.0 + j % 5, 10.0, n)
        x[rng.random(n) < 0.1] = np.nan
        data[f"f{j:02d}"] = x
    for j in range(n_cat):
        data[f"cat{j}"] = pd.Categorical.from_codes(rng.integers(0, 6, n), [f"level{k}" for k in range(6)])
    frame = pd.DataFrame(data)
    names = [c for c in frame.columns if c != "customer_id"]
    catalogue = pd.DataFrame({
        "name": names,
        "description": [f"feature {c}" for c in names],
        "reason": [f"{{{c}:.0f}} units of {c}" if c.startswith("f") else "" for c in names],
        "direction": ["up"] * len(names),
    })
    return frame, catalogue


def train(frame: pd.DataFrame, target_cols: list[str], trees: int, seed: int) -> ChurnModel:
    rng = np.random.default_rng(seed)
    X = frame.drop(columns="customer_id").iloc[:20_000]
    signal = sum(np.nan_to_num(X[c].to_numpy()) / (1 + X[c].std()) for c in target_cols)
    y = (signal + rng.normal(0, 1, len(X)) > np.quantile(signal, 0.8)).astype(int)
    params = {"n_estimators": trees, "num_leaves": 15, "max_depth": 5, "min_child_samples": 50,
              "learning_rate": 0.05, "colsample_bytree": 0.8}
    return ChurnModel(params=params, calibration="none", random_state=seed).fit(X, y)


class timer:
    """Wall and CPU seconds of a block: on a shared machine CPU time is the steadier figure."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self):
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=80)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--list", type=int, default=50_000, help="outreach list size for the reasons timing")
    parser.add_argument("--shap-rows", type=int, default=2_000, help="rows timed with the shap library")
    parser.add_argument("--skip-explain-all", action="store_true")
    args = parser.parse_args()

    t = time.perf_counter()
    features, catalogue = make_features(args.customers, args.features)
    customers = pd.DataFrame({"customer_id": features["customer_id"], "value": 500.0})
    tables = {"customers": customers}
    models = {"churn": train(features, ["f00", "f01", "f02"], args.trees, 1),
              "maintenance": train(features, ["f03", "f04"], args.trees, 2)}
    print(f"setup: {args.customers:,} customers x {args.features} features, {args.trees} trees "
          f"({time.perf_counter() - t:.1f} s)")

    with timer() as one:
        p = models["churn"].predict_proba(features)
    print(f"predict_proba, one task, {len(p):,} rows: {one}")

    with timer() as none:
        result = score(tables, "2026-11-01", models, features=features, catalogue=catalogue, explain="none")
    print(f"score, both tasks, no reasons ({len(result.outreach):,} ranked): {none}  [target < 15 s]")

    with timer() as listed:
        result = score(tables, "2026-11-01", models, features=features, catalogue=catalogue, capacity=args.list)
    print(f"score + reasons for the top {args.list:,}: {listed}; beyond scoring "
          f"{listed.wall - none.wall:.1f} s wall, {listed.cpu - none.cpu:.1f} s CPU  [target < 20 s]")
    print("  e.g.", result.outreach.loc[0, ["reason_1", "reason_2", "reason_3"]].tolist())

    if not args.skip_explain_all:
        with timer() as everyone:
            result = score(tables, "2026-11-01", models, features=features, catalogue=catalogue, explain="all")
        print(f"score --explain-all on {args.customers:,}: {everyone}  [target < 300 s]")

    import shap

    rows = features.drop(columns="customer_id").iloc[: args.shap_rows]
    encoded = models["churn"].encode(rows)
    explainer = shap.TreeExplainer(models["churn"].booster_)
    with timer() as shap_t:
        explainer.shap_values(encoded)
    shap_s = shap_t.wall
    per_row = shap_s / args.shap_rows
    print(f"shap TreeExplainer: {args.shap_rows:,} rows in {shap_s:.1f} s = {1e3 * per_row:.2f} ms/row; "
          f"extrapolated to {args.customers:,} rows x 2 tasks: {2 * per_row * args.customers / 60:.1f} min")
    t = time.perf_counter()
    models["churn"].contributions(rows)
    lgb_s = time.perf_counter() - t
    print(f"LightGBM pred_contrib: {1e3 * lgb_s / args.shap_rows:.2f} ms/row")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB  [target < 6 GiB]")


if __name__ == "__main__":
    main()
