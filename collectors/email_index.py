"""`metadata/email-index.jsonl`: one line per message in the collected mail stores.

Works on the copies in the bundle (never on the source), and only on items that were collected.
Formats: Maildir files (cur/new/tmp), mbox (system spools, ~/mbox, Thunderbird/Icedove folders,
legacy Evolution), .eml, Apple Mail .emlx, and Outlook .pst/.ost/.msg (collectors/outlook.py). A
message or store that cannot be parsed is indexed with `parse_error`; it never fails the run.
Every line has `entry` ("message", or "store" for the one summary line of each PST/OST) and a
`key` unique in the bundle, which `sealbox mail export` takes.

For an mbox message, `raw_offset`/`raw_length` give the exact bytes hashed: from the line after
the `From ` separator up to (not including) the blank line before the next separator, so
`tail -c +$((raw_offset+1)) FILE | head -c raw_length | sha256sum` reproduces `sha256`.
"""

from __future__ import annotations

import calendar
import email.errors
import email.header
import email.policy
import email.utils
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, BinaryIO

from collectors import outlook
from manifest.format.timefmt import rfc3339_ns

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

# compat32 and six decoded headers, not policy.default's header objects for every field: the same
# values for the index at a fraction of the cost (scripts/bench-mail compares with mailbox.mbox).
_PARSER = BytesParser(policy=email.policy.compat32)
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n$")
_SURROGATE = re.compile("[\udc80-\udcff]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_OUTLOOK = {".pst": "outlook-pst", ".ost": "outlook-ost", ".msg": "outlook-msg"}
_MAILDIR_SUBDIRS = ("cur", "new", "tmp")
_EMLX_HEAD = re.compile(rb"^\s*(\d+)\s*\r?\n")
_FATAL_DEFECTS = (email.errors.MissingHeaderBodySeparatorDefect,)


@dataclass(frozen=True)
class MailItem:
    """A collected item that holds mail, and in which format."""

    item: dict[str, Any]
    format: str


def _split_path(source_path: str) -> list[str]:
    return re.split(r"[\\/]", source_path)


def classify(item: dict[str, Any], head: bytes) -> str | None:
    """The mail format of one collected file from its original path and first bytes, or None."""
    parts = _split_path(item.get("source_path") or "")
    name = parts[-1].lower() if parts else ""
    for ext, fmt in _OUTLOOK.items():
        if name.endswith(ext):
            return fmt
    if name.endswith(".emlx") and not name.endswith(".partial.emlx"):
        return "emlx"
    if name.endswith(".eml"):
        return "eml"
    if len(parts) >= 2 and parts[-2] in _MAILDIR_SUBDIRS and not name.startswith("."):
        return "maildir"
    if head.startswith(b"From "):
        return "mbox"
    return None


def _text(value: str) -> str:
    """A header value as one line of text: unfolded, raw 8-bit bytes read as UTF-8."""
    if "\n" in value:
        value = _FOLD.sub("", value)
    if _SURROGATE.search(value):  # the parser keeps undecodable bytes as surrogates
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value


def _header(headers: dict[str, Any], name: str, errors: dict[str, str]) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    if not isinstance(value, str):  # compat32 gives a Header object for odd input
        value = str(value)
    value = _text(value)
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception as exc:  # an encoded word the library cannot decode: kept as written
        errors[name.lower()] = f"{type(exc).__name__}: {exc}"
        return value


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
# The form nearly every mailer writes: `[Mon, ]30 Sep 2024 08:15:00 +0000`; anything else goes to
# email.utils, which knows the obsolete forms too (and costs ten times as much).
_COMMON_DATE = re.compile(
    r"(?:[A-Za-z]{3}, )?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
)


def _date_utc(value: str | None) -> str | None:
    if not value:
        return None
    m = _COMMON_DATE.fullmatch(value)
    month = _MONTHS.get(m.group(2).lower()) if m else None
    if m is not None and month is not None and value[-5:] != "-0000":
        day, year, hh, mm, ss = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
        offset = (int(m.group(8)) * 60 + int(m.group(9))) * 60 * (1 if m.group(7) == "+" else -1)
        try:
            seconds = calendar.timegm((year, month, day, hh, mm, ss)) - offset
            datetime(year, month, day, hh, mm, ss, tzinfo=UTC)  # timegm takes 31 Feb; a date must exist
        except ValueError:
            return None
        return rfc3339_ns(seconds * 1_000_000_000)
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:  # RFC 5322 "-0000": UTC with no claim about local time
        dt = dt.replace(tzinfo=UTC)
    ts = dt.astimezone(UTC)
    return rfc3339_ns(int(ts.timestamp()) * 1_000_000_000)


def _needs_mime_walk(headers: dict[str, str]) -> bool:
    """Whether the body can hold an attachment: multipart, or a part that names a file."""
    ctype = headers.get("content-type", "").lower()
    return "multipart" in ctype or "name" in ctype or "content-disposition" in headers


def parse_message(raw: bytes) -> dict[str, Any]:
    """Header fields, attachment names and SHA-256 of one raw message; `parse_error` when it is not
    a readable message (no header block, or the parser gave up)."""
    out: dict[str, Any] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    fields = ("message_id", "date", "date_utc", "from", "to", "cc", "subject")
    out.update(dict.fromkeys(fields))
    out.update(entry="message", attachments=[], attachment_files=[], defects=[], parse_error=None)
    # The header block alone first: most messages are one text part, and parsing their body
    # line by line would only find nothing.
    end = _HEADER_END.search(raw)
    try:
        msg = _PARSER.parsebytes(raw if end is None else raw[: end.end()], headersonly=True)
    except Exception as exc:  # the parser is lenient; anything it raises is this message's problem
        out["parse_error"] = f"{type(exc).__name__}: {exc}"
        return out
    headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), value)
    errors: dict[str, str] = {}
    out["message_id"] = _header(headers, "message-id", errors)
    # The Date header as written (the library would normalize it); date_utc is the parsed value.
    raw_date = headers.get("date")
    out["date"] = " ".join(str(raw_date).split()) if raw_date is not None else None
    out["date_utc"] = _date_utc(out["date"])
    out["from"] = _header(headers, "from", errors)
    out["to"] = _header(headers, "to", errors)
    out["cc"] = _header(headers, "cc", errors)
    out["subject"] = _header(headers, "subject", errors)
    defects: list[str] = [type(d).__name__ for d in msg.defects]
    if _needs_mime_walk(headers) and end is not None:
        try:
            _walk_attachments(_PARSER.parsebytes(raw), out, defects, errors)
        except Exception as exc:  # a broken MIME tree still leaves the headers indexed
            errors["mime"] = f"{type(exc).__name__}: {exc}"
    out["defects"] = sorted(set(defects))
    if errors:
        out["header_errors"] = errors
    if not headers:
        out["parse_error"] = "no header fields: not an RFC 5322 message"
    elif any(isinstance(d, _FATAL_DEFECTS) for d in msg.defects):
        out["parse_error"] = "header block is malformed (a line that is not a header before the body)"
    return out


