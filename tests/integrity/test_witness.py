"""Witnesses cosign only a log that grew; verification asks for a quorum of them."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.note import Note, Signer
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.errors import InvalidKeyError, InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint, verifier_key
from comply_lab.integrity.witness import WitnessRefusal, cosign, witness_signer
from comply_lab.model.entry import parse_time
from comply_lab.sample import write_sample

WRITER = generate_signing_key()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Write the writer's key pair and two witnesses' private keys to files."""
    files = {"writer": tmp_path / "writer.pem", "pub": tmp_path / "writer.pub"}
    files["writer"].write_bytes(private_key_pem(WRITER))
    files["pub"].write_bytes(public_key_pem(WRITER))
    for name in ("a", "b"):
        files[name] = tmp_path / f"witness-{name}.pem"
        files[name].write_bytes(private_key_pem(generate_signing_key()))
    return files


def _grow(path: Path, entries: int, seed: int, origin: str | None = None) -> None:
    storage = FileStorage(path, format="parquet", signing_key=WRITER, origin=origin)
    write_sample(lambda c: AuditLogger(storage, clock=c), entries, 2, seed=seed).close()


def cli(*args: object) -> tuple[int, str]:
    """Run comply-lab in-process; return the exit code and everything it printed."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _checkpoint(path: Path, keys: dict[str, Path], out: Path, since: Path | None = None) -> None:
    extra = ["--since", since] if since else []
    code, output = cli("checkpoint", path, "--signing-key", keys["writer"], "-o", out, *extra)
    assert code == 0, output


def _witness(keys: dict[str, Path], name: str, checkpoint: Path, state: Path) -> tuple[int, str]:
    return cli("witness", "--key", keys[name], "--state", state / name, "--log-key", keys["pub"],
               checkpoint)  # fmt: skip


def test_an_honest_log_is_cosigned_as_it_grows_and_verifies_with_a_quorum(
    tmp_path: Path, keys: dict[str, Path]
):
    """First checkpoint, then one proven to extend it: cosigned each time; quorum of 2 met."""
    log, state = tmp_path / "log", tmp_path / "state"
    _grow(log, 60, seed=1)
    _checkpoint(log, keys, tmp_path / "cp1.txt")
    code, out = _witness(keys, "a", tmp_path / "cp1.txt", state)
    assert code == 0 and "first checkpoint seen" in out, out
    vkey_a = out.split("witness key: ")[1].strip()
    _grow(log, 40, seed=2)
    _checkpoint(log, keys, tmp_path / "cp2.txt", since=tmp_path / "cp1.txt")
    for name in ("a", "b"):
        code, out = _witness(keys, name, tmp_path / "cp2.txt", state)
        assert code == 0, out
    assert "extends 100" in _witness(keys, "a", tmp_path / "cp2.txt", state)[1]  # seen: same
    vkey_b = out.split("witness key: ")[1].strip()
    code, out = cli("verify", log, "--public-key", keys["pub"], "--checkpoint",
                    tmp_path / "cp2.txt", "--witness-key", vkey_a, "--witness-key", vkey_b,
                    "--witnesses", "2")  # fmt: skip
    assert code == 0 and "cosigned by 2 witness(es)" in out, out
    note = Note.parse((tmp_path / "cp2.txt").read_text())
    assert len(note.signatures) == 3  # the writer's and two cosignatures


def test_a_history_rewritten_with_the_writers_key_is_detected(tmp_path: Path, keys):
    """After a witnessed checkpoint, the key holder's rewrite gets no cosignature."""
    honest, forged, state = tmp_path / "honest", tmp_path / "forged", tmp_path / "state"
    _grow(honest, 60, seed=1)
    _checkpoint(honest, keys, tmp_path / "cp1.txt")
    code, out = _witness(keys, "a", tmp_path / "cp1.txt", state)
    vkey = out.split("witness key: ")[1].strip()
    _grow(forged, 90, seed=7)  # another history, signed with the same key
    _checkpoint(forged, keys, tmp_path / "forged.txt")
    code, out = _witness(keys, "a", tmp_path / "forged.txt", state)
    assert code == 1 and "consistency proof" in out
    _grow(honest, 30, seed=2)  # a genuine proof, of another history, does not help
    _checkpoint(honest, keys, tmp_path / "cp2.txt", since=tmp_path / "cp1.txt")
    (tmp_path / "forged.txt.proof").write_text((tmp_path / "cp2.txt.proof").read_text())
    code, out = _witness(keys, "a", tmp_path / "forged.txt", state)
    assert code == 1 and "REFUSED" in out
    for checkpoint in (tmp_path / "forged.txt", tmp_path / "cp1.txt"):
        code, out = cli("verify", forged, "--public-key", keys["pub"], "--checkpoint",
                        checkpoint, "--witness-key", vkey)  # fmt: skip
        assert code == 1, out
    assert "UNWITNESSED" in cli("verify", forged, "--public-key", keys["pub"], "--checkpoint",
                                tmp_path / "forged.txt", "--witness-key", vkey)[1]  # fmt: skip


