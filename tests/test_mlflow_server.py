"""Against a real MLflow tracking server, as the README tells teams to run it.

One ``mlflow server`` (SQLite backend store, local artifact destination) on 127.0.0.1 at
a free port serves the whole module: both tasks are trained into it with
``--tracking-uri http://127.0.0.1:PORT``, the champions score a list, and an outside job
loads the registered pyfunc model as the README's snippet does. The server is stopped
in the fixture's finalizer.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from churnguard.cli import EXIT_OK, main  # noqa: E402

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[1] / "README.md"
SPEC = '[lightgbm]\nn_estimators = 30\nnum_leaves = 7\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    script = Path(sys.executable).with_name("mlflow")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [*command, "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
    )

    def stop():
        # The server forks workers: stop the whole process group, then make sure.
        with_group = process.poll() is None
        if with_group:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        log.close()

    deadline = time.monotonic() + 180
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            pytest.fail(f"mlflow server did not answer at {url}:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield {"url": url, "root": root, "process": process}
    stop()


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """A small world with both models trained into the server, and the champions' list and features."""
    tmp = tmp_path_factory.mktemp("nightly-world")
    world = tmp / "data"
    assert main(["generate", "--customers", "1200", "--seed", "5", "--out", str(world), "--quiet"]) == EXIT_OK
    outputs = {}
    for task in ("churn", "maintenance"):
        spec = tmp / f"{task}.toml"
        spec.write_text(f'task = "{task}"\nn_cutoffs = 3\n' + SPEC)
        code, out, err = _run_captured(["train", "--data", str(world), "--task", task, "--spec", str(spec),
                                        "--tracking-uri", server["url"]])
        assert code == EXIT_OK, err
        outputs[task] = (out, err)
    listed = tmp / "lists" / "outreach.csv"
    code, _, score_err = _run_captured(["score", "--data", str(world), "--as-of", "2026-11-01", "--out",
                                        str(listed), "--tracking-uri", server["url"], "--quiet"])
    assert code == EXIT_OK, score_err
    features = tmp / "features.parquet"
    assert main(["features", "--data", str(world), "--as-of", "2026-11-01", "--out", str(features),
                 "--quiet"]) == EXIT_OK
    return {"tmp": tmp, "train": outputs, "score_err": score_err, "list": listed, "features": features}


def _run_captured(args: list[str]) -> tuple[int, str, str]:
    """The console script in a subprocess: what a nightly job sees on stdout and stderr."""
    script = Path(sys.executable).with_name("churnguard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "churnguard.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=600)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def client(server):
    mlflow.set_tracking_uri(server["url"])
    try:
        yield mlflow.MlflowClient()
    finally:
        mlflow.set_tracking_uri(None)


def test_both_champions_are_registered_on_the_server_with_logged_plots(trained, client):
    for task in ("churn", "maintenance"):
        version = client.get_model_version_by_alias(f"churnguard-{task}", "champion")
        assert version.version == "1"
        plots = {Path(a.path).name for a in client.list_artifacts(version.run_id, "plots")}
        assert {"roc.png", "pr.png", "gains.png", "calibration.png", "shap_summary.png"} <= plots
        run = client.get_run(version.run_id)
        assert "model_roc_auc" in run.data.metrics and run.data.tags["promotion"].startswith("promoted")


def test_registered_versions_describe_task_label_horizon_window_and_evaluation(trained, client):
    version = client.get_model_version_by_alias("churnguard-maintenance", "champion")
    text = version.description
    assert text.startswith("churnguard maintenance model: will one of the customer's products need a repair")
    assert "repair or failure" in text and "90 days" in text
    holdout = version.tags["holdout_cutoff"]
    assert f"evaluated on held-out {holdout}" in text
    run = client.get_run(version.run_id)
    assert f"ROC-AUC {run.data.metrics['model_roc_auc']:.4f}" in text
    assert "Promotion: promoted to champion" in text


def test_train_output_says_each_thing_once_without_mlflow_noise(trained):
    out, err = trained["train"]["churn"]
    assert out.count("promoted to champion") == 1 and "promoted to champion" not in err
    for noise in ("INFO mlflow", "Successfully registered model", "Created version", "Downloading artifacts",
                  "View run", "View experiment", "Uploading artifacts"):
        assert noise not in out + err, noise
    assert "registered churnguard-churn version 1 as champion" in out
    assert "churn: training on" in err  # churnguard's own progress stays


def test_scoring_with_the_server_champions_fills_both_tasks(trained):
    listed = pd.read_csv(trained["list"], dtype={"customer_id": str})
    assert len(listed) > 0
    assert listed["churn_probability"].notna().all()
    # Customers without an installed product have no maintenance probability; owners do.
    assert listed["maintenance_probability"].notna().sum() > len(listed) / 2
    assert trained["score_err"] == ""  # --quiet: nothing but warnings and errors


def _readme_snippet() -> str:
    text = README.read_text()
    marker = text.index("<!-- readme-mlflow-snippet")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None
    return block.group(1)


def test_readme_mlflow_snippet_runs_as_written_and_matches_the_list(trained, server, monkeypatch, capsys):
    monkeypatch.chdir(trained["tmp"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["url"])
    mlflow.set_tracking_uri(None)  # the snippet relies on the environment variable, as an outside job does
    namespace: dict = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), namespace)
    assert "churn_probability" in capsys.readouterr().out
    scored = namespace["features"][["customer_id", "churn_probability"]]
    listed = pd.concat([pd.read_csv(trained["list"], dtype={"customer_id": str}),
                        pd.read_csv(trained["list"].with_name("outreach.suppressed.csv"), dtype={"customer_id": str})])
    both = listed[["customer_id", "churn_probability"]].merge(scored, on="customer_id", suffixes=("_list", ""))
    assert len(both) == len(listed) > 0
    # The list rounds probabilities to 6 decimals: equal up to that rounding.
    np.testing.assert_allclose(both["churn_probability"], both["churn_probability_list"], rtol=0, atol=5.01e-7)


def test_pyfunc_takes_a_python_built_frame_through_signature_frame(trained, server, client):
    from churnguard import build_features, load_data
    from churnguard.training.pyfunc import signature_frame

    tables = load_data(trained["tmp"] / "data").tables
    frame = build_features(tables, pd.Timestamp("2026-11-01"))
    assert any(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in frame.columns)
    model = mlflow.pyfunc.load_model("models:/churnguard-churn@champion")
    from_python = np.asarray(model.predict(signature_frame(frame)))
    from_file = np.asarray(model.predict(pd.read_parquet(trained["features"])))
    np.testing.assert_array_equal(from_python, from_file)
