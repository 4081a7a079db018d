"""Benchmark the point-in-time feature builders: one cutoff at scale, and a training set.

    python benchmarks/bench_features.py --data DIR --as-of 2026-10-01          # one cutoff
    python benchmarks/bench_features.py --data DIR --training 200000 --cutoffs 12
    python benchmarks/bench_features.py --customers 200000                     # generate first

DIR is a world written by ``churnguard generate`` / ``benchmarks/bench_generate.py
--keep``; without --data a world is generated in a child process (so the generator's
memory does not count) into a temp dir. Each measurement runs in its own child process
so the peak RSS reported (``ru_maxrss``) is that of loading the tables plus building.
The machine is shared: wall time is inflated by other load, so the CPU time
(user + system) and the load average are printed next to it.

Targets (issue 3): one cutoff for 1,000,000 customers (~27M events, without usage) in
under 30 s and 8 GiB on 2 cores; a 12-cutoff training set for 200,000 customers in
under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

EVENT_TABLES = ("interactions", "purchases", "assets", "service_events", "usage")


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def read_world(data: Path, tables: list[str], customers: int | None) -> dict[str, pd.DataFrame]:
    """Read the world's Parquet files (already contract-typed by the generator)."""
    world = {"customers": pd.read_parquet(data / "customers.parquet")}
    for name in tables:
        if (data / f"{name}.parquet").exists():
            world[name] = pd.read_parquet(data / f"{name}.parquet")
    if customers is not None and customers < len(world["customers"]):
        # A prefix of the sorted ids is a random sample: the generator draws customers i.i.d.
        keep = world["customers"]["customer_id"].sort_values().iloc[:customers]
        world["customers"] = world["customers"][world["customers"]["customer_id"].isin(keep)]
        for name, frame in world.items():
            if name != "customers" and "customer_id" in frame:
                world[name] = frame[frame["customer_id"].isin(keep)]
        if "service_events" in world and "assets" in world:
            world["service_events"] = world["service_events"][
                world["service_events"]["asset_id"].isin(world["assets"]["asset_id"])]
    return world


def child(args) -> dict:
    from churnguard.features import build_features
    from churnguard.labels import label_cutoffs, training_set

    tables = [t for t in EVENT_TABLES if t in args.tables]
    world = read_world(args.data, tables, args.training or args.sample)
    rows = {name: len(frame) for name, frame in world.items()}
    loaded_rss, loaded_cpu = peak_rss_gib(), cpu_seconds()
    started = time.perf_counter()
    if args.training:
        cutoffs = label_cutoffs(world, n_cutoffs=args.cutoffs, horizon_days=90)
        frame = training_set(world, cutoffs, task="churn", horizon_days=90)
    else:
        frame = build_features(world, pd.Timestamp(args.as_of))
    wall = time.perf_counter() - started
    return {"rows_in": rows, "rows_out": len(frame), "columns": frame.shape[1], "wall_s": round(wall, 1),
            "cpu_s": round(cpu_seconds() - loaded_cpu, 1), "peak_rss_gib": round(peak_rss_gib(), 2),
            "rss_after_load_gib": round(loaded_rss, 2), "load_avg": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="world written by bench_generate.py --keep")
    parser.add_argument("--customers", type=int, default=1_000_000, help="world size to generate without --data")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", default="2026-10-01")
    parser.add_argument("--sample", type=int, default=None, help="use only this many customers of the world")
    parser.add_argument("--tables", default="interactions,purchases,assets,service_events",
                        help="event tables to load (add usage for the issue-9 figure)")
    parser.add_argument("--training", type=int, default=0, help="build a training set for this many customers")
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args)))
        return 0
    if args.data is None:
        args.data = Path(tempfile.mkdtemp(prefix="churnguard-bench-features-"))
        subprocess.run([sys.executable, "-c", "import sys; from churnguard.synthetic import generate_world, "
                        "write_world; write_world(generate_world(int(sys.argv[1]), seed=int(sys.argv[2])), "
                        "sys.argv[3])", str(args.customers), str(args.seed), str(args.data)], check=True)
    command = [sys.executable, __file__, "--child", "--data", str(args.data), "--as-of", args.as_of,
               "--tables", args.tables, "--training", str(args.training), "--cutoffs", str(args.cutoffs)]
    if args.sample:
        command += ["--sample", str(args.sample)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    what = (f"training set, {args.cutoffs} cutoffs" if args.training else f"one cutoff at {args.as_of}")
    print(f"{what}; tables {args.tables}; cpus {os.cpu_count()}")
    print(f"  events in: {json.dumps(result['rows_in'])}")
    print(f"  rows out {result['rows_out']:,}, columns {result['columns']}")
    print(f"  wall {result['wall_s']} s, cpu {result['cpu_s']} s, peak RSS {result['peak_rss_gib']} GiB "
          f"(after loading the tables {result['rss_after_load_gib']} GiB), load avg {result['load_avg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
