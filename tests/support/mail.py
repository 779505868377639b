"""Mail stores built byte by byte: a Maildir, an mbox with a malformed message, an .eml with an
RFC 2047 subject and an attachment, an Apple Mail .emlx. Real Outlook files are in tests/assets/email."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# Subject "Überweisung für die Stadtkasse" in RFC 2047 base64, From name "Jörg" in quoted-printable.
EML_SUBJECT = "Überweisung für die Stadtkasse"
EML_ATTACHMENT = "Rechnung März.pdf"
EML_MESSAGE = (
    b"Message-ID: <invoice-1@attacker.example>\r\n"
    b"Date: Tue, 1 Oct 2024 10:00:00 +0200\r\n"
    b"From: =?iso-8859-1?q?J=F6rg_Kasse?= <joerg@attacker.example>\r\n"
    b"To: clerk@city.example\r\n"
    b"Cc: boss@city.example\r\n"
    b"Subject: =?utf-8?B?" + base64.b64encode(EML_SUBJECT.encode()) + b"?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Please pay the attached invoice today.\r\n"
    b"--XYZ\r\n"
    b"Content-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcTl8uXrp/Og0MTGCg==\r\n"
    b"--XYZ--\r\n"
)

MBOX_GOOD_1 = (
    b"Message-ID: <m1@city.example>\n"
    b"Date: Mon, 30 Sep 2024 08:15:00 +0000\n"
    b"From: it@city.example\n"
    b"To: alice@city.example\n"
    b"Subject: Password reset\n"
    b"\n"
    b"Click here.\n"
)
# Not a message at all: no header block, binary junk. Must be indexed with a parse error.
MBOX_MALFORMED = b"this line is not a header\n\x00\xff\xfe garbage\n"
MBOX_GOOD_3 = (
    b"Message-ID: <m3@city.example>\n"
    b"Date: Wed, 2 Oct 2024 12:00:00 -0500\n"
    b"From: Bob <bob@city.example>\n"
    b"To: alice@city.example\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_meeting?=\n"
    b"\n"
    b">From the minutes: nothing.\n"
)
MBOX_MESSAGES = (MBOX_GOOD_1, MBOX_MALFORMED, MBOX_GOOD_3)


def mbox_bytes(messages: tuple[bytes, ...] = MBOX_MESSAGES) -> bytes:
    """mboxo layout: a `From ` line, the message, one blank line before the next separator."""
    out = b""
    for n, msg in enumerate(messages, start=1):
        out += f"From sender{n}@example Mon Sep 30 08:15:0{n} 2024\n".encode() + msg + b"\n"
    return out


MAILDIR_MESSAGES = {
    "cur/1727683200.M1P100.host:2,S": b"Message-ID: <md1@city.example>\nFrom: a@city.example\n"
    b"To: alice@city.example\nSubject: seen message\nDate: Mon, 30 Sep 2024 08:00:00 +0000\n\nbody\n",
    "new/1727683300.M2P100.host": b"Message-ID: <md2@city.example>\nFrom: b@city.example\n"
    b"To: alice@city.example\nSubject: new message\nDate: Mon, 30 Sep 2024 08:01:40 +0000\n\nbody\n",
}


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build_maildir(base: Path) -> list[Path]:
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    return [write(base / rel, data) for rel, data in MAILDIR_MESSAGES.items()]


def emlx_bytes(message: bytes = MBOX_GOOD_1) -> bytes:
    """Apple Mail: the byte count, the message, then a property list."""
    return f"{len(message)}\n".encode() + message + b'<?xml version="1.0"?>\n<plist><dict/></plist>\n'
