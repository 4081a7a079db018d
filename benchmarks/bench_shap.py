"""Benchmark exact TreeSHAP: shap.TreeExplainer vs LightGBM pred_contrib vs churnguard.TreeShap.

Trains a LightGBM binary model of the churn shape on synthetic data (float features with
NaNs plus a few pandas-category features), then times each method on the same rows and
prints rows/s, ms/row, speedups, the largest difference from LightGBM's ``pred_contrib``
and peak RSS. The slow references run on a sample (``--sample-rows``); ours runs on
``--rows`` (1,000,000 by default) and the 1M-row time is reported measured or extrapolated.

Run:  python benchmarks/bench_shap.py --rows 1000000 --sample-rows 20000

Timings are wall-clock on whatever machine runs it; the development machine has 2 cores
shared with other work, so figures vary from run to run.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnguard.treeshap import TreeShap

N_CATEGORICAL = 4


def synthetic_customers(n_rows: int, n_features: int, seed: int) -> pd.DataFrame:
    """Float features with ~10% NaN and a few category columns, like the churn table."""
    rng = np.random.default_rng(seed)
    n_numeric = n_features - N_CATEGORICAL
    values = rng.normal(size=(n_rows, n_numeric))
    values[rng.random(values.shape) < 0.1] = np.nan
    frame = pd.DataFrame(values, columns=[f"num_{i}" for i in range(n_numeric)])
    for i in range(N_CATEGORICAL):
        codes = rng.integers(0, 6 + 3 * i, size=n_rows)
        frame[f"cat_{i}"] = pd.Categorical.from_codes(codes, [f"level_{k}" for k in range(6 + 3 * i)])
    return frame


def synthetic_target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    numeric = frame.filter(like="num_").fillna(0.0).to_numpy()
    logit = numeric[:, :10] @ rng.normal(size=10) + numeric[:, 0] * numeric[:, 1]
    logit += (frame["cat_0"].cat.codes.to_numpy() % 3 == 0) * 1.5
    return (logit + rng.logistic(size=len(frame)) > 0).astype(int)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn, n_rows: int) -> tuple[np.ndarray, float]:
    # CPU seconds (all threads of this process) are printed beside wall time: on a shared
    # machine they move less with other people's load than wall time does.
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(f"{label:<34} {n_rows:>9,} rows {seconds:8.2f} s wall {n_rows / seconds:9,.0f} rows/s "
          f"{1000 * seconds / n_rows:7.4f} ms/row  cpu {1000 * cpu / n_rows:7.4f} ms/row  "
          f"peak RSS {peak_rss_mib():6,.0f} MiB")
    return result, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows explained by TreeShap")
    parser.add_argument("--sample-rows", type=int, default=20_000, help="rows for shap and pred_contrib")
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--leaves", type=int, default=15)
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--features", type=int, default=80)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--skip-shap", action="store_true", help="skip the shap library (slowest)")
    args = parser.parse_args(argv)

    print(f"cpus={os.cpu_count()} (shared machine: timings vary with other load)")
    train = synthetic_customers(args.train_rows, args.features, seed=0)
    params = {"objective": "binary", "num_leaves": args.leaves, "max_depth": args.max_depth,
              "learning_rate": 0.05, "min_data_in_leaf": 20, "verbose": -1, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(train, synthetic_target(train, seed=1)),
                        num_boost_round=args.trees)
    print(f"model: {booster.num_trees()} trees, {args.leaves} leaves, max_depth {args.max_depth}, "
          f"{args.features} features ({N_CATEGORICAL} categorical)")

    start = time.perf_counter()
    explainer = TreeShap(booster)
    print(f"TreeShap init (parse + tables)     {time.perf_counter() - start:9.2f} s, "
          f"tables {explainer.table_bytes_ / 2**20:.1f} MiB")
    explainer.shap_values(train.head(10))  # compile or load the numba kernel outside the timings

    sample = synthetic_customers(args.sample_rows, args.features, seed=2)
    ref, t_contrib = timed("lightgbm pred_contrib", lambda: booster.predict(sample, pred_contrib=True),
                           len(sample))
    ours_sample, t_ours_sample = timed("churnguard TreeShap", lambda: explainer.shap_values(sample),
                                       len(sample))
    margin = booster.predict(sample, raw_score=True)
    print(f"max |TreeShap - pred_contrib| = {np.abs(ours_sample - ref).max():.3e}; "
          f"max |row sum - margin| = {np.abs(ours_sample.sum(axis=1) - margin).max():.3e}")
    print(f"speedup vs pred_contrib: {t_contrib / t_ours_sample:.1f}x")
    if not args.skip_shap:
        import shap

        tree_explainer = shap.TreeExplainer(booster)
        shap_phi, t_shap = timed("shap TreeExplainer.shap_values",
                                 lambda: tree_explainer.shap_values(sample), len(sample))
        shap_phi = np.asarray(shap_phi)
        print(f"max |shap - pred_contrib[:, :-1]| = {np.abs(shap_phi - ref[:, :-1]).max():.3e}")
        print(f"speedup vs shap TreeExplainer: {t_shap / t_ours_sample:.1f}x")
    del ref, ours_sample

    population = synthetic_customers(args.rows, args.features, seed=3)
    _, t_ours = timed("churnguard TreeShap (population)", lambda: explainer.shap_values(population),
                      len(population))
    per_million = t_ours / len(population) * 1_000_000
    kind = "measured" if len(population) == 1_000_000 else "extrapolated"
    print(f"TreeShap for 1,000,000 rows: {per_million:.1f} s ({kind}); "
          f"pred_contrib at the sample rate: {t_contrib / len(sample) * 1e6:.0f} s"
          + ("" if args.skip_shap else f"; shap at the sample rate: {t_shap / len(sample) * 1e6:.0f} s"))


if __name__ == "__main__":
    main()
