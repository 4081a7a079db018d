"""Count the outreach list's reasons and decisions that a care agent would not trust.

Usage: python benchmarks/audit_list.py DIR [--visit-threshold 0.5] [--min-retention 0.1]

DIR holds a demo's (or a score run's) ``outreach.csv`` and ``outreach.suppressed.csv``.
Each line is one problem class of issue 16, counted on the list as written; the facts a
sentence speaks of are recognised from its words, so two sentences about one fact count
once per customer.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

# Which fact a sentence speaks of, recognised from its wording (old and new templates).
FACTS = {
    "purchase recency": r"purchases? in the last|last purchase|no purchase for",
    "spending": r"spending in the last|spent .* in the last",
    "complaints": r"complain",
    "nps": r"\bNPS\b",
    "csat": r"satisfaction",
    "ces": r"effort",
    "sentiment": r"sentiment",
    "service overdue": r"overdue|past its .*service interval|since (?:its )?last preventive",
    "failures": r"repairs? or failures?",
    "warranty": r"warranty",
    "contact volume": r"contacted us|^\d+ (?!escalated)[a-z]+ contacts? in the last",
    "contact topics": r"contacts? about",
    "repeat contacts": r"came back",
    "waiting": r"waited|gave up waiting",
    "activity": r"active on|no product activity",
}


def audit(folder: Path, *, visit_threshold: float, min_retention: float) -> dict[str, int]:
    listed = pd.read_csv(folder / "outreach.csv", dtype={"customer_id": str})
    suppressed = pd.read_csv(folder / "outreach.suppressed.csv", dtype={"customer_id": str})
    reasons = listed[["reason_1", "reason_2", "reason_3"]]
    texts = reasons.stack().astype(str)
    nps = texts.str.extract(r"NPS answer(?: was)? (\d+)")[0].astype(float)
    csat = texts.str.extract(r"satisfaction(?: score)? (\d+(?:\.\d+)?) of 5")[0].astype(float)
    tenure = texts.str.extract(r"customer for only (\d+) days")[0].astype(float)
    facts = pd.DataFrame({name: texts.str.contains(pattern, regex=True) for name, pattern in FACTS.items()})
    per_customer = facts.groupby(level=0).sum()
    out = {
        "customers listed": len(listed),
        "reasons": len(texts),
        "reason with an NPS answer of 7-10": int((nps >= 7).sum()),
        "reason with a promoter NPS (9-10)": int((nps >= 9).sum()),
        "reason with a CSAT of 4 or more": int((csat >= 4).sum()),
        "reason saying '0 days past'": int(texts.str.contains(r"\b0 days past").sum()),
        "reason with a tenure over a year": int((tenure > 365).sum()),
        "reason with a positive sentiment": int(texts.str.contains(r"sentiment [a-z ]*\+\d").sum()),
        "reason with an underscore_joined word": int(texts.str.contains(r"[A-Za-z0-9]_[A-Za-z0-9]").sum()),
        "reason with '1 ... <plural>' grammar": int(texts.str.contains(r"(?<![\d.,])\b1 (?:[a-z]+ )?[a-z]+[^s\W]s\b(?! of)").sum()),
        "reason with money but no currency": int(texts.str.contains(r"(?:spent|returned|costs of) \d").sum()),
        "customers with two reasons about one fact": int((per_customer > 1).any(axis=1).sum()),
        "listed customers without a reason": int(reasons.isna().all(axis=1).sum()),
        "listed with probability 0 on every task": int(
            (listed[["churn_probability", "maintenance_probability"]].fillna(0) <= 0).all(axis=1).sum()),
        "retention calls": int(listed["action"].str.contains("retention").sum()),
        "retention calls not by phone": int((listed["action"].str.contains("retention")
                                             & (listed["channel"] != "phone")).sum()),
        f"retention calls below churn probability {min_retention}": int(
            (listed["action"].str.contains("retention") & (listed["churn_probability"] < min_retention)).sum()),
        f"maintenance probability >= {visit_threshold} without a maintenance action": int(
            ((listed["maintenance_probability"] >= visit_threshold)
             & ~listed["action"].str.contains("maintenance")).sum()),
        "suppressed file has a priority column": int("priority" in suppressed.columns),
        "suppressed file sorted by priority": int("priority" in suppressed.columns
                                                  and suppressed["priority"].is_monotonic_decreasing),
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--visit-threshold", type=float, default=0.5)
    parser.add_argument("--min-retention", type=float, default=0.1)
    args = parser.parse_args(argv)
    for name, n in audit(args.folder, visit_threshold=args.visit_threshold, min_retention=args.min_retention).items():
        print(f"{n:>7,}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
