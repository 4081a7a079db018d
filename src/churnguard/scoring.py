"""Score customers, suppress the ones not to contact, rank the rest: the outreach list.

How a customer's row is decided (rules from :class:`churnguard.config.OutreachRules`):

* **stakes**: ``churn_stake = churn_probability x value`` (``customers.value``, or
  ``rules.default_value`` when missing) and ``maintenance_stake =
  maintenance_probability x rules.maintenance_cost``. A task without a model has
  empty probability columns and a stake of 0.
* **priority** = ``churn_stake + maintenance_stake``: the expected money lost if we do
  nothing, so one list can mix retention calls and service visits.
  ``value_at_risk`` is the same figure rounded to cents, for people; ``priority``
  keeps full precision, for ordering.
* **action**: ``retention_call`` when the churn stake is at least the maintenance
  stake; otherwise ``maintenance_visit`` when the maintenance probability reaches
  ``rules.visit_threshold``, else ``maintenance_reminder``.
* **channel**: the customer's ``preferred_channel``, else ``rules.default_channel``;
  an action listed in ``rules.action_channels`` always uses that channel (by default
  a technician visit is scheduled by phone, whatever the customer prefers).
* **suppression** (never ranked; listed in the sibling ``.suppressed`` file with the
  reasons): ``do_not_contact``; ``contacted_recently`` (any interaction in the
  ``rules.contact_cooldown_days`` before ``as_of``); ``open_complaint`` (an
  unresolved complaint in the ``rules.open_complaint_days`` before ``as_of``: care is
  still handling it; older unresolved complaints are a reason to call, not to wait).
* **capacity**: ``rules.capacity_per_action`` caps each action, then ``capacity``
  caps the whole list; without either every eligible customer is ranked.
* **order**: priority descending, then ``customer_id``: the same inputs always give
  the same bytes.

Only the customers who make the list are explained by default (exact TreeSHAP is the
cost of scoring); ``explain="all"`` explains everyone.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from churnguard.config import TASKS, FeatureSet, OutreachRules, load_outreach_rules
from churnguard.io import atomic_path, sibling_path
from churnguard.reasons import explain_reasons, explanation_json
from churnguard.training.artifact import as_artifact, load_models

__all__ = [
    "OUTREACH_COLUMNS",
    "SUPPRESSED_COLUMNS",
    "ScoreResult",
    "load_models",
    "model_info",
    "rank_outreach",
    "score",
    "suppression_reasons",
    "write_outreach",
]

OUTREACH_COLUMNS = [
    "rank", "customer_id", "action", "channel", "priority", "churn_probability",
    "maintenance_probability", "value_at_risk", "reason_1", "reason_2", "reason_3", "explanation",
]
SUPPRESSED_COLUMNS = ["customer_id", "reason", "churn_probability", "maintenance_probability"]
PROBABILITY = {task: f"{task}_probability" for task in TASKS}


@dataclass
class ScoreResult:
    """What one scoring run produced.

    Attributes
    ----------
    as_of : Timestamp
        The scoring date.
    outreach : DataFrame
        The ranked list, columns :data:`OUTREACH_COLUMNS`.
    suppressed : DataFrame
        Who was not ranked and why, columns :data:`SUPPRESSED_COLUMNS`.
    scored : DataFrame
        Every population customer: ``customer_id``, probabilities, ``value``,
        ``priority``, ``action``, ``status`` (``listed``, ``suppressed``,
        ``over_capacity``, ``below_threshold``), plus reason columns when
        ``explain="all"``.
    features : dict of task -> DataFrame
        Today's features per task (a seeded sample of at most ``drift_sample`` rows
        when the population is larger), for the drift check.
    models : dict of task -> dict
        Name, version, run id and training window of each model used.
    catalogue : DataFrame
        The feature catalogue the reasons were worded from.
    explanations : DataFrame
        Indexed by ``customer_id``, every explained customer's ``reason_*``,
        ``reason_key_*`` (the catalogue feature behind each reason, for counting
        reasons across a list) and ``explanation``.
    explain : str
        The explanation mode of the run.
    """

    as_of: pd.Timestamp
    outreach: pd.DataFrame
    suppressed: pd.DataFrame
    scored: pd.DataFrame
    features: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalogue: pd.DataFrame = field(default_factory=pd.DataFrame)
    explanations: pd.DataFrame = field(default_factory=pd.DataFrame)
    explain: str = "list"


# --------------------------------------------------------------------------- models


def _estimator(model):
    return as_artifact(model).estimator


def model_info(model) -> dict[str, Any]:
    """Name, version, run id and training window of a (registered) model, for reports.

    Examples
    --------
    >>> from churnguard.training import ModelArtifact
    >>> model_info(ModelArtifact(estimator=None, task="churn", name="churnguard-churn", version="3"))["version"]
    '3'
    """
    return as_artifact(model).info()


def _feature_set(model) -> FeatureSet | None:
    return as_artifact(model).feature_set


def _catalogue(model) -> pd.DataFrame | None:
    return as_artifact(model).catalogue


def _features_of(model) -> list[str]:
    return as_artifact(model).feature_names


# --------------------------------------------------------------------------- population and features


def _population(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.Index:
    from churnguard.features import population

    return population(dict(tables), as_of)


def _isin(values, members) -> np.ndarray:
    """``values.isin(members)`` through a hash index.

    pandas' ``isin`` on Arrow-backed strings walks a large `members` in Python
    (seconds per million ids); an index look-up stays vectorised.
    """
    return pd.Index(members).unique().get_indexer(pd.Index(values)) >= 0


def _eligible(task: str, tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.Index | None:
    """Customers a task's model was trained to score; None = the whole population.

    The maintenance model learns from owners of a product installed before `as_of`
    (the label's population): a customer without one has no maintenance risk to
    predict, and the model's answer for them would be an extrapolation.
    """
    if task != "maintenance" or tables.get("assets") is None:
        return None
    assets = tables["assets"]
    installed = assets["install_date"].isna() | (assets["install_date"] < as_of) if "install_date" in assets else True
    return pd.Index(assets.loc[installed, "customer_id"].unique())


def _subset(tables: Mapping[str, pd.DataFrame], ids: pd.Index) -> dict[str, pd.DataFrame]:
    """The slice of every table that belongs to customers `ids`."""
    out = {}
    for name, table in tables.items():
        if "customer_id" in table.columns and name != "service_events":
            out[name] = table[_isin(table["customer_id"], ids)]
        else:
            out[name] = table
    if "service_events" in tables and "assets" in out:
        events = tables["service_events"]
        out["service_events"] = events[_isin(events["asset_id"], out["assets"]["asset_id"])]
    return out


def _build(tables, as_of, feature_set: FeatureSet | None) -> pd.DataFrame:
    from churnguard.features import build_features

    return build_features(tables, as_of, feature_set=feature_set)


def _check_schema(model, frame: pd.DataFrame) -> None:
    estimator = _estimator(model)
    if hasattr(estimator, "check_schema"):
        estimator.check_schema(frame)
        return
    missing = [f for f in _features_of(model) if f not in frame.columns]
    if missing:
        from churnguard.training import SchemaMismatchError

        raise SchemaMismatchError(missing, {})


# --------------------------------------------------------------------------- rules


def suppression_reasons(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None,
    ids: pd.Index,
    as_of: pd.Timestamp,
    rules: OutreachRules,
) -> pd.Series:
    """Why each customer must not be contacted: ``"; "``-joined codes, ``""`` if none.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
    ...                           "do_not_contact": pd.array([True, False, False], dtype="boolean")})
    >>> interactions = pd.DataFrame({"customer_id": ["b", "c"],
    ...     "timestamp": pd.to_datetime(["2024-02-25", "2023-06-01"]),
    ...     "is_complaint": pd.array([True, True], dtype="boolean"),
    ...     "resolved": pd.array([False, False], dtype="boolean")})
    >>> suppression_reasons(customers, interactions, pd.Index(["a", "b", "c"]),
    ...                     pd.Timestamp("2024-03-01"), load_outreach_rules()).tolist()
    ['do_not_contact', 'contacted_recently; open_complaint', '']
    """
    flags: dict[str, pd.Index] = {}
    if "do_not_contact" in customers.columns:
        dnc = customers["do_not_contact"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        flags["do_not_contact"] = pd.Index(customers.loc[dnc, "customer_id"])
    if interactions is not None and len(interactions):
        ts = interactions["timestamp"]
        before = ts < as_of  # events at or after as_of have not happened yet
        recent = before & (ts >= as_of - pd.Timedelta(days=rules.contact_cooldown_days))
        flags["contacted_recently"] = pd.Index(interactions.loc[recent, "customer_id"].unique())
        if rules.suppress_open_complaints and "is_complaint" in interactions and "resolved" in interactions:
            complaint = interactions["is_complaint"].astype("boolean").fillna(False).to_numpy(dtype=bool)
            unresolved = ~interactions["resolved"].astype("boolean").fillna(False).to_numpy(dtype=bool)
            open_window = before & (ts >= as_of - pd.Timedelta(days=rules.open_complaint_days))
            mask = complaint & unresolved & open_window.to_numpy(dtype=bool)
            flags["open_complaint"] = pd.Index(interactions.loc[mask, "customer_id"].unique())
    out = pd.Series("", index=pd.Index(ids, name="customer_id"), dtype=object)
    for code, who in flags.items():  # insertion order fixes the order of codes in the text
        hit = _isin(out.index, who)
        out[hit] = np.where(out[hit] == "", code, out[hit] + "; " + code)
    return out


def rank_outreach(
    scored: pd.DataFrame, *, rules: OutreachRules, capacity: int | None = None
) -> pd.DataFrame:
    """Order eligible customers and apply the caps; returns the listed rows with ``rank``.

    `scored` needs ``customer_id``, ``priority``, ``action`` and a boolean ``eligible``.

    Examples
    --------
    >>> scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "priority": [5.0, 9.0, 5.0, 1.0],
    ...                        "action": ["retention_call", "maintenance_visit", "retention_call", "retention_call"],
    ...                        "eligible": [True, True, True, False]})
    >>> rank_outreach(scored, rules=load_outreach_rules())[["rank", "customer_id"]].values.tolist()
    [[1, 'b'], [2, 'a'], [3, 'c']]
    >>> from dataclasses import replace
    >>> rules = replace(load_outreach_rules(), capacity_per_action={"maintenance_visit": 0})
    >>> rank_outreach(scored, rules=rules, capacity=1)["customer_id"].tolist()
    ['a']
    """
    ranked = scored[scored["eligible"]].sort_values(
        ["priority", "customer_id"], ascending=[False, True], kind="mergesort"
    )
    if rules.capacity_per_action:
        position = ranked.groupby("action", sort=False).cumcount()
        cap = ranked["action"].map(dict(rules.capacity_per_action)).astype("float64").fillna(np.inf)
        ranked = ranked[position.to_numpy() < cap.to_numpy()]
    if capacity is not None:
        ranked = ranked.head(int(capacity))
    ranked = ranked.copy()
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1, dtype="int64"))
    return ranked.reset_index(drop=True)


def _decide(probs: pd.DataFrame, customers: pd.DataFrame, rules: OutreachRules) -> pd.DataFrame:
    """Stakes, priority, action and channel for every scored customer."""
    info = customers.drop_duplicates("customer_id").set_index("customer_id")
    ids = probs["customer_id"]
    value = (
        pd.to_numeric(info["value"], errors="coerce").reindex(ids).to_numpy(dtype="float64", na_value=np.nan)
        if "value" in info.columns
        else np.full(len(ids), np.nan)
    )
    value = np.where(np.isnan(value), rules.default_value, value)
    p_churn = probs["churn_probability"].to_numpy(dtype="float64", na_value=np.nan)
    p_maint = probs["maintenance_probability"].to_numpy(dtype="float64", na_value=np.nan)
    churn_stake = np.nan_to_num(p_churn) * value
    maint_stake = np.nan_to_num(p_maint) * rules.maintenance_cost
    priority = churn_stake + maint_stake
    action = np.where(
        churn_stake >= maint_stake,
        "retention_call",
        np.where(np.nan_to_num(p_maint) >= rules.visit_threshold, "maintenance_visit", "maintenance_reminder"),
    )
    preferred = (
        info["preferred_channel"].reindex(ids).astype(object).to_numpy()
        if "preferred_channel" in info.columns
        else np.full(len(ids), None, dtype=object)
    )
    channel = np.where(pd.isna(preferred), rules.default_channel, preferred).astype(object)
    for act, forced in dict(rules.action_channels).items():
        channel[action == act] = forced
    out = probs.copy()
    out["value"] = value
    out["churn_stake"] = churn_stake
    out["maintenance_stake"] = maint_stake
    out["priority"] = priority
    out["action"] = action
    out["channel"] = channel
    most = np.fmax(np.nan_to_num(p_churn, nan=-1.0), np.nan_to_num(p_maint, nan=-1.0))
    out["above_threshold"] = most >= rules.min_probability
    return out


# --------------------------------------------------------------------------- chunked feature store


class _Chunks:
    """Feature frames per chunk: in memory for one chunk, spilled to Parquet for more.

    Spilling keeps memory bounded by one chunk, and reading a chunk back is much cheaper
    than rebuilding its features when the listed customers are explained.
    """

    def __init__(self, spill: bool):
        self._dir = tempfile.TemporaryDirectory(prefix="churnguard-score-") if spill else None
        self._frames: list[Any] = []

    def add(self, frame: pd.DataFrame) -> None:
        if self._dir is None:
            self._frames.append(frame)
            return
        path = Path(self._dir.name) / f"chunk-{len(self._frames):05d}.parquet"
        frame.to_parquet(path, index=False)
        self._frames.append(path)

    def __iter__(self):
        for item in self._frames:
            yield item if isinstance(item, pd.DataFrame) else pd.read_parquet(item)

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()


def _progress(iterable, enabled: bool, desc: str, total: int):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


# --------------------------------------------------------------------------- score


def score(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    models: Mapping[str, Any],
    *,
    rules: OutreachRules | None = None,
    capacity: int | None = None,
    chunk_size: int = 200_000,
    explain: str = "list",
    progress: bool = False,
    features: pd.DataFrame | None = None,
    catalogue: pd.DataFrame | None = None,
    drift_sample: int = 100_000,
) -> ScoreResult:
    """Score every customer at `as_of` and build the ranked, explained outreach list.

    Parameters
    ----------
    tables : dict of str -> DataFrame
        Validated tables; ``customers`` is required (values, preferences,
        ``do_not_contact``), ``interactions`` drives the cooldown and open-complaint
        suppression.
    as_of : Timestamp
        Scoring date: features use events strictly before it.
    models : dict of task -> RegisteredModel or ChurnModel
        One entry per task that has a model; a missing (or ``None``) task gets empty
        probability columns.
    rules : OutreachRules, optional
        Defaults to the packaged ``outreach.toml``.
    capacity : int, optional
        At most this many customers on the list (after per-action caps).
    chunk_size : int, default=200_000
        Customers per chunk: features are built, predicted and explained one chunk at
        a time so memory stays bounded by a chunk.
    explain : {"list", "all", "none"}, default="list"
        Whom to explain with SHAP reasons: the listed customers, everyone (reasons
        also land in ``scored``) or nobody.
    progress : bool, default=False
        Show progress bars.
    features : DataFrame, optional
        Features already built (``customer_id`` first); used for every task instead of
        building from `tables`.
    catalogue : DataFrame, optional
        Feature catalogue for the reasons; default: the one stored with each model,
        else :func:`churnguard.features.feature_catalogue`.
    drift_sample : int, default=100_000
        Rows of today's features kept for the drift check.

    Returns
    -------
    ScoreResult

    Raises
    ------
    SchemaMismatchError
        When the features built today do not match what a model was trained on.

    Examples
    --------
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
    >>> result.outreach[["rank", "action", "reason_1"]].values.tolist()[0]
    [1, 'retention_call', '4 complaints in the last 30 days']
    >>> bool(result.outreach["maintenance_probability"].isna().all())  # no maintenance model
    True
    """
    if explain not in ("list", "all", "none"):
        raise ValueError(f"explain must be 'list', 'all' or 'none', got {explain!r}")
    rules = rules or load_outreach_rules()
    as_of = pd.Timestamp(as_of)
    models = {task: as_artifact(m, task=task) for task, m in models.items() if m is not None}
    if unknown := set(models) - set(TASKS):
        raise ValueError(f"unknown task(s) {sorted(unknown)}; expected {TASKS}")

    # One feature build per distinct stored feature set (both tasks usually share one).
    sets: dict[str, FeatureSet | None] = {}
    set_of: dict[str, str] = {}
    for task, model in models.items():
        fs = _feature_set(model)
        key = "given" if features is not None else repr(fs.to_dict() if fs is not None else None)
        sets[key] = fs
        set_of[task] = key

    if features is not None:
        ids = pd.Index(features["customer_id"])
    else:
        ids = _population(tables, as_of)
    # Chunking rebuilds features from a slice of the tables; that is only safe when the
    # feature set is fully resolved (stored with the model), not derived from the data.
    chunked = len(ids) > chunk_size and (features is not None or all(fs is not None for fs in sets.values()))
    bounds = list(range(0, len(ids), chunk_size)) if chunked else [0]
    step = chunk_size if chunked else max(len(ids), 1)
    # Chunks of features the caller passed in are already in memory: keep them there. Built
    # chunks are spilled to Parquet when there are several, and kept only if reasons need them.
    stores = {key: _Chunks(spill=len(bounds) > 1 and features is None) for key in sets}
    rng = np.random.default_rng(0)
    keep_share = min(1.0, drift_sample / max(len(ids), 1))
    samples: dict[str, list[pd.DataFrame]] = {key: [] for key in sets}
    prob_parts = []
    eligible = {task: _eligible(task, tables, as_of) for task in models}

    try:
        for start in _progress(bounds, progress, "scoring", len(bounds)):
            chunk_ids = ids[start : start + step]
            part = pd.DataFrame({"customer_id": np.asarray(chunk_ids, dtype=object)})
            frames: dict[str, pd.DataFrame] = {}
            if features is not None:
                # One chunk: the caller's frame as it is (no copy of a million rows).
                frames["given"] = features if not chunked else features.iloc[start : start + step].reset_index(drop=True)
            else:
                sub = _subset(tables, chunk_ids) if chunked else tables
                for key, fs in sets.items():
                    built = _build(sub, as_of, fs)
                    frames[key] = built.set_index("customer_id").reindex(chunk_ids).reset_index()
            for task in TASKS:
                if task in models:
                    frame = frames[set_of[task]]
                    _check_schema(models[task], frame)
                    p = _estimator(models[task]).predict_proba(frame)[:, 1]
                    if eligible[task] is not None:
                        p = np.where(_isin(part["customer_id"], eligible[task]), p, np.nan)
                    part[PROBABILITY[task]] = p
                else:
                    part[PROBABILITY[task]] = np.nan
            prob_parts.append(part)
            for key, frame in frames.items():
                if explain != "none":
                    stores[key].add(frame)
                take = frame if keep_share >= 1 else frame[rng.random(len(frame)) < keep_share]
                samples[key].append(take)

        probs = pd.concat(prob_parts, ignore_index=True) if prob_parts else pd.DataFrame(
            {"customer_id": [], **{PROBABILITY[t]: [] for t in TASKS}}
        )
        customers = tables["customers"]
        scored = _decide(probs, customers, rules)
        reasons = suppression_reasons(customers, tables.get("interactions"), pd.Index(probs["customer_id"]), as_of, rules)
        scored["suppressed_reason"] = reasons.to_numpy()
        scored["eligible"] = (reasons.to_numpy() == "") & scored["above_threshold"].to_numpy()
        listed = rank_outreach(scored, rules=rules, capacity=capacity)

        status = np.where(
            scored["suppressed_reason"] != "",
            "suppressed",
            np.where(~scored["above_threshold"], "below_threshold", "over_capacity"),
        ).astype(object)
        status[_isin(scored["customer_id"], listed["customer_id"])] = "listed"
        scored["status"] = status

        drift_features = {}
        for task in models:
            if samples[set_of[task]]:
                sample = pd.concat(samples[set_of[task]], ignore_index=True)
                if eligible[task] is not None:  # compare like with like: the task's own population
                    sample = sample[_isin(sample["customer_id"], eligible[task])].reset_index(drop=True)
                drift_features[task] = sample
        if catalogue is None:
            catalogue = _merge_catalogues(models, tables, as_of, sets, set_of)

        # Explain chunk by chunk, only whom the list (or --explain-all) needs.
        to_explain = (
            pd.Index(scored["customer_id"]) if explain == "all"
            else pd.Index(listed["customer_id"]) if explain == "list" else pd.Index([])
        )
        explained = _explain(
            models, stores, set_of, scored.set_index("customer_id"), to_explain, catalogue,
            typical=_typical(drift_features), n_reasons=rules.n_reasons, progress=progress,
        )
    finally:
        for store in stores.values():
            store.close()

    outreach = _outreach_frame(listed, explained)
    suppressed = scored.loc[scored["status"] == "suppressed", ["customer_id", "suppressed_reason", *PROBABILITY.values()]]
    suppressed = suppressed.rename(columns={"suppressed_reason": "reason"}).sort_values("customer_id", kind="mergesort")
    suppressed = _round_probabilities(suppressed.reset_index(drop=True))[SUPPRESSED_COLUMNS]
    scored = scored.drop(columns=["eligible", "above_threshold", "churn_stake", "maintenance_stake"])
    if explain == "all":
        scored = scored.join(explained[[c for c in explained.columns if not c.startswith("reason_key")]], on="customer_id")
    return ScoreResult(
        as_of=as_of,
        outreach=outreach,
        suppressed=suppressed,
        scored=scored,
        features=drift_features,
        models={task: model_info(m) for task, m in models.items()},
        catalogue=catalogue,
        explanations=explained,
        explain=explain,
    )


def _merge_catalogues(models, tables, as_of, sets, set_of) -> pd.DataFrame:
    parts = [c for c in (_catalogue(m) for m in models.values()) if c is not None]
    if not parts:
        try:
            from churnguard.features import feature_catalogue
        except ImportError:
            feature_catalogue = None
        if feature_catalogue is not None:
            for key in dict.fromkeys(set_of.values()):
                if key != "given":
                    parts.append(feature_catalogue(tables, as_of, feature_set=sets[key]))
                else:
                    parts.append(feature_catalogue(tables, as_of))
    if not parts:
        return pd.DataFrame(columns=["name", "family", "description", "unit", "reason", "direction", "model_input"])
    return pd.concat(parts, ignore_index=True).drop_duplicates("name").reset_index(drop=True)


def _typical(drift_features: dict[str, pd.DataFrame]) -> pd.Series:
    medians = [f.median(numeric_only=True) for f in drift_features.values() if len(f)]
    if not medians:
        return pd.Series(dtype="float64")
    merged = pd.concat(medians)
    return merged[~merged.index.duplicated()]


def _explain(models, stores, set_of, scored, to_explain, catalogue, *, typical, n_reasons, progress) -> pd.DataFrame:
    reason_cols = [f"reason_{i + 1}" for i in range(n_reasons)]
    key_cols = [f"reason_key_{i + 1}" for i in range(n_reasons)]
    columns = reason_cols + key_cols + ["explanation"]
    if len(to_explain) == 0 or not models:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer_id"), dtype=object)
    # Every task's store holds the same chunks of customers in the same order.
    keys = list(dict.fromkeys(set_of.values()))
    iterators = {key: iter(stores[key]) for key in keys}
    n_chunks = len(stores[keys[0]]._frames)
    explainers = _explainers(models, len(to_explain))
    parts = []
    for _ in _progress(range(n_chunks), progress, "explaining", n_chunks):
        frames = {key: next(iterators[key]) for key in keys}
        first = frames[keys[0]]
        mask = _isin(first["customer_id"], to_explain)
        if not mask.any():
            continue
        frames = {key: f[mask].reset_index(drop=True) for key, f in frames.items()}
        rows = scored.loc[frames[keys[0]]["customer_id"]]
        parts.append(_explain_chunk(models, frames, set_of, rows, catalogue, explainers,
                                    typical=typical, n_reasons=n_reasons))
    if not parts:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer_id"), dtype=object)
    return pd.concat(parts)


def _explain_chunk(models, frames, set_of, rows, catalogue, explainers, *, typical, n_reasons) -> pd.DataFrame:
    """Reasons and explanation JSON of one chunk of customers (``churnguard.spark`` calls it per partition).

    `frames` holds each feature-set key's features of the chunk, `rows` the same
    customers' scored rows (probabilities, stakes, priority) in the same order.
    """
    keys = list(dict.fromkeys(set_of.values()))
    ids = frames[keys[0]]["customer_id"]
    total = rows["priority"].to_numpy()
    contributions, weights = {}, {}
    for task, model in models.items():
        contribution = _contributions(model, frames[set_of[task]], explainers.get(task))
        # No probability, no explanation: rows the task does not score are left empty.
        unscored = rows[PROBABILITY[task]].isna().to_numpy()
        if unscored.any():
            contribution.loc[unscored, :] = np.nan
        contributions[task] = contribution
        stake = rows["churn_stake" if task == "churn" else "maintenance_stake"].to_numpy()
        # The risk that drives the priority drives the reasons; equal shares at zero priority.
        weights[task] = np.where(total > 0, stake / np.where(total > 0, total, 1.0), 1.0 / len(models))
    # Reasons may quote any task's columns (context columns included): one merged row.
    merged = frames[keys[0]]
    for key in keys[1:]:
        extra = frames[key].columns.difference(merged.columns)
        merged = pd.concat([merged, frames[key][extra]], axis=1)
    reasons = explain_reasons(
        contributions, merged, catalogue, weights=weights, typical=typical, n_reasons=n_reasons
    )
    reasons["explanation"] = explanation_json(contributions, merged).to_numpy()
    reasons.index = pd.Index(ids, name="customer_id")
    return reasons


# Below this many rows LightGBM's own pred_contrib is quicker than compiling and
# building the fast explainer's tables.
FAST_SHAP_MIN_ROWS = 20_000


def _explainers(models, n_rows: int) -> dict[str, Any]:
    """churnguard.treeshap explainers, shared with the models' own large-batch prediction."""
    if n_rows < FAST_SHAP_MIN_ROWS:
        return {}
    out = {}
    for task, model in models.items():
        tree_shap = getattr(_estimator(model), "tree_shap", None)
        explainer = tree_shap() if tree_shap is not None else None
        if explainer is not None:
            out[task] = explainer
    return out


