"""Real logs on every backend, and the file-level edits an attacker makes to them.

A :class:`Case` is a signed log written by two writers over three days — local JSONL,
local Parquet, S3 JSONL objects or S3 Parquet objects on the local S3 server — with a
:class:`Files` view of its raw bytes (files in a directory, or objects under a prefix) to
edit them the way someone with access to the storage, but without any key, would.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab import AuditLogger, open_log
from comply_lab.audit import FileStorage, Storage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.integrity.report import VerificationReport
from tests.conftest import FakeClock, new_bucket

T0 = datetime(2026, 1, 29, 9, 0, tzinfo=UTC)
KEY = generate_signing_key()
BACKENDS = ("jsonl", "parquet", "s3-jsonl", "s3-parquet")


class Files:
    """The raw bytes of a log: its files, or its objects."""

    def names(self) -> list[str]:
        """Return every stored name, relative to the log's root, sorted."""
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        raise NotImplementedError

    def write(self, name: str, data: bytes) -> None:
        """Replace (or create) ``name``."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        raise NotImplementedError

    def matching(self, predicate: Callable[[str], bool]) -> list[str]:
        """Return the names for which ``predicate`` holds."""
        return [n for n in self.names() if predicate(n)]

    def trail(self, name: str) -> list[str]:
        """Return the names holding trail ``name`` (``_holds``): a file, or one per record."""
        return self.matching(lambda n: n == f"{name}.jsonl" or n.startswith(f"{name}/"))

    def trail_lines(self, name: str) -> list[bytes]:
        """Return the records of trail ``name``, one line each, in order."""
        return [line for n in self.trail(name) for line in self.read(n).splitlines() if line]

    def set_trail_lines(self, name: str, lines: list[bytes]) -> None:
        """Rewrite trail ``name`` to hold exactly ``lines``, as its store lays it out."""
        raise NotImplementedError


class LocalFiles(Files):
    """The files of a log directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)

    def delete(self, name: str) -> None:
        (self.root / name).unlink()

    def set_trail_lines(self, name: str, lines: list[bytes]) -> None:
        self.write(f"{name}.jsonl", b"".join(line + b"\n" for line in lines))


class S3Files(Files):
    """The objects of a log prefix on the local S3 server."""

    def __init__(self, endpoint: str, bucket: str, prefix: str) -> None:
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.bucket, self.prefix = bucket, prefix

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(key[len(self.prefix) :] for key in keys)

    def read(self, name: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
        return bytes(body.read())

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def set_trail_lines(self, name: str, lines: list[bytes]) -> None:
        for old in self.trail(name):
            self.delete(old)
        for position, line in enumerate(lines, 1):
            self.write(f"{name}/{position:012d}.json", line)


@dataclass
class Case:
    """A signed log on one backend, and what is needed to open, edit and verify it."""

    backend: str
    target: str
    files: Files
    keys: Path
    make: Callable[..., Storage]
    ids: list[str] = field(default_factory=list)

    @property
    def local(self) -> bool:
        """Whether the log is a local directory."""
        return not self.backend.startswith("s3-")

    @property
    def public_key(self) -> Path:
        """The writer's public key file."""
        return self.keys / "writer.pub"

    @property
    def signing_key(self) -> Path:
        """The writer's private key file."""
        return self.keys / "writer.pem"

    def storage(self, **options: Any) -> Storage:
        """Open the log's store again (signed with the writer's key)."""
        return self.make(**options)

    def verify(self, **options: Any) -> VerificationReport:
        """Verify with the writer's public key (unless told otherwise)."""
        options.setdefault("public_key", self.public_key)
        return open_log(self.target, progress=False).verify(**options)

    def cli(self, *args: str) -> int:
        """Run ``comply-lab ARGS`` in this process; return the exit code."""
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code

    def cli_verify(self, *args: str) -> int:
        """Run ``comply-lab verify TARGET --public-key K ARGS``; return the exit code."""
        return self.cli("verify", self.target, "--public-key", str(self.public_key), *args)

    def data(self) -> list[str]:
        """Return the names holding entries: JSONL segments, sealed parts or objects."""

        def holds_entries(name: str) -> bool:
            base = name.rsplit("/", 1)[-1]
            jsonl = base.startswith(("audit_", "part-")) and base.endswith(".jsonl")
            return not name.startswith("_") and (base.endswith(".parquet") or jsonl)

        return self.files.matching(holds_entries)


def build(
    backend: str,
    root: Path,
    endpoint: str | None = None,
    *,
    days: int = 3,
    per_day: int = 20,
    key: Ed25519PrivateKey | None = KEY,
    **options: Any,
) -> Case:
    """Write a log on ``backend``: two writers interleaving over ``days`` days.

    It is signed with ``key`` (None: unsigned); ``case.keys`` always holds the writer's
    key pair (`KEY`), the root a verifier pins.
    """
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "writer.pub").write_bytes(public_key_pem(KEY))
    (keys / "writer.pem").write_bytes(private_key_pem(KEY))
    if backend in ("jsonl", "parquet"):
        path = root / "log"
        settings: dict[str, Any] = {"format": backend, "fsync": "never", "signing_key": key}
        if backend == "jsonl":
            settings["heartbeat_s"] = None  # beats at close: vouches for the unsealed bytes
        settings |= options

        def make(**extra: Any) -> Storage:
            return FileStorage(path, **(settings | extra))

        case = Case(backend, str(path), LocalFiles(path), keys, make)
    else:
        from comply_lab.storage.s3 import S3Storage

        assert endpoint is not None
        bucket = new_bucket(endpoint)
        spool = Path(tempfile.mkdtemp(prefix="comply-lab-spool-", dir=root))
        s3_settings: dict[str, Any] = {
            "format": backend.removeprefix("s3-"),
            "endpoint_url": endpoint,
            "spool_dir": spool,
            "fsync": "never",
            "signing_key": key,
        } | options

        def make(**extra: Any) -> Storage:
            return S3Storage(bucket, "audit/", **(s3_settings | extra))

        case = Case(
            backend, f"s3://{bucket}/audit/", S3Files(endpoint, bucket, "audit/"), keys, make
        )
    case.ids = write(case.storage(), days=days, per_day=per_day)
    return case


