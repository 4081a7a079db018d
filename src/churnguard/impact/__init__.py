"""Closing the loop: what past outreach saved, measured against its randomised control group.

:func:`measure_impact` compares treatment and control per list date, action and
segment (:mod:`churnguard.impact.measure`), with the intervals of
:mod:`churnguard.impact.intervals`; :func:`write_impact` writes the rows,
:func:`impact_section` renders them for the HTML report and :func:`log_impact_run`
records them in MLflow.
"""

from churnguard.impact.intervals import customers_needed, newcombe_interval, wilson_interval
from churnguard.impact.measure import IMPACT_COLUMNS, METHOD, ImpactResult, NothingToMeasure, measure_impact, outcome_task
from churnguard.impact.section import impact_section, write_impact_report
from churnguard.impact.tracking import EXPERIMENT, impact_metrics, log_impact_run

__all__ = [
    "EXPERIMENT", "IMPACT_COLUMNS", "METHOD", "ImpactResult", "NothingToMeasure", "customers_needed",
    "impact_metrics", "impact_section", "log_impact_run", "measure_impact", "newcombe_interval", "outcome_task",
    "wilson_interval", "write_impact_report",
]
