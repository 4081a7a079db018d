"""MLflow pyfunc wrapper, logged as "models from code".

MLflow copies this file next to the model and executes it on load, instead of
unpickling a Python object: the only stored state is LightGBM's ``model.txt`` and the
JSON ``schema.json``. Batch jobs outside churnguard's own scorer use it as

>>> import mlflow                                                     # doctest: +SKIP
>>> model = mlflow.pyfunc.load_model("models:/churnguard-churn@champion")  # doctest: +SKIP
>>> probabilities = model.predict(features)                          # doctest: +SKIP
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from churnguard.training.model import ChurnModel


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Predict calibrated probabilities (one float per row) from a feature frame."""

    def load_context(self, context):
        self.model = ChurnModel.from_files(context.artifacts["model_txt"], context.artifacts["schema_json"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(model_input)[:, 1]


mlflow.models.set_model(ChurnPyfunc())
