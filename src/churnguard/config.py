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


@dataclass(frozen=True)
class UpliftSpec:
    """What the uplift model learns from past campaigns, and how.

    The outcome is churn within ``horizon_days`` after each list date of `action` in
    ``outreach_log``, defined by the churn labels (``label``, ``lookback_days``); the
    features are churnguard's as of the list date. ``holdout_share`` of the customers
    (picked by a hash of the id and ``seed``) are kept out of training and evaluated on.

    Examples
    --------
    >>> spec = load_uplift_spec()
    >>> spec.action, spec.horizon_days, spec.learner
    ('retention_call', 90, 'x')
    """

    action: str = "retention_call"
    label: str = "auto"
    horizon_days: int = 90
    lookback_days: int = 365
    learner: str = "x"  # the X-learner (Kuenzel et al. 2019): one effect model per group, weighted by the propensity
    holdout_share: float = 0.3
    production_refit: bool = True  # register a model refit on every customer after evaluation
    seed: int = 1
    lightgbm: dict[str, Any] = field(default_factory=dict)  # outcome models (binary)
    effect_lightgbm: dict[str, Any] = field(default_factory=dict)  # effect models (regression on imputed effects)

    def __post_init__(self):
        if self.learner != "x":
            raise ValueError(f"uplift spec: learner must be 'x' (the X-learner), got {self.learner!r}")
        if self.horizon_days <= 0:
            raise ValueError(f"uplift spec: horizon_days must be positive, got {self.horizon_days}")
        if not 0.0 < self.holdout_share < 1.0:
            raise ValueError(f"uplift spec: holdout_share must be between 0 and 1, got {self.holdout_share}")


def load_uplift_spec(path: Path | str | None = None) -> UpliftSpec:
    """Load an uplift spec from TOML, or the packaged ``defaults/uplift.toml``.

    Examples
    --------
    >>> load_uplift_spec().holdout_share
    0.3
    """
    raw, where = _read_toml(path, "uplift.toml")
    return _build(UpliftSpec, raw, where)


# --------------------------------------------------------------------------- outreach


ACTIONS: tuple[str, ...] = ("retention_call", "maintenance_visit", "maintenance_reminder", "win_back")
# One call that does both: a high churn risk and a technician visit due.
BOTH_ACTIONS = "retention_call+maintenance_visit"


@dataclass(frozen=True)
class ActionRule:
    """What one action is worth: the share of the stake it saves, and the risk it needs.

    Examples
    --------
    >>> ActionRule(save_rate=0.2, min_probability=0.1).save_rate
    0.2
    """

    save_rate: float = 0.2  # share of the expected loss this action prevents when it is taken
    min_probability: float = 0.0  # the task's probability this action needs, whatever the value at stake


def _default_actions() -> dict[str, ActionRule]:
    return {
        "retention_call": ActionRule(save_rate=0.25, min_probability=0.15),
        "maintenance_visit": ActionRule(save_rate=0.6, min_probability=0.5),
        "maintenance_reminder": ActionRule(save_rate=0.3, min_probability=0.15),
        "win_back": ActionRule(save_rate=0.05, min_probability=0.0),
    }


