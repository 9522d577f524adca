"""What makes an evidence bundle checkable without comply_lab: proofs, keys and signed sums.

[`write_proofs`][comply_lab.lab.bundle.write_proofs] adds to a bundle folder the entries as
canonical JSON lines, an inclusion proof of each into the checkpoint, the checkpoint (with its
cosignatures and timestamp), the writer's public key, the manifest trail and the standalone
checker ``verify_bundle.py``; [`seal_bundle`][comply_lab.lab.bundle.seal_bundle] then writes
``SHA256SUMS`` (the format ``sha256sum -c`` reads) over every file and ``SHA256SUMS.sig``, the
writer's raw Ed25519 signature of it (``openssl pkeyutl -verify -rawin`` checks it).
[`check_bundle`][comply_lab.lab.bundle.check_bundle] is what ``comply-lab verify-bundle`` runs:
the standalone checks, and the Parquet extract re-hashed against the JSON lines. ``SPEC.md``
gives every byte recipe.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab.crypto.signing import key_id, public_key_pem
from comply_lab.integrity import verify_bundle
from comply_lab.integrity.checkpoint import Checkpoint, verifier_key
from comply_lab.integrity.tlog import LogTree, prove
from comply_lab.model.entry import CONTENT_FIELDS, entry_hash
from comply_lab.storage.arrow import table_to_entries
from comply_lab.storage.base import Storage
from comply_lab.storage.leaves import leaf_entry_hash
from comply_lab.storage.manifest import MANIFEST


@dataclass(frozen=True)
class Proven:
    """The entries of a bundle: those the checkpoint covers, and how many were left out."""

    table: pa.Table
    left_out: int


def covered(table: pa.Table, tree: LogTree, checkpoint: Checkpoint) -> Proven:
    """Return the rows of ``table`` that ``checkpoint``'s tree covers (sealed by then)."""
    ids = pa.array(tree.ids[: int(checkpoint.size or 0)], pa.string())
    kept = table.filter(pc.is_in(table.column("id"), value_set=ids))
    return Proven(kept, table.num_rows - kept.num_rows)


def write_proofs(
    out: Path,
    storage: Storage,
    table: pa.Table,
    tree: LogTree,
    checkpoint: Checkpoint,
    public_key: Ed25519PublicKey,
    timestamp: bytes | None = None,
) -> None:
    """Write entries (Parquet and JSON lines), proofs, checkpoint, key and checker to ``out``."""
    pq.write_table(table, out / "entries.parquet", compression="zstd")
    lines = []
    for entry in table_to_entries(table):
        record = {k: v for k, v in entry.record().items() if k not in CONTENT_FIELDS}
        record["entry_hash"] = leaf_entry_hash(entry)
        lines.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    (out / verify_bundle.ENTRIES).write_bytes(b"".join(line + b"\n" for line in lines))
    proofs = prove(tree, table.column("id").to_pylist(), checkpoint)
    (out / verify_bundle.PROOFS).write_bytes(
        b"".join(orjson.dumps(p.to_dict()) + b"\n" for p in proofs)
    )
    (out / verify_bundle.CHECKPOINT).write_text(checkpoint.to_note(), encoding="utf-8")
    if timestamp is not None:
        (out / f"{verify_bundle.CHECKPOINT}.tsr").write_bytes(timestamp)
    (out / "writer.pub").write_bytes(public_key_pem(public_key))
    (out / "writer.key.txt").write_text(
        f"fingerprint {key_id(public_key)}\n"
        f"verifier key {verifier_key(public_key, str(checkpoint.origin))}\n"
    )
    (out / "records").mkdir(exist_ok=True)
    (out / "records" / MANIFEST.lstrip("_")).write_bytes(storage.read_metadata(MANIFEST))
    shutil.copyfile(verify_bundle.__file__, out / "verify_bundle.py")


def seal_bundle(out: Path, signing_key: Ed25519PrivateKey | None) -> None:
    """Write ``SHA256SUMS`` over every file of ``out`` and, with a key, its signature."""
    names = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name not in (verify_bundle.SUMS, verify_bundle.SIGNATURE)
    )
    sums = "".join(f"{hashlib.sha256((out / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (out / verify_bundle.SUMS).write_text(sums, encoding="utf-8")
    if signing_key is not None:
        (out / verify_bundle.SIGNATURE).write_bytes(signing_key.sign(sums.encode()))


def check_bundle(folder: Path, public_key: Ed25519PublicKey) -> list[str]:
    """Return every failure of a bundle: the standalone checks and the Parquet extract's.

    Raises:
        verify_bundle.NotABundle: the folder holds no ``SHA256SUMS``.
    """
    failures = verify_bundle.check(folder, public_key)
    return failures + _parquet(folder)


def _parquet(folder: Path) -> list[str]:
    """Check that the Parquet extract holds exactly the JSON lines' entries, re-hashed."""
    try:
        table = pq.read_table(folder / "entries.parquet")
        entries = list(table_to_entries(table))
    except (OSError, ValueError, pa.ArrowException) as err:
        return [f"entries.parquet: not a readable extract ({err})"]
    listed: dict[str, str] = {}
    for line in (folder / verify_bundle.ENTRIES).read_bytes().splitlines():
        try:
            record = orjson.loads(line)
            listed[record["id"]] = record["entry_hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # reported by the standalone checks
    failures = []
    for entry in entries:
        recomputed = entry_hash(entry.record())
        if entry.entry_hash is not None and recomputed != entry.entry_hash:
            failures.append(f"entries.parquet: entry {entry.id}: its fields do not give its hash")
        elif listed.get(entry.id) != recomputed:
            failures.append(f"entries.parquet: entry {entry.id} differs from entries.jsonl")
    if len(entries) != len(listed):
        failures.append("entries.parquet: not the same entries as entries.jsonl")
    return failures
