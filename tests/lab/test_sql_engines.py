"""The log from SQL engines: the printed DDL runs in DuckDB (always) and Spark (optional)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.ddl import table_ddl
from comply_lab.errors import InvalidQueryError
from comply_lab.sample import write_sample
from comply_lab.storage.s3 import S3Storage
from tests.conftest import new_bucket

END = datetime(2026, 4, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sealed days, plus one JSONL segment still open to appends."""
    path = tmp_path_factory.mktemp("it's a log")  # a quote in the path must not break SQL
    write_sample(
        lambda c: AuditLogger(FileStorage(path, format="parquet", fsync="never"), clock=c),
        800,
        4,
        end=END,
    ).close()
    with AuditLogger(FileStorage(path, fsync="never"), clock=lambda: END) as logger:
        logger.log_sync(input="q", output="a")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comply_lab.cli", *args], capture_output=True, text=True, check=False
    )


def test_duckdb_ddl_reads_every_sealed_entry(sealed: Path) -> None:
    done = _cli("ddl", "--engine", "duckdb", str(sealed))
    assert done.returncode == 0, done.stderr
    assert "1 JSONL segment(s) not yet sealed" in done.stdout
    connection = duckdb.connect()
    connection.execute(done.stdout)
    rows = connection.sql(
        "select id, epoch_us(timestamp), date, metadata->>'department', typeof(timestamp) "
        "from audit_log order by timestamp, id"
    ).fetchall()
    expected = open_log(sealed, progress=False).entries().iloc[:-1]  # the unsealed one is not in
    expected = expected.sort_values(["timestamp", "id"])
    assert [r[0] for r in rows] == expected["id"].tolist()
    micros = (expected["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    assert [r[1] for r in rows] == micros.tolist()  # every microsecond kept
    assert {r[4] for r in rows} == {"TIMESTAMP WITH TIME ZONE"}
    assert [r[2] for r in rows] == [t.date() for t in expected["timestamp"]]
    assert any(r[3] for r in rows)


@pytest.mark.parametrize("engine", ["spark", "trino", "duckdb"])
def test_every_engine_names_every_column(sealed: Path, engine: str) -> None:
    from comply_lab.storage.arrow import COLUMNS

    text = table_ddl(FileStorage(sealed), engine)
    escaped = {"duckdb": "it''s a log0/date=*/*.parquet", "trino": "it''s a log0/"}
    assert escaped.get(engine, "it\\'s a log0/") in text  # a quote in the path, escaped
    if engine != "duckdb":
        quote = '"' if engine == "trino" else "`"
        assert all(f"{quote}{name}{quote}" in text for name in [*COLUMNS, "date"])


def test_athena_uses_partition_projection_from_the_first_day(s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    storage = S3Storage(bucket, "prod/audit/", endpoint_url=s3_endpoint, spool_dir=":memory:")
    with AuditLogger(storage, clock=lambda: END) as logger:
        logger.log_sync(input="q", output="a")
    text = table_ddl(storage, "athena")
    assert f"LOCATION 's3://{bucket}/prod/audit/'" in text
    assert "'projection.date.range' = '2026-04-02,NOW'" in text
    assert f"'storage.location.template' = 's3://{bucket}/prod/audit/date=${{date}}/'" in text
    assert "s3a://" in table_ddl(storage, "spark")


def test_unusable_requests_are_refused(s3_endpoint: str, sealed: Path) -> None:
    with pytest.raises(InvalidQueryError, match="choose one of athena, spark, trino, duckdb"):
        table_ddl(FileStorage(sealed), "oracle")
    with pytest.raises(InvalidQueryError, match="letters, digits and underscores"):
        table_ddl(FileStorage(sealed), "duckdb", "audit; drop table x")
    with pytest.raises(InvalidQueryError, match="s3:// URL"):
        table_ddl(FileStorage(sealed), "athena")
    with pytest.raises(InvalidQueryError, match="no location an SQL engine can read"):
        table_ddl(MemoryStorage(), "duckdb")
    jsonl = S3Storage(
        new_bucket(s3_endpoint),
        "a/",
        format="jsonl",
        endpoint_url=s3_endpoint,
        spool_dir=":memory:",
    )
    with AuditLogger(jsonl, clock=lambda: END) as logger:
        logger.log_sync(input="q", output="a")
    with pytest.raises(InvalidQueryError, match="format='parquet'"):
        table_ddl(jsonl, "athena")
    done = _cli("ddl", "--engine", "athena", str(sealed))
    assert done.returncode == 2 and done.stderr.startswith("error: Athena reads tables from S3")


def _spark_ready() -> bool:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return False
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.skipif(not _spark_ready(), reason="needs Java and pyspark (make spark)")
def test_spark_reads_counts_and_timestamps(sealed: Path) -> None:
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # loopback only

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    try:
        text = table_ddl(FileStorage(sealed), "spark")
        code = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        for statement in code.split(";"):
            if statement.strip():
                spark.sql(statement)
        rows = spark.sql(
            "select id, unix_micros(timestamp), date from audit_log order by timestamp, id"
        ).collect()
        per_day = spark.sql("select date, count(*) from audit_log group by date").collect()
    finally:
        spark.stop()
    expected = open_log(sealed, progress=False).entries().iloc[:-1]
    expected = expected.sort_values(["timestamp", "id"])
    assert [r[0] for r in rows] == expected["id"].tolist()
    micros = (expected["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    assert [r[1] for r in rows] == micros.tolist()  # every microsecond kept
    assert all(r[2] == t.date() for r, t in zip(rows, expected["timestamp"], strict=True))
    counts = expected["timestamp"].dt.date.value_counts()
    assert {r[0]: r[1] for r in per_day} == counts.to_dict()
