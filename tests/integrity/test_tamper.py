"""Verification never says OK for a changed log: every hole, with the real file-level edit.

Each test edits a real log's bytes the way someone with access to the files or the bucket,
but no key, would, on local JSONL, local Parquet, and JSONL and Parquet objects on the
local S3 server, and asserts the exact finding and the CLI's exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, EncryptionManager, KeyRing, open_log, rotate_keys
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.errors import (
    IntegrityError,
    NoLogError,
    RetentionError,
    SigningKeyRequiredError,
)
from comply_lab.integrity.chains import ChainTracker
from comply_lab.storage import parts
from comply_lab.storage.compaction import compact
from comply_lab.storage.manifest import chain_record, record_line
from tests.tamper import BACKENDS, KEY, T0, Case, build, edit_line, errors, write

AFTER = datetime(2026, 2, 1, 12, tzinfo=UTC)  # "now" for retention: the first day expires


def _case(request: pytest.FixtureRequest, tmp_path: Path, backend: str, **options: object) -> Case:
    endpoint = request.getfixturevalue("s3_endpoint") if backend.startswith("s3-") else None
    return build(backend, tmp_path, endpoint, **options)


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _case(request, tmp_path, request.param)


@pytest.fixture(params=["parquet", "s3-parquet"])
def parquet(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _case(request, tmp_path, request.param)


def _first_entry_line(case: Case) -> tuple[str, int]:
    """Return a data file holding JSONL entries, and the index of an entry line in it."""
    name = next(n for n in case.data() if n.endswith(".jsonl"))
    return name, 3


class TestCleanLogs:
    def test_every_backend_verifies_only_with_its_key(self, case: Case):
        """A clean signed log is OK with its key, UNVERIFIED (exit 1) without, unless accepted."""
        report = case.verify()
        assert report.ok and report.verdict == "OK", str(report)
        assert report.signatures == "checked"
        assert report.entries == len(case.ids)
        assert not [p for p in report.problems if p.severity == "error"]
        if case.backend != "jsonl":  # sealed data is never "not sealed yet"
            assert not [p for p in report.problems if p.status == "unsealed"]
        unkeyed = case.verify(public_key=None)
        assert unkeyed.verdict == "UNVERIFIED" and errors(unkeyed) == {"unverified"}
        assert case.cli_verify() == 0
        assert case.cli("verify", case.target) == 1
        assert case.cli("verify", case.target, "--no-signatures") == 0


LINE_EDITS = {
    "a key given twice": lambda line: line[:-1] + b',"latency_ms":999.0}',
    "an extra field": lambda line: line[:-1] + b',"approved":true}',
    "fields reordered": lambda line: orjson.dumps(dict(reversed(orjson.loads(line).items()))),
    "other spacing": lambda line: json.dumps(orjson.loads(line), ensure_ascii=False).encode(),
    "other escaping": lambda line: line.replace(b'"openai"', b'"\\u006fpenai"', 1),
    "bytes after the record": lambda line: line + b" ",
}


class TestOneCanonicalForm:
    @pytest.mark.parametrize("variant", sorted(LINE_EDITS))
    @pytest.mark.parametrize("backend", ["jsonl", "s3-jsonl"])
    def test_a_line_not_in_its_canonical_form_is_modified(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str, variant: str
    ):
        """A JSONL line that parses to a valid entry but is not its canonical bytes: modified."""
        case = _case(request, tmp_path, backend)
        name, index = _first_entry_line(case)
        original = edit_line(case.files, name, index, LINE_EDITS[variant])
        entry_id = orjson.loads(original)["id"]
        report = case.verify()
        assert errors(report) == {"modified"}, str(report)
        assert entry_id in {p.entry_id for p in report.errors}
        assert case.cli_verify() == 1

    @pytest.mark.parametrize("variant", sorted(LINE_EDITS))
    def test_sealing_never_vouches_for_a_non_canonical_line(self, tmp_path: Path, variant: str):
        """A line edited before sealing: refused, nothing sealed, and the line is modified."""
        path = tmp_path / "log"
        write(FileStorage(path, signing_key=KEY, fsync="never"), days=1)
        name = next(p.name for p in path.glob("audit_*.jsonl"))
        from tests.tamper import LocalFiles

        original = edit_line(LocalFiles(path), name, 5, LINE_EDITS[variant])
        with pytest.raises(IntegrityError, match="vouched for its first"):
            compact(path, KEY)  # the writer's heartbeat vouched for the bytes edited since
        report = open_log(path).verify(public_key=KEY)
        assert ("modified", orjson.loads(original)["id"]) in {
            (p.status, p.entry_id) for p in report.errors
        }

    def test_an_s3_spool_edited_before_upload_is_listed_as_invalid(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ):
        """Uploading a spooled segment whose line was edited never vouches for that entry."""
        case = _case(request, tmp_path, "s3-parquet", days=0)
        storage = case.storage()
        logger = AuditLogger(storage)
        ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(5)]
        storage.spool.rotate()  # type: ignore[attr-defined]
        spooled = next(storage.spool_dir.glob("audit_*.jsonl"))  # type: ignore[attr-defined]
        lines = spooled.read_bytes().split(b"\n")
        lines[2] = LINE_EDITS["a key given twice"](lines[2])
        spooled.write_bytes(b"\n".join(lines))
        storage.close()
        report = case.verify()
        assert [(p.status, p.entry_id) for p in report.errors] == [("modified", ids[2])]

    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize("trail", ["_manifest", "_holds", "_heartbeat"])
    @pytest.mark.parametrize("variant", ["other spacing", "a key given twice"])
    def test_a_trail_record_not_in_its_canonical_form_is_modified(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str, trail: str, variant: str
    ):
        """A trail record must be exactly its canonical bytes too."""
        if backend == "jsonl" and trail == "_manifest":
            pytest.skip("a JSONL log has sealed nothing: no manifest")
        case = _case(request, tmp_path, backend)
        open_log(case.target, signing_key=case.signing_key).hold("matter-3", reason="r")
        lines = case.files.trail_lines(trail)

        def respaced(line: bytes) -> bytes:
            return json.dumps(orjson.loads(line), sort_keys=True).encode()

        def doubled(line: bytes) -> bytes:
            return line[:-1] + b',"name":"other"}'

        lines[0] = (respaced if variant == "other spacing" else doubled)(lines[0])
        case.files.set_trail_lines(trail, lines)
        report = case.verify()
        assert "modified" in errors(report), str(report)
        assert any(
            p.segment and p.segment.startswith(f"{trail}.jsonl line 1") for p in report.errors
        )
        assert case.cli_verify() == 1


class TestEverySealedSegment:
    @pytest.mark.parametrize("backend", ["parquet", "s3-jsonl", "s3-parquet"])
    def test_a_sealed_segment_that_lost_an_entry(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str
    ):
        """Removing an entry from any sealed segment, JSONL or Parquet, local or S3: missing."""
        case = _case(request, tmp_path, backend)
        name = case.data()[1]
        if name.endswith(".jsonl"):
            lines = case.files.read(name).split(b"\n")
            del lines[4]
            case.files.write(name, b"\n".join(lines))
        else:
            import io

            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(case.files.read(name)))
            sink = pa.BufferOutputStream()
            pq.write_table(pa.concat_tables([table.slice(0, 4), table.slice(5)]), sink)
            case.files.write(name, sink.getvalue().to_pybytes())
        report = case.verify()
        assert errors(report) == {"missing"}, str(report)
        assert any(p.segment == name and "sealed with" in p.explanation for p in report.errors)
        assert case.cli_verify() == 1

    def test_a_sealed_jsonl_object_reordered(self, request: pytest.FixtureRequest, tmp_path: Path):
        """Two entries of one writer swapped inside a sealed S3 JSONL object: reordered."""
        case = _case(request, tmp_path, "s3-jsonl")
        name = case.data()[0]
        lines = case.files.read(name).split(b"\n")
        lines[2], lines[4] = lines[4], lines[2]  # same writer (two writers interleave)
        case.files.write(name, b"\n".join(lines))
        assert errors(case.verify()) == {"reordered"}
        assert case.cli_verify() == 1


def _count_readers(root: Path) -> tuple[int, int]:
    """Rows pandas and the printed DuckDB view read from a local log directory."""
    ddl = subprocess.run(
        [sys.executable, "-m", "comply_lab.cli", "ddl", "--engine", "duckdb", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    connection = duckdb.connect()
    connection.execute(ddl)
    by_duckdb = connection.execute("select count(*) from audit_log").fetchone()
    assert by_duckdb is not None
    return len(pd.read_parquet(root)), int(by_duckdb[0])


class TestWhatReadersRead:
    @pytest.mark.parametrize(
        "planted",
        [
            "date=2026-01-29/x.parquet",
            "date=2026-01-29/part-20260129-000-r1.parquet",
            "date=2026-01-29/.hidden.parquet",
            "date=2026-01-30/_underscore.parquet",
            "extra.parquet",
            "date=2026-01-29/deeper/part.parquet",
        ],
    )
    def test_a_planted_copy_is_inserted(self, case: Case, planted: str):
        """Parquet planted anywhere a dataset reader looks is inserted, on every backend."""
        import io

        import pyarrow.parquet as pq

        copy = io.BytesIO()
        pq.write_table(open_log(case.target).arrow().slice(0, 20), copy)
        case.files.write(planted, copy.getvalue())
        report = case.verify()
        assert errors(report) == {"inserted"}, str(report)
        assert [p.segment for p in report.errors] == [planted]
        assert case.cli_verify() == 1
        if case.backend == "parquet":  # pandas reads only a directory of Parquet
            readers = _count_readers(Path(case.target))
            grown = len(case.ids) + 20  # what the planted copy adds for its readers
            duckdb_reads = planted.startswith("date=") and planted.count("/") == 1
            pyarrow_reads = not any(p.startswith(("_", ".")) for p in planted.split("/"))
            assert readers == (
                grown if pyarrow_reads else len(case.ids),
                grown if duckdb_reads else len(case.ids),
            )

    def test_an_interrupted_key_rotation_double_counts_nothing(
        self, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """A rotation cut before its new generation lands: readers see each entry once.

        Verification says the rotation is incomplete (a warning); a re-run finishes it.
        """
        old = KeyRing.generate("k1")
        path = tmp_path / "log"
        storage = FileStorage(path, format="parquet", signing_key=KEY, fsync="never")
        write(storage, encryption=old, store_content=True)
        ring = KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + old.to_text())
        sink_type = type(FileStorage(path).sink())
        done: list[str] = []

        def commit_once(sink: object, name: str) -> None:
            if done:
                raise KeyboardInterrupt
            done.append(name)
            original(sink, name)

        original = sink_type.commit
        monkeypatch.setattr(sink_type, "commit", commit_once)
        with pytest.raises(KeyboardInterrupt):
            rotate_keys(FileStorage(path, signing_key=KEY), ring)
        monkeypatch.undo()
        assert _count_readers(path) == (60, 60)
        assert len(open_log(path).entries(columns=["id"])) == 60
        report = open_log(path).verify(public_key=KEY)
        assert report.ok, str(report)
        assert [p.status for p in report.problems] == ["incomplete"]
        rotate_keys(FileStorage(path, signing_key=KEY), ring)
        assert _count_readers(path) == (60, 60)
        assert not open_log(path).verify(public_key=KEY).problems

    @pytest.mark.parametrize("backend", ["s3-jsonl", "s3-parquet"])
    def test_an_upload_cut_before_publishing_shows_nothing_unvouched(
        self,
        request: pytest.FixtureRequest,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        backend: str,
    ):
        """An S3 part recorded but not yet published: no reader sees it, verification warns.

        A restarted writer's next flush publishes it.
        """
        from comply_lab.storage.s3_sink import S3Sink

        case = _case(request, tmp_path, backend, days=0)
        storage = case.storage()
        logger = AuditLogger(storage, clock=lambda: T0)
        ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(4)]

        def crash(*args: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(S3Sink, "publish", crash)
        with pytest.raises(KeyboardInterrupt):
            storage.flush()  # type: ignore[attr-defined]
        monkeypatch.undo()
        staged = [n for n in case.files.names() if n.startswith("_staging/")]
        assert len(staged) == 1
        assert case.storage(spool_dir=tmp_path / "elsewhere").data_files() == []  # type: ignore[attr-defined]
        report = case.verify()
        assert report.ok, str(report)
        assert "incomplete" in {p.status for p in report.problems}
        case.storage().close()  # the writer restarts: its flush publishes the part
        assert not [n for n in case.files.names() if n.startswith("_staging/")]
        assert sorted(open_log(case.target).entries(columns=["id"])["id"]) == sorted(ids)
        assert not [p for p in case.verify().problems if p.status != "unsealed"]

    def test_an_earlier_generation_put_back_is_modified(self, tmp_path: Path):
        """Putting back a segment's generation from before a key rotation is an edit.

        Its entries are authentic, but its content is under the keys rotated away from
        (perhaps a compromised key, or one erasure relied on being gone): only a rotation
        actually cut short, with its new generation staged, is a mere warning.
        """
        old = KeyRing.generate("k1")
        path = tmp_path / "log"
        write(
            FileStorage(path, format="parquet", signing_key=KEY, fsync="never"),
            encryption=old,
            store_content=True,
        )
        part = next(path.glob("date=*/*.parquet"))
        before = part.read_bytes()
        ring = KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + old.to_text())
        rotate_keys(FileStorage(path, signing_key=KEY), ring)
        part.write_bytes(before)
        report = open_log(path).verify(public_key=KEY)
        assert errors(report) == {"modified"}
        assert "earlier generation" in report.errors[0].explanation

    def test_an_interrupted_sealing_is_incomplete_and_a_forged_twin_inserted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """A part left by a crash while sealing is incomplete; a forged twin is inserted.

        The first holds exactly its live source's entries; the second holds others.
        """
        path = tmp_path / "log"
        write(FileStorage(path, signing_key=KEY, fsync="never"), days=2)
        _crash_while_sealing(path, monkeypatch)
        part = next(path.glob("date=*/part-*.parquet"))
        assert sorted(open_log(path).entries(columns=["id"])["id"]) == sorted(
            open_log(path).entries(columns=["id"])["id"].unique()
        )
        report = open_log(path).verify(public_key=KEY)
        assert report.ok, str(report)
        assert "incomplete" in {p.status for p in report.problems}
        other = next(p for p in path.glob("audit_*.jsonl") if p.name[6:14] != part.name[5:13])
        forged = (
            path
            / f"date={part.parent.name[5:]}"
            / part.name.replace(part.name[5:13], other.name[6:14])
        )
        forged.write_bytes(part.read_bytes())
        report = open_log(path).verify(public_key=KEY)
        assert errors(report) == {"inserted"}
        assert [p.segment for p in report.errors] == [forged.relative_to(path).as_posix()]

    def test_an_interrupted_sealing_of_a_highly_compressed_part_is_incomplete(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """The decompression-bomb bound does not turn an honest crash into `inserted`.

        With the bound set to nothing, the crash-left part declares more than it may without
        a record; it still decodes, within its JSONL source's size, and is `incomplete`.
        """
        path = tmp_path / "log"
        write(FileStorage(path, signing_key=KEY, fsync="never"), days=1)
        _crash_while_sealing(path, monkeypatch)
        monkeypatch.setattr(parts, "EXPANSION_FLOOR", 0)
        monkeypatch.setattr(parts, "EXPANSION_LIMIT", 0)
        part = next(path.glob("date=*/part-*.parquet"))
        footer = pq.read_metadata(part)
        declared = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
        source = sum(p.stat().st_size for p in path.glob("audit_*.jsonl"))
        assert 0 < declared < source
        report = open_log(path).verify(public_key=KEY)
        assert report.ok, str(report)
        assert "incomplete" in {p.status for p in report.problems}

    @pytest.mark.parametrize("marked", [True, False], ids=["marked", "unmarked"])
    def test_a_recorded_source_left_by_a_crash_is_incomplete_and_an_edited_one_inserted(
        self, tmp_path: Path, marked: bool
    ):
        """A JSONL source sealing recorded but did not remove yet: incomplete, not inserted.

        A writer killed while its sealer thread was between the manifest record and the
        removal of the source leaves it (with or without its ``_sealed`` marker). Only a
        source holding exactly what its records vouch for is forgiven: one with a line
        edited, dropped, duplicated or moved is ``inserted``.
        """
        path = tmp_path / "log"
        ids = write(FileStorage(path, signing_key=KEY, fsync="never"), days=2)
        name, data = min((p.name, p.read_bytes()) for p in path.glob("audit_*.jsonl"))
        FileStorage(path, signing_key=KEY).seal()
        (path / name).write_bytes(data)
        if not marked:
            (path / "_sealed" / name).unlink()
        assert sorted(open_log(path).entries(columns=["id"])["id"]) == sorted(ids)
        report = open_log(path).verify(public_key=KEY)
        assert report.ok, str(report)
        assert [p.status for p in report.problems if p.segment == name] == ["incomplete"]
        lines = data.split(b"\n")
        record = orjson.loads(lines[3])
        record["metadata"] = {"user": "someone else"}
        edits = {
            "edited": [*lines[:3], orjson.dumps(record), *lines[4:]],
            "dropped": [*lines[:3], *lines[4:]],
            "duplicated": [*lines[:4], *lines[3:]],
            "moved": [lines[1], lines[0], *lines[2:]],
        }
        for kind, edited in edits.items():
            (path / name).write_bytes(b"\n".join(edited))
            report = open_log(path).verify(public_key=KEY)
            assert [p.status for p in report.errors if p.segment == name] == ["inserted"], kind
        (path / name).write_bytes(data)
        compact(path, signing_key=KEY)
        assert not (path / name).exists()
        assert sorted(open_log(path).entries(columns=["id"])["id"]) == sorted(ids)
        assert open_log(path).verify(public_key=KEY).problems == []


def _crash_while_sealing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seal ``path``, crashing after the first part is written and before it is recorded."""
    sink_type = type(FileStorage(path).sink())

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(sink_type, "record", crash)
        with pytest.raises(KeyboardInterrupt):
            FileStorage(path, signing_key=KEY).seal()


