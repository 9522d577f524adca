"""Commands that prove what a log holds: verify, checkpoint, evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from comply_lab.cli.options import (
    KEY_FILE,
    day_pool,
    root_key_option,
    signing_key_option,
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
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    help="A witness's verifier key (or a file holding it) whose cosignature of --checkpoint "
    "counts; repeat for several.",
)
@click.option(
    "--witnesses",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many of the --witness-key witnesses must have cosigned the checkpoint.",
)
@click.option(
    "--tsa-cert",
    "tsa_cert",
    type=click.Path(exists=True, dir_okay=False),
    help="The time-stamp authority's root certificate (PEM): check the checkpoint's "
    "timestamp (--timestamp, default CHECKPOINT.tsr).",
)
@click.option(
    "--timestamp",
    type=click.Path(exists=True, dir_okay=False),
    help="The checkpoint's RFC 3161 timestamp (default: CHECKPOINT.tsr beside it).",
)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="Accept a log that carries no signature at all (exit 0 if consistent); without "
    "it such a log is UNSIGNED (exit 1): consistent, but no proof.",
)
@click.option(
    "--origin",
    help="The log's origin, which --checkpoint must name (default: the verifier key's, "
    "or the key's default comply-lab/<fingerprint>).",
)
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
    witness_keys: tuple[str, ...],
    witnesses: int,
    tsa_cert: str | None,
    timestamp: str | None,
    allow_unsigned: bool,
    origin: str | None,
    workers: int,
) -> None:
    """Verify that a log was not altered, cut, reordered or forged.

    Prints one line per problem and a summary. Exits 0 when everything verifies; 1 when
    an integrity problem was found, when the log is signed and no --public-key was given
    (UNVERIFIED; --no-signatures accepts that), or when nothing in it is signed
    (UNSIGNED; --allow-unsigned accepts that without a key); 2 on bad usage, including a
    path that holds no log.

    For instance:

        \b
        comply-lab verify /var/log/ai-audit --public-key writer.pub --checkpoint cp.txt

        \b
        comply-lab verify --workers 8 s3://my-audit-bucket/prod/ai-audit/ --public-key k.pub

        \b
        comply-lab verify /var/log/ai-audit --public-key w.pub --checkpoint cp.txt \\
            --witness-key witness-a.vkey --witness-key witness-b.vkey --witnesses 2
    """
    from comply_lab.lab import open_log

    if tsa_cert is not None and timestamp is None and checkpoint is not None:
        timestamp = checkpoint + ".tsr"
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
            witness_keys=witness_keys,
            witnesses=witnesses,
            timestamp=timestamp,
            tsa_certs=tsa_cert,
            origin=origin,
            allow_unsigned=allow_unsigned,
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
    type=KEY_FILE,
    help="Ed25519 private key file that signs the checkpoint.",
)
@root_key_option
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
@click.option(
    "--publish",
    metavar="S3_URL",
    help="Also write the checkpoint (and proof) to this s3://bucket/prefix/, Object Lock "
    "in compliance mode (the bucket must have Object Lock).",
)
@click.option(
    "--retain-days",
    type=click.IntRange(min=1),
    default=2557,
    show_default=True,
    help="How long a published checkpoint can be neither deleted nor replaced.",
)
def checkpoint(
    target: str,
    signing_key: str | None,
    public_key: str | None,
    output: Path | None,
    origin: str | None,
    since: Path | None,
    publish: str | None,
    retain_days: int,
) -> None:
    """Write a checkpoint of the sealed log (a C2SP signed note), to keep somewhere else.

    With --since, the consistency proof (RFC 9162) that the log only grew since the older
    checkpoint is written beside it, as OUTPUT.proof; it exits 1 if the log does not
    extend the older checkpoint. The verifier key that opens the note is printed. With
    --publish, both are also written to write-once S3 storage (Object Lock, compliance
    mode, --retain-days).

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

    if (since is not None or publish is not None) and output is None:
        raise click.UsageError("--since and --publish need the checkpoint file: give --output")
    log = open_log(target, progress=False, public_key=public_key)
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
    if publish is not None:
        from comply_lab.integrity.publish import publish as publish_to

        proof_file = output.with_name(output.name + ".proof")
        extra = {".proof": proof_file.read_bytes()} if since is not None else {}
        for url in publish_to(made, publish, retain_days, attachments=extra):
            click.echo(f"published {url} (locked for {retain_days} days)")


