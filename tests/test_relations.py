"""Claims about the tables kept in DuckDB over their files (`churnguard.relations`).

Every data-contract claim of ``test_validation.py`` is made again here through
`load_relations`, with its tables read back into pandas: the SQL checks give the
same messages, counts, examples and typed values as the pandas path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_validation as claims
from churnguard.features import build_features
from churnguard.relations import SqlTable, load_relations
from churnguard.synthetic import generate_world_files
from churnguard.validation import ValidationError, load_data


def _load_as_frames(*args, **kwargs):
    result = load_relations(*args, **kwargs)
    result.tables = {n: t.to_pandas() if isinstance(t, SqlTable) else t for n, t in result.tables.items()}
    return result


@pytest.fixture(autouse=True)
def _sql_path(monkeypatch):
    monkeypatch.setattr(claims, "load_data", _load_as_frames)


# The contract's claims, collected again under this module with the SQL path patched in.
globals().update({name: value for name, value in vars(claims).items()
                  if name.startswith("test_") or name in ("data_dir",)})

NOW = pd.Timestamp("2026-11-02")


@pytest.fixture(scope="module", params=["csv", "parquet"])
def world(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"world_{request.param}")
    generate_world_files(out, 250, seed=5, fmt=request.param, campaigns=True)
    return out


def test_event_tables_stay_in_duckdb_and_customers_in_pandas(world):
    tables = load_relations(world, now=NOW).tables
    assert isinstance(tables["customers"], pd.DataFrame)
    assert all(isinstance(t, SqlTable) for n, t in tables.items() if n != "customers")


def test_the_generated_outreach_log_is_checked_in_duckdb_and_kept_there(world):
    tables = load_relations(world, now=NOW).tables
    assert isinstance(tables["outreach_log"], SqlTable)
    log = tables["outreach_log"].to_pandas()
    assert set(log["group"]) == {"treatment", "control"} and len(log) > 0


@pytest.mark.parametrize("loader", [load_data, load_relations])
def test_an_outreach_log_changes_no_feature(world, loader):
    tables = loader(world, now=NOW).tables
    without = {name: table for name, table in tables.items() if name != "outreach_log"}
    assert len(without) == len(tables) - 1
    pd.testing.assert_frame_equal(build_features(tables, "2026-09-01"), build_features(without, "2026-09-01"),
                                  check_exact=True)


def test_relations_warn_and_keep_rows_exactly_as_the_pandas_path(world):
    frames, relations = load_data(world, now=NOW), load_relations(world, now=NOW)
    assert [str(w) for w in relations.warnings] == [str(w) for w in frames.warnings]
    assert list(relations.tables) == list(frames.tables)
    for name, frame in frames.tables.items():
        if name == "customers":
            continue
        other = relations.tables[name].to_pandas()
        assert list(other.columns) == list(frame.columns)
        key = list(frame.columns)
        pd.testing.assert_frame_equal(other.sort_values(key).reset_index(drop=True),
                                      frame.sort_values(key).reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("as_of", ["2026-03-01", "2026-10-20"])
def test_features_over_the_files_equal_the_pandas_path(world, as_of):
    expected = build_features(load_data(world, now=NOW).tables, as_of)
    got = build_features(load_relations(world, now=NOW).tables, as_of)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def test_features_over_the_files_are_identical_across_runs(world):
    first = build_features(load_relations(world, now=NOW).tables, "2026-09-01")
    second = build_features(load_relations(world, now=NOW).tables, "2026-09-01")
    pd.testing.assert_frame_equal(first, second, check_exact=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shift_days=st.integers(min_value=0, max_value=400), amount=st.floats(min_value=-1e6, max_value=1e6))
def test_events_at_or_after_as_of_in_the_files_change_no_feature(tmp_path, shift_days, amount):
    """The point-in-time rule over the files: rows stamped at or after as_of are invisible."""
    as_of = pd.Timestamp("2024-03-01")
    # One new directory per example: tmp_path is shared by them all, and a name made from
    # the example repeats (0.0 and -0.0 hash alike).
    base = Path(tempfile.mkdtemp(prefix="base_", dir=tmp_path))
    (base / "customers.csv").write_text("customer_id,signup_date\na,2023-01-01\nb,2023-06-01\n")
    before = "customer_id,timestamp,amount\na,2024-01-05,10\nb,2024-02-28T23:59:59,4\n"
    (base / "purchases.csv").write_text(before)
    (base / "usage.csv").write_text("customer_id,timestamp,event\na,2024-02-01,login\n")
    expected = build_features(load_relations(base, now=as_of + pd.Timedelta(days=500)).tables, as_of)
    late = as_of + pd.Timedelta(days=shift_days)
    (base / "purchases.csv").write_text(before + f"a,{late.isoformat()},{amount!r}\nb,{as_of.isoformat()},1\n")
    (base / "usage.csv").write_text(f"customer_id,timestamp,event\na,2024-02-01,login\nb,{late.isoformat()},login\n")
    got = build_features(load_relations(base, now=as_of + pd.Timedelta(days=500)).tables, as_of)
    pd.testing.assert_frame_equal(got, expected)
    assert not np.isnan(got["purchases_amount_total"]).all()


@pytest.fixture(scope="module")
def scoring_world(tmp_path_factory):
    """A generated world, its relations and frames, and a churn and a maintenance model fitted on it."""
    from churnguard.features import resolve_feature_set
    from churnguard.training.artifact import ModelArtifact
    from churnguard.training.model import ChurnModel

    out = tmp_path_factory.mktemp("scoring_world")
    generate_world_files(out, 400, seed=11, fmt="parquet")
    frames, relations = load_data(out, now=NOW), load_relations(out, now=NOW)
    as_of = pd.Timestamp("2026-10-01")
    feature_set = resolve_feature_set(frames.tables, as_of)
    features = build_features(frames.tables, as_of, feature_set=feature_set)
    inputs = features.drop(columns=["customer_id"]).select_dtypes("number")
    inputs = inputs.loc[:, [c for c in inputs.columns if not c.startswith("usage_worst")]]
    rng = np.random.default_rng(3)
    models = {}
    for task in ("churn", "maintenance"):
        y = (rng.random(len(inputs)) < 0.3).astype(int)
        model = ChurnModel(params={"n_estimators": 15, "min_child_samples": 5}, calibration="none").fit(inputs, y)
        models[task] = ModelArtifact(estimator=model, task=task, feature_set=feature_set)
    return {"frames": frames.tables, "relations": relations.tables, "models": models, "as_of": as_of}


@pytest.mark.parametrize("chunk_size", [1_000_000, 97])
def test_scoring_over_the_files_writes_the_same_list_bytes_as_over_frames(scoring_world, chunk_size, tmp_path):
    from churnguard.scoring import score, write_outreach

    w = scoring_world
    expected = score(w["frames"], w["as_of"], w["models"], capacity=40)
    got = score(w["relations"], w["as_of"], w["models"], capacity=40, chunk_size=chunk_size)
    a, a_suppressed = write_outreach(expected, tmp_path / "frames.csv")
    b, b_suppressed = write_outreach(got, tmp_path / "relations.csv")
    assert len(expected.outreach) == 40
    assert a.read_bytes() == b.read_bytes()
    assert a_suppressed.read_bytes() == b_suppressed.read_bytes()


def test_a_bad_duckdb_memory_limit_is_bad_input_naming_the_variable(world, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "features.parquet"
    env = {**os.environ, "CHURNGUARD_DUCKDB_MEMORY_LIMIT": "lots"}
    proc = subprocess.run([sys.executable, "-m", "churnguard.cli", "features", "--data", str(world),
                           "--as-of", "2026-10-01", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "CHURNGUARD_DUCKDB_MEMORY_LIMIT='lots'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_the_duckdb_limits_come_from_the_environment(monkeypatch, tmp_path):
    from churnguard import duck

    monkeypatch.setenv("CHURNGUARD_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("CHURNGUARD_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("CHURNGUARD_THREADS", "3")
    limits = duck.settings()
    assert (limits.memory_limit, limits.temp_directory, limits.threads) == ("1GB", str(tmp_path / "spill"), 3)
    import duckdb

    con = duck.configure(duckdb.connect(), limits)
    memory, temp = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert memory == "953.6 MiB" and temp == str(tmp_path / "spill")  # 1 GB as DuckDB prints it


def test_a_shop_scored_over_the_files_suppresses_the_same_lapsed_customers_as_over_frames(tmp_path):
    """Inactivity churn: the kernel's population and lapse days come from the last purchase in the files."""
    from churnguard.features import resolve_feature_set
    from churnguard.scoring import score, write_outreach
    from churnguard.training.artifact import ModelArtifact
    from churnguard.training.model import ChurnModel

    world = tmp_path / "world"
    generate_world_files(world, 400, seed=12, fmt="parquet")
    shop = tmp_path / "shop"
    shop.mkdir()
    pd.read_parquet(world / "customers.parquet").drop(columns=["churn_date"]).to_parquet(
        shop / "customers.parquet", index=False)
    pd.read_parquet(world / "purchases.parquet").to_parquet(shop / "purchases.parquet", index=False)
    frames, relations = load_data(shop, now=NOW).tables, load_relations(shop, now=NOW).tables
    as_of = pd.Timestamp("2026-10-01")
    feature_set = resolve_feature_set(frames, as_of)
    inputs = build_features(frames, as_of, feature_set=feature_set).drop(columns=["customer_id"]).select_dtypes("number")
    y = (np.random.default_rng(4).random(len(inputs)) < 0.3).astype(int)
    estimator = ChurnModel(params={"n_estimators": 15, "min_child_samples": 5}, calibration="none").fit(inputs, y)
    model = ModelArtifact(estimator=estimator, task="churn", feature_set=feature_set, label="inactivity",
                          lookback_days=120)
    expected = score(frames, as_of, {"churn": model}, capacity=40)
    got = score(relations, as_of, {"churn": model}, capacity=40, chunk_size=97)
    a, a_suppressed = write_outreach(expected, tmp_path / "frames.csv")
    b, b_suppressed = write_outreach(got, tmp_path / "relations.csv")
    assert expected.suppressed["reason"].str.contains("lapsed").any()
    assert a.read_bytes() == b.read_bytes()
    assert a_suppressed.read_bytes() == b_suppressed.read_bytes()


