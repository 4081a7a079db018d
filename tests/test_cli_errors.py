"""The nightly job's contract: every user error is one paragraph with exit code 2 (or 3), no traceback.

Each case runs through the real command (``churnguard.cli.main`` in-process, and a few
through the installed console script in a subprocess) and checks the exit code, that
no traceback is printed, that the option or table at fault is named, and that nothing
is left at the output path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from churnguard.cli import EXIT_BAD_INPUT, EXIT_NOTHING_TO_DO, EXIT_OK, main


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A small generated world, variants of it, and files that are in the way."""
    root = tmp_path_factory.mktemp("nightly")
    world = root / "world"
    assert main(["generate", "--customers", "300", "--seed", "3", "--out", str(world), "--quiet"]) == EXIT_OK
    no_assets = root / "no_assets"
    no_assets.mkdir()
    for name in ("customers", "interactions", "purchases"):
        shutil.copy(world / f"{name}.parquet", no_assets)
    only_customers = root / "only_customers"
    only_customers.mkdir()
    (only_customers / "customers.csv").write_text("customer_id,segment\n1,a\n2,b\n")
    doubled = root / "doubled"
    doubled.mkdir()
    shutil.copy(world / "customers.parquet", doubled)
    purchases = pd.read_parquet(world / "purchases.parquet")
    pd.concat([purchases, purchases.head(25)]).to_parquet(doubled / "purchases.parquet")
    campaigns = root / "campaigns"
    assert main(["generate", "--customers", "300", "--seed", "3", "--out", str(campaigns), "--campaigns",
                 "--quiet"]) == EXIT_OK
    contacted_control = root / "contacted_control"
    contacted_control.mkdir()
    shutil.copy(campaigns / "customers.parquet", contacted_control)
    log = pd.read_parquet(campaigns / "outreach_log.parquet")
    control = log.index[log["group"] == "control"][:3]
    log.loc[control, "contacted_at"] = log.loc[control, "list_date"] + pd.Timedelta(hours=10)
    log.to_parquet(contacted_control / "outreach_log.parquet")
    both = root / "both"
    both.mkdir()
    (both / "customers.csv").write_text("customer_id\n1\n")
    (both / "customers.parquet").write_bytes((world / "customers.parquet").read_bytes())
    (root / "a_file").write_text("not a directory\n")
    (root / "bad_rules.toml").write_text("contact_cooldown_dayz = 3\n")
    (root / "bad_spec.toml").write_text('task = "churn"\nhorizon = 30\n')
    (root / "broken.toml").write_text("task = \n")
    (root / "a_dir.csv").mkdir()
    return root


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    named: tuple[str, ...]  # every one must appear in stderr
    out: str | None = "out/list.csv"  # must not exist afterwards (relative to the place)


