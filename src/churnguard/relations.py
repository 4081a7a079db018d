"""The data contract over the files, in DuckDB: typed tables as SQL relations, checks as SQL.

`load_relations` is `churnguard.validation.load_data` without the pandas copy of the
event tables. Each event table becomes a :class:`SqlTable`: a ``SELECT`` over its
CSV or Parquet file that types every contract column, sets out-of-range values to
NULL and leaves out the rows validation drops. Nothing is read until a query runs,
and every query streams over the file under DuckDB's memory limit
(`churnguard.duck`). The small ``customers`` table is validated by the pandas code
itself and stays a pandas frame (the population, attributes and outreach rules
read it).

The checks run as SQL: one scan per table counts the rows failing each hard check
(unparseable values, nulls in required columns, duplicate keys, labels other than
0/1) and each soft one (out of range, unknown customer or asset, from the future,
exact duplicates); examples come from the first offending rows in file order, as in
the pandas path, so the warnings read the same. When a hard check fails, the
tables it concerns are handed to `churnguard.validation.validate_tables`, which
words the error exactly as before (bad input is the rare path; it costs memory only
for the tables at fault). Inputs the SQL typing does not cover (say, a Parquet
column of an unusual type, or an encoding DuckDB cannot read) fall back to
`load_data` as a whole.

A file is found, read and renamed by the same steps as in `load_data` (the mapping's
file, `validation.read_options`, `mapping.column_plan`), and each value means what
`churnguard.values` says, so a table reads the same on both paths.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from churnguard import duck
from churnguard.mapping import CsvOptions, Mapping, MappingError, column_plan, mapping_for, select_list
from churnguard.validation import (
    BOOL,
    FUTURE_TOLERANCE,
    ID,
    N_EXAMPLES,
    NUMBER,
    TABLES,
    TEXT,
    TIMESTAMP,
    Problem,
    ValidationError,
    ValidationResult,
    example_value,
    load_data,
    read_options,
    read_table,
    table_files,
    validate_tables,
)
from churnguard.values import sql_blank, sql_bool, sql_missing, sql_trimmed

# DuckDB's casts accept more than pandas does ("1_000", "2024-1-5"); a value must
# also look like what pandas accepts, else the table goes to pandas for the verdict.
_NUMBER_RE = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?([iI][nN][fF]([iI][nN][iI][tT][yY])?)"
_ISO_RE = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?"
_EXAMPLE_HEAD = 1000
_BATCH = 1 << 20  # rows per record batch of the soft scan's flags and hashes
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")


def _distinct_examples(rows) -> tuple:
    """The first N_EXAMPLES distinct non-null values of one-column `rows`, worded as validation words them."""
    seen, out = set(), []
    for (value,) in rows:
        if value is None or value in seen:
            continue
        seen.add(value)
        out.append(example_value(pd.Timestamp(value) if hasattr(value, "isoformat") else value))
        if len(out) == N_EXAMPLES:
            break
    return tuple(out)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _id_column(ids) -> pd.Series:
    # From the index's array, not a Python list of it: listing a million Arrow strings
    # cost about a second per chunk of scoring.
    return pd.Series(pd.Index(ids).array, dtype="str")


class SqlTable:
    """A validated contract table kept in DuckDB: a ``SELECT`` over its file.

    It answers the little the feature families ask of a table (its columns, its
    length, a projection) and binds itself as a view on a DuckDB cursor
    (:func:`bind`); :meth:`to_pandas` reads it whole when a caller needs a frame.

    Parameters
    ----------
    sql : str
        The relation, self-contained but for the `frames` it names.
    columns : list of str
        Its columns, in order.
    n_rows : int
        Its row count (known from validation's scan).
    frames : dict of str to DataFrame or SqlTable
        What `sql` refers to by name, bound first.

    Examples
    --------
    >>> t = SqlTable("SELECT * FROM (VALUES ('a', 1.5), ('b', 2.0)) v(customer_id, x)", ["customer_id", "x"], 2)
    >>> len(t), list(t[["x"]].columns), "x" in t
    (2, ['x'], True)
    >>> t.to_pandas()["x"].tolist()
    [1.5, 2.0]
    """

    def __init__(self, sql: str, columns: Iterable[str], n_rows: int, frames: dict | None = None,
                 kinds: dict[str, str] | None = None):
        self.sql, self.n_rows = sql, int(n_rows)
        self.columns = pd.Index(list(columns))
        self.frames = dict(frames or {})
        self.kinds = dict(kinds or {})

    def __len__(self) -> int:
        return self.n_rows

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    @property
    def empty(self) -> bool:
        return self.n_rows == 0

    def __getitem__(self, columns: list[str]) -> SqlTable:
        if isinstance(columns, str):
            raise TypeError("a SqlTable is projected with a list of columns; to_pandas() reads it whole")
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise KeyError(f"{missing} not in {list(self.columns)}")
        sql = f"SELECT {', '.join(map(_q, columns))} FROM ({self.sql})"
        return SqlTable(sql, columns, self.n_rows, self.frames, {c: self.kinds[c] for c in columns if c in self.kinds})

    def keyed(self, customers: pd.Index) -> SqlTable:
        """This table with ``_pos``, each row's customer's position in `customers`; other rows left out.

        Examples
        --------
        >>> t = SqlTable("SELECT * FROM (VALUES ('b', 1.0), ('z', 2.0)) v(customer_id, x)", ["customer_id", "x"], 2)
        >>> t.keyed(pd.Index(["a", "b"])).to_pandas()[["_pos", "x"]].values.tolist()
        [[1.0, 1.0]]
        """
        pop = pd.DataFrame({"customer_id": _id_column(customers),
                            "_pos": range(len(customers))})
        sql = f"SELECT _cg_pop._pos, t.* FROM ({self.sql}) t JOIN _cg_pop USING (customer_id)"
        return SqlTable(sql, ["_pos", *self.columns], self.n_rows, {**self.frames, "_cg_pop": pop}, self.kinds)

    def for_customers(self, ids: pd.Index) -> SqlTable:
        """The rows of customers `ids` only (row count unknown until read: an upper bound is kept).

        Examples
        --------
        >>> t = SqlTable("SELECT * FROM (VALUES ('b', 1.0), ('z', 2.0)) v(customer_id, x)", ["customer_id", "x"], 2)
        >>> t.for_customers(pd.Index(["z"])).to_pandas()["x"].tolist()
        [2.0]
        """
        chunk = pd.DataFrame({"customer_id": _id_column(ids)})
        where = "customer_id IN (SELECT customer_id FROM _cg_chunk)"
        if len(chunk):
            # The bounds reach the file: a Parquet row group whose ids lie outside them is not
            # read, so chunks of sorted ids over a file kept in id order read it about once.
            low, high = chunk["customer_id"].min(), chunk["customer_id"].max()
            where = f"customer_id BETWEEN {_lit(low)} AND {_lit(high)} AND {where}"
        sql = f"SELECT * FROM ({self.sql}) WHERE {where}"
        return SqlTable(sql, self.columns, self.n_rows, {**self.frames, "_cg_chunk": chunk}, self.kinds)

    def in_window(self, column: str, start: pd.Timestamp, end: pd.Timestamp, columns: list[str]) -> pd.DataFrame:
        """The rows with ``start <= column < end`` as a pandas frame of `columns`.

        Examples
        --------
        >>> t = SqlTable("SELECT * FROM (VALUES ('a', TIMESTAMP '2024-01-01'), ('b', TIMESTAMP '2024-03-01')) "
        ...              "v(customer_id, timestamp)", ["customer_id", "timestamp"], 2, kinds={"customer_id": "id"})
        >>> t.in_window("timestamp", pd.Timestamp("2024-02-01"), pd.Timestamp("2024-04-01"),
        ...             ["customer_id"])["customer_id"].tolist()
        ['b']
        """
        q = _q(column)
        sql = (f"SELECT {', '.join(map(_q, columns))} FROM ({self.sql}) "
               f"WHERE {q} >= TIMESTAMP '{pd.Timestamp(start)}' AND {q} < TIMESTAMP '{pd.Timestamp(end)}'")
        kinds = {c: self.kinds[c] for c in columns if c in self.kinds}
        return SqlTable(sql, columns, 0, self.frames, kinds).to_pandas()

    def column_stats(self, column: str, as_of: pd.Timestamp | None = None) -> tuple:
        """(min, max, non-null count, count at or after `as_of`) of one timestamp column, in one scan."""
        later = f"count(*) FILTER (WHERE {_q(column)} >= TIMESTAMP '{pd.Timestamp(as_of)}')" if as_of is not None else "0"
        with duck.counting_connection() as con:  # minima, maxima and counts: every thread may help
            bind(con, "_cg_t", self)
            low, high, n, n_later = con.execute(
                f"SELECT min({_q(column)}), max({_q(column)}), count({_q(column)}), {later} FROM _cg_t").fetchone()
        as_ts = lambda v: pd.Timestamp(v) if v is not None else pd.NaT  # noqa: E731
        return as_ts(low), as_ts(high), int(n), int(n_later)

    def to_pandas(self) -> pd.DataFrame:
        """The whole table as a pandas frame with the contract's dtypes."""
        with duck.cursor() as con:
            bind(con, "_cg_t", self)
            frame = con.execute("SELECT * FROM _cg_t").df()
        for column, kind in self.kinds.items():
            if kind in (ID, TEXT):
                frame[column] = frame[column].astype("str")
            elif kind == TIMESTAMP:
                frame[column] = frame[column].astype("datetime64[us]")
            elif kind == NUMBER:
                frame[column] = frame[column].astype("float64")
            elif kind == BOOL:
                frame[column] = frame[column].astype("boolean")
        return frame


def bind(con: duckdb.DuckDBPyConnection, name: str, table) -> None:
    """Make `table` (a pandas frame or a :class:`SqlTable`) queryable as `name` on `con`.

    Examples
    --------
    >>> with duck.cursor() as con:
    ...     bind(con, "t", pd.DataFrame({"x": [1, 2]}))
    ...     con.execute("SELECT sum(x) FROM t").fetchone()
    (3,)
    """
    if not isinstance(table, SqlTable):
        con.register(name, table)
        return
    for dep, frame in table.frames.items():
        bind(con, dep, frame)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_q(name)} AS {table.sql}")


