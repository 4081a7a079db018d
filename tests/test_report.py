"""The HTML report and the PSI drift check."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churnguard import drift
from churnguard.drift import drift_table, population_stability_index, psi_of_values
from churnguard.report import write_report
from churnguard.scoring import score
from churnguard.training import ModelArtifact
from churnguard.training.model import ChurnModel


def test_psi_of_identical_distributions_is_zero():
    values = pd.Series(np.random.default_rng(1).gamma(2.0, 30.0, 20_000))
    assert psi_of_values(values, values) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_shifted_distribution_is_major():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.normal(0, 1, 20_000))
    assert psi_of_values(reference, pd.Series(rng.normal(0, 1, 20_000))) < 0.01
    assert psi_of_values(reference, pd.Series(rng.normal(1.0, 1, 20_000))) > 0.2


def test_psi_counts_new_missing_values_and_unseen_categories_as_drift():
    reference = pd.Series(["a", "b"] * 500)
    assert psi_of_values(reference, pd.Series(["a", "b", "c", None] * 250)) > 0.2


def test_psi_is_symmetric_in_its_share_vectors():
    assert population_stability_index([0.2, 0.8], [0.6, 0.4]) == pytest.approx(
        population_stability_index([0.6, 0.4], [0.2, 0.8]))


def test_drift_against_a_models_training_reference_flags_only_the_shifted_feature():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"stable": rng.normal(size=3000), "shifted": rng.normal(size=3000)})
    y = (X["stable"] + rng.normal(size=3000) > 0).astype(int)
    model = ChurnModel(params={"n_estimators": 10}, calibration="none").fit(X, y)
    today = pd.DataFrame({"stable": rng.normal(size=3000), "shifted": rng.normal(2.0, 1.0, size=3000)})
    table = drift_table(drift.reference(X, model.dtypes_, model.categories_), today).set_index("feature")
    assert table.loc["shifted", "level"] == "major"
    assert table.loc["stable", "level"] == "stable"


@pytest.fixture(scope="module")
def scored_run():
    rng = np.random.default_rng(5)
    n = 400
    features = pd.DataFrame({
        "customer_id": pd.array([f"c{i:03d}" for i in range(n)], dtype="str"),
        "complaints_90d": rng.poisson(1.0, n).astype(float),
        "tenure_days": rng.uniform(10, 1500, n),
    })
    y = (features["complaints_90d"] + rng.normal(0, 1, n) > 1.5).astype(int)
    model = ChurnModel(params={"n_estimators": 20, "min_child_samples": 10}, calibration="none").fit(
        features[["complaints_90d", "tenure_days"]], y)
    catalogue = pd.DataFrame({
        "name": ["complaints_90d", "tenure_days"],
        "description": ["Complaints in the last 90 days", "Days since signup"],
        "reason": ["{complaints_90d:.0f} complaints in the last 90 days", "customer for only {tenure_days:.0f} days"],
        "direction": ["up", "down"],
    })
    tables = {"customers": pd.DataFrame({"customer_id": features["customer_id"], "value": 500.0,
                                         "do_not_contact": pd.array([i % 50 == 0 for i in range(n)], dtype="boolean")})}
    today = features.assign(tenure_days=features["tenure_days"] + 900)  # everyone aged: drift
    # The drift baseline rides with the artifact, as training stores it.
    X = features[["complaints_90d", "tenure_days"]]
    model = ModelArtifact(model, task="churn", drift_reference=drift.reference(X, model.dtypes_, model.categories_))
    result = score(tables, pd.Timestamp("2024-05-01"), {"churn": model}, features=today, catalogue=catalogue, capacity=100)
    return result, model


def test_report_is_one_self_contained_html_file(scored_run, tmp_path):
    result, model = scored_run
    path = write_report(result, tmp_path / "report.html", models={"churn": model})
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Everything inline: images as data URIs, no external scripts, styles or images.
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert list(tmp_path.iterdir()) == [path]


def test_report_shows_levels_actions_reasons_models_and_flags_drift(scored_run, tmp_path):
    result, model = scored_run
    html = write_report(result, tmp_path / "report.html", models={"churn": model}).read_text()
    for text in ("Customers per risk level", "retention call", "Complaints in the last 90 days",
                 "Models used", "do not contact"):
        assert text in html


def test_report_leaves_features_that_grow_with_time_out_of_the_drift_alarm_and_says_so(scored_run, tmp_path):
    result, model = scored_run  # everyone's tenure is 900 days longer today: drift by construction
    html = write_report(result, tmp_path / "report.html", models={"churn": model}).read_text()
    assert not re.search(r'<tr class="major"><td>tenure_days</td>', html)
    left_out = re.search(r'<p id="drift-left-out">(.*?)</p>', html, re.S).group(1)
    assert "grow with time" in left_out and "tenure_days (Days since signup)" in left_out


def test_report_drift_rows_carry_the_catalogue_description(scored_run, tmp_path):
    result, model = scored_run
    today = dict(result.features)
    today["churn"] = today["churn"].assign(complaints_90d=today["churn"]["complaints_90d"] + 5)
    shifted = type(result)(**{**result.__dict__, "features": today})
    html = write_report(shifted, tmp_path / "report.html", models={"churn": model}).read_text()
    assert re.search(r'<tr class="major"><td>complaints_90d</td><td>Complaints in the last 90 days</td>', html)


def test_report_embeds_the_whole_list_in_rank_order_with_a_viewport_for_phones(scored_run, tmp_path):
    import json

    result, model = scored_run
    html = write_report(result, tmp_path / "report.html", models={"churn": model}).read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    payload = json.loads(re.search(r'<script id="list-data" type="application/json">(.*?)</script>', html, re.S)
                         .group(1).replace("<\\/", "</"))
    ids = [row[payload["columns"].index("customer_id")] for row in payload["rows"]]
    assert ids == result.outreach["customer_id"].tolist()
    # The list comes before the summary.
    assert html.index('id="outreach"') < html.index("<h2>Summary</h2>")


def test_a_reason_closing_the_script_tag_cannot_break_the_page(scored_run, tmp_path):
    result, model = scored_run
    assert len(result.outreach) > 0
    outreach = result.outreach.copy()
    outreach.loc[0, "reason_1"] = "</script><script>alert(1)</script>"
    broken = type(result)(**{**result.__dict__, "outreach": outreach})
    html = write_report(broken, tmp_path / "report.html", models={"churn": model}).read_text()
    assert "</script><script>alert(1)" not in html


def test_report_failure_leaves_no_file(scored_run, tmp_path, monkeypatch):
    import churnguard.report as report

    def boom(_):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report, "_drift_plot", boom)
    result, model = scored_run
    with pytest.raises(RuntimeError):
        write_report(result, tmp_path / "report.html", models={"churn": model})
    assert list(tmp_path.iterdir()) == []


def test_report_given_an_impact_result_shows_the_impact_section_after_the_summary(scored_run, tmp_path):
    from churnguard.impact import measure_impact
    from test_impact import _world

    result, model = scored_run
    impact = measure_impact(_world(seed=21))
    html = write_report(result, tmp_path / "r.html", models={"churn": model}, impact=impact).read_text()
    assert html.index("<h2>Summary</h2>") < html.index('<section id="impact">') < html.index("Score distributions")
    assert f"{impact.campaigns.loc[0, 'saved']:,.1f} (" in html
    assert 'id="impact"' not in write_report(result, tmp_path / "plain.html", models={"churn": model}).read_text()


def test_report_says_who_is_held_out_per_action_and_how_many_to_call(scored_run, tmp_path):
    result, model = scored_run
    html = write_report(result, tmp_path / "report.html", models={"churn": model}).read_text()
    n_held = len(result.controls)
    assert n_held > 0
    assert f"{n_held:,} customers are held out as a control group and must not be contacted" in html
    assert f"retention call {n_held:,}" in html  # every listed customer here is a retention call
    assert "held out (control, do not contact)" in html and "2024Q2" in html  # the campaign key
    curve = result.profit
    assert f"Calling the top <b>{curve.best_k:,}</b> maximises expected profit" in html
    assert "Today&#39;s capacity of 100 calls 100" in html or "Today's capacity of 100 calls 100" in html
    assert 'alt="expected profit by number of customers called"' in html
