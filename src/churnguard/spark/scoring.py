"""Scoring on Spark: the probability as an MLflow Spark UDF.

The registered churnguard models are MLflow pyfunc models whose ``predict`` returns
the calibrated probability of the positive class, so MLflow's own Spark UDF serves
teams that already score that way. The model is loaded once per Python worker by
MLflow and applied to Arrow batches of feature rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd


def spark_udf(spark, model_uri: str, *, env_manager: str = "local"):
    """The probability of a registered churnguard model, as a Spark UDF over feature columns.

    Parameters
    ----------
    spark : SparkSession
    model_uri : str
        Any MLflow model URI: ``models:/churnguard-churn@champion``,
        ``runs:/<run_id>/model``, a local or cloud path.
    env_manager : str, default="local"
        MLflow's environment manager for the executors; ``"local"`` uses the
        executors' own Python (churnguard installed there), ``"virtualenv"`` or
        ``"conda"`` rebuild the model's logged environment.

    Returns
    -------
    pyspark UDF
        Call it on the feature columns of :func:`churnguard.spark.build_features_spark`;
        it returns a double.

    Examples
    --------
    >>> from pyspark.sql import functions as F  # doctest: +SKIP
    >>> churn = spark_udf(spark, "models:/churnguard-churn@champion")  # doctest: +SKIP
    >>> features = build_features_spark(spark, "s3a://lake/crm", "2024-06-01")  # doctest: +SKIP
    >>> scored = features.withColumn(  # doctest: +SKIP
    ...     "churn_probability", churn(F.struct(*[c for c in features.columns if c != "customer_id"])))
    """
    import mlflow.pyfunc

    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager=env_manager)



# =========================================================================== the outreach list on Spark
#
# How the work is split (every decision is made by the kernel, churnguard.outreach,
# whose public functions the single-machine driver churnguard.scoring calls too):
#
# 1. Score pass, one Python call per shard (``groupBy(__shard).applyInArrow`` over the
#    long frame of churnguard.spark.features): validate the shard's tables, build the
#    features of every model's stored feature set, predict with the models (shipped
#    once as their saved files in a broadcast and loaded once per Python worker) by
#    ``outreach.predict_tasks``, then ``outreach.candidates`` (stakes, priority, action,
#    channel, suppression, eligibility). The output, one row per customer with the
#    scored columns and the features, is persisted: every later step reads it instead
#    of rebuilding features.
# 2. The typical (median) values for the reasons: exact Spark ``percentile`` over the
#    whole population, per task like ``outreach.typical_values`` (maintenance over the
#    customers it scores), merged by ``outreach.merge_medians``; above ``drift_sample``
#    customers over a seeded sample, as the single-machine path also samples.
# 3. Ranking with Spark operations: the control group (decided per shard by the kernel,
#    ``outreach.assign_groups``) is drawn out, then order (priority desc, customer_id
#    asc), position within each action for ``rules.capacity_per_action``, then the rank
#    and ``capacity`` over the treatment rows; the controls within the list's reach as
#    ``outreach.held_out`` finds them; the expected profit curve over the uncapped list. Positions come from fixed priority buckets (quantiles taken once
#    on the driver), a row number inside each bucket and the bucket's offset, so no
#    step pulls every customer into one partition.
# 4. Explain pass over the listed customers only (a join on the persisted rows):
#    contributions, reasons and explanation JSON by ``outreach.explain_chunk`` and the
#    outreach columns by ``outreach.outreach_frame``, per partition.

FEATURE_PREFIX = "__f_"
ELIGIBLE_MAINTENANCE = "__maintenance_scored"
SCORED_FIELDS = [
    ("customer_id", "string"), ("churn_probability", "double"), ("maintenance_probability", "double"),
    ("value", "double"), ("churn_stake", "double"), ("maintenance_stake", "double"), ("value_at_risk", "double"),
    ("priority", "double"), ("action", "string"), ("channel", "string"), ("rank_tier", "bigint"),
    ("above_threshold", "boolean"),
    ("suppressed_reason", "string"), ("eligible", "boolean"), ("group", "string"), (ELIGIBLE_MAINTENANCE, "boolean"),
]
# Customers per priority bucket when ranking: one bucket is ranked in one task.
CUSTOMERS_PER_BUCKET = 1_000_000

# Models loaded in this Python worker, by digest of their files: loaded once per worker.
_WORKER_MODELS: dict[str, dict[str, Any]] = {}


class NoModelError(LookupError):
    """No registered model (and no --model) to score with; the CLI exits 3."""


@dataclass
class SparkScoreResult:
    """What :func:`score_spark` computed, with what the CLI prints.

    Attributes
    ----------
    outreach, suppressed : pyspark.sql.DataFrame
        Columns ``scoring.OUTREACH_COLUMNS`` ordered by rank, ``scoring.SUPPRESSED_COLUMNS``
        ordered by priority (highest first), then customer_id.
    controls : pyspark.sql.DataFrame
        The held-out customers within the list's reach, ``outreach.CONTROL_COLUMNS``
        ordered by their rank: never to be contacted.
    profit : ProfitCurve
        The expected profit of calling the top k of the list ranked without `capacity`.
    scored : pyspark.sql.DataFrame
        The persisted per-customer rows (scored columns, then ``__f_`` features);
        ``scored.unpersist()`` once the lists are written.
    warnings : list of Problem
        Validation's warnings, summed over shards.
    typical : Series
        The median feature values the reasons compare against.
    """

    outreach: Any
    suppressed: Any
    scored: Any
    warnings: list = field(default_factory=list)
    typical: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))
    models: dict = field(default_factory=dict)
    _lists: Any = None
    catalogue: pd.DataFrame = field(default_factory=pd.DataFrame)
    as_of: Any = None
    rules: Any = None
    feature_tasks: dict = field(default_factory=dict)
    controls: Any = None
    profit: Any = None
    capacity: int | None = None

    def relist(self, *, rules=None, capacity: int | None = None):
        """(outreach, suppressed) again from the same scores under other caps.

        Only the ranking rules apply (``capacity_per_action`` and `capacity`); the
        scores, actions, groups and suppressions stay those of the original run.
        """
        lists = self.lists(rules=rules, capacity=capacity)
        return lists.outreach, lists.suppressed

    def lists(self, *, rules=None, capacity: int | None = None) -> "SparkLists":
        """The list, suppressed list, controls and profit curve again under other caps (see :meth:`relist`)."""
        from churnguard.config import load_outreach_rules

        return self._lists(rules or load_outreach_rules(), capacity)


@dataclass(frozen=True)
class SparkLists:
    """The frames one ranking of a Spark run gives: list, suppressed list, controls, and the profit curve."""

    outreach: Any
    suppressed: Any
    controls: Any
    profit: Any


# --------------------------------------------------------------------------- models on workers


def _model_payload(models: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Each task's model as the text of its saved files (``model.txt``, ``schema.json``)."""
    import tempfile
    from pathlib import Path

    from churnguard.training.artifact import as_artifact

    payload = {}
    for task, model in models.items():
        with tempfile.TemporaryDirectory(prefix="churnguard-model-") as tmp:
            as_artifact(model).estimator.save(tmp)
            payload[task] = {name: (Path(tmp) / name).read_text() for name in ("model.txt", "schema.json")}
    return payload