def write(
    storage: Storage, *, days: int = 3, per_day: int = 20, start: datetime = T0, **logger: Any
) -> list[str]:
    """Log ``per_day`` entries a day from two writers, then close the store."""
    clock = FakeClock(start)
    writers = [AuditLogger(storage, clock=clock, **logger) for _ in range(2)]
    ids = []
    for day in range(days):
        clock.now = start + timedelta(days=day)
        for i in range(per_day):
            clock.advance(minutes=7)
            ids.append(
                writers[i % 2].log_sync(
                    input=f"prompt {day}-{i}",
                    output=f"answer {i}",
                    provider="openai",
                    model="gpt-4o",
                    safety_passed=i % 6 != 0,
                    latency_ms=10.0 + i,
                    metadata={"user": f"u{i % 4}"},
                )
            )
    storage.close()
    return ids


def errors(report: VerificationReport) -> set[str]:
    """Return the statuses of a report's errors."""
    return {p.status for p in report.errors}


def edit_line(files: Files, name: str, index: int, change: Callable[[bytes], bytes]) -> bytes:
    """Replace line ``index`` of ``name`` by ``change(line)``; return the original line."""
    lines = files.read(name).split(b"\n")
    original = lines[index]
    lines[index] = change(original)
    files.write(name, b"\n".join(lines))
    return original


@dataclass(frozen=True)
class Edit:
    """One single change an attacker makes to a log's bytes.

    Attributes:
        kind: What is done: ``flip byte``, ``delete line``, ``duplicate line``, ``swap
            lines``, ``truncate``, ``delete`` or ``copy``.
        detail: Where or how (the byte, the line, the new name).
        name: The file or object changed.
        apply: Makes the change.
    """

    kind: str
    detail: str
    name: str
    apply: Callable[[Files], None]

    def __str__(self) -> str:
        return f"{self.kind} {self.detail} {self.name}"


