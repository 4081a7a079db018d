"""Feature vectors on Apache Spark: the single-machine builders, run once per shard of customers.

There is no second implementation of the feature logic here. Customers are split
into `n_shards` shards on a stable hash of ``customer_id`` (Spark's ``xxhash64`` of
the id as text, modulo `n_shards`: the same shard on every run and every machine,
unlike Python's salted ``hash``), every event row travels to its customer's shard,
and each shard runs the ordinary pandas path, ``validate_tables`` then
``build_features``, on its own customers and their events.

How the tables meet in one shard
--------------------------------
The families need several tables at once (service features read assets and
service events, usage features read usage, assets and service events), and
``cogroup`` joins only two grouped frames. So every table is stacked into one
*long* frame: ``__shard``, ``__table`` and a few typed *slot* columns that the
tables share (a table's first string column and another table's first string
column land in the same slot ``__string_0``). The frame is as wide as the widest
table, not as wide as all tables together, so the shuffle moves little more than
the data itself. ``groupBy("__shard").applyInArrow`` hands each shard to Python as
one Arrow table, which is split back into the contract tables by the ``__table``
tag and converted to pandas exactly as ``pandas.read_parquet`` would (same
dtypes, so validation types the values the same way).

Other designs were weighed: ``mapInPandas`` over customers with each task reading
its shard's events from Parquet needs the lake laid out by shard; per-table
``applyInPandas`` cannot compute cross-table features; one JSON payload column
costs a serialisation per event.

Service events are routed to the shard of their asset's owner (the asset register
is the authority on ownership, as in validation); a service event whose asset is
unknown goes to the shard of its own ``customer_id``, else of its ``asset_id``, so
it is still counted once in validation's warnings.

What must be decided globally, and is
-------------------------------------
Some properties belong to the whole population, not to a shard. They are settled
once on the driver before the features are built, so every shard builds identical
columns:

* the data-derived value lists (channels, top-K topics, top-K usage events): each
  shard counts its validated values before `as_of`; the counts are summed and the
  single-machine ``resolve_feature_set`` runs on a small frame with the same
  ranking (ties stay ties, so the same alphabetical tie-break applies);
* which tables survive validation (a table emptied by validation drops its family);
* whether a static customer attribute is a number or a category, and which text
  attributes are identifier-like (excluded): the latter is added to
  ``customers.exclude`` of the resolved feature set;
* uniqueness of ``assets.asset_id`` (an asset could sit in two shards).

This takes two passes over the data: the first validates every shard and returns
only problems and counts (a few rows per shard), the second validates again and
builds the features. A feature set that is already resolved (as stored with a
trained model) still needs the first pass for validation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from churnguard.config import FeatureSet, load_feature_set
from churnguard.timeline import coerce_as_of
from churnguard.validation import (
    BOOL,
    ID,
    N_EXAMPLES,
    NUMBER,
    TABLES,
    TEXT,
    TIMESTAMP,
    Problem,
    ValidationError,
    validate_tables,
)

SHARD = "__shard"
TABLE = "__table"
# Stands in for the customers of a shard that has events but no customers, so that
# validation still runs (and counts the events of unknown customers) there.
SENTINEL_ID = "\x00churnguard-spark-no-customer"
# Customers per shard when n_shards is not given: a shard of this size with the
# default history volumes needs about 1-2 GiB in one Python worker.
CUSTOMERS_PER_SHARD = 100_000
# Warnings that describe a whole table: derived once globally, never summed per shard.
_TABLE_LEVEL_CHECKS = ("not_empty (table dropped)", "not_empty_after_drops (table dropped)")
_STATS_SCHEMA = (
    "kind string, tbl string, col string, chk string, severity string, n long, shard long, examples string"
)


@dataclass
class ShardedFeatures:
    """What :func:`shard_features` produced.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        One row per population customer: ``customer_id`` first, then the feature
        columns (double for numbers, string for categories), not sorted.
    feature_set : FeatureSet
        The feature set resolved once for all shards.
    warnings : list of Problem
        Validation's warnings, counts summed over shards.
    n_shards : int
        Number of shards the customers were split into.
    """

    frame: Any
    feature_set: FeatureSet
    warnings: list[Problem] = field(default_factory=list)
    n_shards: int = 1


# --------------------------------------------------------------------------- reading


def _exists(spark, uri: str) -> bool:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path)


def read_tables_spark(spark, data: str) -> dict[str, Any]:
    """Read the contract tables of a data directory as raw Spark DataFrames.

    Each table is ``NAME.parquet`` (a file or a directory of part files) or
    ``NAME.csv`` under `data`, which may be any URI Spark reads (``file:``,
    ``hdfs:``, ``s3a:``, ``abfss:``...). CSV columns are read as text, like the
    single-machine reader, so validation decides what a bad value is.

    Raises
    ------
    ValidationError
        When ``customers`` is missing or a table exists as both CSV and Parquet.

    Examples
    --------
    >>> tables = read_tables_spark(spark, "s3a://lake/crm/2024-06-01")  # doctest: +SKIP
    >>> sorted(tables)  # doctest: +SKIP
    ['customers', 'interactions', 'purchases']
    """
    base = str(data).rstrip("/")
    tables: dict[str, Any] = {}
    errors: list[Problem] = []
    for name in TABLES:
        found = [suffix for suffix in (".parquet", ".csv") if _exists(spark, f"{base}/{name}{suffix}")]
        if len(found) > 1:
            errors.append(Problem(name, "*", "single_file", 2, (f"{name}.csv", f"{name}.parquet")))
            continue
        if not found:
            if name == "customers":
                errors.append(Problem(name, "*", "table_present", 0, (f"{base}/customers.csv|.parquet",)))
            continue
        path = f"{base}/{name}{found[0]}"
        if found[0] == ".parquet":
            tables[name] = spark.read.parquet(path)
        else:
            # Text only, and only empty fields are missing: "NA" could be a real topic.
            tables[name] = spark.read.option("header", True).option("inferSchema", False).csv(path)
    if errors:
        raise ValidationError(errors)
    return tables


def _as_spark_tables(spark, tables) -> dict[str, Any]:
    if isinstance(tables, dict):
        unknown = [name for name in tables if name not in TABLES]
        # Non-contract tables (the generator's `truth`) are ignored, as by validation.
        return {name: frame for name, frame in tables.items() if name not in unknown and frame is not None}
    return read_tables_spark(spark, tables)


# --------------------------------------------------------------------------- sharding


def _id_key(column, dtype):
    """An id as text, as validation will see it: integral numbers lose their ``.0``."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        return F.when(column == F.floor(column), column.cast("long").cast("string")).otherwise(column.cast("string"))
    return column.cast("string")


