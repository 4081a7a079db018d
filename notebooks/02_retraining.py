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
# # The monthly retraining loop
#
# Every month new data arrives. We retrain, compare the new model (the *challenger*) with the
# current *champion* on the same held-out cutoff, and promote it only if the rule in the model
# spec (`[promotion]` in `models/churn.toml`) says it is better. Here we simulate two months:
# train "as of" last month, then retrain on this month's data.

# %%
import tempfile
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
from IPython.display import Image, display
from mlflow import MlflowClient

from churnguard.config import load_model_spec
from churnguard.synthetic import generate_world
from churnguard.training import load_task_model, train_task
from churnguard.validation import validate_tables

WORK = Path(tempfile.mkdtemp(prefix="churnguard-retrain-"))
tracking_uri = f"sqlite:///{WORK}/mlflow.db"
world = generate_world(3_000, seed=11)
truth = world.pop("truth")
tables = validate_tables(world).tables
spec = replace(load_model_spec(task="churn"), n_cutoffs=6)

# %% [markdown]
# ## Last month: the first model becomes champion
# `as_of` cuts the data: no event and no label window after it is used.

# %%
last_month = train_task(tables, spec, as_of=pd.Timestamp("2026-10-01"), tracking_uri=tracking_uri,
                        truth=truth, progress=False)
print(last_month.summary())

# %% [markdown]
# ## This month: retrain on the new data; the registry decides champion or challenger

# %%
this_month = train_task(tables, spec, tracking_uri=tracking_uri, truth=truth, progress=False)
print(this_month.summary())
print("promoted:", this_month.promoted, "-", this_month.reason)

# %% [markdown]
# ## A stricter promotion rule: the new model must win by a clear margin
# The rule re-scores the champion on the challenger's held-out cutoff, so both are judged on
# exactly the same customers. Here we demand +0.05 ROC-AUC, which a retrain on the same data
# does not reach: the new version is registered as `challenger` and the champion stays.

# %%
strict = replace(spec, promotion=replace(spec.promotion, min_improvement=0.05))
challenger = train_task(tables, strict, tracking_uri=tracking_uri, truth=truth, progress=False)
print(challenger.alias, "-", challenger.reason)
assert challenger.alias == "challenger"

# %% [markdown]
# ## The registry and the runs, as `mlflow ui --backend-store-uri sqlite:///...` shows them

# %%
client = MlflowClient(tracking_uri=tracking_uri)
versions = client.search_model_versions("name='churnguard-churn'")
pd.DataFrame([{"version": v.version, "aliases": v.aliases, "run_id": v.run_id} for v in versions])

# %%
mlflow.set_tracking_uri(tracking_uri)
runs = mlflow.search_runs(search_all_experiments=True)
runs[[c for c in runs.columns if c in ("run_id", "metrics.model_roc_auc", "metrics.logistic_roc_auc",
                                       "metrics.rule_roc_auc", "metrics.oracle_roc_auc")]]

# %% [markdown]
# ## The evaluation plots of the champion's run

# %%
champion = load_task_model("churn", tracking_uri=tracking_uri)
plots_dir = Path(mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path="plots",
                                                     tracking_uri=tracking_uri))
for png in sorted(plots_dir.glob("*.png")):
    print(png.name)
    display(Image(filename=str(png)))