# --------------------------------------------------------------------------- the fast text tests

_TEXT = st.text(alphabet=st.sampled_from(list(" \t\n\r\x0b\x0cab1NnAaUuLlé\xa0")), max_size=7)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_TEXT, min_size=1, max_size=20))
def test_the_sql_text_tests_mean_what_the_python_ones_do(values):
    import duckdb

    from churnguard.values import MISSING_WORDS, WHITESPACE, sql_blank, sql_missing, sql_trimmed

    con = duckdb.connect()
    con.register("v", pd.DataFrame({"s": pd.Series(values, dtype="str")}))
    rows = con.execute(f"SELECT s, {sql_blank('s')}, {sql_trimmed('s')}, {sql_missing('s')} FROM v").fetchall()
    for s, blank, trimmed, missing in rows:
        assert blank == (s.strip(WHITESPACE) == "")
        assert trimmed == s.strip(WHITESPACE)
        assert missing == (s.strip(WHITESPACE).lower() in MISSING_WORDS)


def test_a_blank_id_in_a_later_parquet_row_group_fails_as_in_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The statistics shortcut reads each row group's minimum: the blank hides in the second.
    (tmp_path / "customers.csv").write_text("customer_id\nc1\nc2\n")
    table = pa.table({"customer_id": ["c1", "c2", " \t"], "timestamp": ["2024-01-02"] * 3, "amount": [1.0, 2.0, 3.0]})
    pq.write_table(table, tmp_path / "purchases.parquet", row_group_size=2)
    with pytest.raises(ValidationError) as sql_error:
        load_relations(tmp_path, now=NOW)
    with pytest.raises(ValidationError) as pandas_error:
        load_data(tmp_path, now=NOW)
    assert str(sql_error.value) == str(pandas_error.value)
    assert "purchases.customer_id" in str(sql_error.value) and "1 rows" in str(sql_error.value)


