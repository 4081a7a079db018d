"""Train the uplift model from past campaigns: whom does a contact actually keep?

A run, in :func:`train_uplift`:

```
outreach_log rows of one action (treatment / control per list date)
  -> uplift_training_set: features as of each list date (the feature builder), churn within the
     horizon after it (the churn labels), one row per campaign customer and list date
  -> split_customers: a share of the customers (hashed with the seed) never seen in training
  -> evaluate_uplift: UpliftModel vs ranking by churn risk alone (a churn model on the same rows)
     vs the oracle (the generator's uplift_truth), Qini and uplift at k on the held-out customers
  -> refit on every customer -> promotion (beats churn risk, and the champion) -> MLflow + registry
```

Labels and features are churnguard's own (:func:`churnguard.labels.training_set` over the
list dates), so the point-in-time rule holds: features use events before the list date,
the outcome events in ``[list_date, list_date + horizon)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from churnguard.config import FeatureSet, UpliftSpec
from churnguard.timeline import churn_definition, coerce_as_of
from churnguard.training.artifact import ModelArtifact
from churnguard.training.model import ChurnModel
from churnguard.training.qini import qini_coefficient, qini_curve, true_qini_curve, uplift_at_k
from churnguard.training.splits import cut_tables
from churnguard.training.uplift_model import UpliftModel

__all__ = [
    "NoCampaign",
    "UpliftData",
    "UpliftEvaluation",
    "UpliftResult",
    "customer_folds",
    "evaluate_uplift",
    "split_customers",
    "train_uplift",
    "uplift_training_set",
]

# Shares of the ranking at which uplift at k is reported.
TOP_SHARES = (0.1, 0.2, 0.3)
# Columns of the training frame that are not features.
KEYS = ["customer_id", "list_date", "treated", "label"]


class NoCampaign(ValueError):
    """No past campaign to learn from: no outreach_log, no rows for the action, or no finished horizon."""


@dataclass(frozen=True)
class UpliftData:
    """The campaign rows with their features and outcomes.

    Attributes
    ----------
    frame : DataFrame
        ``customer_id, list_date, treated, label`` then the features, one row per campaign
        customer and list date (sorted by list date, then customer).
    catalogue : DataFrame
        The feature catalogue (reasons are worded from it).
    feature_set : FeatureSet
        The resolved feature set, stored with the model.
    definition : str
        The churn label definition (``contractual`` or ``inactivity``).
    skipped : list of str
        List dates left out, and why.
    """

    frame: pd.DataFrame
    catalogue: pd.DataFrame
    feature_set: FeatureSet
    definition: str
    skipped: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """The model inputs: every column but the keys."""
        return [c for c in self.frame.columns if c not in KEYS]


def _campaign_rows(log: pd.DataFrame, action: str) -> pd.DataFrame:
    rows = pd.DataFrame({
        "customer_id": log["customer_id"].astype(str).to_numpy(),
        "list_date": pd.to_datetime(log["list_date"]).dt.normalize().astype("datetime64[us]").to_numpy(),
        "action": log["action"].astype(str).to_numpy(),
        "treated": log["group"].astype(str).str.strip().str.lower().eq("treatment").to_numpy(),
    })
    return rows[rows["action"] == action].drop(columns="action")


def uplift_training_set(
    tables: dict[str, pd.DataFrame],
    spec: UpliftSpec,
    *,
    feature_set: FeatureSet | None = None,
    progress: bool = False,
    log: Callable[[str], Any] = print,
) -> UpliftData:
    """Features as of each list date and churn in the horizon after it, for every campaign customer.

    Only list dates whose horizon ends within the data count (the outcome must be known);
    a campaign customer outside the churn population at the list date (already gone, or
    not a buyer in the look-back) has no outcome and is left out.

    Raises
    ------
    NoCampaign
        Without ``outreach_log`` rows of ``spec.action`` at a list date whose horizon is over.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
    ...                           "churn_date": pd.to_datetime(["2024-02-10", None, None, "2024-06-01"])})
    >>> log = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "list_date": ["2024-01-01"] * 4,
    ...                     "action": "retention_call", "group": ["treatment", "control", "treatment", "treatment"]})
    >>> spec = UpliftSpec(horizon_days=60)
    >>> data = uplift_training_set({"customers": customers, "outreach_log": log}, spec, log=lambda s: None)
    >>> data.frame[KEYS].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['a', Timestamp('2024-01-01 00:00:00'), True, 1], ['b', Timestamp('2024-01-01 00:00:00'), False, 0],
     ['c', Timestamp('2024-01-01 00:00:00'), True, 0], ['d', Timestamp('2024-01-01 00:00:00'), True, 0]]
    """
    from churnguard.features import feature_catalogue, resolve_feature_set
    from churnguard.labels import data_end, training_set

    log_table = tables.get("outreach_log")
    if log_table is None or not len(log_table):
        raise NoCampaign("no outreach_log table: the uplift model learns from past lists with a control group")
    rows = _campaign_rows(log_table, spec.action)
    if not len(rows):
        raise NoCampaign(f"outreach_log has no {spec.action} rows")
    end = data_end(tables)
    dates = sorted(pd.Timestamp(d) for d in rows["list_date"].unique())
    horizon = pd.Timedelta(days=spec.horizon_days)
    usable = [d for d in dates if d + horizon <= end]
    skipped = [f"list date {d.date()}: its {spec.horizon_days}-day horizon ends after the data ({end.date()})"
               for d in dates if d not in usable]
    usable_rows = rows[rows["list_date"].isin(usable)]
    groups = set(usable_rows["treated"])
    if not usable or groups != {True, False}:
        why = "no list date whose horizon ends within the data" if not usable else \
            "the finished campaigns hold no " + ("control" if True in groups else "treatment") + " customer"
        raise NoCampaign(f"outreach_log {spec.action}: {why} ({len(dates)} list date(s))")
    definition = churn_definition(tables, spec.label)
    resolved = resolve_feature_set(tables, usable[-1], feature_set)
    log(f"uplift: {len(usable_rows):,} {spec.action} rows over {len(usable)} list date(s) "
        f"{usable[0].date()} .. {usable[-1].date()} (horizon {spec.horizon_days} days, churn {definition})")
    stacked = training_set(tables, usable, task="churn", horizon_days=spec.horizon_days,
                           lookback_days=spec.lookback_days, definition=definition, feature_set=resolved,
                           progress=progress)
    stacked = stacked.rename(columns={"cutoff": "list_date"})
    frame = usable_rows.merge(stacked, on=["customer_id", "list_date"], how="inner", validate="one_to_one")
    frame = frame[KEYS + [c for c in stacked.columns if c not in KEYS]]
    frame = frame.sort_values(["list_date", "customer_id"], kind="stable").reset_index(drop=True)
    frame["label"] = frame["label"].astype("int64")
    if dropped := len(usable_rows) - len(frame):
        skipped.append(f"{dropped} campaign row(s) outside the churn population at their list date")
    catalogue = feature_catalogue(tables, usable[-1], feature_set=resolved)
    return UpliftData(frame, catalogue, resolved, definition, skipped)


def split_customers(ids, *, share: float, seed: int) -> np.ndarray:
    """True for the customers held out: a hash of the seed and the id below `share`.

    The same customer is held out on every list date and in every run with the same seed,
    whatever the row order.

    Examples
    --------
    >>> held = split_customers([f"c{i}" for i in range(1000)], share=0.3, seed=1)
    >>> round(float(held.mean()), 2), bool((split_customers(["c0"], share=0.3, seed=1) == held[0]).all())
    (0.31, True)
    """
    return _unit_hash(ids, seed) < share


def customer_folds(ids, *, folds: int, seed: int) -> np.ndarray:
    """Each customer's fold (0 .. folds - 1), from the same hash as :func:`split_customers`.

    Examples
    --------
    >>> fold = customer_folds([f"c{i}" for i in range(900)], folds=3, seed=1)
    >>> np.bincount(fold).tolist()
    [302, 285, 313]
    """
    return np.minimum((_unit_hash(ids, seed) * folds).astype("int64"), folds - 1)


def _unit_hash(ids, seed: int) -> np.ndarray:
    keys = np.asarray([f"{seed}|{i}" for i in pd.Index(ids).astype(str)], dtype=object)
    hashed = pd.util.hash_array(keys, hash_key="churnguard-uplft", categorize=False)
    return hashed / np.float64(2**64)


@dataclass(frozen=True)
class UpliftEvaluation:
    """The uplift model judged on customers it never saw, next to churn risk and the oracle.

    Attributes
    ----------
    model : UpliftModel
        Fitted on the training customers only.
    metrics : dict
        ``uplift_qini``, ``churn_risk_qini``, ``uplift_at_10`` (percent of the list)...,
        ``holdout_ate`` (control minus treated churn rate), row counts; with the truth,
        ``oracle_qini``, ``uplift_share_of_oracle_qini`` and the truth-based
        ``*_true_qini`` (customers truly saved, free of outcome noise).
    curves : DataFrame
        ``ranking, kind, share, saved`` (kind ``observed`` or ``true``) per ranking.
    test : DataFrame
        The held-out rows (keys, features), with ``uplift`` and ``churn_risk`` scores.
    """

    model: UpliftModel
    metrics: dict[str, float]
    curves: pd.DataFrame
    test: pd.DataFrame


def _truth_effect(test: pd.DataFrame, truth: pd.DataFrame | None, action: str) -> np.ndarray | None:
    if truth is None or not len(truth):
        return None
    t = truth
    if "action" in t:
        t = t[t["action"].astype(str) == action]
    t = pd.DataFrame({"customer_id": t["customer_id"].astype(str).to_numpy(),
                      "list_date": pd.to_datetime(t["list_date"]).dt.normalize().astype("datetime64[us]").to_numpy(),
                      "saved": -pd.to_numeric(t["treatment_effect"]).to_numpy()})
    found = test[["customer_id", "list_date"]].merge(t.drop_duplicates(["customer_id", "list_date"]),
                                                     on=["customer_id", "list_date"], how="left")["saved"]
    return None if found.isna().any() else found.to_numpy(dtype="float64")


def evaluate_uplift(
    data: UpliftData,
    spec: UpliftSpec,
    *,
    truth: pd.DataFrame | None = None,
    folds: int | None = None,
    log: Callable[[str], Any] = print,
) -> UpliftEvaluation:
    """Fit on the training customers; Qini and uplift at k on the held-out ones, next to churn risk and oracle.

    Ranking by churn risk alone uses a churn model fitted on the same training rows
    (treated and control alike): what a list without an uplift model would call first.
    `truth` is a generated world's ``uplift_truth`` (``customer_id, list_date, action,
    treatment_effect``): the oracle ranks by the true effect. With `folds`, every customer
    is held out once (cross-fitting: each fold is scored by models fitted on the others), so
    the curves cover all rows, at `folds` times the cost; `model` is then fold 0's.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 6000
    >>> trouble = rng.integers(0, 2, n).astype(float)
    >>> treated = rng.random(n) < 0.8
    >>> effect = 0.25 * trouble
    >>> churned = (rng.random(n) < 0.3 + 0.1 * (1 - trouble) - effect * treated).astype(int)
    >>> frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "list_date": pd.Timestamp("2024-01-01"),
    ...                       "treated": treated, "label": churned, "trouble": trouble, "noise": rng.normal(size=n)})
    >>> data = UpliftData(frame, pd.DataFrame(), None, "contractual")
    >>> params = {"n_estimators": 40, "num_leaves": 4, "min_child_samples": 100}
    >>> spec = UpliftSpec(lightgbm=params, effect_lightgbm=params)
    >>> truth = pd.DataFrame({"customer_id": frame["customer_id"], "list_date": "2024-01-01",
    ...                       "treatment_effect": -effect})
    >>> m = evaluate_uplift(data, spec, truth=truth, log=lambda s: None).metrics
    >>> m["uplift_qini"] > m["churn_risk_qini"], m["uplift_share_of_oracle_true_qini"] > 0.9
    (True, True)
    >>> evaluate_uplift(data, spec, truth=truth, folds=2, log=lambda s: None).metrics["rows_holdout"]
    6000.0
    """
    frame = data.frame
    if folds:
        fold = customer_folds(frame["customer_id"], folds=folds, seed=spec.seed)
        parts, models = [], []
        for k in range(folds):
            model, scored = _fit_and_score(frame[fold != k], frame[fold == k], data.features, spec)
            parts.append(scored)
            models.append(model)
        test = pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)
        model, n_train = models[0], float((fold != 0).sum())
    else:
        held = split_customers(frame["customer_id"], share=spec.holdout_share, seed=spec.seed)
        model, test = _fit_and_score(frame[~held], frame[held], data.features, spec)
        test = test.reset_index(drop=True)
        n_train = float((~held).sum())
    metrics, curves = _ranking_metrics(test, _truth_effect(test, truth, spec.action))
    metrics["rows_train"] = n_train
    log(f"uplift: held-out Qini {metrics['uplift_qini']:.2f} (churn risk {metrics['churn_risk_qini']:.2f}"
        + (f", oracle {metrics['oracle_qini']:.2f}" if "oracle_qini" in metrics else "") + ")")
    return UpliftEvaluation(model, metrics, curves, test)


def _fit_and_score(train: pd.DataFrame, test: pd.DataFrame, features: list[str], spec: UpliftSpec):
    """The uplift model and the churn-risk baseline fitted on `train`; `test` with their scores."""
    for name, part in (("training", train), ("held-out", test)):
        if part["treated"].nunique() < 2 or part["label"].nunique() < 2:
            raise NoCampaign(f"uplift: the {name} customers ({part['customer_id'].nunique()}) hold too few "
                             "treated, control, churned or kept customers to learn from")
    model = UpliftModel(params=spec.lightgbm, effect_params=spec.effect_lightgbm, random_state=spec.seed)
    model.fit(train[features], train["treated"].to_numpy(), train["label"].to_numpy())
    risk = ChurnModel(params=spec.lightgbm, calibration="none", random_state=spec.seed)
    risk.fit(train[features], train["label"].to_numpy())
    test = test.copy()
    test["uplift"] = model.predict_uplift(test[features])
    test["churn_risk"] = risk.predict_proba(test[features])[:, 1]
    return model, test


def _ranking_metrics(test: pd.DataFrame, saved_true: np.ndarray | None) -> tuple[dict[str, float], pd.DataFrame]:
    """Qini, uplift at k and (with the truth) the oracle's and the true Qini of each ranking of `test`."""
    rankings = {"uplift": test["uplift"].to_numpy(), "churn_risk": test["churn_risk"].to_numpy()}
    if saved_true is not None:
        rankings["oracle"] = saved_true
    t, y, ids = test["treated"].to_numpy(), test["label"].to_numpy(), test["customer_id"].to_numpy()
    n_test_t = int(t.sum())
    metrics: dict[str, float] = {
        "rows_holdout": float(len(test)),
        "customers_holdout": float(test["customer_id"].nunique()),
        "holdout_treated": float(n_test_t), "holdout_control": float(len(test) - n_test_t),
        "holdout_control_churn": float(y[~t].mean()), "holdout_treated_churn": float(y[t].mean()),
        "holdout_ate": float(y[~t].mean() - y[t].mean()),
        "mean_predicted_uplift": float(test["uplift"].mean()),
    }
    curves = []
    for name, score in rankings.items():
        observed = qini_curve(score, t, y, ids=ids)
        metrics[f"{name}_qini"] = qini_coefficient(observed)
        curves.append(observed[["share", "saved"]].assign(ranking=name, kind="observed"))
        for share in TOP_SHARES:
            metrics[f"{name}_uplift_at_{round(100 * share)}"] = uplift_at_k(score, t, y, share=share, ids=ids)
        if saved_true is not None:
            # Customers truly saved by calling the top k of everyone held out, scaled to the
            # treated share so that it reads in the observed curve's unit.
            true = true_qini_curve(score, saved_true * n_test_t / len(test), ids=ids)
            metrics[f"{name}_true_qini"] = qini_coefficient(true)
            curves.append(true[["share", "saved"]].assign(ranking=name, kind="true"))
    if saved_true is not None:
        for name in ("uplift", "churn_risk"):
            for kind in ("qini", "true_qini"):
                oracle = metrics[f"oracle_{kind}"]
                metrics[f"{name}_share_of_oracle_{kind}"] = metrics[f"{name}_{kind}"] / oracle if oracle else float("nan")
        metrics["holdout_true_saved"] = float(saved_true[t].sum())
    return metrics, pd.concat(curves, ignore_index=True)[["ranking", "kind", "share", "saved"]]


