"""``log.explore()``: an ipywidgets explorer for investigators.

Filters (time range, provider, model, safety outcome, detector, conversation), a paged
table, an entry detail view, the verification status of the days shown, a decrypt action
that needs a key and a reason (and is recorded as an access event), and plots that
follow the filters. Every control can also be driven from code (:meth:`Explorer.apply`,
:meth:`Explorer.next_page`, :meth:`Explorer.select`, :meth:`Explorer.decrypt`), which is
how the tests use it.

Where widgets cannot be shown (a static HTML export, a frontend without the widget
manager), the explorer's display falls back to the current page as an HTML table.
"""

from __future__ import annotations

import html
from datetime import date
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import ComplyLabError
from comply_lab.keys.encryption import keys_from_text
from comply_lab.lab import plots
from comply_lab.lab.summary import STATS_COLUMNS

if TYPE_CHECKING:
    from comply_lab.lab.log import Log

_DETAIL_ONLY = ("alerts", "input_tokens", "output_tokens", "metadata")
TABLE_COLUMNS = [c for c in STATS_COLUMNS if c not in (*_DETAIL_ONLY, "id")] + ["id"]
"""Columns of the paged table (the rest shows in an entry's detail view)."""
_ALL = "(all)"


class Explorer:
    """Browse, verify and (with a key) decrypt a log's entries in a notebook.

    Args:
        log: The log to explore.
        start: First day shown initially (None: from the beginning).
        end: Last day shown initially (None: to the end).
        page_size: Rows per page of the table.
        who: Name recorded with decryptions (defaults to the operating-system user).
        public_key: The writer's public key: the status line then says whether the days
            shown verify with it (a signed log shown without it is ``UNVERIFIED``).
    """

    def __init__(
        self,
        log: Log,
        start: date | None = None,
        end: date | None = None,
        *,
        page_size: int = 20,
        who: str | None = None,
        public_key: PublicKeyLike | None = None,
    ) -> None:
        self.log = log
        self.public_key = public_key
        self.page_size = page_size
        self.who = who
        self.page = 0
        self.selected: str | None = None
        options = log.entries(start, end, columns=["provider", "model", "detectors_triggered"])
        detectors = sorted({d for fired in options["detectors_triggered"] for d in fired})
        self.start = widgets.DatePicker(description="from", value=start)
        self.end = widgets.DatePicker(description="to", value=end)
        self.provider = widgets.SelectMultiple(
            description="provider", options=sorted(options["provider"].dropna().unique()), rows=4
        )
        self.model = widgets.SelectMultiple(
            description="model", options=sorted(options["model"].dropna().unique()), rows=4
        )
        self.outcome = widgets.Dropdown(description="safety", options=[_ALL, "passed", "failed"])
        self.detector = widgets.Dropdown(description="detector", options=[_ALL, *detectors])
        self.conversation = widgets.Text(description="conversation", placeholder="id")
        self.apply_button = widgets.Button(description="Apply filters", button_style="primary")
        self.previous_button = widgets.Button(description="◀ previous")
        self.next_button = widgets.Button(description="next ▶")
        self.page_label = widgets.Label()
        self.entry = widgets.Dropdown(description="entry", options=[])
        self.key = widgets.Password(description="key", placeholder="encryption key")
        self.reason = widgets.Text(description="reason", placeholder="case or ticket number")
        self.decrypt_button = widgets.Button(description="Decrypt entry", button_style="warning")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.detail = widgets.HTML()
        self.charts = widgets.Output()
        self.apply_button.on_click(lambda _: self.apply())
        self.previous_button.on_click(lambda _: self.previous_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.entry.observe(lambda change: self.select(change["new"]), names="value")
        self.decrypt_button.on_click(lambda _: self.decrypt(self.key.value, self.reason.value))
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.start, self.end, self.outcome, self.detector]),
                widgets.HBox(
                    [
                        self.provider,
                        self.model,
                        widgets.VBox([self.conversation, self.apply_button]),
                    ]
                ),
                self.status,
                widgets.HBox([self.previous_button, self.page_label, self.next_button]),
                self.table,
                widgets.HBox([self.entry, self.key, self.reason, self.decrypt_button]),
                self.detail,
                self.charts,
            ]
        )
        self.frame = pd.DataFrame()
        self.apply()

    def filters(self) -> dict[str, Any]:
        """Return the current filters as arguments of :meth:`Log.entries`."""
        chosen: dict[str, Any] = {}
        if self.provider.value:
            chosen["provider"] = list(self.provider.value)
        if self.model.value:
            chosen["model"] = list(self.model.value)
        if self.outcome.value != _ALL:
            chosen["safety_passed"] = self.outcome.value == "passed"
        if self.detector.value != _ALL:
            chosen["detector"] = self.detector.value
        if self.conversation.value.strip():
            chosen["conversation_id"] = self.conversation.value.strip()
        return chosen

    def apply(self, **values: Any) -> None:
        """Set the controls given, then reload the table, status and plots.

        Controls: ``start``, ``end``, ``provider``, ``model``, ``outcome`` ("passed",
        "failed" or "(all)"), ``detector``, ``conversation``.
        """
        for name, value in values.items():
            getattr(self, name).value = tuple(value) if isinstance(value, list) else value
        self.frame = self.log.entries(self.start.value, self.end.value, **self.filters())
        self.page = 0
        report = self.log.verify(self.start.value, self.end.value, public_key=self.public_key)
        colour = {"OK": "#1a7f37", "UNVERIFIED": "#9a6700"}.get(report.verdict, "#cf222e")
        self.status.value = f"<b style='color:{colour}'>{html.escape(report.summary_line())}</b>"
        self._show_page()
        self._draw()

    @property
    def pages(self) -> int:
        """Number of pages of the current selection."""
        return max(1, -(-len(self.frame) // self.page_size))

    def page_frame(self) -> pd.DataFrame:
        """Return the rows of the current page."""
        begin = self.page * self.page_size
        columns = [c for c in TABLE_COLUMNS if c in self.frame.columns]
        return self.frame.iloc[begin : begin + self.page_size][columns]

    def next_page(self) -> None:
        """Show the next page, if any."""
        self.page = min(self.page + 1, self.pages - 1)
        self._show_page()

    def previous_page(self) -> None:
        """Show the previous page, if any."""
        self.page = max(self.page - 1, 0)
        self._show_page()

    def _show_page(self) -> None:
        rows = self.page_frame()
        self.page_label.value = (
            f"page {self.page + 1} of {self.pages} · {len(self.frame):,} entries"
        )
        self.table.value = rows.to_html(index=False, max_rows=self.page_size)
        self.entry.options = list(rows["id"]) if "id" in rows else []

    def select(self, entry_id: str | None) -> None:
        """Show one entry's fields in the detail view."""
        self.selected = entry_id
        if not entry_id:
            self.detail.value = ""
            return
        entry = self.log.entry(entry_id)
        fields = {} if entry is None else entry.to_dict()
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in fields.items()
        )
        self.detail.value = f"<table>{rows}</table>"

    def decrypt(self, key: str, reason: str) -> pd.DataFrame | None:
        """Decrypt the selected entry with ``key`` (text), recording the access and reason.

        Returns:
            The decrypted row, or None when nothing could be done (the detail view says why).
        """
        if not self.selected:
            self.detail.value = "<i>select an entry first</i>"
            return None
        try:
            keys = keys_from_text(key)
            result = self.log.decrypt([self.selected], keys, reason=reason, who=self.who)
        except ComplyLabError as err:
            self.detail.value = f"<b style='color:#cf222e'>{html.escape(str(err))}</b>"
            return None
        row = result.iloc[0]
        if row["decrypted"]:
            self.detail.value = (
                f"<p><b>input</b>: {html.escape(str(row['input']))}</p>"
                f"<p><b>output</b>: {html.escape(str(row['output']))}</p>"
                "<p><i>this access was recorded</i></p>"
            )
        else:
            self.detail.value = f"<b>not decrypted</b>: {html.escape(str(row['note']))}"
        return result

    def _draw(self) -> None:
        self.charts.clear_output()
        if len(self.frame) < 2:
            return
        with self.charts:
            display(plots.failure_rate_over_time(self.frame, source=str(self.log.storage)))  # type: ignore[no-untyped-call]
            display(plots.latency_over_time(self.frame, source=str(self.log.storage)))  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.page_frame().to_html(index=False)
        return bundle
