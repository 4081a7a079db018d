"""Honest evaluation on the held-out cutoff: metrics, the two baselines, plots.

Every number is computed on the same held-out rows for the model, the rule heuristic,
the logistic regression and (on synthetic data) the oracle truth probability.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TOP_SHARES = (0.05, 0.10, 0.20)

# The rule a care team would use first, in order of preference: the first feature present
# in the frame is the heuristic's score (sign from the catalogue's direction).
HEURISTIC_FEATURES = {
    "churn": (
        r"^purchases_days_since_last$",
        r"^purchases_.*days_since_last.*",
        r"^interactions_complaints_unresolved_90d$",
        r"^interactions_complaints_90d$",
        r"^interactions_.*complaint.*",
        r"^interactions_days_since_last.*",
        r".*days_since_last.*",
    ),
    "maintenance": (
        r"^service_overdue_days_max$",
        r"^service_.*overdue.*",
        r"^service_failures_365d$",
        r"^service_.*(failure|repair).*",
        r"^assets_.*age.*",
    ),
}


def classification_metrics(y, p) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, log loss, base rate, and precision/lift in the top 5/10/20%.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> m["roc_auc"], m["base_rate"]
    (0.75, 0.5)
    """
    y = np.asarray(y, dtype="int64")
    p = np.asarray(p, dtype="float64")
    base = float(y.mean()) if len(y) else float("nan")
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, np.clip(p, 0, 1))),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "base_rate": base,
        "n_rows": int(len(y)),
    }
    # Stable sort on -p: equal scores keep row order, so the figures are reproducible.
    order = np.argsort(-p, kind="stable")
    for share in TOP_SHARES:
        k = max(int(round(share * len(y))), 1)
        precision = float(y[order[:k]].mean())
        out[f"precision_top{int(share * 100)}"] = precision
        out[f"lift_top{int(share * 100)}"] = precision / base if base > 0 else float("nan")
    return out


def calibration_curve(y, p, *, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in equal-count bins of the prediction.

    Examples
    --------
    >>> calibration_curve([0, 1, 0, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
       mean_predicted  observed_rate  n
    0            0.15            0.5  2
    1            0.80            0.5  2
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype="float64"), "p": np.asarray(p, dtype="float64")})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(n_bins, len(frame)), labels=False)
    g = frame.groupby("bin")
    return pd.DataFrame(
        {"mean_predicted": g["p"].mean(), "observed_rate": g["y"].mean(), "n": g.size()}
    ).reset_index(drop=True)


def choose_heuristic_feature(task: str, columns, catalogue: pd.DataFrame | None = None) -> str | None:
    """The feature the rule baseline ranks by, or None if no candidate is present.

    Examples
    --------
    >>> choose_heuristic_feature("maintenance", ["tenure_days", "service_overdue_days_max"])
    'service_overdue_days_max'
    """
    columns = [str(c) for c in columns]
    for pattern in HEURISTIC_FEATURES.get(task, ()):
        for c in columns:
            if re.match(pattern, c):
                return c
    return None


class RuleBaseline:
    """Rank by one feature, worrying side from the catalogue (``direction``), NaN as median.

    Examples
    --------
    >>> X = pd.DataFrame({"service_overdue_days_max": [0.0, 30.0, np.nan]})
    >>> RuleBaseline("service_overdue_days_max").fit(X).score(X).tolist()
    [0.0, 1.0, 0.5]
    """

    def __init__(self, feature: str, direction: str = "up"):
        self.feature = feature
        self.direction = direction

    def fit(self, X: pd.DataFrame) -> "RuleBaseline":
        values = X[self.feature].to_numpy(dtype="float64", na_value=np.nan)
        self.fill_ = float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0
        return self

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """A score in [0, 1] (rank share) where larger means riskier."""
        values = X[self.feature].to_numpy(dtype="float64", na_value=np.nan)
        values = np.where(np.isnan(values), self.fill_, values)
        if self.direction == "down":
            values = -values
        ranks = pd.Series(values).rank(method="average").to_numpy()
        return (ranks - ranks.min()) / max(ranks.max() - ranks.min(), 1e-12)


