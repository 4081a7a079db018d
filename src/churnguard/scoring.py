"""Score customers on one machine: the single-machine driver of the outreach kernel.

Every rule (who is scored, suppressed, how a row is decided, ranked, explained and
written) lives in :mod:`churnguard.outreach`; this module only splits the population
into chunks, builds each chunk's features, calls the kernel and keeps memory bounded
by a chunk. :mod:`churnguard.spark.scoring` drives the very same kernel functions per
shard of customers, so both engines decide alike.

Only the customers who make the list are explained by default (exact TreeSHAP is the
cost of scoring); ``explain="all"`` explains everyone.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from churnguard.config import TASKS, OutreachRules, load_outreach_rules
from churnguard.outreach import (
    CONTEXT_COLUMNS,
    CONTROL_COLUMNS,
    OUTREACH_COLUMNS,
    PROBABILITY,
    SUPPRESSED_COLUMNS,
    ProfitCurve,
    candidates,
    control_frame,
    explain_chunk,
    explainers,
    feature_set_groups,
    held_out,
    held_out_counts,
    listing_status,
    member_mask,
    merge_catalogues,
    outreach_frame,
    predict_tasks,
    predict_uplift,
    profit_curve,
    rank_outreach,
    scored_customers,
    suppressed_frame,
    suppression_reasons,
    typical_values,
    write_lists,
)
from churnguard.features.chunks import subset_tables
from churnguard.relations import SqlTable
from churnguard.timeline import coerce_as_of, population
from churnguard.training.artifact import as_artifact, load_models

__all__ = [
    "CONTROL_COLUMNS",
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
        ``priority``, ``action``, ``group`` (``treatment`` / ``control`` for the
        eligible), ``status`` (``listed``, ``control``, ``suppressed``,
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
        reasons across a list), ``explanation`` and the report's context columns
        (:data:`churnguard.outreach.CONTEXT_COLUMNS`: segment, days since the last
        contact and complaint).
    explain : str
        The explanation mode of the run.
    rules : OutreachRules or None
        The rules the list was decided by (the report words money and actions by them).
    controls : DataFrame
        The held-out customers within the list's reach, columns :data:`CONTROL_COLUMNS`
        (:func:`churnguard.outreach.held_out`): never to be contacted.
    profit : ProfitCurve or None
        Expected profit of calling the top k of the list ranked without `capacity`.
    capacity : int or None
        The overall capacity the list was cut to.
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
    rules: OutreachRules | None = None
    controls: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONTROL_COLUMNS))
    profit: ProfitCurve | None = None
    capacity: int | None = None

    def held_out_per_action(self) -> dict[str, int]:
        """Control customers per action in the control file, by action name."""
        return held_out_counts(self.controls, self.outreach)


# --------------------------------------------------------------------------- models


def model_info(model) -> dict[str, Any]:
    """Name, version, run id and training window of a (registered) model, for reports.

    Examples
    --------
    >>> from churnguard.training import ModelArtifact
    >>> model_info(ModelArtifact(estimator=None, task="churn", name="churnguard-churn", version="3"))["version"]
    '3'
    """
    return as_artifact(model).info()


# --------------------------------------------------------------------------- the tables the kernel reads


def _kernel_tables(tables: Mapping[str, Any], as_of: pd.Timestamp, rules: OutreachRules) -> Mapping[str, Any]:
    """`tables` as the outreach kernel reads them: pandas frames, tables kept in DuckDB cut to what it needs.

    The kernel looks at interactions only inside the cooldown and open-complaint windows,
    at the assets' owners and install dates, and at each customer's last purchase before
    `as_of` (the inactivity population and the days since a lapsed customer bought); all
    are small next to the event tables.
    """
    if not any(isinstance(t, SqlTable) for t in tables.values()):
        return tables
    out = {name: t for name, t in tables.items() if not isinstance(t, SqlTable)}
    if isinstance(tables.get("assets"), SqlTable):
        out["assets"] = tables["assets"][["asset_id", "customer_id", "install_date"]].to_pandas()
    if isinstance(tables.get("interactions"), SqlTable):
        days = max(rules.contact_cooldown_days, rules.open_complaint_days)
        out["interactions"] = tables["interactions"].in_window(
            "timestamp", as_of - pd.Timedelta(days=days), as_of, ["customer_id", "timestamp", "is_complaint", "resolved"])
    if isinstance(tables.get("purchases"), SqlTable):
        purchases = tables["purchases"]
        not_return = "AND NOT coalesce(is_return, false)" if "is_return" in purchases else ""
        last = (f"SELECT customer_id, max(timestamp) AS timestamp, CAST(NULL AS DOUBLE) AS amount "
                f"FROM ({purchases.sql}) WHERE timestamp < TIMESTAMP '{pd.Timestamp(as_of)}' {not_return} "
                "GROUP BY customer_id ORDER BY customer_id")
        kinds = {c: purchases.kinds[c] for c in ("customer_id", "timestamp") if c in purchases.kinds}
        out["purchases"] = SqlTable(last, ["customer_id", "timestamp", "amount"], 0, purchases.frames, kinds).to_pandas()
    for name in ("outreach_log",):
        if isinstance(tables.get(name), SqlTable):
            out[name] = tables[name].to_pandas()
    return out


def _build(tables, as_of, feature_set) -> pd.DataFrame:
    from churnguard.features import build_features

    return build_features(tables, as_of, feature_set=feature_set)


# --------------------------------------------------------------------------- chunked feature store


class _Chunks:
    """Feature frames per chunk: in memory for one chunk, spilled to Arrow files for more.

    Spilling keeps memory bounded by one chunk. The files are Arrow IPC, read back through
    a memory map: explaining the listed customers takes just their rows from each chunk.
    LZ4 keeps the disk a spill needs at about a quarter of the features' size (a 200,000 x
    226 chunk: 91 MiB instead of 354 MiB; 10M customers would need 11 GB uncompressed) for
    about 0.4 s more per chunk (benchmarks/README.md).
    """

    def __init__(self, spill: bool):
        self._dir = tempfile.TemporaryDirectory(prefix="churnguard-score-") if spill else None
        self._frames: list[Any] = []
        self._ids: list[pd.Index] = []

    def add(self, frame: pd.DataFrame) -> None:
        self._ids.append(pd.Index(frame["customer_id"]))
        if self._dir is None:
            self._frames.append(frame)
            return
        import pyarrow as pa

        path = Path(self._dir.name) / f"chunk-{len(self._frames):05d}.arrow"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        self._frames.append(path)

    def __len__(self) -> int:
        return len(self._frames)

    def ids(self, i: int) -> pd.Index:
        """The customer ids of chunk `i`, in row order."""
        return self._ids[i]

    def take(self, i: int, rows: np.ndarray) -> pd.DataFrame:
        """Rows `rows` (positions) of chunk `i`, as a frame indexed from 0."""
        item = self._frames[i]
        if isinstance(item, pd.DataFrame):
            return item.iloc[rows].reset_index(drop=True)
        import pyarrow as pa

        with pa.memory_map(str(item)) as source:
            return pa.ipc.open_file(source).read_all().take(pa.array(rows, type=pa.int64())).to_pandas()

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
    uplift: Any = None,
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
    models : dict of task -> ModelArtifact or ChurnModel
        One entry per task that has a model; a missing (or ``None``) task gets empty
        probability columns.
    rules : OutreachRules, optional
        Defaults to the packaged ``outreach.toml``.
    capacity : int, optional
        At most this many customers on the list (after per-action caps); caps count
        treatment customers only: the control group is drawn before them.
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
    uplift : ModelArtifact, optional
        The registered uplift model (:func:`churnguard.training.uplift_registry.load_uplift_model`):
        with it, a retention call is priced by the churn it removes (``uplift x value -
        contact cost``), a call that backfires is suppressed as ``contact_backfires``, and the
        reasons say why a call helps (SHAP on the effect). Needs a churn model.

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
    as_of = coerce_as_of(as_of)
    models = {task: as_artifact(m, task=task) for task, m in models.items() if m is not None}
    if unknown := set(models) - set(TASKS):
        raise ValueError(f"unknown task(s) {sorted(unknown)}; expected {TASKS}")

    # The uplift model rides along with the tasks' models wherever features are built and explained.
    explained_by = {**models, "uplift": as_artifact(uplift, task="uplift")} if uplift is not None else models
    sets, set_of = feature_set_groups(explained_by, given=features is not None)
    ids = pd.Index(features["customer_id"]) if features is not None else population(tables, as_of)
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
    kernel = _kernel_tables(tables, as_of, rules)
    scored_by = {task: scored_customers(task, kernel, as_of, definition=m.label, lookback_days=m.lookback_days)
                 for task, m in models.items()}

    try:
        for start in _progress(bounds, progress, "scoring", len(bounds)):
            chunk_ids = ids[start : start + step]
            frames: dict[str, pd.DataFrame] = {}
            if features is not None:
                # One chunk: the caller's frame as it is (no copy of a million rows).
                frames["given"] = features if not chunked else features.iloc[start : start + step].reset_index(drop=True)
            else:
                sub = subset_tables(tables, chunk_ids) if chunked else tables
                for key, fs in sets.items():
                    built = _build(sub, as_of, fs)
                    # Built rows come in population order, which is the chunk's: no copy then.
                    in_order = pd.Index(built["customer_id"]).equals(pd.Index(chunk_ids))
                    frames[key] = built if in_order else built.set_index("customer_id").reindex(chunk_ids).reset_index()
            part = predict_tasks(models, frames, set_of, chunk_ids, scored_by)
            if uplift is not None:
                part["uplift"] = predict_uplift(uplift, frames[set_of["uplift"]], chunk_ids, scored_by.get("churn"))
            prob_parts.append(part)
            for key, frame in frames.items():
                if explain != "none":
                    stores[key].add(frame)
                take = frame if keep_share >= 1 else frame[rng.random(len(frame)) < keep_share]
                samples[key].append(take)

        probs = pd.concat(prob_parts, ignore_index=True) if prob_parts else pd.DataFrame(
            {"customer_id": [], **{PROBABILITY[t]: [] for t in TASKS}, **({"uplift": []} if uplift is not None else {})}
        )
        scored = candidates(probs, kernel, as_of, rules, churn_population=scored_by.get("churn"))
        # Ranked once without the overall capacity: the profit curve runs over all of it,
        # and the list is its head (rank_outreach applies capacity last, after the caps).
        uncapped = rank_outreach(scored, rules=rules)
        curve = profit_curve(uncapped["priority"])
        listed = uncapped if capacity is None else uncapped.head(int(capacity))
        controls = held_out(scored, listed)
        scored["status"] = listing_status(scored, listed, controls)

        drift_features = {}
        for task in models:
            if samples[set_of[task]]:
                sample = pd.concat(samples[set_of[task]], ignore_index=True)
                if scored_by[task] is not None:  # compare like with like: the task's own population
                    sample = sample[member_mask(sample["customer_id"], scored_by[task])].reset_index(drop=True)
                drift_features[task] = sample
        if catalogue is None:
            catalogue = merge_catalogues(explained_by, tables, as_of, sets, set_of)

        # Explain chunk by chunk, only whom the list (or --explain-all) needs.
        to_explain = (
            pd.Index(scored["customer_id"]) if explain == "all"
            else pd.Index(pd.concat([listed["customer_id"], controls["customer_id"]])) if explain == "list"
            else pd.Index([])
        )
        explained = _explain(
            explained_by, stores, set_of, scored.set_index("customer_id"), to_explain, catalogue,
            typical=typical_values(drift_features), rules=rules, progress=progress,
        )
    finally:
        for store in stores.values():
            store.close()

    outreach = outreach_frame(listed, explained)
    control = control_frame(controls, explained)
    suppressed = suppressed_frame(scored.loc[scored["status"] == "suppressed"])
    scored = scored.drop(columns=["eligible", "above_threshold", "churn_stake", "maintenance_stake", "rank_tier"])
    if explain == "all":
        kept = [c for c in explained.columns if not c.startswith("reason_key") and c not in CONTEXT_COLUMNS]
        scored = scored.join(explained[kept], on="customer_id")
    return ScoreResult(
        as_of=as_of,
        outreach=outreach,
        suppressed=suppressed,
        scored=scored,
        features=drift_features,
        models={task: model_info(m) for task, m in explained_by.items()},
        catalogue=catalogue,
        explanations=explained,
        explain=explain,
        rules=rules,
        controls=control,
        profit=curve,
        capacity=None if capacity is None else int(capacity),
    )


def _explain(models, stores, set_of, scored, to_explain, catalogue, *, typical, rules, progress) -> pd.DataFrame:
    """The kernel's :func:`~churnguard.outreach.explain_chunk` over the stored chunks, for `to_explain` only."""
    n_reasons = rules.n_reasons
    reason_cols = [f"reason_{i + 1}" for i in range(n_reasons)]
    key_cols = [f"reason_key_{i + 1}" for i in range(n_reasons)]
    columns = reason_cols + key_cols + ["explanation", *CONTEXT_COLUMNS]
    if len(to_explain) == 0 or not models:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer_id"), dtype=object)
    # Every task's store holds the same chunks of customers in the same order.
    keys = list(dict.fromkeys(set_of.values()))
    n_chunks = len(stores[keys[0]])
    fast = explainers(models, len(to_explain))
    parts = []
    for i in _progress(range(n_chunks), progress, "explaining", n_chunks):
        rows = np.flatnonzero(member_mask(stores[keys[0]].ids(i), to_explain))
        if len(rows) == 0:
            continue
        frames = {key: stores[key].take(i, rows) for key in keys}
        decided = scored.loc[frames[keys[0]]["customer_id"]]
        parts.append(explain_chunk(models, frames, set_of, decided, catalogue, fast, typical=typical,
                                   n_reasons=n_reasons, rules=rules))
    if not parts:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer_id"), dtype=object)
    return pd.concat(parts)


# --------------------------------------------------------------------------- write


def write_outreach(result: ScoreResult, out: Path | str) -> tuple[Path, Path]:
    """Write the list to `out`, the suppressed list and the control group beside it, all or nothing.

    ``lists/outreach.csv`` gets ``lists/outreach.suppressed.csv`` and
    ``lists/outreach.control.csv`` (held out: never to be contacted); an
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
    return write_lists(out, result.outreach, result.suppressed, controls=result.controls,
                       scored=result.scored if result.explain == "all" else None)
