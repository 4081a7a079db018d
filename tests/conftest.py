"""Shared test settings."""

import os

import matplotlib

# Headless: plots are written to files, never shown.
matplotlib.use("Agg")
# Keep MLflow from ever touching a tracking store outside the test's tmp_path.
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
