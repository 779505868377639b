"""Chain-of-custody events (SPEC §4): canonical, hash-chained, Ed25519-signed JSON lines."""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import os
import shlex
import socket
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.errors import BundleError, UsageError
from manifest.findings import Finding
from manifest.format.bagit import CONTINUATION, INCOMPLETE, TAGMANIFEST
from manifest.format.canonical import canonical_bytes, strict_loads
from manifest.format.timefmt import now_rfc3339
from manifest.osio.readfd import read_at_most
from manifest.signing.keys import fingerprint, public_from_raw, verify_signature

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from manifest.signing.keys import Signer

CUSTODY = "custody/custody.jsonl"
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
    "accepted",
    "verified",
    "examined",
    "copied",
    "stored",
    "labelled",
    "disposed",
    "note",
)
DISPOSITIONS = ("returned", "destroyed", "retention-ended")
AUTHORITY_FIELDS = ("basis", "reference", "issued_by", "date")
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
        _note_signed(signer, bundle, case, path.parent.parent)

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


def _note_signed(signer: Signer, bundle: str, case: str, bundle_dir: Path) -> None:
    """Tell the signer's key store which bundle this key signs (`keys delete` refuses such a key).
    Best effort: a store that cannot take the line never stops a collection."""
    if signer.home is None:
        return
    from manifest.signing.keys import KeyStore

    try:
        KeyStore(signer.home).record_signed(signer.fingerprint, bundle, case, bundle_dir.absolute())
    except OSError:
        pass


@dataclass(frozen=True)
class ChainLine:
    """One custody line as stored: where it is, its exact bytes, and what it parsed to.

    `event` is None when the line is not a well-formed event; `problem_kind` and `parse_error`
    then say why (a finding kind and its text)."""

    file: str
    number: int
    raw: bytes
    event: dict[str, Any] | None
    parse_error: str | None = None
    problem_kind: str = "custody-unreadable"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


# A custody log grows by a few hundred bytes per event; anything near this is not a custody log.
CUSTODY_MAX_BYTES = 64 << 20
# Events are shallow (details holds small objects); deeper JSON is refused before any walk.
_HEX64 = frozenset("0123456789abcdef")
# Field -> type every event must carry (SPEC §4); `details` content is the event's own.
_EVENT_FIELDS: dict[str, type] = {
    "seq": int,
    "time": str,
    "event": str,
    "case": str,
    "bundle": str,
    "actor": dict,
    "host": str,
    "tool": dict,
    "details": dict,
    "reason": str,
    "prev": str,
    "sig": str,
}
_ACTOR_FIELDS = ("name", "role", "organization", "key", "public_key")


@dataclass(frozen=True)
class CustodyFile:
    """What reading one custody file found: its lines, or why it could not be read."""

    rel: str
    present: bool
    lines: list[ChainLine]
    problem: Finding | None = None


def event_problem(ev: Any) -> str | None:
    """None when `ev` has every field of an event with the right type; else which field is wrong."""
    if not isinstance(ev, dict):
        return "not a JSON object"
    for name, kind in _EVENT_FIELDS.items():
        value = ev.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"field '{name}' is missing or not a {kind.__name__}"
    actor = ev["actor"]
    for name in _ACTOR_FIELDS:
        if not isinstance(actor.get(name), str):
            return f"field 'actor.{name}' is missing or not a string"
    prev = ev["prev"]
    if len(prev) != 64 or not set(prev) <= _HEX64:
        return "field 'prev' is not a SHA-256 in lowercase hex"
    if ev["seq"] < 1:
        return "field 'seq' is not a positive integer"
    return None


def parse_line(rel: str, number: int, raw: bytes) -> ChainLine:
    """One stored line to a ChainLine; every way it can be wrong becomes its problem, never an
    exception (non-UTF-8, CR, not JSON, duplicate keys, floats, deep nesting, wrong types)."""

    def bad(kind: str, why: str) -> ChainLine:
        return ChainLine(rel, number, raw, None, why, kind)

    if raw.endswith(b"\r"):
        return bad("custody-line-ending", "line ends in CR LF; custody lines end in LF alone")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return bad("custody-not-utf8", f"byte {exc.start} is not UTF-8")
    try:
        ev = strict_loads(text)
    except RecursionError:
        return bad("custody-unreadable", "line is not valid JSON (nested too deeply)")
    except ValueError as exc:  # json's own errors and NotCanonical alike
        return bad("custody-unreadable", f"line is not valid JSON ({exc})")
    problem = event_problem(ev)
    if problem:
        return bad("custody-field-invalid", problem)
    return ChainLine(rel, number, raw, ev)


