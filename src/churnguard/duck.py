"""The process's DuckDB database and its limits: memory, spill directory, threads.

Every DuckDB query of churnguard (validation over the files, the feature families)
runs on one in-memory database per process with an explicit memory limit and a
temporary directory, so a query over more data than fits spills to disk instead of
growing the process. The limits come from the environment, with defaults derived
from the machine:

``CHURNGUARD_DUCKDB_MEMORY_LIMIT``
    DuckDB's ``memory_limit`` (e.g. ``4GB``). Default: a quarter of physical memory,
    which leaves the rest for the pandas feature rows and the models.
``CHURNGUARD_DUCKDB_TEMP_DIR``
    Where DuckDB spills. Default: ``churnguard-duckdb-<pid>`` in the system temp directory.
``CHURNGUARD_THREADS``
    How many families (and chunks) run side by side. Default: the cores this process
    may use. Each query itself runs on one thread (see :func:`database`).
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass

import duckdb

MEMORY_ENV, TEMP_ENV, THREADS_ENV = "CHURNGUARD_DUCKDB_MEMORY_LIMIT", "CHURNGUARD_DUCKDB_TEMP_DIR", "CHURNGUARD_THREADS"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class DuckSettingsError(ValueError):
    """A ``CHURNGUARD_*`` DuckDB setting in the environment that cannot be used (bad input)."""


@dataclass(frozen=True)
class DuckSettings:
    """DuckDB limits for this process.

    Examples
    --------
    >>> DuckSettings("2GB", "/tmp/spill", 2).memory_limit
    '2GB'
    """

    memory_limit: str
    temp_directory: str
    threads: int


def settings() -> DuckSettings:
    """The limits from the environment, else the machine-derived defaults.

    Examples
    --------
    >>> import os
    >>> os.environ["CHURNGUARD_DUCKDB_MEMORY_LIMIT"] = "3GB"
    >>> settings().memory_limit
    '3GB'
    >>> del os.environ["CHURNGUARD_DUCKDB_MEMORY_LIMIT"]
    >>> settings().threads >= 1
    True
    """
    memory = os.environ.get(MEMORY_ENV)
    if not memory:
        total = _physical_memory()
        memory = f"{max(1, total // 4 // 2**20)}MB" if total else "4GB"
    # One directory per process: DuckDB removes a spill directory it created when it closes,
    # which must not pull the floor from under another process spilling there.
    temp = os.environ.get(TEMP_ENV) or os.path.join(tempfile.gettempdir(), f"churnguard-duckdb-{os.getpid()}")
    raw_threads = os.environ.get(THREADS_ENV)
    try:
        threads = max(1, int(raw_threads)) if raw_threads else _cores()
    except ValueError:
        raise DuckSettingsError(f"{THREADS_ENV}={raw_threads!r} is not a whole number of threads") from None
    return DuckSettings(memory, temp, threads)


def configure(con: duckdb.DuckDBPyConnection, limits: DuckSettings | None = None) -> duckdb.DuckDBPyConnection:
    """Apply the limits and the contract's conventions (UTC, one thread per query) to `con`.

    One thread per query: parallel float sums add in a run-dependent order, and the
    last-bit noise would make two builds of the same data differ. Both cores are still
    used: families (and chunks) run side by side, each query on its caller's thread.

    Examples
    --------
    >>> con = configure(duckdb.connect(), DuckSettings("1GB", "/tmp/churnguard-doctest", 1))
    >>> con.execute("SELECT current_setting('threads'), current_setting('TimeZone')").fetchone()
    (1, 'UTC')
    """
    limits = limits or settings()
    try:
        con.execute(f"SET memory_limit = '{limits.memory_limit}'")
    except duckdb.Error as err:
        raise DuckSettingsError(f"{MEMORY_ENV}={limits.memory_limit!r} is not a memory size such as 4GB "
                                f"({err})") from None
    con.execute(f"SET temp_directory = '{limits.temp_directory}'")
    con.execute("SET threads TO 1")
    # Naive timestamps in the files are UTC (the data contract).
    con.execute("SET TimeZone = 'UTC'")
    return con


_DATABASES: dict[int, duckdb.DuckDBPyConnection] = {}
_DATABASE_LOCK = threading.Lock()


def database() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB database, created and configured on first use.

    Keyed by process id: a forked worker (Spark's Python workers, multiprocessing) must
    open its own database rather than use its parent's. It never holds tables; queries
    register their inputs on a cursor of their own.

    Examples
    --------
    >>> database() is database()
    True
    """
    pid = os.getpid()
    with _DATABASE_LOCK:  # families build in threads; only one may create the database
        if pid not in _DATABASES:
            con = configure(duckdb.connect())
            # Row order of results is fixed by explicit ORDER BY; elsewhere it may be free.
            con.execute("SET preserve_insertion_order = false")
            _DATABASES[pid] = con
        return _DATABASES[pid]


def cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to this process's database; views registered on it stay private.

    Examples
    --------
    >>> with cursor() as con:
    ...     con.execute("SELECT 41 + 1").fetchone()
    (42,)
    """
    return database().cursor()


def ordered_connection() -> duckdb.DuckDBPyConnection:
    """A private single-threaded connection that keeps file order (for "the first bad rows").

    Examples
    --------
    >>> with ordered_connection() as con:
    ...     con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    (True,)
    """
    con = configure(duckdb.connect())
    con.execute("SET preserve_insertion_order = true")
    return con


def counting_connection() -> duckdb.DuckDBPyConnection:
    """A private connection whose queries use every thread, for answers that no order can change.

    Counts, distinct counts, minima and row hashes come out the same whatever order the
    threads meet the rows in, unlike float sums: the contract's checks run here on both
    cores, the feature families on :func:`cursor`.

    Examples
    --------
    >>> with counting_connection() as con:
    ...     con.execute("SELECT count(*) FROM range(10)").fetchone()
    (10,)
    """
    limits = settings()
    con = configure(duckdb.connect(), limits)
    con.execute(f"SET threads TO {limits.threads}")
    con.execute("SET preserve_insertion_order = false")
    return con


__all__ = ["DuckSettings", "DuckSettingsError", "configure", "counting_connection", "cursor", "database",
           "ordered_connection", "settings"]
