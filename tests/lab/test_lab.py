"""open_log and Log: DataFrames, filters, ranges, counts, SQL and streaming, on any store."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comply_lab import AuditLogger, InvalidQueryError, Log, open_log
from comply_lab import _progress as progress
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.errors import (
    CorruptSegmentError,
    IntegrityWarning,
    NoLogError,
    UnknownValueWarning,
)
from comply_lab.storage.arrow import COLUMNS
from tests.conftest import FakeClock

T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)


def _fill(storage: FileStorage | MemoryStorage, clock: FakeClock, days: int = 3) -> list[str]:
    logger = AuditLogger(storage, clock=clock)
    ids = []
    for day in range(days):
        clock.now = T0 + timedelta(days=day)
        for i in range(20):
            clock.advance(minutes=30)  # crosses midnight: some entries fall on the next day
            ids.append(
                logger.log_sync(
                    input=f"{day}-{i}",
                    output="ok",
                    provider=["openai", "anthropic"][i % 2],
                    model=["gpt-4o", "claude"][i % 2],
                    conversation_id=f"c{i % 4}",
                    safety_passed=i % 5 != 0,
                    detectors_triggered=["pii", "jailbreak"][: (i % 5 == 0) + (i % 10 == 0)],
                    latency_ms=100.0 + i,
                    input_tokens=i,
                    output_tokens=None if i % 3 else 2 * i,
                    metadata={"department": ["hr", "legal"][i % 2], "user": f"u{i}"},
                )
            )
    logger.close()
    return ids


@pytest.fixture(params=["jsonl", "parquet", "mixed", "memory"])
def log(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Log:
    """Return the same 60 entries in each kind of store."""
    if request.param == "memory":
        storage = MemoryStorage()
        _fill(storage, clock)
        return open_log(storage)
    fmt = "jsonl" if request.param == "jsonl" else "parquet"
    _fill(FileStorage(tmp_path, format=fmt), clock, days=2 if request.param == "mixed" else 3)
    if request.param == "mixed":  # a third day still open as JSONL
        _fill(FileStorage(tmp_path), FakeClock(T0 + timedelta(days=2)), days=1)
    return open_log(tmp_path)


class TestEntries:
    def test_dtypes(self, log: Log):
        """Timestamps are tz-aware UTC; booleans, ints and strings are nullable; lists are lists."""
        frame = log.entries()
        assert list(frame.columns) == list(COLUMNS)
        assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
        assert frame["safety_passed"].dtype == pd.BooleanDtype()
        assert frame["input_tokens"].dtype == pd.Int64Dtype()
        assert frame["output_tokens"].isna().sum() == 39
        assert frame["latency_ms"].dtype == "float64"
        assert frame["provider"].dtype == pd.StringDtype("pyarrow")
        assert frame["detectors_triggered"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
        assert frame["timestamp"].is_monotonic_increasing
        assert len(frame) == 60

    def test_filters(self, log: Log):
        """Provider, model, conversation, safety and detector filters select exactly."""
        full = log.entries()
        assert len(log.entries(provider="openai")) == (full["provider"] == "openai").sum() == 30
        assert len(log.entries(model=["gpt-4o", "claude"])) == 60
        assert len(log.entries(conversation_id="c1", provider="anthropic")) == 15
        failed = log.entries(safety_passed=False)
        assert len(failed) == 12
        assert not failed["safety_passed"].any()
        jailbreak = log.entries(detector="jailbreak")
        assert len(jailbreak) == 6
        assert all("jailbreak" in list(d) for d in jailbreak["detectors_triggered"])
        assert len(log.entries(detector=["jailbreak", "pii"])) == 12
        with pytest.warns(UnknownValueWarning, match="detector 'nothing-fired'; known: 'jailb"):
            assert len(log.entries(detector="nothing-fired")) == 0

    def test_columns_and_metadata_keys(self, log: Log):
        """Only the chosen columns come back; metadata keys become columns."""
        frame = log.entries(columns=["timestamp", "model"], metadata_keys=["department", "missing"])
        assert list(frame.columns) == ["timestamp", "model", "department", "missing"]
        assert set(frame["department"]) == {"hr", "legal"}
        assert frame["missing"].isna().all()
        with_meta = log.entries(columns=["id", "metadata"], metadata_keys=["user"])
        assert json.loads(with_meta["metadata"][0])["user"] == with_meta["user"][0]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"columns": ["timestamp", "nope"]}, "unknown column"),
            ({"metadata_keys": ["model"]}, "has the name of an entry column"),
            ({"safety_passed": "no"}, "safety_passed"),
            ({"provider": 3}, "provider"),
            ({"start": "yesterday"}, "not an ISO 8601 time"),
            ({"start": "2026-02-01", "end": "2026-01-01"}, "is after end"),
        ],
    )
    def test_bad_arguments(self, log: Log, kwargs: dict[str, object], message: str):
        """Unusable arguments raise InvalidQueryError saying what is wrong."""
        with pytest.raises(InvalidQueryError, match=message):
            log.entries(**kwargs)  # type: ignore[arg-type]

    def test_bare_days_mean_whole_days(self, log: Log):
        """entries(day, day) is the whole day; an aware end is an instant."""
        whole = log.entries("2026-01-30", "2026-01-30")
        assert len(whole) > 0
        assert set(whole["timestamp"].dt.date) == {date(2026, 1, 30)}
        assert len(log.entries(date(2026, 1, 30), date(2026, 1, 30))) == len(whole)
        assert len(log.entries("2026-01-30", "2026-01-30T00:00:00+00:00")) <= 1

    def test_entry_and_counts(self, log: Log):
        """entry(id), count(), len() and partitions() agree with the rows."""
        frame = log.entries()
        some = frame["id"][17]
        entry = log.entry(some)
        assert entry is not None
        assert entry.id == some
        assert log.entry("0190b7a5-1f40-7000-8000-000000000000") is None
        assert log.entry("not-a-uuid") is None
        assert len(log) == log.count() == 60
        start, end = T0 + timedelta(hours=5), T0 + timedelta(days=1, hours=7)
        assert log.count(start, end) == len(log.entries(start, end))
        parts = log.partitions()
        assert parts["entries"].sum() == 60
        assert list(parts.columns) == ["date", "segments", "entries", "bytes", "format", "sealed"]

    def test_sql(self, log: Log):
        """SQL over `entries` matches the DataFrame."""
        result = log.sql("select provider, count(*) as n from entries group by 1 order by 1")
        assert result.to_dict("list") == {"provider": ["anthropic", "openai"], "n": [30, 30]}
        day = log.sql("select count(*) as n from entries", start="2026-01-29", end="2026-01-29")
        assert day["n"][0] == len(log.entries("2026-01-29", "2026-01-29"))

    def test_sql_errors_are_typed(self, log: Log, tmp_path: Path):
        """A bad query is an InvalidQueryError; a damaged file a CorruptSegmentError."""
        with pytest.raises(InvalidQueryError, match="DuckDB cannot run the query"):
            log.sql("selec nonsense")
        with pytest.raises(InvalidQueryError, match='"nope" not found'):
            log.sql("select nope from entries")
        parts = sorted(tmp_path.glob("date=*/*.parquet"))
        if not parts:
            return
        parts[0].write_bytes(b"PAR1 not a part any more PAR1")
        with pytest.raises(CorruptSegmentError, match="verify the log"):
            log.sql("select count(*) from entries")

    def test_batches_stream_everything(self, log: Log):
        """batches() yields Arrow record batches covering exactly the rows of entries()."""
        batches = list(log.batches(columns=["id", "latency_ms"]))
        assert all(isinstance(b, pa.RecordBatch) for b in batches)
        assert sum(b.num_rows for b in batches) == 60
        assert batches[0].schema.names == ["id", "latency_ms"]


class TestEmptyAndPruning:
    def test_empty_log_has_typed_columns(self, tmp_path: Path):
        """An empty log gives an empty frame with every column and its dtype."""
        frame = open_log(tmp_path).entries()
        assert list(frame.columns) == list(COLUMNS)
        assert len(frame) == 0
        assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
        assert open_log(tmp_path).partitions().empty

    def test_days_outside_the_range_are_never_opened(self, tmp_path: Path, clock: FakeClock):
        """Garbage in other days' files does not matter to a query that does not need them."""
        _fill(FileStorage(tmp_path, format="parquet"), clock, days=1)
        (tmp_path / "date=2026-03-01").mkdir()
        (tmp_path / "date=2026-03-01" / "part-20260301-000.parquet").write_bytes(b"not parquet")
        (tmp_path / "audit_20260302.jsonl").write_bytes(b"garbage\n")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(open_log(tmp_path).entries("2026-01-29", "2026-01-30")) == 20
            some = open_log(tmp_path).entries("2026-01-29", "2026-01-30")["id"][0]
            assert open_log(tmp_path).entry(some) is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert len(open_log(tmp_path).entries()) == 20  # the planted part is not read
        assert any(
            issubclass(w.category, IntegrityWarning) and "part-20260301-000" in str(w.message)
            for w in caught
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(0, 4 * 86400 * 10**6), min_size=1, max_size=25),
    lo=st.integers(-86400 * 10**6, 5 * 86400 * 10**6),
    span=st.integers(0, 3 * 86400 * 10**6),
    zone=st.integers(-14 * 60, 14 * 60),
)
def test_range_semantics_match_a_brute_force_filter(
    tmp_path_factory: pytest.TempPathFactory, offsets: list[int], lo: int, span: int, zone: int
):
    """For any entries and any range in any time zone, entries() is exactly lo <= t <= hi."""
    base = datetime(2026, 1, 29, tzinfo=UTC)
    stamps = sorted(base + timedelta(microseconds=o) for o in offsets)
    clock = FakeClock(base)
    path = tmp_path_factory.mktemp("range")
    logger = AuditLogger(FileStorage(path, format="parquet", fsync="never"), clock=clock)
    for stamp in stamps:
        clock.now = stamp
        logger.log_sync(input="q", output="a")
    logger.close()
    tz = timezone(timedelta(minutes=zone))
    start = (base + timedelta(microseconds=lo)).astimezone(tz)
    end = start + timedelta(microseconds=span)
    expected = [s for s in stamps if start <= s <= end]
    log = open_log(path)
    with warnings.catch_warnings():  # a range beyond the log's days says so: not what is tested
        warnings.simplefilter("ignore", UnknownValueWarning)
        got = log.entries(start, end, columns=["timestamp"])["timestamp"].tolist()
        naive = log.entries(
            start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None)
        )
    assert got == expected
    assert log.count(start, end) == len(expected)
    assert len(naive) == len(expected)
    assert [e.timestamp for e in AuditLogger(path).get_entries_sync(start, end)] == expected


