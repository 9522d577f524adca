"""Content fingerprints: plain SHA-256 (the default) or keyed HMAC-SHA256.

A plain hash of a short prompt can be confirmed by anyone who guesses the prompt (hash
"How do I reset my password?" and look it up). With a *hash key*, ``input_hash`` and
``output_hash`` are HMAC-SHA256 under that key, so only key holders can test a guess.
Entries record ``hash_key_id`` (a fingerprint of the key, never the key), so verification
knows which key — or none — each entry's fingerprints need.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from comply_lab.crypto.ciphertext import looks_encrypted
from comply_lab.errors import InvalidKeyError

if TYPE_CHECKING:
    from comply_lab.model.entry import AuditEntry

_ID_LABEL = b"comply-lab hash key id"
MIN_KEY_BYTES = 16


def check_hash_key(key: object) -> bytes:
    """Return ``key`` if it is usable as a hash key (bytes, at least 16 long).

    Raises:
        InvalidKeyError: it is not (the key is never in the message).
    """
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidKeyError(
            f"hash_key must be at least {MIN_KEY_BYTES} random bytes, e.g. os.urandom(32)"
        )
    return key


def hash_key_id(key: bytes) -> str:
    """Return the public fingerprint of a hash key (16 hex digits)."""
    return hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:16]


def fingerprint(text: str, key: bytes | None = None) -> str:
    """Return the hex fingerprint of text: SHA-256, or HMAC-SHA256 when ``key`` is given."""
    data = text.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def content_problem(entry: AuditEntry) -> str | None:
    """Say which stored plain text does not match its fingerprint; None if none differs.

    Ciphertext cannot be checked without its key (decryption checks it), nor can keyed
    fingerprints without the hash key (see
    [`comply_lab.verify_content`][comply_lab.integrity.content.verify_content]).
    """
    if entry.hash_key_id is not None:
        return None
    for side, text, digest in (
        ("input", entry.input_content, entry.input_hash),
        ("output", entry.output_content, entry.output_hash),
    ):
        if isinstance(text, str) and not looks_encrypted(text) and fingerprint(text) != digest:
            return f"the stored {side} does not match its {side}_hash: the content was changed"
    return None
