"""The email section: counts per store, messages sorted by date, recovered items, unreadable
stores. Memory is bounded by EMAIL_ROWS, not by the size of the index."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from manifest.handover.report.markup import e, kv, table, tok

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

EMAIL_ROWS = 25
_HEAD = ["Date (UTC)", "From", "To", "Subject", "Att.", "Folder / store", "SHA-256 (start)", "Key"]
_WIDTHS = [12, 14, 14, 19, 5, 12, 12, 12]


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
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


def _row(msg: dict[str, Any]) -> list[str]:
    when = str(msg.get("date_utc") or msg.get("date") or "")
    return [
        tok(when[:10]) + " " + tok(when[11:19]) if len(when) >= 19 else e(when),
        e(msg.get("from")),
        e(msg.get("to")),
        e(msg.get("subject")),
        e(len(msg.get("attachments") or [])),
        e(msg.get("folder") or msg.get("source_path")),
        tok(str(msg.get("sha256") or "")[:12]),
        e(msg.get("key") or msg.get("item")),
    ]


def _by_date(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dated messages first, oldest first; undated ones keep their index order after them."""
    return sorted(messages, key=lambda m: (not m.get("date_utc"), str(m.get("date_utc") or "")))


class _Desc:
    """Reverses the order of a date so that heapq's min-heap keeps the earliest dates."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value


def email_summary(bundle_dir: Path) -> str:
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
    for n, msg in enumerate(iter_jsonl(path)):
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
    top = ", ".join(f"{e(s)} ({n})" for s, n in senders.most_common(5) if s)
    head = kv(
        [
            ("Messages indexed", str(total)),
            ("With parse errors", str(errors)),
            ("Recovered (orphan) items", str(recovered_total)),
            ("Dates (UTC)", e(f"{first_date} – {last_date}" if first_date else "none")),
            ("Undated", str(undated)),
            ("Most frequent senders", top or "none"),
        ]
    )
    stores = table(
        ["Item", "Store", "Format", "Messages", "Parse errors", "Recovered", "Store problem"],
        [
            [e(item), e(v[0]), e(v[1]), e(v[2]), e(v[3]), e(v[4]), e(v[5])]
            for item, v in sorted(per_store.items())
        ],
        num={3, 4, 5},
        widths=[8, 30, 10, 10, 10, 10, 22],
    )
    ordered = [m for _d, _n, m in sorted(earliest, key=lambda t: (t[0].value, -t[1]))]
    out = [head, "<h3>Per store</h3>", stores, "<h3>Messages by date</h3>"]
    out.append(table(_HEAD, [_row(m) for m in ordered], widths=_WIDTHS, cls="email"))
    out.append(
        f'<p class="muted">The {len(ordered)} earliest of {total - undated} dated messages, oldest first; '
        "the full index is metadata/email-index.jsonl (<code>sealbox mail ls BUNDLE</code> lists it by "
        "date).</p>"
    )
    if recovered:
        out.append("<h3>Recovered items</h3>")
        out.append(table(_HEAD, [_row(m) for m in _by_date(recovered)], widths=_WIDTHS, cls="email"))
        if recovered_total > len(recovered):
            out.append(f'<p class="muted">{len(recovered)} of {recovered_total}, by date.</p>')
    return "".join(out)
