"""Ed25519 signatures over manifests and checkpoints.

The writer holds the private key; a verifier needs only the public key. Keys load from
raw bytes (32), PEM, or a file holding either; ``key_id`` is a short fingerprint of the
public key, recorded beside each signature so a verifier knows which key to use.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from comply_lab.crypto.material import describe, key_kind, shown_path
from comply_lab.errors import InvalidKeyError

PrivateKeyLike = Ed25519PrivateKey | bytes | str | os.PathLike[str]
PublicKeyLike = Ed25519PublicKey | Ed25519PrivateKey | bytes | str | os.PathLike[str]


def generate_signing_key() -> Ed25519PrivateKey:
    """Return a new Ed25519 private key (save it with `private_key_pem`)."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """Return the private key as unencrypted PKCS#8 PEM, to store in a secret manager."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """Return the public key as PEM, to hand to verifiers."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _material(value: object, role: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str | os.PathLike):
        raise InvalidKeyError(
            f"the {role} must be a key object, bytes, PEM text or a file name; "
            f"got {type(value).__name__}"
        )
    text = os.fspath(value)
    if isinstance(text, bytes) or text.lstrip().startswith("-----BEGIN"):
        return text if isinstance(text, bytes) else text.encode()
    try:
        return Path(text).read_bytes()
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or "not a file name"
        raise InvalidKeyError(
            f"cannot read the {role} file {shown_path(text)}: {why}; pass the path of a "
            "file holding the key (PEM or raw 32 bytes)"
        ) from None


def load_private_key(value: PrivateKeyLike) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a key object, raw 32 bytes, PEM, or a file.

    Raises:
        InvalidKeyError: the material is not an Ed25519 private key.
    """
    if isinstance(value, Ed25519PrivateKey):
        return value
    raw = _material(value, "signing key")
    try:
        if len(raw) == 32:
            return Ed25519PrivateKey.from_private_bytes(raw)
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKeyError(
            f"the signing key is not an Ed25519 private key (raw 32 bytes or PEM): got "
            f"{_kind(raw, key)}; make one with comply_lab.crypto.signing.generate_signing_key()"
        )
    return key


def load_public_key(value: PublicKeyLike) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a key object, raw 32 bytes, PEM, or a file.

    Raises:
        InvalidKeyError: the material is not an Ed25519 public key.
    """
    if isinstance(value, Ed25519PrivateKey):
        return value.public_key()
    if isinstance(value, Ed25519PublicKey):
        return value
    raw = _material(value, "public key")
    try:
        if len(raw) == 32:
            return Ed25519PublicKey.from_public_bytes(raw)
        key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKeyError(
            f"the public key is not an Ed25519 public key (raw 32 bytes or PEM): got "
            f"{_kind(raw, key)}; ask the log's owner for writer.pub"
        )
    return key


def _kind(raw: bytes, key: object) -> str:
    """Say what a key that did not load is: its type if it parsed, else its shape."""
    return describe(raw) if key is None else key_kind(key)


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Return the fingerprint of a key pair: the first 16 hex digits of SHA-256(public key)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """Return the base64 Ed25519 signature of ``message``."""
    return base64.b64encode(key.sign(message)).decode("ascii")


def signature_valid(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Return True if ``signature`` (base64) is ``key``'s signature of ``message``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
