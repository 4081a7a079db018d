"""The output frames of an outreach run, their rounding, and writing them all or nothing.

Column lists are the contract of ``/work/shared/design.md``: :data:`OUTREACH_COLUMNS`
for the ranked list, :data:`SUPPRESSED_COLUMNS` for its ``.suppressed`` sibling, and
:data:`CONTROL_COLUMNS` (the list's columns and ``group``) for its ``.control`` sibling:
the held-out customers the CRM must not contact.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from churnguard.config import TASKS
from churnguard.io import atomic_path, sibling_path

__all__ = [
    "CONTROL_COLUMNS",
    "OUTREACH_COLUMNS",
    "PROBABILITY",
    "SUPPRESSED_COLUMNS",
    "control_frame",
    "outreach_frame",
    "round_probabilities",
    "suppressed_frame",
    "write_lists",
]

OUTREACH_COLUMNS = [
    "rank", "customer_id", "action", "channel", "priority", "churn_probability",
    "maintenance_probability", "value_at_risk", "reason_1", "reason_2", "reason_3", "explanation",
]
CONTROL_COLUMNS = [*OUTREACH_COLUMNS, "group"]
SUPPRESSED_COLUMNS = ["customer_id", "reason", "priority", "churn_probability", "maintenance_probability"]
PROBABILITY = {task: f"{task}_probability" for task in TASKS}


def round_probabilities(frame: pd.DataFrame) -> pd.DataFrame:
    """Round both probability columns of `frame` to 6 decimals, in place; returns `frame`.

    Examples
    --------
    >>> frame = pd.DataFrame({"churn_probability": [0.12345678], "maintenance_probability": [None]})
    >>> round_probabilities(frame).iloc[0].tolist()
    [0.123457, nan]
    """
    for column in PROBABILITY.values():
        frame[column] = frame[column].astype("float64").round(6)
    return frame


def outreach_frame(listed: pd.DataFrame, explained: pd.DataFrame) -> pd.DataFrame:
    """The outreach list's columns: ranked rows joined to their reasons, rounded.

    `listed` holds ``rank, customer_id, action, channel, priority`` and the
    probabilities, and ``value_at_risk`` (the stake of the chosen action, see
    :func:`churnguard.outreach.decide`; the priority when absent); `explained`, indexed
    by ``customer_id``, the ``reason_*`` and ``explanation`` of (some of) them.

    Examples
    --------
    >>> listed = pd.DataFrame({"rank": [1], "customer_id": ["a"], "action": ["retention_call"],
    ...                        "channel": ["email"], "priority": [12.3456789],
    ...                        "churn_probability": [0.2], "maintenance_probability": [None]})
    >>> explained = pd.DataFrame({"reason_1": ["3 complaints"]}, index=pd.Index(["a"], name="customer_id"))
    >>> row = outreach_frame(listed, explained).iloc[0]
    >>> float(row["priority"]), float(row["value_at_risk"]), row["reason_1"], row["reason_2"]
    (12.345679, 12.35, '3 complaints', None)
    """
    out = listed[["rank", "customer_id", "action", "channel", "priority", *PROBABILITY.values()]].copy()
    at_risk = listed["value_at_risk"] if "value_at_risk" in listed.columns else listed["priority"]
    out["value_at_risk"] = at_risk.astype("float64").round(2)
    out["priority"] = out["priority"].round(6)
    out = round_probabilities(out)
    joined = explained.reindex(out["customer_id"])
    for column in ("reason_1", "reason_2", "reason_3", "explanation"):
        values = joined[column].to_numpy(dtype=object) if column in joined.columns else np.full(len(out), None)
        out[column] = values
    return out[OUTREACH_COLUMNS].reset_index(drop=True)


def control_frame(controls: pd.DataFrame, explained: pd.DataFrame) -> pd.DataFrame:
    """The control file's columns: :func:`outreach_frame` of the held-out rows, and ``group``.

    `controls` are the rows of :func:`churnguard.outreach.held_out` (their ``rank`` is the
    order within the control file).

    Examples
    --------
    >>> controls = pd.DataFrame({"rank": [1], "customer_id": ["b"], "action": ["retention_call"],
    ...                          "channel": ["phone"], "priority": [8.0], "churn_probability": [0.4],
    ...                          "maintenance_probability": [None], "group": ["control"]})
    >>> frame = control_frame(controls, pd.DataFrame(index=pd.Index([], name="customer_id")))
    >>> list(frame.columns[-2:]), frame["group"].tolist()
    (['explanation', 'group'], ['control'])
    """
    out = outreach_frame(controls, explained)
    out["group"] = "control"
    return out[CONTROL_COLUMNS]


def suppressed_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The suppressed list's columns from scored rows (``suppressed_reason`` becomes ``reason``).

    Sorted by priority (rounded as written), highest first, then ``customer_id``: the
    lead sees at the top whom the day's rules held back that mattered most.

    Examples
    --------
    >>> rows = pd.DataFrame({"customer_id": ["a", "b"], "suppressed_reason": ["do_not_contact", "never_bought"],
    ...                      "priority": [1.5, 9.25], "churn_probability": [0.1234567, None],
    ...                      "maintenance_probability": [None, None]})
    >>> suppressed_frame(rows).values.tolist()
    [['b', 'never_bought', 9.25, nan, nan], ['a', 'do_not_contact', 1.5, 0.123457, nan]]
    """
    frame = round_probabilities(rows.rename(columns={"suppressed_reason": "reason"})[SUPPRESSED_COLUMNS].copy())
    frame["priority"] = frame["priority"].astype("float64").round(6)
    order = np.lexsort((frame["customer_id"].to_numpy(dtype=object).astype(str), -frame["priority"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _write(frame: pd.DataFrame, tmp: Path, suffix: str) -> None:
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)


def write_lists(
    out: Path | str, outreach: pd.DataFrame, suppressed: pd.DataFrame, *, scored: pd.DataFrame | None = None,
    controls: pd.DataFrame | None = None,
) -> tuple[Path, Path]:
    """Write the list to `out` and the suppressed list beside it, all or nothing.

    ``lists/outreach.csv`` gets ``lists/outreach.suppressed.csv`` and
    ``lists/outreach.control.csv`` (`controls`, :data:`CONTROL_COLUMNS`; empty with its
    header when None), and with `scored` also ``lists/outreach.scored.csv``. Every file
    goes to a temporary name first and is renamed only once all of them are complete,
    so a failure leaves no file, partial or new. Returns the list's and the suppressed
    list's paths; the control file is ``sibling_path(out, "control")``.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "lists" / "outreach.csv"
    >>> paths = write_lists(out, pd.DataFrame(columns=OUTREACH_COLUMNS), pd.DataFrame(columns=SUPPRESSED_COLUMNS))
    >>> [p.name for p in paths], sorted(p.name for p in out.parent.iterdir())
    (['outreach.csv', 'outreach.suppressed.csv'], ['outreach.control.csv', 'outreach.csv', 'outreach.suppressed.csv'])
    """
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use .csv or .parquet")
    suppressed_path = sibling_path(out, "suppressed")
    if controls is None:
        controls = pd.DataFrame(columns=CONTROL_COLUMNS)
    files = [(out, outreach), (suppressed_path, suppressed), (sibling_path(out, "control"), controls)]
    if scored is not None:
        files.append((sibling_path(out, "scored"), scored))
    with contextlib.ExitStack() as stack:
        for path, frame in files:
            _write(frame, stack.enter_context(atomic_path(path)), out.suffix)
    return out, suppressed_path
