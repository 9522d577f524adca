"""The README's Python examples run as written, each on its own, in order, after the demo.

A reader runs ``make demo`` and then tries the examples one at a time, each in a fresh
interpreter: so does this test, in a fresh folder, with the real clock (the examples read
it themselves, as the tutorial's ``datetime.utcnow()`` does). The commands the demo prints
run as printed, from the folder it ran in, in a shell whose PATH does not hold the
virtual environment.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hermetic import real_clock_env

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _reader_env() -> dict[str, str]:
    """Return the environment of a reader's shell: the real clock, no virtualenv on PATH."""
    env = real_clock_env()
    venv = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    return env


def test_the_readme_has_examples():
    assert len(_examples()) >= 3


@pytest.mark.slow
def test_every_readme_example_runs_on_its_own_after_the_demo(tmp_path: Path):
    """Each block runs in a fresh interpreter after the demo; the demo's hint runs as printed."""
    env = _reader_env()
    demo = [sys.executable, "-m", "comply_lab.demo", "--entries", "2000"]
    made = subprocess.run(demo, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert made.returncode == 0, made.stderr
    hint = re.search(r"check it: (.+)", made.stdout)
    assert hint is not None, made.stdout
    checked = subprocess.run(
        shlex.split(hint.group(1)), cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert checked.returncode == 0, (hint.group(1), checked.stderr)
    assert (tmp_path / "data" / "demo" / "writer.key").stat().st_mode & 0o777 == 0o600
    outputs = []
    for number, block in enumerate(_examples(), 1):
        run = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert run.returncode == 0, f"README example {number} failed:\n{block}\n{run.stderr}"
        assert "Warning" not in run.stderr, f"README example {number} warned:\n{run.stderr}"
        outputs.append(run.stdout)
    assert "OK" in outputs[-1]
