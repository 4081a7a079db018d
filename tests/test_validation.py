"""The data contract: every kind of bad input, built as small files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnguard.validation import (
    TABLES,
    Problem,
    ValidationError,
    load_data,
    summarize,
    validate_tables,
)

NOW = pd.Timestamp("2024-06-01")


def write_csv(data_dir: Path, name: str, text: str) -> Path:
    path = data_dir / f"{name}.csv"
    path.write_text(text.strip() + "\n")
    return path


def write_parquet(data_dir: Path, name: str, frame: pd.DataFrame) -> Path:
    path = data_dir / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A valid directory with three customers; tests add or overwrite tables."""
    write_csv(
        tmp_path,
        "customers",
        """
customer_id,signup_date,churn_date,value,do_not_contact,segment,tenure_band
001,2023-01-01,,100,no,smb,1
002,2023-02-01,2024-03-01,250.5,yes,enterprise,2
003,2023-03-01,,,,smb,3
""",
    )
    return tmp_path


def load(data_dir: Path, **kwargs):
    return load_data(data_dir, now=NOW, **kwargs)


def problems_of(data_dir: Path) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        load(data_dir)
    return info.value.problems


def find(problems: list[Problem], table: str, column: str, check: str | None = None) -> Problem:
    matches = [p for p in problems if (p.table, p.column) == (table, column) and check in (None, p.check)]
    assert len(matches) == 1, problems
    return matches[0]


# --------------------------------------------------------------------------- typing


def test_data_dir_with_only_customers_csv_loads_with_every_contract_column(data_dir):
    result = load(data_dir)

    assert list(result.tables) == ["customers"]
    customers = result.tables["customers"]
    assert customers["customer_id"].tolist() == ["001", "002", "003"]
    assert customers["customer_id"].dtype == "str"
    assert customers["signup_date"].dtype == "datetime64[us]"
    assert customers["value"].dtype == "float64"
    assert customers["do_not_contact"].dtype == "boolean"
    assert customers["do_not_contact"].tolist() == [False, True, pd.NA]
    assert customers["preferred_channel"].dtype == "str"
    assert customers["preferred_channel"].isna().all()
    assert result.warnings == []
    assert result.sources == {"customers": data_dir / "customers.csv"}


def test_customer_extra_columns_become_numbers_or_text(data_dir):
    customers = load(data_dir).tables["customers"]

    assert customers["tenure_band"].dtype == "float64"
    assert customers["segment"].dtype == "str"
    assert customers["segment"].tolist() == ["smb", "enterprise", "smb"]


def test_leading_zero_ids_are_kept_from_csv_and_parquet(data_dir, tmp_path):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount,order_id\n001,2024-01-01,10,0099")
    csv_result = load(data_dir)
    assert csv_result.tables["purchases"]["order_id"].tolist() == ["0099"]

    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    write_parquet(pq_dir, "customers", pd.DataFrame({"customer_id": ["007", "08"]}))
    assert load(pq_dir).tables["customers"]["customer_id"].tolist() == ["007", "08"]


def test_numeric_parquet_ids_become_strings_without_decimal_point(tmp_path):
    write_parquet(tmp_path, "customers", pd.DataFrame({"customer_id": [7, 12]}))
    # A float column is what an export with a missing id produces.
    write_parquet(tmp_path, "assets", pd.DataFrame({"asset_id": [1.0, 2.0], "customer_id": [7.0, 12.0]}))
    result = load(tmp_path)

    assert result.tables["customers"]["customer_id"].tolist() == ["7", "12"]
    assert result.tables["customers"]["customer_id"].dtype == "str"
    assert result.tables["assets"]["asset_id"].tolist() == ["1", "2"]
    assert result.tables["assets"]["customer_id"].tolist() == ["7", "12"]


def test_tz_aware_iso_strings_are_converted_to_naive_utc(data_dir):
    write_csv(
        data_dir,
        "interactions",
        """
customer_id,timestamp,channel
001,2024-01-01T10:00:00+02:00,phone
001,2024-01-01T10:00:00Z,chat
001,2024-01-01 10:00,chat
001,2024-01-02,email
""",
    )
    stamps = load(data_dir).tables["interactions"]["timestamp"]

    assert stamps.dtype == "datetime64[us]"
    assert stamps.tolist() == [
        pd.Timestamp("2024-01-01 08:00"),
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-02"),
    ]


