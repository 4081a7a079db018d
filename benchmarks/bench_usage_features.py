"""Benchmark the usage and service feature families at CRM scale: wall time and peak memory.

    python benchmarks/bench_usage_features.py --customers 1000000 --usage-rows 50000000

Generates typed tables of realistic shape with numpy (skewed per-customer activity
levels, eight event names of skewed frequency, a third of the rows logged against
assets, a year of history before as_of), then times ``usage.resolve``, ``usage.build``
and ``service.build`` for one cutoff. ``--synthetic`` uses ``churnguard.synthetic.
generate_world`` instead (its own row volumes; slow to generate at 1M customers).
Peak RSS is sampled every 20 ms during each step and also reported as the process
high-water mark (``resource.getrusage``, which includes data generation). CPU time (user +
system, all threads) is printed next to wall time: on a shared machine wall time mostly
measures the other jobs, while CPU time / 2 approximates wall time on two idle cores.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from churnguard.config import ServiceFeatures, UsageFeatures
from churnguard.features import service, usage

AS_OF = pd.Timestamp("2025-01-01")
EVENTS = ["login", "stream_minutes", "page_view", "search", "share", "run_hours", "cycles", "support_view"]
EVENT_P = [0.30, 0.18, 0.14, 0.08, 0.04, 0.12, 0.10, 0.04]
ASSET_EVENTS = {"run_hours", "cycles"}


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: less sensitive to a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


class PeakRSS:
    """Sample the resident set size in a thread while the block runs."""

    def __enter__(self):
        self.peak, self._stop = rss_gib(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_gib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_gib())


def strings(labels: np.ndarray, codes: np.ndarray) -> pd.Series:
    """A "str" column of labels[codes], built in Arrow without Python string objects."""
    taken = pa.array(labels).take(pa.array(codes)).cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(taken), copy=False).astype("str")


def numpy_world(n_customers: int, n_rows: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.char.zfill(np.arange(n_customers).astype(str), 8))
    customers = pd.DataFrame({"customer_id": strings(ids, np.arange(n_customers))})
    # Assets: 60 % of customers own 1-2 products.
    owners = np.flatnonzero(rng.random(n_customers) < 0.6)
    owners = np.concatenate([owners, owners[rng.random(len(owners)) < 0.4]])
    n_assets = len(owners)
    asset_ids = np.char.add("A", np.char.zfill(np.arange(n_assets).astype(str), 8))
    products = np.array(["compressor", "heating unit", "boiler", "coffee machine"])
    install = AS_OF - pd.to_timedelta(rng.integers(-60, 3000, n_assets), unit="D")
    assets = pd.DataFrame({
        "asset_id": strings(asset_ids, np.arange(n_assets)),
        "customer_id": strings(ids, owners),
        "product": strings(products, rng.integers(0, len(products), n_assets)),
        "install_date": np.asarray(install, dtype="datetime64[us]"),
        "warranty_end": np.asarray(install + pd.Timedelta(days=730), dtype="datetime64[us]"),
        "service_interval_days": rng.choice([90.0, 180.0, 365.0], n_assets),
    })
    # Service events: about 3 per asset over three years.
    n_service = 3 * n_assets
    kinds = np.array(["preventive", "inspection", "repair", "failure"])
    service_events = pd.DataFrame({
        "asset_id": strings(asset_ids, rng.integers(0, n_assets, n_service)),
        "timestamp": (np.datetime64(AS_OF, "us") - rng.integers(-90 * 86400, 3 * 365 * 86400, n_service)
                      .astype("timedelta64[s]").astype("timedelta64[us]")),
        "kind": strings(kinds, rng.choice(4, n_service, p=[0.55, 0.2, 0.15, 0.1])),
        "customer_id": pd.Series(np.full(n_service, np.nan), dtype="str"),
        "cost": rng.gamma(2.0, 60.0, n_service),
    })
    # Usage: lognormal activity level per customer, a year before as_of plus a month after.
    weight = rng.lognormal(0.0, 1.0, n_customers)
    who = rng.choice(n_customers, n_rows, p=weight / weight.sum())
    event = rng.choice(len(EVENTS), n_rows, p=EVENT_P)
    is_asset = np.isin(event, [EVENTS.index(e) for e in ASSET_EVENTS])
    # Asset rows go to one of the customer's assets where there is one, else to a random asset.
    first_asset = np.full(n_customers, -1)
    first_asset[owners[::-1]] = np.arange(n_assets)[::-1]
    asset_code = np.where(first_asset[who] >= 0, first_asset[who], rng.integers(0, n_assets, n_rows))
    asset_col = strings(asset_ids, asset_code)
    asset_col[~is_asset] = np.nan
    value = np.where(event == EVENTS.index("stream_minutes"), rng.gamma(2.0, 20.0, n_rows), 1.0)
    value = np.where(is_asset, rng.gamma(2.0, 2.0, n_rows), value)
    offset = rng.integers(-30 * 86400, 365 * 86400, n_rows).astype("timedelta64[s]").astype("timedelta64[us]")
    usage_table = pd.DataFrame({
        "customer_id": strings(ids, who),
        "timestamp": np.datetime64(AS_OF, "us") - offset,
        "event": strings(np.array(EVENTS), event),
        "asset_id": asset_col,
        "value": value,
    })
    return {"customers": customers, "assets": assets, "service_events": service_events, "usage": usage_table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--usage-rows", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="use churnguard.synthetic.generate_world")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    if args.synthetic:
        from churnguard.synthetic import generate_world

        tables = generate_world(args.customers, seed=args.seed)
        as_of = pd.Timestamp(tables["usage"]["timestamp"].max().normalize()) - pd.Timedelta(days=90)
    else:
        tables, as_of = numpy_world(args.customers, args.usage_rows, args.seed), AS_OF
    customers = pd.Index(np.sort(tables["customers"]["customer_id"].to_numpy()), dtype="str", name="customer_id")
    print(f"data: {time.perf_counter() - t0:.1f} s; rows: "
          + ", ".join(f"{k}={len(v):,}" for k, v in tables.items() if k != "truth")
          + f"; RSS after generation {rss_gib():.2f} GiB")

    steps = {}
    with PeakRSS() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        spec = usage.resolve(tables, as_of, UsageFeatures())
        steps["usage.resolve"] = (time.perf_counter() - t, cpu_seconds() - c, mem)
    with PeakRSS() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        usage_frame, _ = usage.build(tables, as_of, customers, spec)
        steps["usage.build"] = (time.perf_counter() - t, cpu_seconds() - c, mem)
    with PeakRSS() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        service_frame, _ = service.build(tables, as_of, customers, ServiceFeatures())
        steps["service.build"] = (time.perf_counter() - t, cpu_seconds() - c, mem)
    with open("/proc/loadavg") as f:
        print(f"load average at the end (2 cores shared with other jobs): {f.read().split()[0]}")
    for name, (seconds, cpu, mem) in steps.items():
        print(f"{name:14s} wall {seconds:7.2f} s   cpu {cpu:7.2f} s   peak RSS during step {mem.peak:5.2f} GiB")
    total, total_cpu = sum(s[0] for s in steps.values()), sum(s[1] for s in steps.values())
    print(f"{'total':14s} wall {total:7.2f} s   cpu {total_cpu:7.2f} s   process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"usage: {usage_frame.shape[1]} columns ({len(spec.resolved_events)} events: "
          f"{', '.join(spec.resolved_events)}); service: {service_frame.shape[1]} columns; "
          f"{len(customers):,} customers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