def _walk_attachments(msg: Any, out: dict[str, Any], defects: list[str], errors: dict[str, str]) -> None:
    for part in msg.walk():
        defects.extend(type(d).__name__ for d in part.defects)
        filename = part.get_filename()
        if filename is not None and "=?" in filename:  # RFC 2047 in a parameter: common, not standard
            filename = _header({"filename": filename}, "filename", errors)
        elif filename is not None:
            filename = _text(filename)
        if filename is not None or part.get_content_disposition() == "attachment":
            out["attachments"].append(filename)
            out["attachment_files"].append(_attachment(part, filename))


def _attachment(part: Any, filename: str | None) -> dict[str, Any]:
    """Name, decoded size and SHA-256 of one MIME attachment (what `mail export --attachments`
    writes and checks)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):  # a message/rfc822 part: its own bytes as written
        payload = part.as_bytes() if part.is_multipart() else b""
    return {"name": filename, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


_SEPARATOR = re.compile(rb"\n\r?\nFrom ")  # a `From ` line after a blank line
_CHUNK = 1 << 23


def iter_mbox(fh: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(offset of the `From ` line, offset of the message, raw message) for each message.

    A separator is a line starting `From ` at the start of the file or after a blank line; the
    blank line before a separator is not part of the message. Read in chunks and searched in C:
    memory holds one chunk and the current message, whatever the mailbox's size."""
    buf = fh.read(_CHUNK)
    while 0 < len(buf) < 8 and (more := fh.read(_CHUNK)):  # enough to see the first separator
        buf += more
    base = 0  # file offset of buf[0]
    eof = not buf
    current: tuple[int, int] | None = None  # (From line, message start) as file offsets
    search = 0
    for lead in (b"From ", b"\nFrom ", b"\r\nFrom "):
        if buf.startswith(lead):
            current = _message_start(buf, len(lead) - 5)
            break
    while current is None or current[1] < 0:
        # Not even the first separator line is complete yet: find or read more.
        if current is not None:
            more = fh.read(_CHUNK)
            if not more:  # the file ends in its first `From ` line: one empty message
                yield current[0], len(buf), b""
                return
            buf += more
            current = _message_start(buf, current[0])
            continue
        m = _SEPARATOR.search(buf, search)
        if m is not None:
            current = _message_start(buf, m.end() - 5)
            continue
        more = fh.read(_CHUNK)
        if not more:
            return
        search = max(0, len(buf) - 8)
        buf += more
    # From the From line's own newline: a blank line right after it ends an empty message.
    search = current[1] - 1
    while True:
        m = _SEPARATOR.search(buf, search - base)
        if m is None:
            more = b"" if eof else fh.read(_CHUNK)
            if not more:
                eof = True
                yield current[0], current[1], _strip_blank(buf[current[1] - base :])
                return
            keep = current[0] - base
            search = base + max(keep, len(buf) - 8)
            buf = buf[keep:] + more
            base += keep
            continue
        sep = m.end() - 5
        line_end = buf.find(b"\n", sep)
        if line_end < 0:
            more = b"" if eof else fh.read(_CHUNK)
            if not more:  # a last `From ` line with no newline: it starts an empty message
                yield current[0], current[1], _strip_blank(buf[current[1] - base : sep])
                yield base + sep, base + len(buf), b""
                return
            keep = current[0] - base
            search = base + max(keep, m.start())
            buf = buf[keep:] + more
            base += keep
            continue
        yield current[0], current[1], _strip_blank(buf[current[1] - base : sep])
        current = (base + sep, base + line_end + 1)
        search = current[1] - 1