def _forge_unsigned(case: Case, trail: str, record: dict[str, object]) -> None:
    """Append a record chained correctly but unsigned, as someone without the key can."""
    lines = case.files.trail_lines(trail)
    previous = orjson.loads(lines[-1]) if lines else None
    case.files.set_trail_lines(trail, [*lines, record_line(chain_record(record, previous))])


class TestUnsignedRecords:
    def test_a_process_without_the_key_is_refused_before_it_acts(self, case: Case):
        """No honest operation leaves an unsigned record in a signed log.

        Verification would call it ``bad_signature``: a hold, a deletion, retention or a
        store-level delete from a process opened without the key is refused up front
        (``SigningKeyRequiredError``, naming the option) — a decryption before it
        decrypts anything — nothing is recorded or changed, and the same operations with
        the key leave a log that verifies.
        """
        keyless = open_log(case.make(signing_key=None))
        refused = {
            "hold": lambda: keyless.hold("matter-1", reason="litigation"),
            "delete": lambda: keyless.delete(case.ids[0], reason="erasure"),
            "store delete": lambda: case.make(signing_key=None).delete_sync(case.ids[0]),
            "retention": lambda: keyless.apply_retention(keyless.retention_plan(1, now=AFTER)),
            "decrypt": lambda: keyless.decrypt(case.ids[:2], EncryptionManager(), reason="r"),
        }
        for name, operation in refused.items():
            with pytest.raises(SigningKeyRequiredError, match="--signing-key"):
                operation()
            assert case.verify().ok, name
        assert len(open_log(case.target).entries(columns=["id"])) == len(case.ids)
        signed = open_log(case.target, signing_key=case.signing_key)
        signed.hold("matter-1", reason="litigation", conversation_id="nobody")
        with pytest.raises(SigningKeyRequiredError):  # the trail is signed now
            keyless.hold("matter-2", reason="litigation")
        assert signed.delete(case.ids[0], reason="erasure")
        report = case.verify()
        assert report.ok, str(report)
        assert [p.status for p in report.problems].count("deleted_on_request") == 1

    def test_a_declared_operator_marks_a_jsonl_log_signed(self, tmp_path: Path):
        """A JSONL log without heartbeats has nothing signed until an operator is declared.

        Before that a keyless record cannot be told from one of an unsigned log; after it,
        the ``_signers`` trail shows the log is signed, and the record is refused. Its
        entries, which no heartbeat vouched for, are ``pending`` until sealed.
        """
        path = tmp_path / "log"
        write(FileStorage(path, signing_key=KEY, fsync="never", heartbeat_s=0), days=1)
        operator = generate_signing_key()
        open_log(path, signing_key=KEY).add_operator(operator.public_key(), "dpo", reason="r")
        with pytest.raises(SigningKeyRequiredError, match="_signers"):
            open_log(path).hold("matter-1", reason="litigation")
        open_log(path, signing_key=operator, public_key=KEY).hold("matter-1", reason="litigation")
        assert errors(open_log(path).verify(public_key=KEY)) == {"pending"}
        compact(path, KEY)
        assert open_log(path).verify(public_key=KEY).ok


