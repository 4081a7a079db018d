"""The columnar engine behind the family builders: DuckDB in, pandas out.

Plain pandas groupby code is about ten times too slow for a million customers and
tens of millions of events on two cores (see ``benchmarks/README.md``), so each family
runs one DuckDB query with all its windows as ``FILTER`` aggregates. The builders'
inputs and outputs stay pandas; DuckDB only scans the registered frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd

from churnguard import duck
from churnguard.relations import SqlTable, bind

DAY_US = 86_400_000_000  # microseconds per day: timestamps are datetime64[us]


def threads() -> int:
    """How many families run side by side: ``CHURNGUARD_THREADS``, else the cores this process may use.

    Examples
    --------
    >>> threads() >= 1
    True
    """
    return duck.settings().threads


def sanitize(value: object) -> str:
    """Lower snake case ``[a-z0-9_]`` form of a data value, for use in a column name.

    Examples
    --------
    >>> sanitize("E-Mail / Web")
    'e_mail_web'
    >>> sanitize("  ")
    'unknown'
    """
    text = re.sub(r"[^a-z0-9]+", "_", str(value).lower()).strip("_")
    return text or "unknown"


def name_parts(values: Iterable[str]) -> dict[str, str]:
    """Map each value to a unique sanitised name part, in the order given.

    Two values that sanitise alike (``"E-mail"`` and ``"e mail"``) would otherwise
    produce the same column twice.

    Examples
    --------
    >>> name_parts(["E-mail", "e mail", "phone"])
    {'E-mail': 'e_mail', 'e mail': 'e_mail_2', 'phone': 'phone'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for value in values:
        base = candidate = sanitize(value)
        k = 2
        while candidate in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate)
        out[value] = candidate
    return out


def sql_string(value: str) -> str:
    """A SQL string literal for `value`, quotes escaped.

    Examples
    --------
    >>> sql_string("o'brien")
    "'o''brien'"
    """
    return "'" + str(value).replace("'", "''") + "'"


def sql_timestamp(ts: pd.Timestamp) -> str:
    """A DuckDB ``TIMESTAMP`` literal with microsecond precision.

    Examples
    --------
    >>> sql_timestamp(pd.Timestamp("2024-02-01"))
    "TIMESTAMP '2024-02-01 00:00:00.000000'"
    """
    return f"TIMESTAMP '{pd.Timestamp(ts).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def run_query(sql: str, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Run `sql` over the named pandas frames and return the result as pandas.

    Each call gets its own cursor on one empty in-memory database and unregisters its
    frames afterwards, so nothing survives between calls and the result depends only on
    the frames passed in. (A cursor costs microseconds; a new database ~0.1 s, which
    dominated small builds.)

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a", "a", "b"], "x": [1.0, 2.0, 5.0]})
    >>> run_query("SELECT customer_id, sum(x) AS s FROM t GROUP BY 1 ORDER BY 1", {"t": t})
      customer_id    s
    0           a  3.0
    1           b  5.0
    """
    con = duckdb_cursor()
    try:
        for name, frame in frames.items():
            bind(con, name, frame)
        return con.execute(sql).df()
    finally:
        con.close()  # registered frames and temporary views go with the cursor


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to this process's in-memory DuckDB database.

    Opening a database costs tens of milliseconds, a cursor on an open one almost nothing,
    and views registered on a cursor stay private to it, so concurrent builds never see
    each other's frames.

    Examples
    --------
    >>> with duckdb_cursor() as con:
    ...     con.execute("SELECT 41 + 1").fetchone()
    (42,)
    """
    return duck.cursor()


