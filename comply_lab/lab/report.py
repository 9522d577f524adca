"""The ``report.html`` of an evidence bundle: what an auditor reads first.

One self-contained page (its plots are the bundle's PNG files): what was examined (the
log's location and format, the real period, the entries), what verification checked and
with which key and checkpoint, the figures (rates as percentages with their 95%
intervals, dates and durations for people, partial days marked), the tables, the plots,
and how to check all of it again without this tool. It fits a 1280-pixel window without
scrolling sideways and prints on A4 or Letter with tables inside the page.
"""

from __future__ import annotations

import getpass
import html
import math
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from comply_lab._time import utc_now

_CSS = """
:root{color-scheme:light}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;
  max-width:1100px;margin:2em auto;padding:0 1.5em}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.lead{color:#59636e;margin-top:0}
table{border-collapse:collapse;font-size:13px;margin:.6em 0 1.4em;max-width:100%}
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;
  overflow-wrap:anywhere}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.about th{width:14em}
.verdict{font-size:1.2em;font-weight:700;padding:.5em .8em;border-radius:6px;
  display:inline-block}
.ok{background:#dafbe1;color:#1a7f37}.failed{background:#ffebe9;color:#cf222e}
.unverified{background:#fff8c5;color:#9a6700}
.partial{color:#9a6700;font-style:italic}
figure{margin:1.2em 0;break-inside:avoid}figure img{max-width:100%;height:auto}
code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;white-space:pre-wrap}
@media print{
  body{max-width:none;margin:0;padding:0;font-size:11pt}
  table{font-size:8.5pt;width:100%;table-layout:fixed}
  h2{break-after:avoid}tr,figure{break-inside:avoid}
  pre{white-space:pre-wrap}
}
"""


_PERIODS = ("day", "week", "month", "period")
"""Columns of period starts, shown as dates when they start at midnight."""


@dataclass(frozen=True)
class Scope:
    """What the report covers.

    Attributes:
        title: The report's title.
        log: The log's location and format, in words (see `summary.describe`).
        first: The start of the period (the query's, or the first entry's).
        last: The end of the period (the query's, or the last entry's).
        entries: How many entries the bundle holds.
        signed: Whether the bundle carries proofs and signed sums (a signing key was
            given), so it can be checked without comply_lab.
    """

    title: str
    log: str
    first: datetime | None
    last: datetime | None
    entries: int
    signed: bool = False


@dataclass(frozen=True)
class Verification:
    """What verification checked, for the report.

    Attributes:
        verdict: ``OK``, ``FAILED``, or what kept it from proof: ``UNVERIFIED``,
            ``UNSIGNED`` or ``PENDING`` (see `VerificationReport.verdict`).
        line: `VerificationReport.summary_line`, as ``comply-lab verify`` prints it.
        summary: `VerificationReport.summary`.
        findings: `VerificationReport.to_frame`.
        key_fingerprint: The fingerprint of the public key used, if any.
        checkpoint: The checkpoint compared with (its entries, records and time), if any.
    """

    verdict: str
    line: str
    summary: dict[str, Any]
    findings: pd.DataFrame
    key_fingerprint: str | None
    checkpoint: dict[str, Any] | None


def render(
    scope: Scope,
    verification: Verification,
    headline: dict[str, str],
    tables: dict[str, pd.DataFrame],
    figures: list[str],
    version: str,
) -> str:
    """Return the report page.

    Args:
        scope: What was examined.
        verification: What verification found.
        headline: Key figures in words (label -> text), e.g. the failure rate.
        tables: Statistics tables by name, as written to ``statistics/*.csv``.
        figures: Names of the plots in ``plots/*.png``.
        version: The version of comply_lab that made the bundle.
    """
    made = utc_now()
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(scope.title)}</title><style>{_CSS}</style>",
        f"<h1>{_e(scope.title)}</h1>",
        f"<p class='lead'>Evidence about {_e(scope.log)}, {_period(scope.first, scope.last)}</p>",
        "<h2>What was examined</h2>",
        _about(
            [
                ("Log", scope.log),
                ("Period", _period(scope.first, scope.last)),
                ("Entries", f"{scope.entries:,}"),
                ("Generated", f"{_when(made)} by {_who()} with comply_lab {version}"),
            ]
        ),
        "<h2>Verification</h2>",
        _verification(verification),
        "<h2>Key figures</h2>",
        _about(list(headline.items())),
    ]
    for name, frame in tables.items():
        parts.append(f"<h2>{_e(_heading(name))}</h2>")
        parts.append(_table(frame) if len(frame) else "<p>None.</p>")
    if figures:
        parts.append("<h2>Plots</h2>")
    for name in figures:
        parts.append(
            f"<figure><img src='plots/{_e(name)}.png' alt='{_e(_heading(name))}'></figure>"
        )
    parts.append(_recheck(scope, verification))
    return "\n".join(parts) + "\n</html>\n"