@dataclass(frozen=True)
class UpliftResult:
    """What an uplift training run produced and decided."""

    model: UpliftModel
    artifact: ModelArtifact
    metrics: dict[str, float]
    list_dates: list[str]
    skipped: list[str]
    promoted: bool = False
    reason: str = ""
    run_id: str | None = None
    model_name: str | None = None
    version: str | None = None
    alias: str | None = None
    champion_qini: float | None = None

    def summary(self) -> str:
        """Plain-text summary for the CLI."""
        m = self.metrics
        lines = [
            f"task uplift: customers held out ({m['customers_holdout']:.0f} customers, {m['rows_holdout']:.0f} rows "
            f"never seen in training); {m['rows_train']:.0f} training rows over list dates {', '.join(self.list_dates)}",
            f"  held-out churn: control {m['holdout_control_churn']:.1%}, treated {m['holdout_treated_churn']:.1%} "
            f"(a call lowers churn by {100 * m['holdout_ate']:.1f} points on average)",
            f"  Qini coefficient (customers saved above random): uplift model {m['uplift_qini']:.2f}, "
            f"churn risk alone {m['churn_risk_qini']:.2f}",
            "  uplift at 10/20/30% of the list (points of churn a call removes): model "
            + "/".join(f"{100 * m[f'uplift_uplift_at_{round(100 * s)}']:.1f}" for s in TOP_SHARES)
            + ", churn risk " + "/".join(f"{100 * m[f'churn_risk_uplift_at_{round(100 * s)}']:.1f}" for s in TOP_SHARES),
        ]
        if "oracle_qini" in m:
            lines.append(f"  oracle (true effects) Qini {m['oracle_qini']:.2f}: the model reaches "
                         f"{100 * m['uplift_share_of_oracle_qini']:.1f}% of it (churn risk "
                         f"{100 * m['churn_risk_share_of_oracle_qini']:.1f}%); on the true effects "
                         f"{100 * m['uplift_share_of_oracle_true_qini']:.1f}% (churn risk "
                         f"{100 * m['churn_risk_share_of_oracle_true_qini']:.1f}%)")
        lines.extend(f"  left out: {s}" for s in self.skipped)
        if self.version is not None:
            lines.append(f"  registered {self.model_name} version {self.version} as {self.alias} (run {self.run_id})")
        if self.reason:
            lines.append(f"  {self.reason}")
        return "\n".join(lines)


