"""The log on Dask: a 2-worker LocalCluster reading local files and the local S3 server.

Every figure computed through Dask is compared with the pandas result on the same data:
rows and dtypes identical, counts and rates exact, percentiles within the sketch's
documented 0.5%.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from comply_lab import AuditLogger, UnknownValueWarning, open_log
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.errors import InvalidQueryError, StorageError
from comply_lab.lab import sketch, stats
from comply_lab.sample import write_sample
from comply_lab.storage.s3 import S3Storage
from tests.conftest import new_bucket

pytestmark = pytest.mark.slow  # a LocalCluster of worker processes

distributed = pytest.importorskip("distributed")

END = datetime(2026, 3, 10, tzinfo=UTC)
DAYS = 6
ENTRIES = 3000


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Iterator[distributed.Client]:
    """Two worker processes, started after the S3 settings are in the environment."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _fill(storage: FileStorage | S3Storage) -> None:
    write_sample(lambda c: AuditLogger(storage, clock=c), ENTRIES, DAYS, end=END).close()


@pytest.fixture(scope="module")
def local_log() -> Path:
    """Sealed Parquet days plus a day still in JSONL: the scan reads both."""
    path = Path(tempfile.mkdtemp(prefix="comply-lab-dask-"))
    _fill(FileStorage(path, format="parquet", fsync="never"))
    with AuditLogger(FileStorage(path, fsync="never"), clock=lambda: END) as logger:
        logger.log_sync(input="late", output="entry", model="gpt-4o", latency_ms=12.5)
    return path


@pytest.fixture(scope="module")
def s3_log(s3_endpoint: str) -> str:
    bucket = new_bucket(s3_endpoint)
    storage = S3Storage(bucket, "audit/", endpoint_url=s3_endpoint, spool_dir=":memory:")
    _fill(storage)
    return f"s3://{bucket}/audit/"


@pytest.fixture(params=["local", "s3"])
def log_path(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_log"))


def test_rows_and_dtypes_equal_entries(client: distributed.Client, log_path: str) -> None:
    log = open_log(log_path, progress=False)
    frame = log.to_dask()
    expected = log.entries()
    assert frame.npartitions == DAYS + 1 or frame.npartitions == DAYS
    assert frame.dtypes.to_dict() == expected.dtypes.to_dict()  # declared, not inferred
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), expected)


def test_filters_columns_and_pruning(client: distributed.Client, log_path: str) -> None:
    log = open_log(log_path, progress=False)
    args = ("2026-03-07", "2026-03-08")
    options = {"model": ["gpt-4o"], "columns": ["timestamp", "model", "latency_ms"]}
    frame = log.to_dask(*args, metadata_keys=["department"], **options)  # type: ignore[arg-type]
    assert frame.npartitions == 2  # only the days in range
    expected = log.entries(*args, metadata_keys=["department"], **options)  # type: ignore[arg-type]
    assert list(frame.columns) == ["timestamp", "model", "latency_ms", "department"]
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), expected)


def test_empty_range_has_the_schema(client: distributed.Client, local_log: Path) -> None:
    log = open_log(local_log, progress=False)
    frame = log.to_dask("2020-01-01", "2020-01-02", columns=["id", "safety_passed"])
    assert len(frame.compute()) == 0
    with pytest.warns(UnknownValueWarning, match="the log holds days"):
        empty = log.entries("2020-01-01", "2020-01-02")
    assert frame.dtypes.to_dict() == empty.dtypes[["id", "safety_passed"]].to_dict()


