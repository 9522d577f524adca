"""Checkpoints as C2SP signed notes over the tree of entry hashes; proofs into them."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.merkle import MerkleTree, dyadic_blocks, leaf_hash
from comply_lab.crypto.note import Note, Signer, Verifier
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.errors import InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint, verifier_key
from comply_lab.integrity.tlog import ConsistencyProof, LogTree, consistency
from comply_lab.sample import write_sample
from comply_lab.storage import leaves as leaves_module
from comply_lab.storage.leaves import kept_subtrees, tree_parts
from comply_lab.storage.manifest import MANIFEST, chain_record, parse_records, record_line
from tests.conftest import storage_factory

KEY = generate_signing_key()


def _log(
    path: Path, entries: int, days: int = 3, seed: int = 0, key=KEY, origin: str | None = None
) -> Path:
    storage = FileStorage(path, format="parquet", signing_key=key, origin=origin)
    write_sample(lambda c: AuditLogger(storage, clock=c), entries, days, seed=seed).close()
    return path


def test_a_checkpoint_is_a_signed_note_over_every_sealed_entry(tmp_path: Path):
    """Origin, size, root, extension lines; the root is the tree of entry hashes in order."""
    path = _log(tmp_path / "log", 120, origin="example.com/audit")
    log = open_log(path)
    checkpoint = log.checkpoint(KEY, origin="example.com/audit")
    note = Note.parse(checkpoint.to_note())
    lines = note.text.splitlines()
    assert lines[:2] == ["example.com/audit", "120"]
    hashes = list(log.entries(columns=["entry_hash"])["entry_hash"])  # time order
    tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in checkpoint_order(path)])
    assert sorted(hashes) == sorted(checkpoint_order(path))
    assert lines[2] == base64.b64encode(tree.root()).decode() == checkpoint.tree_root
    assert any(line.startswith("comply-lab manifest ") for line in lines)
    verifier = Verifier.parse(verifier_key(KEY.public_key(), "example.com/audit"))
    assert [v for v, _ in note.verified_by([verifier])] == [verifier]
    saved = tmp_path / "cp.txt"
    checkpoint.save(saved)
    for form in (saved, str(saved), saved.read_text(), checkpoint.to_json(), checkpoint):
        assert Checkpoint.load(form) == checkpoint
    assert log.verify(public_key=KEY, checkpoint=saved, origin="example.com/audit").ok
    vkey = tmp_path / "writer.vkey"
    vkey.write_text(verifier_key(KEY.public_key(), "example.com/audit") + "\n")
    assert log.verify(public_key=vkey, checkpoint=saved).ok  # the verifier key pins both
    elsewhere = log.verify(public_key=KEY, checkpoint=saved)  # the key's default origin
    assert {p.status for p in elsewhere.problems} == {"bad_signature"}
    found = [p.explanation for p in elsewhere.problems]
    assert any("not of the log the verifier pinned" in text for text in found)
    assert any("genesis names origin 'example.com/audit'" in text for text in found)
    with pytest.raises(InvalidQueryError, match=r"genesis names it 'example\.com/audit'"):
        log.checkpoint(KEY, origin="example.com/other")  # the genesis fixed the name


def checkpoint_order(path: Path) -> list[str]:
    """Return the entry hashes in tree order: parts by manifest record, rows as stored."""
    order = []
    for line in (path / "_manifest.jsonl").read_text().splitlines():
        part = path / json.loads(line)["segment"]
        order += pq.read_table(part, columns=["entry_hash"]).column(0).to_pylist()
    return order


def test_proofs_check_with_the_checkpoint_alone(tmp_path: Path):
    """log.prove gives paths to the checkpoint's root; a wrong root or hash fails."""
    path = _log(tmp_path / "log", 200)
    log = open_log(path)
    checkpoint = log.checkpoint(KEY)
    ids = list(log.entries(columns=["id"])["id"].sample(5, random_state=1))
    proofs = log.prove(ids, checkpoint)
    assert [p.entry_id for p in proofs] == ids
    assert all(p.verify(str(checkpoint.tree_root)) for p in proofs)
    other = base64.b64encode(b"\x01" * 32).decode()
    assert not any(p.verify(other) for p in proofs)
    forged = proofs[0].__class__(**{**proofs[0].to_dict(), "entry_hash": "ab" * 32})
    assert not forged.verify(str(checkpoint.tree_root))
    with pytest.raises(InvalidQueryError, match="not among"):
        log.prove(["no-such-id"], checkpoint)