def promotion(metrics: dict[str, float], champion_qini: float | None) -> tuple[bool, str]:
    """Champion when the model's held-out Qini beats churn-risk ranking and the champion's on the same rows.

    An uplift model that ranks no better than churn risk would only reorder the list for worse.

    Examples
    --------
    >>> promotion({"uplift_qini": 3.0, "churn_risk_qini": 1.0}, None)
    (True, 'promoted to champion: held-out Qini 3.00 beats churn risk alone (1.00); no champion was registered')
    >>> promotion({"uplift_qini": 0.5, "churn_risk_qini": 1.0}, None)[0]
    False
    """
    new, risk = metrics["uplift_qini"], metrics["churn_risk_qini"]
    if not new > risk:
        return False, f"kept as challenger: held-out Qini {new:.2f} does not beat churn risk alone ({risk:.2f})"
    if champion_qini is None:
        return True, f"promoted to champion: held-out Qini {new:.2f} beats churn risk alone ({risk:.2f}); " \
                     "no champion was registered"
    if new > champion_qini:
        return True, f"promoted to champion: held-out Qini {new:.2f} beats churn risk ({risk:.2f}) and the " \
                     f"champion ({champion_qini:.2f}) on the same customers"
    return False, f"kept as challenger: held-out Qini {new:.2f} does not beat the champion's {champion_qini:.2f}"


