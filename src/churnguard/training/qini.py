"""How well a ranking finds the customers a contact keeps: Qini curve, Qini coefficient, uplift at k.

All of them read a randomised experiment: each row is a customer on a past list, in
``treatment`` (contacted) or ``control`` (held back), with the outcome that followed
(1 = churned within the horizon). A ranking is good when the customers at its top churn
much less when contacted than when held back.

* :func:`qini_curve`: for the top ``k`` of the ranking, the customers the contact saved
  among the treated top ``k``: ``churned_control(k) x treated(k) / control(k) -
  churned_treated(k)`` (Radcliffe's Qini, with churn as the outcome we want fewer of).
* :func:`qini_coefficient`: the area between that curve and the random ranking's
  straight line, over the share of customers called (0..1), in customers saved.
* :func:`uplift_at_k`: the churn rate of the control top ``k`` minus that of the treated
  top ``k``: how much a call lowers churn among the customers the ranking puts first.

Where the true effect of each customer is known (a generated world's ``uplift_truth``),
:func:`true_qini_curve` gives the same curve from the truth itself, free of the noise of
who happened to churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["qini_coefficient", "qini_curve", "ranking_order", "true_qini_curve", "uplift_at_k"]


def ranking_order(score, ids=None) -> np.ndarray:
    """Row positions from the highest `score` down; ties broken by `ids` (then position), never by chance.

    Examples
    --------
    >>> ranking_order([0.1, 0.5, 0.5], ids=["c", "b", "a"]).tolist()
    [2, 1, 0]
    """
    score = np.asarray(score, dtype="float64")
    keys = np.arange(len(score)) if ids is None else np.asarray(ids, dtype=object).astype(str)
    return np.lexsort((np.arange(len(score)), keys, -np.nan_to_num(score, nan=-np.inf)))


def _treated_flags(treatment) -> np.ndarray:
    t = np.asarray(treatment)
    if t.dtype == bool:
        return t
    if t.dtype.kind in "iuf":
        return t.astype("float64") > 0
    return pd.Series(t).astype(str).str.lower().eq("treatment").to_numpy()


def qini_curve(score, treatment, churned, *, ids=None) -> pd.DataFrame:
    """The Qini curve of ranking by `score` (highest first): customers saved in the top k.

    Parameters
    ----------
    score : array-like
        The ranking score: a higher score should mean a contact helps more.
    treatment : array-like
        True / 1 / ``"treatment"`` for contacted customers, anything else for control.
    churned : array-like of 0/1
        Whether the customer churned within the horizon.
    ids : array-like, optional
        Customer ids, to break ties in `score` deterministically.

    Returns
    -------
    DataFrame
        One row per k = 0..n: ``k``, ``share`` (k / n), ``treated``, ``control``,
        ``saved`` (the incremental customers kept in the treated top k; 0 while the top k
        holds no control customer).

    Examples
    --------
    >>> score = [0.9, 0.8, 0.7, 0.6, 0.1, 0.0]
    >>> treatment = [1, 0, 1, 0, 1, 0]
    >>> churned = [0, 1, 0, 1, 1, 0]
    >>> qini_curve(score, treatment, churned)["saved"].tolist()
    [0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 1.0]
    """
    order = ranking_order(score, ids)
    treated = _treated_flags(treatment)[order]
    y = np.asarray(churned, dtype="float64")[order]
    n_t = np.concatenate([[0.0], np.cumsum(treated)])
    n_c = np.concatenate([[0.0], np.cumsum(~treated)])
    y_t = np.concatenate([[0.0], np.cumsum(y * treated)])
    y_c = np.concatenate([[0.0], np.cumsum(y * ~treated)])
    saved = np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1.0) - y_t, 0.0)
    k = np.arange(len(y) + 1)
    return pd.DataFrame({"k": k, "share": k / max(len(y), 1), "treated": n_t.astype("int64"),
                         "control": n_c.astype("int64"), "saved": saved})


def true_qini_curve(score, saved_if_contacted, *, ids=None) -> pd.DataFrame:
    """The customers truly saved by contacting the top k of `score`, from each one's known effect.

    `saved_if_contacted` is each customer's true reduction of their churn probability by a
    contact (a generated world's ``-uplift_truth.treatment_effect``). The curve is in the
    same unit as :func:`qini_curve`'s, scaled to the treated share of the experiment by
    the caller if needed.

    Examples
    --------
    >>> true_qini_curve([3, 2, 1], [0.2, -0.1, 0.3])["saved"].round(2).tolist()
    [0.0, 0.2, 0.1, 0.4]
    """
    order = ranking_order(score, ids)
    gain = np.asarray(saved_if_contacted, dtype="float64")[order]
    k = np.arange(len(gain) + 1)
    return pd.DataFrame({"k": k, "share": k / max(len(gain), 1), "saved": np.concatenate([[0.0], np.cumsum(gain)])})


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Area between a Qini curve and the random ranking's straight line, over the share called.

    Positive: the ranking puts the customers a contact saves first; 0: no better than
    chance. In customers saved (the curve's unit), so two rankings of the same customers
    compare directly, and a ranking's share of the oracle's coefficient reads as a percentage.

    Examples
    --------
    >>> curve = pd.DataFrame({"share": [0.0, 0.5, 1.0], "saved": [0.0, 3.0, 2.0]})
    >>> qini_coefficient(curve)
    1.0
    """
    share = curve["share"].to_numpy(dtype="float64")
    saved = curve["saved"].to_numpy(dtype="float64")
    random = share * (saved[-1] if len(saved) else 0.0)
    gap = saved - random
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(share)) / 2.0)


def uplift_at_k(score, treatment, churned, *, share: float = 0.1, ids=None) -> float:
    """Churn rate of the control customers minus that of the treated ones, in the top `share` of the ranking.

    NaN when the top `share` holds no treated or no control customer.

    Examples
    --------
    >>> score = [0.9, 0.8, 0.7, 0.6, 0.1, 0.0]
    >>> round(uplift_at_k(score, [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0], share=0.5), 3)
    1.0
    """
    order = ranking_order(score, ids)
    n = len(order)
    top = order[: int(np.ceil(share * n))]
    treated = _treated_flags(treatment)[top]
    y = np.asarray(churned, dtype="float64")[top]
    if treated.all() or not treated.any():
        return float("nan")
    return float(y[~treated].mean() - y[treated].mean())
