"""Typed configuration loaded from TOML: feature sets, model specs, outreach rules.

Every loader rejects unknown keys, so a typo in a config file fails loudly
instead of silently falling back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Task = Literal["churn", "maintenance"]
TASKS: tuple[str, ...] = ("churn", "maintenance")


def _build(cls, raw: dict[str, Any], where: str):
    """Instantiate dataclass `cls` from `raw`, recursing into nested dataclass fields."""
    known = {f.name: f for f in fields(cls)}
    if unknown := raw.keys() - known.keys():
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
    kwargs = {}
    for key, value in raw.items():
        default = known[key].default_factory() if callable(known[key].default_factory) else None  # type: ignore[misc]
        if is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _read_toml(path: Path | str | None, default_name: str) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("churnguard").joinpath(f"defaults/{default_name}").read_text()
        return tomllib.loads(text), f"churnguard/defaults/{default_name}"
    path = Path(path)
    return tomllib.loads(path.read_text()), str(path)


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class CustomersFeatures:
    enabled: bool = True
    exclude: tuple[str, ...] = ()  # static attribute columns never to use as features


@dataclass(frozen=True)
class PurchasesFeatures:
    enabled: bool = True
    windows: tuple[int, ...] = (30, 90, 180, 365)


@dataclass(frozen=True)
class InteractionsFeatures:
    enabled: bool = True
    windows: tuple[int, ...] = (30, 90, 365)
    # None = take the most frequent values seen before as_of (resolved once per training run
    # and stored with the model, so scoring builds exactly the same columns).
    channels: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    top_k_topics: int = 8
    repeat_contact_days: int = 7


@dataclass(frozen=True)
class ServiceFeatures:
    enabled: bool = True
    windows: tuple[int, ...] = (90, 365)
    preventive_kinds: tuple[str, ...] = ("preventive",)
    failure_kinds: tuple[str, ...] = ("repair", "failure")


@dataclass(frozen=True)
class UsageFeatures:
    enabled: bool = True
    windows: tuple[int, ...] = (7, 30, 90)
    top_k_events: int = 5
    events: tuple[str, ...] = ()  # always included, on top of the top-K from the data
    # Events resolved from the data (top-K before as_of, plus `events`); None until resolved.
    resolved_events: tuple[str, ...] | None = None
    trend_recent_days: int = 30
    trend_baseline_days: int = 90  # the 90 days before the recent window
    load_events: tuple[str, ...] = ()  # asset-load events (e.g. "cycles"); empty = any event with asset_id
    # Service kinds that reset an asset's load count; keep in step with [service] preventive_kinds.
    preventive_kinds: tuple[str, ...] = ("preventive",)


@dataclass(frozen=True)
class FeatureSet:
    """Which features to build: one section per table family.

    Examples
    --------
    >>> fs = load_feature_set()
    >>> fs.purchases.windows
    (30, 90, 180, 365)
    >>> replace(fs, usage=replace(fs.usage, top_k_events=3)).usage.top_k_events
    3
    """

    name: str = "default"
    customers: CustomersFeatures = field(default_factory=CustomersFeatures)
    purchases: PurchasesFeatures = field(default_factory=PurchasesFeatures)
    interactions: InteractionsFeatures = field(default_factory=InteractionsFeatures)
    service: ServiceFeatures = field(default_factory=ServiceFeatures)
    usage: UsageFeatures = field(default_factory=UsageFeatures)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, not tuples) for JSON/MLflow logging and for storing with a model."""
        from dataclasses import asdict

        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v

        return plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "feature set") -> "FeatureSet":
        return _build(cls, raw, where)


def load_feature_set(path: Path | str | None = None) -> FeatureSet:
    """Load a feature set from TOML; without a path, the default shipped in the package.

    Examples
    --------
    >>> load_feature_set().name
    'default'
    """
    raw, where = _read_toml(path, "features.toml")
    return FeatureSet.from_dict(raw, where)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class PromotionRule:
    metric: str = "roc_auc"  # compared on the same held-out cutoff
    min_improvement: float = 0.0  # new model must beat the champion by more than this
    higher_is_better: bool = True


