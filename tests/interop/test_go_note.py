"""Checkpoints read by an independent implementation: Go's golang.org/x/mod/sumdb/note.

A small Go program (``note_tool.go``), built offline against Debian's
``golang-golang-x-mod-dev``, opens a checkpoint comply_lab wrote with the verifier key
comply_lab printed, and signs a note that comply_lab's parser then checks. Skipped where
Go or the package is absent; ``make interop`` installs both and runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.note import Note, Verifier
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.integrity.checkpoint import Checkpoint, verifier_key
from comply_lab.sample import write_sample

GOPATH = Path("/usr/share/gocode")
PACKAGE = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "note"

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None or not PACKAGE.is_dir(),
    reason="Go and golang-golang-x-mod-dev are not installed (make interop installs them)",
)


@pytest.fixture(scope="module")
def note_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the Go program offline, with Debian's copy of golang.org/x/mod."""
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(out / "c")}
    source = Path(__file__).with_name("note_tool.go")
    subprocess.run(["go", "build", "-o", str(out / "note_tool"), str(source)], env=env, check=True)
    return out / "note_tool"


def _checkpoint(path: Path, entries: int) -> tuple[Ed25519PrivateKey, Checkpoint, str]:
    """Log a signed sample; return its key, a checkpoint of it, and the verifier key."""
    key = generate_signing_key()
    storage = FileStorage(path, format="parquet", signing_key=key, origin="example.com/audit")
    write_sample(lambda c: AuditLogger(storage, clock=c), entries, 2).close()
    checkpoint = open_log(path).checkpoint(key, origin="example.com/audit")
    return key, checkpoint, verifier_key(key.public_key(), "example.com/audit")


def test_go_opens_our_checkpoint(note_tool: Path, tmp_path: Path):
    """Go's note.Open accepts our checkpoint with our verifier key and reads its text."""
    _, checkpoint, vkey = _checkpoint(tmp_path / "log", 200)
    saved = tmp_path / "checkpoint.txt"
    checkpoint.save(saved)
    opened = subprocess.run(
        [str(note_tool), "open", vkey, str(saved)], capture_output=True, text=True, check=True
    )
    text, signed_by = opened.stdout.rsplit("\n", 2)[0] + "\n", opened.stdout.splitlines()[-1]
    assert text == Note.parse(saved.read_text()).text
    assert text.startswith(f"example.com/audit\n{checkpoint.size}\n{checkpoint.tree_root}\n")
    assert signed_by.startswith("signed by example.com/audit ")
    assert Checkpoint.load(saved) == checkpoint


def test_go_refuses_our_checkpoint_once_altered(note_tool: Path, tmp_path: Path):
    """Change one digit of the tree size: Go's reader refuses it, as ours does."""
    _, checkpoint, vkey = _checkpoint(tmp_path / "log", 50)
    lines = checkpoint.to_note().split("\n")
    lines[1] = str(int(lines[1]) + 1)
    saved = tmp_path / "altered.txt"
    saved.write_text("\n".join(lines))
    opened = subprocess.run([str(note_tool), "open", vkey, str(saved)], capture_output=True)
    assert opened.returncode == 1


def test_we_open_a_note_go_signed(note_tool: Path, tmp_path: Path):
    """A note signed by Go's note.Sign, with a key Go made, verifies with our parser."""
    text = tmp_path / "text"
    text.write_text("example.com/go-log\n42\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
    signed = subprocess.run(
        [str(note_tool), "sign", "example.com/go-log", str(text)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    vkey, note_text = signed.split("\n", 1)
    verifier = Verifier.parse(vkey)
    note = Note.parse(note_text)
    assert note.text == text.read_text()
    assert [v for v, _ in note.verified_by([verifier])] == [verifier]
    assert str(note) == note_text  # re-encoded byte for byte
