"""The ``comply-lab`` command.

Exit codes: 0 success, 1 an integrity problem was found, 2 bad usage or input.
Errors are printed as one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import click

from comply_lab.errors import ComplyLabError, IntegrityError

F = TypeVar("F", bound=Any)


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


def _verification_options(command: F) -> F:
    """Add --start, --end, --public-key and --checkpoint, shared by verify and evidence."""
    options = [
        click.option("--start", help="First day or instant (ISO 8601)."),
        click.option("--end", help="Last day or instant (ISO 8601)."),
        click.option(
            "--public-key",
            "public_key",
            type=click.Path(exists=True, dir_okay=False),
            help="The writer's Ed25519 public key (PEM or raw); signatures are checked.",
        ),
        click.option(
            "--checkpoint",
            type=click.Path(exists=True, dir_okay=False),
            help="A checkpoint saved earlier; detects truncation of the newest data.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="comply-lab")
def main(debug: bool) -> None:
    """Investigate AI audit logs: compact, query, verify."""


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compact(path: str, as_json: bool) -> None:
    """Convert a log's JSONL day files (or the original tool's S3 objects) into Parquet.

    Each source is removed only after its Parquet copy was stored and matched entry by
    entry. Works on logs written by the original tool too, on disk or in S3.

    For instance:

        comply-lab compact /var/log/ai-audit

        comply-lab compact s3://my-audit-bucket/prod/ai-audit/
    """
    from comply_lab.storage.seal import compact as run

    report = run(path)
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
@_verification_options
@click.option("--deep", is_flag=True, help="Recompute every entry hash, even in intact segments.")
@click.option("--json", "as_json", is_flag=True, help="Print problems and summary as JSON.")
def verify(
    target: str,
    public_key: str | None,
    checkpoint: str | None,
    start: str | None,
    end: str | None,
    deep: bool,
    as_json: bool,
) -> None:
    """Verify that a log was not altered, cut, reordered or forged.

    Prints one line per problem and a summary. Exits 0 when everything verifies, 1 when
    an integrity problem was found, 2 on bad usage.

    For instance:

        comply-lab verify /var/log/ai-audit --public-key writer.pub --checkpoint cp.json
    """
    from comply_lab.lab import open_log

    report = open_log(target, progress=False).verify(
        start, end, public_key=public_key, checkpoint=checkpoint, deep=deep
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
@_verification_options
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
def retention(
    target: str,
    days: int,
    apply_plan: bool,
    floor_days: int | None,
    override: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Show which day partitions retention would delete and why; delete with --apply.

    Partitions under a legal hold or S3 Object Lock are kept; every deletion is recorded
    first, so verification reports it as expired_by_policy. Exits 2 if --days is below
    the log's minimum retention without --override.

    For instance (from cron, daily):

        comply-lab retention /var/log/ai-audit --days 365 --apply --reason "policy R-7"
    """
    from comply_lab.lab import open_log
    from comply_lab.storage.retention import apply_retention, plan_retention

    log = open_log(target, progress=False)
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


if __name__ == "__main__":
    main()
