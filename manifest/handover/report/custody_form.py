"""The chain-of-custody form (one row per event: released by, received by, method, signatures,
verified), the events in words, and the people with their full key fingerprints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manifest.handover.report.markup import e, tok, when_html
from manifest.handover.report.sentences import describe
from manifest.handover.report.words import event_name, label, plain, short_fp, short_fps

if TYPE_CHECKING:
    from manifest.handover.report.chain import Chain, Entry, Transfer


def _person_html(actor: dict[str, Any]) -> str:
    """Name in bold, role and organization under it (contacts are under People and keys)."""
    name = e(actor.get("name") or "unnamed key holder")
    rest = ", ".join(e(actor[k]) for k in ("role", "organization") if actor.get(k))
    return f"<b>{name}</b>" + (f'<span class="line small">{rest}</span>' if rest else "")


def _signature(entry: Entry) -> str:
    fp = short_fp(entry.key)
    return f'<span class="line">{tok(fp[7:] if fp.startswith("SHA256:") else fp)}</span>'


def _verified_cell(entries: list[Entry]) -> str:
    """yes only when every signature of the row holds and its key is trusted by this verifier."""
    broken = [p for en in entries for p in en.problems]
    if broken:
        return '<span class="bad">NO</span><span class="line small">' + e("; ".join(broken)) + "</span>"
    if any(en.staged for en in entries):
        return '<span class="ok">yes</span><span class="line small">(this export)</span>'
    if any(en.trusted is False for en in entries):
        return '<span class="bad">no</span><span class="line small">key not trusted</span>'
    if any(en.trusted is None for en in entries):
        return 'holds<span class="line small">key not checked</span>'
    return '<span class="ok">yes</span>'


def _method(details: dict[str, Any]) -> str:
    parts = [
        f'<span class="line">{e(label(k))}: {e(plain(details[k]))}</span>'
        for k in ("method", "tracking", "seal", "storage_location", "location", "destination", "disposition")
        if details.get(k) not in (None, "", [], {})
    ]
    return "".join(parts) or '<span class="muted">—</span>'


def _parties(entry: Entry, chain: Chain, transfer: Transfer | None) -> tuple[str, str | None, list[Entry]]:
    """(released by, received by, the events whose signatures the row shows); received None:
    custody did not change hands, and the first cell names who acted."""
    d = entry.details
    if entry.kind == "transferred":
        if transfer is not None and transfer.accepted is not None:
            accepted = transfer.accepted
            received = _person_html(accepted.actor) + (
                f'<span class="line small">accepted {e(accepted.time[:19].replace("T", " "))}'
                f" (event {e(accepted.seq)})</span>"
            )
            return _person_html(entry.actor), received, [entry, accepted]
        received = (
            f"<b>{e(d.get('to') or 'not named')}</b>" + '<span class="line bad">OPEN: not accepted</span>'
        )
        return _person_html(entry.actor), received, [entry]
    if entry.kind == "accepted":
        given = chain.by_seq(d.get("transfer_seq"))
        released = _person_html(given.actor) if given else e(f"event {d.get('transfer_seq')}")
        return released, _person_html(entry.actor), [entry]
    if entry.kind == "exported":
        # In the receiver's copy, the `received` event of this package completes the hand-over.
        got = next(
            (
                x
                for x in chain.entries
                if x.kind == "received"
                and d.get("package")
                and x.details.get("package") == d.get("package")
                and (x.seq or 0) > (entry.seq or 0)
            ),
            None,
        )
        if got is not None:
            received = _person_html(got.actor) + (
                f'<span class="line small">received {e(got.time[:19].replace("T", " "))} '
                f"(event {e(got.seq)})</span>"
            )
            return _person_html(entry.actor), received, [entry, got]
        received = (
            f"<b>{e(d.get('recipient') or 'not named')}</b>"
            + '<span class="line small">signed package; its receipt is in the receiver\'s copy</span>'
        )
        return _person_html(entry.actor), received, [entry]
    if entry.kind == "received":
        name = chain.name_of(d.get("exporter"))
        released = f"<b>{e(name)}</b>" if name else tok(short_fp(d.get("exporter")))
        return released, _person_html(entry.actor), [entry]
    if entry.kind == "collection-started":
        released = (
            f"<b>{e(d.get('host') or 'the host')}</b>" + '<span class="line small">source device</span>'
        )
        return released, _person_html(entry.actor), [entry]
    if entry.kind == "disposed":
        return _person_html(entry.actor), e(d.get("to") or plain(d.get("disposition"))), [entry]
    by = _person_html(entry.actor) + '<span class="line small">custody did not change hands</span>'
    return by, None, [entry]


CUSTODY_HEAD = [
    "Date / time (UTC)",
    "Event, record and purpose",
    "Released by",
    "Received by",
    "Method, seal, storage",
    "Signatures (key SHA256)",
    "Verified",
]
CUSTODY_WIDTHS = [10, 26, 15, 15, 13, 12, 9]


def custody_table(chain: Chain) -> str:
    """The chain-of-custody form: one row per event, both parties of each hand-over; an event
    that is no hand-over names its actor across the two party columns."""
    transfers = {id(t.given): t for t in chain.transfers()}
    out = ['<table class="custody"><colgroup>']
    out += [f'<col style="width:{w}%">' for w in CUSTODY_WIDTHS]
    out.append(
        "</colgroup><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in CUSTODY_HEAD) + "</tr></thead><tbody>"
    )
    for entry in chain.entries:
        released, received, signed = _parties(entry, chain, transfers.get(id(entry)))
        purpose = short_fps(str(entry.details.get("purpose") or entry.reason or ""))
        event = (
            f"<b>{e(entry.seq)}. {e(event_name(entry.kind))}</b>"
            f'<span class="line">{tok(entry.where)}</span>'
            + (f'<span class="line">{e(purpose)}</span>' if purpose else "")
        )
        parties = (
            f'<td colspan="2">{released}</td>'
            if received is None
            else f"<td>{released}</td><td>{received}</td>"
        )
        out.append(
            f'<tr id="custody-{e(entry.seq)}"><td>{when_html(entry.time)}</td><td>{event}</td>{parties}'
            f"<td>{_method(entry.details)}</td><td>{''.join(_signature(x) for x in signed)}</td>"
            f"<td>{_verified_cell(signed)}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def events_in_words(chain: Chain) -> str:
    out = ['<ol class="events">']
    for entry in chain.entries:
        said = describe(entry, chain)
        when = entry.time[:19].replace("T", " ")
        problems = (
            '<span class="line bad">This line does NOT hold: ' + e("; ".join(entry.problems)) + "</span>"
            if entry.problems
            else ""
        )
        quoted = "".join(f"<blockquote>{e(line)}</blockquote>" for line in said.lines)
        out.append(
            f'<li id="event-{e(entry.seq)}"><b>{e(entry.seq)}.</b> {tok(when)} UTC — {e(said.sentence)}'
            f' <span class="small">({tok(entry.where)})</span>{quoted}{problems}</li>'
        )
    out.append("</ol>")
    return "".join(out)


def people(chain: Chain) -> str:
    labels: dict[bool | None, str] = {
        True: '<span class="ok">trusted</span>',
        False: '<span class="bad">NOT trusted</span>',
    }
    out = []
    for fp, actor in chain.actors.items():
        trust = labels.get(chain.trusted.get(fp), "not checked")
        out.append(
            f'<div class="person">{_person_html(actor)}'
            + (
                f'<span class="line small">contact: {e(actor["contact"])}</span>'
                if actor.get("contact")
                else ""
            )
            + f'<span class="line">key {tok(fp, "fp")}</span>'
            f'<span class="line small">trusted by the verifier of this report: {trust}</span></div>'
        )
    return "".join(out) or '<p class="muted">No readable custody event names a key.</p>'
