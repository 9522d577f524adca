"""What makes the test run hermetic and timeless: its own home, and one fixed "now".

:func:`isolate` runs before anything else in the test session (``conftest.py`` calls it at
import), in the controlling process and in every worker:

- ``HOME`` and the XDG, AWS, Matplotlib, IPython and Jupyter directories point into one
  temporary folder per test run, so no test (nor any process a test starts: the CLI,
  JupyterLab, Chromium, Go) reads or writes the user's own files, caches or credentials;
- ``$COMPLY_LAB_CLOCK_SHIFT`` moves comply_lab's clock so that it reads :data:`NOW` when
  the run starts and runs on from there, in every process of the run. Tests never depend
  on today's date, and a run under ``faketime`` (any date) sees the same "now".

:class:`HomeGuard` snapshots the real home before the run and names everything under it
that changed after the run (``make test`` fails then).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from comply_lab._time import CLOCK_SHIFT_VARIABLE

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
"""What comply_lab's clock reads when the test run starts (a Sunday, noon UTC)."""

_RUN_HOME = "COMPLY_LAB_TEST_HOME"
_REAL_HOME = "COMPLY_LAB_REAL_HOME"
IGNORE_VARIABLE = "COMPLY_LAB_HOME_GUARD_IGNORE"
"""Shell patterns of names directly under the real home that the guard leaves out,
separated by ':' (for a developer's machine where other programs write there during the
run); unset on CI."""


def isolate() -> Path:
    """Point the home and cache directories into this run's folder; fix comply_lab's now.

    Idempotent, and shared with worker processes through the environment: the first
    process of the run makes the folder and the shift, the others inherit both.

    Returns:
        The run's home folder.
    """
    home = os.environ.get(_RUN_HOME)
    if home is None:
        os.environ[_REAL_HOME] = os.path.expanduser("~")
        home = tempfile.mkdtemp(prefix="comply-lab-home-")
        os.environ[_RUN_HOME] = home
        shift = (NOW - datetime.now(UTC)).total_seconds()
        os.environ[CLOCK_SHIFT_VARIABLE] = f"{shift:.6f}"
    root = Path(home)
    places = {
        "HOME": root,
        "XDG_CACHE_HOME": root / ".cache",
        "XDG_CONFIG_HOME": root / ".config",
        "XDG_DATA_HOME": root / ".local" / "share",
        "XDG_STATE_HOME": root / ".local" / "state",
        "MPLCONFIGDIR": root / ".config" / "matplotlib",
        "IPYTHONDIR": root / ".ipython",
        "JUPYTER_CONFIG_DIR": root / ".jupyter",
        "JUPYTER_DATA_DIR": root / ".local" / "share" / "jupyter",
        "AWS_CONFIG_FILE": root / ".aws" / "config",
        "AWS_SHARED_CREDENTIALS_FILE": root / ".aws" / "credentials",
        "GOCACHE": root / ".cache" / "go-build",
        "GOPATH": root / "go",
    }
    for name, path in places.items():
        os.environ[name] = str(path)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # no credential lookups off this machine
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "COMPLY_LAB_SPOOL_DIR", "COMPLY_LAB_KEYS"):
        os.environ.pop(name, None)
    return root


def real_clock_env() -> dict[str, str]:
    """Return this process's environment without the clock shift.

    For programs that compare comply_lab's times with the system clock themselves (the
    README's examples, the benchmarks beside the original tool): they see the real date,
    as a reader would, and only compare times they made in the same run.
    """
    return {k: v for k, v in os.environ.items() if k != CLOCK_SHIFT_VARIABLE}


def real_home() -> Path:
    """Return the user's own home directory (as it was before :func:`isolate`)."""
    return Path(os.environ.get(_REAL_HOME) or os.path.expanduser("~"))


Snapshot = dict[str, tuple[int, int, int]]


class HomeGuard:
    """Tells what changed under the real home between :meth:`start` and :meth:`changes`.

    Every file and link is compared by type, size and modification time, and every path
    that appeared or went away is named. ``ignore`` lists shell patterns of names directly
    under the home to leave out.
    """

    def __init__(self, home: Path, ignore: str = "") -> None:
        self.home = home
        self.ignore = {name for name in ignore.split(":") if name}
        self._before: Snapshot = {}

    def start(self) -> None:
        """Take the snapshot to compare against."""
        self._before = self._snapshot()

    def changes(self, limit: int = 20) -> list[str]:
        """Return up to ``limit`` paths (relative to the home) that changed since :meth:`start`."""
        after = self._snapshot()
        changed = sorted(
            path
            for path in self._before.keys() | after.keys()
            if self._before.get(path) != after.get(path)
        )
        return changed[:limit]

    def _snapshot(self) -> Snapshot:
        found: Snapshot = {}
        stack = [self.home]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                relative = os.path.relpath(entry.path, self.home)
                top = relative.split(os.sep, 1)[0]
                if any(fnmatch.fnmatchcase(top, pattern) for pattern in self.ignore):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    found[relative] = (info.st_mode, 0, 0)  # its entries are compared
                    stack.append(Path(entry.path))
                else:
                    found[relative] = (info.st_mode, info.st_size, info.st_mtime_ns)
        return found
