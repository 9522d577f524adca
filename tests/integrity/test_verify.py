"""Verification against real file-level attacks, each detected and classified."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, IntegrityError, open_log, verify_content
from comply_lab.audit import EncryptionManager, FileStorage
from comply_lab.crypto.fingerprint import fingerprint
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.integrity.checkpoint import check_checkpoint, make_checkpoint
from comply_lab.model.entry import entry_hash
from comply_lab.storage.manifest import MANIFEST, TRAILS, read_records
from tests.tamper import write

T0 = datetime(2026, 1, 29, 9, 0, tzinfo=UTC)
KEY = generate_signing_key()


def build(
    path: Path, fmt: str = "parquet", key: object = KEY, days: int = 3, heartbeat_s: float = 3600
) -> list[str]:
    """Two writers interleaving over several days; sealed (signed) or left as JSONL."""
    options: dict[str, object] = {"format": fmt, "fsync": "never"}
    if fmt == "parquet":
        options |= {"signing_key": key, "heartbeat_s": heartbeat_s}
    return write(FileStorage(path, **options), days=days, per_day=30, start=T0)  # type: ignore[arg-type]


def statuses(report: object) -> set[str]:
    return {p.status for p in report.errors}  # type: ignore[attr-defined]


def parts(path: Path) -> list[Path]:
    return sorted(path.glob("date=*/*.parquet"))


def rewrite(part: Path, change: object) -> None:
    """Do what an attacker does: read a sealed file, change its rows, write it back."""
    table = pq.read_table(part)
    pq.write_table(change(table), part)  # type: ignore[operator]


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    build(tmp_path)
    return tmp_path


@pytest.fixture
def jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jsonl")
    build(path, fmt="jsonl")
    return path


class TestCleanLogs:
    def test_sealed_signed_log_verifies(self, sealed: Path):
        """A sealed, signed log verifies with its public key, with no finding at all."""
        report = open_log(sealed).verify(public_key=public_key_pem(KEY))
        assert report.ok, str(report)
        assert report.problems == []
        assert (report.entries, report.segments, report.manifest_records) == (90, 3, 3)
        assert report.signatures == "checked"
        assert open_log(sealed).verify(deep=True, public_key=KEY).ok
        report.raise_if_failed()

    def test_jsonl_log_verifies_with_unsealed_warnings(self, jsonl: Path):
        """An unsealed log verifies; each segment is flagged unsealed as a warning."""
        report = open_log(jsonl).verify(allow_unsigned=True)
        assert report.ok
        assert {p.status for p in report.problems} == {"unsealed"}
        assert report.to_frame()["severity"].unique().tolist() == ["warning"]

    def test_report_formats(self, sealed: Path):
        """The report prints as lines, HTML and a DataFrame with fixed columns."""
        (parts(sealed)[0]).unlink()
        report = open_log(sealed).verify(public_key=KEY)
        assert not report.ok
        assert "FAILED" in str(report)
        assert "MISSING" in str(report)
        assert "<table" in report._repr_html_()
        frame = report.to_frame()
        assert list(frame.columns) == [
            "status",
            "severity",
            "partition",
            "segment",
            "entry_id",
            "writer_id",
            "seq",
            "explanation",
        ]
        with pytest.raises(IntegrityError, match=r"FAILED: .* MISSING"):
            report.raise_if_failed()

    def test_memory_storage_verifies(self):
        """A memory store (no manifest) verifies its chains."""
        from comply_lab.audit import MemoryStorage

        storage = MemoryStorage()
        logger = AuditLogger(storage)
        for i in range(5):
            logger.log_sync(input=str(i), output="")
        assert open_log(storage).verify(allow_unsigned=True).ok


class TestByteFlips:
    @pytest.mark.slow
    @pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
    def test_every_flipped_byte_is_caught(self, tmp_path: Path, fmt: str):
        """500 random single-byte flips per format: every one fails and names what changed."""
        build(tmp_path, fmt=fmt, days=2)
        files = sorted(tmp_path.glob("audit_*.jsonl") if fmt == "jsonl" else parts(tmp_path))
        rng = random.Random(2026 if fmt == "jsonl" else 6202)
        log = open_log(tmp_path, progress=False)
        for trial in range(500):
            target = rng.choice(files)
            original = target.read_bytes()
            position = rng.randrange(len(original))
            damaged = bytearray(original)
            damaged[position] ^= rng.randrange(1, 256)
            target.write_bytes(bytes(damaged))
            try:
                report = log.verify(public_key=KEY)
            finally:
                target.write_bytes(original)
            assert not report.ok, f"trial {trial}: flip at {target.name}:{position} undetected"
            named = [p for p in report.errors if p.entry_id or p.segment]
            assert named, f"trial {trial}: nothing named"

    def test_flip_in_the_manifest(self, sealed: Path):
        """Editing a manifest record breaks its hash."""
        manifest = sealed / MANIFEST
        text = manifest.read_text().replace('"entries":30', '"entries":31', 1)
        manifest.write_text(text)
        report = open_log(sealed).verify(public_key=KEY)
        assert "modified" in statuses(report)


class TestAttacks:
    def test_delete_an_entry_from_jsonl(self, jsonl: Path):
        """A removed line leaves a gap in its writer's chain: missing."""
        segment = next(jsonl.glob("audit_20260130.jsonl"))
        lines = segment.read_bytes().splitlines(keepends=True)
        removed = orjson.loads(lines.pop(10))
        segment.write_bytes(b"".join(lines))
        report = open_log(jsonl).verify(allow_unsigned=True)
        assert statuses(report) == {"missing"}
        (problem,) = report.errors
        assert (problem.writer_id, problem.seq) == (removed["writer_id"], removed["seq"])

    def test_delete_an_entry_from_a_sealed_segment(self, sealed: Path):
        """A row removed from a Parquet file: the segment misses it, and so does the chain."""
        rewrite(parts(sealed)[1], lambda t: pa.concat_tables([t.slice(0, 5), t.slice(6)]))
        report = open_log(sealed).verify(public_key=KEY)
        assert "missing" in statuses(report)
        assert any(
            p.segment == parts(sealed)[1].relative_to(sealed).as_posix() for p in report.errors
        )

    def test_delete_a_segment(self, sealed: Path):
        """A sealed file that is gone is missing, and the chains show the gap."""
        name = parts(sealed)[1].relative_to(sealed).as_posix()
        parts(sealed)[1].unlink()
        report = open_log(sealed).verify(public_key=KEY)
        assert statuses(report) == {"missing"}
        assert any(p.segment == name for p in report.errors)

    def test_delete_a_partition(self, sealed: Path):
        """A whole day directory removed is reported segment by segment."""
        shutil.rmtree(sealed / "date=2026-01-30")
        report = open_log(sealed).verify(public_key=KEY)
        assert "missing" in statuses(report)
        assert any(str(p.partition) == "2026-01-30" for p in report.errors)

    def test_delete_a_manifest_record_or_the_manifest(self, sealed: Path):
        """A removed record breaks the manifest chain; its segment is no longer vouched for."""
        manifest = sealed / MANIFEST
        lines = manifest.read_bytes().splitlines(keepends=True)
        manifest.write_bytes(lines[0] + lines[2])
        assert {"missing", "inserted"} <= statuses(open_log(sealed).verify(public_key=KEY))
        manifest.unlink()
        report = open_log(sealed).verify(public_key=KEY)
        assert {"missing", "inserted"} <= statuses(report)
        assert any(p.segment == MANIFEST for p in report.errors)

    def test_swap_two_entries(self, jsonl: Path, tmp_path_factory: pytest.TempPathFactory):
        """Swapping two lines, or two Parquet rows, is classified as reordered."""
        segment = jsonl / "audit_20260129.jsonl"
        lines = segment.read_bytes().splitlines(keepends=True)
        lines[4], lines[6] = lines[6], lines[4]  # same writer: seqs 2 and 3
        segment.write_bytes(b"".join(lines))
        assert statuses(open_log(jsonl).verify(allow_unsigned=True)) == {"reordered"}

        sealed = tmp_path_factory.mktemp("sealed")
        build(sealed)
        order = list(range(30))
        order[4], order[6] = order[6], order[4]
        rewrite(parts(sealed)[0], lambda t: t.take(order))
        assert "reordered" in statuses(open_log(sealed).verify(public_key=KEY))

    def test_forged_entry_with_recomputed_hashes(self, sealed: Path, jsonl: Path):
        """A forged entry whose hashes are recomputed correctly is still caught as inserted."""

        def forge(
            template: dict[str, object], writer: str, seq: int, prev: str
        ) -> dict[str, object]:
            forged = dict(
                template,
                id="019c0000-0000-7000-8000-000000000000",
                input_hash=fingerprint("I approve the wire transfer"),
                writer_id=writer,
                seq=seq,
                prev_hash=prev,
            )
            forged.pop("entry_hash")
            forged["entry_hash"] = entry_hash(forged)
            return forged

        part = parts(sealed)[0]
        table = pq.read_table(part)
        row = table.slice(0, 1).to_pylist()[0]
        fake = forge(row, "f" * 32, 0, "0" * 64)
        rewrite(part, lambda t: pa.concat_tables([t, pa.Table.from_pylist([fake], t.schema)]))
        report = open_log(sealed).verify(public_key=KEY)
        assert "inserted" in statuses(report)
        assert any(p.entry_id == fake["id"] for p in report.errors)

        segment = jsonl / "audit_20260129.jsonl"
        first = orjson.loads(segment.read_bytes().splitlines()[0])
        fake = forge(first, first["writer_id"], 1, first["entry_hash"])  # claims seq 1
        segment.write_bytes(segment.read_bytes() + orjson.dumps(fake) + b"\n")
        assert "inserted" in statuses(open_log(jsonl).verify())

    def test_segment_replaced_and_resigned_with_another_key(self, tmp_path: Path):
        """A rewritten log signed by another key fails signature checks with the real key."""
        genuine, forged = tmp_path / "genuine", tmp_path / "forged"
        build(genuine)
        build(forged, key=generate_signing_key())
        shutil.copy(parts(forged)[0], parts(genuine)[0])
        shutil.copy(forged / MANIFEST, genuine / MANIFEST)
        report = open_log(genuine).verify(public_key=public_key_pem(KEY))
        assert "bad_signature" in statuses(report)
        assert all(
            p.segment.startswith(MANIFEST) for p in report.errors if p.status == "bad_signature"
        )

    def test_truncation_passes_locally_and_fails_against_a_checkpoint(self, tmp_path: Path):
        """Cutting the newest segment and its record passes locally; a checkpoint sees it.

        This log has no heartbeats (which would see the cut once they saw the segment):
        local checks alone cannot see what is no longer there.
        """
        sealed = tmp_path
        build(sealed, heartbeat_s=0)
        saved = open_log(sealed).checkpoint(KEY)
        parts(sealed)[-1].unlink()
        manifest = sealed / MANIFEST
        manifest.write_bytes(b"".join(manifest.read_bytes().splitlines(keepends=True)[:-1]))
        log = open_log(sealed)
        assert log.verify(public_key=public_key_pem(KEY)).ok  # documented limit of local checks
        report = log.verify(public_key=public_key_pem(KEY), checkpoint=saved.to_json())
        assert not report.ok
        assert report.checkpoint == "failed"
        assert statuses(report) == {"missing"}

    def test_checkpoint_signature_and_rewrite(self, sealed: Path, tmp_path: Path):
        """A forged checkpoint, or rewritten sealed history, fails against a checkpoint."""
        saved = open_log(sealed).checkpoint(KEY)
        path = tmp_path / "cp.json"
        saved.save(path)
        assert open_log(sealed).verify(public_key=KEY, checkpoint=str(path)).checkpoint == "matched"
        other = make_checkpoint(read_records(sealed), generate_signing_key())
        assert "bad_signature" in statuses(
            open_log(sealed).verify(public_key=KEY, checkpoint=other)
        )
        records = read_records(sealed)
        records[0]["entries"] = 99

        trails = {name: [r["record_hash"] for r in read_records(sealed, name)] for name in TRAILS}
        assert [p.status for p in check_checkpoint(saved, records, None, trails)] == ["modified"]

    def test_retention_is_expired_by_policy_not_missing(self, tmp_path: Path):
        """Days deleted by cleanup_expired are reported as expired_by_policy; the log is ok."""
        build(tmp_path)
        logger = AuditLogger(FileStorage(tmp_path, signing_key=KEY), retention_days=1)
        assert logger.cleanup_expired_sync(now=datetime(2026, 2, 1, 12, tzinfo=UTC)) == 60
        report = open_log(tmp_path).verify(public_key=KEY)
        assert report.ok, str(report)
        assert {p.status for p in report.problems} == {"expired_by_policy"}


