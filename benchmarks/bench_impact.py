"""Coverage of ``churnguard impact``'s interval for customers saved, on generated worlds with past campaigns.

    python benchmarks/bench_impact.py --customers 3000 --seeds 1-30

For each seed: generate a world (``generate_world``, with its past retention-call
campaigns), measure every campaign with :func:`churnguard.impact.measure_impact`
(truth tables withheld), and compare each row's interval for customers saved
(``-difference x treated``, Newcombe's interval scaled alike; taken from the difference
columns, so rows too small to claim a saving are scored too) with the true customers
saved: the sum over the row's treatment group of ``-treatment_effect`` in
``uplift_truth``. Prints one line per seed and the coverage rate of the campaign (``all``)
rows and of the segment rows, with the Wald interval's coverage on the same rows for
contrast.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from churnguard.impact import measure_impact
from churnguard.synthetic import generate_world


def seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def truth_saved(world: dict) -> pd.DataFrame:
    """True customers saved per list date, action and segment (and ``all``)."""
    truth = world["uplift_truth"]
    treated = truth[truth["group"] == "treatment"].copy()
    segment = world["customers"].set_index("customer_id")["segment"].astype(str)
    treated["segment"] = segment.reindex(treated["customer_id"]).to_numpy()
    treated["saved"] = -treated["treatment_effect"]
    keys = ["list_date", "action"]
    parts = [treated.groupby(keys)["saved"].sum().reset_index().assign(segment="all"),
             treated.groupby(keys + ["segment"])["saved"].sum().reset_index()]
    out = pd.concat(parts, ignore_index=True)
    out["list_date"] = pd.to_datetime(out["list_date"]).astype("datetime64[us]")
    return out.rename(columns={"saved": "true_saved"})


def wald(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    p_t, p_c = rows["treatment_rate"], rows["control_rate"]
    half = 1.96 * np.sqrt(p_t * (1 - p_t) / rows["n_treatment"] + p_c * (1 - p_c) / rows["n_control"])
    d = p_t - p_c
    return (-(d + half) * rows["n_treatment"]).to_numpy(), (-(d - half) * rows["n_treatment"]).to_numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seeds", default="1-30")
    args = parser.parse_args(argv)
    frames = []
    started = time.perf_counter()
    for seed in seeds(args.seeds):
        world = generate_world(args.customers, seed=seed, campaigns=True)
        tables = {k: v for k, v in world.items() if k not in ("truth", "uplift_truth")}
        rows = measure_impact(tables).rows
        rows = rows.merge(truth_saved(world), on=["list_date", "action", "segment"], how="left")
        rows["low"] = -rows["difference_high"] * rows["n_treatment"]
        rows["high"] = -rows["difference_low"] * rows["n_treatment"]
        rows["wald_low"], rows["wald_high"] = wald(rows)
        rows["seed"] = seed
        rows = rows[rows["n_control"] > 0]
        frames.append(rows)
        camp = rows[rows["segment"] == "all"]
        covered = ((camp["low"] <= camp["true_saved"]) & (camp["true_saved"] <= camp["high"])).sum()
        print(f"seed {seed}: {len(camp)} campaigns, {covered} covered; measured {int((camp['status'] == 'measured').sum())}; "
              f"true saved {camp['true_saved'].round(1).tolist()}, estimated {(-camp['difference'] * camp['n_treatment']).round(1).tolist()}",
              flush=True)
    rows = pd.concat(frames, ignore_index=True)
    rows["covered"] = (rows["low"] <= rows["true_saved"]) & (rows["true_saved"] <= rows["high"])
    rows["wald_covered"] = (rows["wald_low"] <= rows["true_saved"]) & (rows["true_saved"] <= rows["wald_high"])
    print(f"\n{args.customers:,} customers, seeds {args.seeds}, {time.perf_counter() - started:.0f} s")
    for name, part in (("campaigns (all)", rows[rows["segment"] == "all"]), ("segments", rows[rows["segment"] != "all"])):
        n = len(part)
        k = int(part["covered"].sum())
        se = np.sqrt(k / n * (1 - k / n) / n) if n else float("nan")
        print(f"{name}: {n} intervals, Newcombe coverage {k / n:.3f} (+-{1.96 * se:.3f}), Wald coverage "
              f"{part['wald_covered'].mean():.3f}; median treated {part['n_treatment'].median():.0f}, control "
              f"{part['n_control'].median():.0f}; median width {(part['high'] - part['low']).median():.1f} customers; "
              f"measured {int((part['status'] == 'measured').sum())}")
        error = -part["difference"] * part["n_treatment"] - part["true_saved"]
        print(f"  estimate - truth: mean {error.mean():+.2f} customers (+-{1.96 * error.std() / np.sqrt(n):.2f}); "
              f"true saved per interval: mean {part['true_saved'].mean():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