@pytest.mark.parametrize("by", [None, "model", ["provider", "day"], "department"])
def test_statistics_match_pandas(
    client: distributed.Client, log_path: str, by: str | list[str] | None
) -> None:
    log = open_log(log_path, progress=False)
    frame, expected = log.to_dask(), log.entries()
    pd.testing.assert_frame_equal(stats.safety_rates(frame, by), stats.safety_rates(expected, by))
    pd.testing.assert_frame_equal(stats.detector_counts(frame), stats.detector_counts(expected))
    ours, exact = stats.latency_stats(frame, by), stats.latency_stats(expected, by)
    keys = [c for c in exact.columns if not c.endswith("_ms") and c != "count"]
    pd.testing.assert_frame_equal(ours[[*keys, "count"]], exact[[*keys, "count"]])
    pd.testing.assert_series_equal(ours["max_ms"], exact["max_ms"])
    pd.testing.assert_series_equal(ours["mean_ms"], exact["mean_ms"], rtol=1e-9)
    for column in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"):
        pd.testing.assert_series_equal(ours[column], exact[column], rtol=sketch.ALPHA * 1.001)


def test_sketch_is_exact_on_whole_milliseconds() -> None:
    values = pd.Series([0.0, 0.0, 3.0, 7.0, 7.0, 120.0, 950.0, 2500.0] * 11)
    merged = pd.concat(
        [_buckets(values.iloc[:30]), _buckets(values.iloc[30:])]  # two partitions
    )
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        assert sketch.percentile(merged, q) == pytest.approx(values.quantile(q), rel=1e-12)


def test_sketch_error_is_bounded_on_continuous_values() -> None:
    values = pd.Series(range(1, 5001), dtype="float64") ** 1.7 / 3.1
    merged = _buckets(values)
    for q in (0.01, 0.25, 0.5, 0.9, 0.99):
        assert sketch.percentile(merged, q) == pytest.approx(values.quantile(q), rel=sketch.ALPHA)
    assert sketch.percentile(merged.iloc[0:0], 0.5) != sketch.percentile(merged.iloc[0:0], 0.5)


def _buckets(values: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"bucket": sketch.bucket_of(values), "n": 1, "total": values, "lo": values, "hi": values}
    )
    return (
        frame.groupby("bucket")
        .agg(n=("n", "sum"), total=("total", "sum"), lo=("lo", "min"), hi=("hi", "max"))
        .reset_index()
    )


def test_pandas_only_statistics_refuse_dask(local_log: Path) -> None:
    frame = open_log(local_log, progress=False).to_dask()
    with pytest.raises(InvalidQueryError, match=r"token_stats takes a pandas DataFrame"):
        stats.token_stats(frame)


def test_storages_travel_as_descriptions(s3_endpoint: str, local_log: Path) -> None:
    """What goes to a worker is a description; keys and clients stay behind."""
    copy = pickle.loads(pickle.dumps(FileStorage(local_log, format="parquet")))
    assert isinstance(copy, FileStorage) and copy.path == local_log and copy.format == "parquet"
    bucket = new_bucket(s3_endpoint)
    s3 = pickle.loads(pickle.dumps(S3Storage(bucket, "a/", endpoint_url=s3_endpoint)))
    assert str(s3) == f"s3://{bucket}/a/" and s3.in_memory
    import boto3

    given = S3Storage(bucket, "a/", client=boto3.client("s3", endpoint_url=s3_endpoint))
    with pytest.raises(StorageError, match="client= object cannot be sent"):
        pickle.dumps(given)
    with pytest.raises(StorageError, match="threaded scheduler"):
        pickle.dumps(MemoryStorage())


def test_memory_storage_works_on_threads() -> None:
    import dask

    storage = MemoryStorage()
    with AuditLogger(storage, clock=lambda: END) as logger:
        logger.log_sync(input="q", output="a", model="m", latency_ms=3.0)
    with dask.config.set(scheduler="threads"):
        frame = open_log(storage, progress=False).to_dask().compute()
    assert frame["model"].tolist() == ["m"]