@dataclass(frozen=True)
class ModelSpec:
    """What to predict and how to train it, for one task.

    Examples
    --------
    >>> spec = load_model_spec(task="maintenance")
    >>> spec.task, spec.horizon_days
    ('maintenance', 90)
    """

    task: str
    # auto: contractual churn if customers.churn_date exists, else inactivity;
    # "supplied" uses the labels table. Maintenance: "service" (repair/failure events).
    label: str = "auto"
    horizon_days: int = 90
    lookback_days: int = 365
    n_cutoffs: int = 12
    # Days between training cutoffs; None: 30, or 7 for horizons under 60 days, where monthly
    # cutoffs leave a short export with one or two cutoffs (benchmarks/README.md).
    cutoff_step_days: int | None = None
    min_history_days: int = 30  # no cutoff earlier than the first event + this much history
    production_refit: bool = True  # register a model refit on every cutoff (benchmarks/bench_refit.py)
    failure_kinds: tuple[str, ...] = ("repair", "failure")
    seed: int = 1
    lightgbm: dict[str, Any] = field(default_factory=dict)
    calibration: str = "beta"  # beta | isotonic | sigmoid | none
    promotion: PromotionRule = field(default_factory=PromotionRule)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"model spec: task must be one of {TASKS}, got {self.task!r}")
        if self.calibration not in ("beta", "isotonic", "sigmoid", "none"):
            raise ValueError(f"model spec: calibration must be beta, isotonic, sigmoid or none, got {self.calibration!r}")
        if self.horizon_days <= 0:
            raise ValueError(f"model spec: horizon_days must be positive, got {self.horizon_days}")
        if self.cutoff_step_days is not None and self.cutoff_step_days <= 0:
            raise ValueError(f"model spec: cutoff_step_days must be positive, got {self.cutoff_step_days}")
        if self.n_cutoffs <= 0:
            raise ValueError(f"model spec: n_cutoffs must be positive, got {self.n_cutoffs}")
        if self.min_history_days < 0:
            raise ValueError(f"model spec: min_history_days must be 0 or more, got {self.min_history_days}")


    @property
    def cutoff_step(self) -> int:
        """Days between training cutoffs: ``cutoff_step_days``, else 30 (7 for horizons under 60 days).

        Examples
        --------
        >>> from dataclasses import replace
        >>> spec = load_model_spec(task="churn")
        >>> spec.cutoff_step, replace(spec, horizon_days=30).cutoff_step, replace(spec, cutoff_step_days=14).cutoff_step
        (30, 7, 14)
        """
        if self.cutoff_step_days is not None:
            return self.cutoff_step_days
        return 30 if self.horizon_days >= 60 else 7

def load_model_spec(path: Path | str | None = None, *, task: str | None = None) -> ModelSpec:
    """Load a model spec from TOML, or the packaged default for `task`.

    Examples
    --------
    >>> load_model_spec(task="churn").calibration
    'beta'
    """
    if path is None:
        if task is None:
            raise ValueError("load_model_spec needs a path or a task")
        raw, where = _read_toml(None, f"{task}.toml")
    else:
        raw, where = _read_toml(path, "")
    return _build(ModelSpec, raw, where)


# --------------------------------------------------------------------------- outreach


@dataclass(frozen=True)
class OutreachRules:
    """How scores become a contact list: stakes, actions, suppression, capacity.

    Examples
    --------
    >>> load_outreach_rules().contact_cooldown_days
    14
    """

    maintenance_cost: float = 400.0  # expected cost of an unplanned repair, in value units
    default_value: float = 1.0  # value used when customers.value is missing
    min_probability: float = 0.0  # customers below this on every task are not listed
    contact_cooldown_days: int = 14  # suppress customers contacted this recently
    suppress_open_complaints: bool = True  # an unresolved complaint is already being handled
    # Only recent unresolved complaints count as "being handled"; an older one still
    # unresolved is a reason to call, not to wait.
    open_complaint_days: int = 14
    visit_threshold: float = 0.5  # maintenance probability above which we send a technician
    default_channel: str = "phone"  # for customers without a preferred_channel
    # Actions that always use one channel whatever the customer prefers: a technician
    # visit needs a slot agreed in conversation.
    action_channels: dict[str, str] = field(default_factory=lambda: {"maintenance_visit": "phone"})
    capacity_per_action: dict[str, int] = field(default_factory=dict)
    n_reasons: int = 3

    def __post_init__(self):
        actions = {"retention_call", "maintenance_visit", "maintenance_reminder"}
        for name, table in (("capacity_per_action", self.capacity_per_action), ("action_channels", self.action_channels)):
            if unknown := set(table) - actions:
                raise ValueError(f"outreach rules: {name} has unknown action(s) {sorted(unknown)}; "
                                 f"expected some of {sorted(actions)}")
        if any(int(v) < 0 for v in self.capacity_per_action.values()):
            raise ValueError("outreach rules: capacity_per_action values must be >= 0")
        if not 1 <= self.n_reasons <= 3:
            raise ValueError(f"outreach rules: n_reasons must be 1..3 (the list has three reason columns), got {self.n_reasons}")


def load_outreach_rules(path: Path | str | None = None) -> OutreachRules:
    """Load outreach rules from TOML, or the packaged defaults."""
    raw, where = _read_toml(path, "outreach.toml")
    return _build(OutreachRules, raw, where)


__all__ = [
    "TASKS",
    "FeatureSet",
    "ModelSpec",
    "OutreachRules",
    "PromotionRule",
    "load_feature_set",
    "load_model_spec",
    "load_outreach_rules",
    "replace",
]
