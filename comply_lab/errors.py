"""The one exception hierarchy of comply_lab.

Every error raised on purpose by comply_lab derives from
[`ComplyLabError`][comply_lab.errors.ComplyLabError] and
also from the builtin that fits it, so callers may catch either::

    try:
        logger.log_sync(input=prompt, output=answer, latency_ms=-1)
    except ValueError as err:          # or ComplyLabError, or InvalidEntryError
        print(err)

Messages say what happened, to which entry, field, partition or path, and what to do.
They never contain key material.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken


class ComplyLabError(Exception):
    """Base class of every error comply_lab raises on purpose."""


class InvalidEntryError(ComplyLabError, ValueError):
    """A value passed to ``log()`` cannot be stored; nothing was written.

    Attributes:
        field: The name of the offending field (``"latency_ms"``, ``"metadata"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownFieldError(InvalidEntryError, TypeError):
    """``log()`` was called with a keyword that is not an entry field."""


class InvalidQueryError(ComplyLabError, ValueError):
    """A query argument (time range, id, option) cannot be used."""


class ConcurrentOperationError(ComplyLabError, RuntimeError):
    """Another maintenance operation (compaction, key rotation, retention) holds the log."""


class ConfigurationError(InvalidQueryError):
    """A constructor or opener got an option it cannot use (a bad path, URL or setting)."""


class SigningKeyRequiredError(ConfigurationError):
    """A record would go unsigned into a signed trail: verification would reject it.

    Raised before anything is recorded or done; open the store or log with the writer's
    signing key, or an operator key the log declares.
    """


class UnadoptedLogError(ConfigurationError):
    """A signed operation on a log without a genesis record signed by its root key.

    Logs written by an earlier version, or by the original tool, get one from
    ``comply-lab adopt`` once they verify; nothing was changed.
    """


class NoLogError(InvalidQueryError):
    """A path or prefix holds no log at all: nothing to verify, read or checkpoint."""


class NothingSealedError(InvalidQueryError):
    """An operation needs sealed data and the log has none (a checkpoint would cover nothing)."""


class StorageError(ComplyLabError, OSError):
    """A storage backend failed to write, read or delete data."""


class ForeignFileError(StorageError):
    """A symbolic link (or other odd file) inside a log: never followed, written or deleted."""


class IntegrityError(ComplyLabError, ValueError):
    """Stored data does not match what it must contain (hash, count or chain mismatch)."""


class CorruptSegmentError(IntegrityError):
    """A stored segment cannot be decoded at all (for example a damaged Parquet file)."""


class CorruptRecordError(ComplyLabError, ValueError):
    """A stored record is not a valid audit entry.

    Readers of segments turn it into
    [`CorruptSegmentError`][comply_lab.errors.CorruptSegmentError] naming the segment; expanding
    the ``metadata`` of a DataFrame raises it naming the entry.
    """


class DecryptionError(ComplyLabError, ValueError):
    """Encrypted content could not be decrypted (wrong key or damaged ciphertext)."""


class WrongKeyError(DecryptionError, InvalidToken):
    """A Fernet token did not decrypt with the key given (wrong key, or damaged token).

    Also a ``cryptography.fernet.InvalidToken``, which code written for the original
    audit-logging API catches.
    """


class InvalidKeyError(ComplyLabError, ValueError):
    """A key is malformed (wrong length or encoding); the key is never in the message."""


class EncryptionNotConfiguredError(DecryptionError):
    """Decryption was asked for but no encryption key is configured."""


class ComplyLabWarning(UserWarning):
    """Base class of the warnings comply_lab emits."""


class CorruptLineWarning(ComplyLabWarning):
    """A stored line could not be read and was skipped; the rest of the file was read."""


class IntegrityWarning(ComplyLabWarning):
    """A reader left out stored data that nothing trusted vouches for (verify the log)."""


class CorruptSegmentWarning(ComplyLabWarning):
    """A scan asked to skip damaged segments (``on_corrupt="skip"``) skipped some."""


class UnknownValueWarning(ComplyLabWarning):
    """A filter matched nothing because a value it names is not in the log's range."""


class RequestBlockedError(ComplyLabError):
    """A safety check blocked an AI request or its answer; the block was logged.

    Attributes:
        entry_id: The id of the logged entry.
        verdict: The safety verdict that blocked it.
    """

    def __init__(self, message: str, entry_id: str, verdict: object) -> None:
        super().__init__(message)
        self.entry_id = entry_id
        self.verdict = verdict


class RetentionError(IntegrityError):
    """Retention refuses to act on a policy it cannot trust (a damaged or unsigned trail)."""


class RetentionFloorError(InvalidQueryError):
    """A retention plan would delete data younger than the log's minimum retention."""


class EntryHeldError(InvalidQueryError):
    """An entry asked to be deleted is under an active legal hold; release the hold first."""


class RetentionWarning(ComplyLabWarning):
    """Stored data could not be deleted (for example under S3 Object Lock) and was kept."""


class SealWarning(ComplyLabWarning):
    """A segment could not be sealed now; it stays readable as JSONL and is retried later."""


def aws_error_code(err: BaseException) -> str:
    """Return the error code of a botocore ``ClientError``, else the exception's type name."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(err).__name__)