class TestKeyedFingerprints:
    def test_dictionary_attack(self, tmp_path: Path):
        """With a hash key, 10,000 likely prompts match no stored hash; without, all match."""
        prompts = [f"What is the balance of account {n:05d}?" for n in range(10_000)]
        for mode, key in (("plain", None), ("keyed", os.urandom(32))):
            logger = AuditLogger(tmp_path / mode, hash_key=key)
            for prompt in prompts:
                logger.log_sync(input=prompt, output="")
            logger.close()
            stored = set(open_log(tmp_path / mode).entries(columns=["input_hash"])["input_hash"])
            guessed = {fingerprint(p) for p in prompts}
            assert len(stored & guessed) == (10_000 if key is None else 0)

    def test_hash_key_id_is_recorded(self, tmp_path: Path):
        """Entries record which key made their fingerprints, never the key."""
        key = os.urandom(32)
        logger = AuditLogger(tmp_path, hash_key=key)
        entry = logger.get_entry_sync(logger.log_sync(input="q", output="a"))
        assert entry is not None
        assert entry.hash_key_id is not None
        assert key.hex() not in (tmp_path / os.listdir(tmp_path)[0]).read_text()
        assert entry.input_hash == fingerprint("q", key)


class TestVerifyContent:
    def test_originals_stored_and_encrypted(self, tmp_path: Path):
        """Originals, stored text, decrypted text and keyed fingerprints are all checked."""
        manager, key = EncryptionManager(), os.urandom(32)
        plain = AuditLogger(tmp_path / "plain", store_content=True)
        secret = AuditLogger(tmp_path / "enc", store_content=True, encryption=manager, hash_key=key)
        a = plain.log_sync(input="hello", output="world")
        b = secret.log_sync(input="patient 7", output="ok")
        frame = open_log(tmp_path / "plain").entries()
        result = verify_content(frame, {a: ("hello", "WORLD")})
        assert (result["input_match"][0], result["output_match"][0]) == (True, False)
        assert verify_content(frame)["compared"][0] == "stored"
        enc = open_log(tmp_path / "enc").entries()
        no_key = verify_content(enc, encryption=manager)
        assert pd_na(no_key["input_match"][0])
        assert "hash_key" in no_key["note"][0]
        checked = verify_content(enc, hash_key=key, encryption=manager)
        assert checked.loc[0, ["input_match", "output_match", "compared"]].tolist() == [
            True,
            True,
            "decrypted",
        ]
        wrong = verify_content(enc, {b: ("patient 8", "ok")}, hash_key=key)
        assert wrong["input_match"].tolist() == [False]