def _verification(result: Verification) -> str:
    unproven = {"UNVERIFIED", "UNSIGNED", "PENDING"}  # nothing wrong found, nothing proven
    css = (
        "ok" if result.verdict == "OK" else "unverified" if result.verdict in unproven else "failed"
    )
    summary = result.summary
    rows = [
        ("Verdict", result.verdict),
        ("Entries checked", f"{summary['entries_checked']:,} (whole days)"),
        ("Segments checked", f"{summary['segments_checked']:,}"),
        ("Manifest records", f"{summary['manifest_records']:,}"),
        ("Signatures", str(summary["signatures"])),
        ("Writer's key", result.key_fingerprint or "not given: signatures not checked"),
    ]
    if result.checkpoint is not None:
        point = result.checkpoint
        rows.append(
            (
                "Checkpoint",
                f"{summary['checkpoint']}: {point['entries']:,} entries in "
                f"{point['records']:,} records, taken {_when(_parse(point['time']))}",
            )
        )
    else:
        rows.append(("Checkpoint", "not given: truncation of the newest records not checked"))
    findings = result.findings
    found = (
        _table(findings, limit=200) if len(findings) else "<p>No findings: every check passed.</p>"
    )
    return (
        f"<p class='verdict {css}'>{_e(result.verdict)}</p><p><code>{_e(result.line)}</code></p>"
        + _about(rows)
        + found
    )


def _offline() -> str:
    return (
        "<ol><li>Check this bundle without any comply_lab code: "
        "<pre>sha256sum -c SHA256SUMS\n"
        "openssl pkeyutl -verify -pubin -inkey writer.pub -rawin -in SHA256SUMS "
        "-sigfile SHA256SUMS.sig\n"
        "python3 verify_bundle.py . --public-key writer.pub</pre>"
        "the last proves every entry into the signed checkpoint (see <code>SPEC.md</code> of "
        "comply_lab); with comply_lab, <code>comply-lab verify-bundle . --public-key "
        "writer.pub</code> does all of it.</li>"
    )


def _unsigned() -> str:
    return (
        "<ol><li>Check this bundle's files: <code>sha256sum -c SHA256SUMS</code>. It was "
        "written without the writer's signing key, so it carries no signature and no proofs: "
        "anyone who can edit it can also recompute those sums.</li>"
    )


def _recheck(scope: Scope, verification: Verification) -> str:
    key = "--public-key writer.pub " if verification.key_fingerprint else ""
    point = "--checkpoint checkpoint.txt " if verification.checkpoint else ""
    start = f"--start {scope.first:%Y-%m-%dT%H:%M:%S} " if scope.first else ""
    end = f"--end {scope.last:%Y-%m-%dT%H:%M:%S}" if scope.last else ""
    return (
        "<h2>What this shows and how to check it again</h2>"
        "<p>The verification above recomputed every entry's hash and chain link, every "
        "segment's digest and Merkle root against the log's signed manifest, and every "
        "metadata trail; a finding names what differs. The statistics are computed from "
        "<code>entries.parquet</code> (hashes and metadata, never decrypted content); "
        "rates are shares of entries whose safety checks failed, with Wilson 95% "
        "intervals. Days only partly inside the period are marked <i>partial</i>.</p>"
        + (_offline() if scope.signed else _unsigned())
        + "<li>Verify the log itself, where it is stored:"
        f"<pre>comply-lab verify LOG {key}{point}{start}{end}</pre></li>"
        "<li>Recompute any figure from the entries, for example in Python:"
        "<pre>import pandas as pd\n"
        "entries = pd.read_parquet('entries.parquet')\n"
        "(~entries.safety_passed).mean()</pre></li></ol>"
    )


def _table(frame: pd.DataFrame, limit: int | None = None) -> str:
    """Render a table for people: percentages, dates, durations, thousands separators."""
    shown = frame if limit is None else frame.head(limit)
    head = "".join(f"<th>{_e(_heading(str(c)))}</th>" for c in shown.columns)
    rows = []
    for record in shown.to_dict("records"):
        cells = []
        for column, value in record.items():
            text, numeric = _cell(str(column), value)
            cells.append(f"<td class='n'>{text}</td>" if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f"<p>{len(frame) - limit:,} more in the bundle's files.</p>"
        if limit and len(frame) > limit
        else ""
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def _cell(column: str, value: Any) -> tuple[str, bool]:
    """Return a cell's HTML and whether it is a number (right-aligned)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "", False
    if column == "partial":
        return ("<span class='partial'>partial</span>" if value else ""), False
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        if column in _PERIODS and stamp == stamp.normalize():
            return f"{stamp:%d %b %Y}", False
        return _e(_when(value)), False
    if isinstance(value, pd.Timedelta):
        return _e(duration(value)), True
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        if column in ("failure_rate", "ci_low", "ci_high"):
            return f"{100 * value:.2f}%", True
        return f"{value:,.1f}", True
    return _e(str(value)), False


def duration(value: pd.Timedelta) -> str:
    """Return a duration for people: ``3 h 4 min``, ``2 d 5 h``, ``45 s``."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def rate(failures: int, entries: int, low: float, high: float) -> str:
    """Return a failure rate for people: ``7.88% (3,935 of 49,952; 95% CI 7.64% to 8.12%)``."""
    if not entries:
        return "no entries"
    return (
        f"{100 * failures / entries:.2f}% ({failures:,} of {entries:,}; "
        f"95% CI {100 * low:.2f}% to {100 * high:.2f}%)"
    )


def _period(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "no entries"
    days = (last - first).total_seconds() / 86400
    return f"{_when(first)} to {_when(last)} ({days:,.1f} days)"


def _when(moment: datetime) -> str:
    return f"{pd.Timestamp(moment).tz_convert('UTC'):%d %b %Y %H:%M} UTC"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    return f"{user}@{socket.gethostname()}"


def _heading(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _about(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='about'>{body}</table>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
