"""``churnguard demo``: the whole job on embedded defaults, from nothing to a ranked list.

Generate a synthetic world, validate it, train and register both models in a local
MLflow store (SQLite + local artifacts, no server), score the day after the data ends
and write the outreach list, the suppressed list and the report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

__all__ = ["run_demo"]

# Fewer stacked cutoffs than a monthly production retrain: the demo must finish in a
# few minutes on two cores, and six months of cutoffs already train honest models.
DEMO_CUTOFFS = 6


def run_demo(
    out_dir: Path | str,
    *,
    n_customers: int = 10_000,
    seed: int = 1,
    quiet: bool = False,
    tracking_uri: str | None = None,
    n_cutoffs: int | None = DEMO_CUTOFFS,
) -> dict[str, Path]:
    """Generate, validate, train both tasks, score the latest date, write list and report.

    Parameters
    ----------
    out_dir : path
        Everything goes here: ``data/`` (the generated world), ``mlflow.db`` and
        ``mlruns/`` (the MLflow store, unless `tracking_uri` is given),
        ``outreach.csv``, ``outreach.suppressed.csv``, ``outreach.control.csv`` (the
        held-out control group, not to be contacted) and ``report.html``.
    n_customers : int, default=10_000
        Size of the generated world; 10,000 keeps the whole demo at a few minutes on
        two cores (about 150 s of CPU time, measured) with honest models.
    seed : int, default=1
        Seed of the generator (training is seeded by the model specs).
    quiet : bool, default=False
        No progress messages (the returned paths are the result).
    tracking_uri : str, optional
        An MLflow tracking URI to train into instead of the local store.
    n_cutoffs : int or None, default=6
        Stacked monthly cutoffs per task; None keeps the model spec's value.

    Returns
    -------
    dict of str -> Path
        ``data``, ``tracking``, ``outreach``, ``suppressed``, ``control``, ``report``;
        and ``impact`` (what past campaigns saved, :func:`churnguard.impact.measure_impact`)
        when the world has an ``outreach_log``, whose section the report then includes.

    Examples
    --------
    >>> paths = run_demo("demo-out", quiet=True)  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['control', 'data', 'outreach', 'report', 'suppressed', 'tracking']
    """
    from churnguard.config import load_model_spec, load_outreach_rules
    from churnguard.io import sibling_path
    from churnguard.labels import data_end
    from churnguard.report import write_report
    from churnguard.scoring import score, write_outreach
    from churnguard.synthetic import generate_world, write_world
    from churnguard.training import load_task_model, train_task
    from churnguard.validation import load_data

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    data_dir = out_dir / "data"
    say(f"generating {n_customers:,} customers (seed {seed}) into {data_dir}")
    # With the business's past campaigns, so the demo shows the whole loop: what they saved.
    world = generate_world(n_customers, seed=seed, campaigns=True)
    write_world(world, data_dir)
    truth = world.get("truth") if isinstance(world, dict) else None

    tables = load_data(data_dir).tables
    say("validated " + ", ".join(f"{name} {len(t):,}" for name, t in tables.items()))

    if tracking_uri is None:
        tracking_uri = f"sqlite:///{out_dir / 'mlflow.db'}"
    for task in ("churn", "maintenance"):
        spec = load_model_spec(task=task)
        if n_cutoffs is not None:
            spec = replace(spec, n_cutoffs=min(n_cutoffs, spec.n_cutoffs))
        say(f"training {task} ({spec.n_cutoffs} cutoffs) into {tracking_uri}")
        said: set[str] = set()

        def log(message: str) -> None:
            said.add(message.strip())
            say(message)

        trained = train_task(
            tables, spec, tracking_uri=tracking_uri, truth=truth, progress=not quiet,
            log=(lambda message: None) if quiet else log,
        )
        if not quiet:
            # The summary repeats the promotion decision already logged: say each line once.
            summary = [line for line in trained.summary().splitlines() if line.strip() not in said]
            print("\n".join(summary), file=sys.stderr, flush=True)

    models = {task: load_task_model(task, tracking_uri=tracking_uri) for task in ("churn", "maintenance")}
    models = {task: m for task, m in models.items() if m is not None}
    as_of = data_end(tables)
    say(f"scoring as of {as_of.date()} with {', '.join(models)}")
    result = score(tables, as_of, models, rules=load_outreach_rules(), progress=not quiet)
    outreach, suppressed = write_outreach(result, out_dir / "outreach.csv")
    impact = _impact(tables, out_dir, tracking_uri, say)
    report = write_report(result, out_dir / "report.html", models=models,
                          impact=impact[1] if impact is not None else None)
    say(f"{len(result.outreach):,} customers ranked, {len(result.suppressed):,} suppressed, "
        f"{len(result.controls):,} held out as control (not to be contacted)")
    paths = {
        "data": data_dir,
        "tracking": Path(tracking_uri[len("sqlite:///"):]) if tracking_uri.startswith("sqlite:///") else tracking_uri,
        "outreach": outreach,
        "suppressed": suppressed,
        "control": sibling_path(outreach, "control"),
        "report": report,
    }
    if impact is not None:
        paths["impact"] = impact[0]
    return paths


def _impact(tables, out_dir: Path, tracking_uri: str, say):
    """What the world's past campaigns saved (``impact.csv`` and an MLflow run), or None without an outreach_log."""
    from churnguard.impact import NothingToMeasure, log_impact_run, measure_impact
    from churnguard.io import write_table

    try:
        impact = measure_impact(tables)
    except NothingToMeasure:
        return None
    path = write_table(impact.rows, out_dir / "impact.csv")
    log_impact_run(impact, tracking_uri=tracking_uri)
    say(f"{impact.n_measured} of {len(impact.campaigns)} past campaigns measured against their control group")
    return path, impact
