"""The ``comply-lab`` command.

Exit codes: 0 success, 1 an integrity problem was found, 2 bad usage or input.
Errors are printed as one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from comply_lab.errors import ComplyLabError, IntegrityError


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


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compact(path: Path, as_json: bool) -> None:
    """Convert a log directory's JSONL day files into the Parquet layout.

    Each JSONL segment is removed only after its Parquet copy was read back and matched
    entry by entry. Works on logs written by the original tool too.

    Example:
        comply-lab compact /var/log/ai-audit
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


if __name__ == "__main__":
    main()
