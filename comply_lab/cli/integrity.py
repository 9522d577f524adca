"""Commands that prove what a log holds: verify, checkpoint, evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from comply_lab.cli.options import (
    day_pool,
    verification_options,
    workers_option,
)


@click.command()
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

        \b
        comply-lab verify /var/log/ai-audit --public-key writer.pub --checkpoint cp.json

        \b
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


@click.command()
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
@click.option("--origin", help="The log's name, first line of the note (default: from the key).")
@click.option(
    "--since",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An older checkpoint: also write the proof that this one extends it (OUTPUT.proof).",
)
def checkpoint(
    target: str,
    signing_key: str | None,
    output: Path | None,
    origin: str | None,
    since: Path | None,
) -> None:
    """Write a checkpoint of the sealed log (a C2SP signed note), to keep somewhere else.

    With --since, the consistency proof (RFC 9162) that the log only grew since the older
    checkpoint is written beside it, as OUTPUT.proof; it exits 1 if the log does not
    extend the older checkpoint. The verifier key that opens the note is printed.

    For instance:

        \b
        comply-lab checkpoint /var/log/ai-audit --signing-key writer.pem -o cp-2026-01-31.txt
        comply-lab checkpoint /var/log/ai-audit --signing-key k.pem -o cp-02.txt --since cp-01.txt
    """
    from comply_lab.crypto.signing import load_private_key
    from comply_lab.errors import IntegrityError
    from comply_lab.integrity.checkpoint import Checkpoint, verifier_key
    from comply_lab.integrity.tlog import LogTree, consistency
    from comply_lab.lab import open_log

    if since is not None and output is None:
        raise click.UsageError("--since writes the proof beside the checkpoint: give --output")
    log = open_log(target, progress=False)
    made = log.checkpoint(signing_key, origin=origin)
    if output is None:
        click.echo(made.to_note(), nl=False)
        return
    made.save(output)
    click.echo(f"checkpoint of {made.size:,} entries ({made.records} manifest records) in {output}")
    if signing_key is not None:
        public = load_private_key(signing_key).public_key()
        click.echo(f"verifier key: {verifier_key(public, str(made.origin))}")
    if since is not None:
        try:
            proof = consistency(LogTree.of(log.storage), Checkpoint.load(since), made)
        except IntegrityError as err:
            click.echo(f"NOT CONSISTENT with {since}: {err}", err=True)
            sys.exit(1)
        proof_file = output.with_name(output.name + ".proof")
        proof_file.write_text(proof.to_json() + "\n")
        click.echo(
            f"consistency proof from {proof.old_size:,} to {proof.new_size:,} entries in "
            f"{proof_file}"
        )


@click.command()
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

        \b
        comply-lab evidence /var/log/ai-audit evidence-2026-01 --start 2026-01-01 --end 2026-01-31
    """
    from comply_lab.lab import open_log

    folder = open_log(target, progress=False).evidence_bundle(
        out_dir, start, end, public_key=public_key, checkpoint=checkpoint, title=title
    )
    click.echo(f"evidence bundle written to {folder}/ (open {folder}/report.html)")


COMMANDS = [verify, checkpoint, evidence]
