"""Compaction: converting what a log holds into the sealed Parquet layout, whatever its backend.

A local directory seals its JSONL segments (the original tool's day files included); an S3 log
moves the original tool's per-entry objects. The store does the work (the
[`Compactable`][comply_lab.storage.capabilities.Compactable] capability); this module finds the
store for a path or URL and holds the log's maintenance lock while it runs.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab.crypto.signing import PublicKeyLike, load_public_key
from comply_lab.errors import ConfigurationError, StorageError
from comply_lab.storage.base import Storage
from comply_lab.storage.capabilities import Compactable, Sealing, maintenance
from comply_lab.storage.location import local_path, url_scheme
from comply_lab.storage.manifest import MANIFEST
from comply_lab.storage.registry import open_storage
from comply_lab.storage.signers import Keyed, check_may_sign

if TYPE_CHECKING:
    from comply_lab.storage.seal import SealReport


def compact(
    path: Storage | str | os.PathLike[str],
    signing_key: Ed25519PrivateKey | None = None,
    *,
    executor: Executor | None = None,
    public_key: PublicKeyLike | None = None,
) -> SealReport:
    """Convert the JSONL segments of a log into the Parquet layout.

    ``path`` is a log directory, an ``s3://`` URL (the original tool's per-entry objects
    are moved) or a storage object (give it its signing key when you make it).

    Works on logs written by comply_lab in either format and on the original tool's
    ``audit_YYYYMMDD*.jsonl`` files (naive timestamps are read as UTC). Each segment is removed
    only after its Parquet parts were read back and matched entry by entry; damaged lines are
    kept in ``_quarantine/``; segments in use by a writer are skipped. Entries deleted on
    request are left out of what is sealed, and every sealed part still holding some is
    rewritten once without them (see `prune_deleted`), and the id index runs that sealing wrote
    are merged into one (see [`comply_lab.storage.idindex`][comply_lab.storage.idindex]). With
    ``executor``, days are sealed in parallel (see
    [`FileStorage.seal`][comply_lab.storage.file.FileStorage.seal]).

    Sealing signs manifest records, so an operator's ``signing_key`` needs the ``seal``
    scope, checked under ``public_key`` (the log's root key), before anything is done.

    Raises:
        StorageError: ``path`` is not a directory.
        ConfigurationError: ``path`` is a URL no backend serves, or a store with nothing
            to compact, or ``executor`` was given for an S3 log (its sealing runs where
            it was written).
        IntegrityError: a Parquet part does not match its source (the source is kept).
        ConcurrentOperationError: another compaction, key rotation or retention is running.
        SigningKeyRequiredError: ``signing_key`` may not sign manifest records.
    """
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        if url_scheme(text) is None and not Path(local_path(text)).is_dir():
            raise StorageError(
                f"{text} is not a log directory; pass the directory holding audit_*.jsonl"
            )
    storage = open_storage(path, signing_key=signing_key)
    if public_key is not None and isinstance(storage, Keyed):
        storage.root_key = load_public_key(public_key)
    check_may_sign(storage, MANIFEST)
    if not isinstance(storage, Compactable):
        raise ConfigurationError(f"{storage!r} keeps nothing that compaction converts")
    from comply_lab.storage.generations import prune_deleted  # not on the logging path
    from comply_lab.storage.idindex import merge_runs

    with maintenance(storage, "compaction"):
        report = storage.compact(executor)
        if isinstance(storage, Sealing):
            sink = storage.sink()
            report.pruned = prune_deleted(storage, sink)
            merge_runs(storage, sink)
        return report
