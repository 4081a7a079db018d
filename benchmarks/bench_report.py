"""How long the report takes to open in headless Chromium with a 50,000-row list.

Usage: python benchmarks/bench_report.py [--rows 50000] [--out /tmp/report-50k.html]

Builds a list of `rows` customers with three reasons and five contributions per task
each (the shape ``score`` writes), writes the report, and measures in headless Chromium
(tests/browser.py, over the DevTools pipe) the time from navigation until the list is
rendered, then one sort and one filter through the page's own controls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def fake_result(n: int):
    from churnguard.scoring import ScoreResult

    rng = np.random.default_rng(0)
    ids = [f"{i:07d}" for i in range(n)]
    churn = rng.beta(2, 8, n)
    maint = np.where(rng.random(n) < 0.6, rng.beta(2, 6, n), np.nan)
    priority = np.sort(rng.gamma(2.0, 40.0, n))[::-1]
    actions = rng.choice(["retention_call", "maintenance_visit", "maintenance_reminder"], n)
    features = [f"interactions_complaints_{w}d" for w in (30, 90, 365)] + ["service_overdue_days_max",
                                                                            "purchases_days_since_last"]
    explanation = [json.dumps({"churn": [{"feature": f, "value": float(k), "shap": 0.3 - 0.05 * k}
                                         for k, f in enumerate(features)],
                               "maintenance": [{"feature": f, "value": float(k), "shap": 0.2 - 0.05 * k}
                                               for k, f in enumerate(features)]}) for _ in range(n)]
    outreach = pd.DataFrame({
        "rank": np.arange(1, n + 1), "customer_id": ids, "action": actions,
        "channel": rng.choice(["phone", "email", "app", "chat"], n), "priority": priority,
        "churn_probability": churn, "maintenance_probability": maint, "value_at_risk": priority * 3,
        "reason_1": [f"{k} complaints in the last 90 days, 2 unresolved" for k in rng.integers(1, 9, n)],
        "reason_2": "heat pump is 47 days past its 180-day service interval",
        "reason_3": "last purchase 310 days ago", "explanation": explanation,
    })
    scored = outreach[["customer_id", "churn_probability", "maintenance_probability", "priority", "action"]].assign(
        value=rng.gamma(2.0, 300.0, n), status="listed")
    explanations = pd.DataFrame({"segment": rng.choice(["consumer", "smb"], n),
                                 "days_since_last_contact": rng.integers(15, 400, n).astype(float),
                                 "days_since_last_complaint": rng.integers(15, 400, n).astype(float)},
                                index=pd.Index(ids, name="customer_id"))
    suppressed = pd.DataFrame({"customer_id": ["x"], "reason": ["do_not_contact"], "priority": [1.0],
                               "churn_probability": [0.5], "maintenance_probability": [np.nan]})
    return ScoreResult(pd.Timestamp("2026-11-01"), outreach, suppressed, scored, explanations=explanations)


def main(argv=None) -> int:
    from browser import Browser, find_chromium

    from churnguard.report import write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/churnguard-report-bench.html"))
    args = parser.parse_args(argv)
    result = fake_result(args.rows)
    started = time.perf_counter()
    write_report(result, args.out)
    print(f"write_report: {time.perf_counter() - started:.2f} s, {args.out.stat().st_size / 1e6:.1f} MB")
    with Browser(find_chromium(), timeout=120) as page:
        for attempt in range(3):
            seconds = page.open(args.out)
            rendered = page.evaluate("document.querySelectorAll('#outreach tbody tr.row').length")
            print(f"open #{attempt + 1}: {seconds:.2f} s until the list is rendered ({rendered} rows on page 1)")
        t = time.perf_counter()
        page.evaluate("document.querySelector('th[data-key=churn_probability] button').click()")
        print(f"sort by churn over {args.rows:,} rows: {time.perf_counter() - t:.3f} s")
        t = time.perf_counter()
        page.evaluate("(() => { const s = document.getElementById('f-action'); s.value = 'maintenance_visit'; "
                      "s.dispatchEvent(new Event('change')); })()")
        info = page.evaluate("document.getElementById('page-info').textContent")
        print(f"filter by action: {time.perf_counter() - t:.3f} s; {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
