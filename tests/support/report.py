"""Bundles with a long, varied custody log for the report tests: the court events of FORMAT.md
§4.2 (exhibit, device identifiers, contacts, two-party transfers, examined, copied, stored,
disposed), written as signed custody lines through the library.

A short story goes through the library's `append_event`. A long one is made as
`manifest.signing.custody.make_event` makes events and appended with the chain head kept in
memory (500 events take a second, not 500 chain checks); event kinds a checkout does not know
yet (before §4.2's are in custody.EVENTS, or `custody-audited`, which none knows) are written the
same way, as generic signed events."""

from __future__ import annotations

import base64
import socket
from typing import TYPE_CHECKING, Any

from manifest.format.canonical import canonical_bytes
from manifest.format.timefmt import parse_rfc3339_ns, rfc3339_ns
from manifest.signing.custody import (
    CONTINUATION,
    append_event,
    event_line,
    read_lines,
    sha256_hex,
    tagmanifest_sha256,
    tool_info,
    verify_chain,
)
from manifest.signing.keys import KeyStore

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.signing.keys import Signer
    from tests.support.custody import Person

CONTACTS = {
    "Ida Responder": "ida.responder@city.example, +1 555 0100",
    "Ivan Investigator": "ivan@city.example",
    "Paula Police": "p.police@pd.example, desk +1 555 0199",
}


def signer_of(person: Person) -> Signer:
    return KeyStore(person.cli.home).load_signer(person.fp)


class Appender:
    """Appends signed events to a sealed bundle's continuation log, one after another."""

    def __init__(self, bundle: Path) -> None:
        findings, lines = verify_chain(bundle)
        assert not findings, findings
        sealed = next(line.event for line in lines if line.event and line.event["event"] == "sealed")
        self.bundle, self.case, self.name = bundle, sealed["case"], sealed["bundle"]
        last = lines[-1]
        self.prev = sha256_hex(last.raw) if last.file == CONTINUATION else tagmanifest_sha256(bundle) or ""
        self.seq = len(lines)
        # Events from an hour after sealing on: a timeline with a real span.
        self.clock = parse_rfc3339_ns(sealed["time"]) + 3600 * 10**9

    def add(
        self, signer: Signer, event: str, details: dict[str, Any], reason: str = "", step_s: int = 60
    ) -> dict[str, Any]:
        self.seq += 1
        self.clock += step_s * 10**9
        actor = {**signer.identity.as_actor(), "public_key": signer.public_b64()}
        if signer.identity.name in CONTACTS:
            actor["contact"] = CONTACTS[signer.identity.name]
        body: dict[str, Any] = {
            "seq": self.seq,
            "time": rfc3339_ns(self.clock),
            "event": event,
            "case": self.case,
            "bundle": self.name,
            "actor": actor,
            "host": socket.gethostname(),
            "tool": tool_info(),
            "details": details,
            "reason": reason,
            "prev": self.prev,
        }
        body["sig"] = base64.b64encode(signer.sign(canonical_bytes(body))).decode()
        line = event_line(body)
        with (self.bundle / CONTINUATION).open("ab") as fh:
            fh.write(line)
        self.prev = sha256_hex(line[:-1])
        body["_line_sha256"] = self.prev
        return body


