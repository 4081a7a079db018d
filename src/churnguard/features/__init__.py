"""Point-in-time feature vectors: one row per customer, using only events before ``as_of``.

Each table family lives in its own module (``customers``, ``purchases``,
``interactions``, ``service``, ``usage``) with the interface pinned in
``docs/architecture.md``:

* ``FAMILY``: the family name, also the feature-set section and the column prefix;
* ``TABLES`` (optional): the tables the family needs, default ``(FAMILY,)``;
  a family whose tables are absent is skipped;
* ``resolve(tables, as_of, spec) -> spec`` (optional): fill data-derived value lists;
* ``build(tables, as_of, customers, spec) -> (frame, list[FeatureInfo])``;
* ``catalogue(spec, tables=None) -> list[FeatureInfo]`` (optional): the features the
  family would build, with placeholders such as ``{channel}`` and ``{window}`` where
  no data is given. Without it, ``feature_catalogue`` builds the family for an empty
  population to learn its columns.

This module calls the families in a fixed order and concatenates their frames.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType

import pandas as pd

from churnguard.config import FeatureSet, load_feature_set
from churnguard.features.catalogue import FeatureInfo, catalogue_frame
# Re-exported: the population is a point-in-time rule, decided in the timeline.
from churnguard.timeline import coerce_as_of, population

FAMILIES: tuple[str, ...] = ("customers", "purchases", "interactions", "service", "usage")
# Tables each family needs when its module does not say (``TABLES``): service features
# start from the installed products; service_events only add to them.
DEFAULT_TABLES: dict[str, tuple[str, ...]] = {"service": ("assets",)}


def _family_modules() -> list[ModuleType]:
    """The family modules that exist, in the fixed order of `FAMILIES`.

    Modules are imported lazily so a family still being written (or removed) is
    simply skipped, while an import error *inside* an existing module still raises.
    """
    modules = []
    for name in FAMILIES:
        qualified = f"{__name__}.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as err:
            if err.name != qualified:
                raise
    return modules


def _tables_present(module: ModuleType, tables: dict[str, pd.DataFrame]) -> bool:
    needed = getattr(module, "TABLES", DEFAULT_TABLES.get(module.FAMILY, (module.FAMILY,)))
    return all(tables.get(t) is not None for t in needed)


def _spec(feature_set: FeatureSet, family: str):
    return getattr(feature_set, family)


def resolve_feature_set(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, feature_set: FeatureSet | None = None
) -> FeatureSet:
    """Fill the data-derived value lists (channels, topics, usage events) of a feature set.

    Values come from events strictly before `as_of`. Lists already filled are kept,
    so resolving twice changes nothing; training resolves once at its newest cutoff
    and stores the result with the model, so scoring builds the same columns.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": ["a"]})
    >>> interactions = pd.DataFrame({
    ...     "customer_id": ["a", "a"], "channel": ["phone", "chat"], "topic": ["billing", None],
    ...     "timestamp": pd.to_datetime(["2024-01-10", "2024-03-01"]),
    ... })
    >>> fs = resolve_feature_set({"customers": customers, "interactions": interactions},
    ...                          pd.Timestamp("2024-02-01"))
    >>> fs.interactions.channels, fs.interactions.topics
    (('phone',), ('billing',))
    """
    feature_set = feature_set or load_feature_set()
    for module in _family_modules():
        resolve = getattr(module, "resolve", None)
        if resolve is None or not _tables_present(module, tables):
            continue
        spec = _spec(feature_set, module.FAMILY)
        feature_set = replace(feature_set, **{module.FAMILY: resolve(tables, as_of, spec)})
    return feature_set


def _rows_read(module: ModuleType, tables: dict[str, pd.DataFrame]) -> int:
    """Rows of the tables a family needs: a rough measure of how long it takes."""
    return sum(len(tables[name]) for name in getattr(module, "TABLES", (module.FAMILY,)) if tables.get(name) is not None)


def _build_families(tables, as_of, feature_set, customers, progress=False):
    """Every enabled family's frame and infos, in the fixed family order.

    Families run side by side on a thread pool, one per core: their heavy parts are
    DuckDB queries (which release the GIL and run on the calling thread) and numpy
    reductions, and each family reads the shared tables without changing them. Results
    are gathered in family order, so the output does not depend on which finishes first.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from churnguard.features.engine import threads

    modules = [
        m
        for m in _family_modules()
        if _spec(feature_set, m.FAMILY).enabled and _tables_present(m, tables)
    ]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(modules), desc=f"features {as_of:%Y-%m-%d}", unit="family")
    workers = max(1, min(len(modules), threads()))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="churnguard-features") as pool:
        # Longest first (by rows read), so the last family to start is a short one.
        by_size = sorted(range(len(modules)), key=lambda i: -_rows_read(modules[i], tables))
        futures = {
            pool.submit(modules[i].build, tables, as_of, customers, _spec(feature_set, modules[i].FAMILY)): i
            for i in by_size
        }
        results: list = [None] * len(modules)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    frames, infos = [], []
    for frame, family_infos in results:
        frames.append(frame)
        infos.extend(family_infos)
    return frames, infos


