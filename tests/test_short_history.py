"""Short exports, as new users bring them: they train, register and score, or say what is missing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churnguard.cli import main
from churnguard.config import load_model_spec
from churnguard.io import read_raw_table, write_table
from churnguard.scoring import score
from churnguard.synthetic import generate_world
from churnguard.training import train_task
from churnguard.validation import validate_tables

pytestmark = pytest.mark.slow

END = pd.Timestamp("2026-11-01")


def _write(world: dict[str, pd.DataFrame], out, *, since: pd.Timestamp, tables=None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, table in world.items():
        if name == "truth" or (tables is not None and name not in tables):
            continue
        if "timestamp" in table:
            table = table[table["timestamp"] >= since]
        write_table(table, out / f"{name}.parquet")


@pytest.fixture(scope="module")
def world():
    return generate_world(2_500, seed=7)


def test_eight_months_of_history_train_both_tasks_and_score_a_list(world, tmp_path, capsys):
    data = tmp_path / "eight_months"
    _write(world, data, since=END - pd.DateOffset(months=8))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for task in ("churn", "maintenance"):
        assert main(["train", "--data", str(data), "--task", task, "--tracking-uri", uri]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err
        # The plan says where the data begins and what each cutoff holds.
        assert "data from 2026-03-01" in err and "positive (" in err
    out = tmp_path / "lists" / "outreach.csv"
    assert main(["score", "--data", str(data), "--as-of", "2026-11-01", "--out", str(out),
                 "--tracking-uri", uri, "--quiet"]) == 0
    listed = read_raw_table(out)
    assert len(listed) > 0 and listed["churn_probability"].notna().all()
    assert listed["maintenance_probability"].notna().any()


def test_a_subscription_with_ten_weeks_of_usage_trains_contractual_churn_over_30_days(world, tmp_path, capsys):
    since = END - pd.Timedelta(days=75)
    customers = world["customers"]
    customers = customers[customers["churn_date"].isna() | (customers["churn_date"] >= since)]
    data = tmp_path / "subscription"
    _write({"customers": customers, "usage": world["usage"][world["usage"]["customer_id"].isin(customers["customer_id"])]},
           data, since=since)
    code = main(["train", "--data", str(data), "--task", "churn", "--horizon", "30",
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # Weekly cutoffs for a 30-day horizon: enough of them for an out-of-time hold-out.
    assert "every 7 days" in captured.err
    assert "out-of-time hold-out" in captured.out


def test_too_short_a_history_exits_2_saying_how_much_is_missing(world, tmp_path, capsys):
    data = tmp_path / "forty_days"
    _write(world, data, since=END - pd.Timedelta(days=40), tables={"customers", "purchases"})
    code = main(["train", "--data", str(data), "--task", "churn",
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert "more days of history" in err and "--horizon" in err


def test_a_ten_thousand_customer_list_keeps_the_model_order_in_its_probabilities(tmp_path):
    world = generate_world(10_000, seed=2)
    tables = validate_tables({k: v for k, v in world.items() if k != "truth"}).tables
    spec = replace(load_model_spec(task="churn"), n_cutoffs=3)
    result = train_task(tables, spec, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", progress=False,
                        log=lambda line: None)
    scored = score(tables, "2026-11-01", {"churn": result.artifact}, explain="none").scored
    p = scored["churn_probability"].dropna().round(6)
    assert len(p) >= 5_000
    assert not ((p == 0) | (p == 1)).any()
    assert p.nunique() >= 500
    # Strictly increasing in the raw score: equal probabilities only for equal margins.
    listed = score(tables, "2026-11-01", {"churn": result.artifact}, capacity=200, explain="none").outreach
    assert listed["priority"].is_monotonic_decreasing
    assert np.isfinite(listed["churn_probability"]).all()
