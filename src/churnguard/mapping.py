"""How a data directory's files map onto the data contract: ``churnguard.toml``.

An export from a CRM or a shop system rarely names its files and columns as the
contract does. A mapping file beside the tables (or given with ``--mapping FILE``)
says, per table, what the export is::

    [customers]
    file = "Kunden.csv"            # the source file, in the data directory
    delimiter = ";"                # one character; default ","
    encoding = "latin-1"           # default "utf-8"
    customer_id = "CustomerID"     # contract column = "source column"
    signup_date = "Signup Date"

    [customers.formats]            # the date format of a date column (Python strptime codes)
    signup_date = "%d/%m/%Y"

    [customers.constants]          # a value for a column the export lacks
    preferred_channel = "email"

Without a mapping nothing is guessed where it could be wrong: files are
``NAME.csv`` / ``NAME.parquet``, columns keep their names, dates must be ISO 8601,
and a delimiter other than a comma is used only when the file leaves no doubt
(:func:`csv_options`), with a warning. This module reads and applies a mapping the
same way for both readers of the contract (pandas: :func:`apply_to_frame`; DuckDB:
:func:`select_list`); which names are contract tables and columns is checked by
`churnguard.validation`, which knows the contract.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MAPPING_FILE = "churnguard.toml"
_SETTINGS = ("file", "delimiter", "encoding")
_SECTIONS = ("formats", "constants")
# strptime directives pandas and DuckDB both read the same way.
DATE_DIRECTIVES = ("d", "m", "Y", "y", "H", "M", "S", "f", "b", "B", "a", "A", "j", "p", "I", "z", "%")
# Delimiters recognised without a mapping when the header leaves no doubt.
_CANDIDATES = (";", "\t", "|")
_SNIFF_LINES = 50
_FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")


class MappingError(ValueError):
    """A mapping file that cannot be used: the message names the file and the key (bad input)."""


@dataclass(frozen=True)
class TableMapping:
    """What one table's export is: its file, how it is written, and where each contract column is.

    Examples
    --------
    >>> t = TableMapping("customers", columns={"customer_id": "CustomerID"})
    >>> t.source("customer_id"), t.source("segment")
    ('CustomerID', 'segment')
    """

    table: str
    file: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> source column
    formats: dict[str, str] = field(default_factory=dict)  # date column -> strptime format
    constants: dict[str, str] = field(default_factory=dict)  # column the export lacks -> its value, as text

    def source(self, column: str) -> str:
        """The source column that feeds contract column `column`."""
        return self.columns.get(column, column)

    @property
    def is_empty(self) -> bool:
        return not (self.file or self.delimiter or self.encoding or self.columns or self.formats or self.constants)


@dataclass(frozen=True)
class Mapping:
    """A data directory's mapping file, table by table (empty when there is none).

    Examples
    --------
    >>> m = Mapping(None, {"customers": TableMapping("customers", delimiter=";")})
    >>> m.of("customers").delimiter, m.of("usage").is_empty, m.name
    (';', True, 'churnguard.toml')
    """

    path: Path | None
    tables: dict[str, TableMapping] = field(default_factory=dict)

    def of(self, table: str) -> TableMapping:
        """The mapping of `table` (an empty one when the file does not mention it)."""
        return self.tables.get(table) or TableMapping(table)

    @property
    def name(self) -> str:
        """The file name to cite in a hint: this mapping's, else the default ``churnguard.toml``."""
        return self.path.name if self.path is not None else MAPPING_FILE

    def to_toml(self) -> str:
        """The mapping as TOML, as `churnguard validate` prints it.

        Examples
        --------
        >>> m = Mapping(None, {"customers": TableMapping("customers", delimiter=";",
        ...                                              columns={"customer_id": "CustomerID"},
        ...                                              formats={"signup_date": "%d/%m/%Y"})})
        >>> print(m.to_toml())
        [customers]
        delimiter = ";"
        customer_id = "CustomerID"
        [customers.formats]
        signup_date = "%d/%m/%Y"
        """
        lines: list[str] = []
        for name, t in self.tables.items():
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml_str(getattr(t, key))}" for key in _SETTINGS if getattr(t, key) is not None]
            lines += [f"{_toml_key(k)} = {_toml_str(v)}" for k, v in t.columns.items()]
            for section in _SECTIONS:
                if values := getattr(t, section):
                    lines.append(f"[{name}.{section}]")
                    lines += [f"{_toml_key(k)} = {_toml_str(v)}" for k, v in values.items()]
        return "\n".join(lines)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def load_mapping(path: Path | str) -> Mapping:
    """Read a mapping file; a key that cannot be used is a `MappingError` naming it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "churnguard.toml"
    >>> _ = p.write_text('[customers]\\ndelimiter = ";"\\ncustomer_id = "CustomerID"\\n'
    ...                  '[customers.formats]\\nsignup_date = "%d/%m/%Y"\\n')
    >>> load_mapping(p).of("customers").formats
    {'signup_date': '%d/%m/%Y'}
    >>> _ = p.write_text('[customers.formats]\\nsignup_date = "%d/%q/%Y"\\n')
    >>> load_mapping(p)
    Traceback (most recent call last):
    ...
    churnguard.mapping.MappingError: churnguard.toml: [customers.formats] signup_date = "%d/%q/%Y": %q is not a date directive (use %d %m %Y %y %H %M %S %f %b %B %a %A %j %p %I %z %%)
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise MappingError(f"{path}: cannot read the mapping file ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise MappingError(f"{path.name}: not valid TOML ({err})") from None
    tables = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise MappingError(f"{path.name}: {name} = {body!r}: each top-level key is a [table] section")
        tables[name] = _table_mapping(path.name, name, body)
    return Mapping(path, tables)


def _table_mapping(file_name: str, name: str, body: dict[str, Any]) -> TableMapping:
    def fail(key: str, value: Any, why: str) -> MappingError:
        shown = _toml_str(value) if isinstance(value, str) else repr(value)
        return MappingError(f"{file_name}: [{name}] {key} = {shown}: {why}")

    settings: dict[str, str] = {}
    columns: dict[str, str] = {}
    sections: dict[str, dict[str, str]] = {"formats": {}, "constants": {}}
    for key, value in body.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise fail(key, value, f"[{name}.{key}] is a section of column = value lines")
            for column, item in value.items():
                sections[key][column] = _section_value(file_name, name, key, column, item)
        elif key in _SETTINGS:
            if not isinstance(value, str) or not value:
                raise fail(key, value, "a setting is a non-empty string in quotes")
            settings[key] = value
        elif isinstance(value, str) and value:
            columns[key] = value
        else:
            raise fail(key, value, f"a column mapping names the source column in quotes, "
                                   f"e.g. {key} = \"{key.title()}\"")
    if (delimiter := settings.get("delimiter")) is not None and (len(delimiter) != 1 or delimiter in "\"\r\n"):
        raise fail("delimiter", delimiter, "a delimiter is one character, e.g. \";\" or \"\\t\"")
    if (encoding := settings.get("encoding")) is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise fail("encoding", encoding,
                       "not an encoding Python knows (e.g. \"utf-8\", \"latin-1\", \"cp1252\")") from None
    if (file := settings.get("file")) is not None and Path(file).suffix.lower() not in _FILE_SUFFIXES:
        raise fail("file", file, "a table file is .csv, .tsv, .txt or .parquet")
    for target, source in columns.items():
        if (other := [t for t, s in columns.items() if s == source and t != target]):
            raise fail(target, source, f"the same source column also feeds {other[0]}")
    for column in sections["constants"]:
        if column in columns:
            raise MappingError(f"{file_name}: [{name}.constants] {column}: also mapped to a source column "
                               f"({column} = {_toml_str(columns[column])}); keep one")
    return TableMapping(name, settings.get("file"), settings.get("delimiter"), settings.get("encoding"), columns,
                        sections["formats"], sections["constants"])


def _section_value(file_name: str, name: str, section: str, column: str, value: Any) -> str:
    where = f"{file_name}: [{name}.{section}] {column} = "
    if section == "formats":
        if not isinstance(value, str):
            raise MappingError(f"{where}{value!r}: a date format is a string such as \"%d/%m/%Y\"")
        if (why := date_format_problem(value)) is not None:
            raise MappingError(f"{where}{_toml_str(value)}: {why}")
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise MappingError(f"{where}{value!r}: a constant is a string, a number, a boolean or a date")


def date_format_problem(fmt: str) -> str | None:
    """Why `fmt` cannot be a date column's format, or None when it can.

    Examples
    --------
    >>> date_format_problem("%d/%m/%Y") is None
    True
    >>> date_format_problem("dd/mm/yyyy")
    'no strptime directive in it (e.g. "%d/%m/%Y")'
    """
    directives = re.findall(r"%(.)", fmt.replace("%%", ""))
    if not directives:
        return 'no strptime directive in it (e.g. "%d/%m/%Y")'
    for d in directives:
        if d not in DATE_DIRECTIVES:
            return f"%{d} is not a date directive (use {' '.join('%' + x for x in DATE_DIRECTIVES)})"
    sample = dt.datetime(2024, 11, 23, 17, 45, 30, tzinfo=dt.timezone.utc)
    try:
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as err:
        return f"it does not read back what it writes ({err})"
    return None


def mapping_for(data_dir: Path | str, mapping: Path | str | Mapping | None = None) -> Mapping:
    """The mapping of `data_dir`: `mapping` if given, else its ``churnguard.toml``, else an empty one.

    Examples
    --------
    >>> import tempfile
    >>> mapping_for(tempfile.mkdtemp()).tables
    {}
    """
    if isinstance(mapping, Mapping):
        return mapping
    if mapping is not None:
        return load_mapping(mapping)
    beside = Path(data_dir) / MAPPING_FILE
    return load_mapping(beside) if beside.is_file() else Mapping(None)


# --------------------------------------------------------------------------- reading a CSV


@dataclass(frozen=True)
class CsvOptions:
    """How one CSV file is read; `detected` is True when the delimiter was found, not declared."""

    delimiter: str = ","
    encoding: str = "utf-8"
    detected: bool = False


def _text_encoding(encoding: str) -> str:
    # Spreadsheet exports start UTF-8 files with a byte-order mark; it is not part of the first column's name.
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def csv_options(path: Path, table: TableMapping) -> CsvOptions:
    """The delimiter and encoding of one CSV file: as declared, else a comma unless the file leaves no doubt.

    No doubt means: the header holds no comma, exactly one of ``;``, tab and ``|``, and
    the first lines all split into as many fields as the header does on it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "customers.csv"
    >>> _ = p.write_text("customer_id;segment\\n1;smb\\n2;ent\\n")
    >>> csv_options(p, TableMapping("customers"))
    CsvOptions(delimiter=';', encoding='utf-8', detected=True)
    >>> _ = p.write_text("customer_id;segment\\n1;smb;x\\n")
    >>> csv_options(p, TableMapping("customers")).delimiter
    ','
    """
    encoding = table.encoding or "utf-8"
    if table.delimiter is not None:
        return CsvOptions(table.delimiter, encoding)
    if path.suffix.lower() == ".tsv":
        return CsvOptions("\t", encoding)
    try:
        with open(path, encoding=_text_encoding(encoding), newline="") as handle:
            lines = [line for _, line in zip(range(_SNIFF_LINES + 1), handle)]
    except (OSError, UnicodeDecodeError):
        return CsvOptions(",", encoding)  # the reader says what is wrong with the file, in its words
    if not lines or "," in lines[0]:
        return CsvOptions(",", encoding)
    present = [c for c in _CANDIDATES if c in lines[0]]
    if len(present) != 1:
        return CsvOptions(",", encoding)
    rows = [row for row in csv.reader(lines, delimiter=present[0]) if row]
    if len(rows[0]) < 2 or any(len(row) != len(rows[0]) for row in rows[1:_SNIFF_LINES]):
        return CsvOptions(",", encoding)
    return CsvOptions(present[0], encoding, detected=True)


def delimiter_name(delimiter: str) -> str:
    """How a delimiter reads in a message: ``';'``, ``tab``.

    Examples
    --------
    >>> delimiter_name("\\t"), delimiter_name(";")
    ('tab', "';'")
    """
    return "tab" if delimiter == "\t" else repr(delimiter)


# --------------------------------------------------------------------------- applying the columns


def column_plan(table: TableMapping, header: list[str], file_name: str, mapping_name: str = MAPPING_FILE
                ) -> list[tuple[str, str | None, str | None]]:
    """(output column, source column, constant) of each column, in the file's order, constants last.

    A source column a mapping names must be in the file; a constant is for a column the
    file lacks. A file column that shares its name with a mapped contract column is left
    out (the mapping says where that column is).

    Examples
    --------
    >>> t = TableMapping("customers", columns={"customer_id": "CustomerID"}, constants={"region": "EU"})
    >>> column_plan(t, ["CustomerID", "segment"], "customers.csv")
    [('customer_id', 'CustomerID', None), ('segment', 'segment', None), ('region', None, 'EU')]
    """
    present = set(header)
    for target, source in table.columns.items():
        if source not in present:
            near = [c for c in header if _loose(c) == _loose(source)]
            also = f"; did you mean {near[0]!r}?" if near else ""
            raise MappingError(f"{mapping_name}: [{table.table}] {target} = {_toml_str(source)}: {file_name} has no "
                               f"column {source!r}{also} (its columns: {', '.join(map(repr, header[:12]))}"
                               f"{', ...' if len(header) > 12 else ''})")
    renamed = {source: target for target, source in table.columns.items()}
    plan: list[tuple[str, str | None, str | None]] = []
    for column in header:
        if column in renamed:
            plan.append((renamed[column], column, None))
        elif column not in table.columns:
            plan.append((column, column, None))
    names = {out for out, _, _ in plan}
    for column, value in table.constants.items():
        if column in names:
            raise MappingError(f"{mapping_name}: [{table.table}.constants] {column} = {_toml_str(value)}: "
                               f"{file_name} has a column {column!r} already; a constant is for a column it lacks")
        plan.append((column, None, value))
    return plan


def _loose(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def loose_match(name: str, columns) -> str | None:
    """The first of `columns` equal to `name` but for case, spaces, underscores and hyphens.

    Examples
    --------
    >>> loose_match("customer_id", ["Customer Id", "segment"])
    'Customer Id'
    >>> loose_match("customer_id", ["client"]) is None
    True
    """
    target = _loose(name)
    return next((str(c) for c in columns if _loose(str(c)) == target and str(c) != name), None)


def apply_to_frame(frame: pd.DataFrame, plan: list[tuple[str, str | None, str | None]]) -> pd.DataFrame:
    """`frame` with the plan's columns: renamed, in order, constants added (the input is not modified).

    Examples
    --------
    >>> frame = pd.DataFrame({"CustomerID": ["7"]})
    >>> apply_to_frame(frame, [("customer_id", "CustomerID", None), ("region", None, "EU")]).to_dict("list")
    {'customer_id': ['7'], 'region': ['EU']}
    """
    columns = {}
    for out, source, constant in plan:
        columns[out] = frame[source] if source is not None else pd.Series([constant] * len(frame), index=frame.index,
                                                                          dtype="str")
    return pd.DataFrame(columns, index=frame.index)


def select_list(plan: list[tuple[str, str | None, str | None]]) -> str:
    """The plan as a SQL select list over the file's columns (constants as text).

    Examples
    --------
    >>> select_list([("customer_id", "CustomerID", None), ("region", None, "EU")])
    '"CustomerID" AS "customer_id", CAST(\\'EU\\' AS VARCHAR) AS "region"'
    """
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    parts = []
    for out, source, constant in plan:
        value = q(source) if source is not None else "CAST('" + constant.replace("'", "''") + "' AS VARCHAR)"
        parts.append(f"{value} AS {q(out)}")
    return ", ".join(parts)


__all__ = ["DATE_DIRECTIVES", "MAPPING_FILE", "CsvOptions", "Mapping", "MappingError", "TableMapping",
           "apply_to_frame", "column_plan", "csv_options", "date_format_problem", "delimiter_name",
           "load_mapping", "loose_match", "mapping_for", "select_list"]
