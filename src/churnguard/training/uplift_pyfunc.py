"""MLflow pyfunc wrapper of the uplift model, logged as "models from code".

MLflow copies this file next to the model and executes it on load; the only stored
state is the two effect models' LightGBM text and ``uplift.json``. ``predict`` returns
each customer's expected reduction of their churn probability by a contact (negative:
the contact backfires), from the features ``churnguard features`` writes:

>>> import mlflow, pandas as pd                                         # doctest: +SKIP
>>> model = mlflow.pyfunc.load_model("models:/churnguard-uplift@champion")  # doctest: +SKIP
>>> uplift = model.predict(pd.read_parquet("features.parquet"))             # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from churnguard.training.uplift_model import UpliftModel

__all__ = ["UpliftPyfunc"]


class UpliftPyfunc(mlflow.pyfunc.PythonModel):
    """Predict the uplift of a contact (one float per row) from a feature frame."""

    def load_context(self, context):
        self.model = UpliftModel.load(Path(context.artifacts["uplift_json"]).parent)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        frame = model_input.copy()
        for column, kind in self.model.dtypes_.items():
            if kind == "numeric" and column in frame:
                frame[column] = frame[column].astype("float64")
        return self.model.predict_uplift(frame)


mlflow.models.set_model(UpliftPyfunc())
