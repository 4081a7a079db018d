"""Does a new model take the champion alias? A pure function of two held-out scores and the rule."""

from __future__ import annotations

from churnguard.config import ModelSpec

__all__ = ["promotion_decision"]


def promotion_decision(spec: ModelSpec, new: dict[str, float], champion: dict[str, float] | None,
                       champion_version: str | None = None, *,
                       champion_problem: str | None = None) -> tuple[bool, str]:
    """Does the new model take the champion alias? Returns (promote, reason in words).

    Parameters
    ----------
    spec : ModelSpec
        Its ``promotion`` rule: metric, direction, minimum improvement.
    new, champion : dict of metric -> value
        Held-out metrics of the new model and of the champion on the same rows; `champion`
        None when no champion is registered.
    champion_version : str, optional
        For the reason's wording.
    champion_problem : str, optional
        Why the champion could not be scored on the new held-out rows; the new model
        is then promoted.

    Examples
    --------
    >>> from churnguard.config import load_model_spec
    >>> spec = load_model_spec(task="churn")
    >>> promotion_decision(spec, {"roc_auc": 0.80}, {"roc_auc": 0.82}, "3")
    (False, 'stays challenger: held-out roc_auc 0.8000 vs champion v3 0.8200 on the same rows (needs > +0.0000)')
    >>> promotion_decision(spec, {"roc_auc": 0.80}, None, champion_problem="champion v3 lacks 2 features")
    (True, 'promoted to champion: champion v3 lacks 2 features')
    """
    if champion_problem is not None:
        return True, f"promoted to champion: {champion_problem}"
    rule = spec.promotion
    if champion is None:
        return True, "promoted to champion: no champion was registered"
    ours, theirs = new[rule.metric], champion[rule.metric]
    gain = (ours - theirs) if rule.higher_is_better else (theirs - ours)
    words = (f"held-out {rule.metric} {ours:.4f} vs champion v{champion_version} {theirs:.4f} "
             f"on the same rows (needs {'>' if rule.higher_is_better else '<'} "
             f"{'+' if rule.higher_is_better else '-'}{rule.min_improvement:.4f})")
    if gain > rule.min_improvement:
        return True, "promoted to champion: " + words
    return False, "stays challenger: " + words
