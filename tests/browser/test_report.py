"""An evidence bundle's report.html, opened in Chromium as an auditor would.

Every image loads, the page logs no console error, nothing scrolls sideways in a
1280-pixel window, and printed (print CSS, A4) every table stays inside the page.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from comply_lab import open_log
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.lab import plots
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SAMPLE = ROOT / "data" / "sample"
A4_WIDTH_PX = 718  # 210 mm less 1 cm margins each side, at 96 pixels per inch


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a bundle of the shipped sample, with its key and checkpoint; return the page."""
    root = tmp_path_factory.mktemp("report")
    log = open_log(shutil.copytree(SAMPLE / "parquet", root / "log"))
    bundle = log.evidence_bundle(
        root / "bundle",
        public_key=SAMPLE / "writer.pub",
        checkpoint=Checkpoint.load(SAMPLE / "checkpoint.txt"),
        title="Sample log review",
    )
    return bundle / "report.html"


def test_report_reads_well_in_a_browser(page: Any, report: Path):
    """Images load, no console errors, no sideways scrolling at 1280 px."""
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate(
        "() => [...document.images].map(i => [i.getAttribute('src'), i.complete && "
        "i.naturalWidth > 0])"
    )
    assert len(images) == len(plots.ALL)
    assert all(loaded for _, loaded in images), images
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    text = page.inner_text("body")
    for expected in ("Parquet log at", "Writer's key", "Checkpoint", "95% CI", "check it again"):
        assert expected in text
    assert "beginning" not in text and "FileStorage(" not in text
    screenshot(page, "report-top")
    screenshot(page, "report-full", full_page=True)
    assert page.errors == []


def test_printed_tables_stay_inside_the_page(page: Any, report: Path):
    """With print styles at A4 width every table fits; the PDF is written."""
    page.set_viewport_size({"width": A4_WIDTH_PX, "height": 1000})
    page.goto(report.as_uri())
    page.emulate_media(media="print")
    widest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('table')]"
        ".map(t => t.getBoundingClientRect().right))"
    )
    assert widest <= A4_WIDTH_PX
    assert page.evaluate("() => document.documentElement.scrollWidth") <= A4_WIDTH_PX
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pdf = SCREENSHOTS / "report.pdf"
    page.pdf(path=str(pdf), format="A4", margin={"left": "1cm", "right": "1cm"})
    assert pdf.read_bytes().startswith(b"%PDF")
    screenshot(page, "report-print")
