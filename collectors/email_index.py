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

import email.errors
import email.policy
import email.utils
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, BinaryIO

from collectors import outlook
from manifest.timefmt import rfc3339_ns

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

_PARSER = BytesParser(policy=email.policy.default)
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


def _header(msg: Any, name: str, errors: dict[str, str]) -> str | None:
    try:
        value = msg.get(name)
        return None if value is None else str(value)
    except Exception as exc:  # a header the library cannot decode is kept as an error, not fatal
        errors[name.lower()] = f"{type(exc).__name__}: {exc}"
        raw = msg.get_all(name, failobj=[None])
        return None if raw[0] is None else str(raw[0])


def _date_utc(value: str | None) -> str | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:  # RFC 5322 "-0000": UTC with no claim about local time
        dt = dt.replace(tzinfo=UTC)
    ts = dt.astimezone(UTC)
    return rfc3339_ns(int(ts.timestamp()) * 1_000_000_000)


def parse_message(raw: bytes) -> dict[str, Any]:
    """Header fields, attachment names and SHA-256 of one raw message; `parse_error` when it is not
    a readable message (no header block, or the parser gave up)."""
    out: dict[str, Any] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    fields = ("message_id", "date", "date_utc", "from", "to", "cc", "subject")
    out.update(dict.fromkeys(fields))
    out.update(entry="message", attachments=[], attachment_files=[], defects=[], parse_error=None)
    try:
        msg = _PARSER.parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it raises is this message's problem
        out["parse_error"] = f"{type(exc).__name__}: {exc}"
        return out
    errors: dict[str, str] = {}
    out["message_id"] = _header(msg, "Message-ID", errors)
    # The Date header as written (the library would normalize it); date_utc is the parsed value.
    raw_dates = [v for k, v in msg.raw_items() if k.lower() == "date"]
    out["date"] = " ".join(str(raw_dates[0]).split()) if raw_dates else None
    out["date_utc"] = _date_utc(out["date"])
    out["from"] = _header(msg, "From", errors)
    out["to"] = _header(msg, "To", errors)
    out["cc"] = _header(msg, "Cc", errors)
    out["subject"] = _header(msg, "Subject", errors)
    defects: list[str] = []
    try:
        for part in msg.walk():
            defects.extend(type(d).__name__ for d in part.defects)
            filename = part.get_filename()
            if filename is not None or part.get_content_disposition() == "attachment":
                out["attachments"].append(filename)
                out["attachment_files"].append(_attachment(part, filename))
    except Exception as exc:  # a broken MIME tree still leaves the headers indexed
        errors["mime"] = f"{type(exc).__name__}: {exc}"
    out["defects"] = sorted(set(defects))
    if errors:
        out["header_errors"] = errors
    if not msg.keys():
        out["parse_error"] = "no header fields: not an RFC 5322 message"
    elif any(isinstance(d, _FATAL_DEFECTS) for d in msg.defects):
        out["parse_error"] = "header block is malformed (a line that is not a header before the body)"
    return out


def _attachment(part: Any, filename: str | None) -> dict[str, Any]:
    """Name, decoded size and SHA-256 of one MIME attachment (what `mail export --attachments`
    writes and checks)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):  # a message/rfc822 part: its own bytes as written
        payload = part.as_bytes() if part.is_multipart() else b""
    return {"name": filename, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def iter_mbox(fh: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(offset of the `From ` line, offset of the message, raw message) for each message."""
    offset = 0
    start: int | None = None
    raw_start = 0
    lines: list[bytes] = []
    prev_blank = True
    for line in fh:
        if line.startswith(b"From ") and prev_blank:
            if start is not None:
                yield start, raw_start, _strip_separator_blank(lines)
            start, raw_start, lines = offset, offset + len(line), []
        elif start is not None:
            lines.append(line)
        prev_blank = line in (b"\n", b"\r\n")
        offset += len(line)
    if start is not None:
        yield start, raw_start, _strip_separator_blank(lines)


def _strip_separator_blank(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


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
