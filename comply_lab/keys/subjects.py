"""Keys per data subject, so one person's content can be erased without touching the log.

With [`SubjectKeys`][comply_lab.keys.subjects.SubjectKeys], content of entries whose metadata
names a data subject (by default ``metadata["user_id"]``) is encrypted under a key of that
subject alone. Erasing the subject (`shred_subject`) destroys the key: their stored content can
never be decrypted again, while every entry, hash, chain and manifest stays as it was, so
verification keeps passing and reports those entries as ``shredded``.

Subject keys are kept **outside the log**, in a directory of small files (one per subject, named
by a hash of the subject, holding the key wrapped by another key source such as a
[`KeyRing`][comply_lab.keys.keyring.KeyRing]): the log may be immutable (S3 Object Lock, WORM
copies) while keys must be deletable. Keep that directory out of long-term backups, or a
restored copy brings shredded keys back. Metadata (including the subject field) is never
encrypted; use pseudonymous subject ids.

Shredding overwrites the key file before unlinking it and leaves a tombstone naming the
destroyed key id, so later reads say "shredded" rather than "missing"; if the subject
logs again, a new key is made. A running logger notices a shredded key on its next write
to that subject (it checks the key file each time).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import secrets
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from comply_lab._time import utc_now
from comply_lab.errors import InvalidKeyError, InvalidQueryError, StorageError
from comply_lab.keys.keyring import ContentKeys, MissingKeyError, ShreddedKeyError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.durability import fsync_path
from comply_lab.storage.folder import Folder
from comply_lab.storage.manifest import SHREDDED

if TYPE_CHECKING:
    from comply_lab.storage.base import Storage

SUBJECT_PREFIX = "s-"
_FIELD = "subject_key"


def subject_hash(subject: str) -> str:
    """Return the 16-hex-digit name under which a subject's key is filed."""
    return hashlib.sha256(f"comply-lab-subject|{subject}".encode()).hexdigest()[:16]


