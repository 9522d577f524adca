"""Certifying operator keys, and refusing what a store's key may not sign.

Who may sign what is read from the log by `comply_lab.storage.signers` (one root, pinned
by the verifier; operator keys certified by it for scopes), which also refuses a process
acting with an operator key, before anything happens, what that key may not sign
(`check_may_sign`). Here the root key certifies an operator key.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import Any

from comply_lab._time import utc_now
from comply_lab.crypto.signing import PublicKeyLike, key_id, load_public_key
from comply_lab.errors import InvalidQueryError
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.manifest import SIGNERS
from comply_lab.storage.signers import ALL_SCOPES, raw_public


def declare_operator(
    storage: Storage,
    public_key: PublicKeyLike,
    name: str,
    *,
    reason: str,
    who: str | None = None,
    scopes: Sequence[str] | None = None,
) -> str:
    """Certify an operator key, signed with the store's signing key (the log's root key).

    Args:
        storage: The log's store, opened with the root key.
        public_key: The operator's public key.
        name: Who or what holds it.
        reason: Why it is certified (recorded).
        who: Who certifies it (default: the operating-system user).
        scopes: The trails its signatures count in (see `SCOPES`); all of them by
            default.

    Returns:
        The operator key's id.

    Raises:
        InvalidQueryError: the store has no signing key, the key is the root's own, a
            scope is unknown, or the name or reason is missing.
    """
    writer = storage.signing_key if isinstance(storage, StorageBase) else None
    if writer is None:
        raise InvalidQueryError(
            "declaring an operator key needs the writer's signing key: open the log with "
            "open_log(..., signing_key=<writer key>) or pass --signing-key"
        )
    operator = load_public_key(public_key)
    if key_id(operator) == key_id(writer):
        raise InvalidQueryError("that is the writer's own key; declare another key")
    for text, what in ((name, "a name"), (reason, "a reason")):
        if not isinstance(text, str) or not text.strip():
            raise InvalidQueryError(f"declaring an operator key needs {what}")
    given = ALL_SCOPES if scopes is None else tuple(scopes)
    unknown = [scope for scope in given if scope not in ALL_SCOPES]
    if unknown or not given:
        raise InvalidQueryError(
            f"unknown scope(s) {', '.join(map(repr, unknown))}: an operator key's scopes "
            f"are among {', '.join(ALL_SCOPES)}"
        )
    record: dict[str, Any] = {
        "kind": "operator",
        "name": name,
        "scopes": sorted(set(given)),
        "operator_key": raw_public(operator),
        "operator_id": key_id(operator),
        "writer_key": raw_public(writer),
        "reason": reason,
        "who": who or getpass.getuser(),
        "at": format_timestamp(utc_now()),
    }
    storage.append_metadata(SIGNERS, record)
    return key_id(operator)