def _contributions(model, frame: pd.DataFrame, explainer) -> pd.DataFrame:
    estimator = _estimator(model)
    if explainer is None or not hasattr(estimator, "encode"):
        return estimator.contributions(frame)
    values = explainer.shap_values(estimator.encode(frame))
    return pd.DataFrame(values, columns=[*estimator.feature_names_in_, "bias"], index=frame.index)


def _round_probabilities(frame: pd.DataFrame) -> pd.DataFrame:
    for column in PROBABILITY.values():
        frame[column] = frame[column].astype("float64").round(6)
    return frame


def _outreach_frame(listed: pd.DataFrame, explained: pd.DataFrame) -> pd.DataFrame:
    out = listed[["rank", "customer_id", "action", "channel", "priority", *PROBABILITY.values()]].copy()
    out["value_at_risk"] = listed["priority"].round(2)
    out["priority"] = out["priority"].round(6)
    out = _round_probabilities(out)
    joined = explained.reindex(out["customer_id"])
    for column in ("reason_1", "reason_2", "reason_3", "explanation"):
        values = joined[column].to_numpy(dtype=object) if column in joined.columns else np.full(len(out), None)
        out[column] = values
    return out[OUTREACH_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- write


def _write(frame: pd.DataFrame, tmp: Path, suffix: str) -> None:
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)