# --------------------------------------------------------------------------- typing in SQL


class _Unsupported(Exception):
    """An input the SQL typing does not cover; the pandas path decides."""


# Python's names of the encodings DuckDB's CSV reader knows, and DuckDB's names for them.
_DUCK_ENCODINGS = {"utf-8": "utf-8", "iso8859-1": "latin-1", "utf-16": "utf-16"}


def _reader(path: Path, options: CsvOptions | None) -> str:
    if options is None:
        return f"read_parquet({_lit(str(path))})"
    encoding = _DUCK_ENCODINGS.get(codecs.lookup(options.encoding).name)
    if encoding is None:
        raise _Unsupported(options.encoding)  # pandas reads it
    # Every CSV column as text, empty fields missing, the delimiter as read_options says:
    # what validation.read_table does.
    return (f"read_csv({_lit(str(path))}, all_varchar = true, header = true, auto_detect = true, "
            f"delim = {_lit(options.delimiter)}, quote = '\"', escape = '\"', encoding = {_lit(encoding)})")


def _typed(kind: str, q: str, source_type: str, fmt: str | None = None) -> tuple[str, str | None]:
    """(typed SQL expression, SQL condition for a value that fails to parse) of one column.

    What a value means comes from `churnguard.values`, as in the pandas path; a date
    column's text is ISO 8601, or in the mapping's strptime format `fmt`.
    """
    text = source_type == "VARCHAR"
    numeric = source_type.startswith(_NUMERIC_TYPES)
    trimmed = sql_trimmed(q)
    if kind == TIMESTAMP:
        if text and fmt is not None:
            parsed = f"try_strptime({trimmed}, {_lit(fmt)})"
            if "%z" in fmt:
                parsed = f"({parsed} AT TIME ZONE 'UTC')"
            expr = f"CASE WHEN {sql_missing(q)} THEN NULL ELSE CAST({parsed} AS TIMESTAMP) END"
            # DuckDB's %Y takes "25" as the year 25; Python's strptime wants four digits: pandas decides.
            short_year = f" OR year({expr}) < 1000" if "%Y" in fmt else ""
            return expr, f"(NOT {sql_missing(q)} AND (({expr}) IS NULL{short_year}))"
        if text:
            expr = (f"CASE WHEN {sql_missing(q)} THEN NULL WHEN regexp_full_match({trimmed}, {_lit(_ISO_RE)}) "
                    f"THEN try_cast({trimmed} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END")
            return expr, f"(NOT {sql_missing(q)} AND ({expr}) IS NULL)"
        if source_type.startswith("TIMESTAMP WITH TIME ZONE"):
            return f"({q} AT TIME ZONE 'UTC')", None
        if source_type.startswith("TIMESTAMP") or source_type == "DATE":
            return f"CAST({q} AS TIMESTAMP)", None
        raise _Unsupported(source_type)
    if kind == NUMBER:
        if text:
            expr = (f"CASE WHEN {sql_missing(q)} THEN NULL WHEN regexp_full_match({trimmed}, {_lit(_NUMBER_RE)}) "
                    f"THEN try_cast({trimmed} AS DOUBLE) END")
            return expr, f"(NOT {sql_missing(q)} AND ({expr}) IS NULL)"
        if numeric or source_type == "BOOLEAN":
            return f"CAST({q} AS DOUBLE)", None
        raise _Unsupported(source_type)
    if kind == BOOL:
        if source_type == "BOOLEAN":
            return q, None
        if numeric:  # 1/0 flags read as their text reads: the same words, the same failures
            q, text = f"CAST({q} AS VARCHAR)", True
        if text:
            expr = sql_bool(q)
            return expr, f"(NOT {sql_missing(q)} AND ({expr}) IS NULL)"
        raise _Unsupported(source_type)
    if kind in (ID, TEXT):
        if text:
            # Blank text is missing, in required columns too (there it fails not_null).
            return f"CASE WHEN {sql_blank(q)} THEN NULL ELSE {q} END", None
        if kind == ID and source_type.startswith(_NUMERIC_TYPES[:9]):  # integers
            return f"CAST({q} AS VARCHAR)", None
        if kind == ID and source_type in ("FLOAT", "DOUBLE"):
            # Integral float ids lose their ".0" (validation._to_id); others go to pandas.
            return f"CAST(CAST({q} AS BIGINT) AS VARCHAR)", f"({q} IS NOT NULL AND {q} <> floor({q}))"
        raise _Unsupported(source_type)
    raise _Unsupported(kind)


