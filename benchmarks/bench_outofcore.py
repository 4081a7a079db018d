"""Features over the files (issue 18) side by side with a hand-written DuckDB reference, in one run.

Each step runs in its own process under ``/usr/bin/time -v`` (peak RSS of that process):

* ``reference``: ``benchmarks/reference_features.sql`` (64 features over all six tables)
  written to Parquet by DuckDB with the same memory limit and threads as churnguard;
* ``features``: ``churnguard features`` (tables kept in DuckDB over the files);
* ``features-pandas`` (with ``--pandas``): the same build from tables loaded into pandas.

    python benchmarks/bench_outofcore.py --data /tmp/world1m --as-of 2026-10-01 [--pandas]

Environment: ``CHURNGUARD_DUCKDB_MEMORY_LIMIT`` / ``CHURNGUARD_DUCKDB_TEMP_DIR`` /
``CHURNGUARD_THREADS`` apply to every step (see the README).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

REFERENCE = """
import duckdb, os, sys
from churnguard import duck
con = duck.configure(duckdb.connect())
con.execute(f"SET threads TO {duck.settings().threads}")  # the reference may use both cores freely
sql = open(sys.argv[1]).read().replace("{dir}", sys.argv[2]).replace("{as_of}", sys.argv[3])
con.execute(f"COPY ({sql}) TO '{sys.argv[4]}' (FORMAT parquet)")
print(con.execute(f"SELECT count(*) FROM '{sys.argv[4]}'").fetchone()[0], "rows,",
      len(con.execute(f"DESCRIBE SELECT * FROM '{sys.argv[4]}'").fetchall()) - 1, "features")
"""

PANDAS = """
import sys
from churnguard.features import build_features
from churnguard.io import categories_as_text, write_table
from churnguard.validation import load_data
frame = build_features(load_data(sys.argv[1]).tables, sys.argv[2])
write_table(categories_as_text(frame), sys.argv[3])
print(len(frame), "rows,", frame.shape[1] - 1, "features")
"""


def _timed(label: str, argv: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{proc.stdout}\n{proc.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    row = {"step": label, "wall_s": wall, "cpu_s": user + system, "peak_rss_gib": rss_kb / 2**20,
           "out": proc.stdout.strip().splitlines()[-1:] }
    print(f"{label:<16} {wall:7.1f} s wall {user + system:7.1f} s CPU {rss_kb / 2**20:6.2f} GiB  {row['out']}",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--pandas", action="store_true", help="also run the pandas-loaded path")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [
            _timed("reference", [sys.executable, "-c", REFERENCE, str(HERE / "reference_features.sql"),
                                 str(args.data), args.as_of, str(tmp / "reference.parquet")]),
            _timed("features", [sys.executable, "-m", "churnguard.cli", "features", "--data", str(args.data),
                                "--as-of", args.as_of, "--out", str(tmp / "features.parquet"), "--quiet"]),
        ]
        if args.pandas:
            rows.append(_timed("features-pandas", [sys.executable, "-c", PANDAS, str(args.data), args.as_of,
                                                   str(tmp / "pandas.parquet")]))
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    print(f"features / reference: {ratio:.2f}x wall; load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
