"""Features for N generated customers: Spark local mode next to the single-machine path.

Measures wall time and peak memory (resident set of the whole process tree: the
driver, its JVM and the Python workers Spark starts, sampled every 0.2 s with
psutil) for

* ``single``: ``load_data`` + ``build_features`` in this process;
* ``spark``: ``shard_features`` (validation and build, two passes) written to Parquet.

Each path runs in its own child process so that one's memory does not count
towards the other's peak.

Usage::

    python benchmarks/bench_spark.py --customers 1000000 --shards 10
    python benchmarks/bench_spark.py --customers 20000          # a quick run

The machine is shared; timings on it are noisy (report the load average printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

AS_OF = "2026-06-01"
NOW = "2026-11-01"


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _measure(cmd: list[str]) -> dict:
    """Run `cmd`, sampling the RSS of its process tree; return wall time and peak."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{cmd} failed with {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_s=round(time.perf_counter() - start, 1), peak_rss_gib=round(peak / 2**30, 2))
    return result


def run_single(data: str) -> dict:
    import pandas as pd

    from churnguard.features import build_features
    from churnguard.validation import load_data

    t = time.perf_counter()
    tables = load_data(data, now=pd.Timestamp(NOW)).tables
    features = build_features(tables, pd.Timestamp(AS_OF))
    return {"path": "single", "rows": len(features), "columns": features.shape[1], "inner_s": round(time.perf_counter() - t, 1)}


def run_spark(data: str, shards: int, cores: int, memory: str) -> dict:
    import pandas as pd

    from churnguard.spark import shard_features, spark_session

    t = time.perf_counter()
    spark = spark_session(
        f"local[{cores}]",
        app_name="churnguard-bench",
        shuffle_partitions=max(shards, cores),
        config={"spark.ui.enabled": "false", "spark.driver.memory": memory},
    )
    started = time.perf_counter() - t
    result = shard_features(spark, data, pd.Timestamp(AS_OF), n_shards=shards, now=pd.Timestamp(NOW))
    out = Path(tempfile.mkdtemp()) / "features.parquet"
    result.frame.write.parquet(str(out))
    rows = spark.read.parquet(str(out)).count()
    return {"path": "spark", "rows": rows, "columns": len(result.frame.columns), "shards": shards,
            "session_start_s": round(started, 1), "inner_s": round(time.perf_counter() - t, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shards", type=int, default=None, help="default: one per 100,000 customers")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--data", help="an existing generated world (skips generation)")
    parser.add_argument("--only", choices=["single", "spark"], help="run one path")
    parser.add_argument("--_child", choices=["single", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    shards = args.shards or max(args.cores, -(-args.customers // 100_000))

    if args._child == "single":
        print(json.dumps(run_single(args.data)))
        return
    if args._child == "spark":
        print(json.dumps(run_spark(args.data, shards, args.cores, args.driver_memory)))
        return

    data = args.data
    if data is None:
        from churnguard.synthetic import generate_world, write_world

        data = tempfile.mkdtemp(prefix="churnguard-bench-")
        t = time.perf_counter()
        write_world(generate_world(args.customers, seed=args.seed), data)
        print(f"generated {args.customers:,} customers in {time.perf_counter() - t:.0f} s -> {data}", file=sys.stderr)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    base = [sys.executable, __file__, "--data", data, "--customers", str(args.customers),
            "--cores", str(args.cores), "--driver-memory", args.driver_memory, "--shards", str(shards)]
    for path in ("single", "spark"):
        if args.only and args.only != path:
            continue
        print(json.dumps(_measure([*base, "--_child", path])))
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
