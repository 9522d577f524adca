"""Evidence bundles: one self-contained folder an auditor can read and check.

Layout::

    out/report.html            the report: scope, verification, statistics, plots
    out/entries.parquet        the selected entries (hashes, never decrypted content)
    out/verification.json      the verification summary and every finding
    out/statistics/*.csv       each statistics table
    out/plots/*.png            each evidence plot
    out/records/               the log's retention (and hold) records, as stored
    out/MANIFEST.json          SHA-256 and size of every other file in the bundle

An auditor checks the bundle's integrity with the manifest alone (``sha256sum``), and the
log's with the verification it contains.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from comply_lab._time import TimeLike
from comply_lab.errors import InvalidQueryError
from comply_lab.lab import plots
from comply_lab.storage.manifest import HOLDS, RETENTION

if TYPE_CHECKING:
    from comply_lab.crypto.signing import PublicKeyLike
    from comply_lab.integrity.checkpoint import Checkpoint
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
) -> Path:
    """Write an evidence bundle for ``[start, end]`` of ``log`` into a new folder.

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
    table = log.arrow(start, end)
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
    tables = {
        "safety_overall": summary.safety(),
        "safety_by_model": summary.safety(by="model"),
        "safety_by_day": summary.safety(by="day"),
        "latency_by_model": summary.latency(by="model"),
        "latency_by_outcome": summary.latency(by="safety_passed"),
        "tokens_by_model": summary.tokens(by="model"),
        "detectors": summary.detectors(),
        "block_reasons": summary.block_reasons(),
        "alerts": summary.alerts(),
        "volume_by_day": summary.volume("D"),
        "gaps": summary.gaps(),
    }
    for name, frame in tables.items():
        frame.to_csv(out / "statistics" / f"{name}.csv", index=False)
    figures = summary.plots() if len(summary.frame) else {}
    for name, figure in figures.items():
        plots.save(figure, out / "plots" / f"{name}.png")
    for record in (RETENTION, HOLDS):
        data = log.storage.read_metadata(record)
        if data:
            (out / "records" / record.lstrip("_")).write_bytes(data)
    scope = f"{start or 'beginning'} to {end or 'end'}"
    (out / "report.html").write_text(
        _html(
            title,
            str(log.storage),
            scope,
            report.summary_line(),
            report.ok,
            findings,
            tables,
            list(figures),
        ),
        encoding="utf-8",
    )
    _manifest(
        out,
        {
            "title": title,
            "log": str(log.storage),
            "scope": scope,
            "entries": table.num_rows,
            "verified_ok": report.ok,
        },
    )
    return out


def _html(
    title: str,
    source: str,
    scope: str,
    verdict: str,
    ok: bool,
    findings: Any,
    tables: dict[str, Any],
    figures: list[str],
) -> str:
    colour = "#1a7f37" if ok else "#cf222e"
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
        "img{max-width:100%;margin:1em 0}</style>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Log: <code>{html.escape(source)}</code><br>Period: {html.escape(scope)}<br>"
        f"Generated: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        f"<h2>Verification</h2><p style='color:{colour};font-weight:bold'>"
        f"{html.escape(verdict)}</p>",
    ]
    if len(findings):
        parts.append(findings.to_html(index=False, max_rows=200))
    for name, frame in tables.items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' ').capitalize())}</h2>")
        parts.append(frame.to_html(index=False, float_format=lambda v: f"{v:,.4g}"))
    for name in figures:
        parts.append(f"<img src='plots/{name}.png' alt='{html.escape(name)}'>")
    parts.append("<p>Every file of this bundle is listed with its SHA-256 in MANIFEST.json.</p>")
    return "\n".join(parts)


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
    document = dict(about, created=datetime.now(UTC).isoformat(), files=files)
    (out / "MANIFEST.json").write_text(json.dumps(document, indent=2))
