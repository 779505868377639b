"""Investigators' view of the mail in a bundle: list and filter the email index, export one
message as .eml with its provenance, extract its attachments with their hashes checked.

Reads only a bundle that verifies (FORMAT.md §6) unless the caller explicitly accepts one that
does not; every byte exported is re-hashed and compared with the index before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any

from collectors import outlook
from collectors.outlook_canonical import canonical_chunks
from manifest.errors import BundleError, SealboxError, UsageError
from manifest.format.timefmt import rfc3339_ns
from manifest.verify import verify_bundle

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from manifest.verify import VerifyReport

INDEX = "metadata/email-index.jsonl"
PROVENANCE = "X-Sealbox-Provenance"
_RAW_FORMATS = ("mbox", "maildir", "eml", "emlx")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


class BundleNotVerified(SealboxError):
    """The bundle does not verify, and the caller did not accept reading it anyway."""


def check_bundle(bundle: Path, trusted: set[str], *, unverified: bool) -> VerifyReport:
    """Verify the bundle first. Not verified: an error, unless `unverified` accepts it (the
    caller must then say so loudly)."""
    report = verify_bundle(bundle, trusted)
    if not report.ok and not unverified:
        raise BundleNotVerified(
            f"{bundle} does NOT verify ({len(report.findings)} finding(s)): its mail is not read",
            f"run `sealbox verify {bundle}` for the findings; add --unverified to read it anyway",
        )
    if not (bundle / INDEX).is_file():
        raise UsageError(f"{bundle} has no email index ({INDEX})", "collect with the email profile")
    return report


def iter_index(bundle: Path) -> Iterator[dict[str, Any]]:
    with (bundle / INDEX).open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise BundleError(f"{INDEX} line {number} is not JSON: {exc}") from None


def folder_of(entry: dict[str, Any]) -> str:
    """The folder in a PST/OST, else the mailbox file's original path."""
    return str(entry.get("folder") or entry.get("source_path") or "")


def parse_when(text: str, *, end_of_day: bool = False) -> str:
    """A date (2024-10-01) or RFC 3339 time as the index's UTC form, for text comparison."""
    try:
        if len(text) == 10:
            dt = datetime.fromisoformat(text).replace(tzinfo=UTC)
            if end_of_day:
                dt += timedelta(days=1) - timedelta(microseconds=1)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"'{text}' is not a date", "use YYYY-MM-DD or an RFC 3339 time") from None
    ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    return rfc3339_ns(ns)


@dataclass
class MailFilter:
    """Case-insensitive substrings; `to` matches To, Cc and Bcc; dates are inclusive."""

    sender: str | None = None
    to: str | None = None
    subject: str | None = None
    since: str | None = None
    until: str | None = None
    has_attachment: bool = False
    folder: str | None = None

    def __call__(self, e: dict[str, Any]) -> bool:
        def has(value: Any, needle: str | None) -> bool:
            return needle is None or needle.lower() in str(value or "").lower()

        when = e.get("date_utc")
        return (
            has(e.get("from"), self.sender)
            and has(" ".join(str(e.get(k) or "") for k in ("to", "cc", "bcc")), self.to)
            and has(e.get("subject"), self.subject)
            and has(folder_of(e), self.folder)
            and (self.since is None or (when is not None and when >= self.since))
            and (self.until is None or (when is not None and when <= self.until))
            and (not self.has_attachment or bool(e.get("attachments")))
        )


def list_messages(bundle: Path, wanted: MailFilter) -> list[dict[str, Any]]:
    """Message lines that pass the filter, oldest first (undated last), then by key."""
    found = [e for e in iter_index(bundle) if e.get("entry", "message") == "message" and wanted(e)]
    found.sort(key=lambda e: (e.get("date_utc") is None, e.get("date_utc") or "", str(e.get("key"))))
    return found


def resolve(bundle: Path, ref: str) -> dict[str, Any]:
    """One message by its key, its Message-ID, or a prefix of its SHA-256 (at least 8 digits)."""
    messages = [e for e in iter_index(bundle) if e.get("entry", "message") == "message"]
    exact = [e for e in messages if e.get("key") == ref]
    if not exact:
        bare = ref.strip().strip("<>")
        exact = [
            e for e in messages if e.get("message_id") and str(e["message_id"]).strip().strip("<>") == bare
        ]
    if not exact and re.fullmatch(r"[0-9a-fA-F]{8,64}", ref):
        exact = [e for e in messages if str(e.get("sha256") or "").startswith(ref.lower())]
    if not exact:
        raise UsageError(
            f"no message '{ref}' in {bundle}", "give a KEY from `sealbox mail ls`, a Message-ID or a SHA-256"
        )
    if len(exact) > 1:
        keys = ", ".join(str(e.get("key")) for e in exact[:10])
        raise UsageError(
            f"'{ref}' names {len(exact)} messages ({keys})", "give one KEY from `sealbox mail ls`"
        )
    return exact[0]


@dataclass
class Exported:
    """What `export_message` wrote and checked."""

    out: Path
    sha256: str
    attachments: list[tuple[Path, str]] = field(default_factory=list)


def _pct(value: str) -> str:
    # Provenance values stay one ASCII line without `;`: anyone can split and unquote them.
    return urllib.parse.quote(value, safe="/\\:@._-+=~ ()[]{},#!$&'*")


