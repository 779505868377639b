"""Each custody event as one or two sentences (and, for notes, the note's own text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.handover.report.words import (
    DISPOSITIONS,
    authority_text,
    clause,
    empty,
    exhibit_text,
    join_sentence,
    label,
    person,
    plain,
    remaining,
    short_fp,
    when,
)

if TYPE_CHECKING:
    from manifest.handover.report.chain import Chain, Entry


@dataclass(frozen=True)
class Said:
    """What the report says about one event: a sentence, and lines to show under it verbatim
    (a note's text, the next steps given)."""

    sentence: str
    lines: list[str] = field(default_factory=list)


def _who_key(chain: Chain, fp: Any) -> str:
    name = chain.name_of(fp)
    return f"{name} (key {short_fp(fp)})" if name else f"the holder of key {short_fp(fp)}"


def _reason(entry: Entry, parts: list[str]) -> list[str]:
    if entry.reason.strip():
        parts.append(f"reason given: “{entry.reason.strip()}”")
    return parts


def _device(device: Any) -> str:
    if not isinstance(device, dict):
        return plain(device)
    keys = ("hostname", "vendor", "model", "serial", "asset_tag", "machine_id", "macs", "ips", "os")
    said = [f"{label(k)} {plain(device[k])}" for k in keys if not empty(device.get(k))]
    source = device.get("source")
    if source:
        said.append("read from the image" if source == "image" else "read from the running system")
    return ", ".join(said) or "no identifiers could be read"


def _started(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    host = d.get("host") or "the host"
    head = f"{person(entry.actor)} started the collection on {host}"
    if d.get("root"):
        head += f" from the disk image mounted at {d['root']}"
    if d.get("profile"):
        head += f" with the profile {d['profile']}"
    parts = []
    if isinstance(d.get("source_count"), int):
        parts.append(f"{d['source_count']} source(s) were named")
    if not empty(d.get("device")):
        parts.append("device: " + _device(d["device"]))
    if isinstance(d.get("exhibit"), dict):
        parts.append("exhibit: " + exhibit_text(d["exhibit"]))
    if isinstance(d.get("previous"), dict):
        parts.append(f"a follow-up of bundle {d['previous'].get('bundle')}")
    if not empty(d.get("authority")):
        parts.append("legal authority: " + authority_text(d["authority"]))
    used = {
        "host",
        "root",
        "profile",
        "source_count",
        "sources",
        "device",
        "exhibit",
        "previous",
        "authority",
    }
    return head, parts, used


def _transferred(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    head = f"{person(entry.actor)} handed the evidence over to {d.get('to') or 'a receiver not named'}"
    if d.get("to_key"):
        head += f" (key {short_fp(d['to_key'])})"
    parts = clause(
        d, ("method", "tracking", "seal", "storage_location", "purpose", "to_contact", "authority")
    )
    transfer = next((t for t in chain.transfers() if t.given is entry), None)
    if transfer is not None and transfer.accepted is not None:
        a = transfer.accepted
        parts.append(f"{a.actor.get('name') or 'the receiver'} accepted it at {when(a.time)} (event {a.seq})")
    else:
        parts.append("the receiver has NOT accepted it: the transfer is open")
    used = {
        "to",
        "to_key",
        "method",
        "tracking",
        "seal",
        "storage_location",
        "purpose",
        "to_contact",
        "authority",
    }
    return head, parts, used


def _accepted(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    given = chain.by_seq(d.get("transfer_seq"))
    giver = person(given.actor) if given else "an unknown giver"
    head = (
        f"{person(entry.actor)} accepted the evidence from {giver} (transfer, event {d.get('transfer_seq')})"
    )
    parts = []
    if "seal_intact" in d:
        parts.append(
            f"seal {d.get('seal') or ''} found {'intact' if d['seal_intact'] else 'BROKEN'}".replace(
                "  ", " "
            )
        )
    elif d.get("seal"):
        parts.append(f"seal number {d['seal']}")
    parts += clause(d, ("storage_location", "condition"))
    return (
        head,
        parts,
        {"transfer_seq", "transfer_sha256", "seal", "seal_intact", "storage_location", "condition"},
    )


def _exported(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    head = (
        f"{person(entry.actor)} exported the evidence as the signed package {d.get('package') or ''} "
        f"for {d.get('recipient') or 'a recipient not named'}"
    )
    parts = []
    if d.get("encrypted_to"):
        parts.append(f"encrypted to the age key {d['encrypted_to']}")
    if d.get("timestamp"):
        parts.append("with a trusted timestamp")
    return head, parts, {"package", "recipient", "encrypted_to", "timestamp", "exporter"}


def _received(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    head = (
        f"{person(entry.actor)} received the package {d.get('package') or ''} "
        f"from {_who_key(chain, d.get('exporter'))}"
    )
    parts = []
    if d.get("verified") is True:
        parts.append(f"the bundle verified on receipt at {when(d.get('verified_at') or entry.time)}")
    if d.get("package_sha256"):
        parts.append(f"package SHA-256 {str(d['package_sha256'])[:16]}…")
    return head, parts, {"package", "exporter", "verified", "verified_at", "package_sha256", "signer"}


def _sealed(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    head = f"{person(entry.actor)} sealed the bundle and signed it"
    value = d.get("counts")
    counts: dict[str, Any] = value if isinstance(value, dict) else {}
    parts = []
    if counts.get("items") is not None:
        parts.append(f"{counts.get('items')} item(s), {counts.get('payload_files', '?')} file(s) copied")
    if d.get("manifest_sha256"):
        parts.append(f"manifest SHA-256 {str(d['manifest_sha256'])[:16]}…")
    return head, parts, {"counts", "manifest_sha256", "payload_oxum", "bundle_name"}


def _completed(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    head = f"{person(entry.actor)} completed the collection"
    parts = []
    if d.get("items") is not None:
        parts.append(f"{d['items']} item(s)")
    if isinstance(d.get("by_status"), dict) and d["by_status"]:
        parts.append("by status: " + ", ".join(f"{k} {v}" for k, v in sorted(d["by_status"].items())))
    return head, parts, {"items", "by_status", "by_kind", "by_collector", "payload_files", "payload_bytes"}


def _volatile(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    sections = entry.details.get("sections")
    head = f"{person(entry.actor)} captured the volatile state"
    parts = [f"sections: {plain(sections)}"] if not empty(sections) else []
    return head, parts, {"sections"}


def _isolation(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    if entry.kind == "network-isolated":
        head = f"{person(entry.actor)} cut the host's network access"
        parts = clause(d, ("allow", "backend", "killed_connections"))
    else:
        head = f"{person(entry.actor)} restored the host's network access"
        parts = clause(d, ("backend", "identical", "drift"))
    return (
        head,
        parts,
        {
            "allow",
            "backend",
            "killed_connections",
            "identical",
            "drift",
            "isolation_id",
            "ruleset_sha256",
            "rules_removed",
            "tidied",
            "recorded_late",
        },
    )


def _disposed(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    what = DISPOSITIONS.get(
        str(d.get("disposition")), f"disposed of the evidence ({plain(d.get('disposition'))})"
    )
    head = f"{person(entry.actor)} {what}"
    if d.get("to"):
        head += f" to {d['to']}"
    parts = clause(d, ("method", "witness", "authority"))
    return head, parts, {"disposition", "to", "method", "witness", "authority"}


def _stored(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    d = entry.details
    if d.get("location"):
        head = f"{person(entry.actor)} stored the evidence at {d['location']}"
        parts = clause(d, ("seal", "retain_until"))
        return head, parts, {"location", "seal", "retain_until"}
    if d.get("vault"):
        head = f"{person(entry.actor)} stored the bundle in the vault {d['vault']}"
        parts = clause(d, ("retain_until", "mode", "legal_hold", "objects"))
        return head, parts, set(d)  # the vault's bookkeeping (index, versions) stays in the log
    return f"{person(entry.actor)} stored the evidence", [], set()


def _simple(verb: str, keys: tuple[str, ...]) -> Any:
    def render(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
        return f"{person(entry.actor)} {verb}", clause(entry.details, keys), set(keys)

    return render


def _labelled(entry: Entry, chain: Chain) -> tuple[str, list[str], set[str]]:
    return (
        f"{person(entry.actor)} labelled the evidence as exhibit "
        + exhibit_text(entry.details.get("exhibit")),
        [],
        {"exhibit"},
    )


_RENDER = {
    "collection-started": _started,
    "volatile-captured": _volatile,
    "collection-completed": _completed,
    "sealed": _sealed,
    "transferred": _transferred,
    "accepted": _accepted,
    "exported": _exported,
    "received": _received,
    "network-isolated": _isolation,
    "network-restored": _isolation,
    "disposed": _disposed,
    "stored": _stored,
    "labelled": _labelled,
    "examined": _simple("examined the evidence", ("purpose", "tools", "location", "result", "authority")),
    "copied": _simple("copied the evidence", ("destination", "method", "purpose", "copy_sha256", "verified")),
    "verified": _simple("verified the bundle", ()),
}


def _note(entry: Entry) -> Said:
    d = entry.details
    lines: list[str] = []
    text = str(d.get("text") or "").strip()
    update = d.get("incident_update")
    if isinstance(update, dict) and update:
        head = f"{person(entry.actor)} added to the incident report: " + "; ".join(
            f"{label(str(k))}: {plain(v)}" for k, v in update.items()
        )
    elif isinstance(d.get("next_steps"), list):
        head = f"{person(entry.actor)} was given the next steps after sealing"
        for n, step in enumerate(d["next_steps"], start=1):
            if isinstance(step, dict):
                done = " (already done)" if step.get("done") else ""
                lines.append(f"{n}. {step.get('title') or step.get('key')}{done}")
        verification = d.get("verification")
        if isinstance(verification, dict) and "ok" in verification:
            head += (
                "; the bundle " + ("verified" if verification["ok"] else "did NOT verify") + " at that point"
            )
        if d.get("demo_key"):
            head += "; it was signed with a demo key, not fit for evidence"
    else:
        head = f"{person(entry.actor)} wrote a note"
    if text:
        lines.insert(0, f"“{text}”")
    used = {"text", "incident_update", "next_steps", "verification", "demo_key"}
    parts = _reason(entry, remaining(d, used))
    return Said(join_sentence(head, parts), lines)


def describe(entry: Entry, chain: Chain) -> Said:
    """The sentence(s) for one event; an unknown kind is said generically, field by field."""
    if entry.kind == "note":
        return _note(entry)
    render = _RENDER.get(entry.kind)
    if render is None:
        head = f"{person(entry.actor)} recorded the event “{entry.kind}”"
        parts: list[str] = []
        used: set[str] = set()
    else:
        head, parts, used = render(entry, chain)
    parts = _reason(entry, parts + remaining(entry.details, used))
    return Said(join_sentence(head, parts))
