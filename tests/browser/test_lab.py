"""The shipped notebooks, opened and run in JupyterLab in Chromium, as an investigator would.

Each notebook runs all its cells in the browser; no cell may show an error, every cell
that draws a plot must show it as a picture (an ``<img>``), and the explorer must render
as widgets that answer clicks: a filter changes the rows, a row opens its entry.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Lab, screenshot
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
_CELLS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.filter(w => w.model.type === 'code').map(w => ({
    source: w.model.sharedModel.getSource(),
    count: w.model.executionCount,
    errors: w.model.outputs.toJSON().filter(o => o.output_type === 'error')
      .map(o => o.ename + ': ' + o.evalue),
    images: w.node.querySelectorAll('.jp-OutputArea-output img').length,
    widgets: w.node.querySelectorAll('.jp-OutputArea-output .comply-lab-explorer').length,
  }));
}"""
_DONE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session?.kernel;
  const cells = panel.content.widgets.filter(w => w.model.type === 'code');
  return kernel?.status === 'idle' && cells.every(w => w.model.executionCount !== null);
}"""
_PLOTTING = re.compile(r"\.plot\(|plots\.\w+\(")


def run_notebook(page: Any, lab: Lab, name: str) -> list[dict[str, Any]]:
    """Open ``name`` in JupyterLab, run all its cells, and return what each code cell shows."""
    page.goto(lab.tree(f"notebooks/{name}"))
    page.wait_for_function(
        "path => { const panel = window.jupyterapp?.shell.currentWidget; return "
        "panel?.context?.path === path && panel.sessionContext.session?.kernel?.status "
        "=== 'idle'; }",
        arg=f"notebooks/{name}",
        timeout=120_000,
    )
    page.evaluate(  # started, not awaited: the wait below has the timeout
        "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
    )
    page.wait_for_function(_DONE, timeout=300_000, polling=500)
    cells: list[dict[str, Any]] = page.evaluate(_CELLS)
    return cells


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(page: Any, lab: Lab, name: str):
    """All cells run without error, and every plotting cell shows a picture."""
    cells = run_notebook(page, lab, name)
    assert [c["errors"] for c in cells if c["errors"]] == []
    plotting = [c for c in cells if _PLOTTING.search(c["source"])]
    assert all(c["images"] >= 1 for c in plotting), [c["source"] for c in plotting]
    first_plot = page.locator(".jp-OutputArea-output img").first
    if plotting:
        first_plot.scroll_into_view_if_needed()
    screenshot(page, f"notebook-{name.removesuffix('.ipynb')}")
    assert page.errors == []


def test_explorer_answers_clicks(page: Any, lab: Lab):
    """In the investigation notebook, the explorer filters, pages and opens entries."""
    cells = run_notebook(page, lab, "02-investigation.ipynb")
    assert any(c["widgets"] for c in cells)
    explorer = page.locator(".comply-lab-explorer")
    explorer.scroll_into_view_if_needed()
    label = explorer.locator(".widget-label", has_text=re.compile(r"^page \d+ of"))
    before = label.inner_text()
    blocked = explorer.locator("button.mod-danger:visible").count()
    screenshot(page, "explorer-initial")
    explorer.locator(".widget-dropdown", has_text="safety").locator("select").select_option(
        "failed"
    )
    explorer.locator("button", has_text="Apply filters").click()
    page.wait_for_function(
        "before => [...document.querySelectorAll('.comply-lab-explorer .widget-label')]"
        ".some(n => /^page \\d+ of/.test(n.textContent) && n.textContent !== before)",
        arg=before,
    )
    page.wait_for_function(  # every row shown is a blocked one, in red
        "() => { const shown = s => [...document.querySelectorAll('.comply-lab-explorer ' + s)]"
        ".filter(b => b.offsetParent !== null).length; const rows = shown("
        "\"button[title^='open entry']\"); return rows >= 1 && shown('button.mod-danger') "
        "=== rows; }"
    )
    rows = explorer.locator("button[title^='open entry']:visible")
    assert explorer.locator("button.mod-danger:visible").count() == rows.count() >= blocked
    rows.first.click()
    detail = explorer.locator("h4", has_text="Entry ")
    detail.wait_for()
    explorer.locator("button", has_text="Show conversation").click()
    explorer.locator("h4", has_text="Conversation ").wait_for()
    detail.scroll_into_view_if_needed()
    screenshot(page, "explorer-detail")
    assert page.errors == []
