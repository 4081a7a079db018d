"""churnguard on Spark gives the single-machine results: real PySpark in local mode.

One small Spark session for the whole module (2 cores are shared), a few Spark
jobs in all: each test builds once and checks several claims on the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")
from churnguard.spark import java_available  # noqa: E402

if not java_available():
    pytest.skip("Spark needs a Java runtime (17); none found", allow_module_level=True)

from churnguard.features import build_features  # noqa: E402
from churnguard.validation import ValidationError, validate_tables  # noqa: E402

pytestmark = pytest.mark.spark

AS_OF = pd.Timestamp("2026-06-01")
NOW = pd.Timestamp("2026-11-01")  # fixed, so validation's "from the future" rule is the same in both paths


@pytest.fixture(scope="module")
def spark():
    from churnguard.spark import spark_session

    session = spark_session(
        "local[2]",
        app_name="churnguard-tests",
        shuffle_partitions=4,
        config={"spark.ui.enabled": "false", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain text (Spark has no category type), rows by customer_id."""
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.sort_values("customer_id", kind="mergesort").reset_index(drop=True)


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got, expected = _comparable(got), _comparable(expected)
    assert list(got.columns) == list(expected.columns)
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in expected.columns[1:]:
        if pd.api.types.is_numeric_dtype(expected[column]):
            np.testing.assert_allclose(
                got[column].to_numpy(dtype="float64"), expected[column].to_numpy(dtype="float64"),
                rtol=0, atol=1e-9, err_msg=column,
            )
        else:
            assert got[column].tolist() == expected[column].tolist(), column


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    from churnguard.synthetic import generate_world, write_world

    world = generate_world(1500, seed=3)
    # Two ids that differ only by leading zeros, one with a purchase and one with no events.
    extra = world["customers"].iloc[:2].copy()
    extra["customer_id"] = pd.array(["007", "7"], dtype="str")
    # Microsecond timestamps: Spark cannot read Parquet's nanosecond timestamps.
    extra["signup_date"] = pd.Series(pd.Timestamp("2025-01-01"), index=extra.index).astype("datetime64[us]")
    extra["churn_date"] = pd.Series(pd.NaT, index=extra.index).astype("datetime64[us]")
    world["customers"] = pd.concat([world["customers"], extra], ignore_index=True)
    purchase = world["purchases"].iloc[:1].copy()
    purchase["customer_id"] = pd.array(["007"], dtype="str")
    purchase["timestamp"] = pd.Series(pd.Timestamp("2026-05-20"), index=purchase.index).astype("datetime64[us]")
    world["purchases"] = pd.concat([world["purchases"], purchase], ignore_index=True)
    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out


def test_spark_features_equal_single_machine_on_a_generated_world(spark, world_dir):
    from churnguard.spark import shard_features
    from churnguard.validation import load_data

    local = load_data(world_dir, now=NOW)
    expected = build_features(local.tables, AS_OF)
    result = shard_features(spark, str(world_dir), AS_OF, n_shards=3, now=NOW)
    got = result.frame.toPandas()

    assert_same_features(got, expected)
    # Leading zeros are kept: "007" and "7" are two customers, and only "007" bought.
    by_id = _comparable(got).set_index("customer_id")
    assert by_id.loc["007", "purchases_count_30d"] == 1.0
    assert by_id.loc["7", "purchases_count_30d"] == 0.0
    assert np.isnan(by_id.loc["7", "purchases_days_since_last"])
    # One resolution for all shards, equal to the single-machine one.
    from churnguard.features import resolve_feature_set

    assert result.feature_set.interactions == resolve_feature_set(local.tables, AS_OF).interactions
    assert result.feature_set.usage == resolve_feature_set(local.tables, AS_OF).usage
    assert sorted(map(str, result.warnings)) == sorted(map(str, local.warnings))