@dataclass
class _Table:
    """One event table on its way through the checks."""

    name: str
    path: Path
    found: tuple[str, ...]
    source_sql: str = ""  # the file with the mapping's column names and constants
    formats: dict[str, str] = field(default_factory=dict)
    typed_sql: str = ""  # typed, before any soft repair
    columnar: bool = False  # a Parquet file (column statistics at hand), not CSV text
    n_rows: int = 0  # rows in the file
    kinds: dict[str, str] = field(default_factory=dict)
    extras: tuple[str, ...] = ()


def _describe(con, sql: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {sql}").fetchall()]


def _source_sql(con, name: str, path: Path, options: CsvOptions | None, mapping: Mapping) -> str:
    """The file as a relation with the mapping's column names and constants (`churnguard.mapping.column_plan`)."""
    reader = f"SELECT * FROM {_reader(path, options)}"
    table = mapping.of(name)
    if not (table.columns or table.constants):
        return reader
    header = [column for column, _ in _describe(con, reader)]
    return f"SELECT {select_list(column_plan(table, header, path.name, mapping.name))} FROM {_reader(path, options)}"


def _never_blank(con, t: _Table, source: dict[str, str]) -> set[str]:
    """The id and text columns of a Parquet file that its statistics prove hold no blank value.

    Parquet keeps each column's minimum: when it starts above " " no value can be blank
    (every whitespace character sorts below "!"), so neither the checks nor the queries
    that read the table test its values one by one.
    """
    if not t.columnar:
        return set()
    texts = [c.name for c in TABLES[t.name].columns
             if c.kind in (ID, TEXT) and c.choices is None and source.get(c.name) == "VARCHAR"]
    if not texts:
        return set()
    # One query per column: DuckDB answers a lone min() from the statistics, several together by a scan.
    lows = [con.execute(f"SELECT min({_q(n)}) FROM ({t.source_sql})").fetchone()[0] for n in texts]
    return {n for n, low in zip(texts, lows) if low is None or (low != "" and ord(low[0]) > 32)}


def _hard_scan(con, t: _Table, source: dict[str, str]) -> bool:
    """Type `t` in SQL; True when any hard check fails (or the typing does not apply)."""
    schema = TABLES[t.name]
    select, failures, exprs = [], [], {}
    blanks: list[tuple[int, str]] = []  # (position in select, column) of text that may hold blank values
    unblank = _never_blank(con, t, source)
    required: list[str] = []  # expressions that must not be NULL
    for col in schema.columns:
        t.kinds[col.name] = col.kind
        if col.name not in source:
            fill = {TIMESTAMP: "CAST(NULL AS TIMESTAMP)", NUMBER: "CAST(NULL AS DOUBLE)",
                    BOOL: "CAST(NULL AS BOOLEAN)"}.get(col.kind, "CAST(NULL AS VARCHAR)")
            if col.default is not None:
                fill = f"CAST({float(col.default)!r} AS DOUBLE)"
            select.append(f"{fill} AS {_q(col.name)}")
            continue
        if col.name in unblank:
            expr, bad = _q(col.name), None
        else:
            expr, bad = _typed(col.kind, _q(col.name), source[col.name], t.formats.get(col.name))
        if col.choices is not None:
            # As validation types it: the lower-case word; any other word is a hard error.
            expr = f"lower(trim({expr}))"
            failures.append(f"(({expr}) NOT IN ({', '.join(map(_lit, col.choices))}))")
        elif col.kind in (ID, TEXT) and source[col.name] == "VARCHAR" and col.name not in unblank:
            blanks.append((len(select), col.name))
        if col.default is not None:
            expr = f"coalesce({expr}, CAST({float(col.default)!r} AS DOUBLE))"
        select.append(f"{expr} AS {_q(col.name)}")
        exprs[col.name] = expr
        if bad is not None:
            failures.append(bad)
        if col.required:
            required.append(expr)
        if col.allowed is not None:
            failures.append(f"(({expr}) NOT IN ({', '.join(repr(float(v)) for v in col.allowed)}))")
    t.extras = tuple(c for c in source if c not in schema.names)
    select += [_q(c) for c in t.extras]
    if t.name == "outreach_log" and "contacted_at" in exprs:
        # validation's row checks of a past list: a contacted control, a contact before its list.
        failures.append(f"(({exprs['group']}) = 'control' AND ({exprs['contacted_at']}) IS NOT NULL)")
        failures.append(f"(({exprs['contacted_at']}) < ({exprs['list_date']}))")
    checks = [f"count(*) FILTER (WHERE {f})" for f in failures] or ["0"]
    # count(column) of a Parquet column is its statistics' null count: no value is read.
    checks += [f"count(*) - count({expr})" for expr in required]
    if schema.unique is not None:
        key = exprs[schema.unique]
        checks.append(f"count({key}) - count(DISTINCT {key})")
    if schema.key is not None:
        key = ", ".join(exprs[c] for c in schema.key)
        checks.append(f"count(*) - count(DISTINCT ({key}))")
    checks += [f"count(*) FILTER (WHERE {sql_blank(_q(name))})" for _, name in blanks]
    counts = con.execute(f"SELECT {', '.join(checks)} FROM ({t.source_sql})").fetchone()
    n_blank = counts[len(counts) - len(blanks):]
    # A column without blank values reads as it is: no query over the table pays for the test.
    for (position, name), n in zip(blanks, n_blank):
        if not n:
            select[position] = _q(name)
    t.typed_sql = f"SELECT {', '.join(select)} FROM ({t.source_sql})"
    return any(counts[:len(counts) - len(blanks)])


def _first_values(sql: str, column: str, where: str) -> tuple:
    """Up to N_EXAMPLES distinct values of `column`, from the first 1000 rows (file order) meeting `where`."""
    with duck.ordered_connection() as con:
        rows = con.execute(f"SELECT {_q(column)} FROM ({sql}) WHERE {where} LIMIT {_EXAMPLE_HEAD}").fetchall()
    return _distinct_examples(rows)


def _duplicate_examples(sql: str, columns: list[str], key: str) -> tuple:
    cols = ", ".join(map(_q, columns))
    ranked = (f"SELECT {_q(key)}, _rn, row_number() OVER (PARTITION BY {cols} ORDER BY _rn) AS _k "
              f"FROM (SELECT *, row_number() OVER () AS _rn FROM ({sql}))")
    return _first_values(f"SELECT {_q(key)} FROM ({ranked}) WHERE _k > 1 ORDER BY _rn", key, "true")


def _soft(t: _Table, now: pd.Timestamp, customer_ids: pd.DataFrame, assets: SqlTable | None,
          warnings: list[Problem]) -> SqlTable | None:
    """The soft phase of one event table in SQL: its warnings, and the table as kept (None when emptied)."""
    schema, name = TABLES[t.name], t.name
    frames: dict = {"_cg_customers": customer_ids}
    # Out of range -> NULL, in column order, each counted over the typed rows.
    repaired = []
    range_checks = []
    for col in schema.columns:
        check, q = col.range_check, _q(col.name)
        if check is None:
            repaired.append(q)
            continue
        parts = []
        if col.low is not None:
            parts.append(f"{q} {'<' if col.low_inclusive else '<='} {float(col.low)!r}")
        if col.high is not None:
            parts.append(f"{q} > {float(col.high)!r}")
        bad = "(" + " OR ".join(parts) + ")"
        range_checks.append((col.name, check, bad))
        repaired.append(f"CASE WHEN {bad} THEN NULL ELSE {q} END AS {q}")
    repaired += [_q(c) for c in t.extras]
    # The range flags ride along, so one scan counts them too; queries that do not ask drop them.
    flags = [f"{bad} AS _cg_r{i}" for i, (_, _, bad) in enumerate(range_checks)]
    na_sql = f"SELECT {', '.join(repaired + flags)} FROM ({t.typed_sql})"

    horizon = now + FUTURE_TOLERANCE
    in_customers = "customer_id IN (SELECT customer_id FROM _cg_customers)"
    drops: list[tuple[str, str, str, str]] = []  # (column, check, condition, example column)
    replace_owner = False
    if name == "service_events" and assets is not None:
        frames["_cg_assets"] = assets
        drops.append(("asset_id", "known_asset", "_owner IS NULL", "asset_id"))
        replace_owner = True
    elif name == "service_events":
        drops.append(("customer_id", "has_customer (no assets table)", "customer_id IS NULL", "asset_id"))
        drops.append(("customer_id", "known_customer", f"customer_id IS NOT NULL AND NOT {in_customers}",
                      "customer_id"))
    else:
        drops.append(("customer_id", "known_customer", f"NOT coalesce({in_customers}, false)", "customer_id"))
    if name == "usage" and assets is not None:
        frames["_cg_assets"] = assets
        drops.append(("asset_id", "known_asset",
                      "asset_id IS NOT NULL AND asset_id NOT IN (SELECT asset_id FROM _cg_assets)", "asset_id"))
    if schema.event_time is not None:
        drops.append((schema.event_time, "not_future", f"{_q(schema.event_time)} > TIMESTAMP '{horizon}'",
                      schema.event_time))

    owner_join = ""
    if replace_owner:
        owner_join = " LEFT JOIN (SELECT asset_id AS _a, customer_id AS _owner FROM _cg_assets) o ON asset_id = o._a"
    flagged_sql = f"SELECT n.*{', o._owner' if replace_owner else ''} FROM ({na_sql}) n{owner_join}"
    differs = "customer_id IS NOT NULL AND _owner IS NOT NULL AND customer_id <> _owner"

    # One scan: each condition is evaluated once per row (a flag), the flags are counted
    # batch by batch, and the rows' hashes for the exact-duplicate check ride along.
    conditions = [f"_cg_r{i}" for i in range(len(range_checks))] + [cond for _, _, cond, _ in drops]
    if replace_owner:
        conditions += [differs, "customer_id IS NULL"]
    flags = [f"coalesce({cond}, false) AS _cg_f{i}" for i, cond in enumerate(conditions)]
    # Labels and past lists have keys: a repeated key is already a hard error.
    hashed = schema.event_time is not None and schema.key is None and name != "labels"
    cols = ", ".join(map(_q, t.found))
    if hashed:
        flags.append(f"hash({cols}) AS _cg_h")
    first_drop = len(range_checks)
    with duck.counting_connection() as cur:
        for dep, frame in frames.items():
            bind(cur, dep, frame)
        n_flags = np.zeros(len(conditions), dtype=np.int64)
        n_kept = n_all = 0
        # Filled in place: a list of parts joined at the end would hold every hash twice.
        hashes = np.empty(t.n_rows if hashed else 0, dtype=np.uint64)
        batches = cur.sql(f"SELECT {', '.join(flags) or 'true'} FROM ({flagged_sql})").to_arrow_reader(_BATCH)
        for batch in batches:
            columns = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(len(conditions))]
            n_flags += [int(np.count_nonzero(c)) for c in columns]
            dropped = np.zeros(batch.num_rows, dtype=bool)
            for c in columns[first_drop:first_drop + len(drops)]:
                dropped |= c
            n_kept += batch.num_rows - int(np.count_nonzero(dropped))
            if hashed:
                hashes[n_all:n_all + batch.num_rows] = batch.column(len(conditions)).to_numpy()
            n_all += batch.num_rows
            del columns, dropped, batch
        n_range, n_drops = n_flags[:first_drop], n_flags[first_drop:first_drop + len(drops)]
        n_differs, n_no_customer = (n_flags[-2], n_flags[-1]) if replace_owner else (0, 0)
        copies = 0
        if hashed:
            # Rows with equal values hash alike, so distinct hashes prove distinct rows; only a
            # repeated hash (a copy, or a collision) pays for the exact count.
            # (Sorting the hashes in numpy costs a third of DuckDB's hash aggregate over them.)
            hashes.sort()
            repeated = bool(np.any(hashes[1:] == hashes[:-1]))
            del hashes
            if repeated:
                copies = n_all - cur.execute(
                    f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM ({na_sql}))").fetchone()[0]

    def examples(sql: str, column: str, where: str) -> tuple:
        with duck.ordered_connection() as ordered:
            for dep, frame in frames.items():
                bind(ordered, dep, frame)
            rows = ordered.execute(
                f"SELECT {_q(column)} FROM ({sql}) WHERE {where} LIMIT {_EXAMPLE_HEAD}").fetchall()
        return _distinct_examples(rows)

    for (column, check, bad), n in zip(range_checks, n_range):
        if n:
            warnings.append(Problem(name, column, f"{check} (set to NA)", int(n),
                                    examples(t.typed_sql, column, bad), "warning"))
    if copies:
        key = schema.required[0]
        warnings.append(Problem(name, "*", "no_exact_duplicate (kept)", int(copies),
                                _duplicate_examples(na_sql, list(t.found), key), "warning"))
    for (column, check, cond, example_column), n in zip(drops, n_drops):
        if n:
            warnings.append(Problem(name, column, f"{check} (dropped)", int(n),
                                    examples(flagged_sql, example_column, cond), "warning"))
        if replace_owner and check == "known_asset" and n_differs:
            warnings.append(Problem(name, "customer_id", "matches_asset_owner (replaced by owner)", int(n_differs),
                                    examples(flagged_sql, "asset_id", differs), "warning"))
    if not n_kept:
        warnings.append(Problem(name, "*", "not_empty_after_drops (table dropped)", 0, (), "warning"))
        return None
    # The kept table's SQL has only the repairs and filters this file needs: a check that no
    # row failed is not run again by every query that reads the table.
    repaired = [f"CASE WHEN {bad} THEN NULL ELSE {_q(column)} END AS {_q(column)}" if n else _q(column)
                for (column, _, bad), n in zip(range_checks, n_range)]
    ranged = {column for column, _, _ in range_checks}
    plain = [_q(c.name) for c in schema.columns if c.name not in ranged] + [_q(c) for c in t.extras]
    lean = f"SELECT {', '.join(plain + repaired)} FROM ({t.typed_sql})"
    conditions = [cond for (_, _, cond, _), n in zip(drops, n_drops) if n]
    with_owner = replace_owner and bool(n_differs or n_no_customer or any("_owner" in c for c in conditions))
    if with_owner:
        lean = f"SELECT n.*, o._owner FROM ({lean}) n{owner_join}"
    where = " AND ".join(f"NOT coalesce({cond}, false)" for cond in conditions) or "true"
    # Column order as in the pandas path: the file's own, then the contract columns it lacked.
    columns = [*t.found, *(c for c in schema.names if c not in t.found)]
    select = ", ".join("_owner AS customer_id" if with_owner and c == "customer_id" else _q(c) for c in columns)
    sql = f"SELECT {select} FROM ({lean}) WHERE {where}"
    used = {dep: frame for dep, frame in frames.items() if dep in sql}
    return SqlTable(sql, columns, n_kept, used, {c.name: c.kind for c in schema.columns})


