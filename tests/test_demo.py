"""End to end on a generated world: `run_demo`, and lists whose top rows make sense."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnguard.io import read_raw_table
from churnguard.scoring import OUTREACH_COLUMNS, SUPPRESSED_COLUMNS, score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from churnguard.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    paths = run_demo(out, n_customers=3_000, seed=1, quiet=True)
    return out, paths


def test_demo_writes_list_suppressed_list_and_report(demo):
    out, paths = demo
    assert paths["outreach"] == out / "outreach.csv"
    assert paths["suppressed"] == out / "outreach.suppressed.csv"
    assert paths["report"] == out / "report.html"
    outreach = read_raw_table(paths["outreach"])
    assert list(outreach.columns) == OUTREACH_COLUMNS
    assert list(read_raw_table(paths["suppressed"]).columns) == SUPPRESSED_COLUMNS
    assert len(outreach) > 100
    tasks = [set(json.loads(text)) for text in outreach["explanation"]]
    # Churn explains everyone; maintenance only owners of an installed product.
    assert all("churn" in t for t in tasks) and any("maintenance" in t for t in tasks)
    html = paths["report"].read_text()
    assert "churnguard-churn" in html and "churnguard-maintenance" in html
    # The local MLflow store lives under the output folder: no server, nothing elsewhere.
    assert (out / "mlflow.db").exists()
    assert not list(out.glob(".*.tmp"))


def _hand_built(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Two clones of one quiet, loyal, long-standing customer; 'angry' adds complaints.

    Cloning a real customer keeps every other feature realistic, so the only
    difference the models see is five recent unresolved complaints (with the long
    waits and bad survey answers that come with them).
    """
    day = pd.Timedelta(days=1)
    customers, interactions = tables["customers"], tables["interactions"]
    recent = interactions[interactions["timestamp"] >= as_of - 365 * day]
    complainers = recent.loc[recent["is_complaint"].fillna(False).astype(bool), "customer_id"]
    contacted = interactions.loc[interactions["timestamp"] >= as_of - 30 * day, "customer_id"]
    owners = tables["assets"]["customer_id"] if "assets" in tables else pd.Series([], dtype="str")
    bought = tables["purchases"].loc[tables["purchases"]["timestamp"] >= as_of - 90 * day, "customer_id"]
    quiet = customers[
        (customers["signup_date"] < as_of - 730 * day)
        & customers["churn_date"].isna()
        & ~customers["do_not_contact"].fillna(False).astype(bool)
        & ~customers["customer_id"].isin(complainers)
        & ~customers["customer_id"].isin(contacted)
        & ~customers["customer_id"].isin(owners)
        & customers["customer_id"].isin(bought)
    ]
    base = quiet.sort_values("customer_id").iloc[0]["customer_id"]
    angry, loyal = "9999998", "9999999"

    out = dict(tables)
    for name, table in tables.items():
        if name in ("assets", "service_events", "labels") or "customer_id" not in table.columns:
            continue
        rows = table[table["customer_id"] == base]
        clones = [rows.assign(customer_id=pd.array([who] * len(rows), dtype="str")) for who in (angry, loyal)]
        if name == "purchases" and "order_id" in rows:
            for k, clone in enumerate(clones):
                clone["order_id"] = pd.array([f"X{k}{i:08d}" for i in range(len(clone))], dtype="str")
        out[name] = pd.concat([table, *clones], ignore_index=True)

    # Angry: five unresolved, escalated complaints 16 to 28 days ago (after the contact
    # cooldown and the open-complaint window, so the customer is callable).
    complaint = interactions[interactions["is_complaint"].fillna(False).astype(bool)].iloc[[0] * 5].copy()
    complaint["customer_id"] = pd.array([angry] * 5, dtype="str")
    complaint["timestamp"] = pd.Series([as_of - d * day for d in (16, 19, 22, 25, 28)],
                                       dtype="datetime64[us]").to_numpy()
    complaint["resolved"] = pd.array([False] * 5, dtype="boolean")
    for column, value in (("escalated", True), ("abandoned", False)):
        if column in complaint:
            complaint[column] = pd.array([value] * 5, dtype="boolean")
    for column, value in (("csat", 1.0), ("nps", 0.0), ("ces", 7.0), ("sentiment", -0.9), ("wait_seconds", 900.0)):
        if column in complaint:
            complaint[column] = value
    out["interactions"] = pd.concat([out["interactions"], complaint], ignore_index=True)
    return out


def test_customer_with_unresolved_complaints_ranks_above_a_quiet_loyal_one_and_is_told_why(demo):
    from churnguard.labels import data_end
    from churnguard.training import load_task_model
    from churnguard.validation import load_data

    out, _ = demo
    tables = load_data(out / "data").tables
    as_of = data_end(tables)
    tracking = f"sqlite:///{out / 'mlflow.db'}"
    models = {task: load_task_model(task, tracking_uri=tracking) for task in ("churn", "maintenance")}
    result = score(_hand_built(tables, as_of), as_of, models)
    ranked = result.outreach.set_index("customer_id")
    angry, loyal = ranked.loc["9999998"], ranked.loc["9999999"]
    assert angry["churn_probability"] > loyal["churn_probability"]
    assert angry["rank"] < loyal["rank"]
    reasons = [str(r) for r in angry[["reason_1", "reason_2", "reason_3"]] if isinstance(r, str)]
    # Which of the planted troubles the model weighs most varies with the model; the
    # reasons must be about them (complaints, their contacts, surveys, waits), not noise.
    trouble = ("complain", "contacted", "satisfaction", "NPS", "effort", "waited", "escalat")
    about_it = [r for r in reasons if any(word in r for word in trouble)]
    assert len(about_it) >= 2, reasons


def test_scoring_real_tables_in_chunks_equals_one_pass(demo):
    from churnguard.labels import data_end
    from churnguard.training import load_task_model
    from churnguard.validation import load_data

    out, _ = demo
    tables = load_data(out / "data").tables
    as_of = data_end(tables)
    tracking = f"sqlite:///{out / 'mlflow.db'}"
    models = {task: load_task_model(task, tracking_uri=tracking) for task in ("churn", "maintenance")}
    one = score(tables, as_of, models, capacity=200)
    chunked = score(tables, as_of, models, capacity=200, chunk_size=600)
    pd.testing.assert_frame_equal(one.outreach, chunked.outreach)
    pd.testing.assert_frame_equal(one.suppressed, chunked.suppressed)