def logistic_baseline(X: pd.DataFrame, y, *, max_rows: int = 200_000, random_state: int = 1) -> "LogisticBaseline":
    """Logistic regression on the same features: median-imputed, scaled, categoricals one-hot.

    Fitted on at most `max_rows` training rows: a linear model with ~100 inputs has long
    converged by then, and the baseline should not cost more than the model it checks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=300), "plan": pd.Categorical(rng.choice(["a", "b"], 300))})
    >>> y = (X["x"] + rng.normal(0, 0.5, 300) > 0).astype(int)
    >>> p = predict_logistic(logistic_baseline(X, y, max_rows=200), X)
    >>> p.shape, bool(roc_auc_score(y, p) > 0.8)
    ((300,), True)
    """
    y = np.asarray(y)
    rows = None
    if len(X) > max_rows:
        rows = np.random.default_rng(random_state).choice(len(X), max_rows, replace=False)
        rows.sort()
        y = y[rows]
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object
            or pd.api.types.is_string_dtype(X[c].dtype)]
    return LogisticBaseline([c for c in X.columns if c not in cats], cats).fit(X, y, rows=rows)


class LogisticBaseline:
    """The logistic baseline: numbers median-imputed and standardized, categoricals one-hot.

    The same model as ``make_pipeline(ColumnTransformer([("num", make_pipeline(
    SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), nums),
    ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
    OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False)), cats)]),
    LogisticRegression(max_iter=500, C=1.0))`` (the same bits, tested), built one column at a
    time into the one matrix the regression reads: that pipeline held five copies of the
    200,000 sampled rows at once (~2 GiB at the peak of training), this holds one.

    Parameters
    ----------
    nums, cats : list of str
        Numeric and categorical columns.

    Attributes
    ----------
    medians_, means_, scales_ : ndarray
        Per numeric column: the fill value (0 for a column without values), mean and scale.
    encoder_ : Pipeline
        Constant imputer and one-hot encoder of the categoricals (None without any).
    regression_ : LogisticRegression
    """

    def __init__(self, nums: list[str], cats: list[str]):
        self.nums = list(nums)
        self.cats = list(cats)

    def fit(self, X: pd.DataFrame, y, *, rows: np.ndarray | None = None) -> "LogisticBaseline":
        """Fit on the rows `rows` of `X` (all rows by default); `y` holds those rows' labels."""
        self.medians_ = np.zeros(len(self.nums))
        self.means_ = np.zeros(len(self.nums))
        self.scales_ = np.ones(len(self.nums))
        self.encoder_ = None
        if self.cats:
            self.encoder_ = make_pipeline(
                SimpleImputer(strategy="constant", fill_value="missing"),
                OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
            ).fit(self._categoricals(X, rows))
        self.regression_ = LogisticRegression(max_iter=500, C=1.0).fit(self._matrix(X, rows, fit=True), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of class 1, one value per row of `X`."""
        return self.regression_.predict_proba(self._matrix(X, None, fit=False))[:, 1]

    def _categoricals(self, X: pd.DataFrame, rows) -> pd.DataFrame:
        cats = X[self.cats] if rows is None else X[self.cats].iloc[rows]
        return _plain(cats, self.cats)

    def _matrix(self, X: pd.DataFrame, rows, *, fit: bool) -> np.ndarray:
        """The regression's input, C-ordered float64: scaled numbers, then the one-hot columns."""
        onehot = None if self.encoder_ is None else self.encoder_.transform(self._categoricals(X, rows))
        n = len(X) if rows is None else len(rows)
        out = np.empty((n, len(self.nums) + (0 if onehot is None else onehot.shape[1])), dtype="float64")
        for j, c in enumerate(self.nums):
            values = X[c].to_numpy(dtype="float64", na_value=np.nan)
            values = values.copy() if rows is None else values[rows]
            missing = np.isnan(values)
            if fit:
                present = values[~missing]
                self.medians_[j] = np.median(present) if len(present) else 0.0
            values[missing] = self.medians_[j]
            if fit:
                # One column at a time gives StandardScaler's own numbers for the whole matrix
                # (its sums run down each column of a column-ordered matrix alike).
                scaler = StandardScaler().fit(values.reshape(-1, 1))
                self.means_[j], self.scales_[j] = scaler.mean_[0], scaler.scale_[0]
            values -= self.means_[j]
            values /= self.scales_[j]
            out[:, j] = values
        if onehot is not None:
            out[:, len(self.nums):] = onehot
        return out


def _plain(X: pd.DataFrame, cats: list[str]) -> pd.DataFrame:
    """Categoricals as plain object strings with NaN: what sklearn's imputers handle everywhere."""
    return X.assign(**{c: X[c].astype(object).where(X[c].notna(), np.nan).astype(object) for c in cats})


def predict_logistic(fitted: LogisticBaseline, X: pd.DataFrame) -> np.ndarray:
    """The baseline's probability of class 1 for each row of `X` (:func:`logistic_baseline`)."""
    return fitted.predict_proba(X)


# --------------------------------------------------------------------------- plots


def write_plots(
    out_dir: str | Path,
    y,
    scores: dict[str, np.ndarray],
    *,
    probability: np.ndarray,
    shap_importance: pd.Series | None = None,
    title: str = "",
) -> dict[str, Path]:
    """ROC, PR, cumulative gains and calibration curves (+ mean |SHAP| bar) as PNG files.

    `scores` maps a label ("model", "rule", "logistic", "oracle") to scores on the same rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y, dtype="int64")
    paths: dict[str, Path] = {}

    def save(fig, name):
        path = out_dir / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths[name] = path

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC {title}")
    ax.legend(loc="lower right")
    save(fig, "roc")

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, s in scores.items():
        prec, rec, _ = precision_recall_curve(y, s)
        ax.plot(rec, prec, label=f"{label} (AP {average_precision_score(y, s):.3f})")
    ax.axhline(y.mean(), color="grey", lw=0.5)
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall {title}")
    ax.legend(loc="upper right")
    save(fig, "pr")

    fig, ax = plt.subplots(figsize=(5, 5))
    n_pos = max(y.sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    for label, s in scores.items():
        order = np.argsort(-np.asarray(s), kind="stable")
        ax.plot(share, np.cumsum(y[order]) / n_pos, label=label)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5, label="random")
    ax.set(xlabel="share of customers contacted", ylabel="share of positives reached", title=f"Cumulative gains {title}")
    ax.legend(loc="lower right")
    save(fig, "gains")

    fig, ax = plt.subplots(figsize=(5, 5))
    curve = calibration_curve(y, probability)
    ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", label="model")
    hi = float(max(curve["mean_predicted"].max(), curve["observed_rate"].max(), 1e-3))
    ax.plot([0, hi], [0, hi], color="grey", lw=0.5, label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration {title}")
    ax.legend(loc="upper left")
    save(fig, "calibration")

    if shap_importance is not None and len(shap_importance):
        top = shap_importance.head(20)[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2))
        ax.barh(top.index.astype(str), top.to_numpy())
        ax.set(xlabel="mean |SHAP| (log-odds)", title=f"SHAP summary {title}")
        save(fig, "shap_summary")
    return paths


def evaluation_report(
    y,
    probability,
    *,
    rule: np.ndarray | None = None,
    logistic: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
) -> dict[str, Any]:
    """Flat metric dict: ``model_*``, ``rule_*``, ``logistic_*``, ``oracle_*`` and the lifts between them.

    Examples
    --------
    >>> r = evaluation_report([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], rule=np.array([0.2, 0.1, 0.3, 0.4]))
    >>> r["model_roc_auc"], r["rule_roc_auc"], r["auc_lift_over_rule"]
    (0.75, 1.0, -0.25)
    """
    out: dict[str, Any] = {f"model_{k}": v for k, v in classification_metrics(y, probability).items()}
    for name, s in (("rule", rule), ("logistic", logistic)):
        if s is None:
            continue
        m = classification_metrics(y, s)
        out.update({f"{name}_roc_auc": m["roc_auc"], f"{name}_pr_auc": m["pr_auc"], f"{name}_lift_top10": m["lift_top10"]})
        out[f"auc_lift_over_{name}"] = out["model_roc_auc"] - m["roc_auc"]
        out[f"pr_auc_ratio_over_{name}"] = out["model_pr_auc"] / m["pr_auc"] if m["pr_auc"] > 0 else float("nan")
    if oracle is not None:
        m = classification_metrics(y, oracle)
        out.update({"oracle_roc_auc": m["roc_auc"], "oracle_pr_auc": m["pr_auc"]})
        out["share_of_oracle_auc"] = out["model_roc_auc"] / m["roc_auc"]
    return out
