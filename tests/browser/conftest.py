"""A real browser and a real JupyterLab, on 127.0.0.1, for the tests of what people see.

Chromium comes from Debian's packages (``make browser`` installs it; ``make test`` does so
first) and is driven by the ``playwright`` pip package through ``executable_path``:
Playwright's own browser downloads are never used. JupyterLab runs from this
environment with a random token, settings that keep it off the network, and the
notebooks and sample data copied into a temporary folder. Screenshots go to
``build/screenshots/`` (named after the test), for people to look at.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("COMPLY_LAB_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "build" / "screenshots"
FLAGS = [  # headless, and no background traffic to hosts the machine cannot reach
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_SETTINGS = {  # JupyterLab user settings: nothing fetched from the internet, no windowing
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@pytest.fixture
def browser() -> Iterator[Any]:
    """Yield a headless Debian Chromium driven by Playwright, for one test.

    Playwright's synchronous API runs an event loop on the calling thread while it is
    started, which would break ``asyncio.run`` in whatever test runs next on the same
    worker: so it is started and stopped around each test (about a second).
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Chromium does not run under libfaketime (make timeless): it keeps the real clock.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, env=env)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Yield a 1280x900 page that records console errors in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    context.close()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot of ``page`` as ``build/screenshots/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token and root folder."""

    url: str
    token: str
    root: Path

    def tree(self, path: str) -> str:
        """Return the URL that opens ``path`` (relative to the root) in a fresh workspace.

        Each page gets its own workspace, reset, so no notebook an earlier test opened is
        restored beside it.
        """
        workspace = secrets.token_hex(4)
        return f"{self.url}/lab/workspaces/w{workspace}/tree/{path}?token={self.token}&reset"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Start JupyterLab on 127.0.0.1 with a token over a copy of notebooks/ and data/sample."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
    settings = root / ".settings"
    for name, value in _SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
    }
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_root=True",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/api/status?token={token}", server, root / "jupyterlab.log")
        yield Lab(url, token, root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not start in 90 s:\n{log.read_text()[-3000:]}")
