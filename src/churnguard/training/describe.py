"""What a registered model version says about itself, for people browsing the registry.

A team that finds ``churnguard-churn`` version 7 in the MLflow UI (or through
``MlflowClient.get_model_version``) should read what it predicts, how the label was
defined, which data it learned from and how well it did, without opening the run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["label_definition_words", "version_description"]

_QUESTIONS = {
    "churn": "will the customer churn within {h} days of the scoring date?",
    "maintenance": "will one of the customer's products need a repair within {h} days of the scoring date?",
}


def label_definition_words(task: str, definition: str, *, horizon_days: int, lookback_days: int = 365,
                           failure_kinds=("repair", "failure")) -> str:
    """The label rule of `task` under `definition`, in a sentence.

    Examples
    --------
    >>> label_definition_words("maintenance", "auto", horizon_days=60)
    "a service event of kind repair or failure on any of the customer's assets in [as_of, as_of + 60 days)"
    """
    window = f"[as_of, as_of + {horizon_days} days)"
    contractual = f"customers.churn_date in {window} (contractual)"
    inactivity = (f"no purchase in {window} among customers with a purchase in the {lookback_days} days "
                  "before as_of (inactivity)")
    supplied = f"the labels table's {task} column at each as_of (supplied)"
    if task == "churn":
        return {"contractual": contractual, "inactivity": inactivity, "supplied": supplied}.get(
            definition, f"{contractual} when customers.churn_date is filled, else {inactivity}; {supplied} "
                        "when a labels table has them")
    kinds = " or ".join(failure_kinds)
    service = f"a service event of kind {kinds} on any of the customer's assets in {window}"
    return supplied if definition == "supplied" else service


def _metric(metrics: dict[str, Any], key: str, label: str) -> str | None:
    value = metrics.get(key)
    return None if value is None else f"{label} {float(value):.4f}"


def version_description(spec, *, split: str, window: dict[str, Any], rows: dict[str, int],
                        metrics: dict[str, Any], reason: str, heuristic_feature: str | None = None,
                        label: str | None = None, as_of: str | None = None) -> str:
    """Task, label definition, horizon, data window and held-out evaluation of a trained model.

    Parameters
    ----------
    spec : ModelSpec
    split : str
        How the held-out rows were chosen, in words.
    window : dict
        ``train`` (list of ISO dates), ``valid`` and ``holdout`` cutoffs.
    rows : dict
        Row counts of train (and its positives), valid and held-out.
    metrics : dict
        The held-out ``model_*`` (and baseline) metrics.
    reason : str
        The promotion decision in words.
    label : str, optional
        The label definition used (default: the spec's).
    as_of : str, optional
        The date the model was trained as of.

    Examples
    --------
    >>> from churnguard.config import load_model_spec
    >>> print(version_description(load_model_spec(task="churn"), split="time",
    ...     window={"train": ["2026-01-01", "2026-02-01"], "valid": "2026-03-01", "holdout": "2026-06-01"},
    ...     rows={"train": 900, "train_positives": 90, "valid": 300, "holdout": 300},
    ...     metrics={"model_roc_auc": 0.81, "model_pr_auc": 0.4, "model_brier": 0.08},
    ...     reason="promoted to champion: first"))
    ... # doctest: +ELLIPSIS
    churnguard churn model: will the customer churn within 90 days of the scoring date?
    Label (definition auto): customers.churn_date in [as_of, as_of + 90 days) (contractual) when ...
    Horizon: 90 days. Output: calibrated probability (beta).
    Data window: trained on cutoffs 2026-01-01 .. 2026-02-01 (2), validated and calibrated on 2026-03-01, evaluated on held-out 2026-06-01 (time).
    Rows: train 900 (90 positive), validation 300, held-out 300.
    Held-out evaluation: ROC-AUC 0.8100, PR-AUC 0.4000, Brier 0.0800.
    Promotion: promoted to champion: first
    """
    horizon = spec.horizon_days
    label = label or spec.label
    lines = [f"churnguard {spec.task} model: " + _QUESTIONS[spec.task].format(h=horizon)]
    lines.append(f"Label (definition {label}): " + label_definition_words(
        spec.task, label, horizon_days=horizon, lookback_days=spec.lookback_days,
        failure_kinds=spec.failure_kinds))
    lines.append(f"Horizon: {horizon} days. Output: calibrated probability ({spec.calibration}).")
    train = list(window.get("train") or [])
    trained = f"trained on cutoffs {train[0]} .. {train[-1]} ({len(train)})" if train else "trained"
    lines.append(f"Data window: {trained}, validated and calibrated on {window.get('valid')}, evaluated on "
                 f"held-out {window.get('holdout')} ({split})"
                 + (f"; trained as of {as_of}." if as_of else "."))
    lines.append(f"Rows: train {rows.get('train', 0):,} ({rows.get('train_positives', 0):,} positive), "
                 f"validation {rows.get('valid', 0):,}, held-out {rows.get('holdout', 0):,}.")
    m = metrics
    scores = [s for s in (_metric(m, "model_roc_auc", "ROC-AUC"), _metric(m, "model_pr_auc", "PR-AUC"),
                          _metric(m, "model_brier", "Brier"), _metric(m, "model_lift_top10", "lift@10%"))
              if s is not None]
    if "model_emp" in m:
        scores.append(f"EMP {m['model_emp']:.2f} per customer")
    if "rule_roc_auc" in m:
        scores.append(f"rule baseline ({heuristic_feature}) ROC-AUC {m['rule_roc_auc']:.4f}")
    if "logistic_roc_auc" in m:
        scores.append(f"logistic regression ROC-AUC {m['logistic_roc_auc']:.4f}")
    if "oracle_roc_auc" in m:
        scores.append(f"oracle ROC-AUC {m['oracle_roc_auc']:.4f}")
    lines.append("Held-out evaluation: " + ", ".join(scores) + ".")
    lines.append(f"Promotion: {reason}")
    return "\n".join(lines)