def test_parallel_sealing_equals_serial(client: distributed.Client, tmp_path: Path) -> None:
    """One Dask task per day; same parts, same entries, signed manifest verifies."""
    from comply_lab.crypto.signing import generate_signing_key
    from tests.conftest import adopt_and_compact

    key = generate_signing_key()
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    write_sample(
        lambda c: AuditLogger(FileStorage(serial, fsync="never", rotation_size_mb=0.1), clock=c),
        ENTRIES,
        DAYS,
        end=END,
    ).close()
    shutil.copytree(serial, parallel)
    one = adopt_and_compact(serial, key)
    many = adopt_and_compact(parallel, key, executor=client.get_executor())
    assert sorted(many.sealed) == sorted(one.sealed) and len(one.sealed) > DAYS
    assert sorted(many.parts) == sorted(one.parts) and many.entries == one.entries == ENTRIES
    assert not list(parallel.glob("audit_*.jsonl"))
    for path in (serial, parallel):
        report = open_log(path, progress=False).verify(public_key=key.public_key())
        assert report.ok, report.to_frame()
    pd.testing.assert_frame_equal(
        open_log(parallel, progress=False).entries(), open_log(serial, progress=False).entries()
    )


def test_parallel_compaction_of_s3_is_refused(client: distributed.Client, s3_log: str) -> None:
    from comply_lab.storage.compaction import compact

    with pytest.raises(InvalidQueryError, match="local directories"):
        compact(s3_log, executor=client.get_executor())


@pytest.fixture(scope="module")
def damaged_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signed Parquet days with a deleted part, a rewritten part and an edited JSONL line."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("damaged")
    write_sample(
        lambda c: AuditLogger(
            FileStorage(path, format="parquet", fsync="never", rotation_size_mb=0.05), clock=c
        ),
        ENTRIES,
        DAYS,
        end=END,
    ).close()
    parts = sorted(path.glob("date=*/*.parquet"))
    parts[1].unlink()
    table = pq.read_table(parts[4])
    models = table.column("model").to_pylist()
    models[3] = "forged-model"
    table = table.set_column(
        table.schema.get_field_index("model"), "model", pc.cast(pa.array(models), pa.string())
    )
    pq.write_table(table, parts[4])
    with AuditLogger(FileStorage(path, fsync="never"), clock=lambda: END) as logger:
        for i in range(5):
            logger.log_sync(input=f"q{i}", output="a", model="gpt-4o")
    segment = next(path.glob("audit_*.jsonl"))
    segment.write_bytes(segment.read_bytes().replace(b'"gpt-4o"', b'"gpt-5"', 1))
    return path


def test_parallel_verification_equals_serial(client: distributed.Client, damaged_log: Path) -> None:
    """One Dask task per day; the same findings, in the same order, as one pass."""
    log = open_log(damaged_log, progress=False)
    serial = log.verify()
    parallel = log.verify(executor=client.get_executor())
    assert not serial.ok
    assert {p.status for p in serial.problems} >= {"missing", "modified", "unsealed"}
    assert parallel.problems == serial.problems
    assert (parallel.entries, parallel.segments) == (serial.entries, serial.segments)


@pytest.mark.slow
def test_verify_and_compact_workers_from_the_command_line(
    damaged_log: Path, tmp_path: Path
) -> None:
    """--workers gives the serial results (a process pool, run as a subprocess)."""
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "comply_lab.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    one = run("verify", "--json", str(damaged_log))
    two = run("verify", "--json", "--workers", "2", str(damaged_log))
    assert one.returncode == two.returncode == 1
    assert json.loads(two.stdout) == json.loads(one.stdout)
    plain = tmp_path / "plain"
    write_sample(
        lambda c: AuditLogger(FileStorage(plain, fsync="never"), clock=c), 300, 3, end=END
    ).close()
    sealed = run("compact", "--json", "--workers", "2", str(plain))
    assert sealed.returncode == 0, sealed.stderr
    assert json.loads(sealed.stdout)["entries"] == 300
    assert run("verify", "--allow-unsigned", "--workers", "2", str(plain)).returncode == 0


def test_parallel_verification_of_s3_equals_serial(client: distributed.Client, s3_log: str) -> None:
    """Workers rebuild the S3 storage from its description and read the same objects."""
    log = open_log(s3_log, progress=False)
    serial, parallel = (
        log.verify(allow_unsigned=True),
        log.verify(executor=client.get_executor(), allow_unsigned=True),
    )
    assert serial.ok and serial.entries == ENTRIES
    assert parallel.problems == serial.problems
    assert (parallel.entries, parallel.segments) == (serial.entries, serial.segments)
