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

from churnguard.cli_options import IsoDate, check_output_file
from churnguard.freshness import STALE_AFTER_DAYS

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
    """Keep MLflow's progress bars, INFO logs and registry banners out of churnguard's output.

    Always, not only under --quiet: churnguard says what was registered and loaded in its
    own words, once. MLflow's warnings and errors still reach stderr; the settings are
    restored afterwards (the CLI also runs in-process, in tests and notebooks).
    """
    import mlflow  # noqa: F401  (MLflow sets its loggers' levels on import: import first, then quiet them)

    # Progress bars of artifact transfers, and the run/experiment links MLflow writes to
    # stdout when a run against a server ends (the summary names the run).
    settings = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stderr(_DropBanners(sys.stderr)):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Bad-input exception types by module: looked up only once raised, so that a command
# refused up front (a wrong --out) never pays for importing training or validation.
_BAD_INPUT_TYPES = (("churnguard.validation", "ValidationError"), ("churnguard.training.model", "SchemaMismatchError"),
                    ("churnguard.duck", "DuckSettingsError"), ("churnguard.mapping", "MappingError"))


def _is_bad_input(err: BaseException) -> bool:
    if isinstance(err, BadInput):
        return True
    for module, name in _BAD_INPUT_TYPES:
        loaded = sys.modules.get(module)  # an instance of the type means its module is loaded
        if loaded is not None and isinstance(err, getattr(loaded, name)):
            return True
    return False


