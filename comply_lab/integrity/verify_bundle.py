"""Check an evidence bundle with Python's standard library and ``cryptography`` alone.

Every evidence bundle carries a copy of this file. It follows ``SPEC.md`` step by step and
imports nothing from comply_lab, so an auditor can read all of it and run it anywhere::

    python3 verify_bundle.py BUNDLE_DIR --public-key writer.pub

It checks that: every file is listed in ``SHA256SUMS`` with its right SHA-256 (and no
file is unlisted); ``SHA256SUMS.sig`` is the writer's Ed25519 signature of
``SHA256SUMS``; ``checkpoint.txt`` is a signed note (C2SP signed-note) carrying the
writer's signature under the checkpoint's origin; every entry of ``entries.jsonl``
re-hashes to its ``entry_hash``; and every entry has an inclusion proof (RFC 9162) into
the checkpoint's tree, and every proof an entry. Exit status: 0 when all of it holds, 1
when anything does not (each failure named on its own line), 2 when the folder is not a
bundle.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SUMS, SIGNATURE = "SHA256SUMS", "SHA256SUMS.sig"
CHECKPOINT, ENTRIES, PROOFS = "checkpoint.txt", "entries.jsonl", "proofs.jsonl"
NOT_HASHED = ("entry_hash", "input_content", "output_content")


class NotABundle(Exception):
    """The folder holds no SHA256SUMS: it is not an evidence bundle."""


def canonical(value: Any) -> str:
    """Return the canonical JSON of a value (SPEC.md, "Entry hash").

    Compact, keys sorted by code point at every level, strings as UTF-8 with only ``"``,
    backslash and control characters escaped, and floats in their shortest round-trip form
    written as orjson writes them: positional from 1e-5 up to 1e16, else ``<m>e<±x>``.
    """
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, float):
        return _float(value)
    return json.dumps(value, ensure_ascii=False)


def _float(value: float) -> str:
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:  # orjson writes 1e-5 <= |x| < 1e-4 positionally
        sign = "-" if mantissa.startswith("-") else ""
        digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
        return f"{sign}0.0000{digits}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def entry_hash(record: dict[str, Any]) -> str:
    """Return the hex SHA-256 of a record's canonical JSON, without hash and content."""
    body = {k: v for k, v in record.items() if k not in NOT_HASHED}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def node(left: bytes, right: bytes) -> bytes:
    """Return an RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_proof(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """Return the root an inclusion proof leads to (RFC 9162 2.1.3.2), or None if malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = node(sibling, digest)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return digest if sn == 0 else None


def open_note(text: str, public_key: Ed25519PublicKey) -> list[str]:
    """Return the lines of a checkpoint note that the key signed under its origin.

    Raises:
        ValueError: the note is malformed, or carries no valid signature of that key.
    """
    body, _, signatures = text.rpartition("\n\n")
    lines = (body + "\n").split("\n")[:-1]
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(lines[0].encode() + b"\n\x01" + raw).digest()[:4]
    for line in signatures.splitlines():
        name, _, blob = line.removeprefix("\u2014 ").partition(" ")
        signature = base64.b64decode(blob)
        if name == lines[0] and signature[:4] == key_id:
            public_key.verify(signature[4:], (body + "\n").encode())  # InvalidSignature
            return lines
    raise ValueError(f"no signature of {lines[0]} by the given key")


def check(folder: Path, public_key: Ed25519PublicKey) -> list[str]:
    """Return every failure found in the bundle (empty when it verifies).

    Raises:
        NotABundle: there is no SHA256SUMS in ``folder``.
    """
    if not (folder / SUMS).is_file():
        raise NotABundle(f"{folder} holds no {SUMS}: not an evidence bundle")
    failures = _files(folder)
    sums = (folder / SUMS).read_bytes()
    try:
        public_key.verify((folder / SIGNATURE).read_bytes(), sums)
    except (OSError, InvalidSignature):
        failures.append(f"{SIGNATURE}: not the given key's signature of {SUMS}")
    try:
        lines = open_note((folder / CHECKPOINT).read_text(encoding="utf-8"), public_key)
        size, root = int(lines[1]), base64.b64decode(lines[2])
    except (OSError, ValueError, IndexError, InvalidSignature) as err:
        return [*failures, f"{CHECKPOINT}: not a checkpoint the given key signed ({err})"]
    return failures + _entries(folder, size, root)


def _files(folder: Path) -> list[str]:
    """Check SHA256SUMS: every file listed with its right digest, none unlisted."""
    failures, listed = [], {SUMS, SIGNATURE}
    for number, line in enumerate((folder / SUMS).read_text(encoding="utf-8").splitlines(), 1):
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = folder / name
        if ".." in Path(name).parts or Path(name).is_absolute() or not path.is_file():
            failures.append(f"{name}: listed on line {number} of {SUMS} but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            failures.append(f"{name}: its SHA-256 is not the one {SUMS} lists (altered)")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name not in listed:
            failures.append(f"{name}: not listed in {SUMS} (added)")
    return failures


def _entries(folder: Path, size: int, root: bytes) -> list[str]:
    """Check each entry's hash and its inclusion proof into the checkpoint's tree."""
    failures: list[str] = []
    hashes: dict[str, Any] = {}
    for number, record in _lines(folder / ENTRIES, failures):
        try:
            hashes[record["id"]] = record["entry_hash"]
            if entry_hash(record) != record["entry_hash"]:
                failures.append(f"entry {record['id']}: its fields do not give its entry_hash")
        except (KeyError, TypeError):
            failures.append(f"{ENTRIES} line {number}: not an entry record")
    proven = set()
    for number, proof in _lines(folder / PROOFS, failures):
        try:
            entry_id, path = proof["entry_id"], [base64.b64decode(p) for p in proof["path"]]
            leaf = hashlib.sha256(b"\x00" + bytes.fromhex(proof["entry_hash"])).digest()
            found = root_from_proof(leaf, proof["index"], proof["size"], path)
        except (KeyError, TypeError, ValueError):
            failures.append(f"{PROOFS} line {number}: not an inclusion proof")
            continue
        if proof["size"] != size or found != root:
            failures.append(f"entry {entry_id}: its proof does not lead to the checkpoint's root")
        elif hashes.get(entry_id) != proof["entry_hash"]:
            failures.append(f"entry {entry_id}: proven, but not the entry {ENTRIES} holds")
        proven.add(entry_id)
    failures += [f"entry {i}: no inclusion proof" for i in sorted(set(hashes) - proven)]
    return failures


def _lines(path: Path, failures: list[str]) -> list[tuple[int, Any]]:
    """Return the JSON values of a JSON-lines file, numbered; note what cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        failures.append(f"{path.name}: missing or not UTF-8 text")
        return []
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            values.append((number, json.loads(line)))
        except ValueError:
            failures.append(f"{path.name} line {number}: not JSON")
    return values


def main(argv: list[str] | None = None) -> int:
    """Check a bundle; print each failure and a verdict; return the exit status."""
    parser = argparse.ArgumentParser(description="Check a comply_lab evidence bundle.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--public-key", required=True, type=Path, help="writer's key (PEM)")
    args = parser.parse_args(argv)
    key = serialization.load_pem_public_key(args.public_key.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        parser.error("the public key is not an Ed25519 key")
    try:
        failures = check(args.folder, key)
    except NotABundle as err:
        print(err, file=sys.stderr)
        return 2
    for failure in failures:
        print(f"FAILED {failure}")
    print("FAILED" if failures else "OK: every file, the signature, every entry and proof")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