@dataclass(frozen=True)
class OutreachRules:
    """How scores become a contact list: expected value saved, actions, channels, suppression, capacity.

    ``priority = probability x stake x save_rate(action) - contact_cost(channel)``, where
    the stake is ``customers.value`` for churn and ``maintenance_cost`` for maintenance.

    Examples
    --------
    >>> rules = load_outreach_rules()
    >>> rules.contact_cooldown_days, rules.visit_threshold
    (14, 0.5)
    >>> rules.contact_cost("phone"), rules.contact_cost("carrier pigeon") == rules.default_contact_cost
    (6.0, True)
    """

    maintenance_cost: float = 400.0  # expected cost of an unplanned repair, in value units
    default_value: float = 1.0  # value used when customers.value is missing
    actions: dict[str, ActionRule] = field(default_factory=_default_actions)
    # What one proactive contact costs per channel, in value units; unknown channels cost the default.
    channel_costs: dict[str, float] = field(
        default_factory=lambda: {"phone": 6.0, "chat": 1.5, "email": 0.2, "sms": 0.1, "app": 0.05})
    default_contact_cost: float = 1.0
    # A retention call at or above this churn probability goes by phone (unless the
    # customer refuses calls, customers.refuses_phone): it is a conversation, not a mailing.
    phone_from_probability: float = 0.5
    # A customer due a visit and above retention_call's minimum churn risk gets one
    # phone call for both (action "retention_call+maintenance_visit").
    combine_actions: bool = True
    # Customers outside the churn model's population who bought before (lapsed) are
    # ranked as win_back after every other action; off: they are suppressed as lapsed.
    win_back: bool = False
    contact_cooldown_days: int = 14  # suppress customers contacted (either way) this recently
    # Fewest days between two proactive contacts (outreach_log); customers.contact_every_days overrides it.
    contact_every_days: int = 30
    quiet_weekdays: tuple[str, ...] = ()  # e.g. ("Sunday",): no proactive contact on those days
    quiet_dates: tuple[str, ...] = ()  # ISO dates (public holidays): no proactive contact
    suppress_open_complaints: bool = True  # an unresolved complaint is already being handled
    # Only recent unresolved complaints count as "being handled"; an older one still
    # unresolved is a reason to call, not to wait.
    open_complaint_days: int = 14
    default_channel: str = "phone"  # for customers without a preferred_channel
    # Actions that always use one channel whatever the customer prefers: a technician
    # visit needs a slot agreed in conversation.
    action_channels: dict[str, str] = field(default_factory=lambda: {"maintenance_visit": "phone"})
    capacity_per_action: dict[str, int] = field(default_factory=dict)
    n_reasons: int = 3
    currency: str = "€"  # symbol ("€", "$") or ISO code ("EUR") of customers.value and amounts
    # Names from the data as care agents say them, e.g. heat_pump = "heat pump"; a name
    # not listed is shown with its underscores as spaces.
    display_names: dict[str, str] = field(default_factory=dict)
    # Hold-out groups (churnguard.outreach.groups): the share of each action's candidates
    # kept out of the list as a control, drawn from sha256(salt|campaign|action|customer_id).
    control_share: float = 0.10
    control_share_per_action: dict[str, float] = field(default_factory=dict)
    control_salt: str = "churnguard"
    # The campaign key: "" derives it from the quarter of as_of ("2026Q4"), so a customer keeps
    # their group every night of a quarter's campaign; set it to run a campaign on other dates.
    control_campaign: str = ""
    # Expected maximum profit of the churn model (churnguard.training.emp): the acceptance rate
    # of a retention offer ~ Beta(emp_alpha, emp_beta), and the offer's cost to the business.
    emp_alpha: float = 6.0
    emp_beta: float = 14.0
    offer_cost: float = 0.0

    def __post_init__(self):
        actions = {*ACTIONS, BOTH_ACTIONS}
        if unknown := set(self.actions) - set(ACTIONS):
            raise ValueError(f"outreach rules: actions has unknown action(s) {sorted(unknown)}; "
                             f"expected some of {sorted(ACTIONS)}")
        merged = {**_default_actions(), **{k: v if isinstance(v, ActionRule) else _build(ActionRule, v, f"actions.{k}")
                                            for k, v in self.actions.items()}}
        object.__setattr__(self, "actions", merged)
        for name, table in (("capacity_per_action", self.capacity_per_action), ("action_channels", self.action_channels)):
            if unknown := set(table) - actions:
                raise ValueError(f"outreach rules: {name} has unknown action(s) {sorted(unknown)}; "
                                 f"expected some of {sorted(actions)}")
        if unknown := set(self.control_share_per_action) - actions:
            raise ValueError(f"outreach rules: control_share_per_action has unknown action(s) {sorted(unknown)}; "
                             f"expected some of {sorted(actions)}")
        shares = [self.control_share, *self.control_share_per_action.values()]
        if any(not 0.0 <= float(v) < 1.0 for v in shares):
            raise ValueError("outreach rules: control_share and control_share_per_action must be in [0, 1)")
        if self.emp_alpha <= 0 or self.emp_beta <= 0 or self.offer_cost < 0:
            raise ValueError("outreach rules: emp_alpha and emp_beta must be > 0, offer_cost >= 0")
        if any(int(v) < 0 for v in self.capacity_per_action.values()):
            raise ValueError("outreach rules: capacity_per_action values must be >= 0")
        for action, rule in merged.items():
            if not 0.0 <= rule.save_rate <= 1.0 or not 0.0 <= rule.min_probability <= 1.0:
                raise ValueError(f"outreach rules: actions.{action} save_rate and min_probability must be in 0..1")
        if any(float(v) < 0 for v in self.channel_costs.values()) or self.default_contact_cost < 0:
            raise ValueError("outreach rules: channel_costs must be >= 0")
        days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
        if bad := [d for d in self.quiet_weekdays if d not in days]:
            raise ValueError(f"outreach rules: quiet_weekdays has {bad}; expected day names like 'Sunday'")
        if not 1 <= self.n_reasons <= 3:
            raise ValueError(f"outreach rules: n_reasons must be 1..3 (the list has three reason columns), got {self.n_reasons}")

    @property
    def visit_threshold(self) -> float:
        """Maintenance probability from which a technician visit beats a reminder."""
        return self.actions["maintenance_visit"].min_probability

    def contact_cost(self, channel: str) -> float:
        """What one proactive contact by `channel` costs (``default_contact_cost`` if unlisted)."""
        return float(self.channel_costs.get(channel, self.default_contact_cost))

    def money(self, amount: float, *, decimals: int = 0) -> str:
        """`amount` with the rules' currency: ``€1,234`` for a symbol, ``1,234 EUR`` for a code.

        Examples
        --------
        >>> load_outreach_rules().money(1234.5)
        '€1,234'
        >>> replace(load_outreach_rules(), currency="EUR").money(-5.0, decimals=2)
        '-5.00 EUR'
        """
        text = f"{abs(amount):,.{decimals}f}"
        sign = "-" if amount < 0 else ""
        if self.currency.isalpha() and len(self.currency) > 1:
            return f"{sign}{text} {self.currency}"
        return f"{sign}{self.currency}{text}"


def load_outreach_rules(path: Path | str | None = None) -> OutreachRules:
    """Load outreach rules from TOML, or the packaged defaults."""
    raw, where = _read_toml(path, "outreach.toml")
    return _build(OutreachRules, raw, where)


__all__ = [
    "ACTIONS",
    "BOTH_ACTIONS",
    "TASKS",
    "ActionRule",
    "FeatureSet",
    "ModelSpec",
    "OutreachRules",
    "PromotionRule",
    "UpliftSpec",
    "load_feature_set",
    "load_model_spec",
    "load_outreach_rules",
    "load_uplift_spec",
    "replace",
]