@click.command()
@click.argument("target")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@verification_options
@click.option("--title", default="AI audit evidence", help="Title of the report.")
@click.option(
    "--signing-key",
    "signing_key",
    type=KEY_FILE,
    help="The writer's Ed25519 private key: signs SHA256SUMS (and a checkpoint taken now, "
    "unless --checkpoint gives one), so anyone with the public key can check the bundle.",
)
def evidence(
    target: str,
    out_dir: Path,
    start: str | None,
    end: str | None,
    public_key: str | None,
    checkpoint: str | None,
    title: str,
    signing_key: str | None,
) -> None:
    """Write an evidence bundle (report, entries with proofs, verification, signed sums).

    For instance:

        \b
        comply-lab evidence /var/log/ai-audit evidence-2026-01 --start 2026-01-01 --end 2026-01-31
    """
    from comply_lab.lab import open_log

    folder = open_log(target, progress=False).evidence_bundle(
        out_dir,
        start,
        end,
        public_key=public_key,
        checkpoint=checkpoint,
        title=title,
        signing_key=signing_key,
    )
    click.echo(f"evidence bundle written to {folder}/ (open {folder}/report.html)")
    verdict = json.loads((folder / "verification.json").read_text())["summary"]["verdict"]
    if verdict == "FAILED":  # an integrity problem: the bundle says so, and so does the exit
        click.echo("the log's verdict is FAILED: the bundle names the findings", err=True)
        raise SystemExit(1)


@click.command()
@click.argument(
    "checkpoint_file",
    metavar="CHECKPOINT",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--key",
    "witness_key",
    required=True,
    type=KEY_FILE,
    help="The witness's Ed25519 private key (PEM or raw).",
)
@click.option(
    "--state",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The witness's folder: the last checkpoint it cosigned, per log.",
)
@click.option(
    "--log-key",
    "log_key",
    required=True,
    type=KEY_FILE,
    help="The log writer's public key: the checkpoint must carry its signature.",
)
@click.option(
    "--proof",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Consistency proof from the last cosigned checkpoint (default: CHECKPOINT.proof).",
)
@click.option("--name", help="The witness's name in its cosignature lines.")
@click.option(
    "--new-origin",
    is_flag=True,
    help="Cosign a first checkpoint under an origin this witness has not seen for a log key "
    "it cosigns under another (a log renamed on purpose).",
)
def witness(
    checkpoint_file: Path,
    witness_key: str,
    state: Path,
    log_key: str,
    proof: Path | None,
    name: str | None,
    new_origin: bool,
) -> None:
    """Cosign CHECKPOINT as a witness, only if the log grew from what the witness saw.

    The witness checks the log's signature, then that the checkpoint extends the last one
    it cosigned for that log (same root at the same size, or the consistency proof that
    `comply-lab checkpoint --since` wrote), and that it is not dated earlier. Only then is
    its cosignature line (C2SP tlog-cosignature/v1) added to CHECKPOINT. Exits 1 when it
    refuses, and nothing is signed; prints the witness's verifier key for auditors.

    For instance:

        \b
        comply-lab witness --key witness.pem --state /srv/witness --log-key writer.pub cp-02.txt
    """
    from comply_lab.crypto.signing import load_private_key, load_public_key
    from comply_lab.integrity.checkpoint import Checkpoint
    from comply_lab.integrity.tlog import ConsistencyProof
    from comply_lab.integrity.witness import WitnessRefusal, cosign, witness_signer

    signer = witness_signer(load_private_key(witness_key), name)
    proof = proof or checkpoint_file.with_name(checkpoint_file.name + ".proof")
    consistency = ConsistencyProof.load(proof.read_text()) if proof.is_file() else None
    try:
        done = cosign(
            Checkpoint.load(checkpoint_file),
            signer,
            state,
            load_public_key(log_key),
            consistency,
            new_origin=new_origin,
        )
    except WitnessRefusal as err:
        click.echo(f"REFUSED: {err}", err=True)
        sys.exit(1)
    done.checkpoint.save(checkpoint_file)
    before = (
        "first checkpoint seen" if done.previous_size is None else f"extends {done.previous_size:,}"
    )
    click.echo(f"cosigned {checkpoint_file} ({done.checkpoint.size:,} entries, {before})")
    click.echo(f"witness key: {signer.verifier.vkey()}")


