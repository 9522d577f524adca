"""Evidence bundles an auditor verifies without us: signed sums, proofs, a standalone checker."""

from __future__ import annotations

import ast
import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.witness import cosign, witness_signer
from comply_lab.lab.bundle import seal_bundle
from comply_lab.sample import write_sample
from tests.integrity.test_witness import cli
from tests.tsa_server import authority

KEY = generate_signing_key()
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a signed log, a cosigned and timestamped checkpoint, and a bundle of it."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "writer.pem").write_bytes(private_key_pem(KEY))
    (root / "writer.pub").write_bytes(public_key_pem(KEY))
    storage = FileStorage(root / "log", format="parquet", signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c, store_content=True), 240, 3).close()
    checkpoint = open_log(root / "log").checkpoint(KEY)
    cosigned = cosign(checkpoint, witness_signer(generate_signing_key()), root / "w",
                      KEY.public_key()).checkpoint  # fmt: skip
    cosigned.save(root / "cp.txt")
    with authority() as tsa:
        assert cli("timestamp", root / "cp.txt", "--tsa", tsa.url)[0] == 0
    code, out = cli("evidence", root / "log", root / "ev", "--signing-key", root / "writer.pem",
                    "--checkpoint", root / "cp.txt", "--start", "2026-01-01")  # fmt: skip
    assert code == 0, out
    return root


def _copy(made: Path, tmp_path: Path) -> Path:
    shutil.copytree(made / "ev", tmp_path / "ev")
    return tmp_path / "ev"


def test_the_bundle_holds_what_an_auditor_needs(made: Path):
    """Entries, proofs, the cosigned checkpoint and its timestamp, key, records, sums."""
    names = {p.relative_to(made / "ev").as_posix() for p in (made / "ev").rglob("*")}
    assert {"entries.parquet", "entries.jsonl", "proofs.jsonl", "checkpoint.txt",
            "checkpoint.txt.tsr", "writer.pub", "writer.key.txt", "verification.json",
            "report.html", "records/manifest.jsonl", "verify_bundle.py", "SHA256SUMS",
            "SHA256SUMS.sig", "MANIFEST.json"} <= names  # fmt: skip
    assert (made / "ev" / "checkpoint.txt").read_text() == (made / "cp.txt").read_text()
    assert len((made / "ev" / "entries.jsonl").read_text().splitlines()) == 240


def test_verify_bundle_and_the_tools_anyone_has_accept_it(made: Path):
    """verify-bundle, sha256sum -c, openssl and the standalone script all say OK."""
    bundle, key = made / "ev", made / "writer.pub"
    code, out = cli("verify-bundle", bundle, "--public-key", key)
    assert code == 0 and out.startswith("OK"), out
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, check=True)
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin",
                    "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"], cwd=bundle,
                   check=True, capture_output=True)  # fmt: skip
    script = bundle / "verify_bundle.py"
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "argparse", "base64", "hashlib", "json", "sys",
                        "pathlib", "typing", "cryptography"}  # fmt: skip
    done = subprocess.run([sys.executable, "-I", str(script), ".", "--public-key", str(key)],
                          cwd=bundle, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr


def _edit_line(path: Path, change) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = change(lines[0])
    path.write_text("".join(lines))


def _flip(path: Path, at: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def _cosignature(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    blob = lines[-1].split(" ")[-1].strip()
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    lines[-1] = lines[-1].replace(blob, base64.b64encode(bytes(raw)).decode())
    path.write_text("".join(lines))


TAMPERS = {
    "entries.jsonl": lambda p: _edit_line(
        p, lambda s: s.replace('"latency_ms":', '"latency_ms":1')
    ),
    "proofs.jsonl": lambda p: _edit_line(p, lambda s: s.replace('"index":', '"index":1')),
    "checkpoint.txt": lambda p: p.write_text(p.read_text().replace("\n", "\n\n", 1)),
    "checkpoint.txt.tsr": _flip,
    "report.html": lambda p: p.write_text(p.read_text().replace("OK", "0K")),
    "SHA256SUMS": lambda p: _edit_line(p, lambda s: ("0" if s[0] != "0" else "1") + s[1:]),
    "SHA256SUMS.sig": _flip,
}


@pytest.mark.parametrize("name", [*TAMPERS, "cosignature"])
def test_each_kind_of_file_tampered_with_is_named(made: Path, tmp_path: Path, name: str):
    """One edited file of each kind: exit 1, and the output names it."""
    bundle = _copy(made, tmp_path)
    if name == "cosignature":
        _cosignature(bundle / "checkpoint.txt")
        named = "checkpoint.txt"
    else:
        TAMPERS[name](bundle / name)
        named = name
    code, out = cli("verify-bundle", bundle, "--public-key", made / "writer.pub")
    assert code == 1 and f"FAILED {named}" in out, out


def test_the_key_holder_cannot_slip_in_an_altered_entry(made: Path, tmp_path: Path):
    """Edit an entry, re-sum and re-sign with the writer's key: the entry is named."""
    bundle = _copy(made, tmp_path)
    entries = bundle / "entries.jsonl"
    first = json.loads(entries.read_text().splitlines()[0])
    _edit_line(entries, lambda s: s.replace('"model":"', '"model":"x-'))
    (bundle / "SHA256SUMS").unlink()
    seal_bundle(bundle, KEY)
    code, out = cli("verify-bundle", bundle, "--public-key", made / "writer.pub")
    assert code == 1 and f"entry {first['id']}" in out, out
    done = subprocess.run([sys.executable, "-I", str(bundle / "verify_bundle.py"), str(bundle),
                           "--public-key", str(made / "writer.pub")], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 1 and first["id"] in done.stdout


def test_an_added_file_another_key_and_a_non_bundle(made: Path, tmp_path: Path):
    """An unlisted file is named; another key fails; a folder without sums exits 2."""
    bundle = _copy(made, tmp_path)
    (bundle / "plots" / "extra.png").write_bytes(b"x")
    code, out = cli("verify-bundle", bundle, "--public-key", made / "writer.pub")
    assert code == 1 and "FAILED plots/extra.png: not listed" in out
    other = tmp_path / "other.pub"
    other.write_bytes(public_key_pem(generate_signing_key()))
    code, out = cli("verify-bundle", made / "ev", "--public-key", other)
    assert code == 1 and "FAILED SHA256SUMS.sig" in out
    (tmp_path / "empty").mkdir()
    assert cli("verify-bundle", tmp_path / "empty", "--public-key", other)[0] == 2
    assert Checkpoint.load(made / "ev" / "checkpoint.txt").size == 240


def test_verify_on_a_bundle_points_to_verify_bundle(made: Path):
    """`comply-lab verify` on a bundle is not "OK: 0 entries": exit 2 and what to run."""
    code, out = cli("verify", made / "ev")
    assert code == 2 and "verify-bundle" in out