# {place} is replaced by the fixture's folder, {uri} by an empty SQLite registry there.
SCORE = ("score", "--data", "{place}/world", "--tracking-uri", "{uri}")
CASES = [
    Case("european date", (*SCORE, "--as-of", "01/11/2026", "--out", "{place}/out/list.csv"), EXIT_BAD_INPUT,
         ("--as-of", "'01/11/2026' is not an ISO date (YYYY-MM-DD)")),
    Case("a word for a date", (*SCORE, "--as-of", "yesterday", "--out", "{place}/out/list.csv"), EXIT_BAD_INPUT,
         ("--as-of", "'yesterday'")),
    Case("time without offset", (*SCORE, "--as-of", "2026-11-01T06:00", "--out", "{place}/out/list.csv"),
         EXIT_BAD_INPUT, ("--as-of", "no UTC offset")),
    Case("impossible day", (*SCORE, "--as-of", "2026-02-30", "--out", "{place}/out/list.csv"), EXIT_BAD_INPUT,
         ("--as-of", "'2026-02-30' is not a valid date")),
    Case("features date", ("features", "--data", "{place}/world", "--as-of", "11/01/2026", "--out",
                           "{place}/out/list.csv"), EXIT_BAD_INPUT, ("--as-of", "'11/01/2026'")),
    Case("train date", ("train", "--data", "{place}/world", "--task", "churn", "--as-of", "2026.09.01",
                        "--tracking-uri", "{uri}"), EXIT_BAD_INPUT, ("--as-of", "'2026.09.01'"), None),
    Case("xlsx list", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.xlsx"), EXIT_BAD_INPUT,
         ("--out", "'.xlsx'", ".csv or .parquet"), "out/list.xlsx"),
    Case("features txt", ("features", "--data", "{place}/world", "--as-of", "2026-11-01", "--out",
                          "{place}/out/f.txt"), EXIT_BAD_INPUT, ("--out", "'.txt'"), "out/f.txt"),
    Case("parent is a file", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/a_file/list.csv"),
         EXIT_BAD_INPUT, ("--out", "a_file", "is a file"), "a_file/list.csv"),
    Case("out is a directory", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/a_dir.csv"),
         EXIT_BAD_INPUT, ("--out", "is a directory"), None),
    Case("model version that does not exist",
         (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.csv", "--model", "models:/churnguard-churn/7"),
         EXIT_BAD_INPUT, ("--model models:/churnguard-churn/7", "not found")),
    Case("model directory that does not exist",
         (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.csv", "--model", "{place}/no-such-model"),
         EXIT_BAD_INPUT, ("--model", "no-such-model", "does not exist")),
    Case("no registered model", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.csv"),
         EXIT_NOTHING_TO_DO, ("no registered model",)),
    Case("rules with a typo", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.csv", "--rules",
                               "{place}/bad_rules.toml"), EXIT_BAD_INPUT,
         ("--rules", "bad_rules.toml", "contact_cooldown_dayz")),
    Case("maintenance without assets", ("train", "--data", "{place}/no_assets", "--task", "maintenance",
                                        "--tracking-uri", "{uri}"), EXIT_BAD_INPUT,
         ("--task maintenance", "assets"), None),
    Case("inactivity churn without purchases", ("train", "--data", "{place}/only_customers", "--task", "churn",
                                                "--tracking-uri", "{uri}"), EXIT_BAD_INPUT,
         ("--task churn", "purchases"), None),
    Case("spec with a typo", ("train", "--data", "{place}/world", "--task", "churn", "--spec",
                              "{place}/bad_spec.toml", "--tracking-uri", "{uri}"), EXIT_BAD_INPUT,
         ("--spec", "bad_spec.toml", "horizon"), None),
    Case("spec that is not TOML", ("train", "--data", "{place}/world", "--task", "churn", "--spec",
                                   "{place}/broken.toml", "--tracking-uri", "{uri}"), EXIT_BAD_INPUT,
         ("--spec", "broken.toml"), None),
    Case("date years after the data, strict", ("features", "--data", "{place}/world", "--as-of", "2030-01-01",
                                               "--out", "{place}/out/list.csv", "--strict"), EXIT_BAD_INPUT,
         ("--as-of 2030-01-01", "days after the newest event", "--strict")),
    Case("three weeks after the data, strict", ("features", "--data", "{place}/world", "--as-of", "2026-11-22",
                                                "--out", "{place}/out/list.csv", "--strict"), EXIT_BAD_INPUT,
         ("--as-of 2026-11-22", "days after the newest event", "--strict")),
    Case("before most of the data, strict", ("features", "--data", "{place}/world", "--as-of", "2025-01-01",
                                             "--out", "{place}/out/list.csv", "--strict"), EXIT_BAD_INPUT,
         ("--as-of 2025-01-01", "before", "of the events")),
    Case("duplicate rows, strict", ("features", "--data", "{place}/doubled", "--as-of", "2026-11-01",
                                    "--out", "{place}/out/list.csv", "--strict"), EXIT_BAD_INPUT,
         ("purchases", "25 rows", "no_exact_duplicate", "--strict")),
    Case("two files for one table", ("validate", "--data", "{place}/both"), EXIT_BAD_INPUT,
         ("customers", "single_file"), None),
    Case("a contacted control", ("validate", "--data", "{place}/contacted_control"), EXIT_BAD_INPUT,
         ("outreach_log.contacted_at: 3 rows fail empty_for_control",), None),
    Case("a contacted control, features", ("features", "--data", "{place}/contacted_control", "--as-of",
                                           "2026-11-01", "--out", "{place}/out/list.csv"), EXIT_BAD_INPUT,
         ("outreach_log.contacted_at", "empty_for_control")),
    Case("negative capacity", (*SCORE, "--as-of", "2026-11-01", "--out", "{place}/out/list.csv", "--capacity",
                               "-1"), EXIT_BAD_INPUT, ("--capacity",)),
]


def _expand(args, place: Path) -> list[str]:
    uri = f"sqlite:///{place}/empty.db"
    return [a.format(place=place, uri=uri) for a in args]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_paragraph_with_its_exit_code_and_nothing_written(case, place, capsys):
    code = main(_expand(case.args, place))
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    for text in case.named:
        assert text in err, err
    if case.out is not None:
        assert not (place / case.out).exists()
    assert not list(place.rglob(".*.tmp"))  # no temporary file left behind either


SUBPROCESS_CASES = [c for c in CASES if c.name in (
    "european date", "xlsx list", "model version that does not exist", "maintenance without assets")]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.name for c in SUBPROCESS_CASES])
