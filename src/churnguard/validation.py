"""The input data contract: table schemas, typing, and the checks a real export fails.

Validation runs in two phases. The hard phase types every column of every
table and collects every problem that makes the data unusable (a missing
table or column, unparseable values, nulls in required columns, duplicate
keys); if there is any, one `ValidationError` lists them all. The soft phase
then repairs what can be repaired without guessing: rows that cannot be
attributed (unknown customer or asset) or that come from the future are
dropped, out-of-range scores are set to NA, and every such repair is reported
as a warning `Problem` with its row count, never silently.

Everything is vectorised over whole columns: the `usage` table can hold tens
of millions of rows. Text columns are parsed once per distinct value
(``pd.factorize``), which is what makes repeated dates and flags cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnguard.io import read_raw_table, table_path

ID, TIMESTAMP, BOOL, NUMBER, TEXT = "id", "timestamp", "bool", "number", "text"
KINDS = (ID, TIMESTAMP, BOOL, NUMBER, TEXT)
# The groups of a past outreach list (outreach_log.group): contacted, or held out to measure.
GROUPS = ("treatment", "control")

# How far past `now` an event may be stamped before it counts as "from the future":
# a day absorbs exports written in a time zone ahead of UTC.
FUTURE_TOLERANCE = pd.Timedelta(days=1)
N_EXAMPLES = 5
# Examples come from the first offending rows only, so building a message never
# touches a whole 50-million-row column.
_EXAMPLE_HEAD = 1000

_TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
_FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
# io.read_raw_table keeps "NA" as text because it can be a real id or topic; in a
# date, number or flag column it can only mean "missing".
_MISSING_WORDS = ("", "na", "n/a", "nan", "nat", "null", "none")
_BOOL_WORDS = {**{w: True for w in _TRUE_WORDS}, **{w: False for w in _FALSE_WORDS}}


@dataclass(frozen=True)
class Column:
    """One contract column: its kind, whether it is required, and its valid range.

    Out-of-range values (`low`/`high`) are soft: set to NA with a warning.
    Values outside `allowed` are hard errors.
    """

    name: str
    kind: str
    required: bool = False
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    allowed: tuple[float, ...] | None = None
    default: Any = None  # fill for absent columns and NA values; None = leave NA
    # Text columns with a closed set of words: matched trimmed and case-insensitively,
    # typed as the lower-case word; any other non-empty value is a hard error.
    choices: tuple[str, ...] | None = None

    @property
    def range_check(self) -> str | None:
        """Name of the range check, e.g. ``in_range_1_5``, or None without a range."""
        if self.low is None and self.high is None:
            return None
        if self.high is None:
            return "non_negative" if self.low == 0 and self.low_inclusive else "positive"
        return f"in_range_{self.low:g}_{self.high:g}"


@dataclass(frozen=True)
class TableSchema:
    """The contract for one table: its columns, and which column must be unique.

    Examples
    --------
    >>> TABLES["usage"].required
    ('customer_id', 'timestamp', 'event')
    >>> TABLES["interactions"].column("csat").range_check
    'in_range_1_5'
    """

    name: str
    columns: tuple[Column, ...]
    unique: str | None = None
    # A key of several columns whose repeats are hard errors (one row per key).
    key: tuple[str, ...] | None = None
    # Tables of dated events: rows stamped after `now` are dropped.
    event_time: str | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no contract column {name!r}")

    def kind_columns(self, kind: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == kind)


def _c(name: str, kind: str, **kwargs) -> Column:
    return Column(name, kind, **kwargs)


def _req(name: str, kind: str, **kwargs) -> Column:
    return Column(name, kind, required=True, **kwargs)


TABLES: dict[str, TableSchema] = {
    "customers": TableSchema(
        "customers",
        (
            _req("customer_id", ID),
            _c("signup_date", TIMESTAMP),
            _c("churn_date", TIMESTAMP),
            _c("value", NUMBER),
            _c("do_not_contact", BOOL),
            _c("preferred_channel", TEXT),
        ),
        unique="customer_id",
    ),
    "interactions": TableSchema(
        "interactions",
        (
            _req("customer_id", ID),
            _req("timestamp", TIMESTAMP),
            _req("channel", TEXT),
            _c("topic", TEXT),
            _c("is_complaint", BOOL),
            _c("resolved", BOOL),
            _c("wait_seconds", NUMBER, low=0),
            _c("handle_seconds", NUMBER, low=0),
            _c("abandoned", BOOL),
            _c("escalated", BOOL),
            _c("csat", NUMBER, low=1, high=5),
            _c("nps", NUMBER, low=0, high=10),
            _c("ces", NUMBER, low=1, high=7),
            _c("sentiment", NUMBER, low=-1, high=1),
        ),
        event_time="timestamp",
    ),
    "purchases": TableSchema(
        "purchases",
        (
            _req("customer_id", ID),
            _req("timestamp", TIMESTAMP),
            _req("amount", NUMBER),
            _c("order_id", ID),
            _c("quantity", NUMBER, low=0),
            _c("category", TEXT),
            _c("is_return", BOOL),
        ),
        event_time="timestamp",
    ),
    "assets": TableSchema(
        "assets",
        (
            _req("asset_id", ID),
            _req("customer_id", ID),
            _c("product", TEXT),
            _c("install_date", TIMESTAMP),
            _c("warranty_end", TIMESTAMP),
            _c("service_interval_days", NUMBER, low=0, low_inclusive=False),
        ),
        unique="asset_id",
    ),
    "service_events": TableSchema(
        "service_events",
        (
            _req("asset_id", ID),
            _req("timestamp", TIMESTAMP),
            _req("kind", TEXT),
            _c("customer_id", ID),
            _c("cost", NUMBER),
        ),
        event_time="timestamp",
    ),
    "usage": TableSchema(
        "usage",
        (
            _req("customer_id", ID),
            _req("timestamp", TIMESTAMP),
            _req("event", TEXT),
            _c("asset_id", ID),
            _c("value", NUMBER, default=1.0),
        ),
        event_time="timestamp",
    ),
    "labels": TableSchema(
        "labels",
        (
            _req("customer_id", ID),
            _req("as_of", TIMESTAMP),
            _c("churn", NUMBER, allowed=(0.0, 1.0)),
            _c("maintenance", NUMBER, allowed=(0.0, 1.0)),
        ),
        event_time="as_of",
    ),
    "outreach_log": TableSchema(
        "outreach_log",
        (
            _req("customer_id", ID),
            _req("list_date", TIMESTAMP),
            _req("action", TEXT),
            _req("group", TEXT, choices=GROUPS),
            _c("contacted_at", TIMESTAMP),
            _c("channel", TEXT),
            _c("outcome", TEXT),
            _c("offer_cost", NUMBER, low=0),
        ),
        key=("customer_id", "list_date", "action"),
        event_time="list_date",
    ),
}

# The soft phase needs customers first, then assets (service events and usage
# are checked against the assets that survived), then the rest.
_SOFT_ORDER = ("customers", "assets", "interactions", "purchases", "service_events", "usage", "labels",
               "outreach_log")


@dataclass(frozen=True)
class Problem:
    """One failed check: where, which check, how many rows, and a few examples.

    Examples
    --------
    >>> p = Problem("interactions", "csat", "in_range_1_5 (set to NA)", 2, (7.0, 0.0), "warning")
    >>> str(p)
    'interactions.csat: 2 rows fail in_range_1_5 (set to NA), e.g. [7.0, 0.0]'
    """

    table: str
    column: str
    check: str
    n_rows: int
    examples: tuple = ()
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.n_rows} rows fail {self.check}, e.g. {list(self.examples)}"


class ValidationError(ValueError):
    """Every hard problem found in the input tables, raised once.

    Examples
    --------
    >>> err = ValidationError([Problem("customers", "customer_id", "unique", 2, ("a",))])
    >>> print(err)
    1 problem(s) in the input tables:
      customers.customer_id: 2 rows fail unique, e.g. ['a']
    """

    def __init__(self, problems: list[Problem]):
        self.problems = problems  # structured, for the report and the tests
        lines = [
            f"  {p.table}.{p.column}: {p.n_rows} rows fail {p.check}, e.g. {list(p.examples)}"
            for p in problems
        ]
        super().__init__(f"{len(problems)} problem(s) in the input tables:\n" + "\n".join(lines))


@dataclass
class ValidationResult:
    """Validated tables and what was repaired or dropped on the way.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Typed contract tables, soft-bad rows dropped, every contract column present.
    warnings : list of Problem
        Each soft problem with its row count (severity "warning").
    sources : dict of str to Path
        The file each table was read from (empty when validating frames).
    found_columns : dict of str to tuple of str
        The columns each table had as given; the others in ``tables`` were added
        (optional contract columns, empty).
    """

    tables: dict[str, pd.DataFrame]
    warnings: list[Problem] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)
    found_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def added_columns(self, name: str) -> list[str]:
        """Columns of table `name` that validation added (not in the input).

        Examples
        --------
        >>> result = validate_tables({"customers": pd.DataFrame({"customer_id": ["a"]})})
        >>> result.added_columns("customers")
        ['signup_date', 'churn_date', 'value', 'do_not_contact', 'preferred_channel']
        """
        found = set(self.found_columns.get(name, self.tables[name].columns))
        return [str(c) for c in self.tables[name].columns if c not in found]


# --------------------------------------------------------------------------- examples


def _plain(value: Any) -> Any:
    """A value as it should read in a message: Python scalars, timestamps as ISO text."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ") if value != value.normalize() else value.date().isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def example_value(value: Any) -> Any:
    """A value as a problem's examples show it: Python scalars, timestamps as ISO text.

    Examples
    --------
    >>> example_value(pd.Timestamp("2024-01-02")), example_value(np.float64(7.0))
    ('2024-01-02', 7.0)
    """
    return _plain(value)


