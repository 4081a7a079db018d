"""Does the production refit help? Train as of an earlier date with and without it, score what came next.

Evaluation keeps the newest cutoffs out of training (the validation and held-out ones);
``production_refit`` then refits the registered model on every planned cutoff (same
number of trees, calibration out of fold). This script trains each task as of
``--as-of`` (default 2026-08-01) both ways on a generated world, then scores the
following label window ``[as_of, as_of + horizon)``, which the data (and the truth)
already holds, and prints ROC-AUC, PR-AUC and Brier for both models next to the oracle.

    python benchmarks/bench_refit.py                          # 20,000 customers, seed 1
    python benchmarks/bench_refit.py --customers 50000 --seeds 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from churnguard.config import load_model_spec
from churnguard.features import build_features
from churnguard.labels import make_labels
from churnguard.synthetic import generate_world
from churnguard.training.pipeline import train_frame
from churnguard.training.plan import plan_cutoffs, training_data
from churnguard.training.splits import cut_tables
from churnguard.validation import validate_tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--as-of", default="2026-08-01")
    args = parser.parse_args(argv)
    as_of = pd.Timestamp(args.as_of)

    print(f"{'seed':>4} {'task':12} {'model':10} {'ROC-AUC':>8} {'PR-AUC':>7} {'Brier':>7} {'oracle AUC':>10} {'s':>5}")
    for seed in args.seeds:
        world = generate_world(args.customers, seed=seed)
        truth = world.pop("truth")
        tables = validate_tables(world).tables
        known = cut_tables(tables, as_of)
        for task in ("churn", "maintenance"):
            spec = load_model_spec(task=task)
            plan = plan_cutoffs(known, spec, as_of=as_of, log=lambda line: None)
            data = training_data(known, spec, plan, progress=False, log=lambda line: None)
            # What happened next, from the full data: the label window that starts at as_of.
            y = make_labels(tables, as_of, task=task, horizon_days=spec.horizon_days,
                            lookback_days=spec.lookback_days, failure_kinds=spec.failure_kinds)
            X = build_features(known, as_of, feature_set=data.feature_set)
            X = X.set_index("customer_id").loc[y.index].reset_index()
            oracle = truth[pd.to_datetime(truth["as_of"]) == as_of].set_index("customer_id")[f"{task}_probability"]
            o = oracle.reindex(y.index.astype(str))
            covered = o.notna().to_numpy()
            oracle_auc = roc_auc_score(y.to_numpy()[covered], o.to_numpy()[covered]) if covered.any() else float("nan")
            for refit in (False, True):
                t0 = time.perf_counter()
                result = train_frame(data.frame, replace(spec, production_refit=refit), catalogue=data.catalogue,
                                     feature_set=data.feature_set, register=False, log=lambda line: None)
                p = result.model.predict_proba(X)[:, 1]
                print(f"{seed:4d} {task:12} {'refit' if refit else 'evaluated':10} {roc_auc_score(y, p):8.4f} "
                      f"{average_precision_score(y, p):7.4f} {brier_score_loss(y, p):7.4f} {oracle_auc:10.4f} "
                      f"{time.perf_counter() - t0:5.0f}", flush=True)
            print(f"     {task}: {len(y):,} customers scored at {as_of.date()}, {int(y.sum()):,} positive "
                  f"({np.mean(y):.1%}); {len(plan.cutoffs)} planned cutoffs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
