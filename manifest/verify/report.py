"""The verdict of `verify_bundle`: every finding, what was checked, and what could not be decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.findings import Finding

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.signing.custody import ChainLine


@dataclass
class VerifyReport:
    """`ok` only when there is no finding at all. `notes` are plain one-line statements of what
    the bundle alone cannot decide (they never make a bundle fail or pass)."""

    bundle: Path
    checked_at: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signer: str | None = None
    signer_trusted: bool = False
    info: dict[str, str] = field(default_factory=dict)
    actors: list[dict[str, Any]] = field(default_factory=list)
    payload_files: int = 0
    payload_bytes: int = 0
    items: int = 0
    custody_events: int = 0
    custody_after_seal: int = 0  # of custody_events, in custody/continuation.jsonl
    # The parsed custody lines, for the rules after Custody (None: the logs could not be read).
    custody_lines: list[ChainLine] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(
        self,
        kind: str,
        where: str,
        message: str,
        expected: str | None = None,
        found: str | None = None,
        **location: Any,
    ) -> None:
        self.findings.append(Finding(kind, where, message, expected, found, **location))

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "verified": self.ok,
            "checked_at": self.checked_at,
            "signer": self.signer,
            "signer_trusted": self.signer_trusted,
            "bundle_id": self.info.get("Sealbox-Bundle-Id"),
            "case": self.info.get("External-Identifier"),
            "host": self.info.get("Sealbox-Host"),
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "items": self.items,
            "custody_events": self.custody_events,
            "custody_after_seal": self.custody_after_seal,
            "actors": self.actors,
            "notes": list(self.notes),
            "findings": [f.as_dict() for f in self.findings],
        }