def provenance(bundle_id: str, entry: dict[str, Any], digest: str) -> str:
    parts = [
        ("bundle", bundle_id),
        ("item", str(entry.get("item"))),
        ("store", str(entry.get("source_path") or "")),
        ("folder", str(entry.get("folder") or "")),
        ("key", str(entry.get("key"))),
        ("sha256", digest),
    ]
    return f"{PROVENANCE}: " + "; ".join(f"{k}={_pct(v)}" for k, v in parts)


def _raw_bytes(bundle: Path, entry: dict[str, Any]) -> bytes:
    copy = bundle / str(entry["stored_as"])
    pos = entry.get("position") or {}
    with copy.open("rb") as fh:
        if "raw_offset" in pos:
            fh.seek(int(pos["raw_offset"]))
            return fh.read(int(pos["raw_length"]))
        return fh.read()


def _outlook_message(bundle: Path, entry: dict[str, Any]) -> tuple[Any, outlook.OutlookMessage, Any]:
    copy = bundle / str(entry["stored_as"])
    try:
        if entry["format"] == "outlook-msg":
            handle = outlook.open_msg(copy)
            return handle, outlook.msg_message(handle), handle
        store = outlook.open_store(copy)
        item = outlook.locate(store, entry["position"])
        return store, outlook.pff_message(item), item
    except outlook.StoreUnreadable as exc:
        raise BundleError(f"cannot read {entry['stored_as']}: {exc}") from None


def export_message(
    bundle: Path, entry: dict[str, Any], out: Path, bundle_id: str, attachments_dir: Path | None = None
) -> Exported:
    """Write the message as .eml: the provenance line, then exactly the bytes the index hashed
    (for a PST/OST or .msg message, its canonical form); attachments into `attachments_dir`."""
    if entry.get("parse_error") and entry.get("sha256") is None:
        raise BundleError(
            f"message {entry.get('key')} was not readable at collection: {entry['parse_error']}"
        )
    fmt = entry.get("format")
    handle = None
    if fmt in _RAW_FORMATS:
        body = _raw_bytes(bundle, entry)
        expected = entry.get("sha256")
        msg = None
    elif fmt in ("outlook-pst", "outlook-ost", "outlook-msg"):
        handle, msg, _item = _outlook_message(bundle, entry)
        body = b"".join(canonical_chunks(msg))
        expected = entry.get("canonical_sha256") if fmt == "outlook-msg" else entry.get("sha256")
    else:
        raise UsageError(f"message {entry.get('key')} is in format {fmt}, which cannot be exported")
    try:
        digest = hashlib.sha256(body).hexdigest()
        if digest != expected:
            raise BundleError(
                f"message {entry.get('key')}: the bytes read now (sha256 {digest}) are not those indexed"
                f" ({expected})",
                "the bundle's copy or index was altered; run `sealbox verify`",
            )
        # The provenance line ends as the message's first line does: `tail -n +2` gives it back.
        newline = b"\r\n" if body.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
        shown = entry.get("sha256") or digest
        head = provenance(bundle_id, entry, str(shown)).encode("ascii") + newline
        _write_new(out, [head, body])
        result = Exported(out, digest)
        if attachments_dir is not None:
            files = entry.get("attachment_files") or []
            parts = _outlook_attachments(msg) if msg is not None else _mime_attachments(body)
            result.attachments = _save_attachments(attachments_dir, parts, files, str(entry.get("key")))
        return result
    finally:
        if handle is not None and hasattr(handle, "close"):
            handle.close()


def _write_new(path: Path, pieces: Iterable[bytes]) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"{path} already exists", "choose another --out") from None
    with os.fdopen(fd, "wb") as fh:
        for piece in pieces:
            fh.write(piece)


def _mime_attachments(raw: bytes) -> Iterator[tuple[str | None, Iterable[bytes]]]:
    msg = BytesParser(policy=default_policy).parsebytes(raw)
    for part in msg.walk():
        filename = part.get_filename()
        if filename is not None or part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = part.as_bytes() if part.is_multipart() else b""
            yield filename, [payload]


def _outlook_attachments(msg: outlook.OutlookMessage) -> Iterator[tuple[str | None, Iterable[bytes]]]:
    for att in msg.attachments:
        yield att.name, att.chunks()


def safe_name(number: int, name: str | None) -> str:
    """`N-name` with path separators and control characters replaced: never outside the dir."""
    cleaned = _UNSAFE_NAME.sub("_", name or "attachment").strip(" .") or "attachment"
    return f"{number}-{cleaned[:200]}"


def _save_attachments(
    directory: Path,
    parts: Iterable[tuple[str | None, Iterable[bytes]]],
    indexed: list[dict[str, Any]],
    key: str,
) -> list[tuple[Path, str]]:
    directory.mkdir(parents=True, exist_ok=True)
    saved: list[tuple[Path, str]] = []
    bad: list[str] = []
    for number, (name, chunks) in enumerate(parts, start=1):
        target = directory / safe_name(number, name)
        h = hashlib.sha256()

        def hashed(chunks: Iterable[bytes] = chunks, h: Any = h) -> Iterator[bytes]:
            for chunk in chunks:
                h.update(chunk)
                yield chunk

        _write_new(target, hashed())
        digest = h.hexdigest()
        want = indexed[number - 1].get("sha256") if number <= len(indexed) else None
        if digest != want:
            bad.append(f"{target.name} (sha256 {digest}, index {want})")
        saved.append((target, digest))
    if len(saved) != len(indexed):
        bad.append(f"{len(saved)} attachment(s) found, {len(indexed)} indexed")
    if bad:
        raise BundleError(
            f"message {key}: attachment hashes do not match the index: " + "; ".join(bad),
            "the files were written for inspection; do not rely on them",
        )
    return saved
