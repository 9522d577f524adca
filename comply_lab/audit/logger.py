"""The audit logger: the original tool's async API, its synchronous twins, and hash chains."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

import orjson

from comply_lab import _forksafe
from comply_lab._time import TimeLike, to_utc, utc_now, utc_now_us
from comply_lab._twins import Closing, asyncify
from comply_lab.crypto.fingerprint import check_hash_key, fingerprint, hash_key_id
from comply_lab.errors import ConfigurationError, InvalidEntryError
from comply_lab.keys.encryption import EncryptionManager, decrypt_text
from comply_lab.keys.keyring import ContentKeys
from comply_lab.model import validate
from comply_lab.model.chain import Chain
from comply_lab.model.entry import CALL_FIELDS, AuditEntry
from comply_lab.model.ids import IdGenerator
from comply_lab.retention.policy import apply_retention, plan_retention
from comply_lab.storage.backend import BackendAdapter
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import Registering
from comply_lab.storage.registry import open_storage
from comply_lab.storage.scan import entries_between, find_entry

if TYPE_CHECKING:
    from comply_lab.audit.interaction import Interaction, SafetyCheck
    from comply_lab.audit.schedule import DailyCleanup

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST, _LAST = _EPOCH, datetime(9999, 12, 31, tzinfo=UTC)
_LOG_KEYWORDS = ("input", "output", *CALL_FIELDS)
P = ParamSpec("P")


_Pending = tuple[str, int | None]
"""What an append leaves to acknowledge: the entry id and a durability ticket, if any."""


def _explain_call(submit: Callable[..., object], args: Any, kwargs: dict[str, Any]) -> None:
    """After a TypeError from ``log()``: if the call itself was wrong, say how, as ``log()``.

    A misspelt keyword is named with the field it probably meant, even when the misspelling
    left ``input`` or ``output`` missing (Python would only report the missing one).
    """
    unknown = {name: value for name, value in kwargs.items() if name not in _LOG_KEYWORDS}
    if unknown:
        validate.no_unknown(unknown, _LOG_KEYWORDS)
    try:
        inspect.signature(submit).bind(None, *args, **kwargs)
    except TypeError as err:
        raise TypeError(
            f"log(): {err}; it takes input= and output= and the optional fields "
            f"{', '.join(CALL_FIELDS)}"
        ) from None


def _acknowledged(
    submit: Callable[Concatenate[AuditLogger, P], _Pending],
) -> Callable[Concatenate[AuditLogger, P], str]:
    @functools.wraps(submit)
    def log_sync(self: AuditLogger, /, *args: P.args, **kwargs: P.kwargs) -> str:
        try:
            entry_id, ticket = submit(self, *args, **kwargs)
        except TypeError:
            _explain_call(submit, args, kwargs)
            raise
        if ticket is not None:
            self.storage.wait_durable(ticket)
        return entry_id

    log_sync.__name__ = log_sync.__qualname__ = "log_sync"
    return log_sync


def _acknowledged_async(
    submit: Callable[Concatenate[AuditLogger, P], _Pending],
) -> Callable[Concatenate[AuditLogger, P], Coroutine[Any, Any, str]]:
    @functools.wraps(submit)
    async def log(self: AuditLogger, /, *args: P.args, **kwargs: P.kwargs) -> str:
        try:
            entry_id, ticket = submit(self, *args, **kwargs)
        except TypeError:
            _explain_call(submit, args, kwargs)
            raise
        if ticket is not None:
            await asyncio.to_thread(self.storage.wait_durable, ticket)
        return entry_id

    log.__name__ = log.__qualname__ = "log"
    return log


class AuditLogger(Closing):
    """Logs AI interactions to a storage backend, hash-only unless asked otherwise.

    Each logger is one *writer*: its entries form a hash chain (``writer_id``, ``seq``,
    ``prev_hash``, ``entry_hash``), so many loggers and processes can share one store
    without locks and each chain stays verifiable.

    Every method has an ``async`` form (the original API) and a ``_sync`` twin for scripts
    and notebooks; both run the same code.

    Args:
        storage: A storage object, or a directory path (meaning ``FileStorage(path)``).
        encryption: Encrypts stored content when ``store_content`` is True: an
            ``EncryptionManager`` (Fernet, as the original tool) or AES-256-GCM content keys
            bound to each entry and field, with key ids for rotation: a
            [`KeyRing`][comply_lab.keys.keyring.KeyRing], KMS-wrapped data keys per day
            (``EnvelopeKeys``) or keys per data subject (``SubjectKeys``, for erasure by
            `shred_subject`).
        store_content: Store the input and output text, not only their SHA-256 hashes.
        retention_days: Age in days after which
            `cleanup_expired` deletes
            entries.
        hash_key: Makes ``input_hash``/``output_hash`` HMAC-SHA256 under this secret (at
            least 16 bytes), so short prompts cannot be confirmed by guessing; entries
            record the key's fingerprint in ``hash_key_id``. Plain SHA-256 when None.
        clock: Returns the current time (aware, or naive meaning UTC); for tests and for
            replaying historical data. Defaults to the system clock.

    Raises:
        InvalidQueryError: ``retention_days`` is negative or not an int.
        InvalidKeyError: ``hash_key`` is too short or not bytes.

    Example:
        >>> import tempfile
        >>> logger = AuditLogger(tempfile.mkdtemp())
        >>> entry_id = logger.log_sync(input="Hi", output="Hello!", provider="openai",
        ...                            model="gpt-4", latency_ms=150.0)
        >>> logger.get_entry_sync(entry_id).output_content is None
        True
        >>> logger.close()
    """

    def __init__(
        self,
        storage: Storage | str | os.PathLike[str],
        encryption: EncryptionManager | ContentKeys | None = None,
        store_content: bool = False,
        retention_days: int = 365,
        *,
        hash_key: bytes | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise ConfigurationError(f"retention_days must be an int, got {retention_days!r}")
        if retention_days < 0:
            raise ConfigurationError(f"retention_days must be >= 0, got {retention_days}")
        self.storage = open_storage(storage)
        if isinstance(encryption, ContentKeys):
            encryption = encryption.bind(self.storage)
        self.encryption = encryption
        self.store_content = store_content
        self.retention_days = retention_days
        self._hash_key = None if hash_key is None else check_hash_key(hash_key)
        self._hash_key_id = None if hash_key is None else hash_key_id(hash_key)
        self._clock = clock
        self._ids = IdGenerator()
        self._lock = threading.Lock()
        self._second: tuple[int, str, date] = (-1, "", date.min)
        self._chain = Chain()
        _forksafe.register(self)

    def __repr__(self) -> str:
        return (
            f"AuditLogger({self.storage!r}, store_content={self.store_content}, "
            f"encrypted={self.encryption is not None}, retention_days={self.retention_days})"
        )

    @property
    def writer_id(self) -> str:
        """The id of the chain this logger's entries form (see `comply_lab.model.chain`)."""
        return self._chain.writer_id

    def _after_fork(self) -> None:
        # A forked child is a new writer: sharing the parent's chain would fork it.
        self._lock = threading.Lock()
        self._ids = IdGenerator()
        self._chain.restart()

    def _now_us(self) -> int:
        if self._clock is None:
            return utc_now_us()
        moment = to_utc(self._clock(), name="clock()")
        if not _FIRST <= moment < _LAST:
            raise InvalidEntryError(
                "timestamp",
                f"clock() gave {moment.isoformat()}; entries are logged from 1970 to 9999 "
                "(their ids count milliseconds since 1970)",
            )
        return (moment - _EPOCH) // timedelta(microseconds=1)

    def _content(
        self, name: str, text: object, entry_id: str, day: date, metadata: dict[str, Any] | None
    ) -> tuple[str | None, str]:
        if type(text) is not str:
            text = validate.text(name, text)
        try:
            digest = fingerprint(text, self._hash_key)
        except UnicodeEncodeError:
            validate.text(name, text)
            raise
        if not self.store_content:
            return None, digest
        keys = self.encryption
        if isinstance(keys, ContentKeys):
            subject = validate.subject(keys.subject_field, metadata)
            token = keys.encrypt(
                text, entry_id=entry_id, field=f"{name}_content", day=day, subject=subject
            )
            return token, digest
        if keys is not None:
            return keys.encrypt(text), digest
        return text, digest

    def _stamp(self, now_us: int) -> tuple[str, date]:
        """Return the stored ISO form and UTC day of a time in microseconds."""
        seconds, micros = divmod(now_us, 1_000_000)
        cached = self._second
        if cached[0] != seconds:
            moment = _EPOCH + timedelta(seconds=seconds)
            cached = (seconds, f"{moment:%Y-%m-%dT%H:%M:%S}", moment.date())
            self._second = cached
        return f"{cached[1]}.{micros:06d}+00:00", cached[2]

    def _submit(
        self,
        /,
        input: str,
        output: str,
        provider: str | None = None,
        model: str | None = None,
        conversation_id: str | None = None,
        safety_passed: bool = True,
        detectors_triggered: Sequence[str] | None = None,
        block_reason: str | None = None,
        alerts: Sequence[str] | None = None,
        latency_ms: float = 0.0,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        metadata: dict[str, Any] | None = None,
        **unknown: object,
    ) -> _Pending:
        """Log one AI interaction and return its entry id.

        Returns once the entry is handed to the operating system in a single write (and,
        with ``fsync="always"``, once an fsync covers it). Only SHA-256 hashes of the
        input and output are stored unless the logger has ``store_content=True``.

        Args:
            input: The prompt or user input.
            output: The model's answer (``""`` for a blocked request).
            provider: AI provider, e.g. ``"openai"``.
            model: Model name, e.g. ``"gpt-4"``.
            conversation_id: Links the entries of one conversation.
            safety_passed: Whether every safety check passed.
            detectors_triggered: Names of the safety detectors that fired.
            block_reason: Why the request was blocked.
            alerts: Warning messages raised for the interaction.
            latency_ms: Time the interaction took, in milliseconds (finite, >= 0).
            input_tokens: Tokens in the input.
            output_tokens: Tokens in the output.
            metadata: JSON-serializable dict of anything else.
            **unknown: Rejected: a misspelled field must not vanish silently.

        Returns:
            The entry id (a UUIDv7 string).

        Raises:
            InvalidEntryError: a value cannot be stored (the error names the field).
            UnknownFieldError: a keyword is not an entry field.
            StorageError: the backend failed; the entry was not stored.
        """
        if unknown:
            validate.no_unknown(unknown, _LOG_KEYWORDS)
        now_us = self._now_us()
        stamp, day = self._stamp(now_us)
        entry_id = self._ids.new_id(now_us // 1000)
        metadata = validate.metadata("metadata", metadata)
        input_content, input_hash = self._content("input", input, entry_id, day, metadata)
        output_content, output_hash = self._content("output", output, entry_id, day, metadata)
        record: dict[str, Any] = {
            "id": entry_id,
            "timestamp": stamp,
            "input_hash": input_hash,
            "output_hash": output_hash,
            "provider": validate.optional_text("provider", provider),
            "model": validate.optional_text("model", model),
            "conversation_id": validate.optional_text("conversation_id", conversation_id),
            "safety_passed": validate.flag("safety_passed", safety_passed),
            "detectors_triggered": validate.text_list("detectors_triggered", detectors_triggered),
            "block_reason": validate.optional_text("block_reason", block_reason),
            "alerts": validate.text_list("alerts", alerts),
            "latency_ms": validate.latency("latency_ms", latency_ms),
            "input_tokens": validate.tokens("input_tokens", input_tokens),
            "output_tokens": validate.tokens("output_tokens", output_tokens),
            "metadata": metadata,
            "hash_key_id": self._hash_key_id,
        }
        try:
            ticket = self._chain.append(
                record,
                input_content,
                output_content,
                lambda line: self.storage.append(day, line),
                self.storage if isinstance(self.storage, Registering) else None,
            )
        except orjson.JSONEncodeError:
            raise validate.unencodable(record) from None
        return entry_id, ticket

    log = _acknowledged_async(_submit)
    log_sync = _acknowledged(_submit)

    def get_entry_sync(self, entry_id: str) -> AuditEntry | None:
        """Return the entry with ``entry_id``, or None if there is none.

        Only the day partition named by the (UUIDv7) id is read.
        """
        if isinstance(self.storage, BackendAdapter):
            return self.storage.read_sync(entry_id)
        return find_entry(self.storage, entry_id)

    def get_entries_sync(self, start: TimeLike, end: TimeLike) -> list[AuditEntry]:
        """Return the entries logged from ``start`` to ``end``, both included, by time.

        Naive datetimes (such as ``datetime.utcnow()``) are read as UTC; aware ones are
        converted; ISO 8601 strings are accepted. Only the days in range are read.

        Raises:
            InvalidQueryError: ``start`` is after ``end``, or a bound is not a time.
        """
        if isinstance(self.storage, BackendAdapter):
            return self.storage.list_entries_sync(start, end)
        return entries_between(self.storage, start, end)

    def cleanup_expired_sync(self, now: TimeLike | None = None) -> int:
        """Delete entries whose whole UTC day is older than ``retention_days``.

        Whole day partitions are deleted; no file is rewritten, and no entry younger than
        ``retention_days`` is ever deleted (an entry may outlive it by up to one day).
        It is `plan_retention` and
        ``apply_retention`` with the logger's ``retention_days``: partitions under a legal
        hold or S3 Object Lock are kept, each deletion is recorded in ``_retention``, and
        a retention floor recorded in the log is enforced.

        Raises:
            RetentionFloorError: ``retention_days`` is below the log's minimum retention.

        Args:
            now: The current time, for tests and reports; defaults to the clock.

        Returns:
            The number of entries deleted.
        """
        if now is None and self._clock is not None:
            now = self._clock()
        if isinstance(self.storage, BackendAdapter):  # entry by entry, as the original
            moment = to_utc(now, name="now") if now is not None else utc_now()
            return self.storage.expire_sync(moment - timedelta(days=self.retention_days))
        plan = plan_retention(self.storage, self.retention_days, now, count=False)
        return apply_retention(self.storage, plan, reason="cleanup_expired").entries

    def interaction(
        self,
        *,
        input: str = "",
        provider: str | None = None,
        model: str | None = None,
        conversation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        safety: SafetyCheck | None = None,
    ) -> Interaction:
        """Record one interaction around any code: ``with logger.interaction(...) as rec:``.

        Set ``rec.output`` (and ``rec.input_tokens``/``output_tokens``) inside the block;
        the latency is measured, an exception is logged as a failed entry and re-raised,
        and ``safety`` checks the input and output. Works with ``async with`` too. See
        `comply_lab.audit.interaction`.
        """
        from comply_lab.audit.interaction import Interaction

        return Interaction(
            self,
            input=input,
            provider=provider,
            model=model,
            conversation_id=conversation_id,
            metadata=metadata,
            safety=safety,
        )

    def schedule_cleanup(self, *, hour: int = 2, minute: int = 0) -> DailyCleanup:
        """Run `cleanup_expired` daily at ``hour:minute`` UTC in the background.

        Call it from a running asyncio program; errors are logged and the next day's run
        still happens. Stop it with ``await schedule.stop()``. See
        `comply_lab.audit.schedule`.
        """
        from comply_lab.audit.schedule import DailyCleanup

        return DailyCleanup(self, hour=hour, minute=minute).start()

    @property
    def clock(self) -> Callable[[], datetime] | None:
        """The clock given to the logger, if any."""
        return self._clock

    get_entry = asyncify(get_entry_sync)
    get_entries = asyncify(get_entries_sync)
    cleanup_expired = asyncify(cleanup_expired_sync)

    def decrypt_content(
        self, encrypted_content: str, *, entry_id: str | None = None, field: str = "input_content"
    ) -> str:
        """Decrypt content that this logger stored encrypted.

        Args:
            encrypted_content: ``entry.input_content`` or ``entry.output_content``.
            entry_id: The entry's id: needed for key-ring ciphertexts, which are bound
                to their entry and field (not for ``EncryptionManager`` content).
            field: ``"input_content"`` or ``"output_content"``, for key-ring ciphertexts.

        Raises:
            EncryptionNotConfiguredError: the logger has no key.
            DecryptionError: the content was not encrypted with this logger's key(s).
        """
        return decrypt_text(self.encryption, encrypted_content, entry_id, field)

    def close(self) -> None:
        """Make every logged entry durable and close the storage."""
        self.storage.close()