class TestTrails:
    def test_a_forged_release_lifts_no_hold(self, case: Case):
        """An unsigned release appended to the holds trail: bad_signature, retention refuses."""
        log = open_log(case.target, signing_key=case.signing_key)
        log.hold("matter-7", reason="litigation")
        _forge_unsigned(case, "_holds", {"kind": "release", "name": "matter-7", "reason": "x"})
        assert errors(case.verify()) == {"bad_signature"}
        assert case.cli_verify() == 1
        with pytest.raises(RetentionError, match="legal-hold trail does not verify"):
            log.retention_plan(1, now=AFTER)
        assert (
            case.cli(
                "retention",
                case.target,
                "--days",
                "1",
                "--apply",
                "--signing-key",
                str(case.signing_key),
            )
            == 1
        )
        assert len(open_log(case.target).entries(columns=["id"])) == len(case.ids)

    def test_a_removed_hold_record_stops_retention(self, case: Case):
        """Removing a hold record from the middle of the trail breaks its chain."""
        log = open_log(case.target, signing_key=case.signing_key)
        log.hold("matter-1", reason="first")
        log.hold("matter-2", start="2026-01-30", end="2026-01-30", reason="second")
        lines = case.files.trail_lines("_holds")
        case.files.set_trail_lines("_holds", lines[1:])
        assert errors(case.verify()) == {"missing"}
        for reader in (log, open_log(case.target, signing_key=case.signing_key)):
            with pytest.raises(RetentionError):  # a log opened before the edit sees it too
                reader.retention_plan(1, now=AFTER)

    def test_trails_against_a_checkpoint(self, case: Case):
        """A truncated access trail, or a hold removed by hand, is caught by a checkpoint.

        It is, even after retention acted on the edited trail.
        """
        log = open_log(case.target, signing_key=case.signing_key)
        log.hold("matter-7", reason="litigation")
        log.decrypt(case.ids[:2], None, reason="case 1")
        log.decrypt(case.ids[2:4], None, reason="case 2")
        if case.backend == "jsonl":
            compact(case.target, KEY)  # a checkpoint needs something sealed
        saved = log.checkpoint(KEY)
        assert case.verify(checkpoint=saved).ok
        access = case.files.trail_lines("_access")
        case.files.set_trail_lines("_access", access[:-1])
        assert case.verify().ok  # a removed newest record: invisible without a checkpoint
        report = case.verify(checkpoint=saved)
        assert errors(report) == {"missing"} and report.checkpoint == "failed"
        case.files.set_trail_lines("_access", access)
        case.files.set_trail_lines("_holds", [])  # the hold lifted with a text editor
        result = log.apply_retention(log.retention_plan(1, now=AFTER), reason="policy")
        assert result.partitions  # retention saw no hold: the trail it read verified
        report = case.verify(checkpoint=saved)
        assert "missing" in errors(report)
        assert any(p.segment and p.segment.startswith("_holds") for p in report.errors)

    def test_a_hold_removed_after_a_heartbeat(self, case: Case):
        """A heartbeat records every trail's head: removing the newest hold after one shows."""
        open_log(case.target, signing_key=case.signing_key).hold("matter-5", reason="r")
        write(case.storage(), days=1, per_day=2, start=T0 + timedelta(days=3))  # beats at close
        assert case.verify().ok
        case.files.set_trail_lines("_holds", [])
        report = case.verify()
        assert errors(report) == {"missing"}, str(report)
        assert "the heartbeat of" in report.errors[0].explanation
        assert case.cli_verify() == 1

    def test_no_checkpoint_vouches_for_an_edited_trail(self, parquet: Case):
        """A checkpoint checks the trails first: over an edited one, it is refused (exit 1)."""
        _forge_unsigned(parquet, "_holds", {"kind": "release", "name": "x", "reason": "x"})
        with pytest.raises(IntegrityError, match="does not verify"):
            open_log(parquet.target).checkpoint(KEY)
        assert (
            parquet.cli("checkpoint", parquet.target, "--signing-key", str(parquet.signing_key))
            == 1
        )


