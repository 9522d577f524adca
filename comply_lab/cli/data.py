"""Commands that read, export and convert logs: compact, ddl, stats, entries, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from comply_lab.cli.options import (
    day_pool,
    filters_of,
    json_cell,
    root_key_option,
    selection_options,
    signing_key_option,
    workers_option,
)
from comply_lab.storage.segments import QUARANTINE


@click.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@signing_key_option
@root_key_option
@workers_option
def compact(
    path: str, as_json: bool, signing_key: str | None, public_key: str | None, workers: int
) -> None:
    """Convert a log's JSONL day files (or the original tool's S3 objects) into Parquet.

    Each source is removed only after its Parquet copy was stored and matched entry by
    entry. Works on logs written by the original tool too, on disk or in S3.

    For instance:

        \b
        comply-lab compact /var/log/ai-audit

        \b
        comply-lab compact --workers 8 /var/log/ai-audit

        \b
        comply-lab compact s3://my-audit-bucket/prod/ai-audit/ --signing-key writer.pem
    """
    from comply_lab.crypto.signing import load_private_key
    from comply_lab.storage.compaction import compact as run

    key = None if signing_key is None else load_private_key(signing_key)
    with day_pool(workers) as pool:
        report = run(path, key, executor=pool, public_key=public_key)
    if as_json:
        click.echo(json.dumps(report.__dict__))
        return
    click.echo(
        f"sealed {len(report.sealed)} segment(s) into {len(report.parts)} Parquet file(s), "
        f"{report.entries:,} entries"
    )
    if report.in_use:
        click.echo(
            f"skipped {len(report.in_use)} segment(s) in use by a writer: "
            + ", ".join(report.in_use)
        )
    if report.damaged_lines:
        click.echo(f"kept {report.damaged_lines} damaged line(s) in {path}/{QUARANTINE}/")
    if report.pruned:
        click.echo(f"rewrote {len(report.pruned)} part(s) without entries deleted on request")


@click.command()
@click.argument("target")
@click.option(
    "--engine",
    type=click.Choice(["athena", "spark", "trino", "duckdb"]),
    required=True,
    help="The SQL engine that will read the log.",
)
@click.option(
    "--table", default="audit_log", show_default=True, help="Name of the table to declare."
)
def ddl(target: str, engine: str, table: str) -> None:
    """Print the external-table definition that lets a SQL engine query the log.

    The table covers the sealed Parquet segments (partitioned by the UTC ``date``);
    Athena's uses partition projection, so new days need no crawler.

    For instance:

        \b
        comply-lab ddl --engine athena s3://my-audit-bucket/prod/ai-audit/

        \b
        comply-lab ddl --engine duckdb /var/log/ai-audit | duckdb audit.db
    """
    from comply_lab.ddl import table_ddl
    from comply_lab.storage.registry import open_storage

    click.echo(table_ddl(open_storage(target), engine, table), nl=False)


@click.command()
@click.argument("target")
@selection_options
@click.option(
    "--by", type=click.Choice(["model", "provider"]), default="model", help="Break down by."
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics tables as JSON.")
def stats(target: str, by: str, as_json: bool, **selection: Any) -> None:
    """Print safety and latency statistics of a selection of entries.

    Safety failure rates carry Wilson 95% intervals; latency has mean and percentiles.

    For instance:

        \b
        comply-lab stats /var/log/ai-audit --start 2026-01-01 --end 2026-01-31 --by provider
    """
    from comply_lab.lab import open_log

    log = open_log(target, on_corrupt=selection["on_corrupt"])
    summary = log.stats(selection["start"], selection["end"], **filters_of(selection))
    if not as_json:
        click.echo(summary.text(by=by))  # type: ignore[arg-type]
        return
    tables = {
        "safety": summary.safety(),
        f"safety_by_{by}": summary.safety(by=by),
        "latency": summary.latency(),
        f"latency_by_{by}": summary.latency(by=by),
        "tokens": summary.tokens(),
        "detectors": summary.detectors(),
    }
    click.echo(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}))


@click.command()
@click.argument("target")
@selection_options
@click.option("--columns", help="Comma-separated columns to export (default: all).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    help="Output format.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
def entries(
    target: str, columns: str | None, fmt: str, output: Path | None, **selection: Any
) -> None:
    """Export a selection of entries as CSV, JSON lines or Parquet.

    Writes to standard output unless --output is given (Parquet needs --output or a
    pipe). Timestamps are ISO 8601 UTC; list and metadata columns are JSON.

    For instance:

        \b
        comply-lab entries s3://audit/prod/ --start 2026-01-29 --safety failed -o failed.csv
    """
    from comply_lab.lab import open_log

    filters = filters_of(selection)
    if columns:
        filters["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
    log = open_log(target, on_corrupt=selection["on_corrupt"])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if output is None and sys.stdout.isatty():
            raise click.UsageError("Parquet is binary: pass --output FILE or pipe the output")
        table = log.arrow(selection["start"], selection["end"], **filters)
        pq.write_table(table, output or sys.stdout.buffer, compression="zstd")
        count = table.num_rows
    else:
        frame = log.entries(selection["start"], selection["end"], **filters)
        count = len(frame)
        for column in ("detectors_triggered", "alerts", "metadata"):
            if column in frame.columns:
                frame[column] = frame[column].map(json_cell)
        if fmt == "csv":
            text = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        else:
            text = frame.to_json(orient="records", lines=True, date_format="iso")
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text)
    if output is not None:
        click.echo(f"{count:,} entries written to {output}", err=True)


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    help="Directory for the demo log, plots and bundle (replaced if it is a demo's).",
)
@click.option(
    "--entries", "count", type=click.IntRange(min=1), default=50_000, help="Entries to log."
)
def demo(out: Path, count: int) -> None:
    """Log a realistic sample, verify it, print statistics and write plots and a bundle.

    For instance:

        \b
        comply-lab demo --out /tmp/comply-demo --entries 5000
    """
    from comply_lab.demo import main as run

    sys.exit(run(["--out", str(out), "--entries", str(count)]))


@click.command()
@click.argument("target")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--to",
    "kind",
    type=click.Choice(["original"]),
    required=True,
    help="original: day files the original tool (rotalabs-comply) reads.",
)
@click.option("--start", help="First day or instant (ISO 8601), or 24h, 7d... back from now.")
@click.option("--end", help="Last day or instant (a bare day means its end).")
def export(target: str, out_dir: Path, kind: str, start: str | None, end: str | None) -> None:
    """Write the log's entries in another tool's format, into a new or empty DIR.

    With --to original, each day becomes audit_YYYYMMDD.jsonl as rotalabs-comply writes
    it (its seventeen fields, naive UTC timestamps), so its FileStorage and AuditLogger
    read them. Integrity fields and signed records do not go back: verify the log first.
    Content encrypted with a key ring is written as stored (the original cannot decrypt
    it) and counted.

    For instance:

        \b
        comply-lab export /var/log/ai-audit --to original /var/log/ai-audit-original
    """
    from comply_lab.audit.export import export_original
    from comply_lab.lab import open_log

    log = open_log(target, progress=False)
    report = export_original(log.storage, out_dir, start, end)
    click.echo(
        f"exported {report.entries:,} entries into {len(report.files)} day file(s) in "
        f"{report.directory}/ for rotalabs-comply's FileStorage"
    )
    if report.key_ring_content:
        click.echo(
            f"warning: {report.key_ring_content:,} entries hold content encrypted with a key "
            "ring (AES-GCM); the original tool cannot decrypt it",
            err=True,
        )


COMMANDS = [compact, ddl, stats, entries, export, demo]