def _read_regular(path: Path, rel: str, cap: int) -> tuple[bytes | None, Finding | None]:
    """The bytes of `path` if it is a regular file of at most `cap` bytes; links, directories and
    fifos are never followed or opened for reading (a fifo would block, a link leave the bundle)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, Finding("custody-unreadable", rel, f"cannot read: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return None, Finding(
            "custody-file-not-regular", rel, f"is a {_kind_of(st.st_mode)}, not a regular file"
        )
    if st.st_size > cap:
        return None, Finding(
            "custody-too-large", rel, f"{st.st_size} bytes, more than the {cap}-byte cap of a custody log"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, Finding("custody-unreadable", rel, f"cannot read: {exc.strerror}")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, Finding("custody-file-not-regular", rel, "changed into a non-regular file")
        data = read_at_most(fd, cap + 1)  # one byte more tells a file grown past the cap
    finally:
        os.close(fd)
    if len(data) > cap:
        return None, Finding("custody-too-large", rel, f"grew past the {cap}-byte cap while read")
    return data, None


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "special file"


def read_custody_file(bundle_dir: Path, rel: str) -> CustodyFile:
    """One custody file split on LF only (what `sed -n Np` sees), each line parsed."""
    data, problem = _read_regular(bundle_dir / rel, rel, CUSTODY_MAX_BYTES)
    if data is None:
        return CustodyFile(rel, problem is not None, [], problem)
    parts = data.split(b"\n")
    tail = parts.pop()  # b"" when the file ends in LF, else a line without its newline
    lines = [parse_line(rel, number, raw) for number, raw in enumerate(parts, start=1)]
    if tail:
        number = len(parts) + 1
        why = "the last line has no newline (cut short?)"
        lines.append(ChainLine(rel, number, tail, None, why, "custody-line-partial"))
    return CustodyFile(rel, True, lines)


def read_lines(bundle_dir: Path) -> list[ChainLine]:
    return [line for rel in (CUSTODY, CONTINUATION) for line in read_custody_file(bundle_dir, rel).lines]


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
    files = [read_custody_file(bundle_dir, rel) for rel in (CUSTODY, CONTINUATION)]
    findings.extend(f.problem for f in files if f.problem is not None)
    lines = [line for f in files for line in f.lines]
    if not files[0].present:
        findings.append(Finding("custody-missing", CUSTODY, "the custody log is missing"))
        return findings, lines
    sealed = any(line.event and line.event["event"] == "sealed" for line in files[0].lines)
    if sealed and not files[1].present:
        findings.append(
            Finding(
                "custody-continuation-missing",
                CONTINUATION,
                "the log of events after sealing is missing (a sealed bundle always has one, maybe empty)",
            )
        )
    tag_hash = tagmanifest_sha256(bundle_dir)
    prev_hash: str | None = None
    expected_seq = 1
    first_in: dict[str, bool] = {}
    for line in lines:
        first = line.file not in first_in
        first_in[line.file] = True
        if line.event is None:
            findings.append(Finding(line.problem_kind, line.where, line.parse_error or "unreadable line"))
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
        if ev["prev"] != want_prev:
            findings.append(
                Finding(
                    "custody-link-broken",
                    line.where,
                    "prev does not match the line before it",
                    want_prev,
                    ev["prev"],
                )
            )
        if ev["seq"] != expected_seq:
            findings.append(
                Finding(
                    "custody-seq-gap",
                    line.where,
                    "sequence number out of order",
                    str(expected_seq),
                    str(ev["seq"]),
                )
            )
        problem = check_event_signature(ev)
        if problem:
            findings.append(Finding("custody-signature-invalid", line.where, problem))
        if canonical_bytes(ev) != line.raw:
            findings.append(
                Finding("custody-not-canonical", line.where, "line is not in canonical serialization")
            )
        prev_hash = sha256_hex(line.raw)
        expected_seq = ev["seq"] + 1
    return findings, lines


def tagmanifest_sha256(bundle_dir: Path) -> str | None:
    """SHA-256 of tagmanifest-sha256.txt (the continuation's first prev), None if not a readable file."""
    data, _problem = _read_regular(bundle_dir / TAGMANIFEST, TAGMANIFEST, CUSTODY_MAX_BYTES)
    return sha256_hex(data) if data is not None else None


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


@dataclass(frozen=True)
class Appended:
    """An appended event and the receipt kept for it in the actor's key store."""

    event: dict[str, Any]
    receipt: Path


def append_event(
    bundle_dir: Path,
    signer: Signer,
    event: str,
    details: dict[str, Any],
    reason: str = "",
) -> dict[str, Any]:
    """Append one signed event (see `append_event_with_receipt`); the event."""
    return append_event_with_receipt(bundle_dir, signer, event, details, reason).event


def append_event_with_receipt(
    bundle_dir: Path,
    signer: Signer,
    event: str,
    details: dict[str, Any] | Callable[[list[ChainLine]], dict[str, Any]],
    reason: str = "",
) -> Appended:
    """Append one signed event to custody/continuation.jsonl, never rewriting what is there, and
    keep a signed receipt of it in the signer's key store (SPEC §4.1).

    Refused unless continuation.jsonl is a regular file and the whole chain verifies: an event
    appended to a broken or cut log would lend it a fresh signature. `details` may be a function
    of the verified lines, called while the log is locked: it may raise to refuse (an accept by
    another key than the receiver the transfer names) and sees exactly the log appended to."""
    from manifest.signing.receipts import make_receipt, prepare_receipt_dir, write_receipt

    if bundle_dir.name.endswith(INCOMPLETE):
        raise BundleError(
            f"{bundle_dir} was never sealed", "custody events after sealing need a sealed bundle"
        )
    if event in SEALING_EVENTS:
        raise BundleError(f"'{event}' is written only by the sealing run")
    path = bundle_dir / CONTINUATION
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise BundleError(f"{path} is missing", "is this a sealbox bundle?") from exc
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(
            f"{path} is a {_kind_of(st.st_mode)}, not a regular file",
            "nothing was appended; run `sealbox verify` on the bundle",
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK)
    except PermissionError as exc:
        raise BundleError(f"cannot append to {path}: permission denied") from exc
    except OSError as exc:
        raise BundleError(f"cannot append to {path}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"{path} is not a regular file", "nothing was appended")
        fcntl.flock(fd, fcntl.LOCK_EX)
        findings, lines = verify_chain(bundle_dir)
        if findings:
            raise BundleError(
                f"the custody chain of {bundle_dir} does not hold ({findings[0].line()})",
                "nothing was appended; run `sealbox verify` on the bundle",
            )
        case, bundle = _bundle_identity(bundle_dir, lines)
        if callable(details):
            details = details(lines)
        receipt_dir = prepare_receipt_dir(signer, bundle)
        last = lines[-1]
        # The chain verified, so the tagmanifest is readable when continuation is still empty.
        prev = sha256_hex(last.raw) if last.file == CONTINUATION else tagmanifest_sha256(bundle_dir) or ""
        seq = len(lines) + 1
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
        written = os.write(fd, data)
        if written != len(data):
            raise BundleError(f"short write to {path}: disk full?")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        receipt = write_receipt(receipt_dir, make_receipt(signer, ev, data[:-1], bundle_dir))
    except OSError as exc:
        raise BundleError(
            f"custody event {seq} was appended to {bundle_dir}, but its receipt could not be kept "
            f"in {receipt_dir}: {exc.strerror}",
            "the event stands; fix the key store so later events keep their receipts",
        ) from exc
    return Appended(ev, receipt)


# --- Court fields (SPEC §4.2): two-party transfers, exhibits, the shape of new details --------

_TEXT = (str,)
# event -> details field -> accepted types; fields not named here are free (an event's own).
_DETAIL_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "transferred": {
        "to": _TEXT,
        "to_key": _TEXT,
        "to_contact": _TEXT,
        "method": _TEXT,
        "tracking": _TEXT,
        "storage_location": _TEXT,
        "seal": _TEXT,
        "purpose": _TEXT,
        "authority": (dict,),
    },
    "accepted": {
        "transfer_seq": (int,),
        "transfer_sha256": _TEXT,
        "seal": _TEXT,
        "seal_intact": (bool,),
        "storage_location": _TEXT,
        "condition": _TEXT,
    },
    "examined": {
        "purpose": _TEXT,
        "tools": (list,),
        "location": _TEXT,
        "result": _TEXT,
        "authority": (dict,),
    },
    "copied": {
        "destination": _TEXT,
        "method": _TEXT,
        "purpose": _TEXT,
        "copy_sha256": _TEXT,
        "verified": (bool,),
        "authority": (dict,),
    },
    "stored": {"location": _TEXT, "seal": _TEXT, "retain_until": _TEXT},
    "labelled": {"exhibit": (dict,)},
    "disposed": {
        "disposition": _TEXT,
        "to": _TEXT,
        "method": _TEXT,
        "witness": _TEXT,
        "authority": (dict,),
    },
    "collection-started": {"device": (dict,), "exhibit": (dict,), "authority": (dict,)},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "transferred": ("to",),
    "accepted": ("transfer_seq", "transfer_sha256"),
    "labelled": ("exhibit",),
    "disposed": ("disposition",),
}


def details_problem(ev: dict[str, Any]) -> str | None:
    """None when the details of a §4.2 event have the fields and types the spec gives them."""
    name = str(ev.get("event"))
    details: dict[str, Any] = ev.get("details") if isinstance(ev.get("details"), dict) else {}  # type: ignore[assignment]
    for field_name in _REQUIRED.get(name, ()):
        if details.get(field_name) in (None, ""):
            return f"'{name}' needs details.{field_name}"
    for field_name, kinds in _DETAIL_TYPES.get(name, {}).items():
        value = details.get(field_name)
        if value is None:
            continue
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            return f"details.{field_name} of '{name}' is not a {' or '.join(k.__name__ for k in kinds)}"
    for sub in ("authority", "exhibit"):
        value = details.get(sub)
        if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
            return f"details.{sub} of '{name}' must hold only strings"
    if name == "disposed" and details.get("disposition") not in DISPOSITIONS:
        return f"details.disposition is not one of {', '.join(DISPOSITIONS)}"
    tools = details.get("tools")
    if name == "examined" and isinstance(tools, list) and not all(isinstance(v, str) for v in tools):
        return "details.tools of 'examined' must be a list of strings"
    return None


@dataclass(frozen=True)
class Transfer:
    """One `transferred` event and the `accepted` event that completes it (None: still open)."""

    line: ChainLine
    accepted: ChainLine | None

    @property
    def event(self) -> dict[str, Any]:
        return self.line.event or {}

    @property
    def seq(self) -> int:
        return int(self.event.get("seq", 0))

    @property
    def open(self) -> bool:
        return self.accepted is None

    @property
    def to(self) -> str:
        return str(self.event.get("details", {}).get("to", ""))

    @property
    def to_key(self) -> str | None:
        key = self.event.get("details", {}).get("to_key")
        return key if isinstance(key, str) and key else None

    @property
    def giver_key(self) -> str:
        return str(self.event.get("actor", {}).get("key", ""))


def _accept_problem(
    transfer: Transfer | None, accept: ChainLine, transfer_sha: Any
) -> tuple[str, str] | None:
    """(finding kind, why) when `accept` does not countersign `transfer`."""
    if transfer is None:
        return "custody-accept-unmatched", "names no 'transferred' event before it"
    if transfer_sha != sha256_hex(transfer.line.raw):
        return "custody-accept-unmatched", f"transfer_sha256 is not the hash of event {transfer.seq}"
    key = (accept.event or {}).get("actor", {}).get("key")
    if transfer.to_key is not None and key != transfer.to_key:
        return (
            "custody-accept-wrong-key",
            f"signed by {key}, but transfer {transfer.seq} names {transfer.to_key}",
        )
    if transfer.to_key is None and key == transfer.giver_key:
        return "custody-accept-wrong-key", f"transfer {transfer.seq} accepted by its own giver"
    return None


def check_transfers(lines: list[ChainLine]) -> tuple[list[Transfer], list[Finding]]:
    """Every transfer with its countersignature, and the findings of accepts that do not hold
    (SPEC §4.2); also a finding for each §4.2 event whose details have the wrong shape."""
    findings: list[Finding] = []
    by_seq: dict[int, Transfer] = {}
    order: list[int] = []
    for line in lines:
        ev = line.event
        if ev is None:
            continue
        problem = details_problem(ev)
        if problem:
            findings.append(Finding("custody-details-invalid", line.where, problem))
            continue
        if ev["event"] == "transferred":
            by_seq[ev["seq"]] = Transfer(line, None)
            order.append(ev["seq"])
        elif ev["event"] == "accepted":
            details = ev["details"]
            transfer = by_seq.get(details["transfer_seq"])
            bad = _accept_problem(transfer, line, details["transfer_sha256"])
            if bad:
                findings.append(Finding(bad[0], line.where, bad[1]))
            elif transfer is not None and transfer.accepted is not None:
                findings.append(
                    Finding(
                        "custody-accept-repeated",
                        line.where,
                        f"transfer {transfer.seq} was already accepted at {transfer.accepted.where}",
                    )
                )
            elif transfer is not None:
                by_seq[transfer.seq] = Transfer(transfer.line, line)
    return [by_seq[s] for s in order], findings


def transfers(lines: list[ChainLine]) -> list[Transfer]:
    """Each `transferred` event with the `accepted` event completing it, in log order."""
    return check_transfers(lines)[0]


def open_transfers_note(found: list[Transfer]) -> str | None:
    """One line naming the transfers nobody has accepted yet, or None."""
    still = [t for t in found if t.open]
    if not still:
        return None
    named = "; ".join(f"seq {t.seq} to {t.to}" for t in still)
    return f"open transfers (not yet accepted by the receiver): {named}"


def current_exhibit(lines: list[ChainLine]) -> dict[str, str] | None:
    """The bundle's exhibit: that of the last `labelled` event, else of `collection-started`."""
    found: dict[str, str] | None = None
    for line in lines:
        ev = line.event
        if ev is None or ev.get("event") not in ("collection-started", "labelled"):
            continue
        exhibit = ev.get("details", {}).get("exhibit")
        if isinstance(exhibit, dict) and exhibit:
            found = {str(k): str(v) for k, v in exhibit.items()}
    return found


def authority_from(values: dict[str, str | None]) -> dict[str, str]:
    """An `authority` object from the keys given (basis, reference, issued_by, date)."""
    return {k: v for k in AUTHORITY_FIELDS if (v := values.get(k))}


def accept_details(
    lines: list[ChainLine], transfer_seq: int, acceptor_key: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The details of an `accepted` event countersigning transfer `transfer_seq`; refused (a
    BundleError) unless that transfer exists, is still open and names `acceptor_key` as receiver."""
    found = {t.seq: t for t in transfers(lines)}
    transfer = found.get(transfer_seq)
    if transfer is None:
        seqs = ", ".join(str(s) for s in found) or "none"
        raise UsageError(
            f"custody event {transfer_seq} is not a 'transferred' event",
            f"transfers in this log: {seqs} (see `sealbox custody show`)",
        )
    if transfer.accepted is not None:
        raise UsageError(f"transfer {transfer_seq} was already accepted ({transfer.accepted.where})")
    if transfer.to_key is not None and acceptor_key != transfer.to_key:
        raise UsageError(
            f"transfer {transfer_seq} names {transfer.to_key} ({transfer.to}) as receiver, "
            f"not your key {acceptor_key}",
            "only the named receiver accepts a transfer: use --key with their key",
        )
    if transfer.to_key is None and acceptor_key == transfer.giver_key:
        raise UsageError(f"transfer {transfer_seq} was made with your own key", "the receiver accepts it")
    details = {k: v for k, v in extra.items() if v is not None and v != ""}
    return {**details, "transfer_seq": transfer_seq, "transfer_sha256": sha256_hex(transfer.line.raw)}
