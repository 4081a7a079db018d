"""MLflow pyfunc wrapper, logged as "models from code".

MLflow copies this file next to the model and executes it on load, instead of
unpickling a Python object: the only stored state is LightGBM's ``model.txt`` and the
JSON ``schema.json``. Batch jobs outside churnguard's own scorer use it on what
``churnguard features --out features.parquet`` wrote:

>>> import mlflow, pandas as pd                                       # doctest: +SKIP
>>> model = mlflow.pyfunc.load_model("models:/churnguard-churn@champion")  # doctest: +SKIP
>>> probabilities = model.predict(pd.read_parquet("features.parquet"))   # doctest: +SKIP

MLflow's signature types have no "category": categorical features are logged as
``string`` columns and the wrapper turns the text back into the model's categories
(a value the model never saw is missing, LightGBM's missing branch). Numeric features
are ``double``. A frame built in Python (:func:`churnguard.build_features`, whose
categoricals are pandas ``category``) goes through :func:`signature_frame` first.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from churnguard.training.model import ChurnModel

__all__ = ["ChurnPyfunc", "model_frame", "signature_frame"]


def signature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the types of the logged signature: categories as text, numbers as float64.

    Other columns (ids, text already) are left as they are; the frame is not modified.

    Examples
    --------
    >>> X = pd.DataFrame({"plan": pd.Categorical(["gold", None]), "n": [1, 2]})
    >>> signature_frame(X).dtypes.astype(str).tolist()
    ['object', 'float64']
    >>> signature_frame(X)["plan"].tolist()
    ['gold', None]
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            text = values.astype(object)
            out[column] = text.where(values.notna(), None)
        elif pd.api.types.is_bool_dtype(values.dtype) or (
            pd.api.types.is_numeric_dtype(values.dtype) and values.dtype != "float64"
        ):
            out[column] = values.astype("float64")
    return out


def model_frame(frame: pd.DataFrame, model: ChurnModel) -> pd.DataFrame:
    """The model's features from a signature-typed frame, text turned back into its categories.

    Examples
    --------
    >>> X = pd.DataFrame({"plan": pd.Categorical(["gold", "basic"] * 50), "n": np.arange(100.0)})
    >>> y = (X["n"] > 50).astype(int)
    >>> model = ChurnModel(params={"n_estimators": 3, "min_child_samples": 5}, calibration="none").fit(X, y)
    >>> frame = model_frame(pd.DataFrame({"n": [3.0], "plan": ["gold"], "extra": ["x"]}), model)
    >>> frame.columns.tolist(), frame["plan"].cat.categories.tolist()
    (['plan', 'n'], ['basic', 'gold'])
    """
    columns = {}
    for column in model.feature_names_in_:
        values = frame[column]
        if model.dtypes_[column] == "category" and not isinstance(values.dtype, pd.CategoricalDtype):
            text = values.astype(object).where(values.notna(), None)
            values = pd.Series(pd.Categorical(text, categories=model.categories_[column]), index=frame.index)
        columns[column] = values
    return pd.DataFrame(columns, index=frame.index)


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Predict calibrated probabilities (one float per row) from a feature frame."""

    def load_context(self, context):
        self.model = ChurnModel.from_files(context.artifacts["model_txt"], context.artifacts["schema_json"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(model_frame(model_input, self.model))[:, 1]


mlflow.models.set_model(ChurnPyfunc())
