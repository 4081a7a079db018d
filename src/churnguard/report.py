"""One self-contained HTML page beside the outreach list, for the care-team lead and the data scientist.

What it shows: customers per risk level and per action, the reasons that come up most
on the list, score distributions, the model versions used, and drift of today's
features against each model's training reference (PSI). Plots are PNGs embedded as
base64, so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnguard.drift import MAJOR, MODERATE, drift_table
from churnguard.io import atomic_path

__all__ = ["RISK_BANDS", "risk_levels", "write_report"]

# Upper edges of the probability bands; the last band is open.
RISK_BANDS = {"low": 0.1, "moderate": 0.3, "high": 0.6, "very high": 1.0}
MAX_DRIFT_ROWS = 25


def risk_levels(probability: pd.Series) -> pd.Series:
    """Band of each calibrated probability (NaN when the task had no model).

    Examples
    --------
    >>> risk_levels(pd.Series([0.02, 0.2, 0.5, 0.9, np.nan])).tolist()
    ['low', 'moderate', 'high', 'very high', nan]
    """
    edges = [-np.inf, *list(RISK_BANDS.values())[:-1], np.inf]
    return pd.cut(probability, edges, labels=list(RISK_BANDS), right=False).astype(object)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _score_plot(scored: pd.DataFrame) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in ("churn", "maintenance") if scored[f"{t}_probability"].notna().any()]
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.2), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, task in zip(axes[0], tasks):
        p = scored[f"{task}_probability"]
        ax.hist(p.dropna(), bins=bins, color="#9bb7d4", label="all scored")
        listed = p[scored["status"] == "listed"].dropna()
        if len(listed) and len(listed) < p.notna().sum():
            ax.hist(listed, bins=bins, color="#1f4e79", label="on the list")
        ax.set_yscale("log")
        ax.set_xlabel(f"{task} probability")
        ax.set_ylabel("customers")
        ax.legend(frameon=False)
    return _png(fig)


def _drift_plot(drift: pd.DataFrame) -> str | None:
    if drift.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = drift.head(15).iloc[::-1]
    colours = ["#c0392b" if lv == "major" else "#e6a23c" if lv == "moderate" else "#7f8c8d" for lv in top["level"]]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh([f"{f} ({t})" for f, t in zip(top["feature"], top["task"])], top["psi"], color=colours)
    ax.axvline(MODERATE, color="#e6a23c", linestyle="--", linewidth=1)
    ax.axvline(MAJOR, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xlabel("population stability index")
    return _png(fig)


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _reference_of(model) -> dict[str, Any] | None:
    from churnguard.training.artifact import as_artifact

    return as_artifact(model).drift_reference or None


def _window(window) -> str:
    if window is None:
        return ""
    if isinstance(window, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in window.items())
    return str(window)


def write_report(
    result,
    out_html: Path | str,
    *,
    models: Mapping[str, Any] | None = None,
    reference: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
) -> Path:
    """Write the HTML report for one scoring run, atomically.

    Parameters
    ----------
    result : ScoreResult
        What :func:`churnguard.scoring.score` returned.
    out_html : path
        Where to write the page.
    models : dict of task -> ModelArtifact or ChurnModel, optional
        The models scored with; their stored training reference
        (``ModelArtifact.drift_reference``) is the drift baseline.
    reference : dict of task -> (feature -> reference bins), optional
        A drift baseline to use instead of the models' own (the
        :func:`churnguard.drift.reference` layout).

    Returns
    -------
    Path
    """
    from jinja2 import Environment, select_autoescape

    import churnguard

    out_html = Path(out_html)
    scored = result.scored
    outreach = result.outreach

    risk_rows = []
    for task in ("churn", "maintenance"):
        levels = risk_levels(scored[f"{task}_probability"])
        counts = levels.value_counts()
        risk_rows.append(
            {"task": task, "counts": [int(counts.get(b, 0)) for b in RISK_BANDS], "missing": int(levels.isna().sum())}
        )
    edges = list(RISK_BANDS.values())
    band_note = f"low < {edges[0]}, moderate < {edges[1]}, high < {edges[2]}, very high from {edges[2]}"

    action_rows = []
    for action in ("retention_call", "maintenance_visit", "maintenance_reminder"):
        on_list = outreach[outreach["action"] == action]
        over = int(((scored["status"] == "over_capacity") & (scored["action"] == action)).sum())
        action_rows.append(
            {"action": action, "listed": len(on_list), "value": _money(on_list["value_at_risk"].sum()), "over": over}
        )
    suppressed_rows = []
    if len(result.suppressed):
        codes = result.suppressed["reason"].str.split("; ").explode().value_counts()
        suppressed_rows = [{"reason": r.replace("_", " "), "n": int(n)} for r, n in codes.items()]

    reason_rows = []
    explanations = getattr(result, "explanations", pd.DataFrame())
    key_cols = [c for c in explanations.columns if c.startswith("reason_key_")]
    if key_cols and len(outreach):
        listed = explanations.reindex(outreach["customer_id"])
        keys = pd.concat([listed[c] for c in key_cols]).dropna()
        description = (
            result.catalogue.drop_duplicates("name").set_index("name")["description"]
            if "description" in result.catalogue
            else pd.Series(dtype=object)
        )
        first_text = {}
        for c in key_cols:
            for key, text in zip(listed[c], listed[c.replace("_key", "")]):
                if key is not None and not pd.isna(key) and key not in first_text:
                    first_text[key] = text
        for key, n in keys.value_counts().head(10).items():
            reason_rows.append(
                {"description": description.get(key, key), "n": int(n), "example": first_text.get(key, "")}
            )

    model_rows = [
        {"task": task, "name": info.get("name"), "version": info.get("version") or "",
         "run_id": info.get("run_id") or "", "window": _window(info.get("trained_window"))}
        for task, info in result.models.items()
    ]

    if reference is None and models is not None:
        reference = {task: _reference_of(m) for task, m in models.items()}
    drift_parts = []
    for task, ref in (reference or {}).items():
        current = result.features.get(task)
        if ref and current is not None and len(current):
            drift_parts.append(drift_table(ref, current).assign(task=task))
    drift = (
        pd.concat(drift_parts, ignore_index=True).sort_values(["psi", "feature"], ascending=[False, True], kind="mergesort")
        if drift_parts
        else pd.DataFrame(columns=["feature", "psi", "level", "task"])
    )

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("churnguard").joinpath("templates/report.html").read_text())
    html = template.render(
        as_of=str(pd.Timestamp(result.as_of).date()),
        version=churnguard.__version__,
        n_scored=len(scored),
        n_listed=len(outreach),
        n_suppressed=len(result.suppressed),
        value_at_risk=_money(outreach["value_at_risk"].sum()) if len(outreach) else "0.00",
        bands=list(RISK_BANDS),
        band_note=band_note,
        risk_rows=risk_rows,
        action_rows=action_rows,
        suppressed_rows=suppressed_rows,
        reason_rows=reason_rows,
        score_plot=_score_plot(scored),
        model_rows=model_rows,
        moderate=MODERATE,
        major=MAJOR,
        drift_rows=drift.head(MAX_DRIFT_ROWS).to_dict("records"),
        drift_plot=_drift_plot(drift),
        n_major=int((drift["level"] == "major").sum()),
        n_moderate=int((drift["level"] == "moderate").sum()),
        n_drift=len(drift),
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out_html