def pd_na(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


class TestCli:
    @pytest.mark.slow  # several CLI subprocesses
    def test_exit_codes(self, sealed: Path, tmp_path_factory: pytest.TempPathFactory):
        """The verify command exits 0 when all verifies, 1 on integrity failure, 2 on misuse."""
        tmp_path = tmp_path_factory.mktemp("keys")
        pub = tmp_path / "writer.pub"
        pub.write_bytes(public_key_pem(KEY))

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "comply_lab.cli", *args], capture_output=True, text=True
            )

        done = run("verify", str(sealed), "--public-key", str(pub))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("OK: 90 entries")
        secret = tmp_path / "writer.pem"
        secret.write_bytes(private_key_pem(KEY))
        cp = tmp_path / "cp.json"
        assert (
            run("checkpoint", str(sealed), "--signing-key", str(secret), "-o", str(cp)).returncode
            == 0
        )
        parts(sealed)[0].unlink()
        done = run(
            "verify", str(sealed), "--public-key", str(pub), "--checkpoint", str(cp), "--json"
        )
        assert done.returncode == 1
        payload = json.loads(done.stdout)
        assert payload["summary"]["ok"] is False
        assert payload["problems"][0]["status"] == "missing"
        bad = tmp_path / "bad.pub"
        bad.write_text("not a key")
        done = run("verify", str(sealed), "--public-key", str(bad))
        assert done.returncode == 2
        assert done.stderr.startswith("error: ")