def train_uplift(
    tables: dict[str, pd.DataFrame],
    spec: UpliftSpec,
    *,
    as_of=None,
    tracking_uri: str | None = None,
    feature_set: FeatureSet | None = None,
    truth: pd.DataFrame | None = None,
    register: bool = True,
    progress: bool = False,
    log: Callable[[str], Any] = print,
) -> UpliftResult:
    """Learn whom a contact keeps from past campaigns; evaluate, track and register ``churnguard-uplift``.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables with ``outreach_log``.
    spec : UpliftSpec
    as_of : date-like, optional
        Train as if today were `as_of`: nothing at or after it is used (list dates
        whose horizon ends after it are left out).
    tracking_uri : str, optional
        MLflow store; default MLFLOW_TRACKING_URI, else ``sqlite:///mlflow.db`` in the cwd.
    feature_set : FeatureSet, optional
        Features to build; the packaged default when omitted. Resolved once and stored.
    truth : DataFrame, optional
        A generated world's ``uplift_truth``, for the oracle Qini.
    register : bool, default=True
        Log the run and register the model; False touches no MLflow.

    Raises
    ------
    NoCampaign
        Nothing to learn from (see :func:`uplift_training_set`).

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a"]})
    >>> train_uplift({"customers": customers}, UpliftSpec(), register=False, log=lambda s: None)
    Traceback (most recent call last):
    ...
    churnguard.training.uplift.NoCampaign: no outreach_log table: the uplift model learns from past lists with a control group
    """
    if as_of is not None:
        as_of = coerce_as_of(as_of)
        tables = cut_tables(tables, as_of)
        if tables.get("outreach_log") is not None:
            log_table = tables["outreach_log"]
            tables["outreach_log"] = log_table[pd.to_datetime(log_table["list_date"]) < as_of]
    data = uplift_training_set(tables, spec, feature_set=feature_set, progress=progress, log=log)
    evaluation = evaluate_uplift(data, spec, truth=truth, log=log)
    model = evaluation.model
    frame = data.frame
    if spec.production_refit:
        # Evaluation kept a share of the customers out; the model that ranks tomorrow's list learns from all.
        model = UpliftModel(params=spec.lightgbm, effect_params=spec.effect_lightgbm, random_state=spec.seed)
        model.fit(frame[data.features], frame["treated"].to_numpy(), frame["label"].to_numpy())
        log(f"uplift: refit on all {len(frame):,} campaign rows for production")
    list_dates = [str(d.date()) for d in sorted(pd.to_datetime(frame["list_date"].unique()))]
    window = {"list_dates": list_dates, "evaluation": f"customers held out ({spec.holdout_share:.0%}, seed {spec.seed})",
              "holdout": list_dates[-1], "action": spec.action}
    artifact = ModelArtifact(
        model, task="uplift", feature_set=data.feature_set, catalogue=data.catalogue, training_window=window,
        horizon_days=spec.horizon_days, label=data.definition, lookback_days=spec.lookback_days,
        as_of=None if as_of is None else str(as_of.date()),
    )
    result = UpliftResult(model=model, artifact=artifact, metrics=evaluation.metrics, list_dates=list_dates,
                          skipped=data.skipped)
    if not register:
        return result

    from churnguard.training.uplift_registry import champion_qini, log_uplift_run

    champion = champion_qini(evaluation, tracking_uri=tracking_uri)
    promote, reason = promotion(evaluation.metrics, champion)
    registered = log_uplift_run(spec, artifact, evaluation, promote=promote, reason=reason, tracking_uri=tracking_uri)
    log(reason)
    return replace(
        result, promoted=promote, reason=reason, champion_qini=champion, run_id=registered.run_id,
        model_name=registered.model_name, version=registered.version, alias=registered.alias,
        artifact=replace(artifact, name=registered.model_name, version=registered.version, run_id=registered.run_id,
                         uri=f"models:/{registered.model_name}/{registered.version}"),
    )