# --------------------------------------------------------------------------- entry point


def load_relations(
    data_dir: Path | str,
    *,
    now: pd.Timestamp | None = None,
    tables: Iterable[str] | None = None,
    drop_duplicates: bool = False,
    mapping: Mapping | Path | str | None = None,
) -> ValidationResult:
    """`churnguard.validation.load_data`, with the event tables left in DuckDB over their files.

    Same parameters, warnings and errors as `load_data`; ``result.tables`` holds
    ``customers`` as a pandas frame and every other table as a :class:`SqlTable`,
    which `churnguard.build_features` reads in SQL. With ``drop_duplicates=True``
    (rows must be dropped in file order) the tables are loaded by `load_data`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "customers.csv").write_text("customer_id\\n007\\n008\\n")
    >>> _ = (d / "purchases.csv").write_text("customer_id,timestamp,amount\\n007,2024-01-02,9.5\\n999,2024-01-03,1\\n")
    >>> result = load_relations(d, now=pd.Timestamp("2024-06-01"))
    >>> len(result.tables["purchases"]), [str(w) for w in result.warnings]
    (1, ["purchases.customer_id: 1 rows fail known_customer (dropped), e.g. ['999']"])
    """
    mapping = mapping_for(data_dir, mapping)
    if drop_duplicates:
        return load_data(data_dir, now=now, tables=tables, drop_duplicates=True, mapping=mapping)
    data_dir = Path(data_dir)
    paths, errors = table_files(data_dir, tables, mapping=mapping)
    if errors:
        raise ValidationError(errors)
    try:
        return _load(paths, now, tables, mapping)
    except _Unsupported:
        return load_data(data_dir, now=now, tables=tables, mapping=mapping)


