"""The custody report: one self-contained HTML page a detective can read, print and attach.

No scripts, no external assets: styles and the SVG timeline are inline, so the file renders the
same offline, years later, in any browser. Everything shown is read from the bundle itself.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from html import escape
from typing import TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.format import bagit
from manifest.format.timefmt import now_rfc3339, parse_rfc3339_ns, rfc3339_ns
from manifest.signing.custody import CONTINUATION, ChainLine, verify_chain

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.verify import VerifyReport

DEFAULT_ITEM_ROWS = 200
EMAIL_ROWS = 25
BINS = 60

NEXT_STEPS = [
    "Keep the device powered on and isolated from the network; do not log in, shut it down, "
    "or run other tools on it unless City IT or the police ask you to.",
    "Report the incident to City IT (the security on-call) with the case number above.",
    "If a crime is suspected, notify the police and give them this report and the export package; "
    "the package's custody log records each hand-over.",
    "Inform your supervisor and the records custodian: the evidence may fall under retention "
    "rules and legal holds.",
    "Keep the sealed bundle unchanged for follow-up, including public-records requests; "
    "hand over copies with `sealbox export`, never the only copy.",
]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;margin:2em auto;
max-width:72em;padding:0 1em}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid #333;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:.25em .4em;
text-align:left;vertical-align:top}th{background:#eee}td.num{text-align:right}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.86em;word-break:break-all}
.ok{color:#0a6b1f;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.verdict{border:3px solid;padding:.6em 1em;margin:1em 0}.verdict.ok{border-color:#0a6b1f}
.verdict.bad{border-color:#b00020}dl.kv{display:grid;grid-template-columns:14em 1fr;gap:.2em 1em}
dl.kv dt{font-weight:bold}dl.kv dd{margin:0}.muted{color:#555}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none;font-size:10.5pt}h2{break-after:avoid}
tr,.verdict,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for raw in fh:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _kv(rows: list[tuple[str, Any]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _table(head: list[str], rows: list[list[str]], num: set[int] | None = None) -> str:
    num = num or set()
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _short(fp: Any) -> str:
    """`SHA256:810f954f…c514a5836` for narrow columns; the people table has the full value."""
    text = str(fp or "")
    return text if len(text) < 30 else f"{text[:15]}…{text[-8:]}"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _ns(text: Any) -> int | None:
    try:
        return parse_rfc3339_ns(str(text)) if text else None
    except ValueError:
        return None


def _bag_info(bundle_dir: Path) -> dict[str, str]:
    path = bundle_dir / "bag-info.txt"
    return bagit.parse_bag_info(path.read_bytes()) if path.is_file() else {}


def _item_stats(items_path: Path, rows: int) -> dict[str, Any]:
    """One streaming pass: counts by collector/status, mtime range, first `rows` items."""
    counts: Counter[tuple[str, str]] = Counter()
    first: list[dict[str, Any]] = []
    total = 0
    lo = hi = None
    for item in _iter_jsonl(items_path):
        total += 1
        counts[(str(item.get("collector", "")), str(item.get("status", "")))] += 1
        if len(first) < rows:
            first.append(item)
        mt = item.get("mtime_ns")
        if isinstance(mt, int) and item.get("kind") != "volatile":
            lo = mt if lo is None else min(lo, mt)
            hi = mt if hi is None else max(hi, mt)
    return {"counts": counts, "first": first, "total": total, "lo": lo, "hi": hi}


def _histogram(items_path: Path, lo: int, hi: int) -> list[int]:
    bins = [0] * BINS
    span = max(hi - lo, 1)
    for item in _iter_jsonl(items_path):
        mt = item.get("mtime_ns")
        if isinstance(mt, int) and item.get("kind") != "volatile":
            bins[min((mt - lo) * BINS // span, BINS - 1)] += 1
    return bins


def _anchor(x: float, width: int) -> str:
    """Keep event labels inside the picture near its edges."""
    return "end" if x > width * 0.8 else "start" if x < width * 0.2 else "middle"


def timeline_svg(items_path: Path, stats: dict[str, Any], events: list[tuple[int, str, int]]) -> str:
    """File modification times (bars) and custody events (marks) on one time axis."""
    times = [t for t, _name, _seq in events]
    if stats["lo"] is not None:
        times += [stats["lo"], stats["hi"]]
    if not times:
        return '<p class="muted">No times to draw.</p>'
    lo, hi = min(times), max(times)
    if hi == lo:
        lo, hi = lo - 60 * 10**9, hi + 60 * 10**9
    width, left, right, top, plot_h = 1000, 60, 20, 20, 140
    plot_w = width - left - right

    def x(t: int) -> float:
        return left + (t - lo) * plot_w / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 300" role="img" '
        'aria-label="Timeline of file modification times and custody events">',
        "<title>File modification times and custody events</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    if stats["lo"] is not None:
        bins = _histogram(items_path, stats["lo"], stats["hi"])
        peak = max(bins) or 1
        span = max(stats["hi"] - stats["lo"], 1)
        for i, count in enumerate(bins):
            if not count:
                continue
            x0 = x(stats["lo"] + span * i // BINS)
            x1 = x(stats["lo"] + span * (i + 1) // BINS)
            h = max(count * (plot_h - 10) / peak, 1.5)
            parts.append(
                f'<rect x="{x0:.1f}" y="{top + plot_h - h:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                f'height="{h:.1f}" fill="#4a78b5"><title>{count} file(s) modified</title></rect>'
            )
        parts.append(
            f'<text x="{left}" y="14" font-size="12" fill="#4a78b5">files by modification time '
            f"(tallest bar: {peak})</text>"
        )
    for n, (t, name, seq) in enumerate(events):
        xe = x(t)
        y_label = top + plot_h + 28 + (n % 5) * 22
        parts.append(
            f'<line x1="{xe:.1f}" y1="{top}" x2="{xe:.1f}" y2="{y_label - 10}" stroke="#b00020" '
            'stroke-dasharray="3,2"/>'
            f'<circle cx="{xe:.1f}" cy="{top + plot_h}" r="4" fill="#b00020"/>'
            f'<text x="{xe:.1f}" y="{y_label}" font-size="11" text-anchor="{_anchor(xe, width)}" '
            'fill="#b00020">'
            f"{seq}. {_e(name)}</text>"
        )
    for t, anchor in ((lo, "start"), (hi, "end")):
        parts.append(
            f'<text x="{x(t):.1f}" y="{top + plot_h + 14}" font-size="11" text-anchor="{anchor}">'
            f"{_e((rfc3339_ns(t) or '')[:19].replace('T', ' '))} UTC</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _incident(bundle_dir: Path) -> str:
    path = bundle_dir / "metadata" / "incident.json"
    if not path.is_file():
        return '<p class="muted">No incident report (metadata/incident.json) in this bundle.</p>'
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return '<p class="bad">metadata/incident.json is not valid JSON.</p>'
    return _render_value(data)


def _plain(value: Any) -> str:
    """A detail value as a reader expects it, not as Python prints it."""
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _render_value(value: Any) -> str:
    if isinstance(value, dict):
        return _kv([(str(k).replace("_", " "), _render_value(v)) for k, v in value.items()])
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{_render_value(v)}</li>" for v in value) + "</ul>"
    return _e(value)


def _email_row(msg: dict[str, Any]) -> list[str]:
    return [
        _e(msg.get("date_utc") or msg.get("date")),
        _e(msg.get("from")),
        _e(msg.get("to")),
        _e(msg.get("subject")),
        _e(len(msg.get("attachments") or [])),
        _e(msg.get("folder") or msg.get("source_path")),
        f'<span class="mono">{_e(str(msg.get("sha256") or "")[:16])}</span>',
        _e(msg.get("key") or msg.get("item")),
    ]


_EMAIL_HEAD = ["Date (UTC)", "From", "To", "Subject", "Att.", "Folder / store", "SHA-256 (start)", "Key"]


def _email_summary(bundle_dir: Path) -> str:
    """Counts per store, the earliest messages by date, the recovered items and the stores that
    could not be read. Memory is bounded by EMAIL_ROWS, not by the index."""
    path = bundle_dir / "metadata" / "email-index.jsonl"
    if not path.is_file():
        return '<p class="muted">No email index (metadata/email-index.jsonl) in this bundle.</p>'
    total = errors = undated = 0
    senders: Counter[str] = Counter()
    per_store: dict[str, list[Any]] = {}  # item -> [source, format, messages, errors, recovered, note]
    earliest: list[tuple[_Desc, int, dict[str, Any]]] = []  # the EMAIL_ROWS earliest, latest on top
    recovered: list[dict[str, Any]] = []
    recovered_total = 0
    first_date = last_date = ""
    for n, msg in enumerate(_iter_jsonl(path)):
        item = str(msg.get("item"))
        store = per_store.setdefault(item, [msg.get("source_path"), msg.get("format"), 0, 0, 0, ""])
        if msg.get("entry") == "store":
            store[5] = msg.get("parse_error") or ""
            if msg.get("password_protected"):
                store[5] = ("password-protected; " + store[5]).rstrip("; ")
            continue
        total += 1
        store[2] += 1
        if msg.get("parse_error"):
            errors += 1
            store[3] += 1
        senders[str(msg.get("from") or "")] += 1
        when = msg.get("date_utc")
        if when:
            first_date = min(first_date or when, when)
            last_date = max(last_date, when)
            heapq.heappush(earliest, (_Desc(when), -n, msg))
            if len(earliest) > EMAIL_ROWS:
                heapq.heappop(earliest)
        else:
            undated += 1
        if msg.get("recovered"):
            store[4] += 1
            recovered_total += 1
            if len(recovered) < EMAIL_ROWS:
                recovered.append(msg)
    top = ", ".join(f"{_e(s)} ({n})" for s, n in senders.most_common(5) if s)
    head = _kv(
        [
            ("Messages indexed", str(total)),
            ("With parse errors", str(errors)),
            ("Recovered (orphan) items", str(recovered_total)),
            ("Dates (UTC)", _e(f"{first_date} – {last_date}" if first_date else "")),
            ("Undated", str(undated)),
            ("Most frequent senders", top),
        ]
    )
    stores = _table(
        ["Item", "Store", "Format", "Messages", "Parse errors", "Recovered", "Store problem"],
        [
            [_e(item), _e(v[0]), _e(v[1]), _e(v[2]), _e(v[3]), _e(v[4]), _e(v[5])]
            for item, v in sorted(per_store.items())
        ],
        num={3, 4, 5},
    )
    ordered = [m for _d, _n, m in sorted(earliest, key=lambda t: (t[0].value, -t[1]))]
    out = [head, "<h3>Per store</h3>", stores, "<h3>Messages by date</h3>"]
    out.append(_table(_EMAIL_HEAD, [_email_row(m) for m in ordered]))
    out.append(
        f'<p class="muted">The {len(ordered)} earliest of {total - undated} dated messages; the full index is'
        " metadata/email-index.jsonl (`sealbox mail ls BUNDLE` lists it by date).</p>"
    )
    if recovered:
        out.append("<h3>Recovered items</h3>")
        out.append(_table(_EMAIL_HEAD, [_email_row(m) for m in recovered]))
        if recovered_total > len(recovered):
            out.append(f'<p class="muted">First {len(recovered)} of {recovered_total}.</p>')
    return "".join(out)


class _Desc:
    """Reverses the order of a date so that heapq's min-heap keeps the earliest dates."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value


