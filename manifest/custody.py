"""Chain-of-custody events (SPEC §4): canonical, hash-chained, Ed25519-signed JSON lines."""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import shlex
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.canonical import canonical_bytes
from manifest.errors import BundleError
from manifest.findings import Finding
from manifest.keys import fingerprint, public_from_raw, verify_signature
from manifest.timefmt import now_rfc3339

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.keys import Signer

CUSTODY = "custody/custody.jsonl"
CONTINUATION = "custody/continuation.jsonl"
TAGMANIFEST = "tagmanifest-sha256.txt"
GENESIS = "0" * 64
EVENTS = (
    "collection-started",
    "volatile-captured",
    "network-isolated",
    "network-restored",
    "collection-completed",
    "sealed",
    "exported",
    "received",
    "transferred",
    "verified",
    "note",
    "stored",
)
# Events that only the sealing run itself writes (custody.jsonl); the rest go to continuation.
SEALING_EVENTS = ("collection-started", "volatile-captured", "collection-completed", "sealed")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool_info() -> dict[str, str]:
    return {"name": TOOL_NAME, "version": __version__, "command_line": shlex.join(sys.argv)}


def make_event(
    *,
    seq: int,
    event: str,
    case: str,
    bundle: str,
    signer: Signer,
    details: dict[str, Any],
    reason: str,
    prev: str,
    time: str | None = None,
) -> dict[str, Any]:
    """A signed event. `actor.public_key` (raw key, base64) lets anyone check `sig` offline;
    its SHA-256 must equal `actor.key`, so it cannot be swapped without being noticed."""
    if event not in EVENTS:
        raise BundleError(f"unknown custody event '{event}'", f"use one of: {', '.join(EVENTS)}")
    body: dict[str, Any] = {
        "seq": seq,
        "time": time or now_rfc3339(),
        "event": event,
        "case": case,
        "bundle": bundle,
        "actor": {**signer.identity.as_actor(), "public_key": signer.public_b64()},
        "host": socket.gethostname(),
        "tool": tool_info(),
        "details": details,
        "reason": reason,
        "prev": prev,
    }
    body["sig"] = base64.b64encode(signer.sign(canonical_bytes(body))).decode()
    return body


def event_line(event: dict[str, Any]) -> bytes:
    return canonical_bytes(event) + b"\n"


class CustodyWriter:
    """Builds custody.jsonl during a collection run, keeping the chain head in memory."""

    def __init__(self, path: Path, *, case: str, bundle: str, signer: Signer) -> None:
        self.case, self.bundle, self.signer = case, bundle, signer
        self.seq = 0
        self.prev = GENESIS
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)

    @classmethod
    def reopen(
        cls, path: Path, *, case: str, bundle: str, signer: Signer, seq: int, prev: str
    ) -> CustodyWriter:
        """Continue the chain of an interrupted run: `seq` and `prev` are its last line's."""
        self = cls.__new__(cls)
        self.case, self.bundle, self.signer = case, bundle, signer
        self.seq, self.prev = seq, prev
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        return self

    def add(self, event: str, details: dict[str, Any], reason: str = "") -> dict[str, Any]:
        self.seq += 1
        ev = make_event(
            seq=self.seq,
            event=event,
            case=self.case,
            bundle=self.bundle,
            signer=self.signer,
            details=details,
            reason=reason,
            prev=self.prev,
        )
        line = event_line(ev)
        os.write(self._fd, line)
        self.prev = sha256_hex(line[:-1])
        return ev

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)


@dataclass(frozen=True)
class ChainLine:
    """One custody line as stored: where it is, its exact bytes, and what it parsed to."""

    file: str
    number: int
    raw: bytes
    event: dict[str, Any] | None
    parse_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


def read_lines(bundle_dir: Path) -> list[ChainLine]:
    lines: list[ChainLine] = []
    for rel in (CUSTODY, CONTINUATION):
        path = bundle_dir / rel
        if not path.is_file():
            continue
        for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
            try:
                ev = json.loads(raw)
                if not isinstance(ev, dict):
                    raise ValueError("not a JSON object")
                lines.append(ChainLine(rel, number, raw, ev))
            except ValueError as exc:
                lines.append(ChainLine(rel, number, raw, None, str(exc)))
    return lines


def check_event_signature(ev: dict[str, Any]) -> str | None:
    """None when `sig` is a valid signature by `actor.key`; otherwise why not."""
    actor_value = ev.get("actor")
    actor: dict[str, Any] = actor_value if isinstance(actor_value, dict) else {}
    try:
        raw_pub = base64.b64decode(actor.get("public_key", ""), validate=True)
        sig = base64.b64decode(ev.get("sig", ""), validate=True)
        public = public_from_raw(raw_pub)
    except (binascii.Error, ValueError, TypeError):
        return "signature or public key is not valid base64 Ed25519"
    if fingerprint(raw_pub) != actor.get("key"):
        return "actor.public_key does not match actor.key"
    unsigned = {k: v for k, v in ev.items() if k != "sig"}
    try:
        message = canonical_bytes(unsigned)
    except BundleError:
        return "event holds a float and cannot be canonical"
    if not verify_signature(public, sig, message):
        return "signature does not match the event"
    return None


