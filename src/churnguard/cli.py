"""The ``churnguard`` command line: thin wrappers over the Python API.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (validation or
schema mismatch; one paragraph on stderr naming table, column and rows),
3 nothing to do (e.g. no registered model to score with). Heavy imports
(MLflow, LightGBM) happen inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from pathlib import Path

import click

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NOTHING_TO_DO = 3


class BadInput(Exception):
    """Input the user can fix; printed as one paragraph without a traceback."""


def _echo(quiet: bool, message: str) -> None:
    if not quiet:
        click.echo(message, err=True)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class _DropBanners:
    """A stderr that drops MLflow's registry banners; everything else passes through."""

    BANNERS = ("Successfully registered model", "Created version", "Registered model")

    def __init__(self, stream):
        self._stream = stream
        self._dropped = False

    def write(self, text: str) -> int:
        # print() writes the message and its newline separately: drop both.
        dropped, self._dropped = self._dropped, text.lstrip().startswith(self.BANNERS)
        if self._dropped or (dropped and text == "\n"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _quiet_mlflow(quiet: bool):
    """Under --quiet, silence MLflow's progress bars, INFO logs and registry banners.

    Warnings and errors still reach stderr: only INFO logging and known banners go.
    """
    if not quiet:
        yield
        return
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import mlflow  # noqa: F401  (MLflow sets its loggers' levels on import: import first, then quiet them)

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with contextlib.redirect_stderr(_DropBanners(sys.stderr)):
        yield


def _as_of(value: str | None):
    if value is None:
        return None
    from churnguard.timeline import coerce_as_of

    try:
        return coerce_as_of(value)
    except ValueError as err:
        raise click.BadParameter(f"not an ISO date: {value!r}") from err


def _handle_errors(command):
    """Map known bad-input exceptions to exit code 2 with a clean message."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from churnguard.validation import ValidationError

        known = (ValidationError, BadInput)
        try:
            from churnguard.training import SchemaMismatchError

            known = known + (SchemaMismatchError,)
        except ImportError:  # training extra not importable: nothing to map
            pass
        try:
            code = command(*args, **kwargs)
        except known as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(code or EXIT_OK)

    return wrapper


def _load(data: Path, quiet: bool):
    """Load and validate a data dir, printing dropped-row warnings to stderr."""
    from churnguard.validation import load_data

    result = load_data(data)
    _warn_problems(result.warnings)
    return result


# Both engines' messages, worded once.


def _warn_problems(problems) -> None:
    for problem in problems:
        _warn(
            f"{problem.table}.{problem.column}: {problem.n_rows} rows fail {problem.check}, "
            f"e.g. {list(problem.examples)}"
        )


def _echo_models(quiet: bool, models) -> None:
    for task, model in models.items():
        _echo(quiet, f"{task}: {getattr(model, 'name', 'model')} v{getattr(model, 'version', '?')}")


def _echo_lists(quiet: bool, n_listed: int, path, n_suppressed: int, suppressed_path) -> None:
    _echo(quiet, f"{n_listed:,} customers ranked -> {path}")
    _echo(quiet, f"{n_suppressed:,} suppressed -> {suppressed_path}")


def _echo_features(quiet: bool, n_customers: int, n_features: int, out) -> None:
    _echo(quiet, f"{n_customers:,} customers x {n_features} features -> {out}")


NO_MODEL = "no registered model to score with; run `churnguard train` first or pass --model"


quiet_option = click.option(
    "--quiet", is_flag=True, help="No progress bars or banners; warnings and errors still go to stderr."
)
data_option = click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory with one CSV or Parquet file per table.",
)
engine_options = [
    click.option(
        "--engine",
        type=click.Choice(["pandas", "spark"]),
        default="pandas",
        show_default=True,
        help="pandas: this machine. spark: Apache Spark (pip install 'churnguard[spark]'); --data and --out "
        "may then be any URI Spark reads (s3a://, abfss://, ...).",
    ),
    click.option("--spark-master", default=None, help="Spark master URL (default: local Spark on all cores)."),
]


def _engine(command):
    for option in reversed(engine_options):
        command = option(command)
    return command


def _local_dir(data: str) -> Path:
    path = Path(data)
    if not path.is_dir():
        raise click.BadParameter(f"directory {data!r} does not exist", param_hint="--data")
    return path


tracking_option = click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="churnguard")
def cli():
    """churnguard: who will churn, whose product will need maintenance, whom to contact first and why."""


@cli.command()
@click.option("--customers", "n_customers", type=click.IntRange(min=1), required=True, help="Number of customers.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed; same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output directory.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@quiet_option
@_handle_errors
def generate(n_customers: int, seed: int, out: Path, fmt: str, quiet: bool) -> int:
    """Generate a synthetic customer world, including the ground-truth `truth` table."""
    from churnguard.synthetic import generate_world_files

    written = generate_world_files(out, n_customers, seed=seed, fmt=fmt, progress=not quiet)
    for name, table in written.items():
        _echo(quiet, f"{name:>15}: {table.rows:>12,} rows -> {table.path}")
    return EXIT_OK


@cli.command()
@data_option
@quiet_option
@_handle_errors
def validate(data: Path, quiet: bool) -> int:
    """Check a data directory against the data contract and report problems."""
    from churnguard.validation import summarize

    result = _load(data, quiet)
    if not quiet:
        click.echo(summarize(result))
    return EXIT_OK


@cli.command()
@click.option("--data", "data", help="Data directory (or a Spark-readable URI with --engine spark).")
@click.option("--as-of", "as_of", help="Cut-off date (ISO); only events strictly before it are used.")
@click.option("--out", help="Output file (.csv or .parquet).")
@click.option("--feature-set", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Feature-set TOML.")
@click.option("--list", "list_", is_flag=True, help="Print the feature catalogue instead of building features.")
@_engine
@quiet_option
@_handle_errors
def features(data, as_of, out, feature_set, list_, engine, spark_master, quiet) -> int:
    """Build one feature row per customer as of a date (or list the catalogue)."""
    from churnguard.config import load_feature_set
    from churnguard.features import build_features, feature_catalogue
    from churnguard.io import write_table

    fs = load_feature_set(feature_set)
    if list_:
        tables = _load(_local_dir(data), quiet).tables if data else None
        when = _as_of(as_of)
        if tables is not None and when is None:
            from churnguard.labels import data_end

            when = data_end(tables)  # the columns as they would be built today
        catalogue = feature_catalogue(tables, when, feature_set=fs)
        for row in catalogue.itertuples():
            click.echo(f"{row.name:<48} {row.unit:<10} {row.description}")
        return EXIT_OK
    missing = [flag for flag, value in (("--data", data), ("--as-of", as_of), ("--out", out)) if not value]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use --list)")
    if engine == "spark":
        from churnguard.spark import features_command_spark

        run = features_command_spark(data, _as_of(as_of), out, feature_set=fs, spark_master=spark_master)
        _warn_problems(run.warnings)
        _echo_features(quiet, run.n_customers, run.n_features, run.path)
        return EXIT_OK
    tables = _load(_local_dir(data), quiet).tables
    frame = build_features(tables, _as_of(as_of), feature_set=fs, progress=not quiet)
    write_table(frame, out)
    _echo_features(quiet, len(frame), frame.shape[1] - 1, out)
    return EXIT_OK


@cli.command()
@data_option
@click.option("--task", type=click.Choice(["churn", "maintenance"]), required=True)
@click.option("--as-of", "as_of", help="Train as if today were this date: nothing after it is used.")
@click.option("--horizon", "horizon", type=click.IntRange(min=1), help="Label horizon in days (overrides the spec).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Model spec TOML.")
@tracking_option
@quiet_option
@_handle_errors
def train(data, task, as_of, horizon, spec, tracking_uri, quiet) -> int:
    """Train, evaluate and register a model for one task in MLflow."""
    from dataclasses import replace

    from churnguard.config import load_model_spec
    from churnguard.training import train_task

    model_spec = load_model_spec(spec) if spec else load_model_spec(task=task)
    if model_spec.task != task:
        raise BadInput(f"--spec {spec} is for task {model_spec.task!r}, not {task!r}")
    if horizon:
        model_spec = replace(model_spec, horizon_days=horizon)
    loaded = _load(data, quiet)
    truth = _truth(data)
    with _quiet_mlflow(quiet):
        result = train_task(
            loaded.tables,
        model_spec,
            as_of=_as_of(as_of),
            tracking_uri=tracking_uri,
            truth=truth,
            progress=not quiet,
            log=(lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True)),
        )
    click.echo(result.summary())
    return EXIT_OK


def _truth(data: Path):
    """The generator's ground truth, when the data dir is a generated world."""
    from churnguard.io import read_raw_table, table_path

    path = table_path(data, "truth")
    if path is None:
        return None
    import pandas as pd

    truth = read_raw_table(path)
    truth["as_of"] = pd.to_datetime(truth["as_of"])
    for column in truth.columns.difference(["customer_id", "as_of"]):
        truth[column] = pd.to_numeric(truth[column])
    return truth


@cli.command()
@click.option("--data", "data", required=True, help="Data directory (or a Spark-readable URI with --engine spark).")
@click.option("--as-of", "as_of", required=True, help="Score as of this date.")
@click.option("--out", required=True, help="Outreach list file (.csv or .parquet); the suppressed list goes beside it.")
@click.option("--capacity", type=click.IntRange(min=0), help="At most this many customers on the list.")
@click.option("--model", "model_uris", multiple=True, help="Model URI (repeatable; default: each task's champion).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Outreach rules TOML.")
@click.option("--explain-all", is_flag=True, help="Compute SHAP reasons for every customer, not only the list.")
@tracking_option
@_engine
@quiet_option
@_handle_errors
def score(data, as_of, out, capacity, model_uris, rules, explain_all, tracking_uri, engine, spark_master,
          quiet) -> int:
    """Score customers and write the ranked outreach list with reasons."""
    from churnguard.config import load_outreach_rules
    from churnguard.scoring import load_models

    if engine == "spark" and explain_all:
        raise click.UsageError("--explain-all is not available with --engine spark")
    if engine == "pandas":
        data = _local_dir(data)
    with _quiet_mlflow(quiet):
        models = load_models(model_uris=model_uris, tracking_uri=tracking_uri)
    if not models:
        click.echo(f"error: {NO_MODEL}", err=True)
        return EXIT_NOTHING_TO_DO
    _echo_models(quiet, models)
    if engine == "spark":
        from churnguard.spark import score_command_spark

        with _quiet_mlflow(quiet):
            run = score_command_spark(data, _as_of(as_of), out, models=models, capacity=capacity,
                                      tracking_uri=tracking_uri, rules=rules, spark_master=spark_master)
        _warn_problems(run.warnings)
        _echo_lists(quiet, run.n_listed, run.path, run.n_suppressed, run.suppressed_path)
        return EXIT_OK
    from churnguard.scoring import score as score_tables, write_outreach

    tables = _load(data, quiet).tables
    result = score_tables(
        tables,
        _as_of(as_of),
        models,
        rules=load_outreach_rules(rules),
        capacity=capacity,
        explain="all" if explain_all else "list",
        progress=not quiet,
    )
    path, suppressed = write_outreach(result, out)
    _echo_lists(quiet, len(result.outreach), path, len(result.suppressed), suppressed)
    return EXIT_OK


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output directory.")
@click.option("--customers", "n_customers", type=click.IntRange(min=500), default=None, help="World size.")
@click.option("--seed", type=int, default=1, show_default=True)
@tracking_option
@quiet_option
@_handle_errors
def demo(out, n_customers, seed, tracking_uri, quiet) -> int:
    """The whole job on embedded defaults: generate, train both models, score, report."""
    from churnguard.demo import run_demo

    kwargs = {"n_customers": n_customers} if n_customers else {}
    with _quiet_mlflow(quiet):
        paths = run_demo(out, seed=seed, quiet=quiet, tracking_uri=tracking_uri, **kwargs)
    for name, path in paths.items():
        click.echo(f"{name:>12}: {path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``churnguard`` console script."""
    try:
        cli.main(args=argv, prog_name="churnguard", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
