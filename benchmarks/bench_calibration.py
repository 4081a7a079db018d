"""Calibration maps side by side: isotonic vs Platt (sigmoid) vs beta, on one trained booster.

Issue 15 asks for probabilities that keep the model's order (strictly increasing in the
raw score, never exactly 0 or 1) without losing calibration. This script builds the
stacked training set of a generated world the way ``train_task`` does (time split with
embargo), fits one ChurnModel per calibration method (the boosters are identical: same
data, same seed), and prints, on the held-out cutoff: Brier score, log loss, expected
calibration error (10 equal-count bins), ROC-AUC, distinct probabilities when rounded to
6 decimals (as the outreach list writes them) and how many are exactly 0 or 1.

    python benchmarks/bench_calibration.py                       # 10,000 customers, seed 1 (the demo's world)
    python benchmarks/bench_calibration.py --customers 50000 --task maintenance
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from churnguard.config import load_model_spec
from churnguard.labels import label_cutoffs, training_set
from churnguard.synthetic import generate_world
from churnguard.training import ChurnModel, time_split
from churnguard.validation import validate_tables

METHODS = ("isotonic", "sigmoid", "beta")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-count bins, weighted by bin size."""
    order = np.argsort(p, kind="mergesort")
    error = 0.0
    for part in np.array_split(order, n_bins):
        if len(part):
            error += len(part) * abs(y[part].mean() - p[part].mean())
    return error / len(y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--task", choices=("churn", "maintenance"), default="churn")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    world = generate_world(args.customers, seed=args.seed)
    tables = validate_tables({k: v for k, v in world.items() if k != "truth"}).tables
    spec = load_model_spec(task=args.task)
    extra = math.ceil(spec.horizon_days / 28) + 2
    cutoffs = label_cutoffs(tables, n_cutoffs=spec.n_cutoffs + extra, horizon_days=spec.horizon_days)
    split = time_split(cutoffs, horizon_days=spec.horizon_days, n_train=spec.n_cutoffs)
    frame = training_set(tables, [*split.train, split.valid, split.holdout], task=args.task,
                         horizon_days=spec.horizon_days, lookback_days=spec.lookback_days,
                         failure_kinds=spec.failure_kinds)
    features = [c for c in frame.columns if c not in ("customer_id", "cutoff", "label")]
    cut = frame["cutoff"]
    train, valid, test = frame[cut < split.valid], frame[cut == split.valid], frame[cut == split.holdout]
    print(f"{args.task}, {args.customers:,} customers (seed {args.seed}): train {len(train):,} rows, "
          f"calibrate on {len(valid):,} (cutoff {split.valid.date()}), held-out {len(test):,} "
          f"(cutoff {split.holdout.date()}, {test['label'].mean():.1%} positive); "
          f"{time.perf_counter() - t0:.0f} s to build", flush=True)

    y = test["label"].to_numpy()
    print(f"{'method':10} {'Brier':>8} {'log loss':>9} {'ECE':>7} {'ROC-AUC':>8} {'distinct':>9} {'exact 0/1':>10}")
    for method in METHODS:
        model = ChurnModel(params=spec.lightgbm, calibration=method, random_state=spec.seed)
        model.fit(train[features], train["label"], X_valid=valid[features], y_valid=valid["label"])
        p = model.predict_proba(test[features])[:, 1]
        shown = np.round(p, 6)
        print(f"{method:10} {brier_score_loss(y, p):8.5f} {log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)):9.5f} "
              f"{expected_calibration_error(y, p):7.4f} {roc_auc_score(y, p):8.4f} "
              f"{pd.unique(shown).size:9,d} {int(((shown == 0) | (shown == 1)).sum()):10,d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
