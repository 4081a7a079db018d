# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explaining the models: global, per customer, and in words
#
# churnguard explains with exact TreeSHAP contributions on the model's margin (log-odds).
# Globally: which features matter and how. Per customer: which features pushed *this*
# customer's risk up. In words: the feature catalogue turns the top contributions into
# sentences a care agent can read.

# %%
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from churnguard.config import load_model_spec
from churnguard.features import build_features, feature_catalogue
from churnguard.reasons import explain_reasons
from churnguard.synthetic import generate_world
from churnguard.training import load_task_model, train_task
from churnguard.validation import validate_tables

WORK = Path(tempfile.mkdtemp(prefix="churnguard-explain-"))
tracking_uri = f"sqlite:///{WORK}/mlflow.db"
world = generate_world(3_000, seed=5)
world.pop("truth")
tables = validate_tables(world).tables
train_task(tables, replace(load_model_spec(task="churn"), n_cutoffs=6), tracking_uri=tracking_uri,
           progress=False, log=lambda _: None)
artifact = load_task_model("churn", tracking_uri=tracking_uri)
model = artifact.estimator

# %% [markdown]
# ## Contributions for today's customers
# Columns are the model's features plus `bias`; each row sums to the model's margin.

# %%
as_of = pd.Timestamp("2026-11-01")
features = build_features(tables, as_of, feature_set=artifact.feature_set)
X = features[list(model.feature_names_in_)]
contributions = model.contributions(X)
assert np.allclose(contributions.sum(axis=1), model.predict_margin(X))
contributions.iloc[:5, :6]

# %% [markdown]
# ## Global: SHAP summary and a dependence plot

# %%
values = contributions.drop(columns="bias").to_numpy()
numeric = X.select_dtypes("number")
shap.summary_plot(values[:, [X.columns.get_loc(c) for c in numeric.columns]], numeric, show=False,
                  max_display=12)
plt.show()

# %%
top = contributions.drop(columns="bias").abs().mean().sort_values(ascending=False)
top.head(10)

# %%
feature = next(f for f in top.index if f in numeric.columns)
shap.dependence_plot(feature, values[:, [X.columns.get_loc(c) for c in numeric.columns]], numeric,
                     interaction_index=None, show=False)
plt.show()

# %% [markdown]
# ## One customer: a waterfall of what pushed the risk up or down

# %%
riskiest = int(np.argmax(model.predict_proba(X)[:, 1]))
explanation = shap.Explanation(values=values[riskiest], base_values=contributions["bias"].iloc[riskiest],
                               data=X.iloc[riskiest].to_numpy(), feature_names=list(X.columns))
shap.plots.waterfall(explanation, max_display=10, show=False)
plt.show()

# %% [markdown]
# ## In words: reasons from the feature catalogue
# Every feature has a description, a unit and (when a care agent would understand it) a
# sentence template over the customer's feature row. Only contributions that push the risk
# *up* become reasons, and never raw feature names.

# %%
catalogue = feature_catalogue(tables, as_of, feature_set=artifact.feature_set)
catalogue.loc[catalogue["reason"] != "", ["name", "reason"]].head(10)

# %%
reasons = explain_reasons({"churn": contributions.drop(columns="bias")}, features, catalogue)
reasons.index = features["customer_id"]
reasons.iloc[[riskiest], :3].T
