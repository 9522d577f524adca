"""Every example of docs/guide.md runs, against real services on 127.0.0.1.

Each block runs in a fresh interpreter, as a reader would paste it, after a short
preamble giving it what the surrounding text assumes (an opened log, the writer's public
key). The guide's paths are the reader's (``/var/log/ai-audit``, ``/secure/subject-keys``);
the test points them at a temporary directory. OpenAI calls reach the local server of
``tests/llm_server.py``, S3 and KMS calls the moto server; nothing leaves the machine.
Command-line examples (``$ comply-lab ...`` with their output) run on the same sample log,
damaged as the example shows, and print what the guide shows, numbers aside.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comply_lab import AuditLogger, FileStorage, KeyRing, open_log
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from comply_lab.sample import write_sample
from tests.conftest import ROOT
from tests.llm_server import llm_server

GUIDE = ROOT / "docs" / "guide.md"
SAMPLE_LOG = """\
import comply_lab
from comply_lab import AuditLogger, FileStorage

log = comply_lab.open_log("/var/log/ai-audit")
pub = open("writer.pub", "rb").read()
"""


@dataclass(frozen=True)
class Setting:
    """What one example needs around it."""

    heading: str  # the first line of the block, to keep this table in step with the guide
    preamble: str = ""
    sample_log: bool = False  # January 2026 of sample traffic at /var/log/ai-audit
    check: str = ""  # run after the block: what it must have done


SETTINGS = [
    Setting(
        "import openai",
        check='assert len(comply_lab.open_log("/var/log/ai-audit")) == 5',
        preamble="import comply_lab\n",
    ),
    Setting("import comply_lab", check="assert len(log) == 1"),
    Setting("import comply_lab", sample_log=True, check="assert len(blocked) > 0"),
    Setting("month = log.stats(", SAMPLE_LOG, sample_log=True),
    Setting("from distributed import Client", SAMPLE_LOG, sample_log=True),
    Setting(
        "from comply_lab.crypto.signing import",
        "import comply_lab\nfrom comply_lab import AuditLogger, FileStorage\n",
        check='assert report.verdict == "OK"',
    ),
    Setting("import comply_lab as cl", check="assert log.verify(allow_unsigned=True).ok"),
    Setting(
        "log = comply_lab.open_log(",
        SAMPLE_LOG,
        sample_log=True,
        check="assert len(log.holds()) == 1",
    ),
    Setting(
        "from comply_lab import FileStorage, open_log",
        sample_log=True,
        check="assert storage.read_sync(entry_id) is None\n"
        'assert open_log(storage).verify(public_key="writer.pub").ok',
    ),
]


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def test_every_example_has_a_setting():
    """A new or reordered example in the guide needs its line in SETTINGS."""
    heads = [block.splitlines()[0] for block in _examples()]
    assert len(heads) == len(SETTINGS)
    for head, setting in zip(heads, SETTINGS, strict=True):
        assert head.startswith(setting.heading), (head, setting.heading)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a signed Parquet log of January 2026 and the writer's keys beside it."""
    root = tmp_path_factory.mktemp("guide-sample")
    key = generate_signing_key()
    logger = write_sample(
        lambda clock: AuditLogger(
            FileStorage(root / "ai-audit", format="parquet", signing_key=key), clock=clock
        ),
        3000,
        31,
        end=datetime(2026, 2, 1, tzinfo=UTC),
    )
    logger.close()
    (root / "writer.pub").write_bytes(public_key_pem(key))
    (root / "writer.key").write_bytes(private_key_pem(key))
    open_log(root / "ai-audit").checkpoint(key).save(root / "cp.txt")
    return root


@pytest.fixture(scope="module")
def services(s3_endpoint: str) -> Iterator[dict[str, str]]:
    """Environment of the examples: a key ring, the OpenAI-like server, S3 and KMS."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-west-2")
    if "my-audit-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(
            Bucket="my-audit-bucket",
            CreateBucketConfiguration={"LocationConstraint": "us-west-2"},
        )
    kms = boto3.client("kms", endpoint_url=s3_endpoint)
    if not any(a["AliasName"] == "alias/audit" for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/audit", TargetKeyId=key)
    with llm_server() as (url, _requests):
        yield {
            **os.environ,
            "COMPLY_LAB_KEYS": KeyRing.generate("k2").to_text(),
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": f"{url}/v1",
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "AWS_ENDPOINT_URL_KMS": s3_endpoint,
        }


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SETTINGS)))
def test_example_runs(index: int, tmp_path: Path, sample: Path, services: dict[str, str]):
    setting = SETTINGS[index]
    if setting.sample_log:
        shutil.copytree(sample / "ai-audit", tmp_path / "ai-audit")
        shutil.copy(sample / "writer.pub", tmp_path / "writer.pub")
        shutil.copy(sample / "writer.key", tmp_path / "writer.key")
    script = "\n".join([setting.preamble, _examples()[index], setting.check])
    script = script.replace("/var/log/ai-audit", str(tmp_path / "ai-audit"))
    script = script.replace("/secure/subject-keys", str(tmp_path / "subject-keys"))
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=services,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr


def _commands() -> list[tuple[str, list[str]]]:
    """Return each ``$ comply-lab ...`` example: the command and the lines it prints."""
    blocks = re.findall(r"```text\n\$ (comply-lab .*?)\n(.*?)```", GUIDE.read_text(), re.S)
    return [(command, output.splitlines()) for command, output in blocks]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _shape(line: str) -> str:
    """Return a pattern matching ``line`` with any entry ids and numbers in it."""
    pieces = []
    for piece in _UUID.split(line):
        pieces.append(re.sub(r"\\d\+", r"[\\d,]+", re.sub(r"\d[\d,]*", r"\\d+", re.escape(piece))))
    return _UUID.pattern.join(pieces)


def test_the_guide_shows_a_command():
    assert [command.split()[1] for command, _ in _commands()] == ["verify"]


@pytest.mark.slow
def test_the_verify_example_prints_what_the_guide_shows(tmp_path: Path, sample: Path):
    """The guide's verify example: a sealed day deleted from a checkpointed log."""
    ((command, shown),) = _commands()
    shutil.copytree(sample, tmp_path, dirs_exist_ok=True)
    day = re.search(r"date=\d{4}-\d\d-\d\d", shown[0])
    assert day is not None
    for part in (tmp_path / "ai-audit" / day.group()).glob("*.parquet"):
        part.unlink()
    args = command.replace("/var/log/ai-audit", str(tmp_path / "ai-audit")).split()[1:]
    cli = Path(sys.executable).parent / "comply-lab"
    run = subprocess.run([cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    printed = run.stdout.splitlines()
    assert len(printed) == len(shown), run.stdout
    for line, expected in zip(printed, shown, strict=True):
        assert re.fullmatch(_shape(expected), line), (line, expected)
