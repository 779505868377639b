"""Custody events and their details as sentences a court reads: labels instead of keys, `yes`
instead of `True`, a note's text as text. Unknown event kinds and fields are rendered the same
generic way, so a newer bundle still reads as sentences."""

from __future__ import annotations

import re
from typing import Any

# Labels for detail keys (FORMAT.md §4, §4.2); any other key is turned into words by `label`.
LABELS: dict[str, str] = {
    "to": "to",
    "to_key": "receiver's key",
    "to_contact": "receiver's contact",
    "method": "method",
    "tracking": "tracking number",
    "storage_location": "storage location",
    "seal": "seal number",
    "seal_intact": "seal intact",
    "purpose": "purpose",
    "authority": "legal authority",
    "transfer_seq": "transfer event",
    "transfer_sha256": "SHA-256 of the transfer line",
    "condition": "condition",
    "tools": "tools",
    "location": "location",
    "result": "result",
    "destination": "destination",
    "copy_sha256": "SHA-256 of the copy's tag manifest",
    "verified": "verified",
    "verified_at": "verified at",
    "retain_until": "retained until",
    "disposition": "disposition",
    "witness": "witness",
    "exhibit": "exhibit",
    "number": "number",
    "description": "description",
    "basis": "basis",
    "reference": "reference",
    "issued_by": "issued by",
    "date": "date",
    "device": "device",
    "hostname": "host name",
    "machine_id": "machine ID",
    "vendor": "vendor",
    "model": "model",
    "serial": "serial number",
    "asset_tag": "asset tag",
    "macs": "MAC addresses",
    "ips": "IP addresses",
    "os": "operating system",
    "read_from": "read from",
    "source": "source",
    "package": "package",
    "package_sha256": "package SHA-256",
    "exporter": "exporter's key",
    "recipient": "recipient",
    "encrypted_to": "encrypted to",
    "timestamp": "trusted timestamp",
    "signer": "signer's key",
    "manifest_sha256": "manifest SHA-256",
    "payload_oxum": "Payload-Oxum",
    "bundle_name": "bundle name",
    "sections": "sections",
    "profile": "profile",
    "root": "image root",
    "source_count": "sources",
    "vault": "vault",
    "key_prefix": "key prefix",
    "legal_hold": "legal hold",
    "isolation_id": "isolation id",
    "backend": "firewall backend",
    "allow": "allowed",
    "killed_connections": "connections cut",
    "text": "text",
    "next_steps": "next steps",
    "demo_key": "demo key",
    "incident_update": "incident report additions",
    "notified": "notified",
    "when": "when",
    "who": "who",
    "it": "city IT",
    "police": "police",
    "supervisor": "supervisor",
    "records_custodian": "records custodian",
    "crime_suspected": "crime suspected",
    "legal_authority": "legal authority",
    "contact": "contact",
}

EVENT_NAMES: dict[str, str] = {
    "collection-started": "Collection started",
    "volatile-captured": "Volatile state captured",
    "network-isolated": "Network isolated",
    "network-restored": "Network restored",
    "collection-completed": "Collection completed",
    "sealed": "Sealed",
    "exported": "Exported",
    "received": "Received",
    "transferred": "Transferred",
    "accepted": "Accepted",
    "verified": "Verified",
    "examined": "Examined",
    "copied": "Copied",
    "stored": "Stored",
    "labelled": "Labelled",
    "disposed": "Disposed",
    "note": "Note",
}

DISPOSITIONS = {
    "returned": "returned the evidence",
    "destroyed": "destroyed the evidence",
    "retention-ended": "ended the evidence's retention",
}


def label(key: str) -> str:
    """A detail key in words: `storage_location` → `storage location`, `incident.when` → `incident when`."""
    if key in LABELS:
        return LABELS[key]
    if "." in key:
        return " ".join(label(part) for part in key.split("."))
    return key.replace("_", " ").replace("-", " ").strip()


def event_name(kind: str) -> str:
    return EVENT_NAMES.get(kind) or (kind.replace("-", " ").replace("_", " ").capitalize() or "Unknown event")


def short_fp(fp: Any) -> str:
    """`SHA256:810f954f…c514`: enough to match against the full fingerprint in the people table."""
    text = str(fp or "")
    return text if len(text) < 24 else f"{text[:15]}…{text[-4:]}"


_FP = re.compile(r"SHA256:[0-9a-f]{64}")


def short_fps(text: str) -> str:
    """Free text with each full key fingerprint in its short form (for narrow columns)."""
    return _FP.sub(lambda m: short_fp(m.group(0)), text)


def when(text: Any) -> str:
    """`2026-12-02 02:45:22 UTC` from an RFC 3339 UTC time; anything else as it is."""
    value = str(text or "")
    if len(value) >= 19 and value[10] == "T" and value.endswith("Z"):
        return value[:19].replace("T", " ") + " UTC"
    return value


def is_fingerprint(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("SHA256:") and len(value) > 40


def plain(value: Any) -> str:
    """Any detail value in words (never Python's or JSON's spelling)."""
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        parts = [f"{label(str(k))} {plain(v)}" for k, v in value.items() if not empty(v)]
        return "; ".join(parts) if parts else "none"
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value) if value else "none"
    if is_fingerprint(value):
        return short_fp(value)
    return str(value)


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def said(key: str, value: Any) -> str:
    """One detail as `label: value`."""
    text = authority_text(value) if key in ("authority", "legal_authority") else plain(value)
    return f"{label(key)}: {text}"


def clause(details: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """`label: value` for each of `keys` that has a value, in that order."""
    return [said(k, details[k]) for k in keys if not empty(details.get(k))]


def remaining(details: dict[str, Any], used: set[str]) -> list[str]:
    """`label: value` for every detail a sentence did not already say."""
    return [said(str(k), v) for k, v in details.items() if k not in used and not empty(v)]


def authority_text(authority: Any) -> str:
    """`search warrant (reference W-1, issued by District Court, 2026-11-30)`."""
    if not isinstance(authority, dict):
        return plain(authority)
    said = [
        f"{label(k)} {authority[k]}" if k != "date" else str(authority[k])
        for k in ("reference", "issued_by", "date")
        if authority.get(k)
    ]
    rest = {k: v for k, v in authority.items() if k not in ("basis", "reference", "issued_by", "date") and v}
    said += [f"{label(k)} {plain(v)}" for k, v in rest.items()]
    basis = str(authority.get("basis") or "basis not stated")
    return basis + (f" ({', '.join(said)})" if said else "")


def exhibit_text(exhibit: Any) -> str:
    """`EX-0042-01 (Dell laptop of the finance office)`."""
    if not isinstance(exhibit, dict):
        return plain(exhibit)
    number, text = exhibit.get("number"), exhibit.get("description")
    rest = plain({k: v for k, v in exhibit.items() if k not in ("number", "description")})
    out = str(number or "without a number") + (f" ({text})" if text else "")
    return out + (f"; {rest}" if rest != "none" else "")


def person(actor: dict[str, Any]) -> str:
    """`Ida Responder (IT responder, City IT)`."""
    name = str(actor.get("name") or "an unnamed key holder")
    rest = ", ".join(str(actor[k]) for k in ("role", "organization") if actor.get(k))
    return f"{name} ({rest})" if rest else name


def join_sentence(head: str, parts: list[str]) -> str:
    """`Head. Part one. Part two.`: each part capitalized, one stop at each end."""
    said = [head.rstrip("."), *(p[0].upper() + p[1:] for p in parts if p)]
    return " ".join(s if s.endswith(("…", ".", "!", "?")) else s + "." for s in said)