class TestRetentionOpensNoChain:
    def test_entries_after_expired_ones_deleted_by_hand_stay_missing(self, case: Case):
        """After retention, the chain may resume only right after the deleted range.

        Deleting the next entries by hand — lines of a JSONL segment, or a whole sealed
        segment together with its manifest record — stays missing.
        """
        log = open_log(case.target, signing_key=case.signing_key)
        result = log.apply_retention(log.retention_plan(2, now=AFTER), reason="policy")
        assert [d.isoformat() for d in result.partitions] == ["2026-01-29"]
        report = case.verify()
        assert report.ok, str(report)
        day2 = next(n for n in case.data() if "20260130" in n)
        if case.backend == "jsonl":
            lines = case.files.read(day2).splitlines(keepends=True)
            case.files.write(day2, b"".join(lines[4:]))  # each writer's first two of day 2
        else:
            case.files.delete(day2)
            manifest = case.files.trail_lines("_manifest")
            case.files.set_trail_lines("_manifest", [m for m in manifest if day2.encode() not in m])
        report = case.verify()
        assert "missing" in errors(report), str(report)
        chains = [p for p in report.errors if p.writer_id is not None]
        assert len(chains) == 2  # each writer's chain resumes too late
        assert all("no retention record says they were deleted" in p.explanation for p in chains)
        assert case.cli_verify() == 1

    def test_a_chain_resuming_from_the_wrong_hash(self):
        """A chain that resumes after deleted entries must link to the last one's hash."""

        def statuses(seq: int, prev: str) -> list[str]:
            tracker = ChainTracker(open_start=False, expired={"w": [(0, 9, "a" * 64)]})
            assert tracker.see("w", seq, prev, "b" * 64, "e", None, None) == []
            return [p.status for p in tracker.finish()]

        assert statuses(10, "a" * 64) == []
        assert statuses(10, "c" * 64) == ["modified"]
        assert statuses(12, "c" * 64) == ["missing"]


