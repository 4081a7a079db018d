"""Command-line option values, checked before any work: ISO dates and output paths.

A nightly job acts on the exit code, so a value that cannot be right must stop the
command at once, with one line naming the option and the value, and before the
expensive part (reading millions of rows, loading models) has started. Nothing here
imports MLflow, LightGBM or the feature code: the checks cost milliseconds.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import click

__all__ = ["IsoDate", "OptionError", "check_output_file", "parse_iso_date"]

OUTPUT_SUFFIXES = (".csv", ".parquet")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A time needs its offset: "2026-11-01T06:00" is 06:00 where? The job's server and the
# CRM's database rarely agree on a zone, so a naive time is refused, not guessed.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})")


class OptionError(click.UsageError):
    """A bad option value: printed as ``error: --option: why`` (no usage banner), exit code 2.

    Examples
    --------
    >>> OptionError("--out: 'list.xlsx' ...").exit_code
    2
    """

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def parse_iso_date(text: str) -> "pd.Timestamp":
    """ISO 8601 `text` as a tz-naive UTC timestamp; anything else raises ValueError.

    Accepted: ``YYYY-MM-DD`` (midnight UTC) or a full datetime with an offset
    (``2026-11-01T06:00:00+01:00``, ``...Z``), converted to UTC. Day-first or
    month-first forms (``01/11/2026``), words (``yesterday``) and times without an
    offset are refused rather than guessed.

    Parameters
    ----------
    text : str
        The option value as typed.

    Raises
    ------
    ValueError
        With a message that quotes `text` and says what is expected.

    Examples
    --------
    >>> parse_iso_date("2026-11-01")
    Timestamp('2026-11-01 00:00:00')
    >>> parse_iso_date("2026-11-01T06:00:00+01:00")
    Timestamp('2026-11-01 05:00:00')
    >>> parse_iso_date("01/11/2026")
    Traceback (most recent call last):
    ...
    ValueError: '01/11/2026' is not an ISO date (YYYY-MM-DD)
    >>> parse_iso_date("2026-11-01T06:00")
    Traceback (most recent call last):
    ...
    ValueError: '2026-11-01T06:00' has a time but no UTC offset; write e.g. '2026-11-01T06:00+00:00', or a date (YYYY-MM-DD)
    """
    # pandas and the timeline load only once a date is parsed: `churnguard --help` stays instant.
    import pandas as pd

    from churnguard.timeline import coerce_as_of

    value = text.strip()
    if _DATE.fullmatch(value):
        try:
            return coerce_as_of(_dt.date.fromisoformat(value))
        except ValueError as err:
            raise ValueError(f"{text!r} is not a valid date ({err})") from None
    clock = _DATETIME.match(value)
    if clock is None:
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)")
    rest = value[clock.end():]
    if not rest:
        raise ValueError(f"{text!r} has a time but no UTC offset; write e.g. '{value}+00:00', "
                         "or a date (YYYY-MM-DD)")
    if not _OFFSET.fullmatch(rest):
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD) or datetime with an offset "
                         "(YYYY-MM-DDTHH:MM:SS+HH:MM)")
    try:
        moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid datetime ({err})") from None
    return coerce_as_of(moment)


class IsoDate(click.ParamType):
    """A click option type: ISO 8601 text to a UTC timestamp, or ``error: --opt: ...`` and exit 2.

    Examples
    --------
    >>> @click.command()
    ... @click.option("--as-of", type=IsoDate())
    ... def show(as_of):
    ...     click.echo(as_of)
    >>> show.main(["--as-of", "2026-11-01"], standalone_mode=False)
    2026-11-01 00:00:00
    """

    name = "DATE"

    def convert(self, value, param, ctx):
        if value is None or not isinstance(value, str):  # already parsed (a default, or a second pass)
            return value
        try:
            return parse_iso_date(str(value))
        except ValueError as err:
            option = param.opts[0] if param is not None and param.opts else "date"
            raise OptionError(f"{option}: {err}", ctx=ctx) from None


def _is_uri(value: str) -> bool:
    return "://" in value


def check_output_file(value: str | Path, *, option: str = "--out", suffixes=OUTPUT_SUFFIXES) -> None:
    """Refuse an output file that could not be written, before any work is done.

    Checks the extension, that the path is not a directory, and that the nearest
    existing folder above it is a writable directory (not a file). A URI
    (``s3a://...``) gets the extension check only: its store decides the rest.

    Raises
    ------
    OptionError
        Naming `option` and the path.

    Examples
    --------
    >>> check_output_file("lists/outreach.csv")
    >>> check_output_file("lists/outreach.xlsx")
    Traceback (most recent call last):
    ...
    churnguard.cli_options.OptionError: --out: 'lists/outreach.xlsx' has extension '.xlsx'; use .csv or .parquet
    """
    text = str(value)
    suffix = Path(text.rstrip("/")).suffix
    if suffix not in suffixes:
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise OptionError(f"{option}: {text!r} has {what}; use {' or '.join(suffixes)}")
    if _is_uri(text):
        return
    path = Path(text)
    if path.is_dir():
        raise OptionError(f"{option}: {text!r} is a directory; give a file name ending in {' or '.join(suffixes)}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OptionError(f"{option}: cannot write {text!r}: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(f"{option}: cannot write {text!r}: directory {str(parent)!r} is not writable")
