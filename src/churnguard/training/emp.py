"""What a churn model is worth to a retention campaign: the expected maximum profit (EMP).

Verbraken, Verbeke & Baesens (2013), "A novel profit maximizing metric for measuring
classification performance of customer churn prediction models", IEEE Transactions on
Knowledge and Data Engineering 25(5): 961-973, doi:10.1109/TKDE.2012.50 (the measure of
the R package ``EMP``, ``empChurn``).

A campaign contacts the share of customers the model scores highest. With ``CLV`` the
value of a customer kept, ``d`` the cost of the retention offer (paid by those who
accept), ``f`` the cost of a contact, ``delta = d / CLV``, ``phi = f / CLV``, ``pi0`` the
churn rate and ``F0(t)``, ``F1(t)`` the shares of churners and non-churners contacted at
threshold ``t``, a campaign whose offer a churner accepts with probability ``gamma``
earns per customer

    ``P(t; gamma) = CLV * [(gamma * (1 - delta) - phi) * pi0 * F0(t) - (delta + phi) * pi1 * F1(t)]``

(non-churners accept the offer, so they cost ``d + f``). The acceptance rate is unknown;
``gamma ~ Beta(alpha, beta)`` (default 6, 14: a mean of 30%), and the campaign picks the
best threshold for each ``gamma``:

    ``EMP = integral over gamma of max_t P(t; gamma) h(gamma) d gamma``.

For each operating point ``P`` is a line in ``gamma``; the maximum over points is the
upper envelope of those lines, which only the ROC convex hull's points reach, and on
each piece ``[g_i, g_(i+1)]`` of it ``integral (a + b gamma) h = a [I(g)]`` plus
``b alpha / (alpha + beta) [I_(alpha+1, beta)(g)]``, ``I`` the regularized incomplete beta
function: the closed form of the paper (its eq. 18), computed exactly here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EmpResult", "expected_maximum_profit"]


@dataclass(frozen=True)
class EmpResult:
    """The expected maximum profit of a churn model, and the share of customers it contacts.

    Attributes
    ----------
    emp : float
        Expected maximum profit per customer, in the unit of the CLV.
    share_contacted : float
        The expected share of customers the profit-maximising campaign contacts
        (``eta_emp`` of the paper).
    """

    emp: float
    share_contacted: float


def _operating_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares of churners, of non-churners and of all customers contacted at each distinct threshold."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], y[order]
    # Customers with equal scores are contacted together or not at all.
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    churners = np.r_[0.0, np.cumsum(t)[ends]]
    everyone = np.r_[0.0, (ends + 1).astype("float64")]
    n1 = max(t.sum(), 1)
    n0 = max(len(t) - t.sum(), 1)
    return churners / n1, (everyone - churners) / n0, everyone / len(t)


def _upper_envelope(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines ``a + b x`` that make the maximum over [0, 1], and where each starts to lead."""
    # Sort by slope; among equal slopes only the highest intercept can lead.
    order = np.lexsort((-a, b))
    a, b = a[order], b[order]
    keep = np.r_[True, np.diff(b) > 0]
    a, b = a[keep], b[keep]
    lines: list[int] = []
    starts: list[float] = []
    for i in range(len(a)):
        while lines:
            j = lines[-1]
            x = (a[j] - a[i]) / (b[i] - b[j])  # where line i overtakes line j
            if x <= starts[-1]:
                lines.pop()
                starts.pop()
                continue
            break
        if not lines:
            lines.append(i)
            starts.append(0.0)
            continue
        j = lines[-1]
        x = (a[j] - a[i]) / (b[i] - b[j])
        if x < 1.0:
            lines.append(i)
            starts.append(float(x))
    index = np.array(lines, dtype="int64")
    return order[keep][index], np.array(starts, dtype="float64")


def expected_maximum_profit(
    y, score, *, clv: float, offer_cost: float, contact_cost: float, alpha: float = 6.0, beta: float = 14.0
) -> EmpResult:
    """The EMP of a churn score on labelled customers (Verbraken et al. 2013, see the module docstring).

    Parameters
    ----------
    y : array-like of 0/1
        1 for a customer who churned.
    score : array-like of float
        The model's score; higher means more likely to churn.
    clv : float
        Value of a customer kept (the paper's constant CLV), > 0.
    offer_cost : float
        Cost ``d`` of the retention offer, paid for every customer who accepts it.
    contact_cost : float
        Cost ``f`` of one contact.
    alpha, beta : float, default=6, 14
        The Beta distribution of the share of contacted churners who accept.

    Returns
    -------
    EmpResult

    Examples
    --------
    A perfect score contacts exactly the churners: ``EMP = CLV * pi0 * (E[gamma] (1 - delta) - phi)``
    when that is positive for every gamma that matters.

    >>> y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    >>> result = expected_maximum_profit(y, y.astype(float), clv=200, offer_cost=10, contact_cost=1)
    >>> round(result.emp, 4), round(result.share_contacted, 4)
    (11.2, 0.2)
    >>> round(200 * 0.2 * (0.3 * (1 - 10 / 200) - 1 / 200), 4)
    11.2
    """
    from scipy.special import betainc

    y = np.asarray(y, dtype="float64")
    score = np.asarray(score, dtype="float64")
    if clv <= 0:
        raise ValueError(f"clv must be > 0, got {clv}")
    if len(y) == 0:
        return EmpResult(float("nan"), float("nan"))
    delta, phi = offer_cost / clv, contact_cost / clv
    pi0 = float(y.mean())
    pi1 = 1.0 - pi0
    f0, f1, share = _operating_points(y, score)
    intercept = -clv * (phi * pi0 * f0 + (delta + phi) * pi1 * f1)
    slope = clv * (1.0 - delta) * pi0 * f0
    lines, starts = _upper_envelope(intercept, slope)
    bounds = np.r_[starts, 1.0]
    mass = np.diff(betainc(alpha, beta, bounds))
    # integral of gamma h(gamma) over a piece: E[gamma] times the Beta(alpha + 1, beta) mass.
    first_moment = alpha / (alpha + beta) * np.diff(betainc(alpha + 1.0, beta, bounds))
    emp = float(np.sum(intercept[lines] * mass + slope[lines] * first_moment))
    return EmpResult(emp, float(np.sum(share[lines] * mass)))
