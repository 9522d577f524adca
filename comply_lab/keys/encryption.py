"""Content encryption with a Fernet key, compatible with the original audit-logging API.

Besides [`EncryptionManager`][comply_lab.keys.encryption.EncryptionManager], the original API's
helper functions are here with their signatures and behaviour:
[`generate_key`][comply_lab.keys.encryption.generate_key],
[`encrypt`][comply_lab.keys.encryption.encrypt] and
[`decrypt`][comply_lab.keys.encryption.decrypt] (Fernet tokens as bytes, interchangeable with
the original tool's) and [`hash_content`][comply_lab.keys.encryption.hash_content] (hex SHA-256
of UTF-8 text). A wrong key raises [`WrongKeyError`][comply_lab.errors.WrongKeyError], which is
also the ``InvalidToken`` callers of the original API catch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from comply_lab.crypto.ciphertext import PREFIX
from comply_lab.crypto.material import describe
from comply_lab.errors import (
    DecryptionError,
    EncryptionNotConfiguredError,
    InvalidKeyError,
    InvalidQueryError,
    WrongKeyError,
)
from comply_lab.keys.keyring import ContentKeys, KeyRing


def generate_key() -> bytes:
    """Return a new Fernet key: 32 random bytes, URL-safe base64 (44 bytes)."""
    return Fernet.generate_key()


def _fernet(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError, binascii.Error):
        got = describe(key) if isinstance(key, bytes | str) else type(key).__name__
        raise InvalidKeyError(
            "the encryption key is not a Fernet key (32 bytes, URL-safe base64 encoded, "
            f"44 characters): got {got}; use generate_key() to make one"
        ) from None


def encrypt(data: bytes, key: bytes) -> bytes:
    """Return ``data`` encrypted with the Fernet ``key``, as a Fernet token.

    Raises:
        InvalidKeyError: ``key`` is not a Fernet key.
    """
    return _fernet(key).encrypt(data)


def decrypt(data: bytes, key: bytes) -> bytes:
    """Return the bytes a Fernet token holds.

    Raises:
        InvalidKeyError: ``key`` is not a Fernet key.
        WrongKeyError: the token was not made with this key, or is damaged (also a
            ``cryptography.fernet.InvalidToken``).
    """
    try:
        return _fernet(key).decrypt(data)
    except InvalidToken:
        raise WrongKeyError(
            "the data could not be decrypted: the key is not the one it was encrypted with, "
            "or the token is damaged"
        ) from None


def hash_content(content: str) -> str:
    """Return the hex SHA-256 of ``content`` encoded as UTF-8 (what entries store)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class EncryptionManager:
    """Encrypts and decrypts stored content with one Fernet key (AES-128-CBC + HMAC).

    Ciphertexts are the URL-safe base64 of a Fernet token, the format the original
    tool writes, so logs it encrypted decrypt here with the same key (bare Fernet tokens
    are accepted too).

    Args:
        key: A Fernet key (44 URL-safe base64 bytes). None generates a new one; save it with
            [`get_key`][comply_lab.keys.encryption.EncryptionManager.get_key], or the content
            cannot be read again.

    Raises:
        InvalidKeyError: ``key`` is not a Fernet key (the key is never in the message).

    Example:
        >>> manager = EncryptionManager()
        >>> same = EncryptionManager(manager.get_key().decode().encode())
        >>> same.decrypt(manager.encrypt("patient record"))
        'patient record'
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = generate_key() if key is None else key
        self._fernet = _fernet(self._key)

    def __repr__(self) -> str:
        return "EncryptionManager(key=<hidden>)"

    def get_key(self) -> bytes:
        """Return the key, to store in a secret manager or environment variable."""
        return self._key

    def encrypt(self, data: str) -> str:
        """Encrypt text; the result is ASCII, safe to store in JSON."""
        token = self._fernet.encrypt(data.encode("utf-8"))
        return base64.urlsafe_b64encode(token).decode("ascii")

    def decrypt(self, data: str) -> str:
        """Decrypt what `encrypt` (or the original tool) produced.

        Raises:
            WrongKeyError: wrong key, or damaged or non-encrypted content (a
                ``DecryptionError`` and a ``cryptography.fernet.InvalidToken``).
        """
        try:
            raw = data.encode("ascii")
            token = raw if raw.startswith(b"gAAAAA") else base64.urlsafe_b64decode(raw)
            return self._fernet.decrypt(token).decode("utf-8")
        except (InvalidToken, ValueError, binascii.Error):
            raise WrongKeyError(
                "content could not be decrypted: the key is not the one it was encrypted "
                "with, or the ciphertext is damaged; check which key the log was written with"
            ) from None


def decrypt_text(
    keys: EncryptionManager | ContentKeys | None, token: str, entry_id: str | None, field: str
) -> str:
    """Decrypt stored content with whichever kind of key it needs.

    Raises:
        EncryptionNotConfiguredError: no key was given.
        InvalidQueryError: a key-ring ciphertext without its entry id.
        DecryptionError: the key does not fit or the content is damaged.
    """
    if keys is None:
        raise EncryptionNotConfiguredError(
            "no encryption key configured: pass the EncryptionManager or key ring the log "
            "was written with"
        )
    if token.startswith(PREFIX):
        if not isinstance(keys, ContentKeys):
            raise DecryptionError(
                "this content was encrypted with AES-GCM content keys; pass the KeyRing "
                "(or EnvelopeKeys, SubjectKeys) it was written with"
            )
        if entry_id is None:
            raise InvalidQueryError(
                "key-ring ciphertexts are bound to their entry: pass entry_id=entry.id"
            )
        return keys.decrypt(token, entry_id=entry_id, field=field)
    if isinstance(keys, ContentKeys):
        raise DecryptionError(
            "this content was encrypted with a Fernet EncryptionManager; pass that manager"
        )
    return keys.decrypt(token)


def keys_from_text(text: str) -> EncryptionManager | KeyRing | None:
    """Read keys typed or stored as text: ``id:base64key,...`` is a ring, else a Fernet key.

    Returns None for empty text.

    Raises:
        InvalidKeyError: the text is neither a valid ring nor a valid Fernet key.
    """
    text = text.strip()
    if not text:
        return None
    kind = describe(text)
    if kind.startswith(("a PEM", "a signed-note")):
        raise InvalidKeyError(
            f"expected decryption keys (a key ring's text form id:base64key,... or a Fernet "
            f"key); got {kind}, which signs or checks signatures and cannot decrypt content"
        )
    return KeyRing.from_text(text) if ":" in text else EncryptionManager(text.encode())
