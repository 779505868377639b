"""Custody receipts (SPEC §4.1): signed witnesses of the custody tail, kept outside the bundle.

An append-only log cannot show that its latest lines were deleted. Every event appended after
sealing therefore leaves a receipt in the appender's key store: (bundle id, seq, SHA-256 of the
exact line), signed with the same key. A log shorter than a receipt, or with another line at the
receipt's seq, was cut or rewritten. Receipts anchor only what someone kept: a log whose tail
no receipt covers is reported as "not anchored", never as verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.errors import BundleError
from manifest.findings import Finding
from manifest.format.canonical import canonical_bytes, strict_loads
from manifest.format.timefmt import now_rfc3339
from manifest.signing.custody import CONTINUATION, ChainLine, sha256_hex
from manifest.signing.keys import fingerprint, public_from_raw, verify_signature

if TYPE_CHECKING:
    from collections.abc import Iterable

    from manifest.signing.keys import KeyStore, Signer

RECEIPTS_DIR = "receipts"
RECEIPT_TYPE = "sealbox-custody-receipt"
# Signed bytes are this prefix + the canonical JSON: a receipt signature can never pass for a
# custody event's (same key) or the other way round.
SIGNING_PREFIX = b"sealbox-custody-receipt-v1\n"
RECEIPT_MAX_BYTES = 64 << 10
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_STR_FIELDS = ("type", "bundle", "case", "event", "line_sha256", "time", "bundle_path", "host", "sig")
_SIGNER_FIELDS = ("name", "role", "organization", "key", "public_key")


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt whose fields have the right types (its signature not yet checked)."""

    body: dict[str, Any]
    source: str

    @property
    def bundle(self) -> str:
        return str(self.body["bundle"])

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def line_sha256(self) -> str:
        return str(self.body["line_sha256"])

    @property
    def signer_key(self) -> str:
        return str(self.body["signer"]["key"])

    @property
    def signer_name(self) -> str:
        return str(self.body["signer"]["name"])

    @property
    def bundle_path(self) -> str:
        return str(self.body["bundle_path"])


def receipts_home(signer: Signer) -> Path:
    """The key store the signer's key came from (the actor's), else the default one."""
    if signer.home is not None:
        return signer.home
    from manifest.signing.keys import KeyStore

    return KeyStore.default().home


def bundle_receipt_dir(home: Path, bundle_id: str) -> Path:
    if not _SAFE_ID.fullmatch(bundle_id):
        raise BundleError(
            f"bundle id '{bundle_id}' cannot name a receipt directory",
            "a sealbox bundle id is letters, digits, '.', '_' and '-'",
        )
    return home / RECEIPTS_DIR / bundle_id


def prepare_receipt_dir(signer: Signer, bundle_id: str) -> Path:
    """Create (before anything is appended) the directory the receipt will go to."""
    directory = bundle_receipt_dir(receipts_home(signer), bundle_id)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BundleError(
            f"cannot create the receipt directory {directory}: {exc.strerror}",
            "a custody event is appended only when its receipt can be kept; fix the key store",
        ) from exc
    return directory


def make_receipt(signer: Signer, event: dict[str, Any], line: bytes, bundle_dir: Path) -> dict[str, Any]:
    """A signed receipt for `line` (without its newline), the stored form of `event`."""
    body: dict[str, Any] = {
        "type": RECEIPT_TYPE,
        "version": 1,
        "bundle": event["bundle"],
        "case": event["case"],
        "seq": event["seq"],
        "event": event["event"],
        "line_sha256": sha256_hex(line),
        "time": now_rfc3339(),
        "bundle_path": str(bundle_dir.resolve()),
        "host": socket.gethostname(),
        "signer": {**signer.identity.as_actor(), "public_key": signer.public_b64()},
    }
    body["sig"] = base64.b64encode(signer.sign(SIGNING_PREFIX + canonical_bytes(body))).decode()
    return body


def write_receipt(directory: Path, receipt: dict[str, Any]) -> Path:
    """Keep a receipt as `<seq>-<line hash prefix>.json`: two copies of a bundle that both took a
    new event at the same seq keep two receipts."""
    path = directory / f"{receipt['seq']:06d}-{receipt['line_sha256'][:16]}.json"
    data = canonical_bytes(receipt) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def receipt_file_bytes(receipt: dict[str, Any]) -> bytes:
    return canonical_bytes(receipt) + b"\n"


def parse_receipt(data: bytes, source: str) -> tuple[Receipt | None, str | None]:
    """(receipt, None) when `data` is a receipt with every field typed right, else (None, why)."""
    if len(data) > RECEIPT_MAX_BYTES:
        return None, f"larger than {RECEIPT_MAX_BYTES} bytes"
    try:
        body = strict_loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"not canonical JSON ({type(exc).__name__})"
    if not isinstance(body, dict) or body.get("type") != RECEIPT_TYPE:
        return None, "not a sealbox custody receipt"
    if body.get("version") != 1:
        return None, "unknown receipt version"
    for name in _STR_FIELDS:
        if not isinstance(body.get(name), str):
            return None, f"field '{name}' is missing or not a string"
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, "field 'seq' is not a positive integer"
    signer = body.get("signer")
    if not isinstance(signer, dict) or not all(isinstance(signer.get(k), str) for k in _SIGNER_FIELDS):
        return None, "field 'signer' lacks name, role, organization, key or public_key"
    return Receipt(body, source), None


