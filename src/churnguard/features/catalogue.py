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
    fact : str, default=""
        What the reason speaks of ("purchase recency", "complaints", "NPS"): a customer
        gets at most one reason per fact, however many features of it push the risk up.
        Empty: the feature is its own fact.
    reason_if : str, default=""
        When the reason may be said at all, as ``column OP number`` (``and``-joined),
        e.g. ``"interactions_nps_latest <= 6"``: a value at the reassuring end of its
        scale (a promoter, a tenure over a year, nothing overdue) is never a reason to
        call, whatever its SHAP sign through interactions. Money in a template is
        written ``¤`` (the rules' currency).
    grows_with_time : bool, default=False
        True for features that grow with the calendar by construction (tenure, days
        since the first purchase, lifetime totals): today's values sit above the
        training cutoffs' for every customer, so the drift alarm leaves them out.

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
    fact: str = ""
    reason_if: str = ""
    grows_with_time: bool = False


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