@pytest.mark.parametrize("chunk_size", [1, 37, 10_000])
def test_features_in_chunks_equal_one_build_over_the_files(world, chunk_size):
    from churnguard.features.chunks import feature_chunks

    tables = load_relations(world, now=NOW).tables
    as_of = pd.Timestamp("2026-06-01")
    whole = build_features(tables, as_of)
    parts = list(feature_chunks(tables, as_of, chunk_size=chunk_size))
    assert len(parts) == -(-len(whole) // chunk_size)
    joined = pd.concat(parts, ignore_index=True)
    for column in whole.columns:  # categories per chunk differ in their category lists, not values
        if isinstance(whole[column].dtype, pd.CategoricalDtype):
            joined[column] = joined[column].astype(object)
            whole[column] = whole[column].astype(object)
    # Behind a filter DuckDB may add a customer's amounts in another order: the last bit only.
    pd.testing.assert_frame_equal(joined, whole, check_exact=False, rtol=1e-12, atol=0)


def test_the_features_command_in_chunks_writes_one_file_the_same_on_every_run(world, tmp_path, monkeypatch):
    import churnguard.features.chunks as chunks
    from churnguard.cli import main

    outs = {}
    for size, suffix, run in [(10_000, "csv", 1), (40, "csv", 1), (40, "csv", 2), (10_000, "parquet", 1),
                              (40, "parquet", 1), (40, "parquet", 2)]:
        monkeypatch.setattr(chunks, "CHUNK_CUSTOMERS", size)
        out = tmp_path / f"f{size}-{run}.{suffix}"
        assert main(["features", "--data", str(world), "--as-of", "2026-06-01", "--out", str(out), "--quiet"]) == 0
        outs[size, suffix, run] = out
    for suffix in ("csv", "parquet"):
        assert outs[40, suffix, 1].read_bytes() == outs[40, suffix, 2].read_bytes()
        read = pd.read_csv if suffix == "csv" else pd.read_parquet
        pd.testing.assert_frame_equal(read(outs[40, suffix, 1]), read(outs[10_000, suffix, 1]),
                                      check_exact=False, rtol=1e-12, atol=0)
    assert not list(tmp_path.glob(".*.tmp"))
