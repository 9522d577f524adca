"""The README's Python examples run as written, in order, on a fresh directory.

The last one reads the demo's log, so the demo runs first (smaller than ``make demo``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_examples():
    assert len(_examples()) >= 3


@pytest.mark.slow
def test_every_readme_example_runs(tmp_path: Path):
    """Each block runs in one interpreter after the ones before it, as a reader would."""
    demo = [sys.executable, "-m", "comply_lab.demo", "--out", "data/demo", "--entries", "2000"]
    made = subprocess.run(demo, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    script = "\n\n".join(_examples())
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout and "Summarize" not in run.stderr
