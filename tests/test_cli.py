"""The command-line contract: commands, exit codes, error wording, atomic outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from churnguard.cli import EXIT_BAD_INPUT, EXIT_NOTHING_TO_DO, EXIT_OK, main


def run(*args: str) -> int:
    return main([str(a) for a in args])


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "data"
    assert run("generate", "--customers", 1500, "--seed", 1, "--out", out, "--quiet") == EXIT_OK
    return out


def test_help_lists_every_command_of_the_contract(capsys):
    assert run("--help") == EXIT_OK
    text = capsys.readouterr().out
    for command in ("generate", "validate", "features", "train", "score", "impact", "demo"):
        assert command in text


def test_every_command_accepts_quiet(capsys):
    for command in ("generate", "validate", "features", "train", "score", "impact", "demo"):
        run(command, "--help")
        assert "--quiet" in capsys.readouterr().out


def test_generated_world_validates_and_builds_features(world, tmp_path, capsys):
    assert run("validate", "--data", world) == EXIT_OK
    assert "customers" in capsys.readouterr().out
    out = tmp_path / "features.parquet"
    assert run("features", "--data", world, "--as-of", "2026-10-01", "--out", out, "--quiet") == EXIT_OK
    frame = pd.read_parquet(out)
    assert frame.columns[0] == "customer_id" and frame["customer_id"].is_unique
    assert any(c.startswith("usage_") for c in frame.columns)


def test_features_work_with_only_customers_and_purchases(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id,signup_date,segment\n001,2024-01-01,a\n002,2024-02-01,b\n")
    (data / "purchases.csv").write_text(
        "customer_id,timestamp,amount\n001,2024-03-01,10\n001,2024-05-01,20\n002,2024-06-01,5\n"
    )
    out = tmp_path / "f.csv"
    assert run("features", "--data", data, "--as-of", "2024-07-01", "--out", out, "--quiet") == EXIT_OK
    frame = pd.read_csv(out, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == ["001", "002"]
    assert not any(c.startswith(("interactions_", "service_", "usage_")) for c in frame.columns)


def test_feature_list_prints_the_catalogue_without_data(capsys):
    assert run("features", "--list") == EXIT_OK
    text = capsys.readouterr().out
    assert "purchases_days_since_last" in text and "days" in text


def test_bad_input_exits_2_naming_table_column_and_rows_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id\n1\n2\n")
    (data / "interactions.csv").write_text(
        "customer_id,timestamp,channel\n1,2024-13-01,phone\n2,yesterday,chat\n1,2024-01-02,chat\n"
    )
    before = digest(data)
    out = tmp_path / "out" / "features.csv"
    assert run("features", "--data", data, "--as-of", "2024-06-01", "--out", out) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "interactions.timestamp: 2 rows fail parseable_date" in err
    assert "2024-13-01" in err
    assert not out.exists() and not list(tmp_path.glob("out/*"))
    assert digest(data) == before  # input files are never modified


def test_missing_customers_table_is_a_bad_input(tmp_path, capsys):
    (tmp_path / "purchases.csv").write_text("customer_id,timestamp,amount\n1,2024-01-01,3\n")
    assert run("validate", "--data", tmp_path) == EXIT_BAD_INPUT
    assert "customers" in capsys.readouterr().err


def test_score_without_any_registered_model_says_so(world, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/empty.db"
    out = tmp_path / "list.csv"
    code = run("score", "--data", world, "--as-of", "2026-10-01", "--out", out, "--tracking-uri", uri, "--quiet")
    assert code == EXIT_NOTHING_TO_DO
    assert "no registered model" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_train_then_score_writes_the_list_and_its_suppressed_sibling(world, tmp_path, capsys):
    spec = tmp_path / "churn.toml"
    spec.write_text('task = "churn"\nn_cutoffs = 4\n[lightgbm]\nn_estimators = 60\nnum_leaves = 7\n')
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert run("train", "--data", world, "--task", "churn", "--spec", spec, "--tracking-uri", uri,
               "--quiet") == EXIT_OK
    summary = capsys.readouterr().out
    assert "ROC-AUC" in summary and "champion" in summary
    assert "expected maximum profit (EMP)" in summary
    out = tmp_path / "lists" / "outreach.csv"
    report = tmp_path / "lists" / "report.html"
    assert run("score", "--data", world, "--as-of", "2026-10-01", "--out", out, "--capacity", 25,
               "--report", report, "--tracking-uri", uri) == EXIT_OK
    said = capsys.readouterr().err  # churnguard's messages go to stderr, the data to files
    held = pd.read_csv(tmp_path / "lists" / "outreach.control.csv", dtype={"customer_id": str})
    assert f"{len(held):,} held out as control, DO NOT CONTACT -> {tmp_path / 'lists' / 'outreach.control.csv'}" in said
    assert "maximises expected profit" in said
    listed = pd.read_csv(out, dtype={"customer_id": str})
    assert not set(held["customer_id"]) & set(listed["customer_id"])
    # At most the capacity: the policy lists only customers a contact pays for.
    assert 0 < len(listed) <= 25 and listed["rank"].tolist() == list(range(1, len(listed) + 1))
    assert listed["maintenance_probability"].isna().all()  # no maintenance model registered
    assert (tmp_path / "lists" / "outreach.suppressed.csv").exists()
    assert f'"{listed["customer_id"].iloc[0]}"' in report.read_text()  # the report holds the list


def test_feature_list_with_data_names_the_exact_columns(world, capsys):
    assert run("features", "--list", "--data", world, "--quiet") == EXIT_OK
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "customers_tenure_days" in names and not any("{" in n for n in names)


@pytest.mark.slow
def test_a_subscription_business_with_only_customers_and_usage_trains_and_scores_churn(world, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("customers", "usage"):
        (data / f"{name}.parquet").write_bytes((world / f"{name}.parquet").read_bytes())
    spec = tmp_path / "churn.toml"
    spec.write_text('task = "churn"\nn_cutoffs = 3\n[lightgbm]\nn_estimators = 40\nnum_leaves = 7\n')
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert run("train", "--data", data, "--task", "churn", "--spec", spec, "--tracking-uri", uri, "--quiet") == EXIT_OK
    out = tmp_path / "outreach.csv"
    # A 40-tree model on a small world rates everyone near the base rate (about 7%), under the
    # default 15% a retention call needs: these rules list every customer worth a call.
    rules = tmp_path / "rules.toml"
    rules.write_text("[actions.retention_call]\nmin_probability = 0.0\n")
    assert run("score", "--data", data, "--as-of", "2026-11-01", "--out", out, "--tracking-uri", uri,
               "--rules", rules, "--quiet") == EXIT_OK
    assert capsys.readouterr().err == ""  # --quiet: no banners, no progress bars
    listed = pd.read_csv(out)
    assert len(listed) > 0 and listed["churn_probability"].notna().all()


def test_outputs_get_the_usual_file_permissions_not_0600(tmp_path):
    import os

    from churnguard.io import write_table

    out = write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_score_refuses_a_report_path_that_is_not_html_before_any_work(world, tmp_path, capsys):
    out = tmp_path / "outreach.csv"
    code = run("score", "--data", world, "--as-of", "2026-10-01", "--out", out, "--report", tmp_path / "r.pdf",
               "--quiet")
    assert code == 2
    err = capsys.readouterr().err
    assert "--report" in err and ".html" in err and "Traceback" not in err
    assert not out.exists()
