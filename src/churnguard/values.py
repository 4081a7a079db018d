"""What a value in an input file means, whatever the file format: the one definition.

A CSV cell is text; a Parquet cell can be text, a dictionary code, a number, a flag
or a timestamp of any unit and zone. Both readers of the data contract, the pandas
one (`churnguard.validation`) and the DuckDB one (`churnguard.relations`), take the
words and rules from here, in pandas (:func:`decoded`, :func:`blank_as_missing`) and
in SQL (:func:`sql_blank`, :func:`sql_missing`, :func:`sql_bool`), so that the same
export means the same thing as CSV and as Parquet, and on either path:

- empty and whitespace-only text is missing, in every column;
- in a date, number or flag column the usual missing-value words are missing too
  (``NA``, ``null``, ...); in an id or text column they stay text (``NA`` can be
  a real topic or id);
- a flag is one of :data:`TRUE_WORDS` or :data:`FALSE_WORDS`, case-insensitive,
  whether the column holds text, numbers or booleans.
"""

from __future__ import annotations

import pandas as pd

# The whitespace a blank cell may hold. Spelled out (not str.strip()'s idea of it)
# so that DuckDB's trim(x, chars) strips exactly the same characters.
WHITESPACE = " \t\n\r\x0b\x0c"
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
# "NA" stays text in id and text columns; in a date, number or flag column it can only mean "missing".
MISSING_WORDS = ("", "na", "n/a", "nan", "nat", "null", "none")
BOOL_WORDS = {**{w: True for w in TRUE_WORDS}, **{w: False for w in FALSE_WORDS}}


def decoded(s: pd.Series) -> pd.Series:
    """`s` with dictionary codes replaced by their values, and Python strings as pandas text.

    Parquet's dictionary-encoded strings arrive as ``category``; an exporter's string
    column can arrive as ``object``. Typing then sees what a CSV reader would have seen.

    Examples
    --------
    >>> decoded(pd.Series(pd.Categorical(["a", None, "b"]))).tolist()
    ['a', nan, 'b']
    >>> decoded(pd.Series(["x", None], dtype=object)).dtype
    <StringDtype(na_value=nan)>
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        target = s.cat.categories.dtype
        if s.hasnans and target.kind in "iu":  # integer codes' values with gaps: NaN needs floats
            target = "float64"
        s = s.astype("boolean" if target.kind == "b" else target)
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "string":
        s = s.astype("str")
    return s


def blank_as_missing(s: pd.Series) -> pd.Series:
    """`s` with empty and whitespace-only text set to missing (other values untouched).

    Examples
    --------
    >>> blank_as_missing(pd.Series(["a", "", "  ", " b "], dtype="str")).tolist()
    ['a', nan, nan, ' b ']
    """
    if s.dtype != "str":
        return s
    blank = s.str.strip(WHITESPACE) == ""
    return s.mask(blank.fillna(False).to_numpy()) if blank.any() else s


def sql_blank(q: str) -> str:
    """SQL condition: the text `q` is empty or whitespace-only (false for NULL).

    Examples
    --------
    >>> import duckdb
    >>> duckdb.connect().execute(f"SELECT {sql_blank(repr(' '))}, {sql_blank(repr('a'))}").fetchone()
    (True, False)
    """
    # Every WHITESPACE character is below "!": a text starting above it is not blank, and that
    # test is a few times cheaper than trimming with a character set (which DuckDB does slowly).
    return f"(CASE WHEN ascii({q}) > 32 THEN false ELSE trim({q}, {_lit(WHITESPACE)}) = '' END)"


def sql_trimmed(q: str) -> str:
    """SQL expression: the text `q` without leading and trailing WHITESPACE.

    Examples
    --------
    >>> import duckdb
    >>> duckdb.connect().execute(f"SELECT {sql_trimmed(repr(' a b '))}, {sql_trimmed(repr('a'))}").fetchone()
    ('a b', 'a')
    """
    # Most values have nothing to trim; only those starting or ending at or below " " pay for trim.
    return f"(CASE WHEN {_nothing_to_trim(q)} THEN {q} ELSE trim({q}, {_lit(WHITESPACE)}) END)"


def _nothing_to_trim(q: str) -> str:
    # Every WHITESPACE character is at or below " ": text whose ends lie above it is already trimmed.
    return f"ascii({q}) > 32 AND ascii(right({q}, 1)) > 32"


def sql_missing(q: str) -> str:
    """SQL condition: `q` is NULL, blank or a missing-value word (for date, number and flag columns).

    Examples
    --------
    >>> import duckdb
    >>> duckdb.connect().execute(f"SELECT {sql_missing(repr(' NULL '))}, {sql_missing(repr('0'))}").fetchone()
    (True, False)
    """
    # A longer text with nothing to trim cannot be one of the words: no lower() or IN for it.
    longest = max(map(len, MISSING_WORDS))
    return (f"({q} IS NULL OR CASE WHEN length({q}) > {longest} AND {_nothing_to_trim(q)} "
            f"THEN false ELSE lower({sql_trimmed(q)}) IN ({', '.join(map(_lit, MISSING_WORDS))}) END)")


def sql_bool(q: str) -> str:
    """SQL expression: the flag a text `q` spells (NULL when it spells none).

    Examples
    --------
    >>> import duckdb
    >>> words = ", ".join(sql_bool(repr(w)) for w in ("Yes", "n", "maybe"))
    >>> duckdb.connect().execute(f"SELECT {words}").fetchone()
    (True, False, None)
    """
    word = f"lower({sql_trimmed(q)})"
    return (f"CASE WHEN {word} IN ({', '.join(map(_lit, TRUE_WORDS))}) THEN true "
            f"WHEN {word} IN ({', '.join(map(_lit, FALSE_WORDS))}) THEN false END")


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


__all__ = ["BOOL_WORDS", "FALSE_WORDS", "MISSING_WORDS", "TRUE_WORDS", "WHITESPACE", "blank_as_missing", "decoded",
           "sql_blank", "sql_bool", "sql_missing", "sql_trimmed"]