def edits(files: Files, names: list[str], rng: Any) -> Iterator[Edit]:
    """Yield random single edits, one of each kind, on random names among ``names``."""

    def pick() -> str:
        return str(rng.choice(names))

    def flip(name: str) -> Edit:
        data = files.read(name)
        at = rng.randrange(len(data))
        mask = rng.randrange(1, 256)

        def apply(f: Files) -> None:
            changed = bytearray(data)
            changed[at] ^= mask
            f.write(name, bytes(changed))

        return Edit("flip byte", f"{at}", name, apply)

    def line_edit(name: str, kind: str) -> Edit | None:
        lines = files.read(name).split(b"\n")
        full = [i for i, line in enumerate(lines) if line]
        if not full or name.endswith(".parquet"):
            return None
        at = rng.choice(full)

        def apply(f: Files) -> None:
            changed = list(lines)
            if kind == "delete line":
                del changed[at]
            elif kind == "duplicate line":
                changed.insert(at, changed[at])
            else:
                other = rng.choice(full)
                changed[at], changed[other] = changed[other], changed[at]
                if other == at:
                    del changed[at]
            f.write(name, b"\n".join(changed))

        return Edit(kind, f"{at}", name, apply)

    def truncate(name: str) -> Edit:
        data = files.read(name)
        keep = rng.randrange(len(data))
        return Edit("truncate", f"to {keep}", name, lambda f: f.write(name, data[:keep]))

    def delete(name: str) -> Edit:
        return Edit("delete", "", name, lambda f: f.delete(name))

    def copy(name: str) -> Edit:
        data = files.read(name)
        folder, slash, base = name.rpartition("/")
        if base.startswith("audit_"):  # a JSONL segment: copied as another segment of its day
            target = f"{folder}{slash}{base[:14]}_9{rng.randrange(100):02d}.jsonl"
        else:
            target = f"{folder}{slash}copy-{base}"
        return Edit("copy", f"to {target}", name, lambda f: f.write(target, data))

    yield flip(pick())
    for kind in ("delete line", "duplicate line", "swap lines"):
        made = line_edit(pick(), kind)
        if made is not None:
            yield made
    yield truncate(pick())
    yield delete(pick())
    yield copy(pick())


OPERATIONS = (
    "log",
    "seal",
    "reopen",
    "hold",
    "release",
    "retention",
    "decrypt",
    "rotate",
    "shred",
    "delete",
    "compact",
)
USERS = ("alice", "bob", "carol")


class History:
    """A log taken through a random sequence of honest operations, all signed.

    Entries are logged with content under per-subject keys (half of the writers) or a key
    ring (the other half), so key rotation has work to do and subjects can be shredded.
    """

    def __init__(
        self, case: Case, rng: Any, root: Path, key: Ed25519PrivateKey | None = KEY
    ) -> None:
        from comply_lab import KeyRing, SubjectKeys

        self.case, self.rng, self.key = case, rng, key
        self.clock = FakeClock(T0)
        self.ring = KeyRing.generate("ring")
        self.subjects = SubjectKeys(root / "subject-keys", self.ring)
        self.storage = case.storage()
        self.logger = self._logger()
        self.ids: list[str] = []
        self.holds: list[str] = []
        self.done: list[str] = []

    def _logger(self) -> AuditLogger:
        keys = self.subjects if self.rng.random() < 0.5 else self.ring
        return AuditLogger(self.storage, keys, store_content=True, clock=self.clock)

    def _log(self) -> Any:
        return open_log(self.case.target, progress=False, signing_key=self.key)

    def run(self, operations: list[str]) -> None:
        """Apply ``operations`` in order (names from :data:`OPERATIONS`)."""
        for name in operations:
            getattr(self, f"op_{name}")()
            self.done.append(name)

    def finish(self) -> Any:
        """Close the writer and return a signed checkpoint of the resulting log."""
        self.close()
        return self._log().checkpoint(KEY)

    def close(self) -> None:
        """Close the writer, and seal something if nothing was sealed yet."""
        self.storage.close()
        if not self._log().storage.read_metadata("_manifest.jsonl"):
            compact_or_flush(self.case, self.key)

    def op_log(self) -> None:
        for _ in range(self.rng.randrange(3, 12)):
            self.clock.advance(minutes=self.rng.randrange(20, 600))
            self.ids.append(
                self.logger.log_sync(
                    input=f"prompt {len(self.ids)}",
                    output=f"answer {len(self.ids)}",
                    model=self.rng.choice(["gpt-4o", "claude-3-5-sonnet"]),
                    safety_passed=self.rng.random() > 0.1,
                    metadata={"user_id": self.rng.choice(USERS)},
                )
            )

    def op_seal(self) -> None:
        if hasattr(self.storage, "flush"):
            self.storage.flush()
        elif getattr(self.storage, "format", None) == "parquet":
            self.storage.seal()  # type: ignore[attr-defined]
        else:
            compact_or_flush(self.case, self.key)

    def op_reopen(self) -> None:
        self.storage.close()
        self.storage = self.case.storage()
        self.logger = self._logger()

    def op_hold(self) -> None:
        name = f"matter-{len(self.done)}"
        day = (self.clock.now - timedelta(days=self.rng.randrange(0, 3))).date()
        self._log().hold(name, start=day, end=day, reason="litigation")
        self.holds.append(name)

    def op_release(self) -> None:
        if self.holds:
            self._log().release(self.holds.pop(0), "case closed")

    def op_retention(self) -> None:
        log = self._log()
        log.apply_retention(log.retention_plan(2, now=self.clock.now), reason="policy")

    def op_decrypt(self) -> None:
        if self.ids:
            chosen = self.rng.sample(self.ids, min(3, len(self.ids)))
            self._log().decrypt(chosen, self.subjects, reason="case")

    def op_rotate(self) -> None:
        from comply_lab import rotate_keys

        self.op_seal()
        rotate_keys(self._log(), self.subjects, signing_key=self.key)

    def op_shred(self) -> None:
        from comply_lab import shred_subject

        shred_subject(self._log(), self.rng.choice(USERS), self.subjects, reason="erasure")

    def op_delete(self) -> None:
        from comply_lab.errors import EntryHeldError

        if self.ids:
            with contextlib.suppress(EntryHeldError):  # a hold covers it: refusal is honest
                self._log().delete(self.rng.choice(self.ids), reason="erasure request")

    def op_compact(self) -> None:
        from comply_lab.storage.compaction import compact

        compact(self.case.target, self.key)  # seals what no writer holds, prunes deleted ones