def timestamp_line(bundle_dir: Path, verify_report: VerifyReport | None) -> str:
    """What the report may say about the .tsr: "yes" only for a token verify fully checked."""
    from manifest.signing.timestamp import NOTE_UNVERIFIED, NOTE_VERIFIED

    if not (bundle_dir / bagit.TSR).exists() and not (bundle_dir / bagit.TSR).is_symlink():
        return "none"
    if verify_report is None:
        return f"{NOTE_UNVERIFIED} (verification was not run)"
    bad = [f for f in verify_report.findings if f.kind.startswith("timestamp-")]
    if bad:
        return f"INVALID: {bad[0].message}"
    for note in verify_report.notes:
        if note.startswith(NOTE_VERIFIED):
            return "yes, " + note
        if note.startswith(NOTE_UNVERIFIED):
            return note
    return NOTE_UNVERIFIED


def render_report(
    bundle_dir: Path,
    verify_report: VerifyReport | None,
    *,
    rows: int = DEFAULT_ITEM_ROWS,
    staged_line: bytes | None = None,
) -> str:
    """The whole report as one HTML string (memory bounded by `rows`, not by item count).
    `staged_line`: a custody line (export's own event) shown after the log, not yet in it."""
    info = _bag_info(bundle_dir)
    findings, lines = verify_chain(bundle_dir)
    if staged_line is not None:
        number = sum(1 for line in lines if line.file == CONTINUATION) + 1
        lines.append(ChainLine(CONTINUATION, number, staged_line.rstrip(b"\n"), json.loads(staged_line)))
    bad_lines: dict[str, list[str]] = {}
    for f in findings:
        bad_lines.setdefault(f.where, []).append(f.message)
    events = [line.event for line in lines if line.event]
    trusted = {a["fingerprint"]: a["trusted"] for a in (verify_report.actors if verify_report else [])}
    if verify_report and verify_report.signer:
        trusted.setdefault(verify_report.signer, verify_report.signer_trusted)
    items_path = bundle_dir / "metadata" / "items.jsonl"
    stats = _item_stats(items_path, rows)
    started = next((e.get("time") for e in events if e.get("event") == "collection-started"), None)
    sealed = next((e.get("time") for e in events if e.get("event") == "sealed"), None)
    case = info.get("External-Identifier", "")

    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Custody report {_e(case)} – {_e(bundle_dir.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Evidence custody report — case {_e(case)}</h1>",
        f'<p class="muted">Made {_e(now_rfc3339()[:19])} UTC by {TOOL_NAME} {__version__} '
        "from the bundle itself. The bundle, not this page, is the evidence.</p>",
    ]
    # -- verdict
    if verify_report is None:
        out.append('<div class="verdict bad">Verification was not run for this report.</div>')
    else:
        cls = "ok" if verify_report.ok else "bad"
        word = "VERIFIED" if verify_report.ok else "NOT VERIFIED"
        out.append(
            f'<div class="verdict {cls}"><span class="{cls}">{word}</span> — checked '
            f"{_e(verify_report.checked_at[:19].replace('T', ' '))} UTC: "
            f"{verify_report.payload_files} payload files, {_size(verify_report.payload_bytes)}, "
            f"{verify_report.items} items, {verify_report.custody_events} custody events, "
            f"{len(verify_report.findings)} finding(s).</div>"
        )
        if verify_report.findings:
            out.append(
                "<ul>"
                + "".join(f'<li class="mono">{_e(f.line())}</li>' for f in verify_report.findings[:50])
                + "</ul>"
            )
        if verify_report.notes:
            out.append(
                '<p class="muted">What the bundle alone cannot decide:</p><ul>'
                + "".join(f"<li>{_e(note)}</li>" for note in verify_report.notes)
                + "</ul>"
            )
    # -- the bundle
    out.append("<h2>Bundle</h2>")
    out.append(
        _kv(
            [
                ("Case", _e(case)),
                ("Bundle", f'<span class="mono">{_e(bundle_dir.name)}</span>'),
                ("Bundle id", f'<span class="mono">{_e(info.get("Sealbox-Bundle-Id"))}</span>'),
                ("Host", _e(info.get("Sealbox-Host"))),
                ("Organization", _e(info.get("Source-Organization"))),
                ("Collection window", f"{_e(started)} → {_e(sealed)} (UTC)"),
                (
                    "Signer fingerprint",
                    f'<span class="mono">{_e(info.get("Sealbox-Signer-Fingerprint"))}</span>',
                ),
                ("Trusted timestamp", _e(timestamp_line(bundle_dir, verify_report))),
            ]
        )
    )
    # -- people
    out.append("<h2>People and keys in the custody chain</h2>")
    actors: dict[str, dict[str, Any]] = {}
    trust_labels: dict[bool | None, str] = {
        True: '<span class="ok">trusted</span>',
        False: '<span class="bad">not trusted</span>',
    }
    for ev in events:
        actor_value = ev.get("actor")
        a: dict[str, Any] = actor_value if isinstance(actor_value, dict) else {}
        actors.setdefault(str(a.get("key")), a)
    out.append(
        _table(
            ["Name", "Role", "Organization", "Key fingerprint", "Trusted by the verifier"],
            [
                [
                    _e(a.get("name")),
                    _e(a.get("role")),
                    _e(a.get("organization")),
                    f'<span class="mono">{_e(fp)}</span>',
                    trust_labels.get(trusted.get(fp), "not checked"),
                ]
                for fp, a in actors.items()
            ],
        )
    )
    # -- custody timeline
    out.append("<h2>Custody timeline</h2>")
    crow = []
    for line in lines:
        ev = line.event or {}
        actor_value = ev.get("actor")
        a = actor_value if isinstance(actor_value, dict) else {}
        problems = bad_lines.get(line.where, [])
        holds = (
            '<span class="ok">holds</span>'
            if not problems
            else ('<span class="bad">BROKEN</span>: ' + _e("; ".join(problems)))
        )
        details_value = ev.get("details")
        details: dict[str, Any] = details_value if isinstance(details_value, dict) else {}
        detail_text = "; ".join(
            f"{str(k).replace('_', ' ')}: {_plain(v)}"
            for k, v in details.items()
            if k not in ("counts", "sources") and v not in (None, "", [], {})
        )
        crow.append(
            [
                _e(ev.get("seq")),
                _e(str(ev.get("time", ""))[:23].replace("T", " ")),
                _e(ev.get("event")),
                f"{_e(a.get('name'))}<br><span class='muted'>{_e(a.get('role'))}, {_e(a.get('organization'))}"
                f"</span><br><span class='mono' title='{_e(a.get('key'))}'>{_e(_short(a.get('key')))}</span>",
                _e(ev.get("reason"))
                + (f"<br><span class='muted'>{_e(detail_text)}</span>" if detail_text else ""),
                f"<span class='mono'>{_e(line.where)}</span>",
                holds,
            ]
        )
    out.append(
        _table(["#", "Time (UTC)", "Event", "Actor", "Reason / details", "Line", "Link and signature"], crow)
    )
    # -- picture
    out.append("<h2>Timeline picture</h2>")
    marks = [
        (t, str(e.get("event")), int(e.get("seq", 0)))
        for e in events
        if (t := _ns(e.get("time"))) is not None and isinstance(e.get("seq"), int)
    ]
    out.append(timeline_svg(items_path, stats, marks))
    # -- items
    out.append("<h2>Items by collector and status</h2>")
    out.append(
        _table(
            ["Collector", "Status", "Items"],
            [[_e(c), _e(s), str(n)] for (c, s), n in sorted(stats["counts"].items())],
            {2},
        )
    )
    out.append(f"<h2>Items (first {len(stats['first'])} of {stats['total']})</h2>")
    irows = [
        [
            _e(it.get("id")),
            _e(it.get("kind")),
            _e(it.get("collector")),
            f"<span class='mono'>{_e(it.get('source_path'))}</span>",
            _size(it.get("size")),
            _e(str(it.get("mtime") or "")[:19].replace("T", " ")),
            f"<span class='mono'>{_e(it.get('sha256'))}</span>",
            _e(it.get("status")),
        ]
        for it in stats["first"]
    ]
    out.append(
        _table(
            ["Id", "Kind", "Collector", "Original path", "Size", "Modified (UTC)", "SHA-256", "Status"],
            irows,
            {4},
        )
    )
    out.append(f'<p class="muted">The full list of {stats["total"]} items is metadata/items.jsonl.</p>')
    out.append("<h2>Email index</h2>" + _email_summary(bundle_dir))
    out.append("<h2>Incident report</h2>" + _incident(bundle_dir))
    out.append(
        "<h2>Next steps (city guide)</h2><ol>" + "".join(f"<li>{_e(s)}</li>" for s in NEXT_STEPS) + "</ol>"
    )
    out.append("</body></html>\n")
    return "\n".join(out)