def build_features(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    feature_set: FeatureSet | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """One feature row per customer in the population at `as_of`, from events before it.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Validated tables keyed by contract name; only ``customers`` is required, each
        other table adds its family.
    as_of : Timestamp
        Cut-off; only events with ``timestamp < as_of`` are used.
    feature_set : FeatureSet, optional
        Which features to build; the packaged default when omitted. Data-derived lists
        left empty (``None``) are resolved from events before `as_of` first.
    progress : bool, default=False
        Show a progress bar over the families.

    Returns
    -------
    DataFrame
        ``customer_id`` first, one row per population customer sorted by it, then
        float64 features (pandas ``category`` for string attributes).

    Examples
    --------
    >>> tables = {
    ...     "customers": pd.DataFrame({"customer_id": ["b", "a"], "plan": ["pro", "basic"]}),
    ...     "purchases": pd.DataFrame({
    ...         "customer_id": ["a", "a", "b"], "amount": [10.0, 30.0, 99.0],
    ...         "timestamp": pd.to_datetime(["2024-01-01", "2024-01-21", "2024-02-01"]),
    ...         "is_return": pd.array([False, False, False], dtype="boolean")}),
    ... }
    >>> features = build_features(tables, pd.Timestamp("2024-02-01"))
    >>> features[["customer_id", "customers_plan", "purchases_count_30d", "purchases_days_since_last"]]
      customer_id customers_plan  purchases_count_30d  purchases_days_since_last
    0           a          basic                  1.0                       11.0
    1           b            pro                  0.0                        NaN
    """
    as_of = coerce_as_of(as_of)
    feature_set = resolve_feature_set(tables, as_of, feature_set)
    customers = population(tables, as_of)
    frames, _ = _build_families(tables, as_of, feature_set, customers, progress=progress)
    out = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=customers)
    out.index.name = "customer_id"
    return out.reset_index()


def feature_catalogue(
    tables: dict[str, pd.DataFrame] | None = None,
    as_of: pd.Timestamp | None = None,
    *,
    feature_set: FeatureSet | None = None,
) -> pd.DataFrame:
    """What each feature means: one row per feature, in column order.

    Without `tables`, the generic features of every family are listed, with
    placeholders such as ``interactions_contacts_{channel}_{window}d``. With `tables`
    (and `as_of`), exactly the columns :func:`build_features` would produce.

    Returns
    -------
    DataFrame
        Columns ``name, family, description, unit, reason, direction, model_input``.

    Examples
    --------
    >>> cat = feature_catalogue()
    >>> "purchases_count_{window}d" in set(cat["name"])
    True
    >>> list(cat.columns)
    ['name', 'family', 'description', 'unit', 'reason', 'direction', 'model_input', 'fact', 'reason_if', 'grows_with_time']
    """
    feature_set = feature_set or load_feature_set()
    infos: list[FeatureInfo] = []
    if tables is None:
        for module in _family_modules():
            if _spec(feature_set, module.FAMILY).enabled and hasattr(module, "catalogue"):
                infos.extend(module.catalogue(_spec(feature_set, module.FAMILY)))
        return catalogue_frame(infos)
    if as_of is None:
        raise ValueError("feature_catalogue needs as_of when tables are given")
    as_of = coerce_as_of(as_of)
    feature_set = resolve_feature_set(tables, as_of, feature_set)
    for module in _family_modules():
        spec = _spec(feature_set, module.FAMILY)
        if not (spec.enabled and _tables_present(module, tables)):
            continue
        if hasattr(module, "catalogue"):
            infos.extend(module.catalogue(spec, tables))
        else:
            empty = pd.Index([], dtype="str", name="customer_id")
            infos.extend(module.build(tables, as_of, empty, spec)[1])
    return catalogue_frame(infos)


__all__ = [
    "FAMILIES",
    "FeatureInfo",
    "build_features",
    "feature_catalogue",
    "population",
    "resolve_feature_set",
]
