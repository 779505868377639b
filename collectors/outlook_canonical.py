"""The canonical bytes of a message taken out of an Outlook store (FORMAT.md §9, "sealbox-outlook-1").

A PST/OST message has no raw bytes of its own: Outlook keeps properties. To give each message a
SHA-256 anyone can recompute, sealbox writes it as one RFC 5322 message by fixed rules (CRLF
line ends, fixed boundary, every part base64 in 76-character lines) and hashes those bytes.
The same bytes are what `sealbox mail export` writes after its provenance line.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

CANONICAL = "sealbox-outlook-1"
BOUNDARY = "sealbox-outlook-1"
# 57 input bytes make one 76-character base64 line: chunks of whole lines stream without a carry.
_B64_LINE = 57
_CHUNK = _B64_LINE * 16384
_MIME_FIELDS = {"mime-version", "content-type", "content-transfer-encoding"}
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ATTR_SAFE = "!#$&+-.^_`|~"  # RFC 5987 attr-char beside ALPHA / DIGIT
_EPOCH_AS_FILETIME = 116_444_736_000_000_000


@dataclass
class Attachment:
    """One attachment: its name and a way to read its bytes in chunks (never all at once)."""

    name: str
    chunks: Callable[[], Iterable[bytes]]
    embedded_message: bool = False
    method: int | None = None
    mime_tag: str | None = None
    error: str | None = None


@dataclass
class OutlookMessage:
    """The properties of one Outlook item that the canonical form and the index use."""

    message_class: str | None = None
    transport_headers: str | None = None
    message_id: str | None = None
    subject: str | None = None
    sender_name: str | None = None
    sender_address: str | None = None
    sender_smtp: str | None = None
    # (type 1 to / 2 cc / 3 bcc, display name, address, SMTP address)
    recipients: list[tuple[int, str | None, str | None, str | None]] = field(default_factory=list)
    sent_ns: int | None = None
    received_ns: int | None = None
    created_ns: int | None = None
    modified_ns: int | None = None
    plain: bytes | None = None
    html: bytes | None = None
    rtf: bytes | None = None
    attachments: list[Attachment] = field(default_factory=list)


def filetime_ns(filetime: int) -> int | None:
    """A Windows FILETIME (100 ns since 1601) as ns since 1970; None for 0 (no time)."""
    if filetime <= 0:
        return None
    return (filetime - _EPOCH_AS_FILETIME) * 100


def header_value(value: str) -> str:
    """Printable ASCII as is; anything else one RFC 2047 encoded word (UTF-8, base64), unfolded."""
    if _PRINTABLE.fullmatch(value):
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode("utf-8", "surrogatepass")).decode() + "?="


def mailbox(name: str | None, address: str | None) -> str | None:
    """`name <address>`, or whichever of the two exists."""
    if name and address:
        return f"{name} <{address}>"
    return name or address or None


def rfc5322_date(ns: int) -> str:
    """`Mon, 15 Mar 2010 17:12:05 +0000`: English names, two-digit day, whole seconds, UTC."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[dt.weekday()]}, {dt.day:02d} {months[dt.month - 1]} {dt.year} {dt:%H:%M:%S} +0000"


def transport_header_lines(headers: str) -> list[str]:
    """The transport headers as lines, MIME fields (and their continuation lines) removed."""
    lines = re.split(r"\r\n|\n|\r", headers)
    while lines and lines[-1] == "":
        lines.pop()
    out: list[str] = []
    dropping = False
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not dropping:
                out.append(line)
            continue
        name = line.split(":", 1)[0].strip().lower()
        dropping = name in _MIME_FIELDS
        if not dropping:
            out.append(line)
    return out


def synthesized_header_lines(msg: OutlookMessage) -> list[str]:
    """Message-ID, Date, From, To, Cc, Bcc, Subject, in that order, those that have a value."""
    out: list[str] = []
    if msg.message_id:
        out.append("Message-ID: " + header_value(msg.message_id.strip()))
    if msg.sent_ns is not None:
        out.append("Date: " + rfc5322_date(msg.sent_ns))
    sender = mailbox(msg.sender_name, msg.sender_address)
    if sender:
        out.append("From: " + header_value(sender))
    for kind, label in ((1, "To"), (2, "Cc"), (3, "Bcc")):
        people = [mailbox(n, a) for t, n, a, _s in msg.recipients if t == kind]
        named = [p for p in people if p]
        if named:
            out.append(f"{label}: " + header_value(", ".join(named)))
    if msg.subject:
        out.append("Subject: " + header_value(msg.subject))
    return out


def _b64_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        whole = len(data) - len(data) % _B64_LINE
        carry = data[whole:]
        if whole:
            yield _encode_lines(data[:whole])
    if carry:
        yield _encode_lines(carry)


def _encode_lines(data: bytes) -> bytes:
    return b"".join(
        base64.b64encode(data[i : i + _B64_LINE]) + b"\r\n" for i in range(0, len(data), _B64_LINE)
    )


def attachment_name_param(name: str) -> str:
    return "utf-8''" + urllib.parse.quote(name, safe=_ATTR_SAFE)


def canonical_chunks(
    msg: OutlookMessage, on_attachment: Callable[[int, bytes], None] | None = None
) -> Iterator[bytes]:
    """The canonical bytes, in pieces. `on_attachment(index, chunk)` sees each attachment's raw
    bytes as they pass (to hash or save them without reading them twice)."""
    if msg.transport_headers:
        head = transport_header_lines(msg.transport_headers)
    else:
        head = synthesized_header_lines(msg)
    head += ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"', ""]
    yield ("\r\n".join(head) + "\r\n").encode("utf-8", "surrogatepass")
    bodies = (
        ("text/plain; charset=utf-8", msg.plain),
        ("text/html", msg.html),
        ("application/rtf", msg.rtf),
    )
    for ctype, body in bodies:
        if body is None:
            continue
        yield _part_head(f"Content-Type: {ctype}")
        yield from _b64_lines([body])
    for index, att in enumerate(msg.attachments):
        yield _part_head(
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment; filename*=" + attachment_name_param(att.name),
        )
        yield from _b64_lines(_tee(att.chunks(), index, on_attachment))
    yield f"--{BOUNDARY}--\r\n".encode()


def _part_head(*fields: str) -> bytes:
    lines = [f"--{BOUNDARY}", *fields, "Content-Transfer-Encoding: base64", ""]
    return ("\r\n".join(lines) + "\r\n").encode()


def _tee(chunks: Iterable[bytes], index: int, seen: Callable[[int, bytes], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        if seen is not None:
            seen(index, chunk)
        yield chunk


@dataclass
class Digest:
    """SHA-256 and size of a message's canonical bytes and of each attachment's raw bytes."""

    sha256: str
    size: int
    attachments: list[tuple[str, int]]


def digest(msg: OutlookMessage) -> Digest:
    """Hash the canonical form in one pass, attachments included."""
    total = hashlib.sha256()
    size = 0
    per = [hashlib.sha256() for _ in msg.attachments]
    sizes = [0] * len(msg.attachments)

    def seen(index: int, chunk: bytes) -> None:
        per[index].update(chunk)
        sizes[index] += len(chunk)

    for piece in canonical_chunks(msg, seen):
        total.update(piece)
        size += len(piece)
    return Digest(total.hexdigest(), size, [(h.hexdigest(), n) for h, n in zip(per, sizes, strict=True)])
