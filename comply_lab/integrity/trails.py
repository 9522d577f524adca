"""Checking a chained metadata trail: record hashes, the chain of records, signatures.

Every trail (manifest, retention, holds, access, keys, shredded) is a sequence of records,
each holding the hash of the one before it and, when written with a signing key, an
Ed25519 signature. Investigators, key rotation and erasure jobs append to some trails
without the writer's key: there a missing signature is accepted (``require_signatures``
False), while a present one must still verify.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from comply_lab.audit.entry import GENESIS_HASH
from comply_lab.integrity.report import Problem
from comply_lab.integrity.signing import signature_valid
from comply_lab.storage.manifest import parse_records, record_hash, signed_bytes


def check_trail(
    data: bytes, name: str, key: Ed25519PublicKey | None, require_signatures: bool = True
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Check the trail ``name`` holding ``data``; return its valid records and the problems.

    Signatures are checked only when ``key`` is given.
    """
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    previous = GENESIS_HASH
    for number, record in parse_records(data):
        where = f"{name} line {number}"
        if record is None or "record_hash" not in record:
            problems.append(Problem("modified", "not a valid record", segment=where))
            continue
        label = record.get("segment") or record.get("date") or "record"
        if record_hash(record) != record["record_hash"]:
            problems.append(
                Problem(
                    "modified",
                    f"the record for {label} does not match its record_hash: it was edited",
                    segment=where,
                )
            )
        if record.get("prev_record_hash") != previous:
            problems.append(
                Problem(
                    "missing",
                    f"the record for {label} does not follow the one "
                    "before it: records were removed or reordered",
                    segment=where,
                )
            )
        previous = record["record_hash"]
        if key is not None and (require_signatures or "signature" in record):
            problems += _signature(key, record, where, label)
        records.append(record)
    return records, problems


def _signature(
    key: Ed25519PublicKey, record: dict[str, Any], where: str, label: str
) -> list[Problem]:
    signature = record.get("signature")
    if not isinstance(signature, str):
        return [Problem("bad_signature", f"the record for {label} is not signed", segment=where)]
    if not signature_valid(key, signed_bytes(record), signature):
        return [
            Problem(
                "bad_signature",
                f"the signature of the record for {label} does not verify with the given "
                f"public key (signed by key {record.get('key_id')})",
                segment=where,
            )
        ]
    return []
