"""Exit codes that mean what they say, every time, at interpreter exit too.

Arrow releases what a read leaves behind in its own worker threads. Memory owned by
Python (a ``bytes`` object, an ``io.BytesIO``) needs the GIL to be released; a release
that comes while the interpreter exits aborted the process (exit 134, ``terminate called
without an active exception``) after it had printed its result. These tests run the
command and a script many times each, in fresh processes, on a sealed log of the original
tool's files, and require the documented exit code from every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from comply_lab.storage.compaction import compact
from tests.conftest import original_record

pytestmark = pytest.mark.slow  # the CLI and a script, a dozen runs each

RUNS = 12
SCRIPT = """
import sys
from comply_lab import open_log

print(open_log(sys.argv[1], progress=False).verify(allow_unsigned=True).ok)
"""


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a month of the original tool's day files (naive timestamps), compacted."""
    root = tmp_path_factory.mktemp("migrated")
    start = datetime(2026, 1, 1)
    for day in range(31):
        lines = [
            json.dumps(original_record(start + timedelta(days=day, minutes=23 * i), f"q{day}-{i}"))
            for i in range(60)
        ]
        (root / f"audit_{start + timedelta(days=day):%Y%m%d}.jsonl").write_text(
            "\n".join(lines) + "\n"
        )
    compact(root)
    return root


def _codes(command: list[str]) -> list[tuple[int, str]]:
    def run(_: int) -> tuple[int, str]:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr[-200:]

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(run, range(RUNS)))


@pytest.mark.slow
def test_verify_exits_0_every_time(migrated: Path):
    """`comply-lab verify` of a good log exits 0 in every one of many fresh processes."""
    codes = _codes(
        [sys.executable, "-m", "comply_lab.cli", "verify", "--allow-unsigned", str(migrated)]
    )
    assert [code for code, _ in codes] == [0] * RUNS, codes


@pytest.mark.slow
def test_a_script_exits_as_it_says_every_time(migrated: Path):
    """A script that only verifies exits 0 (its end of file) every time."""
    codes = _codes([sys.executable, "-c", SCRIPT, str(migrated)])
    assert [code for code, _ in codes] == [0] * RUNS, codes
