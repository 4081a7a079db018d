"""Scoring on Spark: the probability as an MLflow Spark UDF.

The registered churnguard models are MLflow pyfunc models whose ``predict`` returns
the calibrated probability of the positive class, so MLflow's own Spark UDF serves
teams that already score that way. The model is loaded once per Python worker by
MLflow and applied to Arrow batches of feature rows.
"""

from __future__ import annotations


def spark_udf(spark, model_uri: str, *, env_manager: str = "local"):
    """The probability of a registered churnguard model, as a Spark UDF over feature columns.

    Parameters
    ----------
    spark : SparkSession
    model_uri : str
        Any MLflow model URI: ``models:/churnguard-churn@champion``,
        ``runs:/<run_id>/model``, a local or cloud path.
    env_manager : str, default="local"
        MLflow's environment manager for the executors; ``"local"`` uses the
        executors' own Python (churnguard installed there), ``"virtualenv"`` or
        ``"conda"`` rebuild the model's logged environment.

    Returns
    -------
    pyspark UDF
        Call it on the feature columns of :func:`churnguard.spark.build_features_spark`;
        it returns a double.

    Examples
    --------
    >>> from pyspark.sql import functions as F  # doctest: +SKIP
    >>> churn = spark_udf(spark, "models:/churnguard-churn@champion")  # doctest: +SKIP
    >>> features = build_features_spark(spark, "s3a://lake/crm", "2024-06-01")  # doctest: +SKIP
    >>> scored = features.withColumn(  # doctest: +SKIP
    ...     "churn_probability", churn(F.struct(*[c for c in features.columns if c != "customer_id"])))
    """
    import mlflow.pyfunc

    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager=env_manager)


__all__ = ["spark_udf"]
