"""The report page: one self-contained HTML file a detective reads, prints and files.

No scripts, no external assets: styles and figures are inline, so the file renders the same
offline, years later, in any browser. Everything shown is read from the bundle itself. Printed
(or made into a PDF), every page carries the case, the bundle id, the verdict and its number.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.format import bagit
from manifest.format.timefmt import now_rfc3339, parse_rfc3339_ns
from manifest.handover.next_steps import next_steps
from manifest.handover.report.chain import Chain, read_chain
from manifest.handover.report.custody_form import custody_table, events_in_words, people
from manifest.handover.report.email import email_summary, iter_jsonl
from manifest.handover.report.incident import PARTIES, Incident, as_next_steps_input, read_incident
from manifest.handover.report.markup import e, kv, path_html, size, table, tok, when_html
from manifest.handover.report.summary import first_page, verdict, verdict_word
from manifest.handover.report.timeline import custody_svg, files_svg, histogram
from manifest.handover.report.words import label, person, plain

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.verify import VerifyReport

DEFAULT_ITEM_ROWS = 200

# Printed, every page carries the case and bundle id, the verdict and "Page N of M".
PAGE = """
@page{{size:A4;margin:17mm 14mm 16mm 14mm;
@top-left{{content:{left};font:8pt "DejaVu Sans",sans-serif;color:#333}}
@top-right{{content:{right};font:bold 9pt "DejaVu Sans",sans-serif;color:{colour}}}
@bottom-left{{content:{foot};font:7pt "DejaVu Sans",sans-serif;color:#333}}
@bottom-right{{content:"Page " counter(page) " of " counter(pages);font:8pt "DejaVu Sans",sans-serif}}}}
"""
CSS = """
*{box-sizing:border-box}
body{font:10pt/1.4 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
margin:1.5em auto;max-width:182mm;padding:0 1mm}
h1{font-size:16pt;margin:.2em 0}h2{font-size:12.5pt;border-bottom:2px solid #333;margin:1.4em 0 .4em}
h3{font-size:10.5pt;margin:1em 0 .3em}
table{border-collapse:collapse;width:100%;margin:.4em 0;table-layout:fixed;font-size:8.5pt}
th,td{border:1px solid #999;padding:2px 3px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#e8e8e8;font-size:7.5pt;overflow-wrap:normal}
table.custody{font-size:8pt}table.custody .tok{font-size:6.5pt}
td.num{text-align:right}thead{display:table-header-group}
.tok{white-space:nowrap;font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:7pt;
overflow-wrap:normal}
.tok.hash{font-size:6.5pt}.path{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:7pt;
overflow-wrap:anywhere}
.fp{white-space:nowrap;font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:7.5pt}
.line{display:block}.small{font-size:7.5pt;color:#444}
.ok{color:#0a6b1f;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.verdict{border:3px solid;padding:.5em .8em;margin:.8em 0;font-size:11pt}.verdict.ok{border-color:#0a6b1f}
.verdict.bad{border-color:#b00020}
dl.kv{display:grid;grid-template-columns:38mm 1fr;gap:.15em .8em;margin:.4em 0}
dl.kv dt{font-weight:bold}dl.kv dd{margin:0;overflow-wrap:anywhere}.muted{color:#555}
svg.figure{width:100%;height:auto;display:block;margin:.4em 0}
ol.events{padding-left:0;list-style:none}ol.events li{margin:.25em 0;break-inside:avoid}
blockquote{margin:.2em 0 .2em 1.5em;padding-left:.5em;border-left:3px solid #bbb;white-space:pre-wrap}
.person{border:1px solid #bbb;padding:.3em .5em;margin:.3em 0;break-inside:avoid}
.first-page{break-after:page}
code{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:8pt}
@media print{body{margin:0;max-width:none;padding:0}h2,h3{break-after:avoid}
tr,.verdict,svg,dl.kv{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def _css_string(text: str) -> str:
    """A CSS string literal: every character outside a safe set as a CSS escape."""
    # A hex escape ends at the white space after it, which the escape consumes: always give it one.
    safe = "".join(c if c.isalnum() or c in " -_.:,;()/#+" else f"\\{ord(c):06x} " for c in text)
    return f'"{safe}"'


def _ns(text: Any) -> int | None:
    try:
        return parse_rfc3339_ns(str(text)) if text else None
    except ValueError:
        return None


def _bag_info(bundle_dir: Path) -> dict[str, str]:
    path = bundle_dir / "bag-info.txt"
    try:
        return bagit.parse_bag_info(path.read_bytes()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _item_stats(items_path: Path, rows: int) -> dict[str, Any]:
    """One streaming pass: counts by collector/status, mtime range, first `rows` items."""
    counts: Counter[tuple[str, str]] = Counter()
    first: list[dict[str, Any]] = []
    total = 0
    lo = hi = None
    for item in iter_jsonl(items_path):
        total += 1
        counts[(str(item.get("collector", "")), str(item.get("status", "")))] += 1
        if len(first) < rows:
            first.append(item)
        mt = item.get("mtime_ns")
        if isinstance(mt, int) and item.get("kind") != "volatile":
            lo = mt if lo is None else min(lo, mt)
            hi = mt if hi is None else max(hi, mt)
    return {"counts": counts, "first": first, "total": total, "lo": lo, "hi": hi}


def _mtimes(items_path: Path) -> Any:
    for item in iter_jsonl(items_path):
        mt = item.get("mtime_ns")
        if isinstance(mt, int) and item.get("kind") != "volatile":
            yield mt


_INCIDENT_ROWS = (
    ("reporter.name", "Reported by"),
    ("reporter.role", "Role"),
    ("reporter.department", "Department"),
    ("reporter.contact", "Contact"),
    ("discovery.when", "Discovered"),
    ("discovery.how", "How it was discovered"),
    ("observed", "What was observed"),
    ("affected.systems", "Affected systems"),
    ("affected.accounts", "Affected accounts"),
    ("crime_suspected", "Crime suspected"),
    ("legal_authority.basis", "Legal basis"),
    ("legal_authority.reference", "Warrant / reference"),
    ("legal_authority.issued_by", "Issued by"),
    ("legal_authority.date", "Issued on"),
)


def _answer(incident: Incident, dotted: str) -> str:
    value = incident.get(dotted)
    if value in (None, "", []):
        return '<span class="muted">not answered</span>'
    source = incident.sources.get(dotted)
    return e(plain(value)) + (
        f'<span class="line small">{e(source)}</span>' if source and "event" in source else ""
    )


def _party_order(party: str) -> tuple[int, str]:
    order = list(PARTIES)
    return (order.index(party) if party in order else len(order), party)


def incident_section(incident: Incident) -> str:
    if incident.problem:
        return f'<p class="bad">{e(incident.problem)}</p>'
    if not incident.present and not incident.additions:
        return '<p class="muted">No incident report (metadata/incident.json) in this bundle.</p>'
    out = []
    if not incident.present:
        out.append(
            '<p class="muted">No incident report was sealed with the bundle; what follows was added '
            "later.</p>"
        )
    known = {dotted for dotted, _l in _INCIDENT_ROWS}
    rows = [
        (name, _answer(incident, dotted))
        for dotted, name in _INCIDENT_ROWS
        if (
            incident.present
            and (not dotted.startswith("legal_authority.") or "legal_authority" in incident.data)
        )
        or incident.get(dotted) not in (None, "", [])
    ]
    for key, value in incident.data.items():  # fields a newer sealbox writes, in words
        if key in ("notifications", "reporter", "discovery", "affected", *(k.split(".")[0] for k in known)):
            continue
        if key in ("format", "case", "recorded_at", "missing", "provided_by"):
            continue
        rows.append((label(key).capitalize(), e(plain(value))))
    out.append(kv(rows))
    parties = incident.get("notifications")
    if isinstance(parties, dict) and parties:
        prow = []
        for party, state in sorted(parties.items(), key=lambda kv: _party_order(kv[0])):
            state = state if isinstance(state, dict) else {}
            notified = state.get("notified")
            word = "yes" if notified is True else "no" if notified is False else "not answered"
            src = incident.sources.get(f"notifications.{party}.notified") or ""
            prow.append(
                [
                    e(PARTIES.get(party, label(party))),
                    f'<span class="{"ok" if notified else "muted"}">{word}</span>',
                    e(state.get("when") or ""),
                    e(state.get("who") or ""),
                    e(src),
                ]
            )
        out.append("<h3>Who has been notified</h3>")
        out.append(
            table(
                ["Party", "Notified", "When", "Who / reference", "Recorded in"],
                prow,
                widths=[18, 10, 20, 22, 30],
            )
        )
    if incident.additions:
        out.append("<h3>Later additions (signed custody notes)</h3><ul>")
        for entry in incident.additions:
            text = str(entry.details.get("text") or "").strip()
            out.append(
                f"<li>Event {e(entry.seq)}, {e(entry.time[:19].replace('T', ' '))} UTC, "
                f"{e(person(entry.actor))}"
                + (f"<blockquote>{e(text)}</blockquote>" if text else "")
                + "</li>"
            )
        out.append("</ul>")
    missing = incident.missing()
    if missing:
        out.append('<p class="muted">Not answered: ' + e(", ".join(label(m) for m in missing)) + ".</p>")
    return "".join(out)


def _commands(text: str) -> str:
    """The guide's `command` spans as code, the rest as text."""
    parts = text.split("`")
    return "".join(f"<code>{e(p)}</code>" if n % 2 else e(p) for n, p in enumerate(parts))


def steps_section(bundle_dir: Path, case: str, incident: Incident, verified: bool, chain: Chain) -> str:
    """The guide's steps for this bundle (manifest/handover/next_steps.py, never a copy of them)."""
    started = chain.first("collection-started")
    details = started.details if started else {}
    device = details.get("device") if isinstance(details.get("device"), dict) else {}
    live = not details.get("root") and (device or {}).get("source") != "image"
    sealed = chain.first("sealed")
    steps = next_steps(
        bundle_dir,
        case,
        as_next_steps_input(incident),
        verified,
        key=sealed.key if sealed else None,
        live=bool(live),
    )
    done = ' <span class="ok">(done)</span>'
    items = "".join(
        f"<li><b>{e(s.title)}</b>{done if s.done else ''}<br>{_commands(s.detail)}</li>" for s in steps
    )
    return f"<ol>{items}</ol>"


def items_section(stats: dict[str, Any]) -> str:
    out = [
        table(
            ["Collector", "Status", "Items"],
            [[e(c), e(s), str(n)] for (c, s), n in sorted(stats["counts"].items())],
            num={2},
            widths=[60, 25, 15],
        )
    ]
    out.append(f"<h3>Items (first {len(stats['first'])} of {stats['total']})</h3>")
    rows = [
        [
            tok(it.get("id")),
            path_html(it.get("source_path"))
            + f'<span class="line">{tok(it.get("sha256") or "", "tok hash")}</span>',
            e(it.get("collector")),
            size(it.get("size")),
            when_html(str(it.get("mtime") or "")),
            e(it.get("status")),
        ]
        for it in stats["first"]
    ]
    out.append(
        table(
            ["Id", "Original path / SHA-256", "Collector", "Size", "Modified (UTC)", "Status"],
            rows,
            num={3},
            widths=[8, 52, 13, 9, 11, 7],
        )
    )
    out.append(f'<p class="muted">The full list of {stats["total"]} items is metadata/items.jsonl.</p>')
    return "".join(out)


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
    chain = read_chain(bundle_dir, verify_report, staged_line)
    incident = read_incident(bundle_dir, chain)
    items_path = bundle_dir / "metadata" / "items.jsonl"
    stats = _item_stats(items_path, rows)
    case = info.get("External-Identifier", "")
    bundle_id = info.get("Sealbox-Bundle-Id") or bundle_dir.name
    word = verdict_word(verify_report)
    header = PAGE.format(
        left=_css_string(f"Case {case} · bundle id {bundle_id}"),
        right=_css_string(word),
        colour="#0a6b1f" if word == "VERIFIED" else "#b00020",
        foot=_css_string(f"{TOOL_NAME} custody report · {bundle_dir.name}"),
    )
    open_ids = {id(t.given) for t in chain.open_transfers()}
    marks = [(t, en.kind, id(en) in open_ids) for en in chain.entries if (t := _ns(en.time)) is not None]
    lo, hi = stats["lo"], stats["hi"]
    if lo is not None and hi is not None and hi - lo < 60 * 10**9:
        lo, hi = lo - 30 * 10**9, hi + 30 * 10**9
    bins = histogram(_mtimes(items_path), lo, hi) if lo is not None and hi is not None else []
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Custody report {e(case)} – {e(bundle_dir.name)} – {e(word)}</title>",
        f"<style>{header}{CSS}</style></head><body>",
        '<div class="first-page">',
        f"<h1>Evidence custody report — case {e(case)}</h1>",
        f'<p class="muted">Made {e(now_rfc3339()[:19].replace("T", " "))} UTC by {TOOL_NAME} {__version__} '
        "from the bundle itself. The bundle, not this page, is the evidence.</p>",
        verdict(verify_report),
        first_page(bundle_dir, info, chain, stats, verify_report),
        "</div>",
        "<h2>Chain of custody</h2>",
        '<p class="muted">One row per signed custody event. “Verified” is yes when the line\'s hash link and '
        "signature hold and its key is trusted by whoever made this report; signatures are the signing keys' "
        "SHA256 fingerprints (in full under “People and keys”).</p>",
        custody_table(chain),
        "<h2>Custody events in words</h2>",
        events_in_words(chain),
        "<h2>Timeline</h2>",
        custody_svg(marks),
        files_svg(lo, hi, bins),
        "<h2>People and keys in the custody chain</h2>",
        people(chain),
        "<h2>Incident report</h2>",
        incident_section(incident),
        "<h2>Next steps (city incident guide)</h2>",
        steps_section(bundle_dir, case, incident, bool(verify_report and verify_report.ok), chain),
        "<h2>Items by collector and status</h2>",
        items_section(stats),
        "<h2>Email index</h2>",
        email_summary(bundle_dir),
        "</body></html>\n",
    ]
    return "\n".join(out)