def shard_of(key, n_shards: int):
    """The shard (0..n_shards-1) of an id given as a text column: stable everywhere.

    Examples
    --------
    >>> from pyspark.sql import functions as F  # doctest: +SKIP
    >>> customers.withColumn("shard", shard_of(F.col("customer_id"), 16))  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(key), F.lit(int(n_shards))).cast("long")


def _slot_name(dtype) -> str:
    return "__" + "".join(ch if ch.isalnum() else "_" for ch in dtype.simpleString())


def _layout(tables: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per table, (column, slot) pairs: the i-th column of a type goes to that type's slot i."""
    layout: dict[str, list[tuple[str, str]]] = {}
    for name, frame in tables.items():
        seen: dict[str, int] = {}
        pairs = []
        for f in frame.schema.fields:
            base = _slot_name(f.dataType)
            pairs.append((f.name, f"{base}_{seen.get(base, 0)}"))
            seen[base] = seen.get(base, 0) + 1
        layout[name] = pairs
    return layout


def _long_frame(tables: dict[str, Any], layout, n_shards: int):
    """All tables stacked into one frame of (__shard, __table, slots...)."""
    from pyspark.sql import functions as F

    def keyed(frame, column):
        return _id_key(F.col(column), frame.schema[column].dataType)

    shard_cols: dict[str, Any] = {}
    for name, frame in tables.items():
        if "customer_id" in frame.columns:
            shard_cols[name] = shard_of(keyed(frame, "customer_id"), n_shards)
    parts = []
    for name, frame in tables.items():
        if name == "service_events" and "asset_id" in frame.columns:
            fallback = F.xxhash64(keyed(frame, "asset_id"))
            if "customer_id" in frame.columns:
                fallback = F.coalesce(shard_of(keyed(frame, "customer_id"), n_shards), F.pmod(fallback, F.lit(n_shards)))
            else:
                fallback = F.pmod(fallback, F.lit(n_shards))
            frame = frame.withColumn("__aid", keyed(frame, "asset_id"))
            assets = tables.get("assets")
            if assets is not None and {"asset_id", "customer_id"} <= set(assets.columns):
                # Distinct (asset, owner shard) pairs: an event is sent once to each shard that
                # holds its asset (two only when asset_id is duplicated, a validation error).
                owners = assets.select(
                    keyed(assets, "asset_id").alias("__aid"),
                    shard_of(keyed(assets, "customer_id"), n_shards).alias("__owner"),
                ).distinct()
                frame = frame.join(owners, on="__aid", how="left")
                shard = F.coalesce(F.col("__owner"), fallback)
            else:
                shard = fallback
        elif name in shard_cols:
            shard = shard_cols[name]
        else:
            # A table without its key column: validation reports it; any shard will do.
            shard = F.lit(0).cast("long")
        parts.append(
            frame.select(
                shard.alias(SHARD),
                F.lit(name).alias(TABLE),
                *[F.col(f"`{column}`").alias(slot) for column, slot in layout[name]],
            )
        )
    long = parts[0]
    for part in parts[1:]:
        long = long.unionByName(part, allowMissingColumns=True)
    return long