def _now(now) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None)
    ts = pd.Timestamp(now)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _raw(name: str, path: Path, mapping: Mapping) -> tuple[pd.DataFrame, list[Problem]]:
    try:
        return read_table(name, path, mapping)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), []


def _load(paths: dict[str, Path], now, wanted, mapping: Mapping) -> ValidationResult:
    now = _now(now)
    events: dict[str, _Table] = {}
    suspects: list[str] = []
    empty_warnings: list[Problem] = []
    read_warnings: dict[str, list[Problem]] = {}
    con = duck.counting_connection()
    try:
        for name, path in paths.items():
            if name == "customers":
                continue
            options, read_warnings[name] = read_options(name, path, mapping)
            try:
                source_sql = _source_sql(con, name, path, options, mapping)
                source = dict(_describe(con, source_sql))
                n_rows = con.execute(f"SELECT count(*) FROM ({source_sql})").fetchone()[0]
            except duckdb.Error:
                suspects.append(name)  # unreadable here: pandas says why, in its words
                continue
            if n_rows == 0:
                empty_warnings.append(Problem(name, "*", "not_empty (table dropped)", 0, (), "warning"))
                continue
            t = _Table(name, path, tuple(source), source_sql, mapping.of(name).formats, columnar=options is None, n_rows=n_rows)
            if any(c not in source for c in TABLES[name].required) or _hard_scan(con, t, source):
                suspects.append(name)
                continue
            events[name] = t
    finally:
        con.close()

    try:
        raw_customers, customer_warnings = _raw("customers", paths["customers"], mapping)
    except MappingError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable file is a bad input: load_data words it
        return load_data(paths["customers"].parent, now=now, tables=wanted, mapping=mapping)
    if suspects:
        # The pandas validator words every hard problem, in its order, as it always has.
        raw = {"customers": raw_customers}
        for name in suspects:
            try:
                raw[name] = _raw(name, paths[name], mapping)[0]
            except MappingError:
                raise
            except Exception:  # noqa: BLE001 - any unreadable file is a bad input: load_data words it
                return load_data(paths["customers"].parent, now=now, tables=wanted, mapping=mapping)
        validate_tables(raw, now=now, mapping=mapping)
        # No hard problem after all (a value only the SQL typing refused): pandas decides everything.
        return load_data(paths["customers"].parent, now=now, tables=wanted, mapping=mapping)

    base = validate_tables({"customers": raw_customers}, now=now, mapping=mapping)
    customers = base.tables["customers"]
    # Read warnings first, in table order, as load_data gives them.
    warnings = [*customer_warnings, *(w for name in paths for w in read_warnings.get(name, ())),
                *empty_warnings, *base.warnings]
    ids = pd.DataFrame({"customer_id": customers["customer_id"].astype("str")})
    out: dict = {"customers": customers}
    found = {"customers": base.found_columns["customers"]}
    assets: SqlTable | None = None
    order = ("assets", "interactions", "purchases", "service_events", "usage", "labels", "outreach_log")
    for name in order:
        if name not in events:
            continue
        t = events[name]
        table = _soft(t, now, ids, assets, warnings)
        if name == "assets":
            # Later tables are checked against the assets that survived (none if all were dropped).
            assets = table[["asset_id", "customer_id"]] if table is not None else SqlTable(
                "SELECT CAST(NULL AS VARCHAR) AS asset_id, CAST(NULL AS VARCHAR) AS customer_id WHERE false",
                ["asset_id", "customer_id"], 0)
        if table is not None:
            out[name] = table
            found[name] = t.found
    ordered = out  # customers first, then the order the checks ran in (as load_data)
    sources = {name: path for name, path in paths.items() if name in ordered}
    return ValidationResult(ordered, warnings, sources=sources, found_columns=found,
                            mapping=mapping if mapping.tables else None)


__all__ = ["SqlTable", "bind", "load_relations"]