def verify_chain(bundle_dir: Path) -> tuple[list[Finding], list[ChainLine]]:
    """Every link, signature and sequence number of both custody files (SPEC §4)."""
    findings: list[Finding] = []
    lines = read_lines(bundle_dir)
    if not (bundle_dir / CUSTODY).is_file():
        findings.append(Finding("custody-missing", CUSTODY, "the custody log is missing"))
        return findings, lines
    tagmanifest = bundle_dir / TAGMANIFEST
    tag_hash = sha256_hex(tagmanifest.read_bytes()) if tagmanifest.is_file() else None
    prev_hash: str | None = None
    expected_seq = 1
    first_in: dict[str, bool] = {}
    for line in lines:
        first = line.file not in first_in
        first_in[line.file] = True
        if line.event is None:
            findings.append(
                Finding("custody-unreadable", line.where, f"line is not valid JSON ({line.parse_error})")
            )
            prev_hash = sha256_hex(line.raw)
            expected_seq += 1
            continue
        ev = line.event
        want_prev: str | None
        if first and line.file == CUSTODY:
            want_prev = GENESIS
        elif first and line.file == CONTINUATION:
            want_prev = tag_hash
        else:
            want_prev = prev_hash
        if ev.get("prev") != want_prev:
            findings.append(
                Finding(
                    "custody-link-broken",
                    line.where,
                    "prev does not match the line before it",
                    want_prev,
                    str(ev.get("prev")),
                )
            )
        if ev.get("seq") != expected_seq:
            findings.append(
                Finding(
                    "custody-seq-gap",
                    line.where,
                    "sequence number out of order",
                    str(expected_seq),
                    str(ev.get("seq")),
                )
            )
        problem = check_event_signature(ev)
        if problem:
            findings.append(Finding("custody-signature-invalid", line.where, problem))
        if canonical_safe(ev) and canonical_bytes(ev) != line.raw:
            findings.append(
                Finding("custody-not-canonical", line.where, "line is not in canonical serialization")
            )
        prev_hash = sha256_hex(line.raw)
        seq = ev.get("seq")
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    return findings, lines


def canonical_safe(ev: dict[str, Any]) -> bool:
    try:
        canonical_bytes(ev)
    except BundleError:
        return False
    return True


def _bundle_identity(bundle_dir: Path, lines: list[ChainLine]) -> tuple[str, str]:
    for line in lines:
        if line.event and line.event.get("event") == "sealed":
            return str(line.event.get("case", "")), str(line.event.get("bundle", ""))
    raise BundleError(f"{bundle_dir} has no 'sealed' custody event", "only sealed bundles take new events")


def append_event(
    bundle_dir: Path,
    signer: Signer,
    event: str,
    details: dict[str, Any],
    reason: str = "",
) -> dict[str, Any]:
    """Append one signed event to custody/continuation.jsonl, never rewriting what is there."""
    if bundle_dir.name.endswith(".incomplete"):
        raise BundleError(
            f"{bundle_dir} was never sealed", "custody events after sealing need a sealed bundle"
        )
    if event in SEALING_EVENTS:
        raise BundleError(f"'{event}' is written only by the sealing run")
    path = bundle_dir / CONTINUATION
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError as exc:
        raise BundleError(f"{path} is missing", "is this a sealbox bundle?") from exc
    except PermissionError as exc:
        raise BundleError(f"cannot append to {path}: permission denied") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = read_lines(bundle_dir)
        if any(line.event is None for line in lines):
            bad = next(line for line in lines if line.event is None)
            raise BundleError(f"custody line {bad.where} is unreadable", "run `sealbox verify` first")
        case, bundle = _bundle_identity(bundle_dir, lines)
        last = lines[-1]
        if last.file == CONTINUATION:
            prev = sha256_hex(last.raw)
        else:
            prev = sha256_hex((bundle_dir / TAGMANIFEST).read_bytes())
        seq = int(last.event["seq"]) + 1 if last.event else len(lines) + 1
        ev = make_event(
            seq=seq,
            event=event,
            case=case,
            bundle=bundle,
            signer=signer,
            details=details,
            reason=reason,
            prev=prev,
        )
        data = event_line(ev)
        with open(path, "rb") as check:
            existing = check.read()
        if existing and not existing.endswith(b"\n"):
            raise BundleError(f"{path} ends in a partial line", "run `sealbox verify` first")
        written = os.write(fd, data)
        if written != len(data):
            raise BundleError(f"short write to {path}: disk full?")
        os.fsync(fd)
    finally:
        os.close(fd)
    return ev
