"""The ``comply-lab`` command.

Exit codes: 0 success, 1 an integrity problem was found (or, for ``decrypt``, a row could
not be decrypted), 2 bad usage or input. Errors are printed as one line; ``--debug`` shows
the traceback. Keys are read from files or the environment, never from arguments.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from comply_lab.cli_options import (
    day_pool,
    filters_of,
    json_cell,
    read_keys,
    selection_options,
    signing_key_option,
    verification_options,
    workers_option,
)
from comply_lab.errors import ComplyLabError, ComplyLabWarning, IntegrityError


class _Group(click.Group):
    """Turns comply_lab errors into one-line messages and exit codes at the edge."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ComplyLabError as err:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {err}", err=True)
            sys.exit(1 if isinstance(err, IntegrityError) else 2)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="comply-lab")
def main(debug: bool) -> None:
    """Investigate AI audit logs: compact, query, verify."""
    if not debug:
        warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Print comply_lab's warnings as one line on stderr, like its errors."""
    if issubclass(category, ComplyLabWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _DEFAULT_SHOW(message, category, filename, lineno, file, line)


_DEFAULT_SHOW = warnings.showwarning


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@signing_key_option
@workers_option
def compact(path: str, as_json: bool, signing_key: str | None, workers: int) -> None:
    """Convert a log's JSONL day files (or the original tool's S3 objects) into Parquet.

    Each source is removed only after its Parquet copy was stored and matched entry by
    entry. Works on logs written by the original tool too, on disk or in S3.

    For instance:

        comply-lab compact /var/log/ai-audit

        comply-lab compact --workers 8 /var/log/ai-audit

        comply-lab compact s3://my-audit-bucket/prod/ai-audit/ --signing-key writer.pem
    """
    from comply_lab.integrity.signing import load_private_key
    from comply_lab.storage.seal import compact as run

    key = None if signing_key is None else load_private_key(signing_key)
    with day_pool(workers) as pool:
        report = run(path, key, executor=pool)
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
        click.echo(f"kept {report.damaged_lines} damaged line(s) in {path}/_quarantine/")


@main.command()
@click.argument("target")
@verification_options
@click.option("--deep", is_flag=True, help="Recompute every entry hash, even in intact segments.")
@click.option(
    "--no-signatures",
    "no_signatures",
    is_flag=True,
    help="Accept a signed log without checking its signatures (no --public-key at hand).",
)
@click.option(
    "--as-of",
    "as_of",
    help="Judge freshness at this time (ISO 8601), e.g. when a copy of the log was made.",
)
@click.option("--json", "as_json", is_flag=True, help="Print problems and summary as JSON.")
@workers_option
def verify(
    target: str,
    public_key: str | None,
    checkpoint: str | None,
    start: str | None,
    end: str | None,
    deep: bool,
    no_signatures: bool,
    as_of: str | None,
    as_json: bool,
    workers: int,
) -> None:
    """Verify that a log was not altered, cut, reordered or forged.

    Prints one line per problem and a summary. Exits 0 when everything verifies; 1 when
    an integrity problem was found, or when the log is signed and no --public-key was
    given (UNVERIFIED; --no-signatures accepts that); 2 on bad usage, including a path
    that holds no log.

    For instance:

        comply-lab verify /var/log/ai-audit --public-key writer.pub --checkpoint cp.json

        comply-lab verify --workers 8 s3://my-audit-bucket/prod/ai-audit/ --public-key k.pub
    """
    from comply_lab.lab import open_log

    with day_pool(workers) as pool:
        report = open_log(target, progress=False).verify(
            start,
            end,
            public_key=public_key,
            checkpoint=checkpoint,
            deep=deep,
            require_signatures=not no_signatures,
            as_of=as_of,
            executor=pool,
        )
    if as_json:
        frame = report.to_frame()
        frame["partition"] = frame["partition"].astype(str)
        click.echo(
            json.dumps(
                {
                    "summary": report.summary(),
                    "problems": json.loads(frame.to_json(orient="records")),
                }
            )
        )
    else:
        for problem in report.problems:
            click.echo(problem.line())
        click.echo(report.summary_line())
    sys.exit(0 if report.ok else 1)


@main.command()
@click.argument("target")
@click.option(
    "--signing-key",
    "signing_key",
    type=click.Path(exists=True, dir_okay=False),
    help="Ed25519 private key file that signs the checkpoint.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the checkpoint to this file instead of standard output.",
)
def checkpoint(target: str, signing_key: str | None, output: Path | None) -> None:
    """Print a checkpoint of the sealed log, to keep somewhere else.

    For instance:

        comply-lab checkpoint /var/log/ai-audit --signing-key writer.pem -o cp-2026-01-31.json
    """
    from comply_lab.lab import open_log

    made = open_log(target, progress=False).checkpoint(signing_key)
    if output is None:
        click.echo(made.to_json())
    else:
        made.save(output)
        click.echo(
            f"checkpoint of {made.records} manifest records ({made.entries:,} entries) "
            f"written to {output}"
        )


@main.command()
@click.argument("target")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@verification_options
@click.option("--title", default="AI audit evidence", help="Title of the report.")
def evidence(
    target: str,
    out_dir: Path,
    start: str | None,
    end: str | None,
    public_key: str | None,
    checkpoint: str | None,
    title: str,
) -> None:
    """Write an evidence bundle (HTML report, entries, verification, plots, manifest).

    For instance:

        comply-lab evidence /var/log/ai-audit evidence-2026-01 --start 2026-01-01 --end 2026-01-31
    """
    from comply_lab.lab import open_log

    folder = open_log(target, progress=False).evidence_bundle(
        out_dir, start, end, public_key=public_key, checkpoint=checkpoint, title=title
    )
    click.echo(f"evidence bundle written to {folder}/ (open {folder}/report.html)")


@main.command()
@click.argument("target")
@click.option("--days", type=click.IntRange(min=0), required=True, help="Retention in days.")
@click.option("--apply", "apply_plan", is_flag=True, help="Delete; without it, only show.")
@click.option("--floor-days", type=click.IntRange(min=0), help="A minimum retention to respect.")
@click.option(
    "--override",
    metavar="REASON",
    help="Go below the minimum retention; the reason is recorded with each deletion.",
)
@click.option("--reason", help="Why (a policy or ticket); recorded with each deletion.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and result) as JSON.")
@signing_key_option
def retention(
    target: str,
    days: int,
    apply_plan: bool,
    floor_days: int | None,
    override: str | None,
    reason: str | None,
    as_json: bool,
    signing_key: str | None,
) -> None:
    """Show which day partitions retention would delete and why; delete with --apply.

    Partitions under a legal hold or S3 Object Lock are kept; every deletion is recorded
    first, so verification reports it as expired_by_policy. Exits 2 if --days is below
    the log's minimum retention without --override.

    For instance, daily from cron:

        comply-lab retention /var/log/ai-audit --days 365 --apply --reason R-7 --signing-key k.pem
    """
    from comply_lab.lab import open_log
    from comply_lab.storage.retention import apply_retention, plan_retention

    log = open_log(target, progress=False, signing_key=signing_key)
    plan = plan_retention(log.storage, days, floor_days=floor_days, override=override)
    result = apply_retention(log.storage, plan, reason=reason) if apply_plan else None
    if as_json:
        out: dict[str, Any] = {
            "days": days,
            "floor_days": plan.floor_days,
            "partitions": [
                {
                    "partition": p.partition.isoformat(),
                    "entries": p.entries,
                    "bytes": p.bytes,
                    "action": p.action,
                    "reason": p.reason,
                }
                for p in plan.partitions
            ],
        }
        if result is not None:
            out["deleted"] = {
                "partitions": [d.isoformat() for d in result.partitions],
                "entries": result.entries,
                "kept": {d.isoformat(): why for d, why in result.kept.items()},
            }
        click.echo(json.dumps(out))
        return
    for p in plan.partitions:
        entries = "?" if p.entries is None else f"{p.entries:,}"
        click.echo(f"{p.partition}  {p.action:<6} {entries:>12} entries  {p.reason}")
    doomed = plan.to_delete
    if result is None:
        total = sum(p.entries or 0 for p in doomed)
        click.echo(f"would delete {len(doomed)} partition(s), {total:,} entries; run with --apply")
        return
    for day, why in result.kept.items():
        click.echo(f"{day}  kept: {why}")
    click.echo(f"deleted {len(result.partitions)} partition(s), {result.entries:,} entries")


@main.command()
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

        comply-lab ddl --engine athena s3://my-audit-bucket/prod/ai-audit/

        comply-lab ddl --engine duckdb /var/log/ai-audit | duckdb audit.db
    """
    from comply_lab.ddl import table_ddl
    from comply_lab.storage.scan import open_storage

    click.echo(table_ddl(open_storage(target), engine, table), nl=False)


@main.command()
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


@main.command()
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


@main.command()
@click.argument("target")
@click.argument("ids", nargs=-1)
@click.option(
    "--ids-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of entry ids, one per line (or a CSV with an id column).",
)
@click.option("--reason", required=True, help="Why the content is read; recorded.")
@click.option("--who", help="Who reads it (default: the operating-system user); recorded.")
@click.option(
    "--keys-env",
    metavar="VARIABLE",
    help="Environment variable holding the keys (default COMPLY_LAB_KEYS).",
)
@click.option(
    "--keys-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the keys (a key ring's text form, or a Fernet key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@signing_key_option
def decrypt(
    target: str,
    ids: tuple[str, ...],
    ids_file: Path | None,
    reason: str,
    who: str | None,
    keys_env: str | None,
    keys_file: Path | None,
    as_json: bool,
    signing_key: str | None,
) -> None:
    """Decrypt the stored content of selected entries, recording the access first.

    Keys are read from an environment variable or a file, never from the command line
    (which shell history and process listings keep). Rows whose key is missing are
    marked, not fatal. Exits 1 if any row could not be decrypted.

    For instance:

        comply-lab decrypt /var/log/ai-audit 019c0a1e-... --keys-file ring.txt --reason CASE-12
    """
    from comply_lab.lab import open_log

    wanted = list(ids)
    if ids_file is not None:
        lines = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        wanted += [line.split(",")[0] for line in lines if line.split(",")[0] != "id"]
    if not wanted:
        raise click.UsageError("give entry ids as arguments or with --ids-file")
    keys = read_keys(keys_env, keys_file)
    log = open_log(target, progress=False, signing_key=signing_key)
    result = log.decrypt(wanted, keys, reason=reason, who=who)
    if as_json:
        click.echo(result.to_json(orient="records", lines=True, date_format="iso"), nl=False)
    else:
        click.echo(result.to_string(index=False))
    sys.exit(0 if result["decrypted"].all() else 1)


@main.command()
@click.argument("target")
@click.argument("name", required=False)
@click.option("--reason", help="Why the hold is placed (a matter, a request); required.")
@click.option("--start", help="Hold entries from this day or instant.")
@click.option("--end", help="Hold entries up to this day or instant.")
@click.option("--conversation", help="Hold only this conversation's entries.")
@click.option(
    "--metadata",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hold only entries whose metadata has this value (repeatable).",
)
@click.option("--who", help="Who places it (default: the operating-system user).")
@click.option("--list", "show", is_flag=True, help="List the active holds instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the holds as JSON.")
@signing_key_option
def hold(
    target: str,
    name: str | None,
    reason: str | None,
    start: str | None,
    end: str | None,
    conversation: str | None,
    metadata: tuple[str, ...],
    who: str | None,
    show: bool,
    as_json: bool,
    signing_key: str | None,
) -> None:
    """Place a legal hold so retention never deletes the entries it covers; or --list them.

    An entry is covered when it lies in --start..--end, belongs to --conversation and has
    every --metadata value (whichever are given; none means the whole log).

    For instance:

        comply-lab hold /var/log/ai-audit matter-7 --conversation conv-123 --reason "matter 7"

        comply-lab hold /var/log/ai-audit --list
    """
    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key)
    if not show:
        if not name or not reason:
            raise click.UsageError("a hold needs a NAME and --reason (or use --list)")
        values = {}
        for pair in metadata:
            key, sep, value = pair.partition("=")
            if not sep:
                raise click.UsageError(f"--metadata takes KEY=VALUE, got {pair!r}")
            values[key] = value
        log.hold(
            name,
            start=start,
            end=end,
            conversation_id=conversation,
            metadata=values or None,
            reason=reason,
            who=who,
        )
    holds = log.holds()
    if as_json:
        click.echo(holds.to_json(orient="records", date_format="iso"))
        return
    if show or not name:
        for row in holds.itertuples():
            click.echo(f"{row.name}  placed {row.at:%Y-%m-%d} by {row.who}: {row.reason}")
        click.echo(f"{len(holds)} active hold(s)")
    else:
        click.echo(f"hold {name!r} placed; {len(holds)} active hold(s)")


@main.command()
@click.argument("target")
@click.argument("name")
@click.option("--reason", required=True, help="Why the hold is released; recorded.")
@click.option("--who", help="Who releases it (default: the operating-system user).")
@signing_key_option
def release(target: str, name: str, reason: str, who: str | None, signing_key: str | None) -> None:
    """Release a legal hold; later retention may delete what it covered.

    For instance:

        comply-lab release /var/log/ai-audit matter-7 --reason "case closed 2026-11-02"
    """
    from comply_lab.lab import open_log

    open_log(target, progress=False, signing_key=signing_key).release(name, reason, who=who)
    click.echo(f"hold {name!r} released")


@main.command()
@click.argument("target")
@click.option("--add", "name", metavar="NAME", help="Declare an operator key under this name.")
@click.option(
    "--key",
    "operator_key",
    type=click.Path(exists=True, dir_okay=False),
    help="The operator's Ed25519 public key file (PEM or raw), with --add.",
)
@click.option("--reason", help="Why the key is declared (recorded), with --add.")
@click.option("--who", help="Who declares it (default: the operating-system user).")
@click.option("--json", "as_json", is_flag=True, help="Print the declared keys as JSON.")
@signing_key_option
def operators(
    target: str,
    name: str | None,
    operator_key: str | None,
    reason: str | None,
    who: str | None,
    as_json: bool,
    signing_key: str | None,
) -> None:
    """List the operator keys a log declares, or declare one with --add.

    Records signed by a declared operator key verify like the writer's own, so people
    and jobs can sign what they record without holding the writer's key. Declaring one
    needs the writer's key (--signing-key).

    For instance:

        comply-lab operators /var/log/ai-audit --add dpo --key dpo.pub --reason R --signing-key k

        comply-lab operators /var/log/ai-audit
    """
    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key)
    if name is not None:
        if operator_key is None or not reason:
            raise click.UsageError("--add needs --key (the operator's public key) and --reason")
        added = log.add_operator(operator_key, name, reason=reason, who=who)
        click.echo(f"declared operator key {added} ({name})")
    table = log.operators()
    if as_json:
        click.echo(table.to_json(orient="records"))
    elif name is None:
        for row in table.itertuples():
            click.echo(f"{row.key_id}  {row.name}  (declared by writer key {row.writer_id})")
        click.echo(f"{len(table)} operator key(s)")


@main.command()
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

        comply-lab demo --out /tmp/comply-demo --entries 5000
    """
    from comply_lab.demo import main as run

    sys.exit(run(["--out", str(out), "--entries", str(count)]))


if __name__ == "__main__":
    main()