def test_sealing_never_vouches_for_a_tampered_entry(tmp_path: Path):
    """An entry edited before sealing is listed in its manifest record and reported."""
    build(tmp_path, fmt="jsonl", days=1)
    segment = tmp_path / "audit_20260129.jsonl"
    lines = segment.read_bytes().splitlines(keepends=True)
    record = orjson.loads(lines[3])
    lines[3] = lines[3].replace(b'"latency_ms":13.0', b'"latency_ms":1.0')
    segment.write_bytes(b"".join(lines))
    from comply_lab.storage.compaction import compact

    compact(tmp_path)
    assert read_records(tmp_path)[0]["invalid_entries"] == [record["id"]]
    report = open_log(tmp_path).verify(allow_unsigned=True)
    assert [(p.status, p.entry_id) for p in report.errors] == [("modified", record["id"])]
    assert "when it was sealed" in report.errors[0].explanation


def test_edited_plain_content_is_caught(tmp_path: Path):
    """Stored plain-text content is checked against its fingerprint, line by line."""
    logger = AuditLogger(tmp_path, store_content=True)
    entry_id = logger.log_sync(input="transfer 100 EUR", output="done")
    logger.close()
    segment = next(tmp_path.glob("audit_*.jsonl"))
    segment.write_bytes(segment.read_bytes().replace(b"100 EUR", b"900 EUR"))
    report = open_log(tmp_path).verify(allow_unsigned=True)
    assert [(p.status, p.entry_id) for p in report.errors] == [("modified", entry_id)]
    assert "stored input does not match its input_hash" in report.errors[0].explanation


def test_a_whole_last_entry_without_its_newline_is_an_edit(jsonl: Path):
    """A complete final record whose newline was changed is modified, not a torn write."""
    segment = jsonl / "audit_20260131.jsonl"
    data = segment.read_bytes()
    segment.write_bytes(data[:-1] + b"X")
    report = open_log(jsonl).verify(allow_unsigned=True)
    assert [p.status for p in report.errors] == ["modified"]
    assert "lost its line end" in report.errors[0].explanation
    segment.write_bytes(data[:-1])  # only the newline gone: still a whole entry, still an edit
    assert "modified" in statuses(open_log(jsonl).verify())
    segment.write_bytes(data + b'{"id": "torn')  # a torn write after it: only a warning
    torn = open_log(jsonl).verify(allow_unsigned=True)
    assert torn.ok
    assert any("torn by a crash" in p.explanation for p in torn.problems)
