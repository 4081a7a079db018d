"""Short exports: train on the last N months of a generated world, as a new user's data looks.

Most businesses that try churnguard first have a short export. For N = 3, 6, 9 and 12
months this keeps only the events of the world's last N months (customers and their
products stay), trains each task with the default spec through ``train_task`` (the cutoff
plan read from the data, the evaluation that degrades honestly), and prints the
evaluation used, the held-out ROC-AUC, the oracle's ROC-AUC on the same rows (the
generator's truth) and the rule baseline (purchase recency for churn, days overdue for
maintenance) on the same rows.

    python benchmarks/bench_short_history.py                        # 10,000 customers, seed 1
    python benchmarks/bench_short_history.py --customers 20000 --months 3 6

The truth is recorded on the first of each month, so "today" is placed where the newest
complete 90-day label window starts on one: 2026-08-01 + 90 days.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import pandas as pd

from churnguard.config import load_model_spec
from churnguard.synthetic import generate_world
from churnguard.training import train_task
from churnguard.validation import validate_tables

EVENT_TABLES = ("interactions", "purchases", "service_events", "usage")
AS_OF = pd.Timestamp("2026-08-01") + pd.Timedelta(days=90)


def last_months(tables: dict[str, pd.DataFrame], months: int, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The tables as an export of the last `months` months before `end` would hold them."""
    start = end - pd.DateOffset(months=months)
    out = dict(tables)
    for name in EVENT_TABLES:
        if out.get(name) is not None:
            out[name] = out[name][out[name]["timestamp"] >= start].reset_index(drop=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", type=int, nargs="+", default=[3, 6, 9, 12])
    args = parser.parse_args(argv)
    # MLflow's INFO lines and progress bars would bury the table.
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    world = generate_world(args.customers, seed=args.seed)
    truth = world.pop("truth")
    tables = validate_tables(world).tables
    print(f"{args.customers:,} customers (seed {args.seed}); today = {AS_OF.date()}", flush=True)
    print(f"{'months':>6} {'task':12} {'evaluation':18} {'train cutoffs':>7} {'held-out rows':>13} "
          f"{'model AUC':>9} {'oracle AUC':>10} {'share':>6} {'rule AUC':>8} {'seconds':>7}")
    for months in args.months:
        cut = last_months(tables, months, AS_OF)
        for task in ("churn", "maintenance"):
            spec = load_model_spec(task=task)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    result = train_task(cut, spec, as_of=AS_OF, truth=truth, tracking_uri=f"sqlite:///{tmp}/m.db",
                                        progress=False, log=lambda line: None)
                except ValueError as err:
                    print(f"{months:6d} {task:12} refused: {err}")
                    continue
            m = result.metrics
            share = m.get("share_of_oracle_auc", float("nan"))
            print(f"{months:6d} {task:12} {result.split:18} {len(result.cutoffs.get('train') or []):7d} "
                  f"{result.rows['holdout']:13,d} {m['model_roc_auc']:9.4f} {m.get('oracle_roc_auc', float('nan')):10.4f} "
                  f"{share:7.2%} {m.get('rule_roc_auc', float('nan')):8.4f} {time.perf_counter() - t0:7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