class SubjectKeys(ContentKeys):
    """A key per data subject, wrapped by another key source and filed in a directory.

    Args:
        directory: Where the wrapped subject keys live (created if absent); not inside an
            immutable or backed-up copy of the log.
        wrapping: The keys that wrap subject keys (the primary wraps new ones); entries
            without a subject are encrypted with them too.
        subject_field: The metadata field naming an entry's subject.

    Example:
        >>> import tempfile
        >>> keys = SubjectKeys(tempfile.mkdtemp(), KeyRing.generate())
        >>> token = keys.encrypt("hi", entry_id="e1", field="input_content", subject="u7")
        >>> keys.decrypt(token, entry_id="e1", field="input_content")
        'hi'
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        wrapping: ContentKeys,
        *,
        subject_field: str = "user_id",
    ) -> None:
        if not isinstance(wrapping, ContentKeys):
            raise InvalidKeyError("SubjectKeys wraps subject keys with a KeyRing or EnvelopeKeys")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"cannot create the subject key directory {self.directory}: {err.strerror}"
            ) from None
        self.wrapping = wrapping
        self.subject_field = subject_field
        self._lock = threading.Lock()
        self._live: dict[str, tuple[tuple[int, int], str, AESGCM]] = {}
        self._places: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"SubjectKeys({str(self.directory)!r}, {self.wrapping!r})"

    @property
    def label(self) -> str:
        """The subject key directory and the wrapping keys."""
        return f"subjects:{self.directory}+{self.wrapping.label}"

    def bind(self, storage: Storage) -> SubjectKeys:
        """Attach the wrapping keys to the log (for envelope keys)."""
        wrapping = self.wrapping.bind(storage)
        if wrapping is self.wrapping:
            return self
        return SubjectKeys(self.directory, wrapping, subject_field=str(self.subject_field))

    def _path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{name}{suffix}"

    def write_key(self, day: date | None, subject: str | None) -> tuple[str, AESGCM]:
        """Return the subject's key (made and filed on first use), or the wrapping key."""
        if subject is None:
            return self.wrapping.write_key(day, None)
        place = self._places.get(subject)
        if place is None:
            name = subject_hash(subject)
            place = self._places[subject] = (name, os.fspath(self._path(name, ".key")))
        name, path = place
        try:
            stat = os.stat(path)
            signature = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = (-1, -1)
        cached = self._live.get(name)
        if cached is not None and cached[0] == signature:
            return cached[1], cached[2]
        with self._lock:
            if signature == (-1, -1):
                self._create(name, Path(path))
                stat = os.stat(path)
                signature = (stat.st_ino, stat.st_mtime_ns)
            key_id, cipher = self._load(Path(path))
            self._live[name] = (signature, key_id, cipher)
        return key_id, cipher

    def _create(self, name: str, path: Path) -> None:
        """File a new wrapped key, create-only and durable; keep another writer's if first."""
        key_id = f"{SUBJECT_PREFIX}{name}-{secrets.token_hex(4)}"
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        wrapped = self.wrapping.encrypt(key, entry_id=key_id, field=_FIELD)
        try:
            # If another writer filed this subject's key first, theirs is kept and used.
            with Folder(self.directory) as folder:
                folder.create(
                    path.name, orjson.dumps({"key_id": key_id, "wrapped": wrapped}), 0o600
                )
        except OSError as err:
            raise StorageError(
                f"cannot file a subject key in {self.directory}: {err.strerror}"
            ) from None

    def _load(self, path: Path) -> tuple[str, AESGCM]:
        try:
            record = orjson.loads(path.read_bytes())
            key_id = str(record["key_id"])
            wrapped = str(record["wrapped"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as err:
            raise InvalidKeyError(f"the subject key file {path} is unreadable ({err})") from None
        key = self.wrapping.decrypt(wrapped, entry_id=key_id, field=_FIELD)
        return key_id, AESGCM(base64.b64decode(key))

    def read_key(self, key_id: str, entry_id: str, field: str) -> AESGCM:
        """Return the key ``key_id``: a subject's, or one of the wrapping keys.

        Raises:
            ShreddedKeyError: the subject was shredded.
            MissingKeyError: no such key is filed here.
        """
        if not key_id.startswith(SUBJECT_PREFIX):
            return self.wrapping.read_key(key_id, entry_id, field)
        name = key_id[len(SUBJECT_PREFIX) :].partition("-")[0]
        cached = self._live.get(name)
        if cached is not None and cached[1] == key_id and self._path(name, ".key").exists():
            return cached[2]
        path = self._path(name, ".key")
        if path.exists():
            found, cipher = self._load(path)
            if found == key_id:
                return cipher
        shredded = self._tombstones(name).get(key_id)
        if shredded is not None:
            raise ShreddedKeyError(
                f"entry {entry_id}: {field} is encrypted with subject key {key_id!r}, which "
                f"was destroyed when its data subject was shredded ({shredded})"
            )
        raise MissingKeyError(
            f"entry {entry_id}: {field} is encrypted with subject key {key_id!r}, which is not "
            f"filed in {self.directory}"
        )

    def _tombstones(self, name: str) -> dict[str, str]:
        try:
            lines = self._path(name, ".shredded").read_bytes().splitlines()
        except FileNotFoundError:
            return {}
        result = {}
        for line in lines:
            try:
                record = orjson.loads(line)
                result[str(record["key_id"])] = str(record["at"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return result

    def current(self, key_id: str | None, day: date | None, subject: str | None) -> bool:
        """Subject-keyed content stays as it is; other content moves as the write key says."""
        if key_id is not None and key_id.startswith(SUBJECT_PREFIX):
            return True
        return key_id == self.write_key(day, subject)[0]

    def live_key_id(self, subject: str) -> str | None:
        """Return the id of the subject's key, or None if it has none (or was shredded)."""
        path = self._path(subject_hash(subject), ".key")
        if not path.exists():
            return None
        return self._load(path)[0]

    def destroy(self, subject: str) -> str | None:
        """Destroy the subject's key: tombstone, overwrite, unlink; return its id."""
        name = subject_hash(subject)
        path = self._path(name, ".key")
        key_id = self.live_key_id(subject)
        if key_id is None:
            return None
        with self._lock:
            try:
                with open(self._path(name, ".shredded"), "ab") as tomb:
                    at = format_timestamp(utc_now())
                    tomb.write(orjson.dumps({"key_id": key_id, "at": at}) + b"\n")
                    tomb.flush()
                    os.fsync(tomb.fileno())
                with open(path, "r+b") as file:
                    file.write(b"\0" * path.stat().st_size)
                    file.flush()
                    os.fsync(file.fileno())
                path.unlink()
                fsync_path(self.directory)
            except OSError as err:
                raise StorageError(
                    f"cannot destroy the subject key {path}: {err.strerror}; fix permissions "
                    "and shred again"
                ) from None
            self._live.pop(name, None)
        return key_id


def shred_subject(
    log: Any, subject: str, keys: SubjectKeys, *, reason: str, who: str | None = None
) -> str | None:
    """Erase a data subject's content by destroying their key; the log itself is untouched.

    A ``_shredded`` record (who, when, why, which key id; not the subject) is appended to
    the log first, then the key is destroyed, so verification reports the subject's
    entries as ``shredded``. Running it again after an interruption finishes the job.

    Args:
        log: An opened log (``open_log(...)``) or its storage.
        subject: The subject's id, as logged in ``metadata[keys.subject_field]``.
        keys: The [`SubjectKeys`][comply_lab.keys.subjects.SubjectKeys] the log was written
            with.
        reason: Why (an erasure request number); required.
        who: Who shreds; defaults to the operating-system user.

    Returns:
        The destroyed key id, or None if the subject had no live key.

    Raises:
        InvalidQueryError: no reason, or the subject is empty.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidQueryError("shredding needs a reason (an erasure request, a case number)")
    if not isinstance(subject, str | int) or isinstance(subject, bool) or subject == "":
        raise InvalidQueryError("the subject must be a non-empty string or an integer")
    subject = str(subject)
    key_id = keys.live_key_id(subject)
    if key_id is None:
        return None
    storage: Storage = getattr(log, "storage", log)
    storage.append_metadata(
        SHREDDED,
        {
            "action": "shred",
            "key_id": key_id,
            "subject_field": keys.subject_field,
            "who": who or getpass.getuser(),
            "at": format_timestamp(utc_now()),
            "reason": reason,
        },
    )
    keys.destroy(subject)
    return key_id
