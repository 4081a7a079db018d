"""One self-contained HTML page beside the outreach list, for the care team and the data scientist.

The page leads with the ranked list itself: sortable, filterable (action, channel,
risk band, segment), searchable by customer id and paginated in hand-written vanilla
JavaScript over the list embedded as JSON, so 50,000 rows open at once; each row
opens into its reasons, both tasks' top SHAP contributions drawn as bars, the value,
the last contact and the last complaint. Below it: the day's summary, the top of
the suppressed list, the reasons that come up most, score distributions, the model
versions and drift of today's features against each model's training reference
(PSI), where features that grow with time by construction are left out of the alarm.
Everything is inline (CSS, script, PNGs as base64): no network, so the file can be
mailed or archived on its own.
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

from churnguard.drift import MAJOR, MODERATE, drift_table, grows_with_time
from churnguard.impact import impact_section
from churnguard.io import atomic_path

__all__ = ["RISK_BANDS", "list_payload", "risk_levels", "write_report"]

# Upper edges of the probability bands; the last band is open.
RISK_BANDS = {"low": 0.1, "moderate": 0.3, "high": 0.6, "very high": 1.0}
MAX_DRIFT_ROWS = 25
MAX_SUPPRESSED_ROWS = 20
# Contributions per task kept for a row's bars: enough to see what drives the risk.
BARS_PER_TASK = 5
LIST_COLUMNS = [
    "rank", "customer_id", "action", "channel", "priority", "churn_probability", "maintenance_probability",
    "value_at_risk", "value", "band", "reasons", "segment", "days_since_last_contact", "days_since_last_complaint",
    "contributions",
]


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


def _profit_plot(curve, capacity: int | None, rules) -> str | None:
    if curve is None or curve.n == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.plot(np.arange(curve.n + 1), curve.cumulative, color="#1f4e79")
    ax.axvline(curve.best_k, color="#2e7d32", linestyle="--", linewidth=1, label=f"best: top {curve.best_k:,}")
    if capacity is not None and capacity < curve.n:
        ax.axvline(capacity, color="#e6a23c", linestyle=":", linewidth=1, label=f"capacity {capacity:,}")
    ax.set_xlabel("customers called, in rank order")
    ax.set_ylabel(f"expected profit ({rules.currency})")
    ax.legend(frameon=False)
    return _png(fig)


def _money(x: float, rules=None) -> str:
    if rules is None:
        return f"{x:,.2f}"
    return rules.money(x, decimals=2)


def _number(x, digits: int = 4):
    """A JSON-safe rounded float, None for missing."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)) or pd.isna(x):
        return None
    return round(float(x), digits)


