"""Starting a Spark session for churnguard: local mode on this machine, or a cluster's master."""

from __future__ import annotations

import os
import sys
import warnings

# PySpark 4.x warns on every Arrow conversion that pandas 3 is "not yet fully supported";
# the equality tests against the single-machine path are what tell us it works.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "churnguard",
    shuffle_partitions: int | None = None,
    config: dict[str, str] | None = None,
):
    """Get (or create) a Spark session: ``local[*]`` without a master, else that cluster.

    Parameters
    ----------
    master : str, optional
        A Spark master URL (``spark://host:7077``, ``yarn``, ``k8s://...``,
        ``local[2]``). Default ``local[*]``: every core of this machine. Under
        ``spark-submit`` the master given there wins over this one.
    app_name : str, default="churnguard"
        Name shown in the Spark UI and the cluster manager.
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions``; by default twice the local cores in
        local mode and Spark's own default on a cluster.
    config : dict, optional
        Further Spark settings, e.g. ``{"spark.executor.memory": "8g"}``.

    Returns
    -------
    SparkSession

    Notes
    -----
    The session time zone is set to UTC: churnguard's timestamps are UTC, and a
    session in the driver's local zone would shift every event it hands to pandas.
    Arrow is enabled because every pandas hand-over (``applyInArrow``,
    ``mapInPandas``) goes through it.

    Examples
    --------
    >>> spark = spark_session("local[2]", shuffle_partitions=4)  # doctest: +SKIP
    >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
    'UTC'
    """
    from pyspark.sql import SparkSession

    local = master is None or master.startswith("local")
    if local:
        # Python workers must run the interpreter that has churnguard installed,
        # not whatever `python3` is first on the PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        # Without a master PySpark takes spark-submit's, or local[*] outside spark-submit.
        builder = builder.master(master)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # One shard's events become one Arrow batch stream; keep batches moderate.
        "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    }
    if local:
        settings["spark.ui.showConsoleProgress"] = "false"
        cores = os.cpu_count() or 2
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions or 2 * cores)
    elif shuffle_partitions:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if local:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def java_available() -> bool:
    """Whether a Java runtime is reachable (``JAVA_HOME`` or ``java`` on the PATH).

    Examples
    --------
    >>> isinstance(java_available(), bool)
    True
    """
    import shutil

    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None