def compact_or_flush(case: Case, key: Ed25519PrivateKey | None = KEY) -> None:
    """Seal everything no writer holds: compact a local log, flush an S3 one."""
    if case.local:
        from comply_lab.storage.compaction import compact

        compact(case.target, key)
    else:
        store = case.storage()
        store.flush()  # type: ignore[attr-defined]


def snapshot(files: Files) -> dict[str, bytes]:
    """Return every stored name and its bytes."""
    return {name: files.read(name) for name in files.names()}


def restore(files: Files, saved: dict[str, bytes]) -> None:
    """Put the log's bytes back exactly as ``saved``."""
    for name in files.names():
        if name not in saved:
            files.delete(name)
    for name, data in saved.items():
        files.write(name, data)


def editable(files: Files) -> list[str]:
    """Return the names an attacker edits: segments and trails (not markers or the lock).

    The maintenance lock is an empty file whose only meaning is who holds it; it is not
    part of the log's content.
    """
    return [
        name
        for name in files.names()
        if not name.startswith(("_sealed/", "_quarantine/", "_staging/", "_spool_id"))
        and name != "_maintenance.lock"
    ]


@dataclass
class Trial:
    """One honest history and the single edits tried on its result."""

    done: list[str]
    honest: VerificationReport
    edits: list[tuple[Edit, VerificationReport]] = field(default_factory=list)


def run_trial(backend: str, operations: list[str], seed: int, endpoint: str | None) -> Trial:
    """Run ``operations`` on a fresh log, verify it, then verify after each single edit.

    Verification uses the writer's public key and a checkpoint taken once the history is
    over; each edit is undone before the next.
    """
    import shutil

    root = Path(tempfile.mkdtemp(prefix="comply-lab-tamper-"))
    try:
        case = build(backend, root, endpoint, days=0)
        rng = random.Random(seed)
        history = History(case, rng, root)
        history.run(["log", *operations, "log"])
        checkpoint = history.finish()

        def verify() -> VerificationReport:
            log = open_log(case.target, progress=False)
            return log.verify(public_key=KEY, checkpoint=checkpoint)

        trial = Trial(history.done, verify())
        saved = snapshot(case.files)
        for edit in edits(case.files, editable(case.files), rng):
            edit.apply(case.files)
            try:
                trial.edits.append((edit, verify()))
            finally:
                restore(case.files, saved)
        return trial
    finally:
        shutil.rmtree(root, ignore_errors=True)
