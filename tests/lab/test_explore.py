"""Selective decryption with access records, the shipped sample, and the explorer widget."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd
import pytest

from comply_lab import AuditLogger, InvalidQueryError, KeyRing, Log, open_log
from comply_lab.audit import EncryptionManager
from comply_lab.crypto.signing import load_public_key, public_key_pem
from comply_lab.lab.explore import Explorer
from comply_lab.sample import sample_keys
from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "sample"


@pytest.fixture
def log(tmp_path: Path) -> Log:
    """Return a writable copy of the shipped sample (decryption appends access records).

    It is opened with the sample's signing key, so the access records it appends are
    signed and the log keeps verifying with its public key.
    """
    copy = shutil.copytree(SAMPLE / "parquet", tmp_path / "log")
    return open_log(copy, progress=False, signing_key=sample_keys()[1])


class TestShippedSample:
    def test_sample_verifies_with_its_key_and_checkpoint(self):
        """data/sample verifies with the shipped public key and checkpoint."""
        public = load_public_key(SAMPLE / "writer.pub")
        report = open_log(SAMPLE / "parquet").verify(
            public_key=public, checkpoint=str(SAMPLE / "checkpoint.txt")
        )
        assert report.ok
        assert (report.entries, report.checkpoint) == (1000, "matched")
        assert open_log(SAMPLE / "jsonl").verify(allow_unsigned=True).ok
        assert len(open_log(SAMPLE / "jsonl")) == len(open_log(SAMPLE / "parquet")) == 1000

    def test_sample_keys_are_the_shipped_ones(self):
        """The published test keys decrypt and verify the sample."""
        encryption, signing = sample_keys()
        assert (SAMPLE / "writer.pub").read_bytes() == public_key_pem(signing)
        frame = open_log(SAMPLE / "parquet").entries(columns=["input_content"]).head(1)
        assert encryption.decrypt(frame["input_content"][0])


class TestDecrypt:
    def test_decrypts_only_what_is_asked_and_records_it(self, log: Log):
        """Exactly the selected rows come back in plain text; the access is recorded first."""
        encryption, _ = sample_keys()
        chosen = log.entries(safety_passed=False).head(3)
        result = log.decrypt(chosen, encryption, reason="case 17", who="investigator")
        assert list(result["id"]) == list(chosen["id"])
        assert result["decrypted"].all()
        assert all(isinstance(text, str) for text in result["input"])
        events = log.access_events()
        assert len(events) == 1
        event = events.iloc[0]
        assert (event["who"], event["reason"], event["action"]) == (
            "investigator",
            "case 17",
            "decrypt",
        )
        assert event["entries"] == list(chosen["id"])
        assert result["verified"].all()  # each text matched its entry's fingerprints
        report = log.verify(public_key=SAMPLE / "writer.pub")
        assert report.ok and report.signatures == "checked"  # the access trail is signed

    def test_missing_or_wrong_key_marks_rows(self, log: Log):
        """Without the right key rows are marked, not dropped, and the attempt is recorded."""
        ids = list(log.entries(columns=["id"]).head(2)["id"])
        no_key = log.decrypt([*ids, "not-an-id"], None, reason="look")
        assert not no_key["decrypted"].any()
        assert list(no_key["note"]) == ["encrypted: a key is needed"] * 2 + ["no such entry"]
        wrong = log.decrypt(ids, EncryptionManager(), reason="look")
        assert not wrong["decrypted"].any()
        assert "could not be decrypted" in wrong["note"][0]
        assert len(log.access_events()) == 2

    def test_reason_is_required(self, log: Log):
        """Decrypting without a reason is refused before anything is read."""
        with pytest.raises(InvalidQueryError, match="needs a reason"):
            log.decrypt(["x"], None, reason=" ")
        assert log.access_events().empty


class TestExplorer:
    def test_filters_pages_detail_and_decrypt(self, log: Log):
        """Drive the explorer as a user would: filter, sort, page, click a row, decrypt."""
        unchecked = log.explore(page_size=10).status.value
        assert "UNVERIFIED:" in unchecked and "#9a6700" in unchecked  # amber: no key given
        explorer = log.explore(page_size=10, public_key=SAMPLE / "writer.pub")
        assert isinstance(explorer, Explorer)
        assert explorer.total == 1000
        assert "OK:" in explorer.status.value and "#1a7f37" in explorer.status.value
        everything = log.entries(columns=["id", "timestamp", "latency_ms"])
        newest = everything.sort_values("timestamp", ascending=False, kind="stable")
        assert list(_every_row(explorer)["id"]) == list(newest["id"])  # newest first
        explorer.apply(outcome="failed", model=["gpt-4o"])
        expected = log.entries(safety_passed=False, model="gpt-4o")
        assert list(_every_row(explorer)["id"]) == list(expected["id"])[::-1]
        assert explorer.page_label.value.startswith("page 1 of")
        assert all(row.button_style == "danger" for row in explorer.rows)  # blocked rows
        first_page = list(explorer.page_frame()["id"])
        explorer.next_page()
        assert list(explorer.page_frame()["id"]) != first_page
        explorer.previous_page()
        assert list(explorer.page_frame()["id"]) == first_page
        explorer.apply(sort="slowest first")
        slowest = _every_row(explorer)
        assert slowest["latency_ms"].is_monotonic_decreasing and len(slowest) == len(expected)
        assert explorer.page == 0
        explorer.rows[0].click()
        assert explorer.selected == explorer.page_frame()["id"].iloc[0]
        assert explorer.selected in explorer.detail.value
        turns = explorer.show_conversation()
        assert explorer.selected in list(turns["id"])
        assert f"{len(turns)} turns" in explorer.thread.value
        assert explorer.decrypt("", "case 9") is not None
        assert "not decrypted" in explorer.detail.value
        assert explorer.decrypt("not a key", "case 9") is None
        assert "not a key comply_lab can read" in explorer.detail.value
        assert "generate" not in explorer.detail.value.lower()
        encryption, _ = sample_keys()
        result = explorer.decrypt(encryption.get_key().decode(), "case 9")
        assert result is not None
        assert bool(result["decrypted"][0])
        assert "this access was recorded" in explorer.detail.value
        assert len(log.access_events()) == 2

    def test_a_wrong_ring_names_the_key_the_entry_needs(self, tmp_path: Path):
        """Decrypting with a ring that lacks the entry's key says which key id it needs."""
        ring = KeyRing.generate("case-k1")
        with AuditLogger(tmp_path / "log", ring, store_content=True) as logger:
            logger.log_sync(input="secret", output="answer")
        explorer = open_log(tmp_path / "log").explore()
        explorer.rows[0].click()
        explorer.decrypt(KeyRing.generate("other").to_text(), "case 10")
        assert "encrypted with key 'case-k1'" in html.unescape(explorer.detail.value)
        assert "generate" not in explorer.detail.value.lower()

    def test_dates_and_relative_starts_are_accepted(self, log: Log):
        """Start and end take ISO strings like every read; "7d" counts back from now."""
        explorer = log.explore("2026-01-20", "2026-01-21")
        assert (str(explorer.start.value), str(explorer.end.value)) == ("2026-01-20", "2026-01-21")
        assert set(_every_row(explorer)["timestamp"].dt.day) <= {20, 21}
        assert explorer.total == log.count("2026-01-20", "2026-01-21")
        assert log.explore("7d").start.value is not None

    def test_fallback_display_is_a_table(self, log: Log):
        """Where widgets cannot render, the explorer shows the current page as HTML."""
        bundle = log.explore(page_size=5)._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert bundle["text/html"].count("</tr>") == 6  # header and five rows


def _every_row(explorer: Explorer) -> pd.DataFrame:
    """Turn every page of the explorer, from the first, and return the rows shown."""
    pages = []
    for page in range(explorer.pages):
        explorer.show_page(page)
        pages.append(explorer.page_frame())
    explorer.show_page(0)
    return pd.concat(pages, ignore_index=True)
