"""The custody log as the report reads it: one entry per line with its verdict, who holds the
evidence, which transfers were accepted and which are still open (FORMAT.md §4.2)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.signing.custody import CONTINUATION, ChainLine, current_exhibit, transfers, verify_chain

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.verify import VerifyReport


@dataclass(frozen=True)
class Entry:
    """One custody line: what it says, where it is, and whether its link and signature hold."""

    seq: int | None
    time: str
    kind: str
    where: str
    actor: dict[str, Any]
    details: dict[str, Any]
    reason: str
    line_sha256: str
    problems: tuple[str, ...] = ()
    trusted: bool | None = None  # None: no verifier looked at the key
    staged: bool = False  # shown, but not yet in the log (export's own event)
    line: ChainLine | None = None  # the line as read, for the custody module's own checks

    @property
    def holds(self) -> bool:
        return not self.problems

    @property
    def key(self) -> str:
        return str(self.actor.get("key") or "")


@dataclass(frozen=True)
class Transfer:
    """A `transferred` event and the `accepted` that completes it (None: still open)."""

    given: Entry
    accepted: Entry | None


@dataclass
class Chain:
    entries: list[Entry]
    actors: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> actor
    trusted: dict[str, bool] = field(default_factory=dict)

    def by_seq(self, seq: Any) -> Entry | None:
        return next((e for e in self.entries if e.seq == seq and isinstance(seq, int)), None)

    def transfers(self) -> list[Transfer]:
        """Every `transferred` event with the accept that completes it: matched by the custody
        module's one rule (§4.2), and only while the accept's own line holds."""
        at = {e.where: e for e in self.entries}
        out = []
        for t in transfers([e.line for e in self.entries if e.line is not None]):
            accepted = at.get(t.accepted.where) if t.accepted else None
            out.append(Transfer(at[t.line.where], accepted if accepted and accepted.holds else None))
        return out

    def open_transfers(self) -> list[Transfer]:
        return [t for t in self.transfers() if t.accepted is None]

    def exhibit(self) -> dict[str, Any]:
        """The bundle's exhibit as the custody module reads it (§4.2), or {}."""
        return dict(current_exhibit([e.line for e in self.entries if e.line is not None]) or {})

    def first(self, kind: str) -> Entry | None:
        return next((e for e in self.entries if e.kind == kind), None)

    def name_of(self, fp: Any) -> str:
        actor = self.actors.get(str(fp))
        return str(actor.get("name")) if actor and actor.get("name") else ""


def _entry(line: ChainLine, problems: list[str], trusted: dict[str, bool], staged: bool) -> Entry:
    ev = line.event or {}
    actor = ev.get("actor") if isinstance(ev.get("actor"), dict) else {}
    details = ev.get("details") if isinstance(ev.get("details"), dict) else {}
    seq = ev.get("seq") if isinstance(ev.get("seq"), int) else None
    key = str((actor or {}).get("key") or "")
    return Entry(
        seq=seq,
        time=str(ev.get("time") or ""),
        kind=str(ev.get("event") or "unreadable line"),
        where=line.where,
        actor=dict(actor or {}),
        details=dict(details or {}),
        reason=str(ev.get("reason") or ""),
        line_sha256=hashlib.sha256(line.raw).hexdigest(),
        problems=tuple(problems),
        trusted=trusted.get(key),
        staged=staged,
        line=line,
    )


def read_chain(
    bundle_dir: Path, verify_report: VerifyReport | None, staged_line: bytes | None = None
) -> Chain:
    """The bundle's custody log with each line's verdict; `staged_line` (an event not yet
    appended, export's own) is shown after it."""
    findings, lines = verify_chain(bundle_dir)
    bad: dict[str, list[str]] = {}
    for f in findings:
        bad.setdefault(f.where, []).append(f.message)
    trusted: dict[str, bool] = {}
    if verify_report is not None:
        trusted = {str(a["fingerprint"]): bool(a["trusted"]) for a in verify_report.actors}
        if verify_report.signer:
            trusted.setdefault(verify_report.signer, verify_report.signer_trusted)
    entries = [_entry(line, bad.get(line.where, []), trusted, False) for line in lines]
    if staged_line is not None:
        number = sum(1 for line in lines if line.file == CONTINUATION) + 1
        raw = staged_line.rstrip(b"\n")
        entries.append(_entry(ChainLine(CONTINUATION, number, raw, json.loads(raw)), [], trusted, True))
    actors: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.key:  # a later event may carry what an earlier one lacked (a contact)
            actors[e.key] = {**actors.get(e.key, {}), **{k: v for k, v in e.actor.items() if v}}
    return Chain(entries, actors, trusted)
