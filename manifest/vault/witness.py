"""The vault as custody witness: every continuation event of a stored bundle is also an immutable
object of its own, so a local log that loses (or rewrites) its last events no longer agrees."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from manifest.findings import Finding
from manifest.signing.custody import CONTINUATION, read_lines
from manifest.vault.client import make_client, raise_for
from manifest.vault.location import CUSTODY, VaultLocation, parse
from manifest.vault.objects import Lock, get_small, put_bytes

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class WitnessEvent:
    """One custody line as the vault holds it."""

    seq: int
    sha256: str
    line: bytes
    key: str


def witness_key(location: VaultLocation, case: str, bundle: str, seq: int, line: bytes) -> str:
    """`<bundle prefix>custody/<seq, 8 digits>-<SHA-256 of the line>.json`: a second, different
    line with the same number lands beside the first (a fork shows), never over it."""
    digest = hashlib.sha256(line).hexdigest()
    return f"{location.bundle_prefix(case, bundle)}{CUSTODY}{seq:08d}-{digest}.json"


def stored_events(bundle_dir: Path) -> list[dict[str, Any]]:
    """The vault's `stored` events of the local continuation log, oldest first (a `stored` event
    naming a place, SPEC §4.2, has no `vault`)."""
    return [
        line.event
        for line in read_lines(bundle_dir)
        if line.file == CONTINUATION
        and line.event
        and line.event.get("event") == "stored"
        and "vault" in (line.event.get("details") or {})
    ]


def lock_of(stored: dict[str, Any]) -> Lock:
    details = stored["details"]
    return Lock(
        details["mode"], datetime.fromisoformat(details["retain_until"]), bool(details.get("legal_hold"))
    )


def continuation_lines(bundle_dir: Path) -> list[tuple[int, bytes]]:
    return [
        (int(line.event["seq"]), line.raw)
        for line in read_lines(bundle_dir)
        if line.file == CONTINUATION and line.event and isinstance(line.event.get("seq"), int)
    ]


def read_witness(client: Any, location: VaultLocation, case: str, bundle: str) -> list[WitnessEvent]:
    """Every event object of the bundle (latest version of each key), sorted by seq then key."""
    prefix = location.bundle_prefix(case, bundle) + CUSTODY
    out = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                seq_text, _, rest = name.partition("-")
                if not seq_text.isdigit() or not rest.endswith(".json"):
                    continue
                raw = get_small(client, location.bucket, obj["Key"]).rstrip(b"\n")
                out.append(WitnessEvent(int(seq_text), hashlib.sha256(raw).hexdigest(), raw, obj["Key"]))
    except Exception as exc:
        raise_for(exc, location, "reading the custody witness", client)
    return sorted(out, key=lambda e: (e.seq, e.key))


def sync_witness(client: Any, location: VaultLocation, bundle_dir: Path, case: str, lock: Lock) -> int:
    """Write every local continuation event the vault does not hold yet; returns how many."""
    have = {e.key for e in read_witness(client, location, case, bundle_dir.name)}
    written = 0
    for seq, raw in continuation_lines(bundle_dir):
        key = witness_key(location, case, bundle_dir.name, seq, raw)
        if key in have:
            continue
        try:
            put_bytes(client, location, key, raw + b"\n", hashlib.sha256(raw + b"\n").hexdigest(), lock)
        except Exception as exc:
            raise_for(exc, location, "writing a custody event to the vault", client)
        written += 1
    return written


def witness_event(bundle_dir: Path, event_line: bytes | dict[str, Any]) -> str | None:
    """Write one just-appended continuation event to the vault that holds this bundle (the one
    named by its last `stored` event), with that event's retention. Returns the object key, or
    None when the bundle was never stored. Raises VaultError when the vault cannot take it; the
    next `vault push` or `verify --vault` then writes the events it lacks."""
    from manifest.format.canonical import canonical_bytes

    stored = stored_events(bundle_dir)
    if not stored:
        return None
    last = stored[-1]
    raw = event_line if isinstance(event_line, bytes) else canonical_bytes(event_line)
    raw = raw.rstrip(b"\n")
    seq = int(json.loads(raw)["seq"])
    location = parse(last["details"]["vault"])
    case = str(last["case"])
    client = make_client()
    key = witness_key(location, case, bundle_dir.name, seq, raw)
    try:
        put_bytes(client, location, key, raw + b"\n", hashlib.sha256(raw + b"\n").hexdigest(), lock_of(last))
    except Exception as exc:
        raise_for(exc, location, "writing a custody event to the vault", client)
    return key


def vault_tail_findings(bundle_dir: Path, vault_url: str) -> list[Finding]:
    """`sealbox verify BUNDLE --vault s3://...`: the custody tail check, from the option's value."""
    return tail_findings(bundle_dir, parse(vault_url))


def witness_bundle(bundle_dir: Path, location: VaultLocation | None = None) -> int:
    """Write every continuation event the vault lacks (after appends made offline); returns how many."""
    stored = stored_events(bundle_dir)
    if not stored:
        from manifest.vault.errors import VaultError

        raise VaultError(
            f"{bundle_dir} was never stored in a vault", "push it first: `sealbox vault push BUNDLE`"
        )
    last = stored[-1]
    location = location or parse(last["details"]["vault"])
    return sync_witness(make_client(), location, bundle_dir, str(last["case"]), lock_of(last))


def tail_findings(bundle_dir: Path, location: VaultLocation, client: Any | None = None) -> list[Finding]:
    """The local custody continuation against the vault's witness: an event the vault holds that
    the local log lacks (truncated) or holds otherwise (forked) is a finding."""
    from manifest.format.bagit import parse_bag_info

    info = (
        parse_bag_info((bundle_dir / "bag-info.txt").read_bytes())
        if (bundle_dir / "bag-info.txt").is_file()
        else {}
    )
    case = info.get("External-Identifier", "")
    client = client or make_client()
    remote = read_witness(client, location, case, bundle_dir.name)
    local = dict(continuation_lines(bundle_dir))
    findings: list[Finding] = []
    if not remote:
        findings.append(
            Finding(
                "vault-custody-absent",
                location.bundle_prefix(case, bundle_dir.name),
                "the vault holds no custody event of this bundle: was it stored there?",
            )
        )
        return findings
    last_local = max(local, default=0)
    by_seq: dict[int, list[WitnessEvent]] = {}
    for event in remote:
        by_seq.setdefault(event.seq, []).append(event)
    for seq, events in sorted(by_seq.items()):
        if len({e.sha256 for e in events}) > 1:
            findings.append(
                Finding(
                    "vault-custody-forked",
                    events[0].key,
                    f"the vault holds {len(events)} different events {seq}",
                )
            )
        mine = local.get(seq)
        if mine is None:
            kind = "custody-truncated" if seq > last_local else "custody-event-missing"
            findings.append(
                Finding(
                    kind,
                    f"{CONTINUATION} (seq {seq})",
                    "the vault witnessed this custody event; the local log does not have it",
                    events[0].sha256,
                    "nothing",
                )
            )
        elif hashlib.sha256(mine).hexdigest() not in {e.sha256 for e in events}:
            findings.append(
                Finding(
                    "custody-forked",
                    f"{CONTINUATION} (seq {seq})",
                    "the local event differs from the one the vault witnessed",
                    events[0].sha256,
                    hashlib.sha256(mine).hexdigest(),
                )
            )
    return findings
