"""Evidence bundles: one self-contained folder an auditor can read and check.

Layout::

    out/report.html            the report: scope, verification, statistics, plots
    out/entries.parquet        the selected entries (hashes, never decrypted content)
    out/entries.jsonl          the same entries as canonical JSON lines (content left out)
    out/proofs.jsonl           an inclusion proof of each entry into the checkpoint
    out/checkpoint.txt         the checkpoint (signed note, with any cosignatures)
    out/checkpoint.txt.tsr     its RFC 3161 timestamp, when one was given
    out/writer.pub             the writer's public key; writer.key.txt its fingerprint
    out/verification.json      the verification summary and every finding
    out/statistics/*.csv       each statistics table
    out/plots/*.png            each evidence plot
    out/records/               the manifest, retention, hold and deletion records, as stored
    out/verify_bundle.py       a checker that needs only Python and ``cryptography``
    out/MANIFEST.json          what the bundle covers, and each file's SHA-256 and size
    out/SHA256SUMS             SHA-256 of every file (``sha256sum -c SHA256SUMS``)
    out/SHA256SUMS.sig         the writer's Ed25519 signature of SHA256SUMS

With a signing key the bundle is checkable by anyone holding the writer's public key:
``comply-lab verify-bundle``, or ``verify_bundle.py``, or ``sha256sum`` and ``openssl``
(see ``SPEC.md``). The entries extracted are those the checkpoint covers (sealed when it
was made); how many in range were left out is said in ``MANIFEST.json`` and the report.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab._time import TimeLike, utc_now
from comply_lab.crypto.signing import (
    PrivateKeyLike,
    PublicKeyLike,
    key_id,
    load_private_key,
    load_public_key,
)
from comply_lab.errors import InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.tlog import LogTree
from comply_lab.lab import plots
from comply_lab.lab.bundle import covered, seal_bundle, write_proofs
from comply_lab.lab.report import Scope, Verification, rate, render
from comply_lab.lab.summary import Stats
from comply_lab.storage.manifest import DELETIONS, HOLDS, RETENTION

if TYPE_CHECKING:
    from comply_lab.lab.log import Log


def write_bundle(
    log: Log,
    out_dir: str | os.PathLike[str],
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    public_key: PublicKeyLike | None = None,
    checkpoint: Checkpoint | dict[str, Any] | str | None = None,
    title: str = "AI audit evidence",
    signing_key: PrivateKeyLike | None = None,
) -> Path:
    """Write an evidence bundle for ``[start, end]`` of ``log`` into a new folder.

    The entries are proven into ``checkpoint`` when it is a checkpoint note (its
    cosignatures kept, and its timestamp ``CHECKPOINT.tsr`` when it is a file with one
    beside it), else into a checkpoint taken now with ``signing_key``; ``signing_key``
    also signs ``SHA256SUMS``. Without either, the bundle holds no proofs and no signature.

    Returns:
        The bundle folder.

    Raises:
        InvalidQueryError: ``out_dir`` exists and is not empty (nothing is overwritten).
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InvalidQueryError(f"{out} is not empty; evidence bundles are written to a new folder")
    for sub in ("statistics", "plots", "records"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    key = None if signing_key is None else load_private_key(signing_key)
    if public_key is None and key is not None:
        public_key = key.public_key()
    table = log.arrow(start, end)
    anchor = _anchor(log, checkpoint, key)
    left_out = 0
    if anchor is not None and public_key is not None:
        tree = LogTree.of(log.storage)
        proven = covered(table, tree, anchor)
        table, left_out = proven.table, proven.left_out
        stamp = _timestamp_beside(checkpoint)
        write_proofs(out, log.storage, table, tree, anchor, load_public_key(public_key), stamp)
    else:
        pq.write_table(table, out / "entries.parquet", compression="zstd")
    summary = log.stats(start, end)
    report = log.verify(start, end, public_key=public_key, checkpoint=checkpoint)
    findings = report.to_frame()
    findings["partition"] = findings["partition"].astype(str)
    (out / "verification.json").write_text(
        json.dumps(
            {
                "summary": report.summary(),
                "problems": json.loads(findings.to_json(orient="records")),
            },
            indent=2,
            default=str,
        )
    )
    tables = _tables(summary)
    for name, frame in tables.items():
        frame.to_csv(out / "statistics" / f"{name}.csv", index=False)
    figures = summary.plots() if len(summary.frame) else {}
    for name, figure in figures.items():
        plots.save(figure, out / "plots" / f"{name}.png")
    for record in (RETENTION, HOLDS, DELETIONS):
        data = log.storage.read_metadata(record)
        if data:
            (out / "records" / record.lstrip("_")).write_bytes(data)
    first, last = plots.covered(summary.frame, summary.span)
    signed = key is not None and anchor is not None
    scope = Scope(title, summary.source, first, last, table.num_rows, signed)
    saved = anchor or (Checkpoint.load(checkpoint) if checkpoint is not None else None)
    verification = Verification(
        report.verdict,
        report.summary_line(),
        report.summary(),
        findings,
        key_id(load_public_key(public_key)) if public_key is not None else None,
        {"entries": saved.entries, "records": saved.records, "time": saved.time}
        if saved is not None
        else None,
    )
    page = render(scope, verification, _headline(summary), tables, list(figures), _version())
    (out / "report.html").write_text(page, encoding="utf-8")
    _manifest(
        out,
        {
            "title": title,
            "log": summary.source,
            "first": first.isoformat() if first is not None else None,
            "last": last.isoformat() if last is not None else None,
            "entries": table.num_rows,
            "entries_not_yet_sealed_left_out": left_out,
            "verified_ok": report.ok,
        },
    )
    seal_bundle(out, key)
    return out


def _anchor(
    log: Log, checkpoint: Checkpoint | dict[str, Any] | str | None, key: Ed25519PrivateKey | None
) -> Checkpoint | None:
    """Return the checkpoint the bundle's entries are proven into (None: no proofs)."""
    given = Checkpoint.load(checkpoint) if checkpoint is not None else None
    if given is not None and given.note is not None:
        return given
    return log.checkpoint(key) if key is not None else None


def _timestamp_beside(checkpoint: object) -> bytes | None:
    """Return the timestamp stored beside a checkpoint file (``CHECKPOINT.tsr``), if any."""
    if isinstance(checkpoint, str | os.PathLike) and "\n" not in str(checkpoint):
        token = Path(checkpoint).with_name(Path(checkpoint).name + ".tsr")
        return token.read_bytes() if token.is_file() else None
    return None


def _tables(summary: Stats) -> dict[str, pd.DataFrame]:
    """Return the statistics tables of a bundle; days partly outside the period are marked."""
    by_day = summary.safety(by="day")
    by_day["partial"] = plots.partial_periods(by_day["day"], "D", summary.frame, summary.span)
    return {
        "safety_overall": summary.safety(),
        "safety_by_model": summary.safety(by="model"),
        "safety_by_day": by_day,
        "latency_by_model": summary.latency(by="model"),
        "latency_by_outcome": summary.latency(by="safety_passed"),
        "tokens_by_model": summary.tokens(by="model"),
        "detectors": summary.detectors(),
        "block_reasons": summary.block_reasons(),
        "alerts": summary.alerts(),
        "volume_by_day": summary.volume("D"),
        "gaps": summary.gaps(),
    }


def _headline(summary: Stats) -> dict[str, str]:
    """Return the key figures of a bundle in words."""
    if summary.frame.empty:
        return {"Entries": "none in this period"}
    safety = summary.safety().iloc[0]
    latency = summary.latency().iloc[0]
    gaps = summary.gaps()
    return {
        "Safety failures": rate(
            int(safety["failures"]),
            int(safety["entries"]),
            float(safety["ci_low"]),
            float(safety["ci_high"]),
        ),
        "Latency": f"median {latency['p50_ms']:,.0f} ms, 95th percentile "
        f"{latency['p95_ms']:,.0f} ms, 99th {latency['p99_ms']:,.0f} ms",
        "Conversations": f"{summary.frame['conversation_id'].nunique():,}",
        "Gaps in logging": f"{len(gaps)} (silences where the log's own rhythm expected traffic)"
        if len(gaps)
        else "none: no silence the log's own rhythm cannot explain",
    }


def _version() -> str:
    try:
        return version("comply-lab")
    except PackageNotFoundError:
        return "(unknown version)"


def _manifest(out: Path, about: dict[str, Any]) -> None:
    files = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files.append(
            {
                "path": path.relative_to(out).as_posix(),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    document = dict(about, created=utc_now().isoformat(), files=files)
    (out / "MANIFEST.json").write_text(json.dumps(document, indent=2))