def test_console_script_prints_no_traceback(case, place):
    script = Path(sys.executable).with_name("churnguard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "churnguard.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([*command, *_expand(case.args, place)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == case.code, done.stderr
    assert "Traceback" not in done.stderr
    assert all(text in done.stderr for text in case.named), done.stderr
    assert done.stderr.count("error:") == 1  # one paragraph, said once
    if case.out is not None:
        assert not (place / case.out).exists()


def test_european_date_message_is_exactly_the_documented_line(place, capsys):
    main(_expand((*SCORE, "--as-of", "01/11/2026", "--out", "{place}/out/list.csv"), place))
    assert capsys.readouterr().err == "error: --as-of: '01/11/2026' is not an ISO date (YYYY-MM-DD)\n"


def test_a_date_with_offset_means_the_same_instant_in_utc(place, tmp_path):
    utc, shifted = tmp_path / "utc.parquet", tmp_path / "shifted.parquet"
    assert main(["features", "--data", str(place / "world"), "--as-of", "2026-10-01", "--out", str(utc),
                 "--quiet"]) == EXIT_OK
    assert main(["features", "--data", str(place / "world"), "--as-of", "2026-10-01T02:00:00+02:00",
                 "--out", str(shifted), "--quiet"]) == EXIT_OK
    pd.testing.assert_frame_equal(pd.read_parquet(utc), pd.read_parquet(shifted))


def test_date_weeks_after_the_data_warns_but_still_writes_without_strict(place, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    assert main(["features", "--data", str(place / "world"), "--as-of", "2026-11-22", "--out", str(out),
                 "--quiet"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: --as-of 2026-11-22 is 21 days after the newest event" in err
    assert out.exists()


def test_stale_after_days_moves_the_warning_threshold(place, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    assert main(["features", "--data", str(place / "world"), "--as-of", "2026-11-22", "--out", str(out),
                 "--stale-after-days", "30", "--strict", "--quiet"]) == EXIT_OK
    assert "warning" not in capsys.readouterr().err


def test_duplicate_rows_are_counted_and_dropped_on_request(place, capsys):
    assert main(["validate", "--data", str(place / "doubled")]) == EXIT_OK
    kept = capsys.readouterr().out
    assert "purchases.*: 25 rows fail no_exact_duplicate (kept)" in kept
    assert main(["validate", "--data", str(place / "doubled"), "--drop-duplicates"]) == EXIT_OK
    dropped = capsys.readouterr().out
    n = len(pd.read_parquet(place / "world" / "purchases.parquet"))
    assert "purchases.*: 25 rows fail no_exact_duplicate (dropped)" in dropped
    assert f"purchases: {n:,} rows" in dropped


def test_validate_reports_the_generated_outreach_log(place, capsys):
    assert main(["validate", "--data", str(place / "campaigns")]) == EXIT_OK
    out = capsys.readouterr().out
    n = len(pd.read_parquet(place / "campaigns" / "outreach_log.parquet"))
    assert f"outreach_log: {n:,} rows, 7 columns in the input (+1 optional added empty: offer_cost), list_date" in out


def test_validate_counts_the_columns_in_the_file_apart_from_those_it_added(place, capsys):
    assert main(["validate", "--data", str(place / "only_customers")]) == EXIT_OK
    out = capsys.readouterr().out
    assert ("customers: 2 rows, 2 columns in the input (+5 optional added empty: signup_date, churn_date, value, "
            "do_not_contact, preferred_channel)") in out


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_output_folder_is_refused_before_any_work(place, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(_expand((*SCORE, "--as-of", "2026-11-01", "--out", f"{locked}/list.csv"), place))
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "--out" in err and "is not writable" in err
    assert not (locked / "list.csv").exists()