def test_tz_aware_parquet_timestamps_are_converted_to_naive_utc(data_dir):
    stamps = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 23:30"]).tz_localize("America/New_York")
    write_parquet(data_dir, "purchases", pd.DataFrame({"customer_id": ["001", "002"], "timestamp": stamps,
                                                       "amount": [1.0, 2.0]}))
    result = load(data_dir).tables["purchases"]["timestamp"]

    assert result.dtype == "datetime64[us]"
    assert result.tolist() == [pd.Timestamp("2024-01-01 15:00"), pd.Timestamp("2024-01-02 04:30")]


def test_flags_accept_yes_no_words_in_any_case(data_dir):
    write_csv(
        data_dir,
        "interactions",
        """
customer_id,timestamp,channel,is_complaint,resolved
001,2024-01-01,phone,TRUE,0
001,2024-01-02,phone,Yes,n
001,2024-01-03,phone,f,Y
001,2024-01-04,phone,,1
""",
    )
    interactions = load(data_dir).tables["interactions"]

    assert interactions["is_complaint"].tolist() == [True, True, False, pd.NA]
    assert interactions["resolved"].tolist() == [False, False, True, True]
    assert interactions["abandoned"].dtype == "boolean"


def test_usage_value_defaults_to_one_where_absent_or_empty(data_dir):
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n001,2024-01-01,login\n002,2024-01-02,login")
    assert load(data_dir).tables["usage"]["value"].tolist() == [1.0, 1.0]

    (data_dir / "usage.csv").unlink()
    write_csv(data_dir, "usage", "customer_id,timestamp,event,value\n001,2024-01-01,cycles,7.5\n001,2024-01-02,login,")
    usage = load(data_dir).tables["usage"]
    assert usage["value"].tolist() == [7.5, 1.0]
    assert usage["asset_id"].isna().all()


def test_extra_columns_in_event_tables_are_kept_untouched(data_dir):
    write_parquet(data_dir, "purchases", pd.DataFrame({"customer_id": ["001"], "timestamp": ["2024-01-01"],
                                                       "amount": ["5"], "store_code": [42]}))
    purchases = load(data_dir).tables["purchases"]

    assert purchases["store_code"].tolist() == [42]
    assert purchases["store_code"].dtype == "int64"


def test_files_that_are_not_contract_tables_are_ignored(data_dir):
    write_parquet(data_dir, "truth", pd.DataFrame({"customer_id": ["001"], "oracle": [0.3]}))
    write_csv(data_dir, "notes", "anything,at,all")

    assert list(load(data_dir).tables) == ["customers"]


def test_input_files_are_unchanged_after_load(data_dir):
    write_csv(data_dir, "interactions",
              "customer_id,timestamp,channel,csat\n001,2024-01-01,phone,9\n999,2024-01-01,x,1")
    write_parquet(data_dir, "usage", pd.DataFrame({"customer_id": ["001"], "timestamp": ["2099-01-01"],
                                                   "event": ["login"]}))
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}

    result = load(data_dir)

    assert result.warnings  # the soft repairs really happened ...
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before  # ... in memory only


def test_validate_tables_does_not_modify_the_callers_frames():
    raw = {"customers": pd.DataFrame({"customer_id": ["a"], "signup_date": ["2024-01-01"]}),
           "interactions": pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["2024-01-01"] * 2,
                                         "channel": ["phone"] * 2, "csat": [9, 3]})}
    copies = {name: frame.copy() for name, frame in raw.items()}

    validate_tables(raw, now=NOW)

    for name, frame in raw.items():
        pd.testing.assert_frame_equal(frame, copies[name])