def _tiny_tables() -> dict[str, pd.DataFrame]:
    """Three customers (one without any event) and events of a customer nobody knows."""
    return {
        "customers": pd.DataFrame({
            "customer_id": ["007", "7", "b"],
            "signup_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "plan": ["pro", "basic", "pro"],
            "seats": ["3", "1", "12"],
        }),
        "interactions": pd.DataFrame({
            "customer_id": ["007", "007", "b", "ghost", "ghost"],
            "timestamp": ["2026-05-20", "2026-05-28T10:00:00+02:00", "2026-04-01", "2026-05-01", "2026-05-02"],
            "channel": ["phone", "chat", "phone", "email", "email"],
            "topic": ["billing", "billing", "outage", "billing", "outage"],
            "is_complaint": ["true", "yes", "false", "1", "0"],
            "resolved": ["false", "no", "true", "1", "1"],
            "csat": ["2", "9", "4", "5", "5"],
        }),
        "purchases": pd.DataFrame({
            "customer_id": ["b", "b"],
            "timestamp": ["2026-01-15", "2026-05-15"],
            "amount": ["20.5", "13"],
        }),
    }


def test_spark_matches_single_machine_with_empty_shards_and_ids_with_leading_zeros(spark):
    from churnguard.spark import shard_features

    raw = _tiny_tables()
    local = validate_tables(raw, now=NOW)
    expected = build_features(local.tables, AS_OF)
    frames = {name: spark.createDataFrame(frame.astype(object).where(frame.notna(), None))
              for name, frame in raw.items()}
    # 16 shards for 3 customers: most shards hold no customer; "ghost"'s events may sit alone.
    result = shard_features(spark, frames, AS_OF, n_shards=16, now=NOW)

    assert_same_features(result.frame.toPandas(), expected)
    # Dropped and repaired rows are counted once over all shards, worded the same way.
    assert sorted(map(str, result.warnings)) == sorted(map(str, local.warnings))
    assert any(w.check == "known_customer (dropped)" and w.n_rows == 2 for w in result.warnings)


def test_spark_validation_error_names_table_column_and_row_counts_like_single_machine(spark):
    from churnguard.spark import build_features_spark

    raw = _tiny_tables()
    raw["customers"] = pd.concat([raw["customers"], raw["customers"].iloc[[2]]], ignore_index=True)
    raw["purchases"].loc[0, "timestamp"] = "2026-13-45"
    raw["purchases"].loc[1, "amount"] = "lots"
    with pytest.raises(ValidationError) as single:
        validate_tables(raw, now=NOW)
    frames = {name: spark.createDataFrame(frame.astype(object).where(frame.notna(), None))
              for name, frame in raw.items()}
    with pytest.raises(ValidationError) as sharded:
        build_features_spark(spark, frames, AS_OF, n_shards=5, now=NOW)

    assert str(sharded.value) == str(single.value)
    assert [(p.table, p.column, p.check, p.n_rows) for p in sharded.value.problems] == [
        (p.table, p.column, p.check, p.n_rows) for p in single.value.problems
    ]


def test_shard_of_an_id_is_fixed_across_runs_and_machines(spark):
    from pyspark.sql import functions as F

    from churnguard.spark import shard_of

    ids = spark.createDataFrame([("007",), ("7",), ("0000001",)], "customer_id string")
    shards = [r[0] for r in ids.select(shard_of(F.col("customer_id"), 16)).collect()]
    # xxhash64 with Spark's fixed seed 42: these numbers never change (Python's salted
    # hash() would, between processes), so a customer's shard is the same on every node.
    assert shards == [0, 1, 5]


def test_spark_sql_sha2_gives_the_same_control_draw_as_the_kernel(spark):
    from churnguard.outreach import control_draw

    ids = ["007", "7", "c00042", "ü-1"]
    actions = ["retention_call", "win_back", "maintenance_visit", "retention_call+maintenance_visit"]
    frame = spark.createDataFrame(list(zip(ids, actions)), "customer_id string, action string")
    sql = frame.selectExpr(
        "customer_id",
        "conv(substr(sha2(concat_ws('|', 'churnguard', '2026Q4', action, customer_id), 256), 1, 13), 16, 10)"
        " / pow(16, 13) AS u").toPandas()
    expected = control_draw(ids, actions, salt="churnguard", campaign="2026Q4")
    assert sql.set_index("customer_id").loc[ids, "u"].tolist() == expected.tolist()


# --------------------------------------------------------------------------- scoring


@pytest.fixture(scope="module")
def local_world(world_dir):
    from churnguard.validation import load_data

    return load_data(world_dir, now=NOW)


