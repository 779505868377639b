"""The first page, read in a minute: the verdict, what was collected from which device, when,
by whom, who verified it, who holds it now and which transfers are still open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.format import bagit
from manifest.handover.report.markup import e, kv, size, tok
from manifest.handover.report.words import authority_text, label, person, plain

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.handover.report.chain import Chain
    from manifest.verify import VerifyReport

FINDINGS_SHOWN = 50
_NOT_RECORDED = '<span class="muted">not recorded</span>'


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


def verdict_word(verify_report: VerifyReport | None) -> str:
    if verify_report is None:
        return "NOT CHECKED"
    return "VERIFIED" if verify_report.ok else "NOT VERIFIED"


def _open_transfers(chain: Chain) -> str:
    open_ = chain.open_transfers()
    if not open_:
        return "none" if chain.transfers() else "none (no transfer recorded)"
    items = [
        f"<li><b>event {e(t.given.seq)}</b>, {e(t.given.time[:19].replace('T', ' '))} UTC: "
        f"{e(person(t.given.actor))} to {e(t.given.details.get('to') or 'not named')} — not accepted</li>"
        for t in open_
    ]
    return f'<span class="bad">{len(open_)} open</span><ul>' + "".join(items) + "</ul>"


def _holder(chain: Chain) -> str:
    """Who holds the evidence, as far as the log says: the last hand-over's receiver (an accept
    that completes no transfer changes nothing)."""
    completing = {id(t.accepted) for t in chain.transfers() if t.accepted is not None}
    holder = ""
    for entry in chain.entries:
        if entry.kind in ("collection-started", "received") or id(entry) in completing:
            holder = person(entry.actor)
        elif entry.kind == "transferred":
            holder = f"{entry.details.get('to') or 'not named'} (transfer not yet accepted)"
        elif entry.kind == "disposed":
            holder = f"nobody: {plain(entry.details.get('disposition'))}"
    return holder or "not recorded"


def _verified_by(chain: Chain, verify_report: VerifyReport | None) -> str:
    lines = []
    if verify_report is None:
        lines.append('<span class="bad">this report did not verify the bundle</span>')
    else:
        cls = "ok" if verify_report.ok else "bad"
        signer = "trusted" if verify_report.signer_trusted else "NOT trusted"
        lines.append(
            f'<span class="{cls}">{verdict_word(verify_report)}</span> when this report was made '
            f"({e(verify_report.checked_at[:19].replace('T', ' '))} UTC, {TOOL_NAME} {__version__}); "
            f"{len(verify_report.findings)} finding(s); the sealing key is {signer} by whoever made "
            "this report"
        )
    for entry in chain.entries:
        if entry.kind == "received" and entry.details.get("verified") is True:
            lines.append(
                f"verified on receipt by {e(person(entry.actor))}, {e(entry.time[:19].replace('T', ' '))} UTC"
            )
        elif entry.kind == "verified":
            lines.append(f"verified by {e(person(entry.actor))}, {e(entry.time[:19].replace('T', ' '))} UTC")
    return "<br>".join(lines)


def first_page(
    bundle_dir: Path,
    info: dict[str, str],
    chain: Chain,
    stats: dict[str, Any],
    verify_report: VerifyReport | None,
) -> str:
    """What, whose, when, verified by whom, open transfers: readable in a minute."""
    started = chain.first("collection-started")
    sealed = chain.first("sealed")
    exhibit = chain.exhibit()
    device = (started.details.get("device") if started else None) or {}
    what = f"{stats['total']} item(s) collected"
    if verify_report is not None:
        what += f"; {verify_report.payload_files} file(s), {size(verify_report.payload_bytes)} copied"
    if started and started.details.get("profile"):
        what += f"; profile {started.details['profile']}"
    whose = info.get("Sealbox-Host") or (started.details.get("host") if started else "") or "not recorded"
    if isinstance(device, dict):
        ids = [
            f"{label(k)} {plain(device[k])}"
            for k in ("vendor", "model", "serial", "asset_tag")
            if device.get(k) not in (None, "", [])
        ]
        if ids:
            whose += " (" + ", ".join(ids) + ")"
    if info.get("Source-Organization"):
        whose += f", {info['Source-Organization']}"
    if started and (
        started.details.get("root") or (isinstance(device, dict) and device.get("source") == "image")
    ):
        whose += "; collected from a disk image (a dead box), not from the running machine"
    authority = started.details.get("authority") if started else None
    rows = [
        ("Case", f"<b>{e(info.get('External-Identifier'))}</b>"),
        ("Exhibit", _exhibit(exhibit)),
        ("What", e(what)),
        ("Whose (device)", e(whose)),
        (
            "When (UTC)",
            f"collected {e(started.time[:19].replace('T', ' ') if started else '?')} → sealed "
            f"{e(sealed.time[:19].replace('T', ' ') if sealed else 'never')}",
        ),
        ("Collected by", e(person(started.actor)) if started else "not recorded"),
        (
            "Legal authority",
            e(authority_text(authority)) if authority else '<span class="muted">not recorded</span>',
        ),
        ("Verified", _verified_by(chain, verify_report)),
        ("Held now by", e(_holder(chain))),
        ("Open transfers", _open_transfers(chain)),
        ("Trusted timestamp", e(timestamp_line(bundle_dir, verify_report))),
        ("Bundle", tok(bundle_dir.name)),
        ("Bundle id", tok(info.get("Sealbox-Bundle-Id") or "not recorded")),
    ]
    return "<h2>Summary</h2>" + kv(rows)


def _exhibit(exhibit: dict[str, Any]) -> str:
    if not exhibit:
        return '<span class="muted">no exhibit number recorded</span>'
    number, text = exhibit.get("number"), exhibit.get("description")
    rest = {k: v for k, v in exhibit.items() if k not in ("number", "description")}
    out = (f"<b>{e(number)}</b>" if number else "") + (f" — {e(text)}" if text else "")
    return out + (f" ({e(plain(rest))})" if rest else "")


def verdict(verify_report: VerifyReport | None) -> str:
    if verify_report is None:
        return '<div class="verdict bad">Verification was not run for this report.</div>'
    cls = "ok" if verify_report.ok else "bad"
    out = [
        f'<div class="verdict {cls}"><span class="{cls}">{verdict_word(verify_report)}</span> — checked '
        f"{e(verify_report.checked_at[:19].replace('T', ' '))} UTC: {verify_report.payload_files} payload "
        f"files, {size(verify_report.payload_bytes)}, {verify_report.items} items, "
        f"{verify_report.custody_events} custody "
        f"events, {len(verify_report.findings)} finding(s).</div>"
    ]
    if verify_report.findings:
        shown = verify_report.findings[:FINDINGS_SHOWN]
        out.append("<ul>" + "".join(f"<li>{e(f.line())}</li>" for f in shown) + "</ul>")
        if len(verify_report.findings) > len(shown):
            out.append(
                f'<p class="muted">First {len(shown)} of {len(verify_report.findings)}; '
                "<code>sealbox verify BUNDLE --json</code> lists them all.</p>"
            )
    if verify_report.notes:
        out.append(
            '<p class="muted">What the bundle alone cannot decide:</p><ul>'
            + "".join(f"<li>{e(n)}</li>" for n in verify_report.notes)
            + "</ul>"
        )
    return "".join(out)
