"""RFC 3161 timestamps of checkpoints, from a real authority (OpenSSL) on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from comply_lab import AuditLogger, open_log
from comply_lab._time import system_now
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.errors import InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.witness import cosign, witness_signer
from comply_lab.sample import write_sample
from tests.integrity.test_witness import cli
from tests.tsa_server import Authority, authority

KEY = generate_signing_key()
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def tsa() -> Authority:
    """Run a test time-stamp authority for the module."""
    with authority() as running:
        yield running


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """Write a small signed log, its keys, and a checkpoint of it (cp.txt)."""
    (tmp_path / "writer.pem").write_bytes(private_key_pem(KEY))
    (tmp_path / "writer.pub").write_bytes(public_key_pem(KEY))
    storage = FileStorage(tmp_path / "log", format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c), 40, 2).close()
    open_log(tmp_path / "log").checkpoint(KEY).save(tmp_path / "cp.txt")
    return tmp_path


def _verify(folder: Path, ca: Path, *extra: object) -> tuple[int, str]:
    return cli("verify", folder / "log", "--public-key", folder / "writer.pub", "--checkpoint",
               folder / "cp.txt", "--tsa-cert", ca, *extra)  # fmt: skip


def test_a_timestamped_checkpoint_states_when_it_existed(logged: Path, tsa: Authority):
    """`timestamp` stores CHECKPOINT.tsr; verify checks it and prints the proven time."""
    code, out = cli("timestamp", logged / "cp.txt", "--tsa", tsa.url)
    assert code == 0 and (logged / "cp.txt.tsr").is_file(), out
    code, out = _verify(logged, tsa.ca_cert)
    assert code == 0 and "(trusted timestamp)" in out, out
    report = open_log(logged / "log").verify(
        public_key=KEY, checkpoint=logged / "cp.txt", timestamp=logged / "cp.txt.tsr",
        tsa_certs=tsa.ca_cert,
    )  # fmt: skip
    assert report.ok and report.timestamped is not None
    stamped = datetime.fromisoformat(report.timestamped)  # by the authority's own clock
    assert abs(stamped - system_now()) < timedelta(minutes=10)
    assert len(tsa.requests) == 1


def test_cosignatures_added_later_keep_the_timestamp_valid(logged: Path, tsa: Authority):
    """The timestamp covers the note's text, not its signature lines."""
    cli("timestamp", logged / "cp.txt", "--tsa", tsa.url)
    done = cosign(Checkpoint.load(logged / "cp.txt"), witness_signer(generate_signing_key()),
                  logged / "state", KEY.public_key())  # fmt: skip
    done.checkpoint.save(logged / "cp.txt")
    assert _verify(logged, tsa.ca_cert)[0] == 0


def test_a_wrong_or_altered_timestamp_fails(logged: Path, tsa: Authority, tmp_path: Path):
    """Flipped bytes, another checkpoint's token or another authority: BAD_TIMESTAMP, exit 1."""
    cli("timestamp", logged / "cp.txt", "--tsa", tsa.url)
    token = (logged / "cp.txt.tsr").read_bytes()
    flipped = logged / "flipped.tsr"
    flipped.write_bytes(token[:-40] + bytes([token[-40] ^ 1]) + token[-39:])
    code, out = _verify(logged, tsa.ca_cert, "--timestamp", flipped)
    assert code == 1 and "BAD_TIMESTAMP" in out
    other = tmp_path / "other"
    other.mkdir()
    storage = FileStorage(other / "log", format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c), 30, 2, seed=9).close()
    open_log(other / "log").checkpoint(KEY).save(other / "cp.txt")
    cli("timestamp", other / "cp.txt", "--tsa", tsa.url)
    code, out = _verify(logged, tsa.ca_cert, "--timestamp", other / "cp.txt.tsr")
    assert code == 1 and "BAD_TIMESTAMP" in out
    with authority() as stranger:
        assert _verify(logged, stranger.ca_cert)[0] == 1


def test_an_unreachable_authority_and_missing_parts_are_clear(logged: Path):
    """No authority listening: exit 1 saying so; a timestamp without certificates: error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = cli("timestamp", logged / "cp.txt", "--tsa", f"http://127.0.0.1:{port}/")
    assert code == 1 and "did not answer" in out
    with pytest.raises(InvalidQueryError, match="give all three"):
        open_log(logged / "log").verify(checkpoint=logged / "cp.txt", timestamp=b"x")
