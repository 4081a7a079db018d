"""The feature catalogue: what each feature means, its unit, and how to word it as a reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class FeatureInfo:
    """One feature as a person should read it.

    Parameters
    ----------
    name : str
        Column name in the feature frame.
    family : str
        Table family that builds it (``purchases``, ``interactions``, ...).
    description : str
        One line a data scientist reads in ``churnguard features --list``.
    unit : str
        ``days``, ``count``, ``share``, ``currency``, ``score``, ``flag``, ``category``, ...
    reason : str, default=""
        A :py:meth:`str.format` template over the customer's whole feature row, worded for
        a care agent, e.g. ``"{complaints_unresolved_30d:.0f} of {complaints_30d:.0f}
        complaints in the last 30 days unresolved"``. Empty: never shown as a reason.
    direction : str, default="up"
        ``"up"`` if a larger value is the worrying side, ``"down"`` if a smaller one is.
    model_input : bool, default=True
        False for context columns (e.g. the product name of the most overdue asset) that
        reasons may quote but models never see.

    Examples
    --------
    >>> info = FeatureInfo("complaints_30d", "interactions", "Complaints in the 30 days before as_of",
    ...                    "count", reason="{complaints_30d:.0f} complaints in the last 30 days")
    >>> info.reason.format(complaints_30d=3.0)
    '3 complaints in the last 30 days'
    """

    name: str
    family: str
    description: str
    unit: str
    reason: str = ""
    direction: str = "up"
    model_input: bool = True


def catalogue_frame(infos: list[FeatureInfo]) -> pd.DataFrame:
    """Turn a list of :class:`FeatureInfo` into a table, one row per feature.

    Examples
    --------
    >>> catalogue_frame([FeatureInfo("tenure_days", "customers", "Days since signup", "days")])[
    ...     ["name", "unit"]]
              name  unit
    0  tenure_days  days
    """
    columns = [f for f in FeatureInfo.__dataclass_fields__]
    return pd.DataFrame([asdict(i) for i in infos], columns=columns)