def test_validating_validated_tables_changes_nothing(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,channel,resolved\n001,2024-01-01T05:00+01:00,phone,y")
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n002,2024-01-01,login")
    first = load(data_dir)

    second = validate_tables(first.tables, now=NOW)

    assert second.warnings == []
    for name, frame in first.tables.items():
        pd.testing.assert_frame_equal(second.tables[name], frame)


# --------------------------------------------------------------------------- hard errors


def test_missing_customers_table_is_an_error(tmp_path):
    write_csv(tmp_path, "interactions", "customer_id,timestamp,channel\n1,2024-01-01,phone")

    problem = find(problems_of(tmp_path), "customers", "*")
    assert problem.check == "table_present"


def test_missing_required_column_names_table_and_column(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,chanel\n001,2024-01-01,phone\n002,2024-01-01,chat")

    problem = find(problems_of(data_dir), "interactions", "channel")
    assert (problem.check, problem.n_rows) == ("required_column", 2)
    assert "chanel" in problem.examples  # the columns that are there show the typo


def test_empty_customers_table_is_an_error(tmp_path):
    write_csv(tmp_path, "customers", "customer_id,signup_date")

    assert find(problems_of(tmp_path), "customers", "*").check == "not_empty"


def test_unparseable_timestamps_are_reported_with_count_and_examples(data_dir):
    write_csv(
        data_dir,
        "interactions",
        """
customer_id,timestamp,channel
001,2024-13-01,phone
001,yesterday,phone
002,yesterday,phone
002,2024-01-05,phone
003,,phone
""",
    )
    with pytest.raises(ValidationError) as info:
        load(data_dir)

    problem = find(info.value.problems, "interactions", "timestamp", "parseable_date")
    assert (problem.check, problem.n_rows, problem.severity) == ("parseable_date", 3, "error")
    assert problem.examples == ("2024-13-01", "yesterday")
    assert "interactions.timestamp: 3 rows fail parseable_date, e.g. ['2024-13-01', 'yesterday']" in str(info.value)
    # The empty cell is a null in a required column, reported on its own.
    assert [p.check for p in info.value.problems] == ["parseable_date", "not_null"]


def test_unparseable_optional_dates_are_errors_too(tmp_path):
    write_csv(tmp_path, "customers", "customer_id,signup_date\na,2024-02-30\nb,2024-02-01\nc,  ")

    problem = find(problems_of(tmp_path), "customers", "signup_date")
    assert (problem.check, problem.n_rows, problem.examples) == ("parseable_date", 1, ("2024-02-30",))


def test_non_numeric_values_are_rejected(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n001,2024-01-01,12.5\n001,2024-01-02,twelve")
    write_parquet(data_dir, "usage", pd.DataFrame({"customer_id": ["001"] * 3, "timestamp": ["2024-01-01"] * 3,
                                                   "event": ["cycles"] * 3, "value": ["3", "lots", "1,5"]}))
    problems = problems_of(data_dir)

    amount = find(problems, "purchases", "amount")
    assert (amount.check, amount.n_rows, amount.examples) == ("numeric", 1, ("twelve",))
    value = find(problems, "usage", "value")
    assert (value.check, value.n_rows, value.examples) == ("numeric", 2, ("lots", "1,5"))


def test_missing_value_words_in_typed_columns_mean_missing(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,channel,csat,resolved,topic\n"
                                        "001,2024-01-01,phone,NA,null,NA\n001,2024-01-02,phone, 4 ,N/A,billing")
    interactions = load(data_dir).tables["interactions"]

    assert interactions["csat"].isna().tolist() == [True, False]
    assert interactions["resolved"].isna().all()
    assert interactions["topic"].tolist() == ["NA", "billing"]  # text is text


def test_unparseable_booleans_are_rejected(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,channel,is_complaint\n"
                                        "001,2024-01-01,phone,maybe\n001,2024-01-02,phone,yes")

    problem = find(problems_of(data_dir), "interactions", "is_complaint")
    assert (problem.check, problem.n_rows, problem.examples) == ("boolean", 1, ("maybe",))


def test_nulls_in_required_columns_are_errors_with_row_numbers(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n001,2024-01-01,1\n,2024-01-01,2\n002,2024-01-01,")
    problems = problems_of(data_dir)

    missing_id = find(problems, "purchases", "customer_id")
    assert (missing_id.check, missing_id.n_rows, missing_id.examples) == ("not_null", 1, (1,))
    missing_amount = find(problems, "purchases", "amount")
    assert (missing_amount.check, missing_amount.n_rows, missing_amount.examples) == ("not_null", 1, (2,))


def test_duplicate_customer_ids_are_errors(tmp_path):
    write_csv(tmp_path, "customers", "customer_id\na\nb\na\nc\nc\nc")

    problem = find(problems_of(tmp_path), "customers", "customer_id")
    assert (problem.check, problem.n_rows, problem.examples) == ("unique", 5, ("a", "c"))


def test_duplicate_asset_ids_are_errors(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA1,002\nA2,003")

    problem = find(problems_of(data_dir), "assets", "asset_id")
    assert (problem.check, problem.n_rows, problem.examples) == ("unique", 2, ("A1",))


def test_labels_other_than_0_or_1_are_errors(data_dir):
    write_csv(data_dir, "labels", "customer_id,as_of,churn,maintenance\n001,2024-01-01,1,0\n002,2024-01-01,2,\n"
                                  "003,2024-01-01,0.5,1")

    problem = find(problems_of(data_dir), "labels", "churn")
    assert (problem.check, problem.n_rows, problem.examples) == ("in_0_1", 2, (2.0, 0.5))


def test_every_problem_of_every_table_is_reported_at_once(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,channel\n001,soon,phone")
    write_csv(data_dir, "purchases", "customer_id,timestamp\n001,2024-01-01")
    write_csv(data_dir, "assets", "asset_id,customer_id\nA,001\nA,001")
    with pytest.raises(ValidationError) as info:
        load(data_dir)

    assert {(p.table, p.column, p.check) for p in info.value.problems} == {
        ("interactions", "timestamp", "parseable_date"),
        ("purchases", "amount", "required_column"),
        ("assets", "asset_id", "unique"),
    }
    message = str(info.value)
    assert message.startswith("3 problem(s) in the input tables:")
    assert "purchases.amount: 1 rows fail required_column" in message


def test_a_table_as_both_csv_and_parquet_is_an_error(data_dir):
    write_parquet(data_dir, "customers", pd.DataFrame({"customer_id": ["001"]}))

    assert find(problems_of(data_dir), "customers", "*").check == "single_file"


def test_an_unreadable_file_is_an_error_not_a_crash(data_dir):
    (data_dir / "usage.parquet").write_bytes(b"not a parquet file")

    assert find(problems_of(data_dir), "usage", "*").check == "readable"


# --------------------------------------------------------------------------- soft problems


def warning(result, table: str, column: str) -> Problem:
    problem = find(result.warnings, table, column)
    assert problem.severity == "warning"
    return problem


def test_unknown_customer_rows_are_dropped_and_counted(data_dir):
    write_csv(data_dir, "interactions", "customer_id,timestamp,channel\n001,2024-01-01,phone\n999,2024-01-01,chat\n"
                                        "1,2024-01-01,chat")
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n002,2024-01-01,5\n998,2024-01-01,5")
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n003,2024-01-01,login\n997,2024-01-01,login")
    write_csv(data_dir, "labels", "customer_id,as_of,churn\n001,2024-01-01,1\n996,2024-01-01,0")
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA2,995")
    result = load(data_dir)

    dropped = warning(result, "interactions", "customer_id")
    assert (dropped.check, dropped.n_rows, dropped.examples) == ("known_customer (dropped)", 2, ("999", "1"))
    assert result.tables["interactions"]["customer_id"].tolist() == ["001"]
    for table, kept, unknown in [("purchases", "002", "998"), ("usage", "003", "997"),
                                 ("labels", "001", "996"), ("assets", "001", "995")]:
        assert warning(result, table, "customer_id").examples == (unknown,)
        assert result.tables[table]["customer_id"].tolist() == [kept]


def test_rows_with_unknown_assets_are_dropped_and_counted(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA2,002")
    write_csv(data_dir, "service_events", "asset_id,timestamp,kind\nA1,2024-01-01,repair\nZZ,2024-01-01,repair")
    write_csv(data_dir, "usage", "customer_id,timestamp,event,asset_id\n001,2024-01-01,cycles,A1\n"
                                 "001,2024-01-02,cycles,ZZ\n001,2024-01-03,login,")
    result = load(data_dir)

    service = warning(result, "service_events", "asset_id")
    assert (service.check, service.n_rows, service.examples) == ("known_asset (dropped)", 1, ("ZZ",))
    assert result.tables["service_events"]["asset_id"].tolist() == ["A1"]
    usage = warning(result, "usage", "asset_id")
    assert (usage.n_rows, usage.examples) == (1, ("ZZ",))
    # Usage without an asset is product usage, not telemetry: it stays.
    assert result.tables["usage"]["asset_id"].tolist() == ["A1", np.nan]


def test_assets_of_unknown_customers_take_their_service_events_with_them(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA9,999")
    write_csv(data_dir, "service_events", "asset_id,timestamp,kind\nA1,2024-01-01,repair\nA9,2024-01-01,repair")
    result = load(data_dir)

    assert warning(result, "assets", "customer_id").n_rows == 1
    assert warning(result, "service_events", "asset_id").examples == ("A9",)


def test_service_event_customer_is_filled_from_the_asset_owner(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA2,002")
    write_csv(data_dir, "service_events", "asset_id,timestamp,kind\nA1,2024-01-01,repair\nA2,2024-01-01,failure")
    result = load(data_dir)

    assert result.tables["service_events"]["customer_id"].tolist() == ["001", "002"]
    assert result.tables["service_events"]["customer_id"].dtype == "str"
    assert result.warnings == []


def test_service_event_customer_disagreeing_with_asset_owner_is_replaced_with_warning(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id\nA1,001\nA2,002")
    write_csv(data_dir, "service_events", "asset_id,timestamp,kind,customer_id\nA1,2024-01-01,repair,001\n"
                                          "A2,2024-01-01,failure,003\nA2,2024-01-02,repair,")
    result = load(data_dir)

    problem = warning(result, "service_events", "customer_id")
    assert (problem.check, problem.n_rows, problem.examples) == (
        "matches_asset_owner (replaced by owner)", 1, ("A2",))
    assert result.tables["service_events"]["customer_id"].tolist() == ["001", "002", "002"]


def test_service_events_without_assets_table_keep_rows_with_a_known_customer(data_dir):
    write_csv(data_dir, "service_events", "asset_id,timestamp,kind,customer_id\nA1,2024-01-01,repair,001\n"
                                          "A2,2024-01-01,repair,\nA3,2024-01-01,repair,999")
    result = load(data_dir)

    assert result.tables["service_events"]["asset_id"].tolist() == ["A1"]
    assert {p.check for p in result.warnings} == {
        "has_customer (no assets table) (dropped)", "known_customer (dropped)"}


def test_out_of_range_scores_are_set_to_na_and_the_event_is_kept(data_dir):
    write_csv(
        data_dir,
        "interactions",
        """
customer_id,timestamp,channel,csat,nps,ces,sentiment,wait_seconds,handle_seconds
001,2024-01-01,phone,0,11,8,1.5,-3,-1
001,2024-01-02,phone,5,10,7,-1,0,30
001,2024-01-03,phone,6,-1,1,-2,12,40
""",
    )
    result = load(data_dir)
    interactions = result.tables["interactions"]

    assert len(interactions) == 3
    expected = {"csat": ("in_range_1_5", 2, (0.0, 6.0)), "nps": ("in_range_0_10", 2, (11.0, -1.0)),
                "ces": ("in_range_1_7", 1, (8.0,)), "sentiment": ("in_range_-1_1", 2, (1.5, -2.0)),
                "wait_seconds": ("non_negative", 1, (-3.0,)), "handle_seconds": ("non_negative", 1, (-1.0,))}
    for column, (check, n_rows, examples) in expected.items():
        problem = warning(result, "interactions", column)
        assert (problem.check, problem.n_rows, problem.examples) == (f"{check} (set to NA)", n_rows, examples)
    assert interactions["csat"].tolist()[1] == 5.0
    assert np.isnan(interactions["csat"].tolist()[0])
    assert interactions["wait_seconds"].tolist()[1:] == [0.0, 12.0]


def test_non_positive_service_interval_and_negative_quantity_are_set_to_na(data_dir):
    write_csv(data_dir, "assets", "asset_id,customer_id,service_interval_days\nA1,001,0\nA2,002,180")
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount,quantity\n001,2024-01-01,5,-2\n001,2024-01-01,5,0")
    result = load(data_dir)

    assert warning(result, "assets", "service_interval_days").check == "positive (set to NA)"
    assert result.tables["assets"]["service_interval_days"].isna().tolist() == [True, False]
    assert warning(result, "purchases", "quantity").examples == (-2.0,)
    assert result.tables["purchases"]["quantity"].tolist()[1] == 0.0


def test_events_more_than_a_day_after_now_are_dropped(data_dir):
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n001,2024-06-01T23:00,login\n001,2024-06-02T12:00,login\n"
                                 "001,2030-01-01,login")
    result = load(data_dir)

    problem = warning(result, "usage", "timestamp")
    assert (problem.check, problem.n_rows, problem.examples) == (
        "not_future (dropped)", 2, ("2024-06-02 12:00:00", "2030-01-01"))
    assert len(result.tables["usage"]) == 1


def test_now_defaults_to_the_current_time(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n001,2000-01-01,1\n001,2999-01-01,1")

    assert len(load_data(data_dir).tables["purchases"]) == 1


def test_empty_event_table_is_dropped_with_a_warning(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount")
    (data_dir / "usage.csv").write_text("")
    result = load(data_dir)

    assert "purchases" not in result.tables and "usage" not in result.tables
    assert warning(result, "purchases", "*").check == "not_empty (table dropped)"
    assert warning(result, "usage", "*").n_rows == 0


def test_table_emptied_by_drops_is_left_out(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n999,2024-01-01,1")
    result = load(data_dir)

    assert "purchases" not in result.tables
    assert {p.check for p in result.warnings} == {"known_customer (dropped)", "not_empty_after_drops (table dropped)"}


def test_churn_date_before_signup_is_cleared_with_a_warning(tmp_path):
    write_csv(tmp_path, "customers",
              "customer_id,signup_date,churn_date\na,2023-05-01,2023-01-01\nb,2023-01-01,2023-06-01")
    result = load(tmp_path)

    problem = warning(result, "customers", "churn_date")
    assert (problem.check, problem.n_rows, problem.examples) == ("after_signup_date (set to NA)", 1, ("a",))
    assert result.tables["customers"]["churn_date"].isna().tolist() == [True, False]


# --------------------------------------------------------------------------- loading and summary


def test_tables_argument_loads_only_those_tables_plus_customers(data_dir):
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n001,2024-01-01,1")
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n001,2024-01-01,login")

    assert list(load(data_dir, tables=["usage"]).tables) == ["customers", "usage"]
    with pytest.raises(ValueError, match="unknown tables"):
        load(data_dir, tables=["truth"])


def test_every_contract_column_exists_after_validation(data_dir):
    for name in TABLES:
        if name == "customers":
            continue
        required = TABLES[name].required
        row = {"customer_id": "001", "asset_id": "A1", "timestamp": "2024-01-01", "as_of": "2024-01-01",
               "channel": "phone", "amount": "1", "kind": "repair", "event": "login",
               "list_date": "2024-01-01", "action": "retention_call", "group": "treatment"}
        write_csv(data_dir, name, ",".join(required) + "\n" + ",".join(row[c] for c in required))
    tables = load(data_dir).tables

    for name, schema in TABLES.items():
        assert set(schema.names) <= set(tables[name].columns), name


def test_summary_lists_rows_time_range_and_warnings(data_dir):
    write_csv(data_dir, "usage", "customer_id,timestamp,event\n001,2024-01-01,login\n001,2024-02-03T10:00,login\n"
                                 "999,2024-01-01,login")
    text = summarize(load(data_dir))

    assert "customers: 3 rows" in text
    assert "usage: 2 rows" in text
    assert "timestamp 2024-01-01 .. 2024-02-03 10:00:00" in text
    assert "usage.customer_id: 1 rows fail known_customer (dropped), e.g. ['999']" in text


def test_parquet_native_types_are_accepted(data_dir):
    import datetime as dt

    write_parquet(data_dir, "interactions", pd.DataFrame({
        "customer_id": ["001", "002"],
        "timestamp": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
        "channel": ["phone", "chat"],
        "is_complaint": [True, False],
        "resolved": [1, 0],
        "csat": pd.array([5, None], dtype="Int64"),
    }))
    interactions = load(data_dir).tables["interactions"]

    assert interactions["timestamp"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]
    assert interactions["is_complaint"].tolist() == [True, False]
    assert interactions["resolved"].tolist() == [True, False]
    assert interactions["csat"].dtype == "float64"
    assert interactions["csat"].isna().tolist() == [False, True]


# --------------------------------------------------------------------------- past outreach lists

LOG_HEADER = "customer_id,list_date,action,group,contacted_at,channel,outcome,offer_cost"


def write_log(data_dir: Path, *rows: str) -> Path:
    return write_csv(data_dir, "outreach_log", "\n".join([LOG_HEADER, *rows]))


def test_outreach_log_is_typed_with_groups_in_lower_case(data_dir):
    write_log(data_dir,
              "001,2024-03-01,retention_call, Treatment ,2024-03-01T10:15:00+01:00,phone,reached,12.5",
              "002,2024-03-01,retention_call,CONTROL,,,,",
              "003,2024-03-01,maintenance_visit,treatment,,phone,no_answer,")
    log = load(data_dir).tables["outreach_log"]

    assert log["group"].tolist() == ["treatment", "control", "treatment"]
    assert log["list_date"].dtype == "datetime64[us]" and log["contacted_at"].dtype == "datetime64[us]"
    assert log["contacted_at"].tolist()[0] == pd.Timestamp("2024-03-01 09:15")
    assert log["contacted_at"].isna().tolist() == [False, True, True]
    assert log["offer_cost"].tolist()[0] == 12.5
    assert log["action"].tolist() == ["retention_call", "retention_call", "maintenance_visit"]


def test_outreach_log_group_other_than_treatment_or_control_is_an_error(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,treated,,,,", "002,2024-03-01,retention_call,holdout,,,,",
              "003,2024-03-01,retention_call,control,,,,")

    problem = find(problems_of(data_dir), "outreach_log", "group")
    assert (problem.check, problem.n_rows, problem.examples) == ("in_treatment_control", 2, ("treated", "holdout"))


def test_outreach_log_one_row_per_customer_list_date_and_action(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,treatment,,,,",
              "001,2024-03-01T00:00:00,retention_call,control,,,,",
              "001,2024-03-01,win_back,treatment,,,,", "002,2024-03-01,retention_call,treatment,,,,")

    problem = find(problems_of(data_dir), "outreach_log", "(customer_id, list_date, action)")
    assert (problem.check, problem.n_rows, problem.examples) == ("unique", 2, ("001 / 2024-03-01 / retention_call",))
    assert "outreach_log.(customer_id, list_date, action): 2 rows fail unique" in str(
        pytest.raises(ValidationError, load, data_dir).value)


def test_a_control_customer_with_a_contact_time_is_an_error(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,control,2024-03-02,phone,reached,",
              "002,2024-03-01,retention_call,control,,,,", "003,2024-03-01,retention_call,treatment,2024-03-02,,,")

    problem = find(problems_of(data_dir), "outreach_log", "contacted_at", "empty_for_control")
    assert (problem.n_rows, problem.examples, problem.severity) == (1, ("001",), "error")


def test_a_contact_before_its_list_date_is_an_error(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,treatment,2024-02-28T23:00:00,,,",
              "002,2024-03-01,retention_call,treatment,2024-03-01T08:00:00,,,")

    problem = find(problems_of(data_dir), "outreach_log", "contacted_at", "not_before_list_date")
    assert (problem.n_rows, problem.examples) == (1, ("001",))


def test_outreach_log_rows_of_unknown_customers_are_dropped_and_counted(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,treatment,,,,", "999,2024-03-01,retention_call,control,,,,")
    result = load(data_dir)

    dropped = warning(result, "outreach_log", "customer_id")
    assert (dropped.check, dropped.n_rows, dropped.examples) == ("known_customer (dropped)", 1, ("999",))
    assert result.tables["outreach_log"]["customer_id"].tolist() == ["001"]


def test_outreach_log_unparseable_dates_and_costs_are_errors(data_dir):
    write_log(data_dir, "001,01/03/2024,retention_call,treatment,,,,",
              "002,2024-03-01,retention_call,treatment,soon,,,",
              "003,2024-03-01,retention_call,treatment,,,,ten")
    problems = problems_of(data_dir)

    assert find(problems, "outreach_log", "list_date").examples == ("01/03/2024",)
    assert find(problems, "outreach_log", "contacted_at", "parseable_date").examples == ("soon",)
    assert find(problems, "outreach_log", "offer_cost").check == "numeric"


def test_outreach_log_negative_offer_cost_and_future_lists_are_soft(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,treatment,,,,-5",
              "002,2024-09-01,retention_call,treatment,,,,")
    result = load(data_dir)

    assert warning(result, "outreach_log", "offer_cost").check == "non_negative (set to NA)"
    assert warning(result, "outreach_log", "list_date").check == "not_future (dropped)"
    assert result.tables["outreach_log"]["customer_id"].tolist() == ["001"]
    assert result.tables["outreach_log"]["offer_cost"].isna().all()


def test_outreach_log_problems_are_reported_with_the_other_tables(data_dir):
    write_log(data_dir, "001,2024-03-01,retention_call,maybe,,,,")
    write_csv(data_dir, "purchases", "customer_id,timestamp,amount\n001,2024-01-01,lots")

    assert {(p.table, p.column) for p in problems_of(data_dir)} == {("purchases", "amount"), ("outreach_log", "group")}
