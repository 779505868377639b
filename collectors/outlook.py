"""Outlook stores in the email index: PST and OST through libpff-python, `.msg` through extract-msg.

Always reads the copy in the bundle, never the live file: an OST that Outlook is still syncing
was copied first, so what is parsed is exactly what was hashed. A store that cannot be opened
(encrypted, corrupt, truncated) becomes one `store` line with `parse_error`; a folder or message
that cannot be read becomes a line with `parse_error` and the walk goes on.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collectors.outlook_canonical import (
    CANONICAL,
    Attachment,
    OutlookMessage,
    digest,
    filetime_ns,
    mailbox,
)
from manifest.format.timefmt import rfc3339_ns

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

# MAPI property tags (MS-OXPROPS).
PR_MESSAGE_CLASS = 0x001A
PR_SUBJECT = 0x0037
PR_CLIENT_SUBMIT_TIME = 0x0039
PR_TRANSPORT_MESSAGE_HEADERS = 0x007D
PR_RECIPIENT_TYPE = 0x0C15
PR_SENDER_NAME = 0x0C1A
PR_SENDER_EMAIL_ADDRESS = 0x0C1F
PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_INTERNET_MESSAGE_ID = 0x1035
PR_DISPLAY_NAME = 0x3001
PR_EMAIL_ADDRESS = 0x3003
PR_CREATION_TIME = 0x3007
PR_LAST_MODIFICATION_TIME = 0x3008
PR_ATTACH_FILENAME = 0x3704
PR_ATTACH_METHOD = 0x3705
PR_ATTACH_LONG_FILENAME = 0x3707
PR_ATTACH_MIME_TAG = 0x370E
PR_SMTP_ADDRESS = 0x39FE
PR_SENDER_SMTP_ADDRESS = 0x5D01
PR_PST_PASSWORD = 0x67FF
ATTACH_EMBEDDED_MSG = 5
_STRING_TYPES = (0x001E, 0x001F)
_CRYPT = {0: "none", 1: "compressible", 2: "high", 0x10: "edp"}
# Header bytes 0x200/0x201 (ANSI / Unicode PST): bCryptMethod. 0x10 is Windows Information
# Protection: the store is encrypted to a key sealbox does not have.
_CRYPT_OFFSET = {14: 0x1CD, 15: 0x1CD, 23: 0x201, 36: 0x201}
_READ_CHUNK = 1 << 20


@dataclass
class StoreReport:
    """What was found in one PST/OST, for its `store` line."""

    messages: int = 0
    recovered: int = 0
    folders: int = 0
    errors: int = 0
    encryption: str | None = None
    password_protected: bool | None = None
    parse_error: str | None = None


def _entry(record_set: Any, tag: int) -> Any:
    try:
        return record_set.get_entry_by_type(tag)
    except Exception:  # libpff raises on a damaged table; a missing property is None
        return None


def _string(record_set: Any, tag: int) -> str | None:
    entry = _entry(record_set, tag)
    if entry is None or entry.value_type not in _STRING_TYPES:
        return None
    try:
        value = entry.data_as_string
    except Exception:
        return None
    return value if value else None


def _integer(record_set: Any, tag: int) -> int | None:
    entry = _entry(record_set, tag)
    if entry is None or not entry.data:
        return None
    return int.from_bytes(entry.data[:8], "little")


def _time(record_set: Any, tag: int) -> int | None:
    entry = _entry(record_set, tag)
    if entry is None or entry.value_type != 0x0040 or not entry.data or len(entry.data) < 8:
        return None
    return filetime_ns(int.from_bytes(entry.data[:8], "little"))


def subject_without_prefix_marker(value: str | None) -> str | None:
    """Outlook may start PR_SUBJECT with U+0001 and a length character: both are dropped."""
    if value and value.startswith("\x01"):
        value = value[2:]
    return value or None


def _record_set(obj: Any) -> Any:
    try:
        return obj.get_record_set(0) if obj.number_of_record_sets else None
    except Exception:
        return None


def _body(item: Any, name: str) -> bytes | None:
    try:
        value = getattr(item, name, None)
    except Exception:  # a body that cannot be read is left out; the rest of the message is kept
        return None
    return value if value else None


def _pff_chunks(att: Any) -> Iterator[bytes]:
    remaining = att.size or 0
    att.seek_offset(0)
    while remaining > 0:
        chunk = att.read_buffer(min(_READ_CHUNK, remaining))
        if not chunk:
            raise OSError(f"attachment ends {remaining} bytes early")
        remaining -= len(chunk)
        yield chunk


def _pff_attachment(att: Any, number: int) -> Attachment:
    rs = _record_set(att)
    name = None
    method = None
    mime = None
    if rs is not None:
        name = (
            _string(rs, PR_ATTACH_LONG_FILENAME)
            or _string(rs, PR_ATTACH_FILENAME)
            or _string(rs, PR_DISPLAY_NAME)
        )
        method = _integer(rs, PR_ATTACH_METHOD)
        mime = _string(rs, PR_ATTACH_MIME_TAG)
    return Attachment(
        name=name or f"attachment-{number}",
        chunks=lambda: _pff_chunks(att),
        embedded_message=method == ATTACH_EMBEDDED_MSG,
        method=method,
        mime_tag=mime,
    )


def pff_message(item: Any) -> OutlookMessage:
    """An Outlook item read through libpff-python into the canonical model."""
    rs = _record_set(item)
    msg = OutlookMessage()
    if rs is not None:
        msg.message_class = _string(rs, PR_MESSAGE_CLASS)
        msg.transport_headers = _string(rs, PR_TRANSPORT_MESSAGE_HEADERS)
        msg.message_id = _string(rs, PR_INTERNET_MESSAGE_ID)
        msg.subject = subject_without_prefix_marker(_string(rs, PR_SUBJECT))
        msg.sender_name = _string(rs, PR_SENDER_NAME)
        msg.sender_address = _string(rs, PR_SENDER_EMAIL_ADDRESS)
        msg.sender_smtp = _string(rs, PR_SENDER_SMTP_ADDRESS)
        msg.sent_ns = _time(rs, PR_CLIENT_SUBMIT_TIME)
        msg.received_ns = _time(rs, PR_MESSAGE_DELIVERY_TIME)
        msg.created_ns = _time(rs, PR_CREATION_TIME)
        msg.modified_ns = _time(rs, PR_LAST_MODIFICATION_TIME)
    recipients = getattr(item, "recipients", None)
    if recipients is not None:
        for i in range(recipients.number_of_record_sets):
            r = recipients.get_record_set(i)
            kind = _integer(r, PR_RECIPIENT_TYPE) or 1
            msg.recipients.append(
                (
                    kind & 0x0F,
                    _string(r, PR_DISPLAY_NAME),
                    _string(r, PR_EMAIL_ADDRESS),
                    _string(r, PR_SMTP_ADDRESS),
                )
            )
    msg.plain = _body(item, "plain_text_body")
    msg.html = _body(item, "html_body")
    msg.rtf = _body(item, "rtf_body")
    for i in range(getattr(item, "number_of_attachments", 0) or 0):
        msg.attachments.append(_pff_attachment(item.get_attachment(i), i + 1))
    return msg


def _ns(value: int | None) -> str | None:
    return None if value is None else rfc3339_ns(value)


def _people(msg: OutlookMessage, kind: int) -> str | None:
    found = [mailbox(n, s or a) for t, n, a, s in msg.recipients if t == kind]
    named = [p for p in found if p]
    return ", ".join(named) if named else None


def message_fields(msg: OutlookMessage) -> dict[str, Any]:
    """Index fields of one Outlook message, hashes included (reads its attachments once)."""
    d = digest(msg)
    attachments = []
    for att, (sha, size) in zip(msg.attachments, d.attachments, strict=True):
        entry: dict[str, Any] = {"name": att.name, "size": size, "sha256": sha}
        if att.embedded_message:
            entry["embedded_message"] = True
        if att.mime_tag:
            entry["content_type"] = att.mime_tag
        attachments.append(entry)
    sent = msg.sent_ns if msg.sent_ns is not None else msg.received_ns
    return {
        "canonical": CANONICAL,
        "sha256": d.sha256,
        "size": d.size,
        "message_class": msg.message_class,
        "message_id": msg.message_id.strip() if msg.message_id else None,
        "date": None,
        "date_utc": _ns(sent),
        "sent_utc": _ns(msg.sent_ns),
        "received_utc": _ns(msg.received_ns),
        "created_utc": _ns(msg.created_ns),
        "modified_utc": _ns(msg.modified_ns),
        "from": mailbox(msg.sender_name, msg.sender_smtp or msg.sender_address),
        "to": _people(msg, 1),
        "cc": _people(msg, 2),
        "bcc": _people(msg, 3),
        "subject": msg.subject,
        "transport_headers": msg.transport_headers,
        "attachments": [a["name"] for a in attachments],
        "attachment_files": attachments,
        "parse_error": None,
    }


def crypt_method(path: Path) -> int | None:
    """The store's bCryptMethod byte from its header, or None when the header is not a PST's."""
    with path.open("rb") as fh:
        head = fh.read(0x210)
    if len(head) < 0x210 or head[:4] != b"!BDN":
        return None
    version = int.from_bytes(head[10:12], "little")
    offset = _CRYPT_OFFSET.get(version)
    return None if offset is None else head[offset]


def open_store(path: Path) -> Any:
    """The store opened with libpff, or a one-line reason it cannot be read."""
    import pypff

    crypt = None
    try:
        crypt = crypt_method(path)
    except OSError as exc:
        raise StoreUnreadable(f"cannot read copy: {exc}") from exc
    if crypt == 0x10:
        raise StoreUnreadable(
            "encrypted store (Windows Information Protection, bCryptMethod 0x10): cannot be read"
            " without the owner's key; the copy is preserved as collected"
        )
    store = pypff.file()
    try:
        store.open(str(path))
    except Exception as exc:
        reason = libpff_cause(exc)
        if crypt is None:
            raise StoreUnreadable(f"not a readable PST/OST (no valid header): {reason}") from exc
        raise StoreUnreadable(f"libpff cannot open the store: {reason}") from exc
    return store


class StoreUnreadable(Exception):
    """A store that libpff cannot open at all."""


@dataclass
class Found:
    """One message (or an error in its place) found in a store."""

    position: dict[str, Any]
    folder: str | None
    recovered: bool
    fields: dict[str, Any]


def _folder_name(folder: Any) -> str:
    try:
        return folder.name or ""
    except Exception:
        return ""


def _read(item: Any, position: dict[str, Any], folder: str | None, recovered: bool) -> Found:
    try:
        position = {**position, "node": item.identifier}
    except Exception:
        pass
    try:
        return Found(position, folder, recovered, message_fields(pff_message(item)))
    except Exception as exc:  # one unreadable message never stops the store
        return Found(position, folder, recovered, {"parse_error": f"cannot read item: {_reason(exc)}"})


def _reason(exc: BaseException) -> str:
    text = libpff_cause(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def libpff_cause(exc: BaseException) -> str:
    """libpff's error is a chain of `function: text.` sentences, outermost first; the second
    one names the cause (the first only says that the call failed)."""
    sentences = [s.strip() for s in str(exc).replace("\n", " ").split(". ") if s.strip()]
    if not sentences:
        return type(exc).__name__
    cause = sentences[1] if len(sentences) > 1 else sentences[0]
    return re.sub(r"^\w+: ", "", cause).rstrip(".")


def walk_store(store: Any, report: StoreReport) -> Iterator[Found]:
    """Every message in every folder (depth first, in store order), then the orphan items."""
    try:
        root = store.get_root_folder()
    except Exception as exc:
        report.errors += 1
        yield Found({"folders": []}, None, False, {"parse_error": f"cannot read root folder: {_reason(exc)}"})
        root = None
    if root is not None:
        yield from _walk_folder(root, [], [], report)
    try:
        orphans = store.number_of_orphan_items
    except Exception as exc:
        report.errors += 1
        yield Found(
            {"orphan": None}, None, True, {"parse_error": f"cannot list orphan items: {_reason(exc)}"}
        )
        orphans = 0
    for i in range(orphans):
        try:
            item = store.get_orphan_item(i)
        except Exception as exc:
            report.errors += 1
            yield Found(
                {"orphan": i}, None, True, {"parse_error": f"cannot read orphan item: {_reason(exc)}"}
            )
            continue
        found = _read(item, {"orphan": i}, None, True)
        report.recovered += 1
        report.errors += bool(found.fields.get("parse_error"))
        yield found


def _walk_folder(folder: Any, names: list[str], indices: list[int], report: StoreReport) -> Iterator[Found]:
    path = "/".join(names)
    report.folders += 1
    try:
        count = folder.number_of_sub_messages
    except Exception as exc:
        report.errors += 1
        yield Found({"folders": indices}, path, False, {"parse_error": f"cannot list folder: {_reason(exc)}"})
        count = 0
    for i in range(count):
        position = {"folders": indices, "message": i}
        try:
            item = folder.get_sub_message(i)
        except Exception as exc:
            report.errors += 1
            yield Found(position, path, False, {"parse_error": f"cannot read message: {_reason(exc)}"})
            continue
        found = _read(item, position, path, False)
        report.messages += 1
        report.errors += bool(found.fields.get("parse_error"))
        yield found
    try:
        subfolders = folder.number_of_sub_folders
    except Exception as exc:
        report.errors += 1
        yield Found(
            {"folders": indices}, path, False, {"parse_error": f"cannot list subfolders: {_reason(exc)}"}
        )
        return
    for i in range(subfolders):
        try:
            sub = folder.get_sub_folder(i)
        except Exception as exc:
            report.errors += 1
            yield Found(
                {"folders": [*indices, i]},
                path,
                False,
                {"parse_error": f"cannot read folder: {_reason(exc)}"},
            )
            continue
        name = _folder_name(sub)
        yield from _walk_folder(sub, [*names, name] if names or name else names, [*indices, i], report)


def store_facts(store: Any, report: StoreReport) -> None:
    """Encryption and password flags of an opened store (the password is never needed to read)."""
    try:
        report.encryption = _CRYPT.get(store.encryption_type, str(store.encryption_type))
    except Exception:
        report.encryption = None
    try:
        rs = _record_set(store.get_message_store())
        report.password_protected = bool(_integer(rs, PR_PST_PASSWORD)) if rs is not None else None
    except Exception:
        report.password_protected = None


def locate(store: Any, position: dict[str, Any]) -> Any:
    """The item at an index `position` (folder indices and message number, or an orphan number)."""
    if position.get("orphan") is not None:
        return store.get_orphan_item(position["orphan"])
    folder = store.get_root_folder()
    for i in position["folders"]:
        folder = folder.get_sub_folder(i)
    return folder.get_sub_message(position["message"])


# ---------------------------------------------------------------- .msg


def msg_message(msg: Any) -> OutlookMessage:
    """A message opened with extract-msg, in the canonical model (embedded .msg: their canonical
    bytes become the attachment's bytes)."""
    from collectors.outlook_canonical import canonical_chunks

    out = OutlookMessage()
    out.message_class = _safe(lambda: msg.classType)
    out.transport_headers = _safe(lambda: msg.headerText) or None
    out.message_id = _safe(lambda: msg.messageId)
    out.subject = _safe(lambda: msg.subject) or None
    out.sender_name = _safe(lambda: msg.getStringStream("__substg1.0_0C1A"))
    out.sender_address = _safe(lambda: msg.getStringStream("__substg1.0_0C1F"))
    out.sender_smtp = _safe(lambda: msg.getStringStream("__substg1.0_5D01"))
    for tag, attr in (
        ("0039", "sent_ns"),
        ("0E06", "received_ns"),
        ("3007", "created_ns"),
        ("3008", "modified_ns"),
    ):
        value = _safe(lambda tag=tag: msg.props.get(tag + "0040").value)
        if value is not None:
            setattr(out, attr, int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000)
    for r in _safe(lambda: msg.recipients) or []:
        kind = int(_safe(lambda r=r: r.type) or 1)
        out.recipients.append((kind & 0x0F, _safe(lambda r=r: r.name), _safe(lambda r=r: r.email), None))
    body = _safe(lambda: msg.body)
    out.plain = body.encode("utf-8", "surrogatepass") if body else None
    out.html = _safe(lambda: msg.htmlBody) or None
    out.rtf = _safe(lambda: msg.rtfBody) or None
    for number, att in enumerate(_safe(lambda: msg.attachments) or [], start=1):
        data = _safe(lambda att=att: att.data)
        name = _safe(lambda att=att: att.longFilename or att.shortFilename or att.displayName)
        mime = _safe(lambda att=att: att.mimetype)
        if isinstance(data, bytes):
            out.attachments.append(Attachment(name or f"attachment-{number}", _const(data), mime_tag=mime))
        elif data is not None and hasattr(data, "attachments"):
            inner = msg_message(data)
            out.attachments.append(
                Attachment(
                    (name or f"attachment-{number}") + ".eml",
                    functools.partial(canonical_chunks, inner),
                    embedded_message=True,
                )
            )
        else:
            out.attachments.append(
                Attachment(name or f"attachment-{number}", lambda: [], error="attachment data not readable")
            )
    return out


def _const(data: bytes) -> Callable[[], Iterable[bytes]]:
    return lambda: [data]


def _safe(get: Any) -> Any:
    try:
        return get()
    except Exception:  # extract-msg raises on damaged streams; the property is then absent
        return None


def open_msg(path: Path) -> Any:
    import extract_msg

    # extract-msg logs each problem it meets; the index records them, the console stays quiet.
    quiet = logging.getLogger("extract_msg")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        return extract_msg.openMsg(str(path), strict=False)
    except Exception as exc:
        raise StoreUnreadable(f"not a readable .msg: {_reason(exc)}") from exc


def msg_fields(path: Path) -> dict[str, Any]:
    """Index fields of one .msg file; its `sha256` is the file's own (the message is the file)."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            h.update(chunk)
            size += len(chunk)
    base = {"canonical": "file", "sha256": h.hexdigest(), "size": size}
    try:
        msg = open_msg(path)
    except StoreUnreadable as exc:
        return {**base, "attachments": [], "attachment_files": [], "parse_error": str(exc)}
    try:
        fields = message_fields(msg_message(msg))
    except Exception as exc:
        return {
            **base,
            "attachments": [],
            "attachment_files": [],
            "parse_error": f"cannot read message: {_reason(exc)}",
        }
    finally:
        _safe(msg.close)
    # The export of a .msg is its canonical form: kept so that an export can be checked too.
    fields["canonical_sha256"] = fields.pop("sha256")
    fields["canonical_size"] = fields.pop("size")
    fields.update(base)
    return fields


def iter_pff(path: Path) -> tuple[StoreReport, Iterable[Found]]:
    """Open a PST/OST copy: its report (filled as the walk proceeds) and its messages."""
    report = StoreReport()
    try:
        store = open_store(path)
    except StoreUnreadable as exc:
        report.parse_error = str(exc)
        return report, []
    store_facts(store, report)

    def walk() -> Iterator[Found]:
        try:
            yield from walk_store(store, report)
        finally:
            store.close()
        if report.errors:
            report.parse_error = f"{report.errors} folder(s) or item(s) could not be read (see their lines)"

    return report, walk()
