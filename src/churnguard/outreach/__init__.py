"""The outreach kernel: every business rule of the outreach list, once.

Both engines drive these functions and decide nothing on their own:
:func:`churnguard.scoring.score` on one machine (chunks of customers) and
:mod:`churnguard.spark.scoring` per shard of customers. Only the way rows are split
and moved differs between them.

* :mod:`~churnguard.outreach.eligibility`: whom each task's model scores;
* :mod:`~churnguard.outreach.predict`: feature sets per model, schema check, the
  per-task predict loop;
* :mod:`~churnguard.outreach.suppression`: whom not to contact, and why;
* :mod:`~churnguard.outreach.policy`: stakes, priority, action, channel, ranking, capacity;
* :mod:`~churnguard.outreach.groups`: the hashed treatment / control group of each candidate;
* :mod:`~churnguard.outreach.profit`: the expected profit of calling the top k;
* :mod:`~churnguard.outreach.explain`: contributions, typical values, reasons, explanation JSON;
* :mod:`~churnguard.outreach.frames`: the output columns, rounding, writing all or nothing.
"""

from churnguard.outreach.eligibility import member_mask, scored_customers
from churnguard.outreach.explain import (
    CONTEXT_COLUMNS,
    FAST_SHAP_MIN_ROWS,
    contributions,
    explain_chunk,
    explainers,
    listing_context,
    merge_catalogues,
    merge_medians,
    typical_values,
)
from churnguard.outreach.frames import (
    CONTROL_COLUMNS,
    OUTREACH_COLUMNS,
    PROBABILITY,
    SUPPRESSED_COLUMNS,
    control_frame,
    outreach_frame,
    round_probabilities,
    suppressed_frame,
    write_lists,
)
from churnguard.outreach.groups import (
    CONTROL,
    GROUP,
    TREATMENT,
    assign_groups,
    campaign_key,
    control_draw,
    control_share,
    held_out,
    held_out_counts,
)
from churnguard.outreach.policy import backfire_reasons, candidates, decide, lapsed_days, listing_status, rank_outreach
from churnguard.outreach.predict import check_schema, feature_set_groups, predict_tasks, predict_uplift
from churnguard.outreach.profit import ProfitCurve, profit_curve
from churnguard.outreach.suppression import lapse_reasons, suppression_code, suppression_reasons

__all__ = [
    "CONTEXT_COLUMNS",
    "CONTROL",
    "CONTROL_COLUMNS",
    "FAST_SHAP_MIN_ROWS",
    "GROUP",
    "OUTREACH_COLUMNS",
    "PROBABILITY",
    "ProfitCurve",
    "SUPPRESSED_COLUMNS",
    "TREATMENT",
    "assign_groups",
    "backfire_reasons",
    "campaign_key",
    "candidates",
    "check_schema",
    "contributions",
    "control_draw",
    "control_frame",
    "control_share",
    "decide",
    "explain_chunk",
    "explainers",
    "feature_set_groups",
    "held_out",
    "held_out_counts",
    "lapse_reasons",
    "lapsed_days",
    "listing_context",
    "listing_status",
    "member_mask",
    "merge_catalogues",
    "merge_medians",
    "outreach_frame",
    "predict_tasks",
    "predict_uplift",
    "profit_curve",
    "rank_outreach",
    "round_probabilities",
    "scored_customers",
    "suppressed_frame",
    "suppression_code",
    "suppression_reasons",
    "typical_values",
    "write_lists",
]