def _message_start(buf: bytes, sep: int) -> tuple[int, int]:
    """(separator offset, offset after its line), or -1 when the line is not complete in buf."""
    line_end = buf.find(b"\n", sep)
    return sep, (line_end + 1 if line_end >= 0 else -1)


def _strip_blank(region: bytes) -> bytes:
    """Drop the one blank line that ends the region (the one before the next separator)."""
    if region.endswith(b"\n\r\n") or region == b"\r\n":
        return region[:-2]
    if region.endswith(b"\n\n") or region == b"\n":
        return region[:-1]
    return region


def _base(item: dict[str, Any], fmt: str, key: str | None = None) -> dict[str, Any]:
    return {
        "key": key or item["id"],
        "item": item["id"],
        "source_path": item.get("source_path"),
        "stored_as": item.get("stored_as"),
        "format": fmt,
    }


def index_file(bundle: Path, mail: MailItem) -> Iterator[dict[str, Any]]:
    """Index lines for one collected mail item, read from its copy in the bundle."""
    item, fmt = mail.item, mail.format
    copy = bundle / item["stored_as"]
    if fmt == "outlook-msg":
        yield {**_base(item, fmt), "entry": "message", "parsed": True, **outlook.msg_fields(copy)}
        return
    if fmt in ("outlook-pst", "outlook-ost"):
        yield from _index_pff(item, fmt, copy)
        return
    if fmt == "mbox":
        with copy.open("rb") as fh:
            for number, (offset, raw_offset, raw) in enumerate(iter_mbox(fh), start=1):
                mbox_position = {
                    "message": number,
                    "offset": offset,
                    "raw_offset": raw_offset,
                    "raw_length": len(raw),
                }
                yield {
                    **_base(item, fmt, f"{item['id']}:{number}"),
                    "position": mbox_position,
                    "parsed": True,
                    **parse_message(raw),
                }
        return
    data = copy.read_bytes()
    position: dict[str, Any] = {"file": "/".join(_split_path(item.get("source_path") or "")[-2:])}
    if fmt == "emlx":
        head = _EMLX_HEAD.match(data)
        if head is None:
            yield {**_base(item, fmt), "position": position, "parsed": True, **parse_message(data)}
            return
        length = int(head.group(1))
        position.update(raw_offset=head.end(), raw_length=length)
        data = data[head.end() : head.end() + length]
    if fmt == "maildir":
        name = position["file"].rsplit("/", 1)[-1]
        if ":2," in name:
            position["flags"] = name.rsplit(":2,", 1)[1]
    yield {**_base(item, fmt), "position": position, "parsed": True, **parse_message(data)}


