"""``log.explore()``: an ipywidgets explorer for investigators.

Filters (time range, provider, model, safety outcome, detector, conversation), a compact table
of the selection (newest first by default, sortable, blocked rows highlighted) in which clicking
a row opens the entry's detail, a thread view of the conversation an entry belongs to, the
verification status of the days shown (amber while signatures are unchecked), a decrypt action
that needs a key and a reason (and is recorded as an access event), and plots that follow the
filters. Every control can also be driven from code
([`Explorer.apply`][comply_lab.lab.explore.Explorer.apply],
[`Explorer.next_page`][comply_lab.lab.explore.Explorer.next_page],
[`Explorer.select`][comply_lab.lab.explore.Explorer.select],
[`Explorer.show_conversation`][comply_lab.lab.explore.Explorer.show_conversation],
[`Explorer.decrypt`][comply_lab.lab.explore.Explorer.decrypt]), which is how the tests use it
besides a real browser.

Applying a filter, changing the order and turning a page read only what the page needs (see
[`comply_lab.lab.paging`][comply_lab.lab.paging]): the table answers in well under 200 ms on a
1,000,000-entry log (``bench/explorer_speed.py``). Verifying the days shown runs when the range
changes, and the charts, which read the whole selection, are drawn after the table (by default
only for selections up to 100,000 entries; the *charts* box turns them on).

Where widgets cannot be shown (a static HTML export, a frontend without the widget
manager), the explorer's display falls back to the current page as an HTML table.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from comply_lab._time import TimeLike, to_range
from comply_lab.crypto.signing import PublicKeyLike
from comply_lab.errors import ComplyLabError, InvalidKeyError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.keys.encryption import keys_from_text
from comply_lab.lab import plots
from comply_lab.lab.frame import to_frame
from comply_lab.lab.paging import ORDERS, Pager
from comply_lab.lab.query import Query
from comply_lab.lab.summary import STATS_COLUMNS, describe

if TYPE_CHECKING:
    from comply_lab.lab.log import Log

_DETAIL_ONLY = ("alerts", "input_tokens", "output_tokens", "metadata")
TABLE_COLUMNS = [c for c in STATS_COLUMNS if c not in (*_DETAIL_ONLY, "id")] + ["id"]
"""Columns read for the table (the rest shows in an entry's detail view)."""
CHART_LIMIT = 100_000
"""Selections up to this size get their charts drawn by default."""
_ALL = "(all)"
_GREEN, _AMBER, _RED = "#1a7f37", "#9a6700", "#cf222e"
_COLUMNS = "185px 160px 90px 70px minmax(120px, 1fr) 80px 140px"
_HEADINGS = ("time (UTC)", "model", "provider", "safety", "detectors", "latency", "conversation")


class Explorer:
    """Browse, verify and (with a key) decrypt a log's entries in a notebook.

    Args:
        log: The log to explore.
        start: First day shown initially (a date or anything a start bound accepts:
            ``"2026-01-29"``, ``"7d"``...; None: from the beginning).
        end: Last day shown initially (None: to the end).
        page_size: Rows per page of the table.
        who: Name recorded with decryptions (defaults to the operating-system user).
        public_key: The writer's public key: the status line then says whether the days
            shown verify with it. Without it the status is amber: signatures unchecked.
        checkpoint: A checkpoint the days shown are also checked against.
        charts: Draw the charts of the selection (None: when it holds at most
            [`CHART_LIMIT`][comply_lab.lab.explore.CHART_LIMIT] entries).
    """

    def __init__(
        self,
        log: Log,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        page_size: int = 20,
        who: str | None = None,
        public_key: PublicKeyLike | None = None,
        checkpoint: Checkpoint | dict[str, Any] | str | None = None,
        charts: bool | None = None,
    ) -> None:
        self.log = log
        self.public_key = public_key
        self.checkpoint = checkpoint
        self.page_size = page_size
        self.who = who
        self.page = 0
        self.selected: str | None = None
        first, last = _day(start, "start"), _day(end, "end")
        options = log.entries(first, last, columns=["provider", "model", "detectors_triggered"])
        detectors = sorted({d for fired in options["detectors_triggered"] for d in fired})
        self.start = widgets.DatePicker(description="from", value=first)
        self.end = widgets.DatePicker(description="to", value=last)
        self.provider = widgets.SelectMultiple(
            description="provider", options=sorted(options["provider"].dropna().unique()), rows=4
        )
        self.model = widgets.SelectMultiple(
            description="model", options=sorted(options["model"].dropna().unique()), rows=4
        )
        self.outcome = widgets.Dropdown(description="safety", options=[_ALL, "passed", "failed"])
        self.detector = widgets.Dropdown(description="detector", options=[_ALL, *detectors])
        self.conversation = widgets.Text(description="conversation", placeholder="id")
        self.sort = widgets.Dropdown(description="order", options=list(ORDERS))
        self.show_charts = widgets.Checkbox(description="charts", value=bool(charts))
        self.apply_button = widgets.Button(description="Apply filters", button_style="primary")
        self.previous_button = widgets.Button(description="◀ previous")
        self.next_button = widgets.Button(description="next ▶")
        self.page_label = widgets.Label()
        self.key = widgets.Password(description="key", placeholder="encryption key")
        self.reason = widgets.Text(description="reason", placeholder="case or ticket number")
        self.decrypt_button = widgets.Button(description="Decrypt entry", button_style="warning")
        self.thread_button = widgets.Button(description="Show conversation")
        self.status = widgets.HTML()
        self.table = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=_COLUMNS, grid_gap="1px 6px")
        )
        self.rows: list[widgets.Button] = []
        self._ids: list[str] = []
        self._grid = self._make_grid()
        self.detail = widgets.HTML()
        self.thread = widgets.HTML()
        self.charts = widgets.Output()
        self._applying = False
        self.apply_button.on_click(lambda _: self.apply())
        self.sort.observe(lambda _: self._reload() if not self._applying else None, "value")
        self.previous_button.on_click(lambda _: self.previous_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.decrypt_button.on_click(lambda _: self.decrypt(self.key.value, self.reason.value))
        self.thread_button.on_click(lambda _: self.show_conversation())
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.start, self.end, self.outcome, self.detector]),
                widgets.HBox(
                    [
                        self.provider,
                        self.model,
                        widgets.VBox(
                            [self.conversation, self.sort, self.show_charts, self.apply_button]
                        ),
                    ]
                ),
                self.status,
                widgets.HBox([self.previous_button, self.page_label, self.next_button]),
                self.table,
                widgets.HBox([self.key, self.reason, self.decrypt_button, self.thread_button]),
                self.detail,
                self.thread,
                self.charts,
            ]
        )
        self.widget.add_class("comply-lab-explorer")
        self.pager: Pager | None = None
        self.total = 0
        self._verified: tuple[date | None, date | None] | None = None
        self._reload()
        if charts is None:
            self.show_charts.value = self.total <= CHART_LIMIT
        self.show_charts.observe(lambda _: self._draw(), names="value")
        self._verify()
        self._draw()

    def filters(self) -> dict[str, Any]:
        """Return the current filters as arguments of `Log.entries`."""
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

        Controls: ``start``, ``end`` (dates or ISO strings), ``provider``, ``model``,
        ``outcome`` ("passed", "failed" or "(all)"), ``detector``, ``conversation``,
        ``sort`` (one of `SORTS`).
        """
        self._applying = True
        try:
            for name, value in values.items():
                if name in ("start", "end"):
                    value = _day(value, name)
                getattr(self, name).value = tuple(value) if isinstance(value, list) else value
        finally:
            self._applying = False
        self._reload()
        self._verify()
        self._draw()

    def _reload(self) -> None:
        """Count the selection and show its first page in the chosen order."""
        query = Query.build(
            self.start.value, self.end.value, columns=TABLE_COLUMNS, **self.filters()
        )
        self.pager = Pager(self.log.storage, query, self.sort.value, self.log.on_corrupt)
        self.total = self.pager.total()
        self.page = 0
        self._show_page()

    def _verify(self) -> None:
        """Verify the days shown, once per range; amber while signatures are unchecked."""
        days = (self.start.value, self.end.value)
        if days == self._verified:
            return
        self._verified = days
        report = self.log.verify(*days, public_key=self.public_key, checkpoint=self.checkpoint)
        colour = _GREEN if report.verdict == "OK" else _RED
        note = ""
        if report.verdict == "UNVERIFIED" or self.public_key is None:
            colour = _AMBER
            note = " — signatures not checked: open the explorer with public_key=..."
        text = html.escape(report.summary_line() + note)
        self.status.value = f"<b style='color:{colour}'>{text}</b>"

    @property
    def pages(self) -> int:
        """Number of pages of the current selection."""
        return max(1, -(-self.total // self.page_size))

    def page_frame(self) -> pd.DataFrame:
        """Return the rows of the current page, in the order shown."""
        if self.pager is None:
            return pd.DataFrame(columns=TABLE_COLUMNS)
        return to_frame(self.pager.page(self.page * self.page_size, self.page_size))

    def show_page(self, page: int) -> None:
        """Show page ``page`` (from 0), kept within the pages there are."""
        self.page = min(max(page, 0), self.pages - 1)
        self._show_page()

    def next_page(self) -> None:
        """Show the next page, if any."""
        self.show_page(self.page + 1)

    def previous_page(self) -> None:
        """Show the previous page, if any."""
        self.show_page(self.page - 1)

    def _show_page(self) -> None:
        """Show the current page in the table's rows (made once, filled on every page)."""
        records = self.page_frame().to_dict("records")
        self._ids = [str(record["id"]) for record in records]
        self.rows = []
        padded = [*records, *[None] * (len(self._grid) - len(records))]
        for (button, *texts), record in zip(self._grid, padded, strict=True):
            shown = "none" if record is None else None
            button.layout.display = shown
            for cell in texts:
                cell.layout.display = shown
            if record is None:
                continue
            blocked = record.get("safety_passed") is False
            button.description = f"{pd.Timestamp(record['timestamp']):%Y-%m-%d %H:%M:%S}"
            button.tooltip = f"open entry {record['id']}"
            button.button_style = "danger" if blocked else ""
            for cell, text in zip(texts, _row_texts(record), strict=True):
                cell.value = _cell(text, blocked)
            self.rows.append(button)
        # The label last: a frontend showing the new label has the new rows too.
        self.page_label.value = f"page {self.page + 1} of {self.pages} · {self.total:,} entries"

    def _make_grid(self) -> list[list[Any]]:
        """Make the table's rows once: a button (the time) and six cells each."""
        grid = []
        for index in range(self.page_size):
            button = widgets.Button(layout=widgets.Layout(width="auto", height="26px"))
            button.on_click(lambda _, i=index: self.select(self._ids[i]))
            grid.append([button, *(widgets.HTML() for _ in _HEADINGS[1:])])
        headings = [widgets.HTML(f"<b>{h}</b>") for h in _HEADINGS]
        self.table.children = [*headings, *(cell for row in grid for cell in row)]
        return grid

    def select(self, entry_id: str | None) -> None:
        """Show one entry's fields in the detail view (what clicking its row does)."""
        self.selected = entry_id
        self.thread.value = ""
        if not entry_id:
            self.detail.value = ""
            return
        entry = self.log.entry(entry_id)
        fields = {} if entry is None else entry.record()
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='overflow-wrap:anywhere'>{html.escape(str(v))}</td></tr>"
            for k, v in fields.items()
        )
        self.detail.value = f"<h4>Entry {html.escape(entry_id)}</h4><table>{rows}</table>"

    def show_conversation(self, conversation_id: str | None = None) -> pd.DataFrame:
        """Show the turns of a conversation as a thread (the selected entry's by default).

        Returns:
            The conversation's entries, oldest first.
        """
        if conversation_id is None and self.selected:
            entry = self.log.entry(self.selected)
            conversation_id = entry.conversation_id if entry is not None else None
        if not conversation_id:
            self.thread.value = "<i>the selected entry belongs to no conversation</i>"
            return pd.DataFrame()
        turns = self.log.entries(conversation_id=conversation_id)
        items = []
        for turn in turns.to_dict("records"):
            blocked = turn.get("safety_passed") is False
            verdict = f"blocked: {turn.get('block_reason') or ''}" if blocked else "served"
            colour = _RED if blocked else "#59636e"
            items.append(
                f"<li style='margin:.4em 0'><b>{pd.Timestamp(turn['timestamp']):%H:%M:%S}</b> "
                f"{html.escape(str(turn.get('model')))} · "
                f"<span style='color:{colour}'>{html.escape(verdict)}</span> · "
                f"{turn.get('latency_ms') or 0:,.0f} ms<br><code>{html.escape(turn['id'])}</code>"
                "</li>"
            )
        self.thread.value = (
            f"<h4>Conversation {html.escape(conversation_id)}: {len(turns)} turns</h4>"
            f"<ol>{''.join(items)}</ol>"
        )
        return turns

    def decrypt(self, key: str, reason: str) -> pd.DataFrame | None:
        """Decrypt the selected entry with ``key`` (text), recording the access and reason.

        Returns:
            The decrypted row, or None when nothing could be done (the detail view says why).
        """
        if not self.selected:
            self.detail.value = "<i>select an entry first (click its row)</i>"
            return None
        try:
            keys = keys_from_text(key)
        except InvalidKeyError:
            self._say(
                "This is not a key comply_lab can read. Paste the log's key ring "
                "(key-id:base64-key, as given to the logger) or the Fernet key it was "
                "written with."
            )
            return None
        try:
            result = self.log.decrypt([self.selected], keys, reason=reason, who=self.who)
        except ComplyLabError as err:
            self._say(str(err))
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

    def _say(self, message: str) -> None:
        self.detail.value = f"<b style='color:{_RED}'>{html.escape(message)}</b>"

    def _draw(self) -> None:
        """Draw the charts of the whole selection, if asked for."""
        self.charts.clear_output()
        if not self.show_charts.value or self.total < 2:
            return
        frame = self.log.entries(
            self.start.value,
            self.end.value,
            columns=["timestamp", "safety_passed", "latency_ms"],
            **self.filters(),
        )
        source = describe(self.log.storage)
        with self.charts:
            display(plots.failure_rate_over_time(frame, source=source))  # type: ignore[no-untyped-call]
            display(plots.latency_over_time(frame, source=source))  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.page_frame().to_html(index=False)
        return bundle


def _day(value: TimeLike | None, bound: str) -> date | None:
    """Return the day a start or end bound falls on (strings as queries read them)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    lo, hi = to_range(value, None) if bound == "start" else to_range(None, value)
    moment = lo if bound == "start" else hi
    return moment.date() if moment is not None else None


def _row_texts(record: dict[Any, Any]) -> list[str]:
    """Return the texts of a table row after its time: model ... conversation."""
    passed = record.get("safety_passed")
    latency = record.get("latency_ms")
    return [
        str(record.get("model") or ""),
        str(record.get("provider") or ""),
        "blocked" if passed is False else "passed" if passed else "",
        ", ".join(record.get("detectors_triggered") or []),
        "" if latency is None or pd.isna(latency) else f"{latency:,.0f} ms",
        str(record.get("conversation_id") or ""),
    ]


def _cell(text: str, blocked: bool) -> str:
    style = "padding:3px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
    if blocked:
        style += f";background:#ffebe9;color:{_RED}"
    return f"<div style='{style}' title='{html.escape(text)}'>{html.escape(text)}</div>"
