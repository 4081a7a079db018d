"""The impact rows for people: an HTML section for the report, and a page of its own.

:func:`impact_section` renders the section that ``churnguard impact --report`` writes
as a page and that :func:`churnguard.report.write_report` includes beside the day's
list when it is given an :class:`~churnguard.impact.ImpactResult`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from churnguard.impact.measure import ALL, ImpactResult
from churnguard.io import atomic_path

__all__ = ["impact_section", "write_impact_report"]

_STATUS_TEXT = {"measured": "measured", "too_small": "too small to tell", "provisional": "provisional"}


def _rate(x) -> str:
    return "" if pd.isna(x) else f"{x:.1%}"


def _range(value, low, high, *, points: bool = False, money=None) -> str:
    if pd.isna(value):
        return ""
    if points:
        return f"{100 * value:+.1f} pt ({100 * low:+.1f} .. {100 * high:+.1f})"
    if money is not None:
        return f"{money(value)} ({money(low)} .. {money(high)})" if pd.notna(low) else money(value)
    return f"{value:,.1f} ({low:,.1f} .. {high:,.1f})"


def _note(row) -> str:
    """What a campaign not measured would need, in a few words (the full reason is the cell's title)."""
    if row.status == "measured" or pd.isna(row.reason):
        return ""
    if row.status == "too_small" and pd.notna(row.more_needed) and row.more_needed > 0:
        return f"about {int(row.more_needed):,} more customers needed"
    return row.reason


def _rows(frame: pd.DataFrame, money) -> list[dict]:
    out = []
    for row in frame.itertuples(index=False):
        out.append({
            "list_date": str(pd.Timestamp(row.list_date).date()), "action": str(row.action).replace("_", " "),
            "segment": row.segment, "outcome": row.outcome, "status": row.status,
            "status_text": _STATUS_TEXT.get(row.status, row.status),
            "reason": "" if pd.isna(row.reason) else row.reason,
            "note": _note(row),
            "n_treatment": f"{row.n_treatment:,}", "n_control": f"{row.n_control:,}",
            "treatment_rate": _rate(row.treatment_rate), "control_rate": _rate(row.control_rate),
            "difference": _range(row.difference, row.difference_low, row.difference_high, points=True),
            "saved": _range(row.saved, row.saved_low, row.saved_high),
            "value_saved": _range(row.value_saved, row.value_saved_low, row.value_saved_high, money=money),
            "cost_per_saved": "" if pd.isna(row.cost_per_saved) else money(row.cost_per_saved),
            "more_needed": "" if pd.isna(row.more_needed) or row.more_needed == 0 else f"{int(row.more_needed):,}",
        })
    return out


def impact_section(result: ImpactResult) -> str:
    """The report's impact section: one table row per campaign, segments folded below.

    Returns the HTML of one ``<section id="impact">`` (escaped; styled by the report's
    own CSS classes).

    Examples
    --------
    >>> rows = pd.DataFrame([{"list_date": pd.Timestamp("2026-03-01"), "action": "retention_call",
    ...     "segment": "all", "outcome": "contractual churn", "horizon_days": 90, "status": "too_small",
    ...     "n_treatment": 40, "n_control": 5, "treatment_rate": 0.2, "control_rate": 0.4, "difference": -0.2,
    ...     "difference_low": -0.55, "difference_high": 0.1, "saved": None, "saved_low": None, "saved_high": None,
    ...     "value_saved": None, "value_saved_low": None, "value_saved_high": None, "cost_per_saved": None,
    ...     "more_needed": 120, "reason": "the interval holds zero <script>"}])
    >>> html = impact_section(ImpactResult(rows, pd.Timestamp("2026-09-01")))
    >>> html.startswith('<section id="impact">'), "too small to tell" in html, "<script>" in html
    (True, True, False)
    """
    from jinja2 import Environment, select_autoescape

    from churnguard.config import OutreachRules

    money = OutreachRules(currency=result.currency).money
    frame = result.rows
    campaigns = frame[frame["segment"] == ALL]
    segments = frame[frame["segment"] != ALL]
    measured = campaigns[campaigns["status"] == "measured"]
    outcomes = sorted({"churned" if "churn" in str(t) else "needed a repair" for t in frame["outcome"].dropna()})
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("churnguard").joinpath("templates/impact.html").read_text())
    return template.render(
        horizons=" / ".join(str(h) for h in sorted(set(frame["horizon_days"].dropna().astype(int)))) or "90",
        outcomes=" / ".join(outcomes) or "churned",
        pct=f"{result.confidence:.0%}", method=result.method, min_group=result.min_group,
        n_measured=len(measured), n_too_small=int((campaigns["status"] == "too_small").sum()),
        n_provisional=int((campaigns["status"] == "provisional").sum()),
        saved_total=f"{measured['saved'].sum():,.1f}" if len(measured) else None,
        campaigns=_rows(campaigns, money), segments=_rows(segments, money),
    )


def write_impact_report(result: ImpactResult, out_html: Path | str) -> Path:
    """A page of its own holding :func:`impact_section`, written atomically.

    Examples
    --------
    >>> import tempfile
    >>> rows = pd.DataFrame(columns=["list_date", "action", "segment", "outcome", "horizon_days", "status"])
    >>> path = write_impact_report(ImpactResult(rows, pd.Timestamp("2026-09-01")),
    ...                            Path(tempfile.mkdtemp()) / "impact.html")
    >>> 'id="impact"' in path.read_text(), 'name="viewport"' in path.read_text()
    (True, True)
    """
    from markupsafe import escape

    import churnguard

    style = resources.files("churnguard").joinpath("templates/report.html").read_text()
    css = style[style.index("<style>"):style.index("</style>") + len("</style>")]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>churnguard impact, data to {escape(str(result.data_end.date()))}</title>\n{css}\n</head>\n"
        f"<body data-ready=\"true\">\n<h1>What past outreach saved</h1>\n"
        f"<p class=\"muted\">Data up to {escape(str(result.data_end.date()))} &middot; churnguard "
        f"{escape(churnguard.__version__)}.</p>\n{impact_section(result)}\n</body>\n</html>\n"
    )
    out_html = Path(out_html)
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_html
