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

import re

import numpy as np
import pandas as pd

__all__ = [
    "MAJOR",
    "MODERATE",
    "drift_level",
    "drift_table",
    "grows_with_time",
    "population_stability_index",
    "psi_of_values",
    "reference",
    "reference_shares",
]

# Names of features that grow with the calendar, for catalogues stored before they said
# so themselves (``grows_with_time``): tenure, time since the first event, lifetime totals.
_GROWING = re.compile(r"(tenure|days_since_first|_total$|_total_|asset_age_days)")

MODERATE = 0.1
MAJOR = 0.2
N_REFERENCE_BINS = 10
# Empty bins would make the log infinite; this floor is the usual convention.
_EPS = 1e-4


def reference(
    X: pd.DataFrame | list[pd.DataFrame], dtypes: Mapping[str, str], categories: Mapping[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """Binned training distribution of each feature: the baseline the PSI check compares against.

    Numbers get decile edges of their non-missing values, categories one bin each (in the
    model's category order); both keep the share of missing values.

    Parameters
    ----------
    X : DataFrame or list of DataFrame
        The training rows; a list is read as its frames' rows stacked (row blocks, as
        ``ChurnModel.fit`` takes them), one column at a time.
    dtypes : mapping of feature -> ``"numeric"`` or ``"category"``
        Which features to bin and how (``ChurnModel.dtypes_``), in model order.
    categories : mapping of feature -> list of str
        Category values of each categorical feature (``ChurnModel.categories_``).

    Returns
    -------
    dict
        Feature -> ``kind``, ``edges`` (numeric) or ``categories``, ``shares``, ``missing_share``.

    Examples
    --------
    >>> X = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "plan": ["a", "b", "a", None]})
    >>> ref = reference(X, {"x": "numeric", "plan": "category"}, {"plan": ["a", "b"]})
    >>> ref["plan"]
    {'kind': 'category', 'categories': ['a', 'b'], 'shares': [0.5, 0.25], 'missing_share': 0.25}
    >>> ref["x"]["missing_share"], round(sum(ref["x"]["shares"]), 2)
    (0.25, 0.75)
    >>> reference([X[:2], X[2:]], {"x": "numeric"}, {})["x"] == ref["x"]
    True
    """
    if isinstance(X, pd.DataFrame):
        return {str(c): _reference(X[c], kind, categories.get(c)) for c, kind in dtypes.items()}
    return {str(c): _reference(pd.concat([b[c] for b in X], ignore_index=True), kind, categories.get(c))
            for c, kind in dtypes.items()}


def _reference(series: pd.Series, kind: str, categories: list[str] | None, *,
               bins: int = N_REFERENCE_BINS) -> dict[str, Any]:
    n = max(len(series), 1)
    missing = float(series.isna().sum()) / n
    if kind == "category":
        counts = series.astype("string").value_counts()
        return {
            "kind": "category",
            "categories": list(categories or []),
            "shares": [float(counts.get(c, 0)) / n for c in categories or []],
            "missing_share": missing,
        }
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    edges: list[float] = []
    if len(values):
        qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
        edges = [float(e) for e in np.unique(qs)]
    return {
        "kind": "numeric",
        "edges": edges,
        "shares": [float(s) / n for s in np.bincount(np.digitize(values, edges), minlength=len(edges) + 1)],
        "missing_share": missing,
    }


def reference_shares(values: pd.Series, reference: dict[str, Any]) -> tuple[list[float], float]:
    """Shares of `values` in the bins of one feature's training reference, and the missing share.

    Numeric bins are ``np.digitize(values, edges)``: ``(-inf, e0), [e0, e1), ..., [ek, inf)``;
    category bins follow ``reference["categories"]`` (unknown values count in no bin).
    Shares are over all rows, so bins plus ``missing_share`` sum to 1 for numeric features.

    Examples
    --------
    >>> ref = {"kind": "numeric", "edges": [1.0, 2.0], "shares": [0.25, 0.25, 0.5], "missing_share": 0.0}
    >>> reference_shares(pd.Series([0.0, 1.5, 2.0, np.nan]), ref)
    ([0.25, 0.25, 0.25], 0.25)
    """
    n = max(len(values), 1)
    missing = float(values.isna().sum()) / n
    if reference["kind"] == "category":
        counts = values.astype("string").value_counts()
        return [float(counts.get(c, 0)) / n for c in reference["categories"]], missing
    x = values.to_numpy(dtype="float64", na_value=np.nan)
    x = x[~np.isnan(x)]
    edges = reference["edges"]
    return [float(s) / n for s in np.bincount(np.digitize(x, edges), minlength=len(edges) + 1)], missing


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
    if numeric:
        binned = _reference(reference_values, "numeric", None, bins=bins)
    else:
        binned = _reference(reference_values, "category", list(reference_values.astype("string").value_counts().index))
    return _psi_against(binned, current_values)


def drift_table(reference: Mapping[str, dict[str, Any]], current: pd.DataFrame) -> pd.DataFrame:
    """PSI of every referenced feature present in `current`, worst first.

    Parameters
    ----------
    reference : mapping of feature -> dict
        The training reference stored with a model (``ModelArtifact.drift_reference``,
        made by :func:`reference`): per feature ``kind``, ``edges`` or ``categories``, ``shares``, ``missing_share``.
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


def grows_with_time(names, catalogue: pd.DataFrame | None = None) -> np.ndarray:
    """Whether each feature grows with the calendar by construction (tenure, lifetime totals).

    Such a feature drifts between the training cutoffs and today for every customer
    alike (a year later everyone's tenure is a year longer), so its PSI says nothing
    about the data: the alarm leaves it out. The catalogue's ``grows_with_time`` says
    so where present, else the feature's name (``tenure``, ``days_since_first``,
    ``..._total``, asset age).

    Examples
    --------
    >>> grows_with_time(["customers_tenure_days", "purchases_count_total", "interactions_complaints_30d"]).tolist()
    [True, True, False]
    """
    names = [str(n) for n in names]
    by_name = np.array([bool(_GROWING.search(n)) for n in names], dtype=bool)
    if catalogue is None or "grows_with_time" not in catalogue or "name" not in catalogue:
        return by_name
    flags = catalogue.drop_duplicates("name").set_index("name")["grows_with_time"]
    known = flags.reindex(names)
    return np.where(known.notna().to_numpy(), known.fillna(False).astype(bool).to_numpy(), by_name)
