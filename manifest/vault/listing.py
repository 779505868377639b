"""`vault ls`: cases, and for a case its bundles with host, size, retention and last custody event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manifest.vault.client import raise_for
from manifest.vault.remote import latest_stored
from manifest.vault.witness import read_witness

if TYPE_CHECKING:
    from manifest.vault.location import VaultLocation


@dataclass(frozen=True)
class BundleRow:
    case: str
    bundle: str
    host: str
    objects: int
    nbytes: int
    mode: str
    retain_until: str
    legal_hold: bool
    last_event: str
    last_time: str

    def line(self) -> str:
        hold = " legal-hold" if self.legal_hold else ""
        return (
            f"{self.case}/{self.bundle}  host={self.host or '?'}  {self.objects} objects  "
            f"{self.nbytes} bytes  {self.mode or 'NOT STORED'} until {self.retain_until or '-'}{hold}  "
            f"last: {self.last_event} {self.last_time}"
        )


def _prefixes(client: Any, location: VaultLocation, prefix: str) -> list[str]:
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=prefix, Delimiter="/"
    ):
        out += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
    return sorted(out)


def list_cases(client: Any, location: VaultLocation) -> list[tuple[str, int]]:
    try:
        return [
            (case, len(_prefixes(client, location, location.case_prefix(case))))
            for case in _prefixes(client, location, location.root())
        ]
    except Exception as exc:
        raise_for(exc, location, "listing cases", client)


def list_bundles(client: Any, location: VaultLocation, case: str) -> list[BundleRow]:
    rows = []
    try:
        for bundle in _prefixes(client, location, location.case_prefix(case)):
            events = read_witness(client, location, case, bundle)
            stored = latest_stored(events, location.bundle_prefix(case, bundle)) or {}
            details = stored.get("details") or {}
            last = json.loads(events[-1].line) if events else {}
            rows.append(
                BundleRow(
                    case,
                    bundle,
                    str(details.get("host", "")),
                    int(details.get("objects", 0)),
                    int(details.get("bytes", 0)),
                    str(details.get("mode", "")),
                    str(details.get("retain_until", "")),
                    bool(details.get("legal_hold")),
                    str(last.get("event", "-")),
                    str(last.get("time", "")),
                )
            )
    except Exception as exc:
        raise_for(exc, location, f"listing case {case}", client)
    return rows
