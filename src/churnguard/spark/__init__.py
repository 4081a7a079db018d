"""churnguard on Apache Spark: the same features, scores and reasons beyond one machine.

An optional extra (``pip install "churnguard[spark]"``: PySpark 4 and Java 17).
Nothing here re-implements feature or scoring logic: customers are sharded on a
stable hash of ``customer_id`` and each shard runs the single-machine pandas code.
"""

from churnguard.spark.features import (
    ShardedFeatures,
    build_features_spark,
    read_tables_spark,
    shard_features,
    shard_of,
)
from churnguard.spark.scoring import (
    NoModelError,
    SparkFeaturesRun,
    SparkScoreRun,
    features_command_spark,
    report_result,
    score_command_spark,
    score_spark,
    spark_udf,
    write_outreach_spark,
)
from churnguard.spark.session import java_available, spark_session

__all__ = [
    "NoModelError",
    "ShardedFeatures",
    "SparkFeaturesRun",
    "SparkScoreRun",
    "build_features_spark",
    "java_available",
    "features_command_spark",
    "read_tables_spark",
    "report_result",
    "score_command_spark",
    "score_spark",
    "shard_features",
    "shard_of",
    "spark_session",
    "spark_udf",
    "write_outreach_spark",
]