def _examples(values: pd.Series, mask: np.ndarray | None = None) -> tuple:
    """Up to N_EXAMPLES distinct values, taken from the first offending rows only."""
    positions = np.flatnonzero(mask)[:_EXAMPLE_HEAD] if mask is not None else slice(0, _EXAMPLE_HEAD)
    head = values.iloc[positions].dropna().drop_duplicates()
    return tuple(_plain(v) for v in head.iloc[:N_EXAMPLES].tolist())


def _row_examples(mask: np.ndarray) -> tuple:
    """Row numbers (0-based, in file order) of the first offending rows."""
    return tuple(int(i) for i in np.flatnonzero(mask)[:N_EXAMPLES])


# --------------------------------------------------------------------------- typing


def _arrow(s: pd.Series) -> pa.ChunkedArray | pa.Array | None:
    """The Arrow array behind a text column, or None when it is not Arrow-backed."""
    if s.dtype == "str" and hasattr(s.array, "__arrow_array__"):
        return s.array.__arrow_array__()
    return None


def _arrow_cast(s: pd.Series, to: pa.DataType) -> pd.Series | None:
    """Cast a whole text column with Arrow, or None if any value does not parse.

    The fast path for clean exports: Arrow's ISO 8601 and number parsers are
    several times faster than pandas'. Any failure falls back to the pandas
    path, which finds and reports the offending values.
    """
    arr = _arrow(s)
    if arr is None:
        return None
    try:
        cast = pc.cast(arr, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(cast.to_numpy(zero_copy_only=False), index=s.index)


def _isin(s: pd.Series, values: pd.Series | pd.Index) -> np.ndarray:
    """``s.isin(values)`` as a numpy mask; Arrow's hash lookup when both sides are Arrow text."""
    arr, value_set = _arrow(s), _arrow(pd.Series(values))
    if arr is not None and value_set is not None:
        if isinstance(value_set, pa.ChunkedArray):
            value_set = value_set.combine_chunks()
        found = pc.is_in(arr, value_set=value_set)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    return s.isin(values).to_numpy()


def _parse_by_distinct(s: pd.Series, parse) -> tuple[pd.Series, np.ndarray]:
    """Parse a column once per distinct value; return (parsed, mask of values that fail).

    `parse` maps an Index of distinct non-null values to an array of the same
    length with NA where a value does not parse. Blank text and the usual
    missing-value words count as missing, not as failures.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    uniques = pd.Index(uniques)
    parsed = pd.array(parse(uniques))
    blank = np.zeros(len(uniques), dtype=bool)
    if uniques.dtype == "str" or uniques.dtype == object:
        words = uniques.astype("str").str.strip().str.lower()
        blank = np.asarray(words.isin(_MISSING_WORDS), dtype=bool)
    bad_unique = np.asarray(pd.isna(parsed), dtype=bool) & ~blank
    # Point blank values at the NA sentinel so they come out missing.
    codes = np.where((codes >= 0) & blank[np.maximum(codes, 0)], -1, codes) if blank.any() else codes
    failed = np.zeros(len(s), dtype=bool)
    present = codes >= 0
    failed[present] = bad_unique[codes[present]]
    return pd.Series(parsed.take(codes, allow_fill=True), index=s.index), failed


def _to_timestamp(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Tz-naive datetime64[us] in UTC, and the mask of non-empty values that do not parse.

    Examples
    --------
    >>> ts, bad = _to_timestamp(pd.Series(["2024-01-02T01:00:00+02:00", "2024-01-03", "2024-13-01"]))
    >>> ts.tolist()[:2], bad.tolist()
    ([Timestamp('2024-01-01 23:00:00'), Timestamp('2024-01-03 00:00:00')], [False, False, True])
    """
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us"), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.as_unit("us"), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        # Epoch numbers are not ISO 8601; reading them as text keeps 20240131 working.
        s = s.astype("str")
    for arrow_type in (pa.timestamp("us"), pa.timestamp("us", tz="UTC")):
        fast = _arrow_cast(s, arrow_type)
        if fast is not None:
            if isinstance(fast.dtype, pd.DatetimeTZDtype):
                fast = fast.dt.tz_convert("UTC").dt.tz_localize(None)
            return fast.astype("datetime64[us]"), np.zeros(len(s), dtype=bool)

    def parse(uniques: pd.Index):
        parsed = pd.to_datetime(uniques, format="ISO8601", utc=True, errors="coerce")
        return parsed.tz_localize(None).as_unit("us")

    parsed, failed = _parse_by_distinct(s, parse)
    return parsed.astype("datetime64[us]"), failed


def _to_number(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """float64, and the mask of non-empty values that are not numbers."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
        else:
            values = s.to_numpy().astype("float64")
        return pd.Series(values, index=s.index, dtype="float64"), np.zeros(len(s), dtype=bool)
    fast = _arrow_cast(s, pa.float64())
    if fast is not None:
        return fast.astype("float64"), np.zeros(len(s), dtype=bool)
    if s.dtype == object:
        s = s.astype("str")

    def parse(uniques: pd.Index):
        return pd.to_numeric(uniques.str.strip(), errors="coerce").astype("float64")

    parsed, failed = _parse_by_distinct(s, parse)
    return parsed.astype("float64"), failed


def _to_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Nullable boolean, and the mask of non-empty values that are not a yes/no word."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean"), np.zeros(len(s), dtype=bool)

    def parse(uniques: pd.Index):
        words = uniques.astype("str").str.strip().str.lower()
        return pd.array(words.map(_BOOL_WORDS).tolist(), dtype="boolean")

    parsed, failed = _parse_by_distinct(s, parse)
    return parsed.astype("boolean"), failed


def _to_id(s: pd.Series) -> pd.Series:
    """String ids; integral numbers lose their ``.0``, text keeps leading zeros.

    Examples
    --------
    >>> _to_id(pd.Series([7.0, None, 12.0])).tolist()
    ['7', nan, '12']
    """
    if pd.api.types.is_float_dtype(s.dtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[~np.isnan(values)]
        if np.all(finite == np.floor(finite)):
            s = s.astype("Int64")
    return s.astype("str")


def _to_text(s: pd.Series) -> pd.Series:
    return s if s.dtype == "str" else s.astype("str")


def _to_static(s: pd.Series) -> pd.Series:
    """A customers attribute outside the contract: numbers as float64, anything else as text."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return _to_number(s)[0]
    if s.notna().any():
        parsed, failed = _to_number(s)
        if not failed.any():
            return parsed
    return _to_text(s)


_TYPERS = {TIMESTAMP: _to_timestamp, NUMBER: _to_number, BOOL: _to_bool}
_PARSE_CHECK = {TIMESTAMP: "parseable_date", NUMBER: "numeric", BOOL: "boolean"}


def _empty_column(col: Column, n: int, index: pd.Index) -> pd.Series:
    if col.kind == TIMESTAMP:
        return pd.Series(pd.NaT, index=index, dtype="datetime64[us]")
    if col.kind == BOOL:
        return pd.Series(pd.array([pd.NA] * n, dtype="boolean"), index=index)
    if col.kind == NUMBER:
        fill = np.nan if col.default is None else float(col.default)
        return pd.Series(np.full(n, fill, dtype="float64"), index=index)
    return pd.Series(np.nan, index=index, dtype="str")


def _type_table(name: str, raw: pd.DataFrame, errors: list[Problem]) -> pd.DataFrame:
    """Type every contract column of one table, collecting the hard problems."""
    schema = TABLES[name]
    # A shallow copy: assigning typed columns never touches the caller's frame.
    frame = raw.copy(deep=False)
    for col in schema.columns:
        if col.name not in frame.columns:
            frame[col.name] = _empty_column(col, len(frame), frame.index)
            continue
        s = frame[col.name]
        failed = None
        if col.kind == ID:
            frame[col.name] = _to_id(s)
        elif col.kind == TEXT:
            frame[col.name] = _to_text(s)
            if col.choices is not None:
                words = frame[col.name].str.strip().str.lower()
                bad = (words.notna() & ~words.isin(col.choices)).to_numpy(dtype=bool)
                if bad.any():
                    check = "in_" + "_".join(col.choices)
                    errors.append(Problem(name, col.name, check, int(bad.sum()), _examples(s, bad)))
                frame[col.name] = words
        else:
            typed, failed = _TYPERS[col.kind](s)
            if failed.any():
                errors.append(
                    Problem(name, col.name, _PARSE_CHECK[col.kind], int(failed.sum()), _examples(s, failed))
                )
            if col.default is not None:
                typed = typed.fillna(col.default)
            frame[col.name] = typed
        if col.required:
            null = frame[col.name].isna().to_numpy()
            if failed is not None:
                # A value that failed to parse is already reported; do not count it twice.
                null = null & ~failed
            if null.any():
                errors.append(Problem(name, col.name, "not_null", int(null.sum()), _row_examples(null)))
        if col.allowed is not None:
            values = frame[col.name]
            bad = (values.notna() & ~values.isin(col.allowed)).to_numpy()
            if bad.any():
                check = "in_" + "_".join(f"{v:g}" for v in col.allowed)
                errors.append(Problem(name, col.name, check, int(bad.sum()), _examples(values, bad)))
    if name == "customers":
        for extra in frame.columns.difference(schema.names, sort=False):
            frame[extra] = _to_static(frame[extra])
    if schema.unique is not None:
        key = frame[schema.unique]
        dup = key.duplicated(keep=False).to_numpy() & key.notna().to_numpy()
        if dup.any():
            errors.append(Problem(name, schema.unique, "unique", int(dup.sum()), _examples(key, dup)))
    if schema.key is not None:
        keys = frame[list(schema.key)]
        dup = keys.duplicated(keep=False).to_numpy() & keys.notna().all(axis=1).to_numpy()
        if dup.any():
            errors.append(Problem(name, key_label(schema.key), "unique", int(dup.sum()), _key_examples(keys, dup)))
    if name == "outreach_log":
        _check_outreach_rows(frame, errors)
    return frame


def key_label(key: tuple[str, ...]) -> str:
    """How a problem names a key of several columns.

    Examples
    --------
    >>> key_label(("customer_id", "list_date", "action"))
    '(customer_id, list_date, action)'
    """
    return "(" + ", ".join(key) + ")"


def _key_examples(keys: pd.DataFrame, mask: np.ndarray) -> tuple:
    """Up to N_EXAMPLES distinct keys of the first offending rows, each as ``a / b / c``."""
    head = keys.iloc[np.flatnonzero(mask)[:_EXAMPLE_HEAD]].drop_duplicates().iloc[:N_EXAMPLES]
    return tuple(" / ".join(str(_plain(v)) for v in row) for row in head.itertuples(index=False))


def _check_outreach_rows(frame: pd.DataFrame, errors: list[Problem]) -> None:
    """The rows that break a past experiment: a contacted control, a contact before its list existed."""
    reached = frame["contacted_at"].notna().to_numpy()
    control = (frame["group"] == "control").to_numpy(dtype=bool, na_value=False)
    # A control customer who was contacted is no longer a control: the comparison is void for them.
    contacted_control = reached & control
    if contacted_control.any():
        errors.append(Problem("outreach_log", "contacted_at", "empty_for_control", int(contacted_control.sum()),
                              _examples(frame["customer_id"], contacted_control)))
    early = (frame["contacted_at"] < frame["list_date"]).to_numpy(dtype=bool, na_value=False)
    if early.any():
        errors.append(Problem("outreach_log", "contacted_at", "not_before_list_date", int(early.sum()),
                              _examples(frame["customer_id"], early)))


# --------------------------------------------------------------------------- soft checks


class _Drops:
    """Rows to drop from one table, accumulated so the table is filtered once."""

    def __init__(self, name: str, frame: pd.DataFrame, warnings: list[Problem]):
        self.name, self.frame, self.warnings = name, frame, warnings
        self.keep = np.ones(len(frame), dtype=bool)

    def drop(self, column: str, check: str, bad: np.ndarray, examples_from: pd.Series | None = None) -> None:
        if not bad.any():
            return
        values = self.frame[column] if examples_from is None else examples_from
        self.warnings.append(
            Problem(self.name, column, f"{check} (dropped)", int(bad.sum()), _examples(values, bad), "warning")
        )
        self.keep &= ~bad

    def result(self) -> pd.DataFrame:
        frame = self.frame if self.keep.all() else self.frame[self.keep]
        return frame.reset_index(drop=True)


def _set_out_of_range_na(name: str, frame: pd.DataFrame, warnings: list[Problem]) -> None:
    for col in TABLES[name].columns:
        check = col.range_check
        if check is None:
            continue
        values = frame[col.name]
        bad = np.zeros(len(frame), dtype=bool)
        if col.low is not None:
            bad |= (values < col.low if col.low_inclusive else values <= col.low).to_numpy()
        if col.high is not None:
            bad |= (values > col.high).to_numpy()
        if bad.any():
            warnings.append(
                Problem(name, col.name, f"{check} (set to NA)", int(bad.sum()), _examples(values, bad), "warning")
            )
            frame[col.name] = values.mask(bad)


def _exact_duplicates(name: str, frame: pd.DataFrame, columns: tuple[str, ...], drops: _Drops, drop: bool,
                      warnings: list[Problem]) -> None:
    """Rows equal in every given column to an earlier row: a double export, or an event logged twice."""
    # Only the columns the file had: the ones validation added are empty in every row.
    copies = frame.duplicated(subset=[c for c in columns if c in frame], keep="first").to_numpy()
    if not copies.any():
        return
    key = frame[TABLES[name].required[0]]
    if drop:
        drops.drop("*", "no_exact_duplicate", copies, examples_from=key)
    else:
        warnings.append(Problem(name, "*", "no_exact_duplicate (kept)", int(copies.sum()),
                                _examples(key, copies), "warning"))


def _soft_phase(typed: dict[str, pd.DataFrame], now: pd.Timestamp, warnings: list[Problem], *,
                drop_duplicates: bool = False, found: dict[str, tuple[str, ...]] | None = None
                ) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    customers = typed["customers"]
    _set_out_of_range_na("customers", customers, warnings)
    late = (customers["churn_date"] < customers["signup_date"]).to_numpy()
    if late.any():
        warnings.append(
            Problem("customers", "churn_date", "after_signup_date (set to NA)", int(late.sum()),
                    _examples(customers["customer_id"], late), "warning")
        )
        customers["churn_date"] = customers["churn_date"].mask(late)
    out["customers"] = customers
    known_customers = customers["customer_id"]
    horizon = now + FUTURE_TOLERANCE
    owners: pd.Series | None = None

    for name in _SOFT_ORDER[1:]:
        if name not in typed:
            continue
        schema, frame = TABLES[name], typed[name]
        _set_out_of_range_na(name, frame, warnings)
        drops = _Drops(name, frame, warnings)
        # Labels and past lists have keys: a repeated key is already a hard error.
        if schema.event_time is not None and schema.key is None and name != "labels":
            columns = (found or {}).get(name, tuple(frame.columns))
            _exact_duplicates(name, frame, columns, drops, drop_duplicates, warnings)

        if name == "service_events" and owners is not None:
            drops.drop("asset_id", "known_asset", ~_isin(frame["asset_id"], owners.index))
            owner = frame["asset_id"].map(owners)
            given = frame["customer_id"]
            # The asset register is the authority on who owns a machine; a service
            # system's customer field is often stale after a resale or a merge.
            differs = (given.notna() & owner.notna() & (given != owner)).to_numpy()
            if differs.any():
                warnings.append(
                    Problem(name, "customer_id", "matches_asset_owner (replaced by owner)", int(differs.sum()),
                            _examples(frame["asset_id"], differs), "warning")
                )
            frame["customer_id"] = owner.astype("str")
        elif name == "service_events":
            # Without an asset register only a given customer_id can attribute the event.
            drops.drop("customer_id", "has_customer (no assets table)", frame["customer_id"].isna().to_numpy(),
                       examples_from=frame["asset_id"])
            unknown = frame["customer_id"].notna().to_numpy() & ~_isin(frame["customer_id"], known_customers)
            drops.drop("customer_id", "known_customer", unknown)
        else:
            drops.drop("customer_id", "known_customer", ~_isin(frame["customer_id"], known_customers))

        if name == "usage" and owners is not None:
            unknown = frame["asset_id"].notna().to_numpy() & ~_isin(frame["asset_id"], owners.index)
            drops.drop("asset_id", "known_asset", unknown)

        if schema.event_time is not None:
            future = (frame[schema.event_time] > horizon).to_numpy()
            drops.drop(schema.event_time, "not_future", future)

        frame = drops.result()
        if name == "assets":
            owners = pd.Series(frame["customer_id"].to_numpy(), index=pd.Index(frame["asset_id"]))
        if frame.empty:
            warnings.append(Problem(name, "*", "not_empty_after_drops (table dropped)", 0, (), "warning"))
            continue
        out[name] = frame
    return out


# --------------------------------------------------------------------------- entry points


def _utc_naive(ts: pd.Timestamp | str | None) -> pd.Timestamp:
    if ts is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None)
    ts = pd.Timestamp(ts)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def validate_tables(
    raw: dict[str, pd.DataFrame], *, now: pd.Timestamp | None = None, drop_duplicates: bool = False
) -> ValidationResult:
    """Type and check raw tables against the contract.

    Parameters
    ----------
    raw : dict of str to DataFrame
        Tables keyed by contract name, as read from disk; keys that are not
        contract tables (e.g. ``truth``) are ignored. The frames are not modified.
    now : Timestamp, optional
        Events stamped more than a day after `now` are dropped. Default: the
        current UTC time. Tz-aware values are converted to UTC.
    drop_duplicates : bool, default=False
        Event rows that repeat an earlier row exactly are always counted in a
        warning; with True they are also dropped (a double export), else kept
        (two identical purchases can be real).

    Returns
    -------
    ValidationResult
        Typed tables and the warnings for every dropped or repaired row.
        Tables that are empty (or become empty) are left out, so their feature
        family is skipped.

    Raises
    ------
    ValidationError
        Listing every hard problem of every table at once.

    Examples
    --------
    >>> raw = {
    ...     "customers": pd.DataFrame({"customer_id": ["007", "008"]}),
    ...     "interactions": pd.DataFrame({
    ...         "customer_id": ["007", "999"],
    ...         "timestamp": ["2024-01-02T10:00:00+02:00", "2024-01-03"],
    ...         "channel": ["phone", "chat"],
    ...         "csat": ["9", "5"],
    ...     }),
    ... }
    >>> result = validate_tables(raw, now=pd.Timestamp("2024-06-01"))
    >>> result.tables["interactions"][["customer_id", "timestamp", "csat"]]
      customer_id           timestamp  csat
    0         007 2024-01-02 08:00:00   NaN
    >>> for w in result.warnings:
    ...     print(w)
    interactions.csat: 1 rows fail in_range_1_5 (set to NA), e.g. [9.0]
    interactions.customer_id: 1 rows fail known_customer (dropped), e.g. ['999']
    >>> validate_tables({"customers": pd.DataFrame({"customer_id": ["a", "a"]})})
    Traceback (most recent call last):
    ...
    churnguard.validation.ValidationError: 1 problem(s) in the input tables:
      customers.customer_id: 2 rows fail unique, e.g. ['a']
    """
    now = _utc_naive(now)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if "customers" not in raw:
        raise ValidationError([Problem("customers", "*", "table_present", 0, ("customers.csv or customers.parquet",))])

    typed: dict[str, pd.DataFrame] = {}
    for name, schema in TABLES.items():
        if name not in raw:
            continue
        frame = raw[name]
        if frame.empty:
            if name == "customers":
                errors.append(Problem(name, "*", "not_empty", 0, tuple(map(str, frame.columns[:N_EXAMPLES]))))
            else:
                warnings.append(Problem(name, "*", "not_empty (table dropped)", 0, (), "warning"))
            continue
        missing = [c for c in schema.required if c not in frame.columns]
        for column in missing:
            errors.append(
                Problem(name, column, "required_column", len(frame), tuple(map(str, frame.columns[:N_EXAMPLES])))
            )
        if missing:
            continue
        typed[name] = _type_table(name, frame, errors)
    if errors:
        raise ValidationError(errors)
    found = {name: tuple(map(str, raw[name].columns)) for name in typed}
    tables = _soft_phase(typed, now, warnings, drop_duplicates=drop_duplicates, found=found)
    return ValidationResult(tables, warnings, found_columns={n: c for n, c in found.items() if n in tables})


def table_files(data_dir: Path | str, tables: Iterable[str] | None = None) -> tuple[dict[str, Path], list[Problem]]:
    """Each contract table's file in `data_dir` (``customers`` always), and the problems finding them.

    A table present as both CSV and Parquet, and a missing customers table, are problems;
    other tables are optional. The caller raises once, with every problem it found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "purchases.csv").write_text("customer_id,timestamp,amount\\n")
    >>> paths, problems = table_files(d)
    >>> list(paths), [p.check for p in problems]
    (['purchases'], ['table_present'])
    """
    data_dir = Path(data_dir)
    wanted = list(TABLES) if tables is None else ["customers", *tables]
    if unknown := sorted(set(wanted) - TABLES.keys()):
        raise ValueError(f"unknown tables {unknown}; contract tables are {list(TABLES)}")
    paths: dict[str, Path] = {}
    errors: list[Problem] = []
    for name in TABLES:
        if name not in wanted:
            continue
        try:
            path = table_path(data_dir, name)
        except ValueError:
            errors.append(Problem(name, "*", "single_file", 2, (f"{name}.csv", f"{name}.parquet")))
            continue
        if path is None:
            if name == "customers":
                errors.append(Problem(name, "*", "table_present", 0, (str(data_dir / "customers.csv|.parquet"),)))
            continue
        paths[name] = path
    return paths, errors


def load_data(
    data_dir: Path | str,
    *,
    now: pd.Timestamp | None = None,
    tables: Iterable[str] | None = None,
    drop_duplicates: bool = False,
) -> ValidationResult:
    """Read the contract tables in `data_dir` and validate them.

    Files are found with `churnguard.io.table_path` (``NAME.csv`` or
    ``NAME.parquet``) and only read; other files in the directory (such as the
    generator's ``truth.parquet``) are ignored.

    Parameters
    ----------
    data_dir : path
        The data directory.
    now : Timestamp, optional
        See `validate_tables`.
    tables : iterable of str, optional
        Load only these tables (``customers`` is always loaded: every other
        table is checked against it). Default: every contract table present.
    drop_duplicates : bool, default=False
        See `validate_tables`.

    Raises
    ------
    ValidationError
        On any hard problem, including a missing customers table, a table
        present as both CSV and Parquet, or a file that cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "customers.csv").write_text("customer_id,segment\\n007,smb\\n")
    >>> result = load_data(d)
    >>> result.tables["customers"]["customer_id"].tolist(), result.sources["customers"].name
    (['007'], 'customers.csv')
    """
    paths, errors = table_files(data_dir, tables)
    raw: dict[str, pd.DataFrame] = {}
    sources: dict[str, Path] = {}
    for name, path in paths.items():
        try:
            raw[name] = read_raw_table(path)
        except pd.errors.EmptyDataError:  # a CSV without even a header row
            raw[name] = pd.DataFrame()
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad input, reported as such
            errors.append(Problem(name, "*", "readable", 0, (f"{path.name}: {exc}",)))
            continue
        sources[name] = path
    if errors:
        raise ValidationError(errors)
    result = validate_tables(raw, now=now, drop_duplicates=drop_duplicates)
    result.sources = {name: path for name, path in sources.items() if name in result.tables}
    return result


def _time_column(name: str) -> str | None:
    schema = TABLES[name]
    if schema.event_time is not None:
        return schema.event_time
    return {"customers": "signup_date", "assets": "install_date"}.get(name)


def summarize(result: ValidationResult) -> str:
    """A short text summary: per table rows, columns found and added, time range, then the warnings.

    The columns found in the input and the optional contract columns validation added
    (empty) are counted apart, so a 2-column file reads as 2 columns, not as the 6 the
    typed table has.

    Examples
    --------
    >>> raw = {"customers": pd.DataFrame({"customer_id": ["a", "b"],
    ...                                   "signup_date": ["2023-01-05", "2023-03-01"]})}
    >>> print(summarize(validate_tables(raw, now=pd.Timestamp("2024-01-01"))))
    customers: 2 rows, 2 columns in the input (+4 optional added empty: churn_date, value, do_not_contact, preferred_channel), signup_date 2023-01-05 .. 2023-03-01
    no warnings
    """
    lines = []
    for name, frame in result.tables.items():
        added = result.added_columns(name)
        line = f"{name}: {len(frame):,} rows, {frame.shape[1] - len(added)} columns in the input"
        if added:
            line += f" (+{len(added)} optional added empty: {', '.join(added)})"
        column = _time_column(name)
        if column is not None and frame[column].notna().any():
            line += f", {column} {_plain(frame[column].min())} .. {_plain(frame[column].max())}"
        if name in result.sources:
            line += f" (from {result.sources[name].name})"
        lines.append(line)
    if result.warnings:
        lines.append(f"{len(result.warnings)} warning(s):")
        lines.extend(f"  {w}" for w in result.warnings)
    else:
        lines.append("no warnings")
    return "\n".join(lines)


__all__ = [
    "KINDS",
    "TABLES",
    "Column",
    "Problem",
    "TableSchema",
    "ValidationError",
    "ValidationResult",
    "GROUPS",
    "example_value",
    "key_label",
    "load_data",
    "summarize",
    "table_files",
    "validate_tables",
]