def test_back_dated_and_older_checkpoints_are_refused(tmp_path: Path):
    """A checkpoint dated before the cosigned one, or covering less, is never cosigned."""
    path = tmp_path / "log"
    _grow(path, 50, seed=3)
    log = open_log(path)
    first = log.checkpoint(WRITER)
    witness = witness_signer(generate_signing_key())
    cosign(first, witness, tmp_path / "state", WRITER.public_key())
    body = Note.parse(first.to_note()).text.replace("comply-lab time 20", "comply-lab time 19")
    back = Checkpoint.load(str(Note(body).signed_by(Signer(str(first.origin), WRITER))))
    with pytest.raises(WitnessRefusal, match="back-dated"):
        cosign(back, witness, tmp_path / "state", WRITER.public_key())
    # Dated far ahead: cosigning it would make every honest checkpoint after it back-dated.
    ahead = Note.parse(first.to_note()).text.replace("comply-lab time 20", "comply-lab time 29")
    future = Checkpoint.load(str(Note(ahead).signed_by(Signer(str(first.origin), WRITER))))
    with pytest.raises(WitnessRefusal, match="ahead of this witness's clock"):
        cosign(future, witness, tmp_path / "state-f", WRITER.public_key())
    # The same instant written with another offset is not earlier.
    offset = Note.parse(first.to_note()).text
    stamp = str(first.time)
    assert stamp.endswith("+00:00")
    moved = (parse_time(stamp) + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    shifted = offset.replace(stamp, moved.isoformat(timespec="microseconds"))
    later = Checkpoint.load(str(Note(shifted).signed_by(Signer(str(first.origin), WRITER))))
    assert str(later.time) < stamp  # as text it sorts first; as an instant it is later
    cosign(later, witness, tmp_path / "state", WRITER.public_key())
    _grow(path, 20, seed=4)
    bigger = log.checkpoint(WRITER)
    state = tmp_path / "state2"
    cosign(bigger, witness, state, WRITER.public_key())
    with pytest.raises(WitnessRefusal, match="fewer than"):
        cosign(Checkpoint.load(first.to_note()), witness, state, WRITER.public_key(), now=2**40)
    with pytest.raises(WitnessRefusal, match="no signature"):
        cosign(bigger, witness, tmp_path / "s3", generate_signing_key().public_key())


def test_witness_keys_and_quorums_are_checked(tmp_path: Path):
    """A writer's key given as a witness key, or a quorum above the keys: typed errors."""
    path = tmp_path / "log"
    _grow(path, 20, seed=5)
    log = open_log(path)
    checkpoint = log.checkpoint(WRITER)
    writer_vkey = verifier_key(WRITER.public_key(), str(checkpoint.origin))
    with pytest.raises(InvalidKeyError, match="not a witness"):
        log.verify(public_key=WRITER, checkpoint=checkpoint, witness_keys=[writer_vkey])
    witness = witness_signer(generate_signing_key()).verifier.vkey()
    with pytest.raises(InvalidQueryError, match="between 1 and 1"):
        log.verify(checkpoint=checkpoint, witness_keys=[witness], witnesses=2)
    with pytest.raises(InvalidQueryError, match="give the checkpoint"):
        log.verify(witness_keys=[witness])
    report = log.verify(public_key=WRITER, checkpoint=checkpoint, witness_keys=[witness])
    assert report.verdict == "FAILED" and "unwitnessed" in set(report.to_frame()["status"])


def test_a_witness_counts_once_however_many_lines_it_signed(tmp_path: Path, keys):
    """Insider: one witness's cosignature pasted twice, or given twice, is one of a quorum."""
    log = tmp_path / "log"
    _grow(log, 40, seed=3)
    _checkpoint(log, keys, tmp_path / "cp.txt")
    code, out = _witness(keys, "a", tmp_path / "cp.txt", tmp_path / "state")
    vkey_a = out.split("witness key: ")[1].strip()
    text = (tmp_path / "cp.txt").read_text()
    line = next(row for row in text.splitlines() if row.startswith("\u2014 comply-lab-witness"))
    (tmp_path / "cp.txt").write_text(text + line + "\n")  # the same line twice
    signer_b = witness_signer(generate_signing_key())
    vkey_b = signer_b.verifier.vkey()
    code, out = cli("verify", log, "--public-key", keys["pub"], "--checkpoint",
                    tmp_path / "cp.txt", "--witness-key", vkey_a, "--witness-key", vkey_b,
                    "--witnesses", "2")  # fmt: skip
    assert code == 1 and "UNWITNESSED" in out and "cosignatures of 1 of the 2" in out
    code, out = cli("verify", log, "--public-key", keys["pub"], "--checkpoint",
                    tmp_path / "cp.txt", "--witness-key", vkey_a, "--witness-key", vkey_a,
                    "--witnesses", "2")  # fmt: skip
    assert code == 2 and "distinct witness keys" in out


def test_a_history_started_over_under_a_new_origin_is_refused(tmp_path: Path, keys):
    """Insider: the writer's key holder rewrites under '<origin>-v2': no witness, no verify."""
    log = tmp_path / "log"
    _grow(log, 40, seed=4)
    _checkpoint(log, keys, tmp_path / "cp.txt")
    code, out = _witness(keys, "a", tmp_path / "cp.txt", tmp_path / "state")
    assert code == 0, out
    origin = Checkpoint.load(tmp_path / "cp.txt").origin
    code, out = cli("checkpoint", log, "--signing-key", keys["writer"], "--origin",
                    f"{origin}-v2", "-o", tmp_path / "v2.txt")  # fmt: skip
    assert code == 2 and "genesis names it" in out  # the log's own genesis fixed its name
    rewritten = tmp_path / "rewritten"
    _grow(rewritten, 30, seed=5, origin=f"{origin}-v2")  # a new log, made under a new name
    code, out = cli("checkpoint", rewritten, "--signing-key", keys["writer"], "-o",
                    tmp_path / "v2.txt")  # fmt: skip
    assert code == 0, out
    code, out = _witness(keys, "a", tmp_path / "v2.txt", tmp_path / "state")
    assert code == 1 and "under another origin" in out
    signer = witness_signer(generate_signing_key())
    fresh = cosign(Checkpoint.load(tmp_path / "v2.txt"), signer, tmp_path / "fresh",
                   WRITER.public_key())  # fmt: skip
    fresh.checkpoint.save(tmp_path / "v2.txt")  # a witness that never saw the log cosigns
    code, out = cli("verify", rewritten, "--public-key", keys["pub"], "--checkpoint",
                    tmp_path / "v2.txt", "--witness-key", signer.verifier.vkey())  # fmt: skip
    assert code == 1 and "not of the log the verifier pinned" in out
    code, out = cli("witness", "--key", keys["a"], "--state", tmp_path / "state" / "a",
                    "--log-key", keys["pub"], "--new-origin", tmp_path / "v2.txt")  # fmt: skip
    assert code == 0, out  # a log renamed on purpose, said so
