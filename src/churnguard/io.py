"""Read and write tables as CSV or Parquet, chosen by file extension.

Writes are atomic: the frame goes to a temporary file in the target's
directory, which is renamed over the target only once it is complete, so an
interrupted or failing run never leaves a partial file at an output path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

SUPPORTED_SUFFIXES = (".parquet", ".csv")


def table_path(data_dir: Path | str, name: str) -> Path | None:
    """Return the file holding table `name` in `data_dir`, or None if absent.

    Raises ValueError when both ``NAME.csv`` and ``NAME.parquet`` exist,
    because silently preferring one would hide a stale export.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "customers.csv").write_text("customer_id\\n1\\n")
    >>> table_path(d, "customers").name
    'customers.csv'
    >>> table_path(d, "purchases") is None
    True
    """
    data_dir = Path(data_dir)
    found = [data_dir / f"{name}{suffix}" for suffix in SUPPORTED_SUFFIXES]
    found = [p for p in found if p.exists()]
    if len(found) > 1:
        raise ValueError(
            f"table {name}: both {found[0].name} and {found[1].name} exist in {data_dir}; keep one"
        )
    return found[0] if found else None


# Delimited text read as CSV (a mapping file may name a .tsv or .txt export).
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def read_raw_table(path: Path | str, *, delimiter: str = ",", encoding: str = "utf-8") -> pd.DataFrame:
    """Read one table file as it is on disk, every CSV column as text.

    CSV columns stay strings so that validation, not the CSV parser, decides
    what a bad date or number is and can report the offending values.
    `delimiter` and `encoding` apply to delimited text only.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "customers.csv"
    >>> _ = p.write_text("customer_id,value\\n007,12.5\\n")
    >>> read_raw_table(p)["customer_id"].tolist()
    ['007']
    """
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        # keep_default_na=False + na_values=[""]: "NA" could be a real topic or id.
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], sep=delimiter, encoding=encoding)
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it to `path` on success.

    On any exception the temporary file is removed and `path` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; an output file should get the usual permissions (umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write `frame` to `path` as CSV or Parquet (by extension), atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lists" / "x.csv"
    >>> _ = write_table(pd.DataFrame({"a": [1, 2]}), out)
    >>> out.read_text().splitlines()
    ['a', '1', '2']
    """
    path = Path(path)
    if path.suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"{path}: unsupported output type {path.suffix!r}; use .csv or .parquet")
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path


def write_table_parts(parts: Iterable[pd.DataFrame], path: Path | str) -> tuple[int, list[str]]:
    """Write frames with the same columns one after another to one CSV or Parquet file, atomically.

    Only one part is in memory at a time; a CSV holds what `write_table` of their
    concatenation would, a Parquet file one row group (or more) per part. Returns the
    number of rows and the columns.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> write_table_parts([pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]})], out)
    (2, ['a'])
    >>> out.read_text().splitlines()
    ['a', '1', '2']
    """
    path = Path(path)
    if path.suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"{path}: unsupported output type {path.suffix!r}; use .csv or .parquet")
    counted = {"rows": 0, "columns": None}

    def checked() -> Iterator[pd.DataFrame]:
        for part in parts:
            if counted["columns"] is None:
                counted["columns"] = list(part.columns)
            elif list(part.columns) != counted["columns"]:
                raise ValueError(f"{path}: a part has columns {list(part.columns)}, the first {counted['columns']}")
            counted["rows"] += len(part)
            yield part

    with atomic_path(path) as tmp:
        (_parquet_parts if path.suffix == ".parquet" else _csv_parts)(checked(), tmp)
        if counted["columns"] is None:
            raise ValueError(f"{path}: no part to write")
    return counted["rows"], counted["columns"]


def _csv_parts(parts: Iterator[pd.DataFrame], tmp: Path) -> None:
    for i, part in enumerate(parts):
        part.to_csv(tmp, index=False, header=i == 0, mode="w" if i == 0 else "a")


def _parquet_parts(parts: Iterator[pd.DataFrame], tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for part in parts:
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                # A text column empty in the first part is still text in the others.
                schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                    for f in table.schema], metadata=table.schema.metadata)
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def categories_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its ``category`` columns as plain text (missing stays missing).

    A feature file is read by other tools too: MLflow's signature check refuses a
    dictionary-encoded (``category``) column where the model's signature says
    ``string``, and text reads the same in pandas, Spark and DuckDB.

    Examples
    --------
    >>> frame = pd.DataFrame({"plan": pd.Categorical(["gold", None]), "n": [1.0, 2.0]})
    >>> categories_as_text(frame)["plan"].tolist()
    ['gold', None]
    """
    columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not columns:
        return frame
    out = frame.copy(deep=False)  # the float columns are shared, not copied (a million rows: ~1.8 GB)
    for column in columns:
        out[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return out


def sibling_path(path: Path | str, tag: str) -> Path:
    """``lists/outreach.csv`` + ``suppressed`` -> ``lists/outreach.suppressed.csv``.

    Examples
    --------
    >>> str(sibling_path("lists/outreach.csv", "suppressed"))
    'lists/outreach.suppressed.csv'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")
