"""Benchmark the synthetic world generator: wall time, peak memory, rows per table.

    python benchmarks/bench_generate.py --customers 1000000 --seed 1

Generates the world the way ``churnguard generate`` does (``generate_world_files``:
each table written as soon as it is built), or with ``--in-memory`` through
``generate_world`` + ``write_world`` (every table in memory at once), writes it as
Parquet to a temporary directory (removed afterwards unless --keep) and prints the
figures. Peak RSS is the process
high-water mark from ``resource.getrusage`` (Linux reports KiB).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from churnguard.synthetic import generate_world, generate_world_files, write_world


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """User + system CPU time of this process: the figure that other load on a shared machine does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="directory to write into (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--in-memory", action="store_true",
                        help="generate_world then write_world (all tables in memory), not generate_world_files")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="churnguard-bench-"))
    print(f"customers={args.customers:,} seed={args.seed} cpus={os.cpu_count()} load_avg={os.getloadavg()}")
    started = time.perf_counter()
    if args.in_memory:
        # generate_world + write_world: every table in memory at once (the API's dict).
        world = generate_world(args.customers, seed=args.seed, progress=args.progress)
        generated = time.perf_counter()
        print(f"generate: {generated - started:7.1f} s   cpu {cpu_seconds():7.1f} s   peak RSS {peak_rss_gib():.2f} GiB")
        paths = write_world(world, out)
        rows = {name: len(frame) for name, frame in world.items()}
        del world
        written = time.perf_counter()
        print(f"write:    {written - generated:7.1f} s   cpu {cpu_seconds():7.1f} s (cumulative)")
    else:
        # generate_world_files, as `churnguard generate` runs: one finished table at a time.
        tables = generate_world_files(out, args.customers, seed=args.seed, progress=args.progress)
        paths = {name: t.path for name, t in tables.items()}
        rows = {name: t.rows for name, t in tables.items()}
        written = time.perf_counter()
    print(f"total:    {written - started:7.1f} s   cpu {cpu_seconds():7.1f} s   peak RSS {peak_rss_gib():.2f} GiB")
    print(f"{'table':<16}{'rows':>14}{'per customer':>14}{'MiB on disk':>13}")
    for name, n in rows.items():
        size = paths[name].stat().st_size / 2**20
        print(f"{name:<16}{n:>14,}{n / args.customers:>14.1f}{size:>13.1f}")
    print(f"load_avg after: {os.getloadavg()}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
