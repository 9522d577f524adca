"""``open_log``: any store as one object an investigator works with."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from comply_lab._time import TimeLike, to_range, utc_now
from comply_lab.crypto.signing import (
    PrivateKeyLike,
    PublicKeyLike,
    load_private_key,
    load_public_key,
)
from comply_lab.errors import (
    CorruptSegmentError,
    InvalidQueryError,
    NoLogError,
    StorageError,
    UnknownValueWarning,
)
from comply_lab.integrity.checkpoint import Checkpoint, take_checkpoint
from comply_lab.integrity.report import VerificationReport
from comply_lab.integrity.tlog import InclusionProof, LogTree, prove
from comply_lab.integrity.verify import verify
from comply_lab.keys.encryption import EncryptionManager
from comply_lab.keys.keyring import ContentKeys
from comply_lab.lab.access import access_events, decrypt_entries
from comply_lab.lab.compare import Comparison
from comply_lab.lab.evidence import write_bundle
from comply_lab.lab.frame import entries_frame, partitions_frame, to_frame
from comply_lab.lab.governance import Governance
from comply_lab.lab.query import VALUE_FILTERS, Filters, Query, unknown_values
from comply_lab.lab.scanner import (
    OnCorrupt,
    check_on_corrupt,
    count_range,
    dataset,
    scan,
    warn_skipped,
)
from comply_lab.lab.stats import By, health
from comply_lab.lab.summary import STATS_COLUMNS, Stats, describe
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.location import BUNDLE_HINT, holds_log, local_path, logs_below, url_scheme
from comply_lab.storage.registry import open_storage
from comply_lab.storage.scan import find_entry
from comply_lab.storage.segments import Segment

if TYPE_CHECKING:
    import dask.dataframe as dd

    from comply_lab.lab.explore import Explorer


def open_log(
    target: Storage | str | os.PathLike[str],
    *,
    progress: bool | None = None,
    signing_key: PrivateKeyLike | None = None,
    on_corrupt: OnCorrupt = "raise",
    public_key: PublicKeyLike | None = None,
) -> Log:
    """Open a log: a directory, an ``s3://bucket/prefix`` URL, or a storage object.

    Args:
        target: Where the log is.
        progress: Progress bars on long scans: None (default) shows them on terminals and
            notebooks, False never.
        signing_key: Signs every record this log appends — access records of
            [`Log.decrypt`][comply_lab.lab.log.Log.decrypt], holds, retention, rotation — so a
            signed log stays verifiable (the writer's key, or an operator key the log declares).
            For a storage object, give the key to its constructor instead.
        on_corrupt: What reads do at a damaged segment: ``"raise"`` (default)
            CorruptSegmentError naming it; ``"skip"`` go on without it and warn once per read
            ([`CorruptSegmentWarning`][comply_lab.errors.CorruptSegmentWarning]) listing what
            was skipped. Verification never skips: it reports damage.
        public_key: The log's root public key (the writer's), pinned for what this process
            checks before acting: the legal holds before retention or a deletion, every
            trail before a checkpoint. Needed when ``signing_key`` is an operator key; by
            default the signing key is taken for the root.

    Raises:
        StorageError: a local path that is not a directory (nothing is created).
        NoLogError: a local folder that is neither empty nor a log (such as the folder
            above one); the message names the logs found below it.
        InvalidQueryError: ``signing_key`` with a storage object, or an unknown
            ``on_corrupt``.

    Example:
        >>> import tempfile
        >>> log = open_log(tempfile.mkdtemp())
        >>> len(log)
        0
    """
    if isinstance(target, str | os.PathLike) and url_scheme(target) is None:
        _check_folder(Path(local_path(target)))
    storage = open_storage(target, signing_key=signing_key)
    if public_key is not None and isinstance(storage, StorageBase):
        storage.root_key = load_public_key(public_key)
    return Log(storage, progress=progress, on_corrupt=on_corrupt)


def _bound_text(bound: datetime | None, open_end: str) -> str:
    return open_end if bound is None else f"{bound:%Y-%m-%d %H:%M} UTC"


def _check_folder(path: Path) -> None:
    """Refuse a local path that is not a log: a file, nothing, or a folder of other things."""
    if path.is_file():
        raise StorageError(
            f"{path} is a file, not a log: pass the directory that holds the log's "
            "audit_*.jsonl files or date=*/ folders"
        )
    if not path.is_dir():
        raise StorageError(f"no log at {path}: the directory does not exist; check the path")
    if holds_log(path) or not any(path.iterdir()):
        return
    if (path / "SHA256SUMS").is_file():
        raise NoLogError(f"{path} {BUNDLE_HINT}")
    below = logs_below(path)
    hint = (
        f"logs below it: {', '.join(below)}; open one of those"
        if below
        else "pass the directory that holds the log's audit_*.jsonl files or date=*/ folders"
    )
    raise NoLogError(f"{path} holds no log (no day files, partitions or log records); {hint}")


class Log(Governance):
    """An audit log opened for investigation, whatever its backend and format.

    Every read goes through one scanner that prunes by day partition, pushes filters and
    column choices down to Parquet, and reads JSONL segments too, so a log still being
    written (or written by the original tool) reads like a sealed one.

    Time bounds are included at both ends; naive times are UTC; strings are ISO 8601; a
    bare day as ``end`` means the end of that day (``entries("2026-01-29",
    "2026-01-29")`` is the whole day).
    """

    def __init__(
        self,
        storage: Storage,
        *,
        progress: bool | None = None,
        on_corrupt: OnCorrupt = "raise",
    ) -> None:
        self.storage = storage
        self.progress = progress
        self.on_corrupt = check_on_corrupt(on_corrupt)

    def _scan(self, query: Query, progress: bool | None = None) -> Iterator[pa.Table]:
        return scan(
            self.storage,
            query,
            progress=self.progress if progress is None else progress,
            on_corrupt=self.on_corrupt,
        )

    def __repr__(self) -> str:
        return f"Log({self.storage!r})"

    def batches(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        **filters: Unpack[Filters],
    ) -> Iterator[pa.RecordBatch]:
        """Stream matching entries as Arrow record batches, for data larger than memory.

        Takes the same arguments as [`entries`][comply_lab.lab.log.Log.entries] (without
        ``metadata_keys``).
        """
        query = Query.build(start, end, **filters)
        for table in self._scan(query):
            yield from table.to_batches()

    def arrow(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        **filters: Unpack[Filters],
    ) -> pa.Table:
        """Return matching entries as one Arrow table (arguments as `entries`)."""
        query = Query.build(start, end, **filters)
        tables = list(self._scan(query))
        return pa.concat_tables(tables) if tables else query.schema.empty_table()

    def entries(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        metadata_keys: Iterable[str] | None = None,
        **filters: Unpack[Filters],
    ) -> pd.DataFrame:
        """Return matching entries as a DataFrame, in time order.

        Args:
            start: First instant included (None: from the beginning).
            end: Last instant included (None: to the end; a bare day: its end).
            metadata_keys: Metadata keys to add as columns.
            **filters: ``provider``, ``model``, ``conversation_id``: keep these (a str or
                a list); ``safety_passed``: keep only passed (True) or failed (False)
                entries; ``detector``: keep entries where this detector (or one of
                these) fired;
                ``columns``: the columns to return (all by default; unread columns are
                not decoded).

        Returns:
            One row per entry; see `comply_lab.lab.frame` for the dtypes.

        Raises:
            InvalidQueryError: a bound, filter or column is unusable, or a keyword is not a
                filter (the message names the closest one).

        Warns:
            UnknownValueWarning: nothing matched, and the range holds none of the log's
                days (the warning names the days it holds), or a provider, model or
                detector asked for is in no entry of the range (it lists those that are).

        Example:
            >>> log.entries("2026-01-29", "2026-01-29", model="gpt-4o", safety_passed=False,
            ...             columns=["timestamp", "model", "block_reason"])  # doctest: +SKIP
        """
        keys = list(metadata_keys or ())
        query = Query.build(start, end, **filters)
        read = query.reading_metadata(keys)
        frame = entries_frame(list(self._scan(read)), query, keys)
        if frame.empty:
            self._warn_unknown_values(query)
        return frame

    def _warn_unknown_values(self, query: Query) -> None:
        """Warn when nothing matched because the range or a value asked for is not in the log."""
        if query.start is not None or query.end is not None:
            days = self.storage.days()
            first = query.start.date() if query.start is not None else date.min
            last = query.end.date() if query.end is not None else date.max
            if days and not any(first <= day <= last for day in days):
                warnings.warn(
                    f"no entry from {_bound_text(query.start, 'the beginning')} to "
                    f"{_bound_text(query.end, 'the end')}: "
                    f"the log holds days {days[0]} to {days[-1]}",
                    UnknownValueWarning,
                    stacklevel=3,
                )
                return
        if not any(getattr(query, name) for name in VALUE_FILTERS):
            return
        seen = self.arrow(query.start, query.end, columns=list(VALUE_FILTERS.values()))
        for note in unknown_values(query, seen):
            warnings.warn(note, UnknownValueWarning, stacklevel=3)

    def to_dask(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        metadata_keys: Iterable[str] | None = None,
        **filters: Unpack[Filters],
    ) -> dd.DataFrame:
        """Return matching entries as a Dask DataFrame, one partition per day.

        Takes the arguments of [`entries`][comply_lab.lab.log.Log.entries] and gives the same
        rows with the same dtypes, computed where Dask runs its tasks (see
        `comply_lab.lab.dask_frame`); the statistics functions of `comply_lab.lab.stats` accept
        the result.

        Raises:
            InvalidQueryError: a bound, filter or column is unusable, or Dask is missing.

        Example:
            >>> frame = log.to_dask("2026-01-01", "2026-12-31")  # doctest: +SKIP
            >>> latency_stats(frame, by="model")  # doctest: +SKIP
        """
        from comply_lab.lab.dask_frame import to_dask

        return to_dask(
            self.storage, Query.build(start, end, **filters), metadata_keys, self.on_corrupt
        )

    def entry(self, entry_id: str) -> AuditEntry | None:
        """Return one entry by id, or None.

        A UUIDv7 id reads only its own day; another id (a log migrated from the original
        tool) is found through the id index that sealing and compaction keep.
        """
        skipped: list[Segment] | None = [] if self.on_corrupt == "skip" else None
        found = find_entry(self.storage, entry_id, skipped)
        warn_skipped(self.storage, skipped)
        return found

    def count(self, start: TimeLike | None = None, end: TimeLike | None = None) -> int:
        """Return how many entries fall in ``[start, end]``.

        Whole days are counted from the manifest (or Parquet footers) without reading rows;
        only partly covered days are scanned, and then only their timestamps.
        """
        query = Query.build(start, end, columns=["timestamp"])
        return count_range(self.storage, query, on_corrupt=self.on_corrupt)

    def __len__(self) -> int:
        return self.count()

    def partitions(self) -> pd.DataFrame:
        """Return one row per day partition: date, segments, entries, bytes, format, sealed."""
        return partitions_frame(self.storage)

    def stats(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        **filters: Unpack[Filters],
    ) -> Stats:
        """Return statistics and evidence plots of the matching entries.

        Takes the filters of [`entries`][comply_lab.lab.log.Log.entries]; reads only the columns
        statistics need.

        Example:
            >>> log.stats("2026-01-01", "2026-01-31").safety(by="model")  # doctest: +SKIP
        """
        filters.setdefault("columns", STATS_COLUMNS)
        span = to_range(start, end)
        return Stats(self.entries(start, end, **filters), describe(self.storage, span), span)

    def compare(
        self,
        before: tuple[TimeLike | None, TimeLike | None],
        after: tuple[TimeLike | None, TimeLike | None],
        by: By = None,
        **filters: Unpack[Filters],
    ) -> Comparison:
        """Compare two periods: did the failure rate or latency change? See `.compare`."""
        return self.stats(*before, **filters).compare(self.stats(*after, **filters), by)

    def health(self, now: datetime | None = None) -> pd.DataFrame:
        """Return the tutorial's health metrics: total entries, last hour's volume and failures."""
        moment = now or utc_now()
        recent = self.entries(
            moment - timedelta(hours=1), moment, columns=["timestamp", "safety_passed"]
        )
        metrics = health(recent, moment)
        metrics["total_entries"] = self.count()
        return metrics

    def verify(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        public_key: PublicKeyLike | None = None,
        checkpoint: Checkpoint | dict[str, Any] | str | None = None,
        deep: bool = False,
        require_signatures: bool = True,
        as_of: TimeLike | None = None,
        executor: Executor | None = None,
        witness_keys: Iterable[str] = (),
        witnesses: int = 1,
        timestamp: bytes | str | os.PathLike[str] | None = None,
        tsa_certs: str | os.PathLike[str] | None = None,
        origin: str | None = None,
        allow_unsigned: bool = False,
    ) -> VerificationReport:
        """Prove the log was not altered, cut, reordered or forged.

        See `comply_lab.integrity.verify` for what is checked.

        Args:
            start: First day to verify (None: from the beginning).
            end: Last day to verify (None: to the end).
            public_key: The writer's Ed25519 public key (the log's root); every record must
                carry its signature or that of an operator key it certified. Default: the
                root ``open_log(..., public_key=...)`` pinned. A signed log verified without
                any is ``UNVERIFIED``.
            checkpoint: A checkpoint saved earlier
                ([`checkpoint`][comply_lab.lab.log.Log.checkpoint]), which also detects
                truncation of the newest data and of every trail.
            deep: Recompute every entry hash even in segments whose digest matches.
            require_signatures: False accepts a signed log without checking signatures.
            as_of: Judge freshness at this time (default now): for a copy of a log.
            executor: Check days in parallel, one task per day (a
                ``ProcessPoolExecutor``, or Dask's ``client.get_executor()``); the report
                is the same.
            witness_keys: Witness verifier keys (or files holding them) whose
                cosignatures of ``checkpoint`` count (see
                `comply_lab.integrity.witness`).
            witnesses: How many of them must have cosigned it.
            timestamp: An RFC 3161 timestamp of ``checkpoint`` (bytes or a file), checked
                against the authority's root certificates in ``tsa_certs`` (PEM file).
            tsa_certs: See ``timestamp``.
            origin: The origin ``checkpoint`` must name (default: the verifier key's, or
                the key's default ``comply-lab/<fingerprint>``).
            allow_unsigned: Accept a log that carries no signature at all as ``OK``
                (without a key); by default it is ``UNSIGNED``, which is no proof.

        Returns:
            The report: ``report.ok``, ``report.verdict``, ``report.to_frame()`` (one row
            per problem), ``report.summary()``, and ``report.raise_if_failed()``.

        Raises:
            NoLogError: there is no log here at all.
        """
        pinned = self.storage.root_key if isinstance(self.storage, StorageBase) else None
        return verify(
            self.storage,
            start,
            end,
            public_key=public_key if public_key is not None else pinned,
            checkpoint=checkpoint,
            deep=deep,
            require_signatures=require_signatures,
            as_of=as_of,
            progress=self.progress,
            executor=executor,
            witness_keys=list(witness_keys),
            witnesses=witnesses,
            timestamp=timestamp,
            tsa_certs=tsa_certs,
            origin=origin,
            allow_unsigned=allow_unsigned,
        )

    def decrypt(
        self,
        selection: pd.DataFrame | Iterable[str] | str,
        encryption: EncryptionManager | ContentKeys | None,
        *,
        reason: str,
        who: str | None = None,
        hash_key: bytes | None = None,
    ) -> pd.DataFrame:
        """Decrypt the content of exactly the selected entries, recording the access.

        See `comply_lab.lab.access.decrypt_entries`; rows
        whose key is missing or
        wrong, or whose decrypted text does not match the entry's fingerprints, come back
        marked (``decrypted`` False), never failing the whole call.
        """
        return decrypt_entries(
            self, selection, encryption, reason=reason, who=who, hash_key=hash_key
        )

    def explore(
        self,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        page_size: int = 20,
        public_key: PublicKeyLike | None = None,
        checkpoint: Checkpoint | dict[str, Any] | str | None = None,
        charts: bool | None = None,
    ) -> Explorer:
        """Return an interactive explorer for Jupyter (see `comply_lab.lab.explore`)."""
        from comply_lab.lab.explore import Explorer

        return Explorer(
            self,
            start,
            end,
            page_size=page_size,
            public_key=public_key,
            checkpoint=checkpoint,
            charts=charts,
        )

    def access_events(self) -> pd.DataFrame:
        """Return every recorded decryption: when, who, why, which entries, which key."""
        return access_events(self)

    def checkpoint(
        self, signing_key: PrivateKeyLike | None = None, *, origin: str | None = None
    ) -> Checkpoint:
        """Return a checkpoint (a C2SP signed note) of the sealed log and every trail.

        It covers sealed segments only; seal first (``storage.seal()``) to include the
        newest entries. Verifying later with ``verify(checkpoint=...)`` fails if sealed
        history, or any trail (holds, retention, access, ...), was cut or rewritten since.
        ``origin`` names the log (default ``comply-lab/<key fingerprint>``).

        Raises:
            NothingSealedError: nothing is sealed yet, so it would cover nothing.
            IntegrityError: a trail does not verify: a checkpoint would vouch for it.
        """
        key = None if signing_key is None else load_private_key(signing_key)
        return take_checkpoint(self.storage, key, origin)

    def prove(
        self, entry_ids: Iterable[str], checkpoint: Checkpoint | str | None = None
    ) -> list[InclusionProof]:
        """Return proofs that entries are in the log, checkable with the checkpoint alone.

        Each [`InclusionProof`][comply_lab.integrity.tlog.InclusionProof] leads from the entry's
        hash to the root of ``checkpoint`` (default: an unsigned one taken now), e.g.
        ``proof.verify(checkpoint.tree_root)``.

        Raises:
            InvalidQueryError: an id is not among the entries the checkpoint covers.
        """
        saved = self.checkpoint() if checkpoint is None else Checkpoint.load(checkpoint)
        return prove(LogTree.of(self.storage), entry_ids, saved)

    def evidence_bundle(
        self,
        out_dir: str | os.PathLike[str],
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        public_key: PublicKeyLike | None = None,
        checkpoint: Checkpoint | dict[str, Any] | str | None = None,
        title: str = "AI audit evidence",
        signing_key: PrivateKeyLike | None = None,
    ) -> Path:
        """Write a self-contained evidence folder for an auditor.

        It holds an HTML report (verification, statistics, plots), the selected entries as
        Parquet and JSON lines with an inclusion proof of each into a checkpoint, the
        verification findings, the trail records, and ``SHA256SUMS`` signed with
        ``signing_key``; anyone with the writer's public key can check it without
        comply_lab. See `comply_lab.lab.evidence`.

        Raises:
            InvalidQueryError: ``out_dir`` exists and is not empty.
        """
        return write_bundle(
            self,
            out_dir,
            start,
            end,
            public_key=public_key,
            checkpoint=checkpoint,
            title=title,
            signing_key=signing_key,
        )

    def dataset(self, start: TimeLike | None = None, end: TimeLike | None = None) -> ds.Dataset:
        """Return a pyarrow dataset over the segments of the days in range.

        Parquet segments are scanned lazily (with filter and projection pushdown, e.g. by
        DuckDB or Polars); JSONL segments are decoded into memory.
        """
        return dataset(self.storage, Query.build(start, end))

    def sql(
        self, query: str, *, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """Run DuckDB SQL over the log, visible as the table ``entries``.

        Only the days in ``[start, end]`` are part of ``entries`` (partition pruning);
        DuckDB pushes its own filters and column choices into the Parquet scan.

        Raises:
            InvalidQueryError: DuckDB cannot run the query (its syntax, a column or table
                that is not there); the message is DuckDB's.
            CorruptSegmentError: a file of the log could not be read for it (DuckDB's
                message names it): verify the log.

        Example:
            >>> log.sql("select model, avg(latency_ms) from entries group by 1")  # doctest: +SKIP
        """
        connection = duckdb.connect()
        try:
            connection.register("entries", self.dataset(start, end))
            return to_frame(connection.sql(query).to_arrow_table())
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as err:
            raise InvalidQueryError(f"DuckDB cannot run the query: {err}") from None
        except duckdb.Error as err:
            raise CorruptSegmentError(
                f"a file of {self.storage} could not be read for the query ({err}); verify "
                "the log (comply-lab verify) to see which, and what happened to it"
            ) from None
        finally:
            connection.close()
