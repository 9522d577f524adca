"""The verification report: one row per problem, a summary, and a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from comply_lab.errors import IntegrityError

if TYPE_CHECKING:
    import pandas as pd

Status = Literal[
    "modified",
    "missing",
    "reordered",
    "inserted",
    "foreign",
    "bad_signature",
    "stale",
    "unverified",
    "unsealed",
    "incomplete",
    "expired_by_policy",
    "shredded",
    "deleted_on_request",
    "clock_step",
    "unwitnessed",
    "bad_timestamp",
    "unsigned",
    "pending",
    "violated_hold",
    "unregistered",
    "quarantined",
]
SEVERITY: dict[str, str] = {
    "unsealed": "warning",
    "incomplete": "warning",
    "quarantined": "warning",
    "expired_by_policy": "info",
    "shredded": "info",
    "deleted_on_request": "info",
    "clock_step": "info",
}
"""Severity of each status; every status not listed is an ``"error"``."""

COLUMNS = [
    "status",
    "severity",
    "partition",
    "segment",
    "entry_id",
    "writer_id",
    "seq",
    "explanation",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of verification.

    Attributes:
        status: What is wrong: ``modified``, ``missing``, ``reordered``, ``inserted``,
            ``foreign`` (a symbolic link inside the log: never followed),
            ``bad_signature``, ``stale`` (no signed record as recent as the log
            promises), ``unverified`` (signatures present but not checked: no public
            key), ``unsigned`` (nothing in the log is signed: consistent, not proven),
            ``pending`` (unsealed entries of a signed log that no heartbeat vouched for
            yet), ``violated_hold`` (recorded retention deleted a day a legal hold in
            force covered), ``unregistered`` (a signed log with no genesis record its
            root signed, or unsealed entries of a writer no signed registration names) —
            errors; ``quarantined`` (warning: sealing left out entries of unregistered
            writers, kept in ``_quarantine/``); ``unsealed`` (warning: not yet covered by a
            manifest),
            ``incomplete`` (warning: an interrupted operation that re-running finishes),
            ``expired_by_policy`` (info: deleted by recorded retention), ``shredded``
            (info: the content's key was destroyed by a recorded erasure),
            ``deleted_on_request`` (info: the entry was deleted by a recorded, signed
            ``delete(id)``) or
            ``clock_step`` (info: a writer's clock went back between two entries).
        partition: The day partition, if the finding belongs to one.
        segment: The segment or metadata file concerned.
        entry_id: The entry concerned, when known.
        writer_id: The writer whose chain is concerned, when known.
        seq: The position in that chain, when known.
        explanation: What was found, in words.
    """

    status: Status
    explanation: str
    partition: date | None = None
    segment: str | None = None
    entry_id: str | None = None
    writer_id: str | None = None
    seq: int | None = None

    @property
    def severity(self) -> str:
        """``"error"``, ``"warning"`` or ``"info"``."""
        return SEVERITY.get(self.status, "error")

    def line(self) -> str:
        """Return the problem as one line of text."""
        where = self.entry_id or (
            f"{self.writer_id}#{self.seq}" if self.writer_id is not None else None
        )
        place = " ".join(str(p) for p in (self.partition, self.segment, where) if p is not None)
        return f"{self.status.upper():<17} " + (f"{place}: " if place else "") + self.explanation


@dataclass
class VerificationReport:
    """What verification checked and found.

    Attributes:
        problems: Every finding, in the order found.
        entries: Entries checked.
        segments: Segments checked.
        manifest_records: Manifest records checked.
        signatures: ``"checked"``, ``"not checked (no public key)"``, ``"not checked
            (accepted by the caller)"`` or ``"none present"``.
        checkpoint: ``"matched"``, ``"failed"`` or ``"not given"``.
        scope: The time range verified.
        witnessed: Each valid witness cosignature of the checkpoint: the witness and the
            POSIX time it cosigned (the checkpoint existed by then).
        timestamped: The time a trusted timestamp proves the checkpoint existed at (ISO
            8601), if one was checked.
    """

    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    segments: int = 0
    manifest_records: int = 0
    signatures: str = "none present"
    checkpoint: str = "not given"
    scope: str = "whole log"
    witnessed: list[tuple[str, int]] = field(default_factory=list)
    timestamped: str | None = None

    @property
    def errors(self) -> list[Problem]:
        """The findings that make verification fail."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when nothing was found that makes verification fail."""
        return not self.errors

    @property
    def verdict(self) -> str:
        """``"OK"`` (proven), ``"FAILED"``, or the one thing that keeps it from proof.

        ``"UNVERIFIED"``: signed, but no key was given to check the signatures;
        ``"UNSIGNED"``: nothing in the log is signed, so it is only internally consistent;
        ``"PENDING"``: all verifies, but some unsealed entries are not signed yet, or the
        log (or a writer) is not registered yet (a log of an earlier version: adopt it).
        """
        errors = {p.status for p in self.errors}
        if not errors:
            return "OK"
        if errors <= {"pending", "unregistered"}:
            return "PENDING"
        alone = {"unverified": "UNVERIFIED", "unsigned": "UNSIGNED"}
        return alone.get(errors.pop(), "FAILED") if len(errors) == 1 else "FAILED"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per finding (empty, with the columns, when there are none)."""
        import pandas as pd  # the logging path, which checks trails, stays without pandas

        rows = [dict(asdict(p), severity=p.severity) for p in self.problems]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        return frame.astype({"seq": "Int64"})

    def summary(self) -> dict[str, Any]:
        """Return the figures of the run as a dict."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.status] = counts.get(problem.status, 0) + 1
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "scope": self.scope,
            "entries_checked": self.entries,
            "segments_checked": self.segments,
            "manifest_records": self.manifest_records,
            "signatures": self.signatures,
            "checkpoint": self.checkpoint,
            "witnessed": [{"witness": name, "time": t} for name, t in self.witnessed],
            "timestamped": self.timestamped,
            "errors": len(self.errors),
            "findings": counts,
        }

    def summary_line(self) -> str:
        """Return the verdict and figures as one line."""
        found = ", ".join(f"{n} {s}" for s, n in sorted(self.summary()["findings"].items()))
        seen = ""
        if self.witnessed:
            earliest = datetime.fromtimestamp(min(t for _, t in self.witnessed), UTC)
            seen = (
                f", cosigned by {len(self.witnessed)} witness(es), the first at "
                f"{earliest:%Y-%m-%d %H:%M:%S} UTC"
            )
        if self.timestamped:
            seen += f", existed by {self.timestamped} (trusted timestamp)"
        return (
            f"{self.verdict}: {self.entries:,} entries in {self.segments:,} segments, "
            f"{self.manifest_records:,} manifest records; signatures {self.signatures}; "
            f"checkpoint {self.checkpoint}{seen}" + (f"; findings: {found}" if found else "")
        )

    def raise_if_failed(self) -> None:
        """Raise `IntegrityError` if verification failed, for scripts.

        Raises:
            IntegrityError: with the summary and the first problems.
        """
        if not self.ok:
            head = "; ".join(p.line() for p in self.errors[:5])
            more = len(self.errors) - 5
            raise IntegrityError(
                f"{self.summary_line()}. First problems: {head}"
                + (f" (and {more} more)" if more > 0 else "")
            )

    def __str__(self) -> str:
        return "\n".join([*(p.line() for p in self.problems), self.summary_line()])

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        head = f'<p style="color:{colour};font-weight:bold">{self.summary_line()}</p>'
        if not self.problems:
            return head
        return head + self.to_frame().to_html(index=False, max_rows=50)