def list_payload(result, *, catalogue: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ranked list as the report's script reads it: column names, feature names, compact rows.

    One row per listed customer in rank order, each a list in :data:`LIST_COLUMNS`
    order; ``contributions`` holds per task the top SHAP contributions as
    ``[feature index, value, shap]`` into ``features`` (catalogue descriptions where
    known), so a 50,000-row list stays a few megabytes.

    Examples
    --------
    >>> from churnguard.scoring import ScoreResult
    >>> outreach = pd.DataFrame({"rank": [1], "customer_id": ["a"], "action": ["retention_call"],
    ...     "channel": ["phone"], "priority": [9.0], "churn_probability": [0.6], "maintenance_probability": [None],
    ...     "value_at_risk": [60.0], "reason_1": ["3 complaints in the last 30 days"], "reason_2": [None],
    ...     "reason_3": [None], "explanation": ['{"churn": [{"feature": "c30", "value": 3.0, "shap": 0.8}]}']})
    >>> result = ScoreResult(pd.Timestamp("2024-03-01"), outreach, pd.DataFrame(), pd.DataFrame(
    ...     {"customer_id": ["a"], "value": [100.0]}))
    >>> payload = list_payload(result)
    >>> payload["rows"][0][:4], payload["rows"][0][-1], payload["features"]
    ([1, 'a', 'retention_call', 'phone'], {'churn': [[0, 3.0, 0.8]]}, ['c30'])
    """
    import json

    outreach = result.outreach
    catalogue = result.catalogue if catalogue is None else catalogue
    described = {}
    if catalogue is not None and len(catalogue) and "description" in catalogue:
        described = catalogue.drop_duplicates("name").set_index("name")["description"].dropna().to_dict()
    scored = result.scored
    value = (scored.drop_duplicates("customer_id").set_index("customer_id")["value"].reindex(outreach["customer_id"])
             if "value" in scored.columns and len(scored) else pd.Series(np.nan, index=outreach["customer_id"]))
    context = getattr(result, "explanations", pd.DataFrame())
    context = context.reindex(outreach["customer_id"]) if len(context) else pd.DataFrame(index=outreach["customer_id"])
    most = np.fmax(outreach["churn_probability"].astype("float64").fillna(-1.0).to_numpy(),
                   outreach["maintenance_probability"].astype("float64").fillna(-1.0).to_numpy())
    bands = risk_levels(pd.Series(np.where(most < 0, np.nan, most)))
    features: dict[str, int] = {}
    rows = []
    columns = {c: outreach[c].to_numpy(dtype=object) for c in outreach.columns}
    ctx = {c: (context[c].to_numpy(dtype=object) if c in context.columns else np.full(len(outreach), None))
           for c in ("segment", "days_since_last_contact", "days_since_last_complaint")}
    for i in range(len(outreach)):
        contributions = {}
        text = columns["explanation"][i]
        if isinstance(text, str) and text:
            for task, entries in json.loads(text).items():
                bars = []
                for entry in entries[:BARS_PER_TASK]:
                    name = described.get(entry["feature"], entry["feature"])
                    k = features.setdefault(name, len(features))
                    shown = entry["value"] if isinstance(entry["value"], str) else _number(entry["value"], 3)
                    bars.append([k, shown, _number(entry["shap"], 3)])
                contributions[task] = bars
        reasons = [r for r in (columns[f"reason_{j}"][i] for j in (1, 2, 3)) if isinstance(r, str) and r]
        segment = ctx["segment"][i]
        rows.append([
            int(columns["rank"][i]), str(columns["customer_id"][i]), columns["action"][i], columns["channel"][i],
            # Probabilities at the list's own 6 decimals: sorting the page must order rows as the file does.
            _number(columns["priority"][i], 2), _number(columns["churn_probability"][i], 6),
            _number(columns["maintenance_probability"][i], 6), _number(columns["value_at_risk"][i], 2),
            _number(value.iloc[i], 2), bands.iloc[i] if isinstance(bands.iloc[i], str) else None, reasons,
            None if segment is None or pd.isna(segment) else str(segment),
            _number(ctx["days_since_last_contact"][i], 0), _number(ctx["days_since_last_complaint"][i], 0),
            contributions,
        ])
    return {"columns": LIST_COLUMNS, "features": list(features), "rows": rows}


def _json_script(payload) -> str:
    """JSON safe inside a <script> element: no "</" can close it early."""
    import json

    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


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
    impact=None,
) -> Path:
    """Write the HTML report for one scoring run, atomically.

    Parameters
    ----------
    result : ScoreResult
        What :func:`churnguard.scoring.score` returned (or the Spark engine's
        collected equivalent, :func:`churnguard.spark.report_result`).
    out_html : path
        Where to write the page.
    models : dict of task -> ModelArtifact or ChurnModel, optional
        The models scored with; their stored training reference
        (``ModelArtifact.drift_reference``) is the drift baseline.
    reference : dict of task -> (feature -> reference bins), optional
        A drift baseline to use instead of the models' own (the
        :func:`churnguard.drift.reference` layout).
    impact : ImpactResult, optional
        What past outreach saved (:func:`churnguard.impact.measure_impact`, when the data
        has an ``outreach_log``): shown as a section after the summary.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from churnguard.scoring import score
    >>> from churnguard.training import ChurnModel
    >>> rng = np.random.default_rng(0)
    >>> features = pd.DataFrame({"customer_id": [f"c{i}" for i in range(200)],
    ...                          "complaints_30d": rng.poisson(1.0, 200).astype(float)})
    >>> y = (features["complaints_30d"] + rng.normal(0, 1, 200) > 1.5).astype(int)
    >>> model = ChurnModel(params={"n_estimators": 10, "min_child_samples": 5},
    ...                    calibration="none").fit(features[["complaints_30d"]], y)
    >>> catalogue = pd.DataFrame({"name": ["complaints_30d"], "direction": ["up"],
    ...                           "reason": ["{complaints_30d:.0f} complaints in the last 30 days"]})
    >>> customers = pd.DataFrame({"customer_id": features["customer_id"], "value": 100.0})
    >>> result = score({"customers": customers}, "2024-03-01", {"churn": model},
    ...                features=features, catalogue=catalogue, capacity=3)
    >>> path = write_report(result, Path(tempfile.mkdtemp()) / "report.html")
    >>> html = path.read_text()
    >>> 'name="viewport"' in html, result.outreach["customer_id"].iloc[0] in html
    (True, True)
    """
    from jinja2 import Environment, select_autoescape
    from markupsafe import Markup

    import churnguard
    from churnguard.config import load_outreach_rules
    from churnguard.outreach import campaign_key, control_share, suppression_code

    out_html = Path(out_html)
    scored = result.scored
    outreach = result.outreach
    rules = getattr(result, "rules", None) or load_outreach_rules()

    risk_rows = []
    for task in ("churn", "maintenance"):
        levels = risk_levels(scored[f"{task}_probability"])
        counts = levels.value_counts()
        risk_rows.append(
            {"task": task, "counts": [int(counts.get(b, 0)) for b in RISK_BANDS], "missing": int(levels.isna().sum())}
        )
    edges = list(RISK_BANDS.values())
    band_note = f"low < {edges[0]}, moderate < {edges[1]}, high < {edges[2]}, very high from {edges[2]}"

    controls = getattr(result, "controls", None)
    controls = controls if controls is not None else pd.DataFrame(columns=["action"])
    action_rows = []
    actions = [a for a in dict.fromkeys([*outreach["action"].dropna().astype(str),
                                         *controls["action"].dropna().astype(str),
                                         "retention_call", "maintenance_visit", "maintenance_reminder"])]
    for action in actions:
        on_list = outreach[outreach["action"] == action]
        over = int(((scored["status"] == "over_capacity") & (scored["action"] == action)).sum())
        action_rows.append({"action": action.replace("_", " "), "listed": len(on_list),
                            "value": _money(on_list["value_at_risk"].sum(), rules),
                            "saved": _money(on_list["priority"].sum(), rules), "over": over,
                            "held": int((controls["action"] == action).sum()),
                            "share": f"{control_share(action, rules):.0%}"})
    held_rows = [{"action": r["action"], "n": r["held"]} for r in action_rows if r["held"]]
    curve, capacity = getattr(result, "profit", None), getattr(result, "capacity", None)
    profit = None
    if curve is not None:
        listed_k = len(outreach)
        earned = curve.at(listed_k)
        share = f" ({earned / curve.best_profit:.0%} of the maximum)" if curve.best_profit > 0 else ""
        profit = {"best_k": curve.best_k, "best": _money(curve.best_profit, rules), "capacity": capacity,
                  "listed": listed_k, "at_capacity": f"expected profit {_money(earned, rules)}{share}"}
    suppressed = result.suppressed
    suppressed_rows, suppressed_top = [], []
    if len(suppressed):
        codes = suppressed["reason"].str.split("; ").explode().map(suppression_code).value_counts()
        suppressed_rows = [{"reason": r.replace("_", " "), "n": int(n)} for r, n in codes.items()]
        top = suppressed.head(MAX_SUPPRESSED_ROWS)
        suppressed_top = [
            {"customer_id": r.customer_id, "reason": str(r.reason).replace("_", " "),
             "priority": "" if pd.isna(r.priority) else _money(r.priority, rules),
             "churn": "" if pd.isna(r.churn_probability) else f"{r.churn_probability:.1%}",
             "maintenance": "" if pd.isna(r.maintenance_probability) else f"{r.maintenance_probability:.1%}"}
            for r in top.itertuples(index=False)
        ]

    description = (
        result.catalogue.drop_duplicates("name").set_index("name")["description"]
        if "description" in result.catalogue
        else pd.Series(dtype=object)
    )
    reason_rows = []
    explanations = getattr(result, "explanations", pd.DataFrame())
    key_cols = [c for c in explanations.columns if c.startswith("reason_key_")]
    if key_cols and len(outreach):
        listed = explanations.reindex(outreach["customer_id"])
        keys = pd.concat([listed[c] for c in key_cols]).dropna()
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
    growing = grows_with_time(drift["feature"], result.catalogue) if len(drift) else np.zeros(0, dtype=bool)
    # Growing by construction: shown apart, never in the alarm's counts or plot.
    left_out = sorted(set(drift.loc[growing, "feature"])) if len(drift) else []
    drift = drift[~growing].reset_index(drop=True)
    drift["description"] = [description.get(f, "") for f in drift["feature"]]
    left_out = [{"feature": f, "description": description.get(f, "")} for f in left_out]

    payload = list_payload(result)
    filters = {
        "action": sorted({r[2] for r in payload["rows"] if r[2]}),
        "channel": sorted({r[3] for r in payload["rows"] if r[3]}),
        "band": [b for b in RISK_BANDS if any(r[9] == b for r in payload["rows"])],
        "segment": sorted({r[11] for r in payload["rows"] if r[11]}),
    }

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(resources.files("churnguard").joinpath("templates/report.html").read_text())
    html = template.render(
        as_of=str(pd.Timestamp(result.as_of).date()),
        version=churnguard.__version__,
        n_scored=len(scored),
        n_listed=len(outreach),
        n_suppressed=len(suppressed),
        n_controls=len(controls),
        held_rows=held_rows,
        control_file="in the .control file beside the list, e.g. outreach.control.csv",
        campaign=campaign_key(result.as_of, rules),
        profit=profit,
        profit_plot=_profit_plot(curve, capacity, rules),
        value_at_risk=_money(outreach["value_at_risk"].sum(), rules) if len(outreach) else _money(0.0, rules),
        saved=_money(outreach["priority"].sum(), rules) if len(outreach) else _money(0.0, rules),
        currency=rules.currency,
        list_json=Markup(_json_script(payload)),
        filters=filters,
        bands=list(RISK_BANDS),
        band_note=band_note,
        risk_rows=risk_rows,
        action_rows=action_rows,
        suppressed_rows=suppressed_rows,
        suppressed_top=suppressed_top,
        reason_rows=reason_rows,
        score_plot=_score_plot(scored),
        model_rows=model_rows,
        moderate=MODERATE,
        major=MAJOR,
        drift_rows=drift.head(MAX_DRIFT_ROWS).to_dict("records"),
        drift_plot=_drift_plot(drift),
        drift_left_out=left_out,
        n_major=int((drift["level"] == "major").sum()),
        n_moderate=int((drift["level"] == "moderate").sum()),
        n_drift=len(drift),
        impact_html=Markup(impact_section(impact)) if impact is not None else None,
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out_html