@pytest.fixture(scope="module")
def models(local_world, tmp_path_factory):
    """Both tasks fitted directly on a stacked training set, stored as training stores them."""
    from churnguard.features import feature_catalogue, resolve_feature_set
    from churnguard.labels import label_cutoffs, training_set
    from churnguard.training import ChurnModel, ModelArtifact
    from churnguard.training.fit import model_features

    tables = local_world.tables
    cutoffs = label_cutoffs(tables, n_cutoffs=3, horizon_days=90, as_of=AS_OF)
    newest = max(cutoffs)
    fs = resolve_feature_set(tables, newest)
    catalogue = feature_catalogue(tables, newest, feature_set=fs)
    out = {}
    for task in ("churn", "maintenance"):
        frame = training_set(tables, cutoffs, task=task, horizon_days=90, lookback_days=365, feature_set=fs)
        features = model_features(frame, catalogue)
        cal = frame["cutoff"] == newest
        # Isotonic calibration gives plateaus: many equal probabilities, so ties in priority.
        model = ChurnModel(params={"n_estimators": 25, "num_leaves": 8, "min_child_samples": 10},
                           calibration="isotonic").fit(frame[features], frame["label"],
                                                       X_cal=frame.loc[cal, features], y_cal=frame.loc[cal, "label"])
        out[task] = ModelArtifact(model, task=task, feature_set=fs, catalogue=catalogue)
    return out


