"""Envelope encryption: a data key per UTC day, wrapped by an AWS KMS key.

Content of each day is encrypted (AES-256-GCM, bound to entry and field like every
[`ContentKeys`][comply_lab.keys.keyring.ContentKeys]) with a data key that KMS generates. Only
the *wrapped* data key is kept, as a record in the log's ``_keys`` metadata trail (chained like
the manifest, an object per record on S3); the plaintext key lives in memory only. Reading
unwraps each day's key with one KMS ``Decrypt`` call and caches it.

The wrapped key is bound to its key id by the KMS encryption context
(``{"comply-lab-key": key_id}``), so a trail record copied to another id does not unwrap.
Several writers on one day reuse the first data key recorded for that day and KMS key; if
two create one at the same moment, both keys are recorded and both read back.

Moving to another KMS key is [`comply_lab.rotate_keys`][comply_lab.keys.rotate.rotate_keys] with
``EnvelopeKeys`` of the new
key: each day gets a data key wrapped by it and content is re-encrypted. KMS's own automatic
rotation of key material needs nothing from comply_lab.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from datetime import date
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from comply_lab._time import utc_now
from comply_lab.errors import DecryptionError, InvalidKeyError, InvalidQueryError, aws_error_code
from comply_lab.keys.keyring import ContentKeys, MissingKeyError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.manifest import KEYS, parse_records

if TYPE_CHECKING:
    from comply_lab.storage.base import Storage

_CONTEXT = "comply-lab-key"
_PREFIX = "dk-"


class EnvelopeKeys(ContentKeys):
    """Content keys generated and wrapped by AWS KMS, one per day, recorded in the log.

    Args:
        kms_key_id: The KMS key (id, ARN or ``alias/...``) that wraps the data keys.
        client: A boto3 KMS client; by default one from boto3's credential and region chain.
        previous: Keys that read content written before these (a
            [`KeyRing`][comply_lab.keys.keyring.KeyRing] being migrated from, for
            ``rotate_keys``); they never encrypt.
        storage: The log's storage, where wrapped keys are recorded. Loggers, ``log.decrypt``
            and ``rotate_keys`` attach it themselves, so it is rarely given.

    Example:
        >>> keys = EnvelopeKeys("alias/audit-log")                      # doctest: +SKIP
        >>> logger = AuditLogger("logs/", keys, store_content=True)     # doctest: +SKIP
    """

    def __init__(
        self,
        kms_key_id: str,
        *,
        client: Any = None,
        previous: ContentKeys | None = None,
        storage: Storage | None = None,
    ) -> None:
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise InvalidKeyError("EnvelopeKeys needs the id, ARN or alias of a KMS key")
        self.kms_key_id = kms_key_id
        self.previous = previous
        self._client = client
        self._storage = storage
        self._lock = threading.Lock()
        self._ciphers: dict[str, AESGCM] = {}
        self._days: dict[date, str] = {}

    def __repr__(self) -> str:
        return f"EnvelopeKeys({self.kms_key_id!r}, data_keys={len(self._ciphers)})"

    @property
    def label(self) -> str:
        """``kms:`` and the wrapping key's id."""
        return f"kms:{self.kms_key_id}"

    def bind(self, storage: Storage) -> EnvelopeKeys:
        """Return keys that record and find wrapped data keys in ``storage``."""
        if self._storage is storage:
            return self
        previous = None if self.previous is None else self.previous.bind(storage)
        return EnvelopeKeys(
            self.kms_key_id, client=self._client, previous=previous, storage=storage
        )

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("kms")
        return self._client

    def _trail(self) -> Storage:
        if self._storage is None:
            raise InvalidQueryError(
                "EnvelopeKeys keeps wrapped data keys in the log: use them through a logger, "
                "log.decrypt or rotate_keys, or pass storage="
            )
        return self._storage

    def _records(self) -> list[dict[str, Any]]:
        data = self._trail().read_metadata(KEYS)
        return [r for _, r in parse_records(data) if r is not None and "wrapped" in r]

    def write_key(self, day: date | None, subject: str | None) -> tuple[str, AESGCM]:
        """Return the data key of ``day`` (today if None), creating and recording it once."""
        day = day or utc_now().date()
        key_id = self._days.get(day)
        if key_id is not None:
            return key_id, self._ciphers[key_id]
        with self._lock:
            if day not in self._days:
                for record in self._records():
                    if record.get("day") == day.isoformat() and record.get("kms_key") == (
                        self.kms_key_id
                    ):
                        self._ciphers[record["key_id"]] = self._unwrap(record)
                        self._days[day] = record["key_id"]
                        break
                else:
                    self._days[day] = self._new_key(day)
            key_id = self._days[day]
        return key_id, self._ciphers[key_id]

    def _new_key(self, day: date) -> str:
        key_id = f"{_PREFIX}{day:%Y%m%d}-{secrets.token_hex(4)}"
        try:
            response = self._kms().generate_data_key(
                KeyId=self.kms_key_id, KeySpec="AES_256", EncryptionContext={_CONTEXT: key_id}
            )
        except Exception as err:
            raise InvalidKeyError(
                f"AWS KMS GenerateDataKey with key {self.kms_key_id!r} failed "
                f"({aws_error_code(err)}); check the key id, its region and the caller's "
                "kms:GenerateDataKey permission"
            ) from None
        self._trail().append_metadata(
            KEYS,
            {
                "key_id": key_id,
                "day": day.isoformat(),
                "kms_key": self.kms_key_id,
                "kms_key_arn": response["KeyId"],
                "wrapped": base64.b64encode(response["CiphertextBlob"]).decode(),
                "created_at": format_timestamp(utc_now()),
            },
        )  # recorded before any content is encrypted with it
        self._ciphers[key_id] = AESGCM(response["Plaintext"])
        return key_id

    def read_key(self, key_id: str, entry_id: str, field: str) -> AESGCM:
        """Return data key ``key_id``, unwrapped by KMS on first use.

        Raises:
            MissingKeyError: the log's ``_keys`` trail has no such key, or KMS refused to
                unwrap it (permissions, a disabled key, an altered record), or ``previous``
                lacks a key that is not a data key.
        """
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        if self.previous is not None and not key_id.startswith(_PREFIX):
            return self.previous.read_key(key_id, entry_id, field)
        with self._lock:
            if key_id not in self._ciphers:
                found = [r for r in self._records() if r.get("key_id") == key_id]
                if not found:
                    raise MissingKeyError(
                        f"entry {entry_id}: {field} is encrypted with data key {key_id!r}, "
                        "which the log's _keys trail does not hold"
                    )
                self._ciphers[key_id] = self._unwrap(found[0])
        return self._ciphers[key_id]

    def _unwrap(self, record: dict[str, Any]) -> AESGCM:
        key_id = str(record.get("key_id"))
        try:
            blob = base64.b64decode(str(record["wrapped"]), validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError(
                f"the wrapped data key {key_id!r} in the log's _keys trail is damaged"
            ) from None
        try:
            response = self._kms().decrypt(
                CiphertextBlob=blob, EncryptionContext={_CONTEXT: key_id}
            )
        except Exception as err:
            raise MissingKeyError(
                f"AWS KMS did not unwrap data key {key_id!r} ({aws_error_code(err)}): the "
                "caller lacks kms:Decrypt on its KMS key, the key is disabled or deleted, or "
                "the trail record was altered"
            ) from None
        return AESGCM(response["Plaintext"])
