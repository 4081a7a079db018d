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
# # churnguard quickstart
#
# From raw tables to a ranked, explained outreach list: generate (or load) data, validate it,
# build point-in-time features, train the churn and maintenance models into a local MLflow
# store, score today and read the list with its reasons.
#
# Set `DATA` to a directory of your own CSV/Parquet exports to run this on real data
# (see `docs/data-contract.md`); by default a small synthetic world is generated.

# %%
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from churnguard.config import load_model_spec
from churnguard.features import build_features, feature_catalogue
from churnguard.report import write_report
from churnguard.scoring import load_models, score, write_outreach
from churnguard.synthetic import generate_world, write_world
from churnguard.training import train_task
from churnguard.validation import load_data, summarize

WORK = Path(tempfile.mkdtemp(prefix="churnguard-quickstart-"))
DATA = None  # e.g. Path("exports/2026-11")

# %% [markdown]
# ## 1. Data: a generated world with known ground truth (or your own exports)

# %%
if DATA is None:
    world = generate_world(3_000, seed=7)
    DATA = WORK / "data"
    write_world(world, DATA)
    truth = world["truth"]
else:
    truth = None
sorted(p.name for p in DATA.iterdir())

# %% [markdown]
# ## 2. Validate: typed tables, bad rows reported with table, column and count

# %%
loaded = load_data(DATA)
print(summarize(loaded))
tables = loaded.tables

# %% [markdown]
# ## 3. Features as of a date: only events strictly before `as_of` count

# %%
as_of = pd.Timestamp("2026-11-01")
features = build_features(tables, as_of)
print(f"{len(features):,} customers x {features.shape[1] - 1} features")
features.head()

# %%
catalogue = feature_catalogue(tables, as_of)
catalogue[["name", "unit", "description"]].head(12)

# %% [markdown]
# ## 4. Train both models into a local MLflow store
#
# Six monthly cutoffs keep this notebook quick; the shipped specs in `models/` use twelve.

# %%
tracking_uri = f"sqlite:///{WORK}/mlflow.db"
results = {}
for task in ("churn", "maintenance"):
    spec = replace(load_model_spec(task=task), n_cutoffs=6)
    results[task] = train_task(tables, spec, tracking_uri=tracking_uri, truth=truth, progress=False)
    print(results[task].summary(), end="\n\n")

# %% [markdown]
# ## 5. Score today and read the outreach list

# %%
models = load_models(tracking_uri=tracking_uri)
scored = score(tables, as_of, models, capacity=100)
scored.outreach[["rank", "customer_id", "action", "channel", "churn_probability",
                 "maintenance_probability", "reason_1", "reason_2"]].head(10)

# %%
scored.suppressed["reason"].value_counts()

# %%
outreach_path, suppressed_path = write_outreach(scored, WORK / "outreach.csv")
report_path = write_report(scored, WORK / "report.html", models=models)
assert len(scored.outreach) > 0 and report_path.exists()
print(outreach_path, suppressed_path, report_path, sep="\n")
