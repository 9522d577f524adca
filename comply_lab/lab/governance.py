"""Governance of a log: retention plans and their application, legal holds, operator keys.

[`Governance`][comply_lab.lab.governance.Governance] is a part of
[`Log`][comply_lab.lab.log.Log]: every method works on the log's store, and each change it makes
is recorded (signed, when the log signs) in the log's trails before it takes effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from comply_lab._time import TimeLike
from comply_lab.crypto.signing import PublicKeyLike, key_id
from comply_lab.integrity.authority import declare_operator
from comply_lab.lab.policy import events_frame, holds_frame, plan_of
from comply_lab.model.holds import Hold
from comply_lab.retention.holds import delete_entry, place_hold, release_hold, set_floor
from comply_lab.retention.policy import (
    RetentionPlan,
    RetentionResult,
    apply_retention,
    plan_retention,
)
from comply_lab.storage.base import Storage
from comply_lab.storage.manifest import SIGNERS
from comply_lab.storage.signers import declarations


class Governance:
    """Retention, holds and operator keys of a log's store (``self.storage``)."""

    storage: Storage

    def retention_plan(
        self,
        days: int,
        now: TimeLike | None = None,
        *,
        floor_days: int | None = None,
        override: str | None = None,
        public_key: PublicKeyLike | None = None,
    ) -> pd.DataFrame:
        """Return what retention of ``days`` days would delete; nothing is changed.

        One row per day partition: ``partition``, ``entries``, ``bytes``, ``action`` (``delete``
        or ``keep``), ``reason`` (expired, within retention, under hold, locked by object lock)
        and ``holds``. Pass it to
        [`apply_retention`][comply_lab.lab.governance.Governance.apply_retention], after
        removing any row you want kept. See `comply_lab.retention.policy`.

        Only a legal-hold trail that verifies is trusted: with signed holds, open the log
        with its signing key or pass ``public_key``.

        Raises:
            RetentionFloorError: ``days`` is below the minimum retention and no
                ``override`` reason is given.
            RetentionError: the legal-hold trail does not verify.
        """
        return plan_retention(
            self.storage,
            days,
            now,
            floor_days=floor_days,
            override=override,
            public_key=public_key,
        ).to_frame()

    def apply_retention(
        self,
        plan: RetentionPlan | pd.DataFrame,
        *,
        reason: str | None = None,
        who: str | None = None,
        public_key: PublicKeyLike | None = None,
    ) -> RetentionResult:
        """Delete exactly the partitions the plan marks ``delete``, each recorded first.

        Holds and the floor are checked again, from a trail that must verify, so a hold
        placed since planning still protects its partitions. Returns the partitions and
        entries deleted and what was kept, and why.

        Raises:
            RetentionError: the legal-hold trail does not verify.
        """
        return apply_retention(
            self.storage, plan_of(plan), who=who, reason=reason, public_key=public_key
        )

    def hold(
        self,
        name: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        conversation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        reason: str,
        who: str | None = None,
    ) -> Hold:
        """Place a legal hold: partitions with a matching entry are never deleted.

        An entry matches when it lies in ``[start, end]`` (if given), belongs to
        ``conversation_id`` (if given) and has every ``metadata`` key/value (if given); a
        hold with no criteria covers the whole log. Recorded in the log's ``_holds`` trail.

        Raises:
            InvalidQueryError: no reason or name, or a hold of that name is active.
        """
        return place_hold(
            self.storage,
            name,
            start=start,
            end=end,
            conversation_id=conversation_id,
            metadata=metadata,
            reason=reason,
            who=who,
        )

    def delete(
        self,
        entry_id: str,
        *,
        reason: str,
        who: str | None = None,
        public_key: PublicKeyLike | None = None,
    ) -> bool:
        """Delete one entry on request, unless a legal hold covers it; False if there is none.

        Recorded (who, why, when; signed when the log signs) before the entry leaves
        every read; its bytes go at the next sealing or compaction, and verification
        reports it ``deleted_on_request`` (see the guide, "Deleting one entry on request").

        Raises:
            InvalidQueryError: no reason, or ``entry_id`` is not a string.
            EntryHeldError: an active hold covers the entry; nothing was deleted.
            RetentionError: the holds trail does not verify.
        """
        return delete_entry(self.storage, entry_id, reason=reason, who=who, public_key=public_key)

    def release(self, name: str, reason: str, *, who: str | None = None) -> None:
        """Release an active hold (recorded); later plans may delete its partitions."""
        release_hold(self.storage, name, reason=reason, who=who)

    def holds(self) -> pd.DataFrame:
        """Return the active legal holds."""
        return holds_frame(self.storage)

    def add_operator(
        self,
        public_key: PublicKeyLike,
        name: str,
        *,
        reason: str,
        who: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """Certify an operator key: records it signs within its scopes count as the root's.

        Investigators, retention jobs and key rotations can then sign what they append
        with their own key instead of the root (writer) key. The certificate is signed
        with the root key, so open the log with it (``open_log(..., signing_key=...)``).
        ``scopes`` limits where its signatures count (``"retention"``, ``"holds"``,
        ``"decryption"``, ...: see `comply_lab.integrity.authority.SCOPES`); all by default.

        Returns:
            The operator key's id.

        Raises:
            InvalidQueryError: the log was not opened with a signing key, a scope is
                unknown, or no name or reason is given.
        """
        return declare_operator(
            self.storage, public_key, name, reason=reason, who=who, scopes=scopes
        )

    def operators(self) -> pd.DataFrame:
        """Return the operator keys declared in the log: name, key_id, writer_id, scopes.

        Every declaration authentic under the key it names is listed; verification counts
        only those the pinned root key signed.
        """
        rows = [
            {
                "name": d.name,
                "key_id": key_id(d.operator),
                "writer_id": key_id(d.writer),
                "scopes": ",".join(d.scopes),
            }
            for d in declarations(self.storage.read_metadata(SIGNERS))
        ]
        return pd.DataFrame(rows, columns=["name", "key_id", "writer_id", "scopes"])

    def set_retention_floor(self, days: int, reason: str, *, who: str | None = None) -> None:
        """Record a minimum retention (0 removes it) that every plan must respect."""
        set_floor(self.storage, days, reason=reason, who=who)

    def retention_events(self) -> pd.DataFrame:
        """Return who deleted, held or released what, when, and under which policy."""
        return events_frame(self.storage)
