"""The guide's map of the package names every module, so the map stays true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_map() -> dict[str, str]:
    """Return the guide's module map: the text listed for each top-level entry."""
    readme = (ROOT / "docs" / "guide.md").read_text()
    block = re.search(r"```text\ncomply_lab/[^\n]*\n(.*?)```", readme, re.S)
    assert block is not None, "docs/guide.md has no module map (a text block opening comply_lab/)"
    found: dict[str, str] = {}
    current = ""
    for line in block.group(1).splitlines():
        head = re.match(r"^  (\S+)", line)
        if head:
            current = head.group(1)
        found[current] = found.get(current, "") + " " + line
    return found


def test_every_module_is_in_the_readme_map():
    """Each public module and package appears in the guide's map under its package."""
    listed = _module_map()
    package = ROOT / "comply_lab"
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name.startswith("_"):
            continue
        if len(relative.parts) == 1:
            if path.name not in " ".join(listed.values()):
                missing.append(str(relative))
        elif path.name not in listed.get(f"{relative.parts[0]}/", ""):
            missing.append(str(relative))
    assert not missing, f"the module map in docs/guide.md does not mention: {missing}"


ROLE = re.compile(r":(class|meth|func|mod|data|attr|exc|obj):`")


def test_docstrings_use_the_style_the_docs_site_renders():
    """No Sphinx role is left in the package: cross-references are mkdocstrings links."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "comply_lab").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ROLE.search(line)
    ]
    assert not found, f"Sphinx roles render as text on the docs site: {found}"


@pytest.mark.slow
def test_the_api_reference_shows_links_and_no_dunder_methods(tmp_path: Path):
    """The built API page has cross-reference links, no literal roles, no __dunder__ entries."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    page = (site / "reference" / "api" / "index.html").read_text()
    assert page.count('class="autorefs autorefs-internal"') > 50
    assert not ROLE.search(page)
    assert not re.search(r'id="comply_lab\.[\w.]*\.__\w+__"', page)