def _index_pff(item: dict[str, Any], fmt: str, copy: Path) -> Iterator[dict[str, Any]]:
    """One line per message and orphan item of a PST/OST, then the store's summary line."""
    report, found = outlook.iter_pff(copy)
    for f in found:
        pos = f.position
        where = f"n{pos['node']}" if "node" in pos else "/".join(map(str, pos.get("folders", []))) + f"#{pos}"
        yield {
            **_base(item, fmt, f"{item['id']}:{where}"),
            "entry": "message",
            "position": pos,
            "folder": f.folder,
            "recovered": f.recovered,
            "parsed": not f.fields.get("parse_error"),
            **(
                {"attachments": [], "attachment_files": [], "sha256": None}
                if "sha256" not in f.fields
                else {}
            ),
            **f.fields,
        }
    yield {
        **_base(item, fmt, f"{item['id']}:store"),
        "entry": "store",
        "parsed": report.parse_error is None,
        "sha256": item.get("sha256"),
        "size": item.get("size"),
        "messages": report.messages,
        "recovered_items": report.recovered,
        "folders": report.folders,
        "item_errors": report.errors,
        "encryption": report.encryption,
        "password_protected": report.password_protected,
        "parse_error": report.parse_error,
    }


def mail_items(bundle: Path, items: Iterable[dict[str, Any]], collectors: set[str]) -> list[MailItem]:
    """Collected regular files of the mail collectors that are in a mail format."""
    found = []
    for item in items:
        if item.get("collector") not in collectors or item.get("kind") != "file":
            continue
        if item.get("status") not in ("ok", "changed") or not item.get("stored_as"):
            continue
        try:
            with (bundle / item["stored_as"]).open("rb") as fh:
                head = fh.read(5)
        except OSError:
            continue
        fmt = classify(item, head)
        if fmt is not None:
            found.append(MailItem(item, fmt))
    return found


def read_items(items_jsonl: Path) -> list[dict[str, Any]]:
    with items_jsonl.open("rb") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_index(
    bundle: Path, items: Iterable[dict[str, Any]], collectors: set[str]
) -> Iterator[dict[str, Any]]:
    """Every index line for the mail items among `items`, in item order."""
    for mail in mail_items(bundle, items, collectors):
        try:
            yield from index_file(bundle, mail)
        except OSError as exc:  # a copy that cannot be read is recorded, the rest goes on
            yield {
                **_base(mail.item, mail.format),
                "entry": "store" if mail.format in ("outlook-pst", "outlook-ost") else "message",
                "parsed": False,
                "parse_error": f"cannot read copy: {exc}",
            }


def dumps_line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