def test_a_grown_log_verifies_against_an_old_checkpoint_and_proves_it(tmp_path: Path):
    """More sealed days later: verify --checkpoint OLD passes; --since writes a valid proof."""
    path = tmp_path / "log"
    key_file = tmp_path / "writer.pem"
    key_file.write_bytes(private_key_pem(KEY))
    (tmp_path / "writer.pub").write_bytes(public_key_pem(KEY))
    _log(path, 90, days=3, seed=1)
    runner = CliRunner()
    first = runner.invoke(main, ["checkpoint", str(path), "--signing-key", str(key_file),
                                 "-o", str(tmp_path / "cp1.txt")])  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "verifier key: comply-lab/" in first.output
    storage = FileStorage(path, format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c), 60, 2, seed=2).close()
    second = runner.invoke(main, ["checkpoint", str(path), "--signing-key", str(key_file),
                                  "-o", str(tmp_path / "cp2.txt"), "--since",
                                  str(tmp_path / "cp1.txt")])  # fmt: skip
    assert second.exit_code == 0, second.output
    proof = ConsistencyProof.load((tmp_path / "cp2.txt.proof").read_text())
    old, new = (Checkpoint.load(tmp_path / f"cp{i}.txt") for i in (1, 2))
    assert (proof.old_size, proof.new_size) == (old.size, new.size) == (90, 150)
    assert proof.verify() and proof.old_root == old.tree_root and proof.new_root == new.tree_root
    verified = runner.invoke(main, ["verify", str(path), "--public-key",
                                    str(tmp_path / "writer.pub"), "--checkpoint",
                                    str(tmp_path / "cp1.txt")])  # fmt: skip
    assert verified.exit_code == 0, verified.output


def test_a_rewritten_history_is_not_consistent(tmp_path: Path):
    """The key holder writes another history and checkpoints it: no proof, verify fails."""
    honest = _log(tmp_path / "honest", 80, seed=3)
    old = open_log(honest).checkpoint(KEY)
    old.save(tmp_path / "old.txt")
    forged = _log(tmp_path / "forged", 120, seed=4)  # same key, other entries
    key_file = tmp_path / "writer.pem"
    key_file.write_bytes(private_key_pem(KEY))
    result = CliRunner().invoke(main, ["checkpoint", str(forged), "--signing-key", str(key_file),
                                       "-o", str(tmp_path / "new.txt"), "--since",
                                       str(tmp_path / "old.txt")])  # fmt: skip
    assert result.exit_code == 1 and "NOT CONSISTENT" in result.output
    assert not (tmp_path / "new.txt.proof").exists()
    report = open_log(forged).verify(public_key=KEY, checkpoint=old)
    assert not report.ok and report.checkpoint == "failed"


def test_an_unsigned_or_foreign_checkpoint_is_refused_with_the_key(tmp_path: Path):
    """Verifying with the writer's key: a checkpoint it did not sign is a bad signature."""
    path = _log(tmp_path / "log", 40)
    log = open_log(path)
    unsigned = log.checkpoint()
    assert "\n\n" not in unsigned.to_note()
    signed = Note.parse(log.checkpoint(KEY).to_note())
    other = Signer(signed.text.split("\n")[0], generate_signing_key())
    foreign = str(Note(signed.text).signed_by(other))  # same text, another key
    for checkpoint in (unsigned, foreign):
        report = log.verify(public_key=KEY, checkpoint=checkpoint)
        assert "bad_signature" in set(report.to_frame()["status"])


def test_a_note_edited_after_signing_is_refused(tmp_path: Path):
    """One changed trail count in the signed text: the signature no longer verifies."""
    path = _log(tmp_path / "log", 40)
    log = open_log(path)
    text = log.checkpoint(KEY).to_note().replace("comply-lab time 20", "comply-lab time 19")
    report = log.verify(public_key=KEY, checkpoint=text)
    assert "bad_signature" in set(report.to_frame()["status"])


def test_earlier_json_checkpoints_still_load_and_check(tmp_path: Path):
    """A /2 JSON checkpoint (no tree) is read and checked as before; proving needs a tree."""
    path = _log(tmp_path / "log", 40)
    log = open_log(path)
    note = log.checkpoint(KEY)
    legacy = {
        "records": note.records, "entries": note.entries, "root": note.root, "head": note.head,
        "time": note.time, "key_id": None, "signature": None,
        "format": "comply-lab-checkpoint/2", "trails": note.trails,
    }  # fmt: skip
    loaded = Checkpoint.load(json.dumps(legacy))
    assert loaded.size is None and log.verify(checkpoint=loaded).checkpoint == "matched"
    with pytest.raises(InvalidQueryError, match="states no tree"):
        log.prove([], loaded)


