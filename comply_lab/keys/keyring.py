"""AES-256-GCM content keys: the ciphertext format, and a ring of keys by id.

Stored ciphertext looks like ``cl1:<key id>:<base64url(nonce + ciphertext + tag)>``: it
names the key that made it, so a ring holding old and new keys reads everything, and the
key id is all a reader needs to know which key to fetch. The associated data is the entry
id and the field name, so a ciphertext copied into another entry or field fails to
decrypt. Nonces are 96 random bits from the operating system for every encryption.

Keys come from bytes, an environment variable, a file or an AWS Secrets Manager secret
([`KeyRing.from_env`][comply_lab.keys.keyring.KeyRing.from_env],
[`KeyRing.from_file`][comply_lab.keys.keyring.KeyRing.from_file],
[`KeyRing.from_aws_secret`][comply_lab.keys.keyring.KeyRing.from_aws_secret]); their text form
is ``id:base64key`` pairs separated by commas, the first being the primary. Keys never appear in
reprs or error messages.

[`ContentKeys`][comply_lab.keys.keyring.ContentKeys] is what every key source shares: the
ciphertext format and the encrypt/decrypt code. Sources differ only in how they choose a key for
writing and find one for reading: a fixed ring ([`KeyRing`][comply_lab.keys.keyring.KeyRing]),
data keys wrapped by AWS KMS per day
([`comply_lab.keys.envelope.EnvelopeKeys`][comply_lab.keys.envelope.EnvelopeKeys]), or a key per
data subject ([`comply_lab.keys.subjects.SubjectKeys`][comply_lab.keys.subjects.SubjectKeys]).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from comply_lab.crypto.ciphertext import PREFIX
from comply_lab.crypto.material import describe, shown_path
from comply_lab.errors import DecryptionError, InvalidKeyError, aws_error_code

if TYPE_CHECKING:
    from comply_lab.storage.base import Storage

_NONCE = 12
_RING_FORM = "id:base64key[,id:base64key...], as KeyRing.generate('k1').to_text() gives"


class MissingKeyError(DecryptionError, KeyError):
    """The ciphertext names a key id the ring does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ShreddedKeyError(MissingKeyError):
    """The ciphertext's key was destroyed on purpose (the data subject was shredded)."""


class ContentKeys:
    """What every content key source shares: the ciphertext format and the AEAD code.

    Subclasses say which key encrypts new content
    ([`write_key`][comply_lab.keys.keyring.ContentKeys.write_key]) and find the key a stored
    ciphertext names ([`read_key`][comply_lab.keys.keyring.ContentKeys.read_key]).

    Attributes:
        subject_field: The metadata field naming an entry's data subject, for sources that
            keep a key per subject; None for the others.
    """

    subject_field: str | None = None

    @property
    def label(self) -> str:
        """A description naming the keys (never their material), for access records."""
        raise NotImplementedError

    def write_key(self, day: date | None, subject: str | None) -> tuple[str, AESGCM]:
        """Return the id and cipher of the key for new content of ``day`` and ``subject``."""
        raise NotImplementedError

    def read_key(self, key_id: str, entry_id: str, field: str) -> AESGCM:
        """Return the cipher of key ``key_id``.

        Raises:
            MissingKeyError: the source does not hold that key.
        """
        raise NotImplementedError

    def bind(self, storage: Storage) -> ContentKeys:
        """Return these keys attached to a log's storage (for sources that keep records there)."""
        return self

    def current(self, key_id: str | None, day: date | None, subject: str | None) -> bool:
        """Whether content under ``key_id`` is already where new content would be encrypted.

        Key rotation re-encrypts only the content for which this is False.
        """
        return key_id == self.write_key(day, subject)[0]

    def encrypt(
        self,
        text: str,
        *,
        entry_id: str,
        field: str,
        day: date | None = None,
        subject: str | None = None,
    ) -> str:
        """Encrypt ``text`` bound to ``entry_id`` and ``field``, under the write key."""
        key_id, cipher = self.write_key(day, subject)
        nonce = os.urandom(_NONCE)
        sealed = cipher.encrypt(nonce, text.encode("utf-8"), _associated(entry_id, field))
        return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, entry_id: str, field: str) -> str:
        """Decrypt what `encrypt` produced for this entry and field.

        Raises:
            MissingKeyError: the source lacks the key the ciphertext names.
            DecryptionError: the ciphertext is damaged, or belongs to another entry or field.
        """
        key_id, raw = _split(token, entry_id)
        cipher = self.read_key(key_id, entry_id, field)
        try:
            plain = cipher.decrypt(raw[:_NONCE], raw[_NONCE:], _associated(entry_id, field))
        except InvalidTag:
            raise DecryptionError(
                f"entry {entry_id}: {field} does not decrypt with key {key_id!r}. Most likely "
                f"the key held under the id {key_id!r} is not the key that encrypted it (a key "
                "id is a name, not a fingerprint: check that the ring is the log's own); "
                "otherwise the ciphertext was changed, or copied from another entry or field"
            ) from None
        return plain.decode("utf-8")


