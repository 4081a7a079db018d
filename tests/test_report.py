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
    tables = {"customers": pd.DataFrame({"customer_id": features["customer_id"],
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
    for text in ("Customers per risk level", "retention_call", "Complaints in the last 90 days",
                 "Models used", "do not contact"):
        assert text in html
    assert re.search(r'<tr class="major"><td>tenure_days</td>', html)


def test_report_failure_leaves_no_file(scored_run, tmp_path, monkeypatch):
    import churnguard.report as report

    def boom(_):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report, "_drift_plot", boom)
    result, model = scored_run
    with pytest.raises(RuntimeError):
        write_report(result, tmp_path / "report.html", models={"churn": model})
    assert list(tmp_path.iterdir()) == []