def assert_same_outreach(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    from churnguard.scoring import OUTREACH_COLUMNS

    assert list(got.columns) == OUTREACH_COLUMNS
    assert len(got) == len(expected)
    for column in ("rank", "customer_id", "action", "channel", "reason_1", "reason_2", "reason_3"):
        assert got[column].astype(object).where(got[column].notna(), None).tolist() == \
            expected[column].astype(object).where(expected[column].notna(), None).tolist(), column
    for column in ("priority", "churn_probability", "maintenance_probability", "value_at_risk"):
        np.testing.assert_allclose(got[column].to_numpy(dtype="float64"), expected[column].to_numpy(dtype="float64"),
                                   rtol=0, atol=1e-9, err_msg=column)
    assert got["explanation"].tolist() == expected["explanation"].tolist()


def assert_same_controls(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    from churnguard.outreach import CONTROL_COLUMNS, OUTREACH_COLUMNS

    assert list(got.columns) == CONTROL_COLUMNS
    assert set(got["group"]) <= {"control"}
    assert_same_outreach(got[OUTREACH_COLUMNS], expected[OUTREACH_COLUMNS])


def assert_same_suppressed(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    from churnguard.scoring import SUPPRESSED_COLUMNS

    assert list(got.columns) == SUPPRESSED_COLUMNS
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    assert got["reason"].tolist() == expected["reason"].tolist()
    for column in ("churn_probability", "maintenance_probability"):
        np.testing.assert_allclose(got[column].to_numpy(dtype="float64"), expected[column].to_numpy(dtype="float64"),
                                   rtol=0, atol=1e-9, err_msg=column)


def test_spark_outreach_list_equals_single_machine_with_and_without_capacity(spark, world_dir, local_world, models):
    from dataclasses import replace

    from churnguard.config import load_outreach_rules
    from churnguard.scoring import score
    from churnguard.spark.scoring import score_spark_result

    rules = load_outreach_rules()
    expected = score(local_world.tables, AS_OF, models, rules=rules)
    result = score_spark_result(spark, str(world_dir), AS_OF, models, rules=rules, n_shards=3, now=NOW)
    got = result.outreach.toPandas()
    # The policy lists only the customers a contact pays for: fewer than every scored one.
    assert len(expected.outreach) > 50 and expected.outreach["maintenance_probability"].notna().any()
    assert len(expected.suppressed) > 0 and expected.suppressed["priority"].is_monotonic_decreasing
    assert_same_outreach(got, expected.outreach)
    assert_same_suppressed(result.suppressed.toPandas(), expected.suppressed)
    # The same control group, drawn from the same hash, reached by the same list.
    assert len(expected.controls) > 5
    assert_same_controls(result.controls.toPandas(), expected.controls)
    def groups(frame):
        frame = frame.sort_values("customer_id", kind="mergesort")
        return list(zip(frame["customer_id"], frame["group"].astype(object).where(frame["group"].notna(), None)))

    assert groups(result.scored.select("customer_id", "group").toPandas()) == groups(expected.scored)
    np.testing.assert_allclose(result.profit.cumulative, expected.profit.cumulative, rtol=0, atol=1e-9)
    # The reasons compare with the same typical values: population medians, exactly.
    from churnguard.outreach import typical_values

    typical = typical_values(expected.features)
    pd.testing.assert_series_equal(result.typical.sort_index(), typical.astype("float64").sort_index(),
                                   check_names=False, rtol=0, atol=0)

    # Per-action caps, then --capacity, ranked over all shards (the same scores, ranked again).
    capped = replace(rules, capacity_per_action={"maintenance_visit": 7, "retention_call": 40})
    expected = score(local_world.tables, AS_OF, models, rules=capped, capacity=30)
    lists = result.lists(rules=capped, capacity=30)
    outreach, suppressed = lists.outreach, lists.suppressed
    assert len(expected.outreach) == 30
    assert_same_outreach(outreach.toPandas(), expected.outreach)
    assert_same_suppressed(suppressed.toPandas(), expected.suppressed)
    # Capacity cut the list: only the controls above its last listed customer per action.
    assert 0 < len(expected.controls) < len(expected.scored["group"].eq("control").to_numpy().nonzero()[0])
    assert_same_controls(lists.controls.toPandas(), expected.controls)

    # Written all or nothing: Parquet through Spark, a local CSV by the single-machine writer.
    from churnguard.scoring import write_outreach
    from churnguard.spark import write_outreach_spark

    out = world_dir.parent / "lists"
    write_outreach_spark(outreach, suppressed, str(out / "outreach.parquet"), controls=lists.controls)
    assert_same_outreach(pd.read_parquet(out / "outreach.parquet"), expected.outreach)
    assert_same_suppressed(pd.read_parquet(out / "outreach.suppressed.parquet"), expected.suppressed)
    assert_same_controls(pd.read_parquet(out / "outreach.control.parquet"), expected.controls)
    write_outreach_spark(outreach, suppressed, str(out / "outreach.csv"), controls=lists.controls)
    write_outreach(expected, out / "single.csv")
    assert (out / "outreach.csv").read_bytes() == (out / "single.csv").read_bytes()
    assert (out / "outreach.suppressed.csv").read_bytes() == (out / "single.suppressed.csv").read_bytes()
    assert (out / "outreach.control.csv").read_bytes() == (out / "single.control.csv").read_bytes()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left behind
    result.scored.unpersist()


def test_a_time_zone_aware_as_of_gives_the_same_list_through_the_api_and_spark(spark, world_dir, local_world, models):
    from churnguard.scoring import score
    from churnguard.spark.scoring import score_spark_result

    aware = "2026-06-01T02:00:00+02:00"  # the instant AS_OF, midnight UTC
    expected = score(local_world.tables, aware, models)
    assert expected.as_of == AS_OF
    result = score_spark_result(spark, str(world_dir), aware, models, n_shards=2, now=NOW)
    try:
        assert_same_outreach(result.outreach.toPandas(), expected.outreach)
        assert_same_suppressed(result.suppressed.toPandas(), expected.suppressed)
    finally:
        result.scored.unpersist()


def test_the_spark_run_writes_the_same_report_list_as_one_machine(spark, world_dir, local_world, models, tmp_path):
    import json
    import re

    from churnguard.report import write_report
    from churnguard.scoring import score
    from churnguard.spark import report_result
    from churnguard.spark.scoring import score_spark_result

    expected = score(local_world.tables, AS_OF, models)
    result = score_spark_result(spark, str(world_dir), AS_OF, models, n_shards=2, now=NOW)
    try:
        collected = report_result(result)
    finally:
        result.scored.unpersist()

    def listed(path):
        html = path.read_text()
        payload = json.loads(re.search(r'<script id="list-data" type="application/json">(.*?)</script>', html,
                                       re.S).group(1).replace("<\\/", "</"))
        return [(row[1], row[2], row[10], row[12]) for row in payload["rows"]]

    one = listed(write_report(expected, tmp_path / "one.html", models=models))
    other = listed(write_report(collected, tmp_path / "spark.html", models=models))
    assert len(one) > 0 and one == other
