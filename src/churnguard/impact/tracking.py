"""The impact of past outreach as an MLflow run, beside the models' runs.

One run per ``churnguard impact`` in the experiment ``churnguard-impact``: the
method and rules as parameters, per campaign its rates, difference and customers
saved with their interval bounds as metrics named ``{action}.{metric}`` with the
list date as the step (``20260301``), so each action's series reads as a curve
over its campaigns, and the rows themselves as ``impact.csv``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import pandas as pd

from churnguard.impact.measure import ImpactResult

__all__ = ["EXPERIMENT", "impact_metrics", "log_impact_run"]

EXPERIMENT = "churnguard-impact"
_METRICS = ("n_treatment", "n_control", "treatment_rate", "control_rate", "difference", "difference_low",
            "difference_high", "saved", "saved_low", "saved_high", "value_saved", "value_saved_low",
            "value_saved_high", "cost_per_saved")


def impact_metrics(result: ImpactResult) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` per campaign and metric, skipping empty values.

    The step is the list date as ``YYYYMMDD``; only the ``all`` rows are logged (segments
    stay in the artifact).

    Examples
    --------
    >>> rows = pd.DataFrame([{"list_date": pd.Timestamp("2026-03-01"), "action": "retention_call",
    ...     "segment": "all", "status": "measured", "n_treatment": 900, "saved": 12.5}])
    >>> impact_metrics(ImpactResult(rows, pd.Timestamp("2026-09-01")))
    [('retention_call.n_treatment', 900.0, 20260301), ('retention_call.saved', 12.5, 20260301), ('retention_call.measured', 1.0, 20260301)]
    """
    out = []
    for row in result.campaigns.to_dict("records"):
        step = int(pd.Timestamp(row["list_date"]).strftime("%Y%m%d"))
        action = str(row["action"]).replace("+", "_and_")
        for metric in _METRICS:
            value = row.get(metric)
            if value is not None and not pd.isna(value) and math.isfinite(float(value)):
                out.append((f"{action}.{metric}", float(value), step))
        out.append((f"{action}.measured", float(row["status"] == "measured"), step))
    return out


def log_impact_run(result: ImpactResult, *, tracking_uri: str | None = None) -> str:
    """Log `result` as a run of the ``churnguard-impact`` experiment; returns the run id.

    Examples
    --------
    >>> import os
    >>> rows = pd.DataFrame([{"list_date": pd.Timestamp("2026-03-01"), "action": "retention_call",
    ...     "segment": "all", "status": "measured", "n_treatment": 900, "saved": 12.5}])
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> run_id = log_impact_run(ImpactResult(rows, pd.Timestamp("2026-09-01")), tracking_uri=uri)
    >>> import mlflow
    >>> mlflow.MlflowClient(uri).get_run(run_id).data.metrics["retention_call.saved"]
    12.5
    """
    import mlflow

    from churnguard.training.registry import artifact_location, default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(EXPERIMENT, artifact_location(uri, EXPERIMENT)))
    dates = sorted({str(pd.Timestamp(d).date()) for d in result.rows["list_date"]})
    name = f"impact {dates[0]} .. {dates[-1]}" if dates else "impact"
    run = client.create_run(experiment_id, run_name=name)
    run_id = run.info.run_id
    try:
        params = {"confidence": result.confidence, "min_group": result.min_group, "method": result.method[:500],
                  "data_end": str(result.data_end.date()), "list_dates": ",".join(dates)[:500],
                  "campaigns": len(result.campaigns), "measured": result.n_measured}
        for key, value in params.items():
            client.log_param(run_id, key, value)
        now = int(time.time() * 1000)
        metrics = [mlflow.entities.Metric(k, v, now, s) for k, v, s in impact_metrics(result)]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "impact.csv"
            result.rows.to_csv(path, index=False)
            client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id