class KeyRing(ContentKeys):
    """AES-256-GCM keys by id; new content is encrypted with the primary one.

    Args:
        keys: Key id -> 32-byte key.
        primary: The key id for new writes (default: the first).

    Raises:
        InvalidKeyError: a key is not 32 bytes, an id is malformed, or the ring is empty.

    Example:
        >>> ring = KeyRing.generate("2026-01")
        >>> token = ring.encrypt("secret", entry_id="e1", field="input_content")
        >>> ring.decrypt(token, entry_id="e1", field="input_content")
        'secret'
    """

    def __init__(self, keys: Mapping[str, bytes], primary: str | None = None) -> None:
        if not keys:
            raise InvalidKeyError("a key ring needs at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        for number, (key_id, key) in enumerate(keys.items(), 1):
            if not valid_key_id(key_id):
                raise InvalidKeyError(
                    f"key {number} of the ring has an invalid id (not shown): an id is a "
                    "short name of 1 to 32 characters without ':', ',' or spaces, like 'k1'"
                )
            if not isinstance(key, bytes) or len(key) != 32:
                got = describe(key) if isinstance(key, bytes | str) else type(key).__name__
                raise InvalidKeyError(
                    f"key {key_id!r} must be 32 random bytes (AES-256); got {got}"
                )
            self._ciphers[key_id] = AESGCM(key)
        self._keys = dict(keys)
        self.primary = primary if primary is not None else next(iter(keys))
        if self.primary not in self._ciphers:
            raise InvalidKeyError("the primary key id is not one of the ring's key ids")

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        """Return a ring of one new random key."""
        return cls({key_id: secrets.token_bytes(32)})

    @classmethod
    def from_text(cls, text: str) -> KeyRing:
        """Read ``id:base64key[,id:base64key...]``; the first key is the primary.

        Raises:
            InvalidKeyError: the text is not a key ring; the message says what it looks
                like instead (never any of its characters).
        """
        if not isinstance(text, str):
            raise InvalidKeyError(f"a key ring is text; got {type(text).__name__}")
        parts = [p.strip() for p in text.split(",") if p.strip()]
        kind = describe(text)
        if not parts or kind.startswith(("a PEM", "a signed-note")):
            raise InvalidKeyError(f"expected a key ring ({_RING_FORM}); got {kind}")
        keys: dict[str, bytes] = {}
        for number, part in enumerate(parts, 1):
            where = "the key ring" if len(parts) == 1 else f"key {number} of the ring"
            key_id, sep, encoded = part.partition(":")
            if not sep:
                raise InvalidKeyError(
                    f"{where} has no key id: got {describe(part)}; write it as {_RING_FORM}"
                )
            if not valid_key_id(key_id):
                raise InvalidKeyError(
                    f"{where} has an invalid key id (not shown): an id is a short name of 1 "
                    f"to 32 characters without ':', ',' or spaces; write {_RING_FORM}"
                )
            if key_id in keys:
                raise InvalidKeyError(f"the key ring holds key id {key_id!r} twice")
            try:
                keys[key_id] = base64.urlsafe_b64decode(encoded.encode())
            except (binascii.Error, ValueError):
                raise InvalidKeyError(
                    f"key {key_id!r} is not base64 of 32 bytes: got {describe(encoded)}; "
                    f"write {_RING_FORM}"
                ) from None
        return cls(keys)

    @classmethod
    def from_env(cls, variable: str = "COMPLY_LAB_KEYS") -> KeyRing:
        """Read the ring from an environment variable (see `from_text`).

        Raises:
            InvalidKeyError: the variable is not set.
        """
        text = os.environ.get(variable)
        if not text:
            raise InvalidKeyError(f"environment variable {variable} holds no keys")
        return cls.from_text(text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read the ring from a file (see [`from_text`][comply_lab.keys.keyring.KeyRing.from_text]).

        Raises:
            InvalidKeyError: the file cannot be read or holds no key ring (the message
                says what it holds instead).
        """
        try:
            data = Path(path).read_bytes()
        except (OSError, ValueError) as err:
            why = getattr(err, "strerror", None) or "not a file name"
            raise InvalidKeyError(f"cannot read key file {shown_path(path)}: {why}") from None
        try:
            return cls.from_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidKeyError(
                f"the key file holds {describe(data)}; expected a key ring ({_RING_FORM})"
            ) from None
        except InvalidKeyError as err:
            raise InvalidKeyError(f"key file {Path(path).name}: {err}") from None

    @classmethod
    def from_aws_secret(cls, secret_id: str, *, client: Any = None) -> KeyRing:
        """Read the ring from an AWS Secrets Manager secret holding its text form.

        Credentials and region come from boto3's chain unless a client is given.

        Raises:
            InvalidKeyError: the secret cannot be read or holds no valid ring.
        """
        if client is None:
            import boto3

            client = boto3.client("secretsmanager")
        try:
            text = client.get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as err:
            code = aws_error_code(err)
            raise InvalidKeyError(
                f"cannot read secret {secret_id!r} from AWS Secrets Manager ({code}); check "
                "its name, region and the caller's secretsmanager:GetSecretValue permission"
            ) from None
        return cls.from_text(text)

    def to_text(self) -> str:
        """Return the ring's text form, primary first, to store in a secret manager."""
        ordered = [self.primary, *(k for k in self._keys if k != self.primary)]
        return ",".join(f"{k}:{base64.urlsafe_b64encode(self._keys[k]).decode()}" for k in ordered)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys held."""
        return list(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={self.key_ids!r}, primary={self.primary!r})"

    @property
    def label(self) -> str:
        """The key ids held."""
        return ",".join(self.key_ids)

    def write_key(self, day: date | None, subject: str | None) -> tuple[str, AESGCM]:
        """Return the primary key, whatever the day and subject."""
        return self.primary, self._ciphers[self.primary]

    def read_key(self, key_id: str, entry_id: str, field: str) -> AESGCM:
        """Return the key ``key_id``; raise `MissingKeyError` if not held."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise MissingKeyError(
                f"entry {entry_id}: {field} is encrypted with key {key_id!r}, which this ring "
                f"does not hold (it has {', '.join(self.key_ids)})"
            )
        return cipher


def valid_key_id(key_id: object) -> bool:
    """Whether ``key_id`` can name a key: 1 to 32 characters, no ':', ',' or whitespace.

    Ids are names (``k1``, ``2026-01``), recorded in every ciphertext: short enough that a
    key pasted where its id belongs is refused, not recorded.
    """
    return (
        isinstance(key_id, str)
        and 0 < len(key_id) <= 32
        and key_id.isprintable()
        and not any(c in ":," or c.isspace() for c in key_id)
    )


def key_id_of(token: str) -> str | None:
    """Return the key id a stored ciphertext names, or None if it is not one of ours."""
    if not token.startswith(PREFIX):
        return None
    return token[len(PREFIX) :].partition(":")[0] or None


def _split(token: str, entry_id: str) -> tuple[str, bytes]:
    key_id = key_id_of(token)
    encoded = token[len(PREFIX) + len(key_id or "") + 1 :]
    try:
        raw = base64.urlsafe_b64decode(encoded.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if key_id is None or len(raw) <= _NONCE:
        raise DecryptionError(f"entry {entry_id}: the content is not a comply_lab ciphertext")
    return key_id, raw


def _associated(entry_id: str, field: str) -> bytes:
    return f"comply-lab/1|{entry_id}|{field}".encode()
