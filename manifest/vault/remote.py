"""The vault's copy, checked where it lies: exact versions from the `stored` event's index,
payload hashed as it streams (nothing written to disk but the small tag files), retention and
legal hold in force on every object, and the library's own bag, signature, items and custody
checks run on the tag files and the witnessed custody log."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.findings import Finding
from manifest.format import bagit
from manifest.signing.custody import CONTINUATION
from manifest.vault.client import make_client, raise_for
from manifest.vault.errors import VaultError
from manifest.vault.location import BAG, VaultLocation
from manifest.vault.objects import Fetched, get_small, stream_get
from manifest.vault.pool import ordered_map
from manifest.vault.witness import WitnessEvent, read_witness

if TYPE_CHECKING:
    from collections.abc import Callable

    from manifest.signing.keys import KeyStore

WORKERS = 8
# Findings of a local verify that the streamed payload check replaces (there is no data/ on disk).
_REPLACED = {"payload-missing", "payload-oxum", "payload-unreadable"}


@dataclass(frozen=True, slots=True)
class IndexEntry:
    path: str
    version: str
    sha256: str
    size: int


@dataclass
class RemoteReport:
    location: VaultLocation
    case: str
    bundle: str
    findings: list[Finding] = field(default_factory=list)
    stored: dict[str, Any] | None = None
    objects: int = 0
    payload_bytes: int = 0
    custody_events: int = 0
    signer: str | None = None
    signer_trusted: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(
        self, kind: str, where: str, message: str, expected: str | None = None, found: str | None = None
    ) -> None:
        self.findings.append(Finding(kind, where, message, expected, found))

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.location.url,
            "case": self.case,
            "bundle": self.bundle,
            "verified": self.ok,
            "objects": self.objects,
            "payload_bytes": self.payload_bytes,
            "custody_events": self.custody_events,
            "signer": self.signer,
            "signer_trusted": self.signer_trusted,
            "stored": self.stored,
            "findings": [f.as_dict() for f in self.findings],
        }


def latest_stored(events: list[WitnessEvent], prefix: str) -> dict[str, Any] | None:
    found = None
    for event in events:
        try:
            ev = json.loads(event.line)
        except ValueError:
            continue
        if ev.get("event") == "stored" and (ev.get("details") or {}).get("key_prefix") == prefix:
            found = ev
    return found


def read_index(
    client: Any, location: VaultLocation, stored: dict[str, Any], report: RemoteReport
) -> list[IndexEntry]:
    details = stored["details"]
    raw = get_small(client, location.bucket, details["index_key"], details["index_version"])
    if hashlib.sha256(raw).hexdigest() != details["index_sha256"]:
        report.add(
            "vault-index-changed",
            details["index_key"],
            "the vault index differs from the one the 'stored' event signed",
            details["index_sha256"],
            hashlib.sha256(raw).hexdigest(),
        )
    out = []
    for line in raw.splitlines():
        item = json.loads(line)
        out.append(IndexEntry(item["path"], item["version"], item["sha256"], int(item["size"])))
    return out


def check_lock(fetched: Fetched, where: str, stored: dict[str, Any], report: RemoteReport) -> None:
    details = stored["details"]
    want_until = datetime.fromisoformat(details["retain_until"])
    if fetched.mode != details["mode"]:
        report.add(
            "vault-retention-missing",
            where,
            "retention mode is not in force",
            details["mode"],
            str(fetched.mode),
        )
    elif fetched.retain_until is None or fetched.retain_until.astimezone(UTC) < want_until:
        report.add(
            "vault-retention-shortened",
            where,
            "retain-until is earlier than stored",
            want_until.isoformat(),
            str(fetched.retain_until),
        )
    if details.get("legal_hold") and fetched.legal_hold != "ON":
        report.add(
            "vault-legal-hold-off",
            where,
            "the legal hold set on upload is not in force",
            "ON",
            str(fetched.legal_hold),
        )


def _later_versions(
    client: Any, location: VaultLocation, prefix: str, index: list[IndexEntry], report: RemoteReport
) -> None:
    """Any other version of a stored key (an overwrite) or a delete marker is reported; the
    stored version is the one checked."""
    stored = {e.path: e.version for e in index}  # the index's own strings: no second copy of 50,000 keys
    bag = prefix + BAG
    for page in client.get_paginator("list_object_versions").paginate(Bucket=location.bucket, Prefix=bag):
        for v in page.get("Versions", []):
            want = stored.get(v["Key"][len(bag) :])
            if want is not None and v["VersionId"] != want:
                report.add(
                    "vault-object-overwritten",
                    v["Key"],
                    "another version of a stored object exists; the stored version was checked",
                    want,
                    v["VersionId"],
                )
            elif want is None:
                report.add(
                    "vault-object-unlisted",
                    v["Key"],
                    "object under the bundle that the vault index does not list",
                )
        for m in page.get("DeleteMarkers", []):
            report.add(
                "vault-delete-marker", m["Key"], "a delete marker hides this object (its versions remain)"
            )


def fetch_tag_files(
    client: Any,
    location: VaultLocation,
    prefix: str,
    index: list[IndexEntry],
    events: list[WitnessEvent],
    dest: Path,
    stored: dict[str, Any],
    report: RemoteReport,
) -> None:
    """Write the tag files (exact versions, hash-checked) and the witnessed continuation log into dest."""
    for entry in index:
        if entry.path.startswith("data/"):
            continue
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            fetched = stream_get(client, location.bucket, prefix + BAG + entry.path, entry.version, f)
        _compare(entry, fetched, report)
        check_lock(fetched, entry.path, stored, report)
    (dest / "custody").mkdir(exist_ok=True)
    seen: set[int] = set()
    with open(dest / CONTINUATION, "wb") as f:
        for event in events:
            if event.seq in seen:
                report.add("vault-custody-forked", event.key, f"more than one custody event {event.seq}")
                continue
            seen.add(event.seq)
            f.write(event.line + b"\n")
    report.custody_events = len(seen)


def _compare(entry: IndexEntry, fetched: Fetched, report: RemoteReport) -> None:
    if fetched.sha256 != entry.sha256 or fetched.size != entry.size:
        report.add(
            "vault-object-changed",
            entry.path,
            "the stored version's content differs from the vault index",
            entry.sha256,
            fetched.sha256,
        )


def verify_remote(
    location: VaultLocation,
    case: str,
    bundle: str,
    trusted: set[str] | None = None,
    *,
    store: KeyStore | None = None,
    client: Any | None = None,
    payload_sink: Callable[[IndexEntry], Any] | None = None,
    keep: Path | None = None,
) -> RemoteReport:
    """Verify the vault's copy of CASE/BUNDLE without downloading its payload to disk.
    `keep`: write the tag files there (pull) instead of a temporary directory."""
    from manifest.verify import verify_bundle

    client = client or make_client()
    report = RemoteReport(location, case, bundle)
    prefix = location.bundle_prefix(case, bundle)
    try:
        events = read_witness(client, location, case, bundle)
        stored = latest_stored(events, prefix)
        if stored is None:
            raise VaultError(
                f"{location.url} holds no completed push of {case}/{bundle}",
                f"push it with `sealbox vault push BUNDLE --vault {location.url}`",
            )
        report.stored = stored
        index = read_index(client, location, stored, report)
        report.objects = len(index)
        with tempfile.TemporaryDirectory(prefix="sealbox-vault-") as tmp:
            bag = keep or Path(tmp) / bundle
            bag.mkdir(parents=True, exist_ok=True)
            fetch_tag_files(client, location, prefix, index, events, bag, stored, report)
            manifest = (
                {
                    rel: digest
                    for _, rel, digest in bagit.parse_manifest((bag / bagit.MANIFEST).read_bytes())
                    if digest
                }
                if (bag / bagit.MANIFEST).is_file()
                else {}
            )
            _check_payload(client, location, prefix, index, manifest, stored, report, payload_sink)
            local = verify_bundle(bag, set(trusted or ()), store=store)
            report.signer, report.signer_trusted = local.signer, local.signer_trusted
            report.findings.extend(f for f in local.findings if f.kind not in _REPLACED)
            _check_oxum(local.info.get("Payload-Oxum"), index, report)
        _later_versions(client, location, prefix, index, report)
    except VaultError:
        raise
    except Exception as exc:
        raise_for(exc, location, f"verifying {case}/{bundle}", client)
    return report


def _check_payload(
    client: Any,
    location: VaultLocation,
    prefix: str,
    index: list[IndexEntry],
    manifest: dict[str, str],
    stored: dict[str, Any],
    report: RemoteReport,
    payload_sink: Callable[[IndexEntry], Any] | None,
) -> None:
    payload = [e for e in index if e.path.startswith("data/")]
    listed = {e.path for e in payload}
    for rel in manifest:
        if rel not in listed:
            report.add("payload-missing", rel, "listed in manifest-sha256.txt but not in the vault")
    for e in payload:
        if e.path not in manifest:
            report.add("payload-unlisted", e.path, "object in data/ that manifest-sha256.txt does not list")

    def one(entry: IndexEntry) -> tuple[IndexEntry, Fetched]:
        sink = payload_sink(entry) if payload_sink else None
        try:
            return entry, stream_get(client, location.bucket, prefix + BAG + entry.path, entry.version, sink)
        finally:
            if sink is not None:
                sink.close()

    for entry, fetched in ordered_map(one, payload, WORKERS):
        report.payload_bytes += fetched.size
        _compare(entry, fetched, report)
        want = manifest.get(entry.path)
        if want is not None and fetched.sha256 != want:
            report.add(
                "payload-changed",
                entry.path,
                "content differs from manifest-sha256.txt",
                want,
                fetched.sha256,
            )
        check_lock(fetched, entry.path, stored, report)


def _check_oxum(oxum: str | None, index: list[IndexEntry], report: RemoteReport) -> None:
    payload = [e for e in index if e.path.startswith("data/")]
    found = f"{sum(e.size for e in payload)}.{len(payload)}"
    if oxum and oxum != found:
        report.add(
            "payload-oxum",
            "bag-info.txt",
            "Payload-Oxum (bytes.files) does not match the vault's data/",
            oxum,
            found,
        )