def write_outreach(result: ScoreResult, out: Path | str) -> tuple[Path, Path]:
    """Write the list to `out` and the suppressed list beside it, all or nothing.

    ``lists/outreach.csv`` gets ``lists/outreach.suppressed.csv``; an
    ``explain="all"`` run also writes ``lists/outreach.scored.csv`` (every customer,
    with reasons). Every file goes to a temporary name first and is renamed only
    once all of them are complete, so a failure leaves no file, partial or new.

    Examples
    --------
    >>> import tempfile
    >>> empty = pd.DataFrame(columns=OUTREACH_COLUMNS)
    >>> result = ScoreResult(pd.Timestamp("2024-03-01"), empty, pd.DataFrame(columns=SUPPRESSED_COLUMNS),
    ...                      pd.DataFrame())
    >>> out = Path(tempfile.mkdtemp()) / "lists" / "outreach.csv"
    >>> [p.name for p in write_outreach(result, out)]
    ['outreach.csv', 'outreach.suppressed.csv']
    """
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use .csv or .parquet")
    suppressed_path = sibling_path(out, "suppressed")
    files = [(out, result.outreach), (suppressed_path, result.suppressed)]
    if result.explain == "all":
        files.append((sibling_path(out, "scored"), result.scored))
    with contextlib.ExitStack() as stack:
        for path, frame in files:
            _write(frame, stack.enter_context(atomic_path(path)), out.suffix)
    return out, suppressed_path
