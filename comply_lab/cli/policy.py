"""Commands that act on a log and record it: retention, decrypt, holds, deletion, operators."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from comply_lab.cli.options import (
    KEY_FILE,
    read_keys,
    root_key_option,
    signing_key_option,
)
from comply_lab.storage.signers import ALL_SCOPES


@click.command()
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
@root_key_option
def retention(
    target: str,
    days: int,
    apply_plan: bool,
    floor_days: int | None,
    override: str | None,
    reason: str | None,
    as_json: bool,
    signing_key: str | None,
    public_key: str | None,
) -> None:
    """Show which day partitions retention would delete and why; delete with --apply.

    Partitions under a legal hold or S3 Object Lock are kept; every deletion is recorded
    first, so verification reports it as expired_by_policy. Exits 2 if --days is below
    the log's minimum retention without --override.

    For instance, daily from cron:

        \b
        comply-lab retention /var/log/ai-audit --days 365 --apply --reason R-7 --signing-key k.pem
    """
    from comply_lab.lab import open_log
    from comply_lab.retention.policy import apply_retention, plan_retention

    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
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


@click.command()
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
    type=KEY_FILE,
    help="File holding the keys (a key ring's text form, or a Fernet key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@signing_key_option
@root_key_option
def decrypt(
    target: str,
    ids: tuple[str, ...],
    ids_file: Path | None,
    reason: str,
    who: str | None,
    keys_env: str | None,
    keys_file: str | None,
    as_json: bool,
    signing_key: str | None,
    public_key: str | None,
) -> None:
    """Decrypt the stored content of selected entries, recording the access first.

    Keys are read from an environment variable or a file, never from the command line
    (which shell history and process listings keep). Rows whose key is missing are
    marked, not fatal. Exits 1 if any row could not be decrypted.

    For instance:

        \b
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
    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
    result = log.decrypt(wanted, keys, reason=reason, who=who)
    if as_json:
        click.echo(result.to_json(orient="records", lines=True, date_format="iso"), nl=False)
    else:
        click.echo(result.to_string(index=False))
    sys.exit(0 if result["decrypted"].all() else 1)


@click.command()
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
@root_key_option
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
    public_key: str | None,
) -> None:
    """Place a legal hold so retention never deletes the entries it covers; or --list them.

    An entry is covered when it lies in --start..--end, belongs to --conversation and has
    every --metadata value (whichever are given; none means the whole log).

    For instance:

        \b
        comply-lab hold /var/log/ai-audit matter-7 --conversation conv-123 --reason "matter 7"

        \b
        comply-lab hold /var/log/ai-audit --list
    """
    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
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


@click.command()
@click.argument("target")
@click.argument("name")
@click.option("--reason", required=True, help="Why the hold is released; recorded.")
@click.option("--who", help="Who releases it (default: the operating-system user).")
@signing_key_option
@root_key_option
def release(
    target: str,
    name: str,
    reason: str,
    who: str | None,
    signing_key: str | None,
    public_key: str | None,
) -> None:
    """Release a legal hold; later retention may delete what it covered.

    For instance:

        \b
        comply-lab release /var/log/ai-audit matter-7 --reason "case closed 2026-11-02"
    """
    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
    log.release(name, reason, who=who)
    click.echo(f"hold {name!r} released")


@click.command()
@click.argument("target")
@click.argument("entry_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", required=True, help="Why (an erasure request, a ticket); recorded.")
@click.option("--who", help="Who asks (default: the operating-system user).")
@signing_key_option
@root_key_option
def delete(
    target: str,
    entry_ids: tuple[str, ...],
    reason: str,
    who: str | None,
    signing_key: str | None,
    public_key: str | None,
) -> None:
    """Delete entries on request: recorded first, out of every read at once.

    Their bytes go at the next sealing or `comply-lab compact`; verification reports
    them deleted_on_request. An entry under an active legal hold is refused (exit 2)
    and nothing after it is deleted. Exits 1 if an id is not in the log.

    For instance:

        \b
        comply-lab delete /var/log/ai-audit 0190f1c2-... --reason "erasure 118" --signing-key k
    """
    import getpass

    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
    who = who or getpass.getuser()
    unknown = []
    for entry_id in entry_ids:
        if log.delete(entry_id, reason=reason, who=who):
            click.echo(f"deleted {entry_id}")
        else:
            unknown.append(entry_id)
            click.echo(f"no entry {entry_id} (never logged, or deleted already)", err=True)
    if unknown:
        sys.exit(1)


@click.command()
@click.argument("target")
@click.option("--add", "name", metavar="NAME", help="Declare an operator key under this name.")
@click.option(
    "--key",
    "operator_key",
    type=click.Path(exists=True, dir_okay=False),
    help="The operator's Ed25519 public key file (PEM or raw), with --add.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(ALL_SCOPES),
    help="Where the key's signatures count, with --add (repeatable; all by default).",
)
@click.option("--reason", help="Why the key is declared (recorded), with --add.")
@click.option("--who", help="Who declares it (default: the operating-system user).")
@click.option("--json", "as_json", is_flag=True, help="Print the declared keys as JSON.")
@signing_key_option
@root_key_option
def operators(
    target: str,
    name: str | None,
    operator_key: str | None,
    scopes: tuple[str, ...],
    reason: str | None,
    who: str | None,
    as_json: bool,
    signing_key: str | None,
    public_key: str | None,
) -> None:
    """List the operator keys a log declares, or certify one with --add.

    Records an operator key signs within its scopes (--scope: seal, retention, holds,
    deletions, decryption, keys, erasure; all by default) verify like the root key's, so
    people and jobs can sign what they record without holding the writer's key.
    Certifying one needs the root (writer's) key (--signing-key); verification counts
    only the keys the root it is given certified.

    For instance:

        \b
        comply-lab operators /var/log/ai-audit --add dpo --key dpo.pub --reason R --signing-key k

        \b
        comply-lab operators /var/log/ai-audit
    """
    from comply_lab.lab import open_log

    log = open_log(target, progress=False, signing_key=signing_key, public_key=public_key)
    if name is not None:
        if operator_key is None or not reason:
            raise click.UsageError("--add needs --key (the operator's public key) and --reason")
        added = log.add_operator(
            operator_key, name, reason=reason, who=who, scopes=list(scopes) or None
        )
        click.echo(f"declared operator key {added} ({name})")
    table = log.operators()
    if as_json:
        click.echo(table.to_json(orient="records"))
    elif name is None:
        for row in table.itertuples():
            click.echo(
                f"{row.key_id}  {row.name}  scopes {row.scopes}  (declared by key {row.writer_id})"
            )
        click.echo(f"{len(table)} operator key(s)")


COMMANDS = [retention, decrypt, hold, release, delete, operators]
