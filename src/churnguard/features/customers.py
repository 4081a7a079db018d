"""Customer features: static attributes, tenure and value from the ``customers`` table."""

from __future__ import annotations

import pandas as pd

from churnguard.config import CustomersFeatures
from churnguard.features.catalogue import FeatureInfo
from churnguard.features.engine import name_parts

FAMILY = "customers"
TABLES = ("customers",)

# Contract columns that are not behaviour: keys, dates that define the population and
# the labels (churn_date *is* the contractual label), and outreach routing settings.
NOT_FEATURES = frozenset({"customer_id", "signup_date", "churn_date", "do_not_contact", "preferred_channel", "value",
                          "contact_every_days", "refuses_phone"})
# A string column with more distinct values than this, most of them unique, is an
# identifier or free text (email, name, address), not a category a model can use.
MAX_CATEGORIES = 1000


def _is_identifier_like(column: pd.Series) -> bool:
    n_unique = column.nunique(dropna=True)
    return n_unique > MAX_CATEGORIES and n_unique > 0.5 * column.notna().sum()


def static_attributes(customers: pd.DataFrame, spec: CustomersFeatures) -> list[str]:
    """Columns of `customers` that become features as they are, in table order.

    Excluded: contract columns that are not behaviour (ids, dates, ``churn_date``,
    ``do_not_contact``, ``preferred_channel``, ``contact_every_days``, ``refuses_phone``), any ``*_id`` or date column, columns
    listed in ``spec.exclude``, and identifier-like text columns.

    Examples
    --------
    >>> customers = pd.DataFrame({
    ...     "customer_id": ["a"], "signup_date": pd.to_datetime(["2020-01-01"]),
    ...     "plan": ["pro"], "seats": [3.0], "crm_id": ["x1"], "region": ["north"]})
    >>> static_attributes(customers, CustomersFeatures(exclude=("region",)))
    ['plan', 'seats']
    """
    out = []
    for name in customers.columns:
        column = customers[name]
        if (
            name in NOT_FEATURES
            or name in spec.exclude
            or name.lower().endswith("_id")
            or pd.api.types.is_datetime64_any_dtype(column)
        ):
            continue
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            if _is_identifier_like(column):
                continue
        out.append(name)
    return out


def _attribute_columns(customers: pd.DataFrame | None, spec: CustomersFeatures) -> dict[str, str]:
    attributes = static_attributes(customers, spec) if customers is not None else ["{attribute}"]
    # The fixed names come first so an attribute called "tenure days" cannot take them.
    parts = name_parts(["tenure_days", "value", *attributes])
    return {a: f"{FAMILY}_{parts[a]}" for a in attributes} if customers is not None else {
        "{attribute}": f"{FAMILY}_{{attribute}}"
    }


def catalogue(spec: CustomersFeatures, tables: dict[str, pd.DataFrame] | None = None) -> list[FeatureInfo]:
    """The customer features, for `tables` if given, else generically.

    Examples
    --------
    >>> [i.name for i in catalogue(CustomersFeatures())]
    ['customers_tenure_days', 'customers_value', 'customers_{attribute}']
    """
    infos = [
        FeatureInfo(
            f"{FAMILY}_tenure_days", FAMILY, "Days from signup to as_of", "days",
            reason="customer for only {customers_tenure_days:.0f} days", direction="down", fact="tenure",
            # A year or more is a long-standing customer, whatever the model's interactions say.
            reason_if=f"{FAMILY}_tenure_days < 365", grows_with_time=True,
        ),
        FeatureInfo(f"{FAMILY}_value", FAMILY, "Customer value (revenue or CLV) from the customers table", "currency",
                    direction="up"),
    ]
    customers = None if tables is None else tables["customers"]
    for attribute, name in _attribute_columns(customers, spec).items():
        if customers is None:
            unit = "number or category"
        elif pd.api.types.is_numeric_dtype(customers[attribute]) or pd.api.types.is_bool_dtype(customers[attribute]):
            unit = "number"
        else:
            unit = "category"
        infos.append(FeatureInfo(name, FAMILY, f"Static attribute {attribute} from the customers table", unit))
    return infos


def build(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customers: pd.Index, spec: CustomersFeatures
) -> tuple[pd.DataFrame, list[FeatureInfo]]:
    """Tenure, value and static attributes for the `customers` given, in their order.

    Numbers (and flags) become float64; strings become pandas ``category`` with the
    categories of the whole table, sorted, so frames built at different cutoffs stack
    with identical categories.

    Examples
    --------
    >>> table = pd.DataFrame({
    ...     "customer_id": ["a", "b"], "signup_date": pd.to_datetime(["2024-01-01", None]),
    ...     "value": [120.0, None], "plan": ["pro", "basic"]})
    >>> frame, infos = build({"customers": table}, pd.Timestamp("2024-01-31"),
    ...                      pd.Index(["a", "b"], name="customer_id"), CustomersFeatures())
    >>> frame
                 customers_tenure_days  customers_value customers_plan
    customer_id
    a                             30.0            120.0            pro
    b                              NaN              NaN          basic
    >>> frame["customers_plan"].cat.categories.tolist()
    ['basic', 'pro']
    """
    table = tables["customers"].drop_duplicates("customer_id").set_index("customer_id")
    rows = table.reindex(customers)
    out = pd.DataFrame(index=customers)
    if "signup_date" in rows:
        out[f"{FAMILY}_tenure_days"] = ((as_of - rows["signup_date"]) / pd.Timedelta(days=1)).astype("float64")
    else:
        out[f"{FAMILY}_tenure_days"] = float("nan")
    out[f"{FAMILY}_value"] = rows["value"].astype("float64") if "value" in rows else float("nan")
    for attribute, name in _attribute_columns(tables["customers"], spec).items():
        column = rows[attribute]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            out[name] = column.astype("float64")
        else:
            categories = sorted(table[attribute].dropna().astype("str").unique())
            out[name] = pd.Categorical(column.astype("str").where(column.notna()), categories=categories)
    out.index.name = "customer_id"
    return out, catalogue(spec, tables)
