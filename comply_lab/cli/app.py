"""The ``comply-lab`` group: one-line errors and warnings, exit codes."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

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