def split_shard(batch, layout) -> dict[str, pd.DataFrame]:
    """One shard's Arrow table back into raw pandas tables, dtypes as read_parquet gives them.

    `layout` maps each table to its ``(column, slot)`` pairs in the long frame.

    Examples
    --------
    >>> import pyarrow as pa
    >>> batch = pa.table({TABLE: ["customers", "customers"], "__string_0": ["a", "b"]})
    >>> split_shard(batch, {"customers": [("customer_id", "__string_0")]})["customers"]["customer_id"].tolist()
    ['a', 'b']
    """
    import pyarrow.compute as pc

    tags = batch.column(TABLE)
    raw = {}
    for name, pairs in layout.items():
        part = batch.filter(pc.equal(tags, name))
        if part.num_rows == 0:
            continue
        part = part.select([slot for _, slot in pairs]).rename_columns([column for column, _ in pairs])
        raw[name] = part.to_pandas()
    return raw


# --------------------------------------------------------------------------- per shard


def _customer_extras(raw_columns: list[str]) -> list[str]:
    return [c for c in raw_columns if c not in TABLES["customers"].names]


def _stat(kind, tbl="", col="", chk="", severity="", n=0, shard=0, examples=()):
    return {"kind": kind, "tbl": tbl, "col": col, "chk": chk, "severity": severity, "n": int(n),
            "shard": int(shard), "examples": json.dumps(list(examples), default=str)}