class TestProgress:
    def test_bar_shows_on_slow_scans_only_when_enabled(
        self,
        tmp_path: Path,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ):
        """progress=True draws a bar once the delay passes; progress=False never does."""
        _fill(FileStorage(tmp_path, format="parquet"), clock, days=2)
        monkeypatch.setattr(progress, "DELAY_S", 0.0)
        open_log(tmp_path, progress=False).entries()
        assert capsys.readouterr().err == ""
        open_log(tmp_path, progress=True).entries()
        assert "scanning segments" in capsys.readouterr().err


def test_logger_queries_use_the_same_data(tmp_path: Path, clock: FakeClock):
    """The logger's get_entries and the lab's entries() return the same entries."""
    ids = _fill(FileStorage(tmp_path, format="parquet"), clock)
    logger = AuditLogger(tmp_path)
    got = logger.get_entries_sync(T0 - timedelta(days=1), T0 + timedelta(days=5))
    assert [e.id for e in got] == list(open_log(tmp_path).entries()["id"])
    assert sorted(ids) == sorted(e.id for e in got)
    assert logger.get_entry_sync(ids[5]) == open_log(tmp_path).entry(ids[5])


def test_opening_a_missing_log_is_an_error(tmp_path: Path):
    """A mistyped path raises and creates nothing, instead of showing an empty log."""
    from comply_lab import StorageError

    with pytest.raises(StorageError, match=r"no log at .*does not exist"):
        open_log(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_the_folder_above_a_log_names_the_logs_below_it(tmp_path: Path, clock: FakeClock):
    """open_log of a folder holding no log (such as data/demo) says so and lists the logs."""
    _fill(FileStorage(tmp_path / "demo" / "log"), clock, days=1)
    (tmp_path / "demo" / "writer.pub").write_text("key")
    (tmp_path / "demo" / "plots").mkdir()
    with pytest.raises(NoLogError, match=r"holds no log .*logs below it: .*demo/log"):
        open_log(tmp_path / "demo")
    with pytest.raises(NoLogError, match=r"logs below it: .*demo/log"):
        open_log(tmp_path)
    (tmp_path / "empty").mkdir()
    assert len(open_log(tmp_path / "empty")) == 0  # an empty folder may become a log


class TestNoSilentWrongAnswers:
    def test_a_range_outside_the_log_warns_with_its_days(self, log: Log):
        """Asking for days the log does not hold says which days it holds."""
        with pytest.warns(UnknownValueWarning, match=r"the log holds days 2026-01-29 to"):
            assert log.entries("2025-01-01", "2025-01-31").empty
        with pytest.warns(UnknownValueWarning, match=r"no entry from 2027-01-01 00:00 UTC to the"):
            assert log.entries("2027-01-01").empty

    def test_unknown_filters_and_columns_name_the_closest(self, log: Log):
        """A misspelt filter keyword or column is an error with a did-you-mean."""
        with pytest.raises(InvalidQueryError, match=r"'detectors_triggered' is not a filter \(did"):
            log.entries(detectors_triggered="pii")  # type: ignore[call-arg]
        with pytest.raises(
            InvalidQueryError, match=r"'modle' is not a filter \(did you mean 'model'"
        ):
            log.stats(modle="gpt-4o")  # type: ignore[call-arg]
        with pytest.raises(InvalidQueryError, match=r"unknown column 'latency' \(did you mean"):
            log.entries(columns=["latency"])

    def test_an_unknown_value_warns_with_the_known_ones(self, log: Log):
        """A model no entry has makes the result empty and says which models there are."""
        with pytest.warns(UnknownValueWarning, match=r"model 'gpt4o' \(did you mean 'gpt-4o'"):
            assert log.entries(model="gpt4o").empty
        with warnings.catch_warnings():  # known values that match nothing together: no warning
            warnings.simplefilter("error")
            assert log.entries(model="gpt-4o", safety_passed=True, detector="jailbreak").empty

    def test_relative_starts(self, log: Log):
        """A start of "7d" or "24h" counts back from now, wherever a start is taken."""
        everything = log.count()
        assert log.count("100000d") == everything
        assert log.count("1h") == 0  # the entries were logged in January 2026