class TestNoKeyNoOk:
    def test_paths_without_a_log_are_usage_errors(
        self, tmp_path: Path, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
    ):
        """An empty directory, a wrong path, a single file, an empty prefix: exit 2, never OK."""
        from tests.conftest import new_bucket
        from tests.tamper import Case as _Case

        empty = tmp_path / "empty"
        empty.mkdir()
        single = tmp_path / "one.jsonl"
        single.write_text("{}\n")
        runner = _Case("jsonl", "", None, tmp_path, FileStorage)  # type: ignore[arg-type]
        for target in (empty, tmp_path / "missing", single, f"s3://{new_bucket(s3_endpoint)}/x/"):
            assert runner.cli("verify", str(target)) == 2, target
        with pytest.raises(NoLogError, match="holds no log"):
            open_log(empty).verify()

    def test_a_change_of_signing_key_is_reported(self, case: Case):
        """Records signed by another key than the log's are reported, with or without it."""
        other = open_log(case.target, signing_key=generate_signing_key())
        other.hold("matter-9", reason="by another key")
        assert errors(case.verify()) == {"bad_signature"}
        report = case.verify(public_key=None, require_signatures=False)
        assert errors(report) == {"bad_signature"}
        assert "signing key changed" in report.errors[0].explanation
        assert case.cli("verify", case.target, "--no-signatures") == 1

    def test_checkpoint_of_nothing_sealed_is_refused(self, tmp_path: Path):
        """A checkpoint of a log with nothing sealed would cover nothing: exit 2."""
        path = tmp_path / "log"
        write(FileStorage(path, fsync="never"), days=1)
        from click.testing import CliRunner

        from comply_lab.cli import main

        result = CliRunner().invoke(main, ["checkpoint", str(path)])
        assert result.exit_code == 2
        assert "nothing in" in result.output and "is sealed yet" in result.output