@pytest.mark.parametrize(
    "text",
    ["", "origin\n", "origin\n01\nAAAA\n", "bad origin\n1\n" + "A" * 43 + "=\n", "o\n1\n" +
     "A" * 43 + "=\ncomply-lab nonsense\n", "o\n1\n" + "A" * 43 + "=\n",
     "o\n1\n" + "A" * 43 + "=\ncomply-lab time 2026\n"],
)  # fmt: skip
def test_malformed_checkpoint_notes_get_a_typed_error(text: str, tmp_path: Path):
    """Not a checkpoint note: InvalidQueryError saying what is expected."""
    with pytest.raises(InvalidQueryError, match="checkpoint"):
        Checkpoint.load(text if "\n" in text else text + "\n\n")


@pytest.mark.parametrize("backend", ["parquet", "s3-parquet"])
def test_sealing_records_each_part_s_place_in_the_tree(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
):
    """A part's first manifest record holds its first leaf and the subtrees covering it.

    Retention keeps those subtrees (from the record: it neither reads nor hashes the part);
    they are the ones its entries give, and the tree they rebuild is the checkpoint's.
    """
    endpoint = request.getfixturevalue("s3_endpoint") if backend.startswith("s3") else None
    storage = storage_factory(backend, endpoint)()
    storage.signing_key = KEY  # type: ignore[attr-defined]
    write_sample(lambda c: AuditLogger(storage, clock=c), 300, 4, seed=3).close()
    records = [r for _, r in parse_records(storage.read_metadata(MANIFEST)) if r]
    parts = tree_parts(records)
    leaves = LogTree.of(storage).tree.levels[0]
    start = 0
    for part in parts:
        record = next(r for r in records if r.get("segment") == part.name)
        assert record["tree_start"] == start
        mine = leaves[start : start + int(part.entries or 0)]
        assert record["subtrees"] == [[s, n, h.hex()] for s, n, h in dyadic_blocks(start, mine)]
        start += int(part.entries or 0)

    def never(*_: object, **__: object) -> None:
        raise AssertionError("retention read a part it had the subtrees of")

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(leaves_module, "part_hashes", never)
    try:
        kept = kept_subtrees(storage, storage.segments(parts[0].day))
    finally:
        monkeypatch.undo()
    assert kept[parts[0].name] == records[0]["subtrees"]


def test_subtrees_the_key_holder_got_wrong_are_found(tmp_path: Path):
    """A manifest rewritten and signed again with other subtrees: deep verification says so."""
    path = tmp_path / "log"
    storage = FileStorage(path, format="parquet", signing_key=KEY, heartbeat_s=0)
    write_sample(lambda c: AuditLogger(storage, clock=c), 80, 2, seed=4).close()
    lines = (path / MANIFEST).read_bytes().splitlines()
    records, previous = [], None
    for number, line in enumerate(lines):
        record = {
            k: v
            for k, v in json.loads(line).items()
            if k not in ("prev_record_hash", "record_hash", "signer", "signature")
        }
        if number == 0:
            record["subtrees"][0][2] = "00" * 32
        previous = chain_record(record, previous, KEY)
        records.append(record_line(previous))
    (path / MANIFEST).write_bytes(b"\n".join(records) + b"\n")
    log = open_log(path)
    assert log.verify(public_key=KEY).ok  # an intact part: its record is the writer's word
    found = log.verify(public_key=KEY, deep=True).problems
    assert [(p.status, p.segment) for p in found] == [("modified", records_first(path))]
    assert "subtrees its manifest record keeps" in found[0].explanation


def records_first(path: Path) -> str:
    return str(json.loads((path / MANIFEST).read_bytes().splitlines()[0])["segment"])


def test_retention_keeps_the_tree_whole(tmp_path: Path):
    """Delete the oldest days: checkpoints, proofs and old checkpoints still work."""
    path = _log(tmp_path / "log", 150, days=5, seed=5)
    log = open_log(path, signing_key=KEY)
    before = log.checkpoint(KEY)
    days = sorted(log.partitions()["date"])
    gone = log.entries(end=str(days[1]), columns=["id"])["id"].tolist()
    plan = log.retention_plan(1, now=f"{days[1] + timedelta(days=2)}")
    log.apply_retention(plan[plan["partition"] <= days[1]], reason="test")
    assert len(log.entries()) == 150 - len(gone)
    after = log.checkpoint(KEY)
    assert (after.size, after.tree_root) == (before.size, before.tree_root)  # same tree
    assert log.verify(public_key=KEY, checkpoint=before).ok
    kept = log.entries(columns=["id"])["id"].tolist()[:3]
    assert all(p.verify(str(after.tree_root)) for p in log.prove(kept, after))
    with pytest.raises(InvalidQueryError, match="not among"):
        log.prove(gone[:1], after)
    more = FileStorage(path, format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(more, clock=c), 30, 1, seed=6).close()
    grown = open_log(path).checkpoint(KEY)
    proof = consistency(LogTree.of(open_log(path).storage), before, grown)
    assert proof.verify() and grown.size == 180
