"""Inputs as CRM and shop systems export them: one meaning per value, a mapping file, hints that fix the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from churnguard import build_features
from churnguard.cli import EXIT_BAD_INPUT, EXIT_OK, main
from churnguard.relations import load_relations
from churnguard.synthetic import generate_world, write_world
from churnguard.validation import TABLES, TIMESTAMP, BOOL, NUMBER, load_data

AS_OF = "2026-09-01"
NOW = pd.Timestamp("2026-11-02")


def run(*args) -> int:
    return main([str(a) for a in args])


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def contract_tables(directory: Path) -> list[str]:
    return [name for name in TABLES if (directory / f"{name}.csv").exists()]


def kind(table: str, column: str) -> str | None:
    names = TABLES[table].names
    return TABLES[table].column(column).kind if column in names else None


def as_text(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(directory / f"{name}.csv", dtype=str, keep_default_na=False)


def export_csv_with_habits(clean: Path, out: Path) -> Path:
    """The clean world as a CSV export: flags spelled yes/no and Y/N, every empty cell a blank."""
    out.mkdir(parents=True)
    for i, name in enumerate(contract_tables(clean)):
        frame = as_text(clean, name)
        for column in frame.columns:
            if kind(name, column) == BOOL:
                words = ("yes", "no") if i % 2 else ("Y", "n")
                frame[column] = frame[column].map({"True": words[0], "False": words[1], "": ""})
            frame[column] = frame[column].mask(frame[column] == "", "  ")
        frame.to_csv(out / f"{name}.csv", index=False)
    return out


def export_parquet_with_habits(clean: Path, out: Path) -> Path:
    """The clean world as Parquet the way exporters write it.

    Missing text as empty strings, strings dictionary-encoded, numbers native in some
    tables and text in others, flags as 0/1 integers, booleans or words, timestamps in
    ns, ms and us, tz-naive and tz-aware (Europe/Berlin, UTC).
    """
    out.mkdir(parents=True)
    units, zones = ("ns", "ms", "us"), (None, "Europe/Berlin", "UTC")
    for i, name in enumerate(contract_tables(clean)):
        frame = as_text(clean, name)
        columns = {}
        for column in frame.columns:
            text = frame[column]
            what = kind(name, column)
            if what == TIMESTAMP:
                ts = pd.to_datetime(text.replace("", None), format="ISO8601", utc=True)
                zone = zones[i % 3]
                ts = ts.dt.tz_convert(zone) if zone else ts.dt.tz_localize(None)
                columns[column] = pa.array(ts.dt.as_unit(units[i % 3]))
            elif what == BOOL:
                flags = text.map({"True": True, "False": False, "": None})
                if i % 3 == 0:
                    columns[column] = pa.array(flags.map({True: 1, False: 0}).astype("Int64"))
                elif i % 3 == 1:
                    columns[column] = pa.array(flags.astype("boolean"))
                else:
                    columns[column] = pa.array(flags.map({True: "Yes", False: "NO", None: ""}).tolist())
            elif what == NUMBER and i % 2 == 0:
                columns[column] = pa.array(pd.to_numeric(text.replace("", None)).astype("float64"))
            else:
                columns[column] = pa.array(text.tolist(), pa.string()).dictionary_encode()
        pq.write_table(pa.table(columns), out / f"{name}.parquet")
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "clean"
    world = generate_world(400, seed=7, years=1.0)
    write_world({k: v for k, v in world.items() if k != "truth"}, out, fmt="csv")
    return out


def test_csv_and_parquet_exports_of_one_world_give_byte_identical_features(clean, tmp_path):
    dirs = {"clean": clean, "csv": export_csv_with_habits(clean, tmp_path / "csv"),
            "parquet": export_parquet_with_habits(clean, tmp_path / "parquet")}
    digests = {}
    for label, data in dirs.items():
        out = tmp_path / f"{label}.features.csv"
        assert run("features", "--data", data, "--as-of", AS_OF, "--out", out, "--quiet") == EXIT_OK
        digests[label] = sha(out)
    assert digests["csv"] == digests["clean"] and digests["parquet"] == digests["clean"]

    # The Python API, on each reader: the same exact values whatever the format.
    for loader in (load_data, load_relations):
        expected = build_features(loader(clean, now=NOW).tables, pd.Timestamp(AS_OF))
        assert expected.shape[1] > 150  # every family built: usage rows with no asset are not dropped
        for data in dirs.values():
            result = loader(data, now=NOW)
            assert [str(w) for w in result.warnings] == []
            assert_frame_equal(build_features(result.tables, pd.Timestamp(AS_OF)), expected, check_exact=True)


def test_blank_text_in_an_optional_parquet_column_is_missing_not_an_unknown_asset(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\nc1\n")
    (tmp_path / "assets.csv").write_text("asset_id,customer_id\nA1,c1\n")
    pq.write_table(pa.table({"customer_id": ["c1", "c1"], "timestamp": ["2024-01-02", "2024-01-03"],
                             "event": ["login", "cycles"], "asset_id": ["", " "]}), tmp_path / "usage.parquet")
    for loader in (load_data, load_relations):
        result = loader(tmp_path, now=NOW)
        assert result.warnings == []
        usage = result.tables["usage"]
        usage = usage if isinstance(usage, pd.DataFrame) else usage.to_pandas()
        assert usage["asset_id"].isna().all() and len(usage) == 2


@pytest.mark.parametrize("words", [("true", "false"), ("YES", "No"), ("y", "N"), ("1", "0")])
def test_flags_read_the_same_spelled_any_usual_way_in_csv_and_parquet(tmp_path, words):
    yes, no = words
    csv_dir, pq_dir = tmp_path / "csv", tmp_path / "pq"
    for d in (csv_dir, pq_dir):
        d.mkdir()
        (d / "customers.csv").write_text("customer_id\nc1\n")
    (csv_dir / "purchases.csv").write_text(f"customer_id,timestamp,amount,is_return\nc1,2024-01-02,5,{yes}\n"
                                           f"c1,2024-01-03,6,{no}\nc1,2024-01-04,7,\n")
    pq.write_table(pa.table({"customer_id": ["c1"] * 3, "timestamp": ["2024-01-02", "2024-01-03", "2024-01-04"],
                             "amount": [5.0, 6.0, 7.0], "is_return": [yes, no, ""]}), pq_dir / "purchases.parquet")
    for d in (csv_dir, pq_dir):
        for loader in (load_data, load_relations):
            purchases = loader(d, now=NOW).tables["purchases"]
            purchases = purchases if isinstance(purchases, pd.DataFrame) else purchases.to_pandas()
            assert purchases["is_return"].tolist() == [True, False, pd.NA]


# --------------------------------------------------------------------------- the mapping file

MAPPING = """\
[customers]
file = "Kunden.csv"
delimiter = ";"
customer_id = "CustomerID"
[customers.formats]
signup_date = "%d/%m/%Y"
churn_date = "%d/%m/%Y"
"""


def export_like_a_european_crm(clean: Path, out: Path) -> Path:
    """The clean world with `CustomerID`, `;` as delimiter and day-first dates; customers in Kunden.csv."""
    out.mkdir(parents=True)
    mapping = [MAPPING]
    for name in contract_tables(clean):
        frame = as_text(clean, name)
        formats = {}
        for column in frame.columns:
            if kind(name, column) == TIMESTAMP and frame[column].ne("").any():
                timed = frame[column].str.len().max() > 10
                formats[column] = "%d/%m/%Y %H:%M:%S" if timed else "%d/%m/%Y"
                parsed = pd.to_datetime(frame[column].replace("", None), format="ISO8601")
                frame[column] = parsed.dt.strftime(formats[column]).fillna("")
        if name == "customers":
            frame.rename(columns={"customer_id": "CustomerID"}).to_csv(out / "Kunden.csv", sep=";", index=False)
            continue
        lines = [f"[{name}]", 'delimiter = ";"']
        if name == "interactions":
            frame = frame.rename(columns={"customer_id": "Customer Id"})
            lines.append('customer_id = "Customer Id"')
        lines.append(f"[{name}.formats]")
        lines += [f'{column} = "{fmt}"' for column, fmt in formats.items()]
        frame.to_csv(out / f"{name}.csv", sep=";", index=False)
        mapping.append("\n".join(lines) + "\n")
    (out / "churnguard.toml").write_text("".join(mapping))
    return out


@pytest.mark.slow
def test_a_european_crm_export_with_a_mapping_trains_and_scores_the_same_list_as_the_clean_world(clean, tmp_path):
    export = export_like_a_european_crm(clean, tmp_path / "export")
    before = {p.name: sha(p) for p in export.iterdir()}
    spec = tmp_path / "churn.toml"
    spec.write_text('task = "churn"\nn_cutoffs = 2\n[lightgbm]\nn_estimators = 30\nnum_leaves = 7\n')
    # A low bar for a retention call, so that the small world's list is not empty.
    rules = tmp_path / "outreach.toml"
    rules.write_text("[actions.retention_call]\nmin_probability = 0.02\n")
    lists = {}
    for label, data in (("clean", clean), ("export", export)):
        uri = f"sqlite:///{tmp_path}/{label}.db"
        assert run("train", "--data", data, "--task", "churn", "--spec", spec, "--tracking-uri", uri,
                   "--quiet") == EXIT_OK
        out = tmp_path / "lists" / label / "outreach.csv"
        assert run("score", "--data", data, "--as-of", "2026-10-01", "--out", out, "--rules", rules,
                   "--tracking-uri", uri, "--quiet") == EXIT_OK
        lists[label] = (sha(out), sha(out.with_name("outreach.suppressed.csv")))
    assert lists["export"] == lists["clean"]
    assert len(pd.read_csv(tmp_path / "lists" / "clean" / "outreach.csv")) > 0
    assert {p.name: sha(p) for p in export.iterdir()} == before  # input files never modified


def test_features_of_a_mapped_export_equal_the_clean_worlds(clean, tmp_path):
    export = export_like_a_european_crm(clean, tmp_path / "export")
    outs = []
    for data in (clean, export):
        outs.append(tmp_path / f"{data.name}.features.parquet")
        assert run("features", "--data", data, "--as-of", AS_OF, "--out", outs[-1], "--quiet") == EXIT_OK
    assert sha(outs[0]) == sha(outs[1])
    # --mapping FILE does what churnguard.toml beside the tables does.
    moved = tmp_path / "elsewhere.toml"
    moved.write_text((export / "churnguard.toml").read_text())
    (export / "churnguard.toml").unlink()
    outs.append(tmp_path / "moved.features.parquet")
    assert run("features", "--data", export, "--mapping", moved, "--as-of", AS_OF, "--out", outs[-1],
               "--quiet") == EXIT_OK
    assert sha(outs[2]) == sha(outs[0])


def test_validate_prints_the_mapping_it_used(tmp_path, capsys):
    (tmp_path / "Kunden.csv").write_text("CustomerID;signup_date\nc1;05/04/2025\nc2;25/12/2024\n")
    (tmp_path / "churnguard.toml").write_text(MAPPING)
    assert run("validate", "--data", tmp_path) == EXIT_OK
    out = capsys.readouterr().out
    assert f"mapping {tmp_path / 'churnguard.toml'}:" in out
    assert '  customer_id = "CustomerID"' in out and '  signup_date = "%d/%m/%Y"' in out
    assert "signup_date 2024-12-25 .. 2025-04-05" in out and "(from Kunden.csv)" in out


def test_a_constant_fills_a_column_the_export_lacks(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\nc1\nc2\n")
    (tmp_path / "churnguard.toml").write_text('[customers.constants]\ndo_not_contact = false\nregion = "north"\n')
    for loader in (load_data, load_relations):
        customers = loader(tmp_path, now=NOW).tables["customers"]
        assert customers["do_not_contact"].tolist() == [False, False]
        assert customers["region"].tolist() == ["north", "north"]


@pytest.mark.parametrize("mapping, key", [
    ('[custmers]\ncustomer_id = "CustomerID"\n', "[custmers]"),
    ('[customers]\ncustomer_id = "Kundennummer"\n', '[customers] customer_id = "Kundennummer"'),
    ('[customers.formats]\nsignup_date = "%d/%m/%Q"\n', '[customers.formats] signup_date = "%d/%m/%Q"'),
    ('[customers.formats]\nsignup_date = "dd/mm/yyyy"\n', '[customers.formats] signup_date = "dd/mm/yyyy"'),
    ('[customers]\ndelimiter = ";;"\n', '[customers] delimiter = ";;"'),
    ('[customers]\nencoding = "klingon"\n', '[customers] encoding = "klingon"'),
    ('[customers]\nfile = "Kunden.csv"\n', '[customers] file = "Kunden.csv"'),
    ('[usage]\nts = "Zeit"\n', '[usage] ts = "Zeit"'),
])
def test_a_mapping_error_exits_2_naming_the_mapping_key(tmp_path, capsys, mapping, key):
    (tmp_path / "customers.csv").write_text("CustomerID,signup_date\nc1,2024-01-02\n")
    (tmp_path / "churnguard.toml").write_text(mapping)
    for command in (("validate",), ("features", "--as-of", AS_OF, "--out", tmp_path / "f.csv")):
        assert run(*command, "--data", tmp_path) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert err.startswith("error: churnguard.toml: ") and key in err and "Traceback" not in err
    assert not (tmp_path / "f.csv").exists()


# --------------------------------------------------------------------------- hints without a mapping


@pytest.mark.parametrize("header", ["CustomerID", "Customer Id", "customerId"])
def test_a_near_miss_column_name_says_how_to_map_it(tmp_path, capsys, header):
    (tmp_path / "customers.csv").write_text(f"{header},segment\nc1,smb\n")
    for command in (("validate",), ("features", "--as-of", AS_OF, "--out", tmp_path / "f.csv")):
        assert run(*command, "--data", tmp_path) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "customers.customer_id: 1 rows fail required_column" in err
        assert (f'did you mean `{header}`? map it in churnguard.toml: [customers] customer_id = "{header}"'
                in err)


@pytest.mark.parametrize("delimiter, shown, declared", [(";", "';'", '";"'), ("\t", "tab", '"\\t"')])
def test_a_header_that_is_one_field_with_semicolons_or_tabs_says_so(tmp_path, capsys, delimiter, shown, declared):
    # The second row has a field too many: the delimiter is not beyond doubt, so it is not used.
    rows = ["customer_id", "signup_date", "segment"]
    (tmp_path / "customers.csv").write_text(delimiter.join(rows) + "\n" + delimiter.join(["c1", "2024-01-02", "smb"])
                                            + "\n" + delimiter.join(["c2", "2024-01-02", "smb", "x"]) + "\n")
    assert run("validate", "--data", tmp_path) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "customers.customer_id: 2 rows fail required_column" in err
    assert (f"the header is one field holding {shown}: the file is not comma-separated; declare its delimiter in "
            f"churnguard.toml: [customers] delimiter = {declared}") in err


def test_an_unambiguous_semicolon_file_is_read_with_a_warning(tmp_path, capsys):
    (tmp_path / "customers.csv").write_text("customer_id;segment\nc1;smb\nc2;ent\n")
    for loader in (load_data, load_relations):
        result = loader(tmp_path, now=NOW)
        assert result.tables["customers"]["segment"].tolist() == ["smb", "ent"]
        assert [str(w) for w in result.warnings] == [
            "customers.*: 0 rows fail comma_separated (read as ';'-separated; say so in churnguard.toml: "
            "[customers] delimiter = \";\"), e.g. ['customers.csv']"]
    assert run("validate", "--data", tmp_path, "--strict", "--quiet") == EXIT_BAD_INPUT
    assert "read as ';'-separated" in capsys.readouterr().err


def test_an_ambiguous_date_says_which_formats_fit_and_how_to_declare_one(tmp_path, capsys):
    (tmp_path / "customers.csv").write_text("customer_id,signup_date\nc1,05/04/2025\nc2,11/03/2025\n")
    (tmp_path / "purchases.csv").write_text("customer_id,timestamp,amount\nc1,25/04/2025 10:00,5\n")
    for command in (("validate",), ("features", "--as-of", AS_OF, "--out", tmp_path / "f.csv")):
        assert run(*command, "--data", tmp_path) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "customers.signup_date: 2 rows fail parseable_date, e.g. ['05/04/2025', '11/03/2025']" in err
        assert ("these dates fit %d/%m/%Y or %m/%d/%Y; declare the one the export uses in churnguard.toml: "
                '[customers.formats] signup_date = "%d/%m/%Y"') in err
        assert ("these dates fit %d/%m/%Y %H:%M; declare the one the export uses in churnguard.toml: "
                '[purchases.formats] timestamp = "%d/%m/%Y %H:%M"') in err


def test_the_european_crm_export_without_its_mapping_stops_with_every_hint(clean, tmp_path, capsys):
    export = export_like_a_european_crm(clean, tmp_path / "export")
    (export / "churnguard.toml").unlink()
    (export / "Kunden.csv").rename(export / "customers.csv")
    assert run("validate", "--data", export) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert 'did you mean `CustomerID`? map it in churnguard.toml: [customers] customer_id = "CustomerID"' in err
    assert 'did you mean `Customer Id`? map it in churnguard.toml: [interactions] customer_id = "Customer Id"' in err
    assert '[purchases.formats] timestamp = "%d/%m/%Y %H:%M:%S"' in err
    assert "Traceback" not in err


def test_a_declared_format_the_dates_do_not_follow_names_it(tmp_path, capsys):
    (tmp_path / "customers.csv").write_text("customer_id,signup_date\nc1,2025-04-05\n")
    (tmp_path / "churnguard.toml").write_text('[customers.formats]\nsignup_date = "%d/%m/%Y"\n')
    assert run("validate", "--data", tmp_path) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "customers.signup_date: 1 rows fail parseable_date, e.g. ['2025-04-05']" in err
    assert "not in the declared format '%d/%m/%Y' ([customers.formats] signup_date in churnguard.toml)" in err


def test_a_two_digit_year_under_a_four_digit_format_fails_on_both_paths(tmp_path, capsys):
    (tmp_path / "customers.csv").write_text("customer_id\nc1\n")
    (tmp_path / "purchases.csv").write_text("customer_id,timestamp,amount\nc1,05/04/2025,5\nc1,06/04/25,6\n")
    (tmp_path / "churnguard.toml").write_text('[purchases.formats]\ntimestamp = "%d/%m/%Y"\n')
    for command in (("validate",), ("features", "--as-of", AS_OF, "--out", tmp_path / "f.csv")):
        assert run(*command, "--data", tmp_path) == EXIT_BAD_INPUT
        assert "purchases.timestamp: 1 rows fail parseable_date, e.g. ['06/04/25']" in capsys.readouterr().err


def test_a_latin_1_export_reads_with_its_declared_encoding_and_says_so_without(tmp_path, capsys):
    (tmp_path / "customers.csv").write_bytes("customer_id,region\nc1,Zürich\n".encode("latin-1"))
    (tmp_path / "purchases.csv").write_bytes(
        "customer_id,timestamp,amount,category\nc1,2024-01-02,5,Gerät\n".encode("latin-1"))
    for command in (("validate",), ("features", "--as-of", AS_OF, "--out", tmp_path / "f.csv")):
        assert run(*command, "--data", tmp_path) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "customers.*: 0 rows fail readable" in err and "Traceback" not in err
        assert "the file is not utf-8; declare its encoding in churnguard.toml: [customers] encoding = " in err
    (tmp_path / "churnguard.toml").write_text('[customers]\nencoding = "latin-1"\n[purchases]\nencoding = "latin-1"\n')
    for loader in (load_data, load_relations):
        result = loader(tmp_path, now=NOW)
        purchases = result.tables["purchases"]
        purchases = purchases if isinstance(purchases, pd.DataFrame) else purchases.to_pandas()
        assert result.tables["customers"]["region"].tolist() == ["Zürich"]
        assert purchases["category"].tolist() == ["Gerät"]


def test_spark_refuses_a_mapping_it_would_ignore(tmp_path, capsys):
    (tmp_path / "customers.csv").write_text("CustomerID\nc1\n")
    (tmp_path / "churnguard.toml").write_text('[customers]\ncustomer_id = "CustomerID"\n')
    assert run("features", "--data", tmp_path, "--as-of", AS_OF, "--out", tmp_path / "f.csv",
               "--engine", "spark") == EXIT_BAD_INPUT
    assert "would ignore" in capsys.readouterr().err