def positions(ids: pd.Series | pd.Index | np.ndarray, customers: pd.Index) -> np.ndarray:
    """Each id's row in `customers` (int32), or -1 for ids outside it (and missing ids).

    The string-to-integer step every family needs once per table: DuckDB then groups and
    sorts on integers, and rows outside the population drop out with ``pos >= 0``. One
    Arrow hash lookup costs about what one DuckDB hash join on the string id does, so a
    table keyed here and scanned twice pays for its strings once.

    Examples
    --------
    >>> positions(pd.Series(["b", "z", None, "a"], dtype="str"), pd.Index(["a", "b"]))
    array([ 1, -1, -1,  0], dtype=int32)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pa.array(np.asarray(customers, dtype=object), type=pa.large_string())
    values = pd.Series(ids, copy=False) if not isinstance(ids, pd.Series) else ids
    try:
        arrow = pa.array(values.array) if hasattr(values.array, "_pa_array") else None
    except (TypeError, pa.ArrowException):
        arrow = None
    if arrow is None:
        arrow = pa.array(values.astype("str").to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if arrow.type != pa.large_string():
        arrow = arrow.cast(pa.large_string())
    found = pc.index_in(arrow, value_set=keys)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def aggregate_for(
    customers: pd.Index,
    select: list[str],
    source_sql: str,
    frames: dict[str, pd.DataFrame],
    *,
    counts: Iterable[str] = (),
    keyed: bool = False,
) -> pd.DataFrame:
    """Aggregate per customer with DuckDB, returning exactly `customers` in order.

    Parameters
    ----------
    customers : Index
        The population, in output order. It is registered as ``_pop(customer_id, pos)``.
    select : list of str
        ``"<sql expression> AS <column>"`` aggregates over the rows of `source_sql`.
    source_sql : str
        A ``FROM``-able SQL relation, already filtered to events strictly before as_of,
        with a ``customer_id`` column, or with ``keyed=True`` a ``pos`` column (the
        customer's row in ``_pop``, from joining ``_pop`` itself, e.g. before a window
        function or a first aggregation stage).
    frames : dict
        The pandas frames the SQL refers to, by name.
    counts : iterable of str
        Columns that are counts: a customer without rows gets 0 instead of NaN.
    keyed : bool, default=False
        Whether `source_sql` already yields ``pos``.

    Returns
    -------
    DataFrame
        Float64 columns in the order of `select`, indexed by `customers`.

    Examples
    --------
    >>> ev = pd.DataFrame({"customer_id": ["b", "b", "z"], "x": [1.0, 2.0, 3.0]})
    >>> aggregate_for(pd.Index(["a", "b"], name="customer_id"), ["count(*) AS n", "avg(x) AS m"],
    ...               "ev", {"ev": ev}, counts=["n"])
                   n    m
    customer_id
    a            0.0  NaN
    b            2.0  1.5
    """
    names = [s.rsplit(" AS ", 1)[1].strip() for s in select]
    counts = set(counts)
    outer = ", ".join(
        f"CAST(coalesce(g.{n}, 0) AS DOUBLE) AS {n}" if n in counts else f"CAST(g.{n} AS DOUBLE) AS {n}"
        for n in names
    )
    # Events are keyed by the customer's integer position in the population once, by a
    # hash join on the string id; grouping and windows then run on integers (several
    # times faster than on strings), customers outside the population drop out early,
    # and no string ids travel back to pandas: the result takes `customers` as its index.
    pop = pd.DataFrame({"customer_id": customers.astype("str"), "pos": np.arange(len(customers), dtype="int64")})
    if not keyed:
        source_sql = f"(SELECT _pop.pos, e.* FROM {source_sql} e JOIN _pop USING (customer_id))"
    sql = f"""
        WITH g AS (SELECT pos, {", ".join(select)} FROM {source_sql} GROUP BY pos)
        SELECT {outer} FROM _pop p LEFT JOIN g USING (pos) ORDER BY p.pos
    """
    out = run_query(sql, {**frames, "_pop": pop})
    out.index = customers
    return out.astype("float64")


def with_columns(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """`frame` with any of the optional columns in `dtypes` that it lacks added as all-NA.

    Validation already adds them; this keeps hand-built frames (tests, notebooks) working.

    Examples
    --------
    >>> with_columns(pd.DataFrame({"a": [1.0]}), {"a": "float64", "flag": "boolean"}).dtypes.tolist()
    [dtype('float64'), BooleanDtype]
    """
    missing = {c: pd.array([None] * len(frame), dtype=t) for c, t in dtypes.items() if c not in frame}
    return frame.assign(**missing) if missing else frame


def days_between_sql(as_of: pd.Timestamp, column: str) -> str:
    """SQL for the (fractional) days from timestamp expression `column` to `as_of`.

    Examples
    --------
    >>> days_between_sql(pd.Timestamp("2024-01-02"), "max(timestamp)")
    "(epoch_us(TIMESTAMP '2024-01-02 00:00:00.000000') - epoch_us(max(timestamp))) / 86400000000.0"
    """
    return f"(epoch_us({sql_timestamp(as_of)}) - epoch_us({column})) / {float(DAY_US)}"


__all__ = [
    "SqlTable",
    "aggregate_for",
    "bind",
    "days_between_sql",
    "duckdb_cursor",
    "name_parts",
    "positions",
    "run_query",
    "sanitize",
    "sql_string",
    "sql_timestamp",
    "threads",
    "with_columns",
]