def _handle_errors(command):
    """Map known bad-input exceptions to exit code 2 with a clean message."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            code = command(*args, **kwargs)
        except Exception as err:
            if not _is_bad_input(err):
                raise
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(code or EXIT_OK)

    return wrapper


def _load(data: Path, quiet: bool, *, drop_duplicates: bool = False, over_files: bool = False,
          mapping: Path | None = None) -> tuple:
    """Load and validate a data dir; returns the result and its warnings as sentences (not yet printed).

    With `over_files` the event tables stay in DuckDB over the files (bounded memory).
    `mapping` is the --mapping file (default: the data dir's churnguard.toml, if any).
    """
    if over_files:
        from churnguard.relations import load_relations as load_data
    else:
        from churnguard.validation import load_data

    result = load_data(data, drop_duplicates=drop_duplicates, mapping=mapping)
    messages = []
    for problem in result.warnings:
        message = str(problem)
        if problem.check.startswith("no_exact_duplicate (kept)"):
            message += " (exact duplicate rows; --drop-duplicates drops them)"
        messages.append(message)
    return result, messages


def _input_warnings(messages: list[str], strict: bool) -> None:
    """Print each warning about the input once; under --strict, stop with exit code 2 instead of going on."""
    for message in messages:
        _warn(message)
    if strict and messages:
        raise BadInput(f"--strict: stopping on the {len(messages)} warning(s) above; nothing was written")


def _as_of_messages(tables, as_of, stale_after_days: int, option: str = "--as-of") -> list[str]:
    from churnguard.freshness import as_of_warnings

    return [f"{option} {message}" for message in as_of_warnings(tables, as_of, stale_after_days=stale_after_days)]


def _load_models(model_uris: tuple[str, ...], tracking_uri: str | None) -> dict:
    """Each task's model, resolved before any data is read; a URI that does not resolve is bad input naming it."""
    from mlflow.exceptions import MlflowException

    from churnguard.training import load_models
    from churnguard.training import default_tracking_uri

    if not model_uris:
        try:
            return load_models(tracking_uri=tracking_uri)
        except MlflowException as err:
            raise BadInput(f"--tracking-uri {tracking_uri or default_tracking_uri()}: cannot read the model "
                           f"registry: {_first_line(err)}") from None
    models: dict = {}
    for uri in model_uris:
        try:
            loaded = load_models(model_uris=(uri,), tracking_uri=tracking_uri)
        except (MlflowException, OSError, ValueError) as err:
            raise BadInput(f"--model {uri}: cannot load it: {_first_line(err)}") from None
        for task, model in loaded.items():
            if task in models:
                raise BadInput(f"--model {uri}: a second model for task {task} (the first is {models[task].uri})")
            models[task] = model
    return models


def _config(option: str, loader, path, **kwargs):
    """Load a TOML config named by `option`; a bad file is bad input naming the option and the file."""
    try:
        return loader(path, **kwargs)
    except (ValueError, TypeError) as err:  # TOMLDecodeError is a ValueError; unknown keys, bad values too
        text = str(err)
        # The config loaders name the file themselves; say it once.
        raise BadInput(f"{option} {text}" if text.startswith(str(path)) else f"{option} {path}: {text}") from None


def _first_line(err: BaseException) -> str:
    text = getattr(err, "message", None) or str(err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


# Summary lines of `train`: train_task also logs them as it goes; the summary says them once.
_SUMMARY_MESSAGES = ("promoted to champion", "stays challenger")


# Both engines' messages, worded once.


def _warn_problems(problems) -> None:
    for problem in problems:
        _warn(
            f"{problem.table}.{problem.column}: {problem.n_rows} rows fail {problem.check}, "
            f"e.g. {list(problem.examples)}"
        )


def _echo_models(quiet: bool, models) -> None:
    for task, model in models.items():
        _echo(quiet, f"{task}: {model.name or 'model'} v{model.version or '?'}")


def _echo_lists(quiet: bool, n_listed: int, path, n_suppressed: int, suppressed_path) -> None:
    _echo(quiet, f"{n_listed:,} customers ranked -> {path}")
    _echo(quiet, f"{n_suppressed:,} suppressed -> {suppressed_path}")


def _echo_controls(quiet: bool, held: dict[str, int], control_path, rules) -> None:
    from churnguard.outreach import control_share

    per_action = ", ".join(f"{action} {n:,} ({control_share(action, rules):.0%} share)" for action, n in held.items())
    _echo(quiet, f"{sum(held.values()):,} held out as control, DO NOT CONTACT -> {control_path}"
                 + (f": {per_action}" if per_action else ""))


def _echo_profit(quiet: bool, curve, capacity: int | None, n_listed: int, rules) -> None:
    if curve is None:
        return
    _echo(quiet, f"calling the top {curve.best_k:,} maximises expected profit: {rules.money(curve.best_profit)}")
    if capacity is not None and n_listed < curve.best_k:
        earned = curve.at(n_listed)
        share = earned / curve.best_profit if curve.best_profit > 0 else float("nan")
        _echo(quiet, f"--capacity {capacity:,} calls {n_listed:,}: expected profit {rules.money(earned)} "
                     f"({share:.0%} of the maximum)")


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
mapping_option = click.option(
    "--mapping",
    "mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Mapping file: each table's source file, delimiter, encoding, columns, date formats, constants "
    "(default: churnguard.toml in the --data directory, if there is one).",
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


def _refuse_mapping_on_spark(data: str, mapping: Path | None) -> None:
    """Spark reads the contract's own names: a mapping it would ignore is refused, not skipped."""
    from churnguard.mapping import MAPPING_FILE

    if mapping is not None:
        raise click.UsageError("--mapping is not available with --engine spark")
    if (Path(data) / MAPPING_FILE).is_file():
        raise click.UsageError(f"--engine spark reads the contract's file and column names and would ignore "
                               f"{Path(data) / MAPPING_FILE}; use --engine pandas")


def _local_dir(data: str) -> Path:
    path = Path(data)
    if not path.is_dir():
        raise click.BadParameter(f"directory {data!r} does not exist", param_hint="--data")
    return path


strict_option = click.option(
    "--strict", is_flag=True,
    help="Treat every warning about the input (the date, dropped or duplicate rows) as an error: exit 2.",
)
drop_duplicates_option = click.option(
    "--drop-duplicates", is_flag=True,
    help="Drop event rows that repeat an earlier row exactly (a double export); they are always counted.",
)
stale_option = click.option(
    "--stale-after-days", type=click.IntRange(min=0), default=STALE_AFTER_DAYS, show_default=True,
    help="Warn when --as-of is more than this many days after the newest event in the data.",
)


def _input_options(command):
    for option in (strict_option, drop_duplicates_option, stale_option):
        command = option(command)
    return command


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
@click.option(
    "--block-size", type=click.IntRange(min=1), default=None,
    help="Customers one process simulates at a time (memory per process) [default: one shard of customers]; "
    "the files do not depend on it.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Processes simulating blocks side by side [default: one per core]; the files do not depend on it.",
)  # fmt: skip
@click.option("--campaigns/--no-campaigns", default=False, show_default=True,
              help="Also simulate past retention-call campaigns: outreach_log and their uplift_truth.")
@quiet_option
@_handle_errors
def generate(
    n_customers: int, seed: int, out: Path, fmt: str, block_size: int | None, workers: int | None,
    campaigns: bool, quiet: bool
) -> int:
    """Generate a synthetic customer world, including the ground-truth `truth` table."""
    from churnguard.synthetic import SHARD_SIZE, generate_world_files

    written = generate_world_files(
        out, n_customers, seed=seed, fmt=fmt, progress=not quiet,
        block_size=block_size or SHARD_SIZE, workers=workers, campaigns=campaigns,
    )  # fmt: skip
    for name, table in written.items():
        _echo(quiet, f"{name:>15}: {table.rows:>12,} rows -> {table.path}")
    return EXIT_OK


@cli.command()
@data_option
@mapping_option
@drop_duplicates_option
@strict_option
@quiet_option
@_handle_errors
def validate(data: Path, mapping: Path | None, drop_duplicates: bool, strict: bool, quiet: bool) -> int:
    """Check a data directory against the data contract and report problems."""
    from churnguard.validation import summarize

    result, messages = _load(data, quiet, drop_duplicates=drop_duplicates, mapping=mapping)
    if not quiet:
        if result.mapping is not None:
            click.echo(f"mapping {result.mapping.path}:")
            click.echo("\n".join(f"  {line}" for line in result.mapping.to_toml().splitlines()))
        click.echo(summarize(result))  # the warnings are part of the report
    else:
        for message in messages:
            _warn(message)
    if strict and messages:
        raise BadInput(f"--strict: {len(messages)} warning(s) about the input")
    return EXIT_OK


@cli.command()
@click.option("--data", "data", help="Data directory (or a Spark-readable URI with --engine spark).")
@click.option("--as-of", "as_of", type=IsoDate(),
              help="Cut-off: YYYY-MM-DD (UTC midnight) or an ISO datetime with offset; only events strictly "
                   "before it are used.")
@click.option("--out", help="Output file (.csv or .parquet).")
@click.option("--feature-set", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Feature-set TOML.")
@click.option("--list", "list_", is_flag=True, help="Print the feature catalogue instead of building features.")
@mapping_option
@_input_options
@_engine
@quiet_option
@_handle_errors
def features(data, as_of, out, feature_set, list_, mapping, strict, drop_duplicates, stale_after_days, engine,
             spark_master, quiet) -> int:
    """Build one feature row per customer as of a date (or list the catalogue)."""
    from churnguard.config import load_feature_set

    if list_:
        from churnguard.features import feature_catalogue

        fs = _config("--feature-set", load_feature_set, feature_set)
        tables = _load(_local_dir(data), quiet, drop_duplicates=drop_duplicates,
                       mapping=mapping)[0].tables if data else None
        when = as_of
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
    fs = _config("--feature-set", load_feature_set, feature_set)
    if engine == "spark":
        _refuse_mapping_on_spark(data, mapping)
        from churnguard.spark import features_command_spark

        run = features_command_spark(data, as_of, out, feature_set=fs, spark_master=spark_master)
        _warn_problems(run.warnings)
        _echo_features(quiet, run.n_customers, run.n_features, run.path)
        return EXIT_OK
    check_output_file(out)
    data = _local_dir(data)
    from churnguard.features.chunks import feature_chunks
    from churnguard.io import categories_as_text, write_table_parts

    loaded, messages = _load(data, quiet, drop_duplicates=drop_duplicates, over_files=True, mapping=mapping)
    _input_warnings(messages + _as_of_messages(loaded.tables, as_of, stale_after_days), strict)
    # Chunks of customers keep memory bounded by a chunk; categories as text: the file is
    # also what the registered pyfunc model reads (README).
    chunks = feature_chunks(loaded.tables, as_of, feature_set=fs, progress=not quiet)
    n_rows, columns = write_table_parts((categories_as_text(frame) for frame in chunks), out)
    _echo_features(quiet, n_rows, len(columns) - 1, out)
    return EXIT_OK


@cli.command()
@data_option
@click.option("--task", type=click.Choice(["churn", "maintenance", "uplift"]), required=True,
              help="churn, maintenance, or uplift: whom a call keeps, learned from outreach_log's control groups.")
@click.option("--as-of", "as_of", type=IsoDate(),
              help="Train as if today were this date (YYYY-MM-DD or ISO datetime with offset): nothing after it "
                   "is used.")
@click.option("--horizon", "horizon", type=click.IntRange(min=1), help="Label horizon in days (overrides the spec).")
@click.option("--n-cutoffs", "n_cutoffs", type=click.IntRange(min=1),
              help="Training cutoffs to stack (overrides the spec; validation and held-out ones come on top).")
@click.option("--cutoff-step", "cutoff_step", type=click.IntRange(min=1),
              help="Days between training cutoffs (overrides the spec's 30; 7 suits short horizons).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Model spec TOML.")
@mapping_option
@_input_options
@tracking_option
@quiet_option
@_handle_errors
def train(data, task, as_of, horizon, n_cutoffs, cutoff_step, spec, mapping, strict, drop_duplicates,
          stale_after_days, tracking_uri, quiet) -> int:
    """Train, evaluate and register a model for one task in MLflow."""
    from dataclasses import replace

    from churnguard.config import load_model_spec

    if task == "uplift":
        for option, value in (("--n-cutoffs", n_cutoffs), ("--cutoff-step", cutoff_step)):
            if value:
                raise BadInput(f"{option} does not apply to --task uplift: it learns from the list dates in "
                               "outreach_log")
        return _train_uplift(data, as_of, horizon, spec, strict, drop_duplicates, stale_after_days, tracking_uri,
                             quiet, mapping)

    model_spec = _config("--spec", load_model_spec, spec) if spec else load_model_spec(task=task)
    if model_spec.task != task:
        raise BadInput(f"--spec {spec} is for task {model_spec.task!r}, not {task!r}")
    if horizon:
        model_spec = replace(model_spec, horizon_days=horizon)
    if n_cutoffs:
        model_spec = replace(model_spec, n_cutoffs=n_cutoffs)
    if cutoff_step:
        model_spec = replace(model_spec, cutoff_step_days=cutoff_step)
    _check_task_files(data, task, mapping)
    from churnguard.labels import label_tables_problem

    loaded, messages = _load(data, quiet, drop_duplicates=drop_duplicates, mapping=mapping)
    if (problem := label_tables_problem(loaded.tables, task, definition=model_spec.label)) is not None:
        raise BadInput(f"train --task {task}: {problem} (in {data})")
    if as_of is not None:
        messages += _as_of_messages(loaded.tables, as_of, stale_after_days)
    _input_warnings(messages, strict)
    truth = _truth(data)
    from churnguard.training import train_task

    def log(message: str) -> None:
        if not quiet and not message.startswith(_SUMMARY_MESSAGES):
            click.echo(message, err=True)

    from churnguard.training import NotEnoughHistory

    try:
        with _quiet_mlflow(quiet):
            result = train_task(loaded.tables, model_spec, as_of=as_of, tracking_uri=tracking_uri, truth=truth,
                                progress=not quiet, log=log)
    except NotEnoughHistory as err:
        raise BadInput(f"train --task {task} on {data}: {err}") from None
    click.echo(result.summary())
    return EXIT_OK


def _train_uplift(data, as_of, horizon, spec, strict, drop_duplicates, stale_after_days, tracking_uri, quiet,
                  mapping=None) -> int:
    """train --task uplift: the uplift model from past lists with a control group (exit 3 without one)."""
    from dataclasses import replace

    from churnguard.config import load_uplift_spec

    uplift_spec = _config("--spec", load_uplift_spec, spec)
    if horizon:
        uplift_spec = replace(uplift_spec, horizon_days=horizon)
    loaded, messages = _load(data, quiet, drop_duplicates=drop_duplicates, mapping=mapping)
    if as_of is not None:
        messages += _as_of_messages(loaded.tables, as_of, stale_after_days)
    _input_warnings(messages, strict)
    from churnguard.training.uplift import NoCampaign, train_uplift

    def log(message: str) -> None:
        if not quiet and not message.startswith(("promoted to champion", "kept as challenger")):
            click.echo(message, err=True)

    try:
        with _quiet_mlflow(quiet):
            result = train_uplift(loaded.tables, uplift_spec, as_of=as_of, tracking_uri=tracking_uri,
                                  truth=_uplift_truth(data), progress=not quiet, log=log)
    except NoCampaign as err:
        click.echo(f"error: train --task uplift on {data}: {err}", err=True)
        return EXIT_NOTHING_TO_DO
    click.echo(result.summary())
    return EXIT_OK


def _uplift_truth(data: Path):
    """The generator's true effect of each past campaign's call, when the data dir is a generated world."""
    from churnguard.io import read_raw_table, table_path

    path = table_path(data, "uplift_truth")
    return None if path is None else read_raw_table(path)


def _uplift_uris(model_uris: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`model_uris` split into the uplift model's (``churnguard-uplift``, a folder with uplift.json) and the tasks'."""
    from churnguard.training.uplift_model import UPLIFT_FILE

    def is_uplift(uri: str) -> bool:
        folder = Path(uri)
        return "churnguard-uplift" in uri or ("://" not in uri and folder.is_dir() and any(folder.rglob(UPLIFT_FILE)))

    uplift = tuple(u for u in model_uris if is_uplift(u))
    if len(uplift) > 1:
        raise BadInput(f"--model {uplift[1]}: a second uplift model (the first is {uplift[0]})")
    return uplift, tuple(u for u in model_uris if u not in uplift)


def _load_uplift(uplift_uris: tuple[str, ...], tracking_uri: str | None, *, given: bool):
    """The uplift model given by --model, else (no --model at all) the registered champion, else None."""
    from mlflow.exceptions import MlflowException

    from churnguard.training.uplift_registry import load_uplift_model

    if given and not uplift_uris:
        return None
    try:
        return load_uplift_model(tracking_uri=tracking_uri, model_uri=uplift_uris[0] if uplift_uris else None)
    except (MlflowException, OSError, ValueError) as err:
        where = f"--model {uplift_uris[0]}" if uplift_uris else f"--tracking-uri {tracking_uri or 'default'}"
        raise BadInput(f"{where}: cannot load the uplift model: {_first_line(err)}") from None


def _check_task_files(data: Path, task: str, mapping: Path | None = None) -> None:
    """Refuse a task whose tables are not in the data dir at all, before reading any of it."""
    from churnguard.validation import table_files

    found = table_files(data, ("assets", "labels"), mapping=mapping)[0]
    if task == "maintenance" and not found.keys() & {"assets", "labels"}:
        raise BadInput(f"train --task maintenance: {data} has no assets table (assets.csv or assets.parquet) "
                       "and no labels table to take maintenance labels from; maintenance labels are repairs "
                       "and failures on the customers' installed products")


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
@click.option("--as-of", "as_of", required=True, type=IsoDate(),
              help="Score as of this date: YYYY-MM-DD (UTC midnight) or an ISO datetime with offset.")
@click.option("--out", required=True, help="Outreach list file (.csv or .parquet); the suppressed list goes beside it.")
@click.option("--capacity", type=click.IntRange(min=0), help="At most this many customers on the list.")
@click.option("--model", "model_uris", multiple=True, help="Model URI (repeatable; default: each task's champion).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Outreach rules TOML.")
@click.option("--explain-all", is_flag=True, help="Compute SHAP reasons for every customer, not only the list.")
@click.option("--report", "report", default=None,
              help="Also write the HTML report (the ranked list to work from, then summary, models, drift) here.")
@mapping_option
@_input_options
@tracking_option
@_engine
@quiet_option
@_handle_errors
def score(data, as_of, out, capacity, model_uris, rules, explain_all, report, mapping, strict, drop_duplicates,
          stale_after_days, tracking_uri, engine, spark_master, quiet) -> int:
    """Score customers and write the ranked outreach list with reasons."""
    # Everything that can be refused without reading the data is refused first: a nightly
    # job must not score ten million customers to learn that the file name was wrong.
    check_output_file(out)
    if report is not None:
        check_output_file(report, option="--report", suffixes=(".html",))
    from churnguard.config import load_outreach_rules

    outreach_rules = _config("--rules", load_outreach_rules, rules)
    if engine == "spark" and explain_all:
        raise click.UsageError("--explain-all is not available with --engine spark")
    if engine == "spark":
        _refuse_mapping_on_spark(data, mapping)
    if engine == "pandas":
        data = _local_dir(data)
    uplift_uris, task_uris = _uplift_uris(model_uris)
    with _quiet_mlflow(quiet):
        models = _load_models(task_uris, tracking_uri)
    if not models:
        click.echo(f"error: {NO_MODEL}", err=True)
        return EXIT_NOTHING_TO_DO
    with _quiet_mlflow(quiet):
        uplift = _load_uplift(uplift_uris, tracking_uri, given=bool(model_uris))
    if uplift is not None and "churn" not in models:
        if uplift.version is None or uplift.uri != f"models:/{uplift.name}@champion":
            raise BadInput(f"--model {uplift.uri}: the uplift model prices retention calls and needs a churn model")
        _warn(f"{uplift.name} v{uplift.version} is not used: it prices retention calls, and no churn model is "
              "registered")
        uplift = None
    _echo_models(quiet, {**models, **({"uplift": uplift} if uplift is not None else {})})
    if engine == "spark":
        from churnguard.spark import score_command_spark

        if uplift is not None:
            _warn(f"{uplift.name or 'the uplift model'} is not used with --engine spark yet: retention calls are "
                  "priced by churn risk")

        with _quiet_mlflow(quiet):
            run = score_command_spark(data, as_of, out, models=models, capacity=capacity,
                                      tracking_uri=tracking_uri, rules=rules, spark_master=spark_master,
                                      report=report)
        _warn_problems(run.warnings)
        _echo_lists(quiet, run.n_listed, run.path, run.n_suppressed, run.suppressed_path)
        _echo_controls(quiet, run.held_out, run.control_path, outreach_rules)
        _echo_profit(quiet, run.profit, capacity, run.n_listed, outreach_rules)
        if report is not None:
            _echo(quiet, f"report -> {report}")
        return EXIT_OK
    loaded, messages = _load(data, quiet, drop_duplicates=drop_duplicates, over_files=True, mapping=mapping)
    _input_warnings(messages + _as_of_messages(loaded.tables, as_of, stale_after_days), strict)
    from churnguard.scoring import score as score_tables, write_outreach

    result = score_tables(
        loaded.tables,
        as_of,
        models,
        rules=outreach_rules,
        capacity=capacity,
        explain="all" if explain_all else "list",
        progress=not quiet,
        uplift=uplift,
    )
    if report is not None:
        from churnguard.report import write_report

        # The report first: it is rendered from memory, and if the lists then fail to
        # write, the report goes too, so a run leaves all of its files or none.
        write_report(result, report, models=models)
    try:
        path, suppressed = write_outreach(result, out)
    except BaseException:
        if report is not None:
            Path(report).unlink(missing_ok=True)
        raise
    _echo_lists(quiet, len(result.outreach), path, len(result.suppressed), suppressed)
    from churnguard.io import sibling_path

    _echo_controls(quiet, result.held_out_per_action(), sibling_path(path, "control"), result.rules)
    _echo_profit(quiet, result.profit, capacity, len(result.outreach), result.rules)
    if report is not None:
        _echo(quiet, f"report -> {report}")
    return EXIT_OK


@cli.command()
@data_option
@click.option("--list-date", "list_date", type=IsoDate(),
              help="Measure only the lists of this date (YYYY-MM-DD); default every list in outreach_log.")
@click.option("--out", required=True, help="Impact rows (.csv or .parquet): per list date, action and segment.")
@click.option("--horizon", "horizon", type=click.IntRange(min=1),
              help="Outcome window in days after the list date (default: the task's model spec, 90).")
@click.option("--min-group", "min_group", type=click.IntRange(min=1), default=30, show_default=True,
              help="Fewest customers per group (treatment and control) for a campaign to count as measured.")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Outreach rules TOML (contact costs per channel, default value, maintenance cost).")
@click.option("--report", "report", default=None, help="Also write the impact section as an HTML page here.")
@mapping_option
@tracking_option
@quiet_option
@_handle_errors
def impact(data, list_date, out, horizon, min_group, rules, report, mapping, tracking_uri, quiet) -> int:
    """What past outreach saved: treatment against control, with intervals (exit 3 when too small to tell)."""
    check_output_file(out)
    if report is not None:
        check_output_file(report, option="--report", suffixes=(".html",))
    from churnguard.config import load_outreach_rules

    outreach_rules = _config("--rules", load_outreach_rules, rules)
    loaded, messages = _load(data, quiet, mapping=mapping)
    _input_warnings(messages, strict=False)
    from churnguard.impact import NothingToMeasure, measure_impact

    try:
        result = measure_impact(loaded.tables, list_date=list_date, rules=outreach_rules, horizon_days=horizon,
                                min_group=min_group)
    except NothingToMeasure as err:
        click.echo(f"error: nothing to do: {err} (in {data})", err=True)
        return EXIT_NOTHING_TO_DO
    from mlflow.exceptions import MlflowException

    from churnguard.impact import log_impact_run, write_impact_report
    from churnguard.io import write_table

    # The run first: a tracking store that cannot be written is refused before any file appears.
    try:
        with _quiet_mlflow(quiet):
            run_id = log_impact_run(result, tracking_uri=tracking_uri)
    except MlflowException as err:
        raise BadInput(f"--tracking-uri {tracking_uri or 'default'}: cannot log the impact run: "
                       f"{_first_line(err)}") from None
    if report is not None:
        write_impact_report(result, report)
    try:
        write_table(result.rows, out)
    except BaseException:
        if report is not None:
            Path(report).unlink(missing_ok=True)
        raise
    for line in result.summary_lines():
        _echo(quiet, line)
    _echo(quiet, f"{len(result.rows):,} rows -> {out}" + (f"; report -> {report}" if report else "")
          + f"; MLflow run {run_id}")
    refusals = result.refusals()
    if result.n_measured == 0:
        click.echo("error: no campaign could be measured (the rows are written):\n  " + "\n  ".join(refusals),
                   err=True)
        return EXIT_NOTHING_TO_DO
    for line in refusals:
        _warn(line)
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
    # numpy asks Linux for transparent huge pages on every large array. A batch job
    # allocates and frees such arrays by the hundred; on this project's VMs the huge-page
    # faults (compaction, 2 MiB zeroing) cost `score` on 1M customers 10 s of system time
    # and 7 s of wall (benchmarks/README.md). Read by numpy at import; a user's setting wins.
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    try:
        cli.main(args=argv, prog_name="churnguard", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