def _payload_digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _worker_models(digest: str, broadcast) -> dict[str, Any]:
    """The models of `digest`, loaded from the broadcast files on first use in this worker."""
    cached = _WORKER_MODELS.get(digest)
    if cached is not None:
        return cached
    import tempfile
    from pathlib import Path

    from churnguard.training import ChurnModel

    loaded = {}
    for task, files in broadcast.value.items():
        with tempfile.TemporaryDirectory(prefix="churnguard-model-") as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text)
            loaded[task] = ChurnModel.load(tmp)
    _WORKER_MODELS[digest] = loaded
    return loaded


def _resolve_models(models, tracking_uri) -> dict[str, Any]:
    from churnguard.scoring import load_models

    if models is None:
        return load_models(tracking_uri=tracking_uri)
    if isinstance(models, str):
        return load_models(model_uris=[models], tracking_uri=tracking_uri)
    if isinstance(models, Mapping):
        return {task: m for task, m in models.items() if m is not None}
    return load_models(model_uris=list(models), tracking_uri=tracking_uri)


# --------------------------------------------------------------------------- pass 1: score shards


def _features_frame(frame: pd.DataFrame, plan) -> pd.DataFrame:
    """Features of one key from the combined rows, typed as the builders type them."""
    out = {"customer_id": frame["customer_id"].astype("str").reset_index(drop=True)}
    for column, numeric in zip(plan.columns[1:], plan.numeric[1:]):
        values = frame[FEATURE_PREFIX + column].reset_index(drop=True)
        out[column] = values.astype("float64") if numeric else values.astype("category")
    return pd.DataFrame(out)


def _score_shard(raw, plans, set_of, digest, broadcast, rules, as_of, feature_columns, population_of):
    """One shard's scored rows and features: the kernel's predict loop and contact policy."""
    from churnguard.outreach import candidates, member_mask, predict_tasks, scored_customers
    from churnguard.spark.features import shard_feature_frame, shard_tables

    first = next(iter(plans.values()))
    tables = shard_tables(raw, first)
    if tables is None:
        return None
    frames = {key: shard_feature_frame(tables, plan) for key, plan in plans.items()}
    models = _worker_models(digest, broadcast) if set_of else {}
    ids = frames[next(iter(frames))]["customer_id"]
    # The label definition and look-back ride from the driver: workers load bare estimators.
    scored_by = {task: scored_customers(task, tables, as_of, definition=population_of[task][0],
                                        lookback_days=population_of[task][1])
                 for task in models}
    part = predict_tasks(models, frames, set_of, ids, scored_by)
    scored = candidates(part, tables, as_of, rules, churn_population=scored_by.get("churn"))
    maintenance = scored_by.get("maintenance")
    scored[ELIGIBLE_MAINTENANCE] = (np.ones(len(part), dtype=bool) if maintenance is None
                                    else member_mask(part["customer_id"], maintenance))
    out = scored[[name for name, _ in SCORED_FIELDS]].reset_index(drop=True)
    # Features of every key; a column two keys share is taken from the first (as the reasons do).
    features = {}
    for column, (key, numeric) in feature_columns.items():
        values = frames[key][column].reset_index(drop=True)
        features[FEATURE_PREFIX + column] = (values.astype("float64") if numeric
                                             else values.astype(object).where(values.notna(), None))
    return pd.concat([out, pd.DataFrame(features, index=out.index)], axis=1)