class TestDecryptionChecksWhatItReturns:
    @pytest.mark.parametrize("backend", ["jsonl", "s3-jsonl"])
    def test_swapped_fernet_ciphertexts_are_marked(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str
    ):
        """Two entries' Fernet ciphertexts swapped: decryption marks both rows.

        Fernet content is not bound to its entry, so the cipher cannot see the swap; the
        check of the decrypted text against the entry's fingerprints does.
        """
        manager = EncryptionManager()
        case = _case(request, tmp_path, backend, days=0)
        logger = AuditLogger(case.storage(), manager, store_content=True)
        ids = [logger.log_sync(input=f"secret {i}", output=f"reply {i}") for i in range(3)]
        logger.close()
        segment = case.data()[0]
        rows = [orjson.loads(line) for line in case.files.read(segment).splitlines()]
        first, second = rows[0]["input_content"], rows[1]["input_content"]
        data = case.files.read(segment)
        data = data.replace(first.encode(), b"@").replace(second.encode(), first.encode())
        case.files.write(segment, data.replace(b"@", second.encode()))
        log = open_log(case.target, signing_key=case.signing_key)  # its access is signed
        result = log.decrypt(ids, manager, reason="case")
        assert result["decrypted"].tolist() == [False, False, True]
        assert result["verified"].tolist() == [False, False, True]
        assert result["input"][:2].isna().all() and result["input"][2] == "secret 2"
        assert all("belongs to another entry" in note for note in result["note"][:2])

    def test_keyed_fingerprints_need_the_hash_key_to_check(self, tmp_path: Path):
        """With keyed fingerprints the check needs the hash key; without it rows say so."""
        manager, hash_key = EncryptionManager(), b"k" * 32
        path = tmp_path / "log"
        logger = AuditLogger(path, manager, store_content=True, hash_key=hash_key)
        entry_id = logger.log_sync(input="q", output="a")
        logger.close()
        unchecked = open_log(path).decrypt([entry_id], manager, reason="r")
        assert unchecked["decrypted"][0] and pd.isna(unchecked["verified"][0])
        assert "pass hash_key=" in unchecked["note"][0]
        checked = open_log(path).decrypt([entry_id], manager, reason="r", hash_key=hash_key)
        assert bool(checked["verified"][0])


