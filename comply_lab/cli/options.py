"""Options and inputs the ``comply-lab`` commands share: selections, keys, table cells."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from comply_lab.crypto.material import describe, shown_path

F = TypeVar("F", bound=Any)


class KeyFile(click.ParamType[str]):
    """A file holding a key: an existing file, whose name is echoed only if it is plainly one.

    Someone may have pasted the key itself where its file name belongs: such a value is
    never repeated in the error.
    """

    name = "key file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Return the value if it names a readable file; fail without showing a key."""
        text = str(value)
        try:
            if Path(text).is_file():
                return text
        except (OSError, ValueError):
            pass
        self.fail(
            f"no key file {shown_path(text)}: pass the path of a file holding the key "
            "(keys are never given on the command line, which shell history keeps)",
            param,
            ctx,
        )


KEY_FILE = KeyFile()


def verification_options(command: F) -> F:
    """Add --start, --end, --public-key and --checkpoint, shared by verify and evidence."""
    options = [
        click.option(
            "--start", help="First day or instant (ISO 8601), or 24h, 7d... back from now."
        ),
        click.option("--end", help="Last day or instant (ISO 8601)."),
        click.option(
            "--public-key",
            "public_key",
            type=KEY_FILE,
            help="The log's public key (PEM or raw, or its verifier key origin+hash+key): "
            "the root every signature is checked against.",
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


def signing_key_option(command: F) -> F:
    """Add --signing-key: the Ed25519 private key file that signs what the command records."""
    return click.option(
        "--signing-key",
        "signing_key",
        type=KEY_FILE,
        help="Ed25519 private key file (PEM or raw) that signs the records this command "
        "appends; needed to keep a signed log verifiable.",
    )(command)


def root_key_option(command: F) -> F:
    """Add --public-key: the log's root key, which the trails checked before acting need."""
    return click.option(
        "--public-key",
        "public_key",
        type=KEY_FILE,
        help="The log's public key (the writer's): the legal holds and trails this command "
        "checks before acting must verify under it. Needed with an operator's --signing-key.",
    )(command)


def workers_option(command: F) -> F:
    """Add --workers: how many day partitions to process at once (compact, verify)."""
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Process this many days at once, in separate processes (same result).",
    )(command)


@contextmanager
def day_pool(workers: int) -> Iterator[Executor | None]:
    """Yield a process pool of ``workers`` processes, or None for one (the serial path)."""
    if workers == 1:
        yield None
        return
    with ProcessPoolExecutor(workers) as pool:
        yield pool


def selection_options(command: F) -> F:
    """Add the time range and filters shared by stats and entries."""
    options = [
        click.option(
            "--start", help="First day or instant (ISO 8601, UTC if no offset), or 24h, 7d..."
        ),
        click.option("--end", help="Last day or instant (a bare day means its end)."),
        click.option("--provider", multiple=True, help="Only this provider (repeatable)."),
        click.option("--model", multiple=True, help="Only this model (repeatable)."),
        click.option(
            "--conversation", multiple=True, help="Only this conversation id (repeatable)."
        ),
        click.option(
            "--safety",
            type=click.Choice(["passed", "failed"]),
            help="Only entries whose safety checks passed, or failed.",
        ),
        click.option(
            "--detector",
            multiple=True,
            help="Only entries where this safety detector fired (repeatable: any of them).",
        ),
        click.option(
            "--on-corrupt",
            type=click.Choice(["raise", "skip"]),
            default="raise",
            show_default=True,
            help="At a damaged segment: fail (exit 1), or skip it with a warning naming it.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def filters_of(params: dict[str, Any]) -> dict[str, Any]:
    """Turn the selection options into ``Log.entries`` keyword filters."""
    filters: dict[str, Any] = {}
    for option, name in (
        ("provider", "provider"),
        ("model", "model"),
        ("conversation", "conversation_id"),
        ("detector", "detector"),
    ):
        if params.get(option):
            filters[name] = list(params[option])
    if params.get("safety"):
        filters["safety_passed"] = params["safety"] == "passed"
    return filters


def json_cell(value: Any) -> str:
    """Return a list or metadata cell as JSON text (Arrow lists arrive as numpy arrays)."""
    return json.dumps(value.tolist() if hasattr(value, "tolist") else value)


def read_keys(keys_env: str | None, keys_file: str | None) -> Any:
    """Read decryption keys from a file or an environment variable, never from argv."""
    import os

    from comply_lab.keys.encryption import keys_from_text

    if keys_file is not None:
        data = Path(keys_file).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise click.UsageError(
                f"{keys_file} holds {describe(data)}; expected decryption keys (a key ring's "
                "text form, or a Fernet key)"
            ) from None
    else:
        text = os.environ.get(keys_env or "COMPLY_LAB_KEYS", "")
    keys = keys_from_text(text)
    if keys is None:
        where = keys_file or f"environment variable {keys_env or 'COMPLY_LAB_KEYS'}"
        raise click.UsageError(f"no keys in {where}: put a key ring or Fernet key there")
    return keys
