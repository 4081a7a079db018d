"""``churnguard impact``: files, exit codes, the MLflow run and the report section in a real browser."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churnguard.cli import EXIT_BAD_INPUT, EXIT_NOTHING_TO_DO, EXIT_OK, main
from test_impact import _world


def run(*args) -> int:
    return main([str(a) for a in args])


def _write(tables: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _write(_world(n_treatment=600, n_control=200, seed=11, segments=["consumer", "business"]),
                  tmp_path_factory.mktemp("impact") / "data")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return _write(_world(n_treatment=40, n_control=8, p_treatment=0.2, p_control=0.4, seed=13),
                  tmp_path_factory.mktemp("impact") / "small")


def test_impact_writes_its_rows_its_report_and_an_mlflow_run(data, tmp_path, capsys):
    out, report, uri = tmp_path / "impact.csv", tmp_path / "impact.html", f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert run("impact", "--data", data, "--out", out, "--report", report, "--tracking-uri", uri) == EXIT_OK
    rows = pd.read_csv(out)
    assert rows["segment"].tolist() == ["all", "business", "consumer"]
    assert rows.loc[0, "status"] == "measured"
    err = capsys.readouterr().err
    assert "2026-01-05 retention_call:" in err and "customers saved (95% interval" in err
    assert 'id="impact"' in report.read_text()
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("churnguard-impact").experiment_id])
    assert runs[0].data.metrics["retention_call.saved"] == pytest.approx(rows.loc[0, "saved"])


def test_impact_rows_are_byte_identical_on_a_rerun(data, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for name in ("a.parquet", "b.parquet", "a.csv", "b.csv"):
        assert run("impact", "--data", data, "--out", tmp_path / name, "--tracking-uri", uri, "--quiet") == EXIT_OK
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"))


def test_a_too_small_experiment_exits_3_with_the_reason_and_still_writes_its_rows(small, tmp_path, capsys):
    out = tmp_path / "impact.csv"
    code = run("impact", "--data", small, "--out", out, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
               "--quiet")
    assert code == EXIT_NOTHING_TO_DO
    err = capsys.readouterr().err
    assert "error: no campaign could be measured" in err
    assert "2026-01-05 retention_call: too small:" in err and "more customers in the same split" in err
    assert "Traceback" not in err
    assert pd.read_csv(out)["status"].tolist() == ["too_small"]


def test_impact_without_an_outreach_log_has_nothing_to_do(small, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("customers.csv", "usage.csv"):
        (bare / name).write_bytes((small / name).read_bytes())
    out = tmp_path / "impact.csv"
    assert run("impact", "--data", bare, "--out", out, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}") \
        == EXIT_NOTHING_TO_DO
    assert "nothing to do: no outreach_log table" in capsys.readouterr().err
    assert not out.exists()


def test_a_list_date_with_no_list_has_nothing_to_do(data, tmp_path, capsys):
    out = tmp_path / "impact.csv"
    assert run("impact", "--data", data, "--list-date", "2026-02-01", "--out", out,
               "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}") == EXIT_NOTHING_TO_DO
    assert "no outreach_log rows with list_date 2026-02-01" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("args, named", [
    (("--list-date", "05/01/2026"), "--list-date: '05/01/2026' is not an ISO date"),
    (("--out", "impact.xlsx"), "--out: 'impact.xlsx' has extension '.xlsx'"),
    (("--report", "impact.pdf"), "--report: 'impact.pdf' has extension '.pdf'"),
])
def test_impact_refuses_bad_options_naming_them_before_any_work(data, tmp_path, capsys, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    options = {"--out": "impact.csv", **dict(zip(args[::2], args[1::2]))}
    flat = [x for pair in options.items() for x in pair]
    assert run("impact", "--data", data, *flat, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}") == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def browser():
    from browser import headless_page

    yield from headless_page("the impact page")


def test_impact_page_in_headless_chromium_shows_each_campaign_and_fits_a_phone(data, tmp_path, browser):
    out, report = tmp_path / "impact.csv", tmp_path / "impact.html"
    assert run("impact", "--data", data, "--out", out, "--report", report,
               "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--quiet") == EXIT_OK
    rows = pd.read_csv(out)
    browser.open(report)
    cells = browser.evaluate("Array.from(document.querySelectorAll('#impact-campaigns tr[data-status] td'))"
                             ".map(td => td.innerText)")
    assert cells[0] == "2026-01-05" and cells[1] == "retention call"
    assert cells[8].startswith(f"{rows.loc[0, 'saved']:,.1f} (")
    # The segment rows are folded away until asked for.
    assert not browser.evaluate("document.querySelector('#impact-segments').checkVisibility()")
    browser.evaluate("document.querySelector('#impact details summary').click()")
    assert browser.evaluate("document.querySelectorAll('#impact-segments tr[data-status]').length") == 2
    browser.set_viewport(390, 844, mobile=True)
    try:
        # On a phone the wide table scrolls inside its box; the page itself does not scroll sideways.
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        browser.set_viewport(1280, 900)


def test_a_small_generated_world_exits_3_naming_each_campaign_and_how_many_more_it_needs(tmp_path, capsys):
    world = tmp_path / "world"
    assert run("generate", "--customers", 1500, "--seed", 2, "--campaigns", "--out", world, "--quiet") == EXIT_OK
    out = tmp_path / "impact.parquet"
    code = run("impact", "--data", world, "--out", out, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--quiet")
    rows = pd.read_parquet(out)
    campaigns = rows[rows["segment"] == "all"]
    err = capsys.readouterr().err
    assert code == EXIT_NOTHING_TO_DO and (campaigns["status"] == "too_small").all()
    for row in campaigns.itertuples():
        assert f"{row.list_date.date()} retention_call: too small:" in err
    assert "more customers in the same split" in err
    assert set(rows["segment"]) > {"all"}  # customers.segment gives rows of its own