def _shard_stats(raw: dict[str, pd.DataFrame], shard: int, as_of: pd.Timestamp, now: pd.Timestamp) -> list[dict]:
    """Validate one shard; return its problems and the counts the driver sums."""
    rows = [_stat("raw_rows", name, n=len(frame), shard=shard) for name, frame in raw.items()]
    if "customers" not in raw:
        raw = {**raw, "customers": pd.DataFrame({"customer_id": pd.Series([SENTINEL_ID], dtype="str")})}
    try:
        result = validate_tables(raw, now=now)
    except ValidationError as err:
        return rows + [
            _stat("problem", p.table, p.column, p.check, p.severity, p.n_rows, shard,
                  () if p.check == "not_null" else p.examples)  # row numbers are shard-local
            for p in err.problems
        ]
    rows += [
        _stat("problem", p.table, p.column, p.check, p.severity, p.n_rows, shard, p.examples)
        for p in result.warnings
        if p.check not in _TABLE_LEVEL_CHECKS
    ]
    tables = result.tables
    for name, frame in tables.items():
        n = len(frame) - int((frame["customer_id"] == SENTINEL_ID).sum()) if name == "customers" else len(frame)
        rows.append(_stat("rows", name, n=n, shard=shard))
    customers = tables["customers"]
    for column in _customer_extras(list(customers.columns)):
        values = customers[column]
        kind = "number" if pd.api.types.is_float_dtype(values.dtype) else ("text" if values.notna().any() else "empty")
        rows.append(_stat("static", "customers", column, kind, shard=shard))
    # Value counts before as_of: the only input of the families' resolve steps.
    for name, column in (("interactions", "channel"), ("interactions", "topic"), ("usage", "event")):
        frame = tables.get(name)
        if frame is None:
            continue
        counts = frame.loc[frame["timestamp"] < as_of, column].dropna().astype("str").value_counts()
        rows += [_stat("count", name, column, str(value), n=n, shard=shard) for value, n in counts.items()]
    return rows


def empty_table(name: str, raw_columns: list[str], static_kinds: dict[str, str]) -> pd.DataFrame:
    """A zero-row table with the dtypes validation gives: for a table a shard lacks.

    Examples
    --------
    >>> empty_table("customers", ["customer_id", "region"], {"region": "text"}).dtypes["signup_date"]
    dtype('<M8[us]')
    """
    kinds = {c.name: c.kind for c in TABLES[name].columns}
    dtypes = {ID: "str", TEXT: "str", TIMESTAMP: "datetime64[us]", BOOL: "boolean", NUMBER: "float64"}
    columns = {}
    for column in [*raw_columns, *[c for c in kinds if c not in raw_columns]]:
        if column in kinds:
            dtype = dtypes[kinds[column]]
        elif name == "customers":
            dtype = "float64" if static_kinds.get(column) == "number" else "str"
        else:
            dtype = "str"  # extra event columns are carried along untouched and never read
        columns[column] = pd.Series([], dtype=dtype)
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class ShardPlan:
    """Everything a shard needs, decided on the driver (pickled to the workers)."""

    layout: dict[str, list[tuple[str, str]]]
    as_of: pd.Timestamp
    now: pd.Timestamp
    feature_set: FeatureSet
    surviving: tuple[str, ...]  # tables with rows left after validation, globally
    static_kinds: dict[str, str]
    static_attributes: tuple[str, ...]
    columns: tuple[str, ...]  # the output columns, customer_id first
    numeric: tuple[bool, ...]