def _to_arrow_table(frame: pd.DataFrame, arrow_schema):
    import pyarrow as pa

    arrays = []
    for f in arrow_schema:
        values = frame[f.name]
        if pa.types.is_floating(f.type):
            arrays.append(pa.array(values.to_numpy(dtype="float64", na_value=np.nan), f.type))
        elif pa.types.is_boolean(f.type):
            arrays.append(pa.array(values.to_numpy(dtype=bool), f.type))
        else:
            arrays.append(pa.array(values.astype(object).where(values.notna(), None).tolist(), f.type))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


# --------------------------------------------------------------------------- typical values


def _typical_spark(scored, models, plans, set_of, feature_columns, *, drift_sample: int, n_customers: int):
    """``outreach.typical_values`` on Spark: per task the medians of its customers' numeric features."""
    from pyspark.sql import functions as F

    from churnguard.outreach import merge_medians

    medians = []
    for task in models:
        plan = plans[set_of[task]]
        rows = scored.where(F.col(ELIGIBLE_MAINTENANCE)) if task == "maintenance" else scored
        if n_customers > drift_sample:
            # The single-machine path medians a seeded sample of this size too.
            rows = rows.sample(fraction=min(1.0, drift_sample / n_customers), seed=0)
        numeric = [c for c, num in zip(plan.columns[1:], plan.numeric[1:]) if num]
        if not numeric:
            continue
        # NaN is a value to Spark and missing to pandas: make it null before the percentile.
        aggs = [
            F.percentile(F.nanvl(F.col(f"`{FEATURE_PREFIX + c}`"), F.lit(None).cast("double")), F.lit(0.5)).alias(f"m{i}")
            for i, c in enumerate(numeric)
        ] + [F.count(F.lit(1)).alias("__n")]
        row = rows.agg(*aggs).collect()[0]
        if row["__n"] == 0:
            continue
        medians.append(pd.Series([np.nan if row[f"m{i}"] is None else float(row[f"m{i}"]) for i in range(len(numeric))],
                                 index=numeric, dtype="float64"))
    return merge_medians(medians)


# --------------------------------------------------------------------------- ranking


