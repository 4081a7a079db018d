"""SHAP contributions -> plain-language reasons a care agent can read.

A reason is the feature catalogue's ``reason`` template (a :py:meth:`str.format`
template over the customer's whole feature row) filled with the customer's own
values, e.g. ``"2 of 3 complaints in the last 30 days unresolved"``. Only
features that push a task's risk *up* (positive SHAP contribution on the raw
margin) can become reasons; raw feature names never appear.

The work is vectorised per feature and per template: one matrix of scores per
customer x template, one ``argsort``, then string formatting only for the few
(customer, template) pairs that won.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["explain_reasons", "explanation_json", "humanize", "reason_allowed", "template_fields"]


def template_fields(template: str) -> list[str]:
    """Names of the feature columns a reason template reads.

    Examples
    --------
    >>> template_fields("{a:.0f} of {b:.0f} complaints unresolved")
    ['a', 'b']
    >>> template_fields("no fields")
    []
    """
    names = []
    for _, field, _, _ in string.Formatter().parse(template):
        if field:
            # "{row.x}" / "{x[0]}" are not used by the catalogue; keep only the column name.
            name = field.split(".")[0].split("[")[0]
            if name not in names:
                names.append(name)
    return names


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    column = frame[name]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
        return None
    return column.to_numpy(dtype="float64", na_value=np.nan)


# "1 contacts" -> "1 contact", "1 escalated contacts" -> "1 escalated contact": templates
# are written for the plural, the common case; "1 of 3 complaints" stays plural.
_NOUNS = "contact|complaint|time|day|minute|purchase|return|product|repair|failure|visit|event|answer"
_ONE_PLURAL = re.compile(rf"(?<![\d.,])\b1 ((?:(?!of\b)[a-z]+ ){{0,2}})({_NOUNS})s\b")
_ONE_OR = re.compile(r"(?<![\d.,])\b1 repairs or failures\b")
# A name from the data written as an identifier: heat_pump, feature_x, coffee_machine.
_JOINED = re.compile(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b")
# Money in a template is written with the generic currency sign: "spent ¤41".
_MONEY = re.compile(r"¤(-?[\d,]+(?:\.\d+)?)")
_CONDITION = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(<=|>=|<|>|==|!=)\s*([A-Za-z0-9_.+-]+)\s*$")
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
            "!=": np.not_equal}


def humanize(text: str, *, display_names: Mapping[str, str] | None = None, currency: str = "") -> str:
    """A reason as a care agent reads it: names from the data spelled out, money, singulars.

    `display_names` maps a name from the data to its words (``heat_pump`` -> ``heat
    pump``); other underscore-joined names lose their underscores. ``¤`` amounts get
    `currency` (a symbol before the amount, a code after it).

    Examples
    --------
    >>> humanize("1 escalated contacts about coffee_machine", display_names={"coffee_machine": "espresso maker"})
    '1 escalated contact about espresso maker'
    >>> humanize("returned ¤41 worth; 1 of 3 complaints unresolved", currency="EUR")
    'returned 41 EUR worth; 1 of 3 complaints unresolved'
    >>> humanize("spent only ¤1,200 on heat_pump parts", currency="$")
    'spent only $1,200 on heat pump parts'
    """
    names = display_names or {}
    for raw, shown in names.items():
        if "_" not in raw:
            text = re.sub(rf"\b{re.escape(raw)}\b", shown, text)
    text = _JOINED.sub(lambda m: names.get(m.group(0), m.group(0).replace("_", " ")), text)
    if currency.isalpha() and len(currency) > 1:
        text = _MONEY.sub(rf"\1 {currency}", text)
    else:
        text = _MONEY.sub(lambda m: currency + m.group(1), text)
    text = _ONE_OR.sub("1 repair or failure", text)
    return _ONE_PLURAL.sub(r"1 \1\2", text)


def reason_allowed(condition: str, features: pd.DataFrame) -> np.ndarray:
    """Rows of `features` where a catalogue ``reason_if`` holds (``column OP number or column``, ``and``-joined).

    An empty condition always holds; one over a column the frame lacks, or a missing
    value, never does: a reason that cannot be checked is not said.

    Examples
    --------
    >>> frame = pd.DataFrame({"nps": [3.0, 9.0, np.nan], "a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0]})
    >>> reason_allowed("nps <= 6", frame).tolist(), reason_allowed("a < b and nps > 0", frame).tolist()
    ([True, False, False], [True, False, False])
    >>> reason_allowed("", frame).tolist()
    [True, True, True]
    """
    n = len(features)
    allowed = np.ones(n, dtype=bool)
    if not isinstance(condition, str) or not condition.strip():
        return allowed
    for term in condition.split(" and "):
        match = _CONDITION.match(term)
        if match is None:
            raise ValueError(f"feature catalogue: cannot read reason_if {condition!r} (expected 'column OP number')")
        left, op, right = match.groups()
        if left not in features.columns:
            return np.zeros(n, dtype=bool)
        lhs = _numeric(features, left)
        try:
            rhs = float(right)
        except ValueError:
            if right not in features.columns:
                return np.zeros(n, dtype=bool)
            rhs = _numeric(features, right)
        if lhs is None or rhs is None:
            return np.zeros(n, dtype=bool)
        with np.errstate(invalid="ignore"):
            allowed &= _COMPARE[op](lhs, rhs) & ~np.isnan(lhs) & ~np.isnan(np.broadcast_to(rhs, lhs.shape))
    return allowed


def concept(template: str) -> str:
    """The template with its numbers blanked: the same sentence over another window.

    Two reasons of one concept ("3 complaints in the last 30 days", "5 complaints in the
    last 90 days") say the same thing twice; only the stronger one is kept.

    Examples
    --------
    >>> concept("{interactions_complaints_30d:.0f} complaints in the last 30 days")
    '{interactions_complaints_#d:.#f} complaints in the last # days'
    """
    return re.sub(r"\d+", "#", template)


def _format(template: str, fields: list[str], columns: list[np.ndarray], wording: dict) -> list[str | None]:
    # Counts and days repeat across a list ("2 complaints in the last 30 days"): each
    # distinct text is humanized (several regular expressions) once.
    out: list[str | None] = []
    worded: dict[str, str] = {}
    for values in zip(*columns):
        try:
            text = template.format(**dict(zip(fields, values)))
        except (ValueError, KeyError, TypeError, IndexError):
            # A value the template cannot format (e.g. a category under ":.0f") is no reason.
            out.append(None)
            continue
        sentence = worded.get(text)
        if sentence is None:
            sentence = worded[text] = humanize(text, **wording)
        out.append(sentence)
    return out


def explain_reasons(
    contributions: Mapping[str, pd.DataFrame],
    features: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    weights: Mapping[str, np.ndarray] | None = None,
    typical: pd.Series | None = None,
    n_reasons: int = 3,
    display_names: Mapping[str, str] | None = None,
    currency: str = "",
) -> pd.DataFrame:
    """Up to `n_reasons` sentences per customer from SHAP contributions.

    Parameters
    ----------
    contributions : mapping of task -> DataFrame
        SHAP contributions on the raw margin, one row per customer aligned with
        `features`, one column per model feature (a ``bias`` column is ignored).
    features : DataFrame
        The customers' feature rows (model inputs and context columns); the
        templates are formatted with these values.
    catalogue : DataFrame
        Feature catalogue with at least ``name``, ``reason`` and ``direction``.
    weights : mapping of task -> array, optional
        Per-customer weight of each task, e.g. its share of the priority, so that
        the risk that drives the action also drives the reasons. Default 1.
    typical : Series, optional
        A typical (median) value per feature over the whole scored population. A
        feature only becomes a reason when the customer's value is on its worrying
        side (above for direction "up", below for "down"): a positive SHAP value
        from an interaction must not produce "0 complaints in the last 30 days".
        Default: the medians of `features`.
    n_reasons : int, default=3
        Number of reason columns.
    display_names, currency
        How names from the data and money are written (:func:`humanize`); the rules'
        ``display_names`` and ``currency``.

    Returns
    -------
    DataFrame
        Index of `features`; columns ``reason_1``..``reason_n`` (text or None) and
        ``reason_key_1``..``reason_key_n`` (the catalogue name of the feature that
        led each reason, for counting reasons across a list).

    Notes
    -----
    A feature's score is its positive contribution times the task weight, summed
    over tasks. Features that share one template (e.g. complaints and unresolved
    complaints both worded "{u} of {c} complaints unresolved") pool their scores
    into one sentence. A template whose values are missing for a customer is
    skipped for that customer. A feature's catalogue ``reason_if`` (e.g. ``nps_latest
    <= 6``) must hold for the customer, so a reassuring value (a promoter, nothing
    overdue) is never said; and a customer gets at most one sentence per catalogue
    ``fact`` (two windows of complaints, or "0 purchases in 180 days" with "last purchase
    310 days ago", say one thing).

    Examples
    --------
    >>> features = pd.DataFrame({"complaints_30d": [3.0, 0.0], "tenure_days": [40.0, 900.0]})
    >>> catalogue = pd.DataFrame({
    ...     "name": ["complaints_30d", "tenure_days"],
    ...     "reason": ["{complaints_30d:.0f} complaints in the last 30 days",
    ...                "customer for only {tenure_days:.0f} days"],
    ...     "direction": ["up", "down"]})
    >>> shap = pd.DataFrame({"complaints_30d": [1.2, -0.3], "tenure_days": [0.4, -0.1]})
    >>> reasons = explain_reasons({"churn": shap}, features, catalogue, n_reasons=2)
    >>> reasons.loc[0, ["reason_1", "reason_2"]].tolist()
    ['3 complaints in the last 30 days', 'customer for only 40 days']
    >>> reasons.loc[1, "reason_1"] is None  # nothing pushes the second customer's risk up
    True
    """
    n = len(features)
    reason_cols = [f"reason_{i + 1}" for i in range(n_reasons)]
    key_cols = [f"reason_key_{i + 1}" for i in range(n_reasons)]
    out = pd.DataFrame(None, index=features.index, columns=reason_cols + key_cols, dtype=object)
    if n == 0 or not contributions:
        return out

    cat = catalogue.drop_duplicates("name").set_index("name")
    reason = cat["reason"].fillna("").astype(str) if "reason" in cat else pd.Series(dtype=str)
    direction = cat["direction"] if "direction" in cat else pd.Series("up", index=cat.index)
    reason_if = cat["reason_if"].fillna("").astype(str) if "reason_if" in cat else pd.Series("", index=cat.index)
    fact = cat["fact"].fillna("").astype(str) if "fact" in cat else pd.Series("", index=cat.index)
    wording = {"display_names": display_names, "currency": currency}

    # Score per feature: positive contributions only, weighted per task, summed over tasks.
    scores: dict[str, np.ndarray] = {}
    for task, contrib in contributions.items():
        if contrib is None or len(contrib) == 0:
            continue
        if len(contrib) != n:
            raise ValueError(f"{task}: {len(contrib)} contribution rows for {n} feature rows")
        w = np.ones(n) if weights is None or task not in weights else np.nan_to_num(np.asarray(weights[task], float))
        for name in contrib.columns:
            if name == "bias" or not reason.get(name, ""):
                continue
            pushed = np.clip(contrib[name].to_numpy(dtype="float64", na_value=0.0), 0.0, None) * w
            scores[name] = scores[name] + pushed if name in scores else pushed

    # Pool features by template; drop (customer, template) pairs that cannot be worded.
    by_template: dict[str, list[str]] = {}
    for name in scores:
        by_template.setdefault(reason[name], []).append(name)
    templates = list(by_template)
    if not templates:
        return out
    if typical is None:
        typical = features.median(numeric_only=True)
    matrix = np.zeros((n, len(templates)))
    for j, template in enumerate(templates):
        fields = template_fields(template)
        if any(f not in features.columns for f in fields):
            continue  # a template over a column this frame lacks can never be filled
        usable = np.ones(n, dtype=bool)
        for f in fields:
            usable &= features[f].notna().to_numpy()
        column = np.zeros(n)
        for name in by_template[template]:
            s = scores[name]
            values = _numeric(features, name) if name in features.columns else None
            if values is not None and name in typical.index and not pd.isna(typical[name]):
                worrying = values < typical[name] if direction.get(name, "up") == "down" else values > typical[name]
                s = np.where(worrying, s, 0.0)
            if reason_if.get(name, ""):
                s = np.where(reason_allowed(reason_if[name], features), s, 0.0)
            column += s
        matrix[:, j] = np.where(usable, column, 0.0)

    # A few spare candidates per customer, so that a sentence about a fact already said can be skipped.
    k = min(len(templates), n_reasons + 5)
    top = np.argsort(-matrix, axis=1, kind="stable")[:, :k]
    top_score = np.take_along_axis(matrix, top, axis=1)

    # One sentence per fact: the catalogue's fact of the template's features, else the
    # template with its numbers blanked (the same sentence over another window).
    facts_of = [next((fact[f] for f in by_template[t] if fact.get(f, "")), "") or concept(t) for t in templates]
    slot_facts = pd.factorize(np.array(facts_of, dtype=object))[0][top]

    def kept(valid: np.ndarray) -> np.ndarray:
        # Each row's slots in score order, dropping a slot about a fact a kept slot already says.
        keep = valid.copy()
        for b in range(1, k):
            for a in range(b):
                keep[:, b] &= ~(keep[:, a] & (slot_facts[:, a] == slot_facts[:, b]))
        return keep

    # Only the slots that can make a row's first n_reasons are worded (a few of its k):
    # wording is most of the cost. A template that cannot format a value (None) frees its
    # slot, and the next candidate is worded in a further round.
    sentences = np.full((n, k), None, dtype=object)
    valid = top_score > 0
    worded = np.zeros((n, k), dtype=bool)
    while True:
        keep = kept(valid)
        position = np.cumsum(keep, axis=1)
        need = keep & (position <= n_reasons) & ~worded
        if not need.any():
            break
        for j, template in enumerate(templates):
            rows, slots = np.nonzero(need & (top == j))
            if len(rows) == 0:
                continue
            fields = template_fields(template)
            if not fields:  # a fixed sentence ("is an NPS detractor") reads the same for everyone
                sentences[rows, slots] = humanize(template, **wording)
                continue
            columns = [features[f].to_numpy(dtype=object)[rows] for f in fields]
            sentences[rows, slots] = _format(template, fields, columns, wording)
        worded |= need
        valid &= ~(need & np.equal(sentences, None))
    keys_of = np.array([by_template[t][0] for t in templates], dtype=object)
    slot_keys = keys_of[top]
    reasons_out = np.full((n, n_reasons), None, dtype=object)
    keys_out = np.full((n, n_reasons), None, dtype=object)
    for r in range(n_reasons):
        hit = keep & (position == r + 1)
        rows, slots = np.nonzero(hit)
        reasons_out[rows, r] = sentences[rows, slots]
        keys_out[rows, r] = slot_keys[rows, slots]
    return pd.DataFrame(
        np.concatenate([reasons_out, keys_out], axis=1), index=features.index, columns=reason_cols + key_cols, dtype=object
    )


def _value_text(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Per feature: a float matrix of the numbers, or the JSON text of each category value."""
    n = len(frame)
    numbers = np.full((n, len(names)), np.nan)
    texts: list[np.ndarray | None] = []
    for j, name in enumerate(names):
        if name not in frame.columns:
            texts.append(None)
            continue
        column = frame[name]
        values = _numeric(frame, name)
        if values is not None:
            numbers[:, j] = values
            texts.append(None)
        else:
            # json.dumps once per distinct value, then a take by category code (-1 = missing).
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            lookup = np.array([json.dumps(str(v)) for v in uniques] + ["null"], dtype=object)
            texts.append(lookup[np.where(codes < 0, len(uniques), codes)])
    return numbers, texts


def _number_text(x: np.ndarray) -> np.ndarray:
    """JSON text of floats rounded to 4 decimals; NaN and infinities become null."""
    # Python's repr is the shortest round-trip text, as numpy's str of a float64, at a third of the cost.
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.round(x, 4)
    rounded = np.where(np.isfinite(rounded), rounded, x)  # a value too large to round stays itself
    text = np.empty(len(rounded), dtype=object)
    text[:] = [repr(v) for v in rounded.tolist()]
    text[~np.isfinite(x)] = "null"
    return text


def explanation_json(
    contributions: Mapping[str, pd.DataFrame], features: pd.DataFrame, *, top: int = 5
) -> pd.Series:
    """Per customer, a JSON object: per task the top features by |SHAP|.

    Each entry is ``{"feature": name, "value": the customer's value, "shap":
    contribution to the raw margin}``; tasks without contributions are left out.
    The text is assembled with vectorised string operations (no per-row
    ``json.dumps``), so explaining a million customers stays cheap.

    Examples
    --------
    >>> features = pd.DataFrame({"a": [1.0], "b": [float("nan")]})
    >>> shap = pd.DataFrame({"a": [0.5], "b": [-0.7], "bias": [-2.0]})
    >>> explanation_json({"churn": shap}, features, top=2).iloc[0]
    '{"churn": [{"feature": "b", "value": null, "shap": -0.7}, {"feature": "a", "value": 1.0, "shap": 0.5}]}'
    """
    n = len(features)
    text = np.full(n, "", dtype=object)
    started = np.zeros(n, dtype=bool)
    for task, contrib in contributions.items():
        if contrib is None or len(contrib) == 0:
            continue
        cols = [c for c in contrib.columns if c != "bias"]
        values = contrib[cols].to_numpy(dtype="float64")
        present = ~np.isnan(values).all(axis=1)  # a task that did not score the row is left out
        values = np.nan_to_num(values)
        k = min(top, len(cols))
        if k < len(cols):
            # argpartition then a stable sort of the k winners: O(n f) rather than O(n f log f).
            part = np.argpartition(-np.abs(values), k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(len(cols)), (n, 1))
        order = np.argsort(-np.abs(np.take_along_axis(values, part, axis=1)), axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        numbers, cat_texts = _value_text(features, cols)
        head = np.array([f'{{"feature": {json.dumps(c)}, "value": ' for c in cols], dtype=object)
        is_cat = np.array([t is not None for t in cat_texts])
        segment = np.full(n, json.dumps(task) + ": [", dtype=object)
        rows = np.arange(n)
        for slot in range(k):
            j = idx[:, slot]
            value = _number_text(numbers[rows, j])
            for c in np.flatnonzero(is_cat):
                hit = j == c
                value[hit] = cat_texts[c][hit]
            shap_text = _number_text(values[rows, j])
            segment = segment + ("" if slot == 0 else ", ") + head[j] + value + ', "shap": ' + shap_text + "}"
        segment = segment + "]"
        text = np.where(present, np.where(started, text + ", " + segment, segment), text)
        started |= present
    return pd.Series("{" + text + "}", index=features.index, dtype=object)
