"""Population stability index (PSI): how far today's features moved from the training data.

``PSI = sum_b (actual_b - expected_b) * ln(actual_b / expected_b)`` over the bins of
the training reference (quantile bins for numbers, one bin per category, one bin for
missing values). Rules of thumb used in credit scoring and here: below 0.1 stable,
0.1 to 0.2 a moderate shift, above 0.2 a major shift worth a look before trusting
the scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from churnguard.training.model import reference_shares

__all__ = ["MAJOR", "MODERATE", "drift_table", "drift_level", "population_stability_index", "psi_of_values"]

MODERATE = 0.1
MAJOR = 0.2
# Empty bins would make the log infinite; this floor is the usual convention.
_EPS = 1e-4


def population_stability_index(expected, actual) -> float:
    """PSI between two vectors of bin shares (each summing to about 1).

    Examples
    --------
    >>> population_stability_index([0.5, 0.5], [0.5, 0.5])
    0.0
    >>> round(population_stability_index([0.5, 0.5], [0.9, 0.1]), 3)
    0.879
    """
    e = np.clip(np.asarray(expected, dtype="float64"), _EPS, None)
    a = np.clip(np.asarray(actual, dtype="float64"), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_level(psi: float) -> str:
    """``"major"`` above 0.2, ``"moderate"`` above 0.1, else ``"stable"``.

    Examples
    --------
    >>> [drift_level(x) for x in (0.05, 0.15, 0.5)]
    ['stable', 'moderate', 'major']
    """
    if psi > MAJOR:
        return "major"
    if psi > MODERATE:
        return "moderate"
    return "stable"


def _psi_against(reference: dict[str, Any], values: pd.Series) -> float:
    shares, missing = reference_shares(values, reference)
    expected = [*reference["shares"], reference.get("missing_share", 0.0)]
    actual = [*shares, missing]
    if reference["kind"] == "category":
        # Categories unseen in training fall in no reference bin: count them as one more bin.
        expected.append(0.0)
        actual.append(max(0.0, 1.0 - sum(actual)))
    return population_stability_index(expected, actual)


def psi_of_values(reference_values: pd.Series, current_values: pd.Series, *, bins: int = 10) -> float:
    """PSI of `current_values` against `reference_values` (deciles of the reference).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.Series(rng.normal(size=5000))
    >>> psi_of_values(ref, ref)
    0.0
    >>> psi_of_values(ref, ref + 1.0) > 0.2
    True
    """
    numeric = pd.api.types.is_numeric_dtype(reference_values) and not isinstance(
        reference_values.dtype, pd.CategoricalDtype
    )
    n = max(len(reference_values), 1)
    if numeric:
        x = reference_values.to_numpy(dtype="float64", na_value=np.nan)
        x = x[~np.isnan(x)]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])).tolist() if len(x) else []
        shares = (np.bincount(np.digitize(x, edges), minlength=len(edges) + 1) / n).tolist()
        reference = {"kind": "numeric", "edges": edges, "shares": shares}
    else:
        counts = reference_values.astype("string").value_counts()
        reference = {"kind": "category", "categories": list(counts.index), "shares": (counts / n).tolist()}
    reference["missing_share"] = float(reference_values.isna().sum()) / n
    return _psi_against(reference, current_values)


def drift_table(reference: Mapping[str, dict[str, Any]], current: pd.DataFrame) -> pd.DataFrame:
    """PSI of every referenced feature present in `current`, worst first.

    Parameters
    ----------
    reference : mapping of feature -> dict
        The training reference stored with a model (``ChurnModel.reference_``): per
        feature ``kind``, ``edges`` or ``categories``, ``shares``, ``missing_share``.
    current : DataFrame
        Today's features (a sample is enough).

    Returns
    -------
    DataFrame
        ``feature``, ``psi``, ``level`` (``major`` / ``moderate`` / ``stable``).

    Examples
    --------
    >>> ref = {"x": {"kind": "numeric", "edges": [0.0], "shares": [0.5, 0.5], "missing_share": 0.0}}
    >>> drift_table(ref, pd.DataFrame({"x": [1.0, 2.0, 3.0, -1.0]}))
      feature       psi  level
    0       x  0.274653  major
    """
    rows = [
        (name, _psi_against(ref, current[name]))
        for name, ref in reference.items()
        if name in current.columns and len(current)
    ]
    table = pd.DataFrame(rows, columns=["feature", "psi"])
    table["level"] = [drift_level(p) for p in table["psi"]]
    return table.sort_values(["psi", "feature"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