def court_story(bundle: Path, it: Person, investigator: Person, police: Person, total: int) -> dict[str, int]:
    """Append a hand-over story, IT → investigator (accepted) → police (left open), and fill up to
    `total` custody events in all with examinations, copies, notes and an event kind no sealbox
    knows (`custody-audited`). Returns the seqs of the accepted and the open transfer."""
    a = Appender(bundle)
    s_it, s_inv = signer_of(it), signer_of(investigator)
    a.add(
        s_it,
        "labelled",
        {
            "exhibit": {
                "number": "EX-0042-01",
                "description": "Dell Latitude 7440 of the finance office, serial 7XK2Q93",
            }
        },
        "exhibit label attached to the evidence bag",
    )
    a.add(
        s_it,
        "note",
        {
            "incident_update": {
                "notifications.police.notified": True,
                "notifications.police.when": "2026-11-24T11:00Z",
                "notifications.police.who": "PD case 77",
            },
            "text": "Police informed by phone; they will collect the laptop.\nDesk sergeant: Miller.",
        },
        "incident report addition",
    )
    given = a.add(
        s_it,
        "transferred",
        {
            "to": "Ivan Investigator, City IT Security",
            "to_key": investigator.fp,
            "method": "in-person",
            "seal": "SEAL-000123",
            "storage_location": "IT security safe, room 4.12",
            "purpose": "forensic examination",
            "authority": {"basis": "policy", "reference": "City IT policy 7.3"},
        },
        "hand-over for examination",
    )
    accepted = a.add(
        s_inv,
        "accepted",
        {
            "transfer_seq": given["seq"],
            "transfer_sha256": given["_line_sha256"],
            "seal": "SEAL-000123",
            "seal_intact": True,
            "storage_location": "IT security safe, room 4.12",
            "condition": "sealed bag, undamaged",
        },
        "received in person",
    )
    a.add(
        s_inv,
        "examined",
        {
            "purpose": "triage of the ransomware note",
            "tools": ["sealbox 0.1", "mactime"],
            "location": "forensic lab 2",
            "result": "the note was written at 10:02 UTC",
        },
        "first examination",
    )
    a.add(
        s_inv,
        "copied",
        {
            "destination": "/cases/OKC-2026-0042/working-copy",
            "method": "sealbox export",
            "purpose": "working copy",
            "verified": True,
        },
        "working copy for analysis",
    )
    a.add(
        s_inv,
        "stored",
        {
            "location": "evidence locker 7, City IT Security",
            "seal": "SEAL-000124",
            "retain_until": "2033-12-31",
        },
        "stored after examination",
    )
    filler = 0
    while a.seq < total - 1:
        filler += 1
        kind = ("examined", "note", "copied", "custody-audited")[filler % 4]
        details: dict[str, Any] = (
            {"purpose": f"review {filler}", "tools": ["less"], "result": f"no change {filler}"}
            if kind == "examined"
            else {"text": f"Note {filler}: checked the seal, still intact."}
            if kind == "note"
            else {"destination": f"/cases/copy-{filler}", "verified": True}
            if kind == "copied"
            else {"auditor_name": "Olga Auditor", "scope": "custody log", "finding_count": 0, "passed": True}
        )
        a.add(s_inv, kind, details, f"routine step {filler}", step_s=7)
    open_ = a.add(
        s_inv,
        "transferred",
        {
            "to": "Det. Paula Police, City PD",
            "to_key": police.fp,
            "to_contact": "p.police@pd.example",
            "method": "courier",
            "tracking": "1Z999AA10123456784",
            "seal": "SEAL-000125",
            "storage_location": "City PD evidence room",
            "purpose": "criminal investigation",
        },
        "hand-over to the police",
    )
    return {
        "accepted_transfer": given["seq"],
        "accept": accepted["seq"],
        "open_transfer": open_["seq"],
        "events": a.seq,
    }


def short_story(bundle: Path, it: Person, police: Person, total: int) -> dict[str, int]:
    """A few events through the library's own append (`append_event`, with receipts): incident
    notes (police notified), then a transfer to the police left open."""
    s_it = signer_of(it)
    note = {
        "incident_update": {"notifications.police.notified": True, "notifications.police.when": "11:00Z"},
        "text": "Police informed by phone.",
    }
    while len(read_lines(bundle)) < total - 1:
        append_event(bundle, s_it, "note", note, "incident report addition")
    given = append_event(
        bundle,
        s_it,
        "transferred",
        {"to": "Det. Paula Police, City PD", "to_key": police.fp, "method": "in-person", "seal": "SEAL-9"},
        "hand-over to the police",
    )
    return {"open_transfer": given["seq"], "events": given["seq"]}


class Story:
    """Three people, one collected bundle and its custody story; `trust` makes every key trusted."""

    def __init__(self, base: Path, total: int) -> None:
        from tests.support.custody import collect_bundle, make_person

        self.it = make_person(base, "it")
        self.investigator = make_person(base, "investigator")
        self.police = make_person(base, "police")
        (base / "bundles").mkdir()
        self.bundle = collect_bundle(self.it, base, base / "bundles")
        self.seqs = (
            court_story(self.bundle, self.it, self.investigator, self.police, total)
            if total >= 12
            else short_story(self.bundle, self.it, self.police, total)
        )
        self.events = self.seqs["events"]

    @property
    def trust(self) -> list[str]:
        return [a for p in (self.investigator, self.police) for a in ("--trust", p.fp)]

    def report(self, out: Path, *extra: str) -> Path:
        proc = self.it.cli("report", self.bundle, "--out", out, *self.trust, *extra)
        assert proc.returncode == 0, proc.stderr
        return out
