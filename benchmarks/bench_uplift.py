"""Does the uplift model find whom a call keeps? Qini on held-out customers vs churn risk and the oracle.

On generated worlds with past campaigns (``outreach_log`` with a randomised control group,
``uplift_truth`` with each campaign customer's true effect), this script builds the uplift
training set exactly as ``churnguard train --task uplift`` does (features as of each list
date, churn in the 90 days after it), holds out the spec's share of customers (or, by default, cross-fits 3 folds of customers so that every
customer is scored once by models that never saw them: three times the rows, a steadier
curve), and prints
for the uplift model, ranking by churn risk alone (a churn model on the same rows) and the
oracle (ranking by the true effect):

* the observed Qini coefficient (customers saved above random, from who churned) and
  uplift at 10% / 30% of the held-out customers (points of churn a call removes);
* the true Qini coefficient: the same area from the customers' true effects, free of the
  noise of who happened to churn;
* each one's share of the oracle's.

    python benchmarks/bench_uplift.py                          # 40,000 customers, seeds 1 2 3, 3 folds
    python benchmarks/bench_uplift.py --customers 20000 --seeds 1 --cache /tmp/uplift-cache
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from churnguard.config import load_uplift_spec
from churnguard.synthetic import generate_world
from churnguard.training.uplift import UpliftData, evaluate_uplift, uplift_training_set
from churnguard.validation import validate_tables


def campaign_data(n_customers: int, seed: int, spec, cache: Path | None) -> tuple[UpliftData, pd.DataFrame]:
    """The world's uplift training set and its uplift_truth (read from `cache` when built before)."""
    if cache is not None:
        frame_path = cache / f"uplift_{n_customers}_{seed}.parquet"
        truth_path = cache / f"uplift_truth_{n_customers}_{seed}.parquet"
        if frame_path.exists() and truth_path.exists():
            return UpliftData(pd.read_parquet(frame_path), pd.DataFrame(), None, "cached"), pd.read_parquet(truth_path)
    world = generate_world(n_customers, seed=seed, campaigns=True)
    truth = world.pop("uplift_truth")
    world.pop("truth")
    tables = validate_tables(world).tables
    data = uplift_training_set(tables, spec, log=lambda line: None)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        data.frame.to_parquet(frame_path, index=False)
        truth.to_parquet(truth_path, index=False)
    return data, truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--holdout-share", type=float, default=None, help="override the spec's holdout_share")
    parser.add_argument("--folds", type=int, default=3,
                        help="cross-fit: every customer held out once (0: the spec's single hold-out share)")
    parser.add_argument("--cache", type=Path, default=None, help="keep the built training sets here")
    args = parser.parse_args(argv)
    spec = load_uplift_spec()
    if args.holdout_share:
        spec = replace(spec, holdout_share=args.holdout_share)

    print(f"{'seed':>4} {'ranking':11} {'Qini':>8} {'% oracle':>8} {'true Qini':>9} {'% oracle':>8} "
          f"{'up@10%':>7} {'up@30%':>7} {'rows':>7} {'held':>6} {'s':>5}")
    shares = []
    for seed in args.seeds:
        start = time.perf_counter()
        data, truth = campaign_data(args.customers, seed, spec, args.cache)
        m = evaluate_uplift(data, spec, truth=truth, folds=args.folds or None, log=lambda line: None).metrics
        seconds = time.perf_counter() - start
        for name in ("uplift", "churn_risk", "oracle"):
            share = m.get(f"{name}_share_of_oracle_qini", 1.0)
            true_share = m.get(f"{name}_share_of_oracle_true_qini", 1.0)
            print(f"{seed:>4} {name:11} {m[f'{name}_qini']:8.1f} {100 * share:7.1f}% {m[f'{name}_true_qini']:9.1f} "
                  f"{100 * true_share:7.1f}% {100 * m[f'{name}_uplift_at_10']:6.1f} {100 * m[f'{name}_uplift_at_30']:6.1f} "
                  f"{len(data.frame):7d} {m['rows_holdout']:6.0f} {seconds:5.0f}")
        shares.append((m["uplift_share_of_oracle_qini"], m["uplift_share_of_oracle_true_qini"],
                       m["uplift_qini"] > m["churn_risk_qini"], m["uplift_true_qini"] > m["churn_risk_true_qini"]))
    mean = [sum(s[i] for s in shares) / len(shares) for i in (0, 1)]
    print(f"mean share of the oracle over seeds {args.seeds}: observed Qini {100 * mean[0]:.1f}%, "
          f"true Qini {100 * mean[1]:.1f}%; beats churn risk (observed / true): "
          + ", ".join(f"{'yes' if a else 'no'}/{'yes' if b else 'no'}" for _, _, a, b in shares))
    return 0


if __name__ == "__main__":
    sys.exit(main())