@click.command()
@click.argument(
    "checkpoint_file", metavar="CHECKPOINT", type=click.Path(exists=True, dir_okay=False)
)
@click.option("--tsa", "url", required=True, help="The time-stamp authority's URL (RFC 3161).")
def timestamp(checkpoint_file: str, url: str) -> None:
    """Get a trusted timestamp (RFC 3161) of CHECKPOINT; store it as CHECKPOINT.tsr.

    It proves the checkpoint existed by the authority's time; `verify --checkpoint
    CHECKPOINT --tsa-cert CA.pem` checks it and prints that time. Exits 1 when the
    authority cannot be reached or refuses.

    For instance:

        \b
        comply-lab timestamp cp-2026-01-31.txt --tsa http://timestamp.example.com/tsr
    """
    from comply_lab.integrity.checkpoint import Checkpoint
    from comply_lab.integrity.timestamp import TimestampError, request_timestamp, save_timestamp

    try:
        data = request_timestamp(Checkpoint.load(checkpoint_file), url)
    except TimestampError as err:
        click.echo(f"FAILED: {err}", err=True)
        sys.exit(1)
    click.echo(f"timestamp of {checkpoint_file} written to {save_timestamp(data, checkpoint_file)}")


@click.command("verify-bundle")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=KEY_FILE,
    help="The writer's Ed25519 public key (PEM), obtained from the writer, not the bundle.",
)
def verify_bundle_command(folder: Path, public_key: str) -> None:
    """Check an evidence bundle received from someone else.

    Exits 0 only when every file hashes as SHA256SUMS says (and none is unlisted), the
    writer's signature of SHA256SUMS verifies, the checkpoint carries the writer's
    signature, and every extracted entry re-hashes to its recorded hash and proves into
    the checkpoint; 1 on any mismatch, naming the file or entry; 2 when FOLDER is not a
    bundle.

    For instance:

        \b
        comply-lab verify-bundle evidence-2026-01 --public-key writer.pub
    """
    from comply_lab.crypto.signing import load_public_key
    from comply_lab.integrity.verify_bundle import NotABundle
    from comply_lab.lab.bundle import check_bundle

    try:
        failures = check_bundle(folder, load_public_key(public_key))
    except NotABundle as err:
        raise click.UsageError(str(err)) from None
    for failure in failures:
        click.echo(f"FAILED {failure}")
    if failures:
        click.echo(f"FAILED: {len(failures)} problem(s) in {folder}")
        sys.exit(1)
    click.echo(f"OK: {folder}: every file, the signature, every entry and its proof verify")


@click.command()
@click.argument("target")
@signing_key_option
@click.option("--origin", help="The log's name (default: comply-lab/<key fingerprint>).")
@click.option(
    "--heartbeat-s",
    type=float,
    default=3600.0,
    show_default=True,
    help="The heartbeat cadence the genesis promises (0: none).",
)
def adopt(target: str, signing_key: str | None, origin: str | None, heartbeat_s: float) -> None:
    """Give an existing log its genesis and writer registrations, once it verifies.

    For a log written by an earlier version (or by the original tool) that verifies
    PENDING with "no genesis record": after checking its entries, the root key signs a
    genesis, a registration per writer its entries name, and a heartbeat vouching for
    its unsealed files as they are now. Refused, with nothing written, when the log has
    other findings.

    For instance:

        \b
        comply-lab adopt /var/log/ai-audit --signing-key writer.pem
    """
    from comply_lab.crypto.signing import load_private_key
    from comply_lab.integrity.adoption import adopt as run
    from comply_lab.storage.registry import open_storage

    if signing_key is None:
        raise click.UsageError("give the log's root key: --signing-key FILE")
    storage = open_storage(target, signing_key=load_private_key(signing_key))
    try:
        done = run(storage, origin=origin, heartbeat_s=heartbeat_s or None)
    finally:
        storage.close()
    click.echo(
        f"adopted {target} as {done.origin}: "
        + ("genesis written, " if done.genesis else "genesis kept, ")
        + f"{len(done.writers)} writer(s) registered, {len(done.vouched)} unsealed "
        "segment(s) vouched for; verify it with --public-key"
    )


COMMANDS = [verify, checkpoint, evidence, witness, timestamp, verify_bundle_command, adopt]