@pytest.fixture(params=BACKENDS)
def beating(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """Return a log on each backend whose writers promised an hourly heartbeat."""
    return _case(request, tmp_path, request.param, heartbeat_s=3600)


class TestStaleness:
    def test_a_cleanly_closed_log_is_never_stale(self, beating: Case):
        """A log whose writers closed ends with a final heartbeat: not stale, ever."""
        later = utc_now() + timedelta(days=30)
        assert beating.verify(as_of=later).ok
        assert beating.cli_verify("--as-of", later.isoformat()) == 0

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_a_writer_that_stopped_without_closing(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str
    ):
        """A writer that died (no final beat) leaves a log that goes stale after its cadence."""
        case = _case(request, tmp_path, backend, days=0, heartbeat_s=60)
        storage = case.storage()
        logger = AuditLogger(storage, clock=lambda: T0)
        logger.log_sync(input="q", output="a")
        for _ in range(100):  # the first beat is written by the heartbeat thread
            if case.files.trail("_heartbeat"):
                break
            time.sleep(0.05)
        beat = storage._heartbeat if case.local else storage.heartbeat  # type: ignore[attr-defined]
        beat._stop.set()  # the process dies here: no final beat
        assert case.verify().ok
        report = case.verify(as_of=utc_now() + timedelta(minutes=30))
        assert errors(report) == {"stale"}
        assert "promises a heartbeat every 1 minutes" in report.errors[0].explanation
        assert case.cli_verify("--as-of", (utc_now() + timedelta(hours=1)).isoformat()) == 1

    def test_a_cut_tail_is_stale(self, beating: Case):
        """A tail cut with its records and heartbeats: stale once the cadence has passed."""
        newest = beating.data()[-1]
        beating.files.delete(newest)
        manifest = beating.files.trail_lines("_manifest")
        beating.files.set_trail_lines(
            "_manifest", [m for m in manifest if newest.encode() not in m]
        )
        first = beating.files.trail_lines("_heartbeat")[0]  # the writers' first beat
        beating.files.set_trail_lines("_heartbeat", [first])
        if b"20260131" in first:  # it vouched for the cut day's unsealed bytes already
            assert "missing" in errors(beating.verify())
            return
        # At once, the cut is invisible without a checkpoint; in a JSONL log, what the removed
        # beats vouched for is no longer vouched for: pending.
        unsealed = {"pending"} if beating.backend == "jsonl" else set()
        assert errors(beating.verify()) == unsealed
        later = (utc_now() + timedelta(hours=2)).isoformat()
        assert errors(beating.verify(as_of=later)) == {"stale"} | unsealed
        assert beating.cli_verify("--as-of", later) == 1

    @pytest.mark.parametrize("backend", ["parquet", "s3-jsonl", "s3-parquet"])
    def test_removing_the_heartbeat_trail_is_missing(
        self, request: pytest.FixtureRequest, tmp_path: Path, backend: str
    ):
        """Manifest records promise heartbeats: a log without its heartbeat trail is missing it."""
        case = _case(request, tmp_path, backend)
        case.files.set_trail_lines("_heartbeat", [])
        report = case.verify()
        assert errors(report) == {"missing"}
        assert report.errors[0].explanation.startswith("the log promises heartbeats")


class TestCommandLine:
    @pytest.mark.slow  # several CLI subprocesses
    def test_exit_codes_as_a_subprocess(self, tmp_path: Path):
        """The real command: 0 with the key, 1 unverified or edited, 2 with no log."""
        case = build("parquet", tmp_path)
        base = [sys.executable, "-m", "comply_lab.cli", "verify"]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)

        assert run(case.target, "--public-key", str(case.public_key)).returncode == 0
        unkeyed = run(case.target)
        assert unkeyed.returncode == 1 and unkeyed.stdout.splitlines()[-1].startswith("UNVERIFIED")
        case.files.write("date=2026-01-29/x.parquet", case.files.read(case.data()[0]))
        edited = run(case.target, "--public-key", str(case.public_key))
        assert edited.returncode == 1 and "INSERTED" in edited.stdout
        (tmp_path / "empty").mkdir()
        empty = run(str(tmp_path / "empty"))
        assert empty.returncode == 2 and "holds no log" in empty.stderr
