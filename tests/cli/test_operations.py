"""Every documented command leaves a signed log that verifies with its public key.

Each command that records something is run the way an operator runs it — the real
``comply-lab`` command in a fresh process, or the documented Python call — on a signed
log left by a writer that was killed, once with the writer's key and once with an
operator key the writer declared. The killed writer's newest entries, which no heartbeat
vouched for, are ``PENDING`` until compaction (the first command) seals them; after
every command, ``comply-lab verify --public-key`` must exit 0; a key nobody declared
must make it exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import KeyRing, open_log
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem

pytestmark = pytest.mark.slow  # every CLI command as a subprocess, twice

T0 = datetime(2026, 1, 20, 9, tzinfo=UTC)
RING = KeyRing.generate("k1")
KILLED_WRITER = """
import os, sys
from datetime import datetime, timedelta, timezone
from comply_lab import AuditLogger, KeyRing
from comply_lab.audit import FileStorage

ring = KeyRing.from_text(open(sys.argv[2]).read())
storage = FileStorage(sys.argv[1], format="parquet", signing_key=sys.argv[3], fsync="always")
now = [datetime(2026, 1, 20, 9, tzinfo=timezone.utc)]
def clock():
    now[0] += timedelta(hours=5)
    return now[0]
logger = AuditLogger(storage, ring, store_content=True, clock=clock)
for i in range(40):
    logger.log_sync(input=f"question {i}", output=f"answer {i}", metadata={"user_id": "u1"})
os._exit(0)  # killed: nothing closed, the newest segment left unsealed
"""


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """Write the writer's and an operator's key files, and the content key ring."""
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("writer", "operator", "stranger"):
        key = generate_signing_key()
        (folder / f"{name}.pem").write_bytes(private_key_pem(key))
        (folder / f"{name}.pub").write_bytes(public_key_pem(key))
    (folder / "ring.txt").write_text(RING.to_text())
    new_ring = KeyRing.from_text(KeyRing.generate("k2").to_text() + "," + RING.to_text())
    (folder / "new-ring.txt").write_text(new_ring.to_text())
    return folder


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comply_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COMPLY_LAB_PROGRESS": "0"},
    )


def _verifies(log: Path, keys: Path, *extra: str) -> None:
    result = CliRunner().invoke(
        main, ["verify", str(log), "--public-key", str(keys / "writer.pub"), *extra]
    )
    assert result.exit_code == 0, result.output


def _pending(log: Path, keys: Path) -> None:
    """Check the killed writer's newest entries, no heartbeat vouched for, are PENDING."""
    result = CliRunner().invoke(
        main, ["verify", str(log), "--public-key", str(keys / "writer.pub")]
    )
    assert result.exit_code == 1 and "PENDING:" in result.output, result.output


@pytest.mark.slow
@pytest.mark.parametrize("signer", ["writer", "operator"])
def test_every_command_leaves_a_log_that_verifies(tmp_path: Path, keys: Path, signer: str):
    """Compaction after a killed writer, holds, retention, decryption, rotation, checkpoints."""
    log = tmp_path / "log"
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_WRITER,
            str(log),
            str(keys / "ring.txt"),
            str(keys / "writer.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert writer.returncode == 0, writer.stderr
    _pending(log, keys)
    key = str(keys / f"{signer}.pem")
    if signer == "operator":
        done = _run(
            "operators",
            str(log),
            "--add",
            "ops",
            "--key",
            str(keys / "operator.pub"),
            "--reason",
            "runs retention",
            "--signing-key",
            str(keys / "writer.pem"),
        )
        assert done.returncode == 0, done.stderr
        _pending(log, keys)
    ids = list(open_log(log).entries(columns=["id"])["id"])
    pin = ["--public-key", str(keys / "writer.pub")]  # the root, which an operator pins
    commands = [
        ["compact", str(log), "--signing-key", key, *pin],
        ["hold", str(log), "matter-1", "--reason", "litigation", "--signing-key", key, *pin],
        ["release", str(log), "matter-1", "--reason", "closed", "--signing-key", key, *pin],
        # Entries run from 20 to 28 January; the run's clock reads 1 February (see
        # tests/hermetic.py): this deletes 20 and 21 January, whatever today's date.
        ["retention", str(log), "--days", "10", "--apply", "--signing-key", key, *pin],
        [
            "decrypt",
            str(log),
            ids[-1],
            ids[-2],
            "--reason",
            "case 7",
            "--keys-file",
            str(keys / "ring.txt"),
            "--signing-key",
            key,
            *pin,
        ],
        ["checkpoint", str(log), "--signing-key", key, *pin, "-o", str(tmp_path / "cp.json")],
        ["stats", str(log)],
        ["entries", str(log), "-o", str(tmp_path / "all.csv")],
        ["ddl", "--engine", "duckdb", str(log)],
        ["evidence", str(log), str(tmp_path / "bundle"), "--public-key", str(keys / "writer.pub")],
    ]
    for command in commands:
        done = _run(*command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        _verifies(log, keys)
    rotation = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from comply_lab import KeyRing, open_log, rotate_keys\n"
            "log = open_log(sys.argv[1], signing_key=sys.argv[2], public_key=sys.argv[4])\n"
            "print(rotate_keys(log, KeyRing.from_text(open(sys.argv[3]).read())).rotated)\n",
            str(log),
            key,
            str(keys / "new-ring.txt"),
            str(keys / "writer.pub"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rotation.returncode == 0 and "date=" in rotation.stdout, rotation.stderr
    _verifies(log, keys, "--checkpoint", str(tmp_path / "cp.json"))
    python = open_log(log, signing_key=keys / f"{signer}.pem", public_key=keys / "writer.pub")
    python.hold("matter-2", reason="by the Python API")
    python.apply_retention(python.retention_plan(9), reason="one more day")
    # The command deleted 20 and 21 January; matter-2 holds every day since.
    assert min(python.storage.days()) == date(2026, 1, 22)
    python.decrypt(ids[-2:], KeyRing.from_text((keys / "new-ring.txt").read_text()), reason="r")
    _verifies(log, keys)
    stranger = open_log(log, signing_key=keys / "stranger.pem")
    stranger.hold("matter-3", reason="by a key nobody declared")
    result = CliRunner().invoke(
        main, ["verify", str(log), "--public-key", str(keys / "writer.pub")]
    )
    assert result.exit_code == 1 and "BAD_SIGNATURE" in result.output
    assert "neither the given key nor an operator key" in result.output
