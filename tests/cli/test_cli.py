"""The comply-lab command: every subcommand through click's runner, and its documentation."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, KeyRing, open_log
from comply_lab._time import utc_now
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.signing import generate_signing_key, private_key_pem, public_key_pem
from tests.conftest import ROOT, FakeClock

GUIDE = ROOT / "docs" / "guide.md"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Make a small JSONL log over three days, content encrypted with a ring in keys.txt."""
    ring = KeyRing.generate("k1")
    (tmp_path / "keys.txt").write_text(ring.to_text())
    clock = FakeClock(utc_now() - timedelta(days=2))
    path = tmp_path / "log"
    with AuditLogger(
        FileStorage(path, fsync="never"), ring, store_content=True, clock=clock
    ) as logger:
        for day in range(3):
            for i in range(4):
                logger.log_sync(
                    input=f"prompt {day}-{i}",
                    output="answer",
                    provider="openai" if i % 2 else "anthropic",
                    model="gpt-4o" if i % 2 else "claude",
                    safety_passed=i != 3,
                    detectors_triggered=["pii"] if i == 3 else [],
                    latency_ms=100.0 + i,
                    conversation_id=f"conv-{i}",
                    metadata={"user_id": f"u{i}"},
                )
            clock.advance(days=1)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the command in-process; return exit code, stdout and stderr."""
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


class TestCommands:
    def test_stats_text_and_json(self, log_dir: Path):
        """Text summary per provider; JSON tables with the same totals."""
        code, out, _ = run("stats", str(log_dir), "--by", "provider")
        assert code == 0 and "entries" in out and "anthropic" in out
        code, out, _ = run("stats", str(log_dir), "--json", "--model", "gpt-4o")
        tables = json.loads(out)
        assert tables["safety"][0]["entries"] == 6 and tables["safety"][0]["failures"] == 3
        assert {r["model"] for r in tables["safety_by_model"]} == {"gpt-4o"}

    def test_entries_in_every_format(self, log_dir: Path, tmp_path: Path):
        """CSV and JSON lines on stdout, Parquet to a file; filters and columns apply."""
        code, out, _ = run(
            "entries",
            str(log_dir),
            "--safety",
            "failed",
            "--columns",
            "id,model,detectors_triggered",
        )
        frame = pd.read_csv(io.StringIO(out))
        assert code == 0 and list(frame.columns) == ["id", "model", "detectors_triggered"]
        assert len(frame) == 3 and set(frame["detectors_triggered"]) == {'["pii"]'}
        code, out, _ = run("entries", str(log_dir), "--format", "jsonl", "--conversation", "conv-1")
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == 3 and all(r["conversation_id"] == "conv-1" for r in rows)
        target = tmp_path / "out.parquet"
        code, _, err = run("entries", str(log_dir), "--format", "parquet", "-o", str(target))
        assert code == 0 and len(pd.read_parquet(target)) == 12 and "12 entries" in err

    def test_decrypt_reads_keys_from_a_file_or_the_environment(self, log_dir: Path):
        """Keys come from --keys-file or COMPLY_LAB_KEYS; the access is recorded."""
        ids = list(open_log(log_dir).entries(columns=["id"])["id"][:2])
        keys = (log_dir.parent / "keys.txt").read_text()
        code, out, _ = run(
            "decrypt",
            str(log_dir),
            *ids,
            "--reason",
            "CASE-1",
            "--keys-file",
            str(log_dir.parent / "keys.txt"),
            "--json",
        )
        rows = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and [r["input"] for r in rows] == ["prompt 0-0", "prompt 0-1"]
        code, out, _ = run(
            "decrypt", str(log_dir), ids[0], "--reason", "CASE-2", env={"COMPLY_LAB_KEYS": keys}
        )
        assert code == 0 and "prompt 0-0" in out
        events = open_log(log_dir).access_events()
        assert list(events["reason"]) == ["CASE-1", "CASE-2"]
        assert keys not in out

    def test_decrypt_failures(self, log_dir: Path, tmp_path: Path):
        """Missing keys, wrong keys and missing ids are clear and typed."""
        some_id = str(open_log(log_dir).entries(columns=["id"])["id"][0])
        code, _, err = run(
            "decrypt", str(log_dir), some_id, "--reason", "r", env={"COMPLY_LAB_KEYS": ""}
        )
        assert code == 2 and "no keys in environment variable COMPLY_LAB_KEYS" in err
        (tmp_path / "other.txt").write_text(KeyRing.generate("k9").to_text())
        code, out, _ = run(
            "decrypt",
            str(log_dir),
            some_id,
            "--reason",
            "r",
            "--keys-file",
            str(tmp_path / "other.txt"),
        )
        assert code == 1 and "does not hold" in out
        code, _, err = run("decrypt", str(log_dir), "--reason", "r")
        assert code == 2 and "give entry ids" in err
        code, _, err = run("decrypt", str(log_dir), some_id)
        assert code == 2 and "--reason" in err

    def test_a_key_file_of_the_wrong_kind_says_what_it_holds(self, log_dir: Path, tmp_path: Path):
        """--keys-file with a signing key, or a signing key option with a key ring: named."""
        some_id = str(open_log(log_dir).entries(columns=["id"])["id"][0])
        key = generate_signing_key()
        (tmp_path / "writer.pem").write_bytes(private_key_pem(key))
        (tmp_path / "writer.pub").write_bytes(public_key_pem(key))
        for name, kind in (("writer.pem", "PEM private key"), ("writer.pub", "PEM public key")):
            code, _, err = run(
                "decrypt", str(log_dir), some_id, "--reason", "r",
                "--keys-file", str(tmp_path / name),
            )  # fmt: skip
            assert code == 2, err
            assert "expected decryption keys (a key ring's text form" in err and kind in err
        code, _, err = run("verify", str(log_dir), "--public-key", str(log_dir.parent / "keys.txt"))
        assert code == 2 and "not an Ed25519 public key" in err and "got a key ring" in err
        code, _, err = run("verify", str(log_dir), "--public-key", "no-such.pub")
        assert code == 2 and "no key file 'no-such.pub'" in err

    def test_hold_list_release_and_retention(self, log_dir: Path):
        """Holds placed and released from the shell protect days from retention."""
        code, out, _ = run(
            "hold",
            str(log_dir),
            "matter-1",
            "--conversation",
            "conv-2",
            "--metadata",
            "user_id=u2",
            "--reason",
            "litigation",
        )
        assert code == 0 and "placed; 1 active" in out
        code, out, _ = run("hold", str(log_dir), "--list", "--json")
        assert [h["name"] for h in json.loads(out)] == ["matter-1"]
        code, out, _ = run("retention", str(log_dir), "--days", "0", "--json")
        plan = json.loads(out)
        assert {p["action"] for p in plan["partitions"]} == {"keep"}
        assert any(p["reason"] == "under hold: matter-1" for p in plan["partitions"])
        code, _, err = run("hold", str(log_dir), "x", "--metadata", "novalue", "--reason", "r")
        assert code == 2 and "KEY=VALUE" in err
        code, _, err = run("release", str(log_dir), "nope", "--reason", "r")
        assert code == 2 and "no active hold named 'nope'" in err
        code, out, _ = run("release", str(log_dir), "matter-1", "--reason", "settled")
        assert code == 0 and "released" in out
        code, out, _ = run("hold", str(log_dir), "--list")
        assert "0 active hold(s)" in out

    def test_errors_are_one_line_and_debug_shows_the_traceback(self, tmp_path: Path):
        """A missing log is exit 2 with one line; --debug raises the real exception."""
        code, _, err = run("stats", str(tmp_path / "missing"))
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: no log at")
        result = CliRunner().invoke(main, ["--debug", "stats", str(tmp_path / "missing")])
        assert result.exception is not None and "no log at" in str(result.exception)

    @pytest.mark.slow  # several CLI subprocesses
    def test_demo_command(self, tmp_path: Path):
        """The demo runs from the command too."""
        code, out, _ = run("demo", "--out", str(tmp_path / "demo"), "--entries", "300")
        assert code == 0 and "verified: OK" in out


def test_every_command_has_help_with_an_example_and_a_guide_entry() -> None:
    """A command without an example in --help, or not in the guide, fails here."""
    readme = GUIDE.read_text()
    assert set(main.commands) >= {
        "stats",
        "entries",
        "verify",
        "decrypt",
        "retention",
        "hold",
        "release",
        "compact",
        "evidence",
        "checkpoint",
        "demo",
    }
    for name, command in main.commands.items():
        code, out, _ = run(name, "--help")
        assert code == 0, name
        assert "For instance" in out and f"comply-lab {name}" in out, name
        assert re.search(rf"`comply-lab {name}\b", readme), f"docs/guide.md lacks comply-lab {name}"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} --{param.name} has no help"