def _positions(frame, *, by: str | None, n_buckets: int, name: str):
    """0-based position in (rank_tier asc, priority desc, customer_id asc) order, within `by` when given.

    Rows fall into priority buckets whose bounds are quantiles taken once on the
    driver (a fixed function of the row, so every job sees the same buckets), the
    buckets of a later ``rank_tier`` after all of an earlier one's; each (group,
    bucket) is numbered in one task and shifted by the sizes of the buckets above it.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    probabilities = [i / n_buckets for i in range(1, n_buckets)]
    bounds = sorted(set(frame.approxQuantile("priority", probabilities, 0.001))) if probabilities else []
    bucket = F.lit(0)
    for bound in bounds:  # higher priority, lower bucket
        bucket = bucket + F.when(F.col("priority") < F.lit(bound), 1).otherwise(0)
    # win_back (tier 1) ranks after every other action, whatever its priority.
    bucket = bucket + F.col("rank_tier").cast("int") * F.lit(len(bounds) + 1)
    keyed = frame.withColumn("__bucket", bucket.cast("int"))
    keys = ([by] if by else []) + ["__bucket"]
    counts = keyed.groupBy(*keys).count().toPandas().sort_values(keys, kind="mergesort")
    group = counts[by] if by else pd.Series(0, index=counts.index)
    counts["__offset"] = counts.groupby(group.to_numpy(), sort=False)["count"].cumsum() - counts["count"]
    rows = [tuple(r) for r in counts[keys + ["__offset"]].astype(object).itertuples(index=False)]
    rows = [(*r[:-2], int(r[-2]), int(r[-1])) for r in rows]
    schema = ", ".join(([f"`{by}` string"] if by else []) + ["__bucket int", "__offset bigint"])
    offsets = keyed.sparkSession.createDataFrame(rows, schema)
    window = Window.partitionBy(*keys).orderBy(F.col("priority").desc(), F.col("customer_id").asc())
    return (
        keyed.join(F.broadcast(offsets), on=keys, how="left")
        .withColumn(name, F.col("__offset") + F.row_number().over(window) - 1)
        .drop("__bucket", "__offset")
    )


def _rank(eligible, rules, capacity, n_buckets):
    """``outreach.rank_outreach`` with Spark operations: per-action caps, rank, capacity."""
    from pyspark.sql import functions as F

    ranked = eligible
    caps = dict(rules.capacity_per_action or {})
    if caps:
        ranked = _positions(ranked, by="action", n_buckets=n_buckets, name="__position")
        cap = F.lit(None).cast("double")
        for action, limit in caps.items():
            cap = F.when(F.col("action") == F.lit(action), F.lit(float(limit))).otherwise(cap)
        ranked = ranked.where(F.coalesce(cap, F.lit(float("inf"))) > F.col("__position")).drop("__position")
    ranked = _positions(ranked, by=None, n_buckets=n_buckets, name="rank").withColumn("rank", F.col("rank") + 1)
    if capacity is not None:
        ranked = ranked.where(F.col("rank") <= int(capacity))
    return ranked


def _held_out(eligible, listed, n_buckets):
    """``outreach.held_out`` with Spark operations: the controls within the list's reach, with their rank.

    Every candidate's position in list order; per action (a few rows, collected) whether
    the caps left a treatment candidate off and the position of its last listed one; the
    controls above that position (or all of the action's, when nothing was cut).
    """
    from pyspark.sql import functions as F

    from churnguard.outreach import CONTROL

    ordered = _positions(eligible, by=None, n_buckets=n_buckets, name="__order")
    flagged = ordered.join(listed.select("customer_id", F.lit(True).alias("__listed")), on="customer_id", how="left")
    is_control = F.col("group") == F.lit(CONTROL)
    stats = (flagged.where(~is_control).groupBy("action")
             .agg(F.max(F.when(F.col("__listed"), F.col("__order"))).alias("last"),
                  F.max(F.when(F.col("__listed").isNull(), F.lit(1)).otherwise(F.lit(0))).alias("cut"))
             .collect())
    reach = F.lit(float("inf"))
    for row in stats:
        if row["cut"]:
            limit = -1.0 if row["last"] is None else float(row["last"])
            reach = F.when(F.col("action") == F.lit(row["action"]), F.lit(limit)).otherwise(reach)
    controls = flagged.where(is_control & (F.col("__order").cast("double") < reach)).drop("__order", "__listed")
    return _positions(controls, by=None, n_buckets=n_buckets, name="rank").withColumn("rank", F.col("rank") + 1)


# --------------------------------------------------------------------------- score_spark


def _spark_schema(fields):
    return ", ".join(f"`{name}` {kind}" for name, kind in fields)


def score_spark_result(
    spark,
    tables_or_uri,
    as_of,
    models=None,
    *,
    rules=None,
    capacity: int | None = None,
    n_shards: int | None = None,
    tracking_uri: str | None = None,
    now: pd.Timestamp | None = None,
    drift_sample: int = 100_000,
) -> SparkScoreResult:
    """:func:`score_spark`, returning also the persisted rows, warnings and typical values."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    from churnguard.config import TASKS, load_outreach_rules
    from churnguard.outreach import feature_set_groups, merge_catalogues
    from churnguard.scoring import model_info
    from churnguard.spark.features import SHARD, empty_table, prepare_shards, split_shard
    from churnguard.timeline import coerce_as_of

    rules = rules or load_outreach_rules()
    as_of = coerce_as_of(as_of)
    models = _resolve_models(models, tracking_uri)
    if unknown := set(models) - set(TASKS):
        raise ValueError(f"unknown task(s) {sorted(unknown)}; expected {TASKS}")

    # One plan per distinct stored feature set (both tasks usually share one), as score() does.
    sets, set_of = feature_set_groups(models)
    if not sets:
        sets["default"] = None
    prepared = {key: prepare_shards(spark, tables_or_uri, as_of, feature_set=fs, n_shards=n_shards, now=now)
                for key, fs in sets.items()}
    first = next(iter(prepared.values()))
    plans = {key: p.plan for key, p in prepared.items()}
    feature_columns: dict[str, tuple[str, bool]] = {}
    for key, plan in plans.items():
        for column, numeric in zip(plan.columns[1:], plan.numeric[1:]):
            feature_columns.setdefault(column, (key, numeric))

    from churnguard.training.artifact import as_artifact

    population_of = {task: (as_artifact(m).label, as_artifact(m).lookback_days) for task, m in models.items()}
    payload = _model_payload(models)
    digest = _payload_digest(payload)
    broadcast = spark.sparkContext.broadcast(payload)
    fields = SCORED_FIELDS + [(FEATURE_PREFIX + c, "double" if num else "string")
                              for c, (_, num) in feature_columns.items()]
    to_arrow = {"string": pa.string(), "double": pa.float64(), "boolean": pa.bool_(), "bigint": pa.int64()}
    arrow_schema = pa.schema([(name, to_arrow[kind]) for name, kind in fields])
    layout = first.plan.layout

    def score_of(batch):
        frame = _score_shard(split_shard(batch, layout), plans, set_of, digest, broadcast, rules, as_of, feature_columns,
                             population_of)
        if frame is None:
            return arrow_schema.empty_table()
        return _to_arrow_table(frame, arrow_schema)

    from pyspark import StorageLevel

    scored = first.long.groupBy(SHARD).applyInArrow(score_of, _spark_schema(fields))
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    n_customers = scored.count()

    typical = _typical_spark(scored, models, plans, set_of, feature_columns,
                             drift_sample=drift_sample, n_customers=n_customers)
    empty_tables = {name: empty_table(name, [c for c, _ in layout[name]], first.plan.static_kinds)
                    for name in first.plan.surviving}
    catalogue = merge_catalogues(models, empty_tables, as_of, {k: p.feature_set for k, p in plans.items()}, set_of)

    eligible = scored.where(F.col("eligible")).select("customer_id", "priority", "action", "rank_tier", "group")
    n_buckets = max(1, first.n_shards, math.ceil(n_customers / CUSTOMERS_PER_BUCKET))

    def lists(rules, capacity):
        return _lists(rules, capacity)

    def _lists(rules, capacity):
        return _outreach_lists(eligible, scored, rules, capacity, n_buckets, models, plans, set_of, key_order,
                               digest, broadcast, catalogue, typical)

    key_order = list(dict.fromkeys(set_of.values()))
    made = lists(rules, capacity)
    feature_tasks = {task: [c for c in plans[set_of[task]].columns[1:]] for task in models}
    return SparkScoreResult(made.outreach, made.suppressed, scored, list(first.warnings), typical,
                            {task: model_info(m) for task, m in models.items()}, lists, catalogue, as_of, rules,
                            feature_tasks, made.controls, made.profit, None if capacity is None else int(capacity))


def _outreach_lists(eligible, scored, rules, capacity, n_buckets, models, plans, set_of, key_order,
                    digest, broadcast, catalogue, typical):
    """Rank the treatment rows, find the controls in reach, explain both, and shape the output frames."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    from churnguard.outreach import (
        CONTROL,
        CONTROL_COLUMNS,
        OUTREACH_COLUMNS,
        PROBABILITY,
        SUPPRESSED_COLUMNS,
        control_frame,
        explain_chunk,
        explainers,
        outreach_frame,
        profit_curve,
        suppressed_frame,
    )

    to_arrow = {"string": pa.string(), "double": pa.float64(), "boolean": pa.bool_()}
    # Ranked once without the overall capacity: the profit curve runs over all of it, the
    # list is its head (as rank_outreach applies capacity last).
    uncapped = _rank(eligible.where(F.col("group") != F.lit(CONTROL)), rules, None, n_buckets)
    # The priorities in rank order come to the driver: 8 bytes a listed customer.
    curve = profit_curve(uncapped.select("rank", "priority").orderBy("rank").toPandas()["priority"])
    listed = (uncapped if capacity is None else uncapped.where(F.col("rank") <= int(capacity))).select(
        "customer_id", "rank")
    held = _held_out(eligible, listed, n_buckets).select("customer_id", "rank")
    n_listed = listed.count() if models else 0
    n_held = held.count() if models else 0
    scored_columns = [name for name, _ in SCORED_FIELDS]
    listed_rows = listed.join(scored, on="customer_id", how="inner")
    held_rows = held.join(scored, on="customer_id", how="inner")

    n_reasons = rules.n_reasons

    def explained_of(shape, arrow_schema, n_rows):
        return lambda batches: _explained_rows(batches, shape, arrow_schema, n_rows)

    def _explained_rows(batches, shape, arrow_schema, n_rows):
        loaded = _worker_models(digest, broadcast) if models else {}
        fast = explainers(loaded, n_rows) if loaded else {}
        for batch in batches:
            if batch.num_rows == 0:
                continue
            frame = batch.to_pandas()
            frame["customer_id"] = frame["customer_id"].astype("str")
            rows = frame[["rank", *scored_columns]].set_index("customer_id", drop=False)
            if loaded:
                frames = {key: _features_frame(frame, plans[key]) for key in key_order}
                explained = explain_chunk(loaded, frames, set_of, rows.drop(columns="customer_id"), catalogue,
                                          fast, typical=typical, n_reasons=n_reasons, rules=rules)
            else:
                explained = pd.DataFrame(index=pd.Index([], name="customer_id"))
            out = shape(rows.reset_index(drop=True), explained)
            yield from _to_arrow_table(out.astype({"rank": "int64"}), arrow_schema).to_batches()

    outreach_fields = [("rank", "bigint"), ("customer_id", "string"), ("action", "string"), ("channel", "string"),
                       ("priority", "double"), ("churn_probability", "double"), ("maintenance_probability", "double"),
                       ("value_at_risk", "double"), ("reason_1", "string"), ("reason_2", "string"),
                       ("reason_3", "string"), ("explanation", "string")]
    assert [n for n, _ in outreach_fields] == OUTREACH_COLUMNS
    outreach_arrow = pa.schema([(n, pa.int64() if k == "bigint" else to_arrow[k]) for n, k in outreach_fields])
    outreach = listed_rows.mapInArrow(explained_of(outreach_frame, outreach_arrow, n_listed),
                                      _spark_schema(outreach_fields)).orderBy("rank")
    control_fields = [*outreach_fields, ("group", "string")]
    assert [n for n, _ in control_fields] == CONTROL_COLUMNS
    control_arrow = pa.schema([(n, pa.int64() if k == "bigint" else to_arrow[k]) for n, k in control_fields])
    controls = held_rows.mapInArrow(explained_of(control_frame, control_arrow, n_held),
                                    _spark_schema(control_fields)).orderBy("rank")

    suppressed_fields = [("customer_id", "string"), ("reason", "string"), ("priority", "double"),
                         ("churn_probability", "double"), ("maintenance_probability", "double")]
    assert [n for n, _ in suppressed_fields] == SUPPRESSED_COLUMNS
    suppressed_arrow = pa.schema([(n, to_arrow[k]) for n, k in suppressed_fields])

    def suppressed_of(batches):
        for batch in batches:
            yield from _to_arrow_table(suppressed_frame(batch.to_pandas()), suppressed_arrow).to_batches()

    suppressed = (
        scored.where(F.col("suppressed_reason") != "")
        .select("customer_id", "suppressed_reason", "priority", *PROBABILITY.values())
        .mapInArrow(suppressed_of, _spark_schema(suppressed_fields))
        .orderBy(F.col("priority").desc(), F.col("customer_id").asc())
    )
    return SparkLists(outreach, suppressed, controls, curve)


def report_result(result: SparkScoreResult, *, drift_sample: int = 100_000):
    """The Spark run collected as a :class:`churnguard.scoring.ScoreResult`, for :func:`churnguard.report.write_report`.

    The list and the suppressed list come back whole; every scored customer's
    probabilities, action and status too (a few numbers each, for the report's counts
    and histograms); the features only as a seeded sample of `drift_sample` rows per
    task for the drift check, as the single-machine path samples them.

    Examples
    --------
    >>> report = report_result(score_spark_result(spark, "s3a://lake/crm", "2024-06-01"))  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    from churnguard.outreach import CONTEXT_COLUMNS, PROBABILITY
    from churnguard.scoring import ScoreResult

    outreach = result.outreach.toPandas()
    suppressed = result.suppressed.toPandas()
    controls = result.controls.toPandas()
    scored = result.scored
    listed_ids = result.outreach.select("customer_id", F.lit(True).alias("__listed"))
    held_ids = result.controls.select("customer_id", F.lit(True).alias("__held"))
    status = (
        F.when(F.col("__listed"), F.lit("listed"))
        .when(F.col("__held"), F.lit("control"))
        .when(F.col("suppressed_reason") != "", F.lit("suppressed"))
        .when(~F.col("above_threshold"), F.lit("below_threshold"))
        .otherwise(F.lit("over_capacity"))
    )
    rows = (scored.join(listed_ids, on="customer_id", how="left").join(held_ids, on="customer_id", how="left")
            .select("customer_id", *PROBABILITY.values(), "value", "priority", "action", "channel", "group",
                    status.alias("status"))
            .orderBy("customer_id").toPandas())
    present = set(scored.columns)
    context_features = [f for f in CONTEXT_COLUMNS.values() if FEATURE_PREFIX + f in present]
    context = (scored.join(result.outreach.select("customer_id"), on="customer_id", how="inner")
               .select("customer_id", *[F.col(f"`{FEATURE_PREFIX + f}`").alias(f) for f in context_features])
               .toPandas().set_index("customer_id"))
    from churnguard.outreach import listing_context

    explanations = listing_context(context)
    n = max(len(rows), 1)
    features = {}
    for task, columns in result.feature_tasks.items():
        frame = scored if task != "maintenance" else scored.where(F.col(ELIGIBLE_MAINTENANCE))
        if n > drift_sample:
            frame = frame.sample(fraction=min(1.0, drift_sample / n), seed=0)
        wanted = [c for c in columns if FEATURE_PREFIX + c in present]
        sample = frame.select("customer_id", *[F.col(f"`{FEATURE_PREFIX + c}`").alias(c) for c in wanted]).toPandas()
        features[task] = sample.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    return ScoreResult(
        as_of=result.as_of, outreach=outreach, suppressed=suppressed, scored=rows, features=features,
        models=result.models, catalogue=result.catalogue, explanations=explanations, rules=result.rules,
        controls=controls, profit=result.profit, capacity=result.capacity,
    )


def score_spark(
    spark,
    tables_or_uri,
    as_of,
    models=None,
    *,
    rules=None,
    capacity: int | None = None,
    n_shards: int | None = None,
    tracking_uri: str | None = None,
    now: pd.Timestamp | None = None,
):
    """Score every customer on Spark and build the ranked, explained outreach list.

    The same decisions as :func:`churnguard.scoring.score`, made by the same
    functions: features per shard of customers, probabilities from the models
    loaded once per Python worker, suppression, priority, action and channel per
    shard; ranking, per-action caps and `capacity` as Spark operations; reasons and
    explanations only for the listed customers.

    Parameters
    ----------
    spark : SparkSession
    tables_or_uri : dict of str to pyspark DataFrame, or str
        Raw contract tables, or a data directory URI (see ``read_tables_spark``).
    as_of : Timestamp or str
        Scoring date: features use events strictly before it.
    models : dict of task -> model, list of model URIs, or None
        Loaded models (``ModelArtifact`` or ``ChurnModel``), model URIs, or None
        for each task's registered champion in `tracking_uri`.
    rules : OutreachRules, optional
        Defaults to the packaged ``outreach.toml``.
    capacity : int, optional
        At most this many customers on the list (after per-action caps).
    n_shards : int, optional
        Customer shards; by default one per 100,000 customers, at least one per core.
    tracking_uri : str, optional
        MLflow tracking URI for model URIs and champions.
    now : Timestamp, optional
        Validation's "now"; default the current UTC time.

    Returns
    -------
    (outreach, suppressed) : tuple of pyspark.sql.DataFrame
        Columns ``OUTREACH_COLUMNS`` ordered by rank and ``SUPPRESSED_COLUMNS``
        ordered by customer_id. Both read the persisted per-customer rows; see
        :func:`score_spark_result` to unpersist them.

    Examples
    --------
    >>> outreach, suppressed = score_spark(spark, "s3a://lake/crm", "2024-06-01", capacity=5000)  # doctest: +SKIP
    >>> write_outreach_spark(outreach, suppressed, "s3a://lake/lists/outreach.parquet")  # doctest: +SKIP
    """
    result = score_spark_result(spark, tables_or_uri, as_of, models, rules=rules, capacity=capacity,
                                n_shards=n_shards, tracking_uri=tracking_uri, now=now)
    return result.outreach, result.suppressed


# --------------------------------------------------------------------------- writing


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def _local_path(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path if uri.startswith("file:") else uri


def sibling_uri(uri: str, tag: str) -> str:
    """``s3a://b/lists/outreach.parquet`` + ``suppressed`` -> ``s3a://b/lists/outreach.suppressed.parquet``.

    Examples
    --------
    >>> sibling_uri("s3a://b/lists/outreach.parquet", "suppressed")
    's3a://b/lists/outreach.suppressed.parquet'
    """
    head, _, name = str(uri).rstrip("/").rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    new = f"{stem}.{tag}.{suffix}" if dot else f"{name}.{tag}"
    return f"{head}/{new}" if head else new


def _write_atomically(spark, frames: list[tuple[Any, str, str]]) -> None:
    """Write each Spark frame to a temporary sibling, then rename all onto their targets.

    Nothing is moved until every frame is written; a failure removes the temporary
    directories and leaves the targets as they were.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    written = []
    try:
        for frame, target, fmt in frames:
            path = Path(target)
            fs = path.getFileSystem(conf)
            tmp = Path(path.getParent(), f".{path.getName()}.{uuid.uuid4().hex}.tmp")
            written.append((fs, tmp, path))
            writer = frame.write.mode("error")
            if fmt == "csv":
                writer.option("header", "true").csv(tmp.toString())
            else:
                writer.parquet(tmp.toString())
        for fs, tmp, path in written:
            if fs.exists(path):
                fs.delete(path, True)
            if not fs.rename(tmp, path):
                raise OSError(f"could not rename {tmp.toString()} to {path.toString()}")
    finally:
        for fs, tmp, _ in written:
            if fs.exists(tmp):
                fs.delete(tmp, True)


def _suffix(uri: str) -> str:
    name = str(uri).rstrip("/").rpartition("/")[2]
    return "." + name.rpartition(".")[2] if "." in name else ""


def write_outreach_spark(outreach, suppressed, out: str, *, controls=None,
                         collect_csv_below: int = 5_000_000) -> tuple[str, str]:
    """Write the list to `out`, who was suppressed to its ``.suppressed`` sibling and the controls to ``.control``.

    All or nothing. ``.parquet``: Spark writes a Parquet directory (part files in rank
    order) to a temporary sibling, renamed onto `out` through the Hadoop FileSystem API
    once every list is complete, so any URI Spark writes works (``s3a://``,
    ``abfss://``...). A local ``.csv`` is collected and written by the single-machine
    writer (the same bytes as ``churnguard score``); a remote ``.csv`` becomes a
    one-part CSV directory. `controls` (:attr:`SparkScoreResult.controls`; None: an
    empty control file with its header) go to ``sibling_uri(out, "control")``.

    Returns
    -------
    (str, str)
        The list's and the suppressed list's paths.
    """
    from churnguard.outreach import CONTROL_COLUMNS, write_lists

    out = str(out)
    suffix = _suffix(out)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{out}: unsupported output type {suffix!r}; use .csv or .parquet")
    suppressed_out = sibling_uri(out, "suppressed")
    control_out = sibling_uri(out, "control")
    spark = outreach.sparkSession
    if suffix == ".csv" and _is_local(out):
        listed = outreach.limit(collect_csv_below + 1).toPandas()
        if len(listed) > collect_csv_below:
            raise ValueError(f"{out}: more than {collect_csv_below:,} rows to collect; write .parquet instead")
        write_lists(_local_path(out), listed, suppressed.toPandas(),
                    controls=None if controls is None else controls.toPandas())
        return out, suppressed_out
    if controls is None:
        fields = dict(outreach.dtypes)
        schema = ", ".join(f"`{c}` {fields.get(c, 'string')}" for c in CONTROL_COLUMNS)
        controls = spark.createDataFrame([], schema)
    if suffix == ".csv":
        _write_atomically(spark, [(outreach.coalesce(1), out, "csv"), (suppressed.coalesce(1), suppressed_out, "csv"),
                                  (controls.coalesce(1), control_out, "csv")])
    else:
        _write_atomically(spark, [(outreach, out, "parquet"), (suppressed, suppressed_out, "parquet"),
                                  (controls, control_out, "parquet")])
    return out, suppressed_out


def write_table_spark(frame, out: str) -> str:
    """One Spark frame to `out` atomically: local ``.csv`` collected, else as :func:`write_outreach_spark`."""
    from churnguard.io import write_table

    out = str(out)
    suffix = _suffix(out)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{out}: unsupported output type {suffix!r}; use .csv or .parquet")
    if suffix == ".csv" and _is_local(out):
        write_table(frame.toPandas(), _local_path(out))
    else:
        _write_atomically(frame.sparkSession, [(frame.coalesce(1) if suffix == ".csv" else frame, out, suffix[1:])])
    return out


# --------------------------------------------------------------------------- CLI entry points
#
# They return what they did and print nothing: churnguard.cli words every message, for
# both engines, in one place.


@dataclass(frozen=True)
class SparkScoreRun:
    """What :func:`score_command_spark` wrote.

    Attributes
    ----------
    n_listed, n_suppressed : int
        Rows of the list and of its ``.suppressed`` sibling.
    path, suppressed_path : str
        Where they were written.
    warnings : list of Problem
        Validation's warnings, summed over shards.
    held_out : dict of str -> int
        Controls per action in the ``.control`` sibling.
    control_path : str
        Where the controls were written.
    profit : ProfitCurve or None
        The expected profit of calling the top k of the uncapped list.
    """

    n_listed: int
    n_suppressed: int
    path: str
    suppressed_path: str
    warnings: list = field(default_factory=list)
    held_out: dict = field(default_factory=dict)
    control_path: str = ""
    profit: Any = None


@dataclass(frozen=True)
class SparkFeaturesRun:
    """What :func:`features_command_spark` wrote: rows, feature columns, path, warnings."""

    n_customers: int
    n_features: int
    path: str
    warnings: list = field(default_factory=list)


def score_command_spark(
    data_uri: str,
    as_of,
    out: str,
    *,
    models=None,
    capacity: int | None = None,
    model_uris=(),
    tracking_uri: str | None = None,
    rules=None,
    spark_master: str | None = None,
    n_shards: int | None = None,
    report: str | None = None,
) -> SparkScoreRun:
    """``churnguard score --engine spark``: score, write the list and its sibling.

    `models` are loaded models (default: `model_uris`, else each task's champion in
    `tracking_uri`). `rules` is a path to an outreach-rules TOML (or an
    ``OutreachRules``, or None for the packaged one). Raises :class:`NoModelError`
    when there is nothing to score with, ``ValidationError`` /
    ``SchemaMismatchError`` on bad input, as the single-machine command does. With
    `report` (a local path), the HTML report is written there too
    (:func:`report_result`, :func:`churnguard.report.write_report`).

    Examples
    --------
    >>> run = score_command_spark("s3a://lake/crm", "2024-06-01", "s3a://lake/lists/outreach.parquet")  # doctest: +SKIP
    >>> run.n_listed, run.path  # doctest: +SKIP
    """
    from churnguard.config import OutreachRules, load_outreach_rules
    from churnguard.outreach import held_out_counts
    from churnguard.scoring import load_models
    from churnguard.spark.session import spark_session

    if models is None:
        models = load_models(model_uris=tuple(model_uris or ()), tracking_uri=tracking_uri)
    if not models:
        raise NoModelError("no registered model to score with; run `churnguard train` first or pass --model")
    rules = rules if isinstance(rules, OutreachRules) else load_outreach_rules(rules)
    spark = spark_session(spark_master)
    result = score_spark_result(spark, str(data_uri), as_of, models, rules=rules, capacity=capacity,
                                n_shards=n_shards, tracking_uri=tracking_uri)
    try:
        path, suppressed_path = write_outreach_spark(result.outreach, result.suppressed, str(out),
                                                     controls=result.controls)
        n_listed, n_suppressed = result.outreach.count(), result.suppressed.count()
        actions = result.outreach.select("action").distinct().toPandas()
        held = held_out_counts(result.controls.select("action").toPandas(), actions)
        if report is not None:
            from churnguard.report import write_report

            write_report(report_result(result), report, models=models)
    finally:
        result.scored.unpersist()
    return SparkScoreRun(n_listed, n_suppressed, path, suppressed_path, list(result.warnings), held,
                         sibling_uri(str(out), "control"), result.profit)


def features_command_spark(
    data_uri: str,
    as_of,
    out: str,
    *,
    feature_set=None,
    spark_master: str | None = None,
    n_shards: int | None = None,
) -> SparkFeaturesRun:
    """``churnguard features --engine spark``: build and write one row per customer.

    `feature_set` is a feature-set TOML path, a ``FeatureSet`` or None (the packaged one).
    Rows are written ordered by customer_id, atomically (see :func:`write_table_spark`).

    Examples
    --------
    >>> run = features_command_spark("s3a://lake/crm", "2024-06-01", "s3a://lake/features.parquet")  # doctest: +SKIP
    >>> run.n_customers, run.n_features  # doctest: +SKIP
    """
    from churnguard.config import FeatureSet, load_feature_set
    from churnguard.spark.features import shard_features
    from churnguard.spark.session import spark_session
    from churnguard.timeline import coerce_as_of

    fs = feature_set if isinstance(feature_set, FeatureSet) else load_feature_set(feature_set)
    spark = spark_session(spark_master)
    result = shard_features(spark, str(data_uri), coerce_as_of(as_of), feature_set=fs, n_shards=n_shards)
    frame = result.frame.orderBy("customer_id").persist()
    try:
        write_table_spark(frame, str(out))
        n = frame.count()
    finally:
        frame.unpersist()
    return SparkFeaturesRun(n, len(frame.columns) - 1, str(out), list(result.warnings))


__all__ = [
    "NoModelError",
    "SparkFeaturesRun",
    "SparkLists",
    "SparkScoreResult",
    "SparkScoreRun",
    "features_command_spark",
    "score_command_spark",
    "score_spark",
    "score_spark_result",
    "sibling_uri",
    "spark_udf",
    "write_outreach_spark",
    "write_table_spark",
]
