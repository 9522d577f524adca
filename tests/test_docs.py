"""The guide's map of the package names every module, so the map stays true."""

from __future__ import annotations

import re
from pathlib import Path

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