def signature_problem(receipt: Receipt) -> str | None:
    """None when the receipt is signed by the key it names; else why not."""
    body = receipt.body
    try:
        raw_pub = base64.b64decode(body["signer"]["public_key"], validate=True)
        sig = base64.b64decode(body["sig"], validate=True)
        public = public_from_raw(raw_pub)
    except (binascii.Error, ValueError):
        return "signature or public key is not valid base64 Ed25519"
    if fingerprint(raw_pub) != body["signer"]["key"]:
        return "signer.public_key does not match signer.key"
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    if not verify_signature(public, sig, SIGNING_PREFIX + canonical_bytes(unsigned)):
        return "signature does not match the receipt"
    return None


def read_receipt_file(path: Path) -> tuple[Receipt | None, str | None]:
    """A receipt from a regular file (never a link, fifo or directory), or why not."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return None, "not a regular file"
    if st.st_size > RECEIPT_MAX_BYTES:
        return None, f"larger than {RECEIPT_MAX_BYTES} bytes"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}"
    try:
        data = os.read(fd, RECEIPT_MAX_BYTES + 1)
    finally:
        os.close(fd)
    return parse_receipt(data, str(path))


def _store_receipts(store: KeyStore | None, bundle_id: str) -> list[Path]:
    if store is None or not _SAFE_ID.fullmatch(bundle_id):
        return []
    directory = store.home / RECEIPTS_DIR / bundle_id
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(".json"))
    except OSError:
        return []


def check_custody_anchors(
    bundle_dir: Path,
    bundle_id: str,
    lines: list[ChainLine],
    store: KeyStore | None,
    trusted: set[str],
    extra_receipts: Iterable[Path] = (),
) -> tuple[list[Finding], str]:
    """Findings from every receipt found for this bundle, and the one summary line.

    Receipts given explicitly (`--receipt`, a package's head receipt) must match this log. A
    receipt in the local store applies strictly to the copy it was made for (its `bundle_path`);
    for another copy of the same bundle it anchors what it matches and is otherwise that other
    copy's branch (a bundle handed over goes on in two places)."""
    findings: list[Finding] = []
    here = str(bundle_dir.resolve())
    after_seal = sum(1 for line in lines if line.file == CONTINUATION)
    sources = [(path, False) for path in _store_receipts(store, bundle_id)]
    sources += [(Path(path), True) for path in extra_receipts]
    best: Receipt | None = None
    elsewhere: tuple[Receipt, Path] | None = None  # the furthest receipt of another copy not matched
    for path, given in sources:
        receipt, problem = read_receipt_file(path)
        if receipt is None:
            findings.append(Finding("receipt-malformed", str(path), problem or "unreadable receipt"))
            continue
        problem = signature_problem(receipt)
        if problem:
            findings.append(Finding("receipt-invalid", str(path), problem))
            continue
        if receipt.signer_key not in trusted:
            findings.append(
                Finding(
                    "receipt-untrusted",
                    str(path),
                    f"signed by {receipt.signer_key} ({receipt.signer_name}), which is not trusted",
                )
            )
            continue
        if receipt.bundle != bundle_id:
            findings.append(
                Finding(
                    "receipt-wrong-bundle",
                    str(path),
                    "receipt is for another bundle",
                    bundle_id,
                    receipt.bundle,
                )
            )
            continue
        strict = given or receipt.bundle_path == here
        if receipt.seq > len(lines):
            if strict:
                findings.append(
                    Finding(
                        "custody-tail-truncated",
                        CONTINUATION,
                        f"a receipt by {receipt.signer_name} ({path}) names event {receipt.seq}, "
                        "but the log ends before it: events were deleted",
                        f"at least {receipt.seq} events",
                        str(len(lines)),
                    )
                )
            elif elsewhere is None or receipt.seq > elsewhere[0].seq:
                elsewhere = (receipt, path)
            continue
        line = lines[receipt.seq - 1]
        if hashlib.sha256(line.raw).hexdigest() != receipt.line_sha256:
            if strict:
                findings.append(
                    Finding(
                        "custody-receipt-mismatch",
                        line.where,
                        f"event {receipt.seq} is not the one {receipt.signer_name} signed a receipt for "
                        f"({path}): the log was altered or forked",
                        receipt.line_sha256,
                        hashlib.sha256(line.raw).hexdigest(),
                    )
                )
            elif elsewhere is None or receipt.seq > elsewhere[0].seq:
                elsewhere = (receipt, path)
            continue
        if best is None or receipt.seq > best.seq:
            best = receipt
    if best is None:
        summary = f"custody after seal: {after_seal} events, not anchored"
    else:
        summary = (
            f"custody after seal: {after_seal} events, last anchored at seq {best.seq} "
            f"by {best.signer_name} ({best.signer_key})"
        )
    if elsewhere is not None:
        other, path = elsewhere
        # Said, not judged: a bundle handed over goes on in two places; if this is that copy
        # moved, the receipt given with --receipt makes it a strict check.
        summary += (
            f"; a receipt made for the copy at {other.bundle_path} names seq {other.seq}, "
            f"which this log does not hold (if this is that copy, verify with --receipt {path})"
        )
    return findings, summary