def _conform_static(customers: pd.DataFrame, raw: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Give every static attribute the kind it has over all shards, not just this one."""
    for column, kind in kinds.items():
        if column not in customers:
            continue
        is_number = pd.api.types.is_float_dtype(customers[column].dtype)
        if kind == "number" and not is_number:
            customers[column] = pd.to_numeric(customers[column], errors="coerce").astype("float64")
        elif kind != "number" and is_number:
            # Numbers only in this shard, text elsewhere: keep the text as written.
            values = raw[column].reset_index(drop=True)
            customers[column] = values if values.dtype == "str" else values.astype("str")
    return customers


def shard_tables(raw: dict[str, pd.DataFrame], plan: ShardPlan) -> dict[str, pd.DataFrame] | None:
    """Validated, globally consistent tables of one shard; None for a shard without customers.

    Examples
    --------
    >>> tables = shard_tables(split_shard(batch, plan.layout), plan)  # doctest: +SKIP
    """
    if "customers" not in raw:
        return None
    tables = dict(validate_tables(raw, now=plan.now).tables)
    tables["customers"] = _conform_static(tables["customers"].copy(deep=False), raw["customers"], plan.static_kinds)
    for name in plan.surviving:
        if name not in tables:
            columns = [c for c, _ in plan.layout[name]]
            tables[name] = empty_table(name, columns, plan.static_kinds)
    # A table emptied in every shard was dropped by the single-machine path too.
    return {name: frame for name, frame in tables.items() if name in plan.surviving}


def _build_shard(raw: dict[str, pd.DataFrame], plan: ShardPlan) -> pd.DataFrame:
    tables = shard_tables(raw, plan)
    if tables is None:
        return _empty_features(plan)
    return shard_feature_frame(tables, plan)


def _empty_features(plan: ShardPlan) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="float64" if num else "str")
                         for c, num in zip(plan.columns, plan.numeric)})


def shard_feature_frame(tables: dict[str, pd.DataFrame], plan: ShardPlan) -> pd.DataFrame:
    """The builders on one shard's validated tables, checked against the global schema.

    Examples
    --------
    >>> features = shard_feature_frame(shard_tables(raw, plan), plan)  # doctest: +SKIP
    """
    from churnguard.features import build_features
    from churnguard.features.customers import static_attributes

    found = static_attributes(tables["customers"], plan.feature_set.customers)
    if tuple(found) != plan.static_attributes:
        raise RuntimeError(
            f"shard static attributes {found} differ from the global ones {list(plan.static_attributes)}; "
            "add the differing columns to the feature set's customers.exclude"
        )
    frame = build_features(tables, plan.as_of, feature_set=plan.feature_set)
    if tuple(frame.columns) != plan.columns:
        raise RuntimeError(
            f"a shard built columns {sorted(set(frame.columns) ^ set(plan.columns))} differently from the "
            "global schema; a data-derived property was not resolved globally"
        )
    return frame


def _to_arrow(frame: pd.DataFrame, plan: ShardPlan, schema):
    import pyarrow as pa

    arrays = []
    for column, numeric in zip(plan.columns, plan.numeric):
        values = frame[column]
        if numeric:
            arrays.append(pa.array(values.to_numpy(dtype="float64", na_value=np.nan), pa.float64()))
        else:
            arrays.append(pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.string()))
    return pa.Table.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------- driver


def _merge_problems(stats: pd.DataFrame) -> list[Problem]:
    """Sum each (table, column, check) over shards; examples from the first shards."""
    problems = stats[stats["kind"] == "problem"]
    if problems.empty:
        return []
    order = {name: i for i, name in enumerate(TABLES)}

    def position(p: Problem):
        # Table order of the contract, then column order: how validate_tables lists them.
        names = TABLES[p.table].names if p.table in TABLES else ()
        return order.get(p.table, len(order)), names.index(p.column) if p.column in names else len(names), p.check

    out = []
    keys = problems.groupby(["tbl", "col", "chk", "severity"], sort=False)
    for (tbl, col, chk, severity), group in keys:
        examples: list = []
        for text in group.sort_values("shard")["examples"]:
            for value in json.loads(text):
                if value not in examples and len(examples) < N_EXAMPLES:
                    examples.append(value)
        out.append(Problem(tbl, col, chk, int(group["n"].sum()), tuple(examples), severity))
    return sorted(out, key=position)


def _resolve(feature_set: FeatureSet, stats: pd.DataFrame, as_of: pd.Timestamp, surviving) -> FeatureSet:
    """The single-machine resolve, run on a tiny frame with the global value counts' ranking."""
    from churnguard.features import resolve_feature_set

    counts = stats[stats["kind"] == "count"].groupby(["tbl", "col", "chk"], as_index=False)["n"].sum()
    stamp = (as_of - pd.Timedelta(days=1)).as_unit("us")

    def repeated(table: str, column: str) -> list[str]:
        # Dense rank by count: the most frequent value repeated most often. Ties stay
        # ties, so resolve's alphabetical tie-break picks what it picks on all rows.
        sub = counts[(counts["tbl"] == table) & (counts["col"] == column)]
        levels = sorted(set(sub["n"]))
        multiplicity = {n: i + 1 for i, n in enumerate(levels)}
        return [v for v, n in zip(sub["chk"], sub["n"]) for _ in range(multiplicity[n])]

    small: dict[str, pd.DataFrame] = {"customers": pd.DataFrame({"customer_id": pd.Series(["x"], dtype="str")})}
    if "interactions" in surviving:
        channels, topics = repeated("interactions", "channel"), repeated("interactions", "topic")
        n = len(channels) + len(topics)
        small["interactions"] = pd.DataFrame({
            "customer_id": pd.Series(["x"] * n, dtype="str"),
            "timestamp": pd.Series([stamp] * n, dtype="datetime64[us]"),
            "channel": pd.Series(channels + [None] * len(topics), dtype="str"),
            "topic": pd.Series([None] * len(channels) + topics, dtype="str"),
        })
    if "usage" in surviving:
        events = repeated("usage", "event")
        small["usage"] = pd.DataFrame({
            "customer_id": pd.Series(["x"] * len(events), dtype="str"),
            "timestamp": pd.Series([stamp] * len(events), dtype="datetime64[us]"),
            "event": pd.Series(events, dtype="str"),
            "value": pd.Series([1.0] * len(events), dtype="float64"),
        })
    return resolve_feature_set(small, as_of, feature_set)


def _identifier_like(customers, columns: list[str]) -> list[str]:
    """Text attributes with many, mostly unique values: the customers family's rule, globally."""
    from pyspark.sql import functions as F

    from churnguard.features.customers import MAX_CATEGORIES

    if not columns:
        return []
    aggs = []
    for i, column in enumerate(columns):
        text = F.col(f"`{column}`").cast("string")
        aggs += [F.countDistinct(text).alias(f"u{i}"), F.count(text).alias(f"n{i}")]
    row = customers.agg(*aggs).collect()[0]
    return [c for i, c in enumerate(columns) if row[f"u{i}"] > MAX_CATEGORIES and row[f"u{i}"] > 0.5 * row[f"n{i}"]]


def _duplicate_assets(assets) -> list[Problem]:
    from pyspark.sql import functions as F

    key = _id_key(F.col("asset_id"), assets.schema["asset_id"].dataType)
    dups = assets.where(F.col("asset_id").isNotNull()).groupBy(key.alias("k")).count().where("count > 1")
    summary = dups.agg(F.sum("count").alias("n"), F.sort_array(F.collect_list("k")).alias("ids")).collect()[0]
    if not summary["n"]:
        return []
    return [Problem("assets", "asset_id", "unique", int(summary["n"]), tuple(summary["ids"][:N_EXAMPLES]))]


def _spark_type(numeric: bool):
    from pyspark.sql import types as T

    return T.DoubleType() if numeric else T.StringType()


@dataclass
class PreparedShards:
    """The long frame and the plan every shard follows (the first, validating pass done)."""

    long: Any
    plan: ShardPlan
    warnings: list[Problem]
    n_shards: int
    schema: Any  # Spark StructType of the feature frame
    arrow_schema: Any


def prepare_shards(spark, tables, as_of, *, feature_set, n_shards, now) -> PreparedShards:
    """Validate every shard and settle globally what the builders need (pass 1).

    Returns the long frame, sharded, and the :class:`ShardPlan` every shard follows;
    raises ``ValidationError`` with the problems summed over all shards.

    Examples
    --------
    >>> prepared = prepare_shards(spark, "s3a://lake/crm", "2024-06-01", feature_set=None,  # doctest: +SKIP
    ...                           n_shards=8, now=None)
    """
    from pyspark.sql import types as T

    from churnguard.features import build_features
    from churnguard.features.customers import NOT_FEATURES

    as_of = coerce_as_of(as_of)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else coerce_as_of(now)
    feature_set = feature_set or load_feature_set()
    frames = _as_spark_tables(spark, tables)
    if "customers" not in frames:
        raise ValidationError([Problem("customers", "*", "table_present", 0, ("customers.csv or customers.parquet",))])
    if n_shards is None:
        n_customers = frames["customers"].count()
        n_shards = max(spark.sparkContext.defaultParallelism, math.ceil(n_customers / CUSTOMERS_PER_SHARD))
    layout = _layout(frames)
    long = _long_frame(frames, layout, n_shards)

    # Pass 1: validate every shard, keep only problems and counts.
    def stats_of(batch):
        import pyarrow as pa

        shard = batch.column(SHARD)[0].as_py()
        rows = _shard_stats(split_shard(batch, layout), shard, as_of, now)
        return pa.Table.from_pylist(rows, schema=stats_schema)

    import pyarrow as pa

    stats_schema = pa.schema([("kind", pa.string()), ("tbl", pa.string()), ("col", pa.string()),
                              ("chk", pa.string()), ("severity", pa.string()), ("n", pa.int64()),
                              ("shard", pa.int64()), ("examples", pa.string())])
    # A few hundred rows per shard: collected as they are and summed on the driver. (Summing
    # in Spark meant two branches over the same applyInArrow, and Spark ran it twice.)
    stats = long.groupBy(SHARD).applyInArrow(stats_of, _STATS_SCHEMA).toPandas()

    raw_rows = stats[stats["kind"] == "raw_rows"].groupby("tbl")["n"].sum()
    errors = [p for p in _merge_problems(stats) if p.severity == "error"]
    if "assets" in frames and "asset_id" in frames["assets"].columns:
        errors = [p for p in errors if (p.table, p.column, p.check) != ("assets", "asset_id", "unique")]
        errors += _duplicate_assets(frames["assets"])
    if raw_rows.get("customers", 0) == 0:
        errors.insert(0, Problem("customers", "*", "not_empty", 0, tuple(frames["customers"].columns[:N_EXAMPLES])))
    if errors:
        raise ValidationError(errors)
    warnings = [p for p in _merge_problems(stats) if p.severity != "error"]
    rows = stats[stats["kind"] == "rows"].groupby("tbl")["n"].sum()
    surviving = tuple(name for name in TABLES if rows.get(name, 0) > 0 or name == "customers")
    for name in frames:
        if raw_rows.get(name, 0) == 0:
            warnings.append(Problem(name, "*", "not_empty (table dropped)", 0, (), "warning"))
        elif name not in surviving:
            warnings.append(Problem(name, "*", "not_empty_after_drops (table dropped)", 0, (), "warning"))

    static = stats[stats["kind"] == "static"]
    extras = _customer_extras([c for c, _ in layout["customers"]])
    static_kinds = {}
    for column in extras:
        kinds = set(static.loc[static["col"] == column, "chk"])
        static_kinds[column] = "text" if "text" in kinds else ("number" if "number" in kinds else "text")

    resolved = _resolve(feature_set, stats, as_of, surviving)
    candidates = [c for c in extras if c not in NOT_FEATURES and c not in resolved.customers.exclude
                  and not c.lower().endswith("_id")]
    identifiers = _identifier_like(frames["customers"], [c for c in candidates if static_kinds[c] != "number"])
    if identifiers:
        resolved = replace(resolved, customers=replace(
            resolved.customers, exclude=tuple(resolved.customers.exclude) + tuple(identifiers)))
    attributes = tuple(c for c in candidates if c not in identifiers)

    # The output schema: the builders run on an empty shard with the resolved set.
    empty = {name: empty_table(name, [c for c, _ in layout[name]], static_kinds) for name in surviving}
    sample = build_features(empty, as_of, feature_set=resolved)
    numeric = tuple(bool(pd.api.types.is_numeric_dtype(sample[c].dtype)) and c != "customer_id"
                    for c in sample.columns)
    plan = ShardPlan(layout, as_of, now, resolved, surviving, static_kinds, attributes, tuple(sample.columns), numeric)
    schema = T.StructType([T.StructField(c, _spark_type(num), True) for c, num in zip(plan.columns, numeric)])
    arrow_schema = pa.schema([(c, pa.float64() if num else pa.string()) for c, num in zip(plan.columns, numeric)])
    return PreparedShards(long, plan, warnings, n_shards, schema, arrow_schema)


def shard_features(
    spark,
    tables,
    as_of,
    *,
    feature_set: FeatureSet | None = None,
    n_shards: int | None = None,
    now: pd.Timestamp | None = None,
) -> ShardedFeatures:
    """Validate and build features on Spark; see :func:`build_features_spark`.

    Returns the Spark frame together with the resolved feature set and
    validation's warnings (the CLI prints them, as the single-machine path does).

    Examples
    --------
    >>> result = shard_features(spark, "s3a://lake/crm", "2024-06-01")  # doctest: +SKIP
    >>> for w in result.warnings: print(w)  # doctest: +SKIP
    """
    prepared = prepare_shards(spark, tables, as_of, feature_set=feature_set, n_shards=n_shards, now=now)
    plan, arrow_schema = prepared.plan, prepared.arrow_schema

    # Pass 2: validate again and build, shard by shard.
    def features_of(batch):
        frame = _build_shard(split_shard(batch, plan.layout), plan)
        return _to_arrow(frame, plan, arrow_schema)

    frame = prepared.long.groupBy(SHARD).applyInArrow(features_of, prepared.schema)
    return ShardedFeatures(frame, plan.feature_set, prepared.warnings, prepared.n_shards)


def build_features_spark(
    spark,
    tables,
    as_of,
    *,
    feature_set: FeatureSet | None = None,
    n_shards: int | None = None,
    now: pd.Timestamp | None = None,
):
    """One feature row per customer at `as_of`, built on Spark by the single-machine builders.

    Parameters
    ----------
    spark : SparkSession
    tables : dict of str to pyspark DataFrame, or str
        Raw contract tables (as read, not validated), or a data directory URI
        holding ``NAME.parquet`` / ``NAME.csv`` files (see :func:`read_tables_spark`).
    as_of : Timestamp or str
        Cut-off; only events strictly before it are used.
    feature_set : FeatureSet, optional
        Which features to build; the packaged default when omitted. Data-derived
        lists are resolved once over all customers before sharding.
    n_shards : int, optional
        Number of customer shards; by default one per 100,000 customers, and at
        least one per core. Each shard is built in one Python worker.
    now : Timestamp, optional
        Validation's "now" (events stamped after it are dropped); default the
        current UTC time, taken once on the driver.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id`` then the feature columns of ``build_features`` (double for
        numbers, string for categories), one row per population customer,
        unordered: ``.orderBy("customer_id")`` gives the single-machine row order.

    Raises
    ------
    ValidationError
        With the single-machine wording: table, column, check and row counts
        summed over all shards.

    Examples
    --------
    >>> from churnguard.spark import spark_session, build_features_spark  # doctest: +SKIP
    >>> spark = spark_session("local[2]")  # doctest: +SKIP
    >>> features = build_features_spark(spark, "data/", "2024-06-01", n_shards=8)  # doctest: +SKIP
    >>> features.write.parquet("features.parquet")  # doctest: +SKIP
    """
    return shard_features(spark, tables, as_of, feature_set=feature_set, n_shards=n_shards, now=now).frame


__all__ = [
    "ShardedFeatures",
    "build_features_spark",
    "read_tables_spark",
    "shard_features",
    "shard_of",
]
