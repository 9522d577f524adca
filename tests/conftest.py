"""Shared fixtures: storages by backend name, a controllable clock, the run's own home."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import hermetic

RUN_HOME = hermetic.isolate()  # before anything reads a home, a cache folder or the clock

from comply_lab._time import CLOCK_SHIFT_VARIABLE  # noqa: E402
from comply_lab.audit import FileStorage, MemoryStorage, Storage  # noqa: E402

NOW = hermetic.NOW
"""What comply_lab's clock reads when the run starts; it runs on from there."""

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root."""


class FakeClock:
    """A clock that stands still until moved; returns aware UTC datetimes."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 29, 10, 30, tzinfo=UTC))


def utcnow() -> datetime:
    """Return comply_lab's "now" as a naive UTC datetime, as ``datetime.utcnow()`` callers do."""
    from comply_lab._time import utc_now

    return utc_now().replace(tzinfo=None)


MoveClock = Callable[[datetime], None]


@pytest.fixture
def move_clock(monkeypatch: pytest.MonkeyPatch) -> MoveClock:
    """Return a function that sets comply_lab's clock (here and in processes started after).

    The clock runs on from the moment given; the test's end restores the run's clock.
    """

    def move(moment: datetime) -> None:
        shift = (moment - datetime.now(UTC)).total_seconds()
        monkeypatch.setenv(CLOCK_SHIFT_VARIABLE, f"{shift:.6f}")

    return move


_GUARD = pytest.StashKey[hermetic.HomeGuard]()


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process: snapshot the real home to compare after the run."""
    if not hasattr(config, "workerinput"):
        guard = hermetic.HomeGuard(
            hermetic.real_home(), os.environ.get(hermetic.IGNORE_VARIABLE, "")
        )
        guard.start()
        config.stash[_GUARD] = guard


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything under the real home changed; remove the run's home."""
    guard = session.config.stash.get(_GUARD, None)
    if guard is None:
        return
    changed = guard.changes()
    shutil.rmtree(RUN_HOME, ignore_errors=True)
    if changed:
        print(
            f"\nthe test run changed files under the real home {guard.home}: " + ", ".join(changed),
            file=sys.stderr,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


StorageFactory = Callable[[], Storage]


@contextmanager
def local_s3() -> Iterator[str]:
    """Run a real S3-compatible server (moto server mode) on 127.0.0.1; yield its URL.

    Test credentials are set, and ``AWS_ENDPOINT_URL_S3`` too, so plain ``s3://`` URLs
    reach it.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL_S3"] = endpoint
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Yield the URL of a real S3-compatible server on 127.0.0.1 (see :func:`local_s3`)."""
    with local_s3() as endpoint:
        yield endpoint


def new_bucket(endpoint: str) -> str:
    """Create a bucket with a fresh name on the test server and return its name."""
    import boto3

    name = f"audit-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


def storage_factory(backend: str, s3_endpoint: str | None = None) -> StorageFactory:
    """Return a function that makes a fresh, empty storage of ``backend``."""
    if backend == "memory":
        return MemoryStorage
    if backend in ("jsonl", "parquet"):
        return lambda: FileStorage(
            tempfile.mkdtemp(prefix="comply-lab-test-"), format=backend, fsync="never"
        )
    if backend.startswith("s3-") and s3_endpoint is not None:
        from comply_lab.storage.s3 import S3Storage

        return lambda: S3Storage(
            new_bucket(s3_endpoint),
            "audit/",
            format=backend[3:],  # type: ignore[arg-type]
            endpoint_url=s3_endpoint,
            spool_dir=tempfile.mkdtemp(prefix="comply-lab-spool-"),
            fsync="never",
        )
    raise ValueError(backend)


def settle(storage: Storage) -> None:
    """Bring written data to its resting format: a Parquet store seals its segments."""
    if isinstance(storage, FileStorage) and storage.format == "parquet":
        storage.seal()
    elif hasattr(storage, "flush"):
        storage.flush()


@pytest.fixture
def make_storage(request: pytest.FixtureRequest) -> StorageFactory:
    """Storage factory for the backend named by the test class's ``backend`` attribute."""
    backend = request.cls.backend
    endpoint = request.getfixturevalue("s3_endpoint") if backend.startswith("s3-") else None
    return storage_factory(backend, endpoint)


def original_record(stamp: datetime, text: str) -> dict[str, object]:
    """Return a record as the original tool wrote it: uuid4 id, naive timestamp, no chain."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": stamp.replace(tzinfo=None).isoformat(),
        "input_hash": hashlib.sha256(text.encode()).hexdigest(),
        "output_hash": hashlib.sha256(b"").hexdigest(),
        "input_content": None,
        "output_content": None,
        "provider": "openai",
        "model": "gpt-4",
        "conversation_id": None,
        "safety_passed": True,
        "detectors_triggered": [],
        "block_reason": None,
        "alerts": [],
        "latency_ms": 150,
        "input_tokens": None,
        "output_tokens": None,
        "metadata": {"user_id": "u"},
    }


def plant_writer(
    path: Path, at: datetime, entries: int = 3, text: str = "forged", **fields: Any
) -> list[str]:
    """Plant a writer's day files into the log at ``path`` as someone without the key would.

    The attacker logs with the tool itself into a folder of their own (a signed log refuses
    a keyless writer) and copies the day files in under free segment names.

    Returns:
        The names of the planted files.
    """
    from comply_lab import AuditLogger

    planted = []
    with tempfile.TemporaryDirectory() as scratch:
        logger = AuditLogger(FileStorage(scratch, format="jsonl"), clock=FakeClock(at))
        for i in range(entries):
            logger.log_sync(input=f"{text} {i}", output="x", **fields)
        logger.close()
        for source in sorted(Path(scratch).glob("audit_*.jsonl")):
            stem = "_".join(source.stem.split("_")[:2])  # audit_YYYYMMDD
            index = 900
            while (path / f"{stem}_{index:03d}.jsonl").exists():
                index += 1
            shutil.copyfile(source, path / f"{stem}_{index:03d}.jsonl")
            planted.append(f"{stem}_{index:03d}.jsonl")
    return planted


def adopt_and_compact(target: Any, key: Any, **options: Any) -> Any:
    """Adopt an unsigned log (or the original tool's) with ``key``, then compact it signed.

    ``target`` is a path, URL or store; the store is opened with ``key`` if needed.
    Returns the compaction's report.
    """
    from comply_lab.integrity.adoption import adopt
    from comply_lab.storage.compaction import compact
    from comply_lab.storage.registry import open_storage

    storage = (
        open_storage(str(target), signing_key=key) if isinstance(target, str | Path) else target
    )
    adopt(storage)
    return compact(storage, **options)
