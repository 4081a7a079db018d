"""Where the time of one `churnguard score` goes: wall, user and system seconds per phase.

Runs the real command in this process with the public functions it calls wrapped by a
timer (reading and checking the files, features per chunk, both tasks' probabilities,
the kernel's decisions, reasons, writing), then prints one line per phase and the rest
("other": start-up, model loading, the kernel's tables, ranking, frames). System time is
its own column because on this project's VMs page faults are a large share of it
(benchmarks/README.md, sixth session).

    CHURNGUARD_DUCKDB_MEMORY_LIMIT=4GB python benchmarks/score_phases.py score --data /tmp/world1m_s \\
        --as-of 2026-10-01 --out /tmp/lists/outreach.csv --capacity 50000 \\
        --tracking-uri sqlite:////tmp/mlf/mlflow.db --quiet

Everything after the script name is the command line of ``churnguard``. Phases nest
nowhere (no wrapped function calls another), so the rows add up to the total.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict

# The console script sets this before numpy is imported; so does this script, to time the same thing.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

START_WALL, START_TIMES = time.perf_counter(), os.times()

import churnguard.cli as cli  # noqa: E402
import churnguard.features as features  # noqa: E402
import churnguard.relations as relations  # noqa: E402
import churnguard.scoring as scoring  # noqa: E402
import churnguard.validation as validation  # noqa: E402

PHASES: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])


def _timed(module, name: str, label: str) -> None:
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        wall, times = time.perf_counter(), os.times()
        try:
            return inner(*args, **kwargs)
        finally:
            now = os.times()
            row = PHASES[label]
            row[0] += time.perf_counter() - wall
            row[1] += now.user - times.user
            row[2] += now.system - times.system
            row[3] += 1

    setattr(module, name, wrapper)


# The command imports these at call time from their modules, or calls them through scoring.
_timed(relations, "load_relations", "read and check the files")
_timed(validation, "load_data", "read and check the files (pandas)")
_timed(features, "build_features", "features")
for name, label in [("subset_tables", "chunk the tables"), ("predict_tasks", "probabilities"),
                    ("candidates", "decide (eligibility, actions, groups)"), ("explain_chunk", "reasons"),
                    ("write_outreach", "write the lists")]:
    _timed(scoring, name, label)


def main() -> int:
    code = cli.main(sys.argv[1:])
    wall = time.perf_counter() - START_WALL
    end = os.times()
    user, system = end.user - START_TIMES.user, end.system - START_TIMES.system
    print(f"\n{'phase':40s} {'wall':>7s} {'user':>7s} {'sys':>7s} calls", file=sys.stderr)
    rest = [wall, user, system]
    for label, (w, u, s, n) in PHASES.items():
        print(f"{label:40s} {w:7.1f} {u:7.1f} {s:7.1f} {n:5d}", file=sys.stderr)
        rest = [rest[0] - w, rest[1] - u, rest[2] - s]
    print(f"{'other':40s} {rest[0]:7.1f} {rest[1]:7.1f} {rest[2]:7.1f}", file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{'total':40s} {wall:7.1f} {user:7.1f} {system:7.1f}   peak RSS {peak:.2f} GiB, exit {code}",
          file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
