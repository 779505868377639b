"""Email index: Maildir, mbox (offsets, a malformed message), .eml (RFC 2047, attachment), .emlx,
Outlook look-alikes that cannot be read (real Outlook files: test_outlook.py). Runs on a
bundle-like tree of collected copies, as the post step does."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import TYPE_CHECKING, Any

from collectors.email_index import build_index, classify, iter_mbox, parse_message
from tests.support.mail import (
    EML_ATTACHMENT,
    EML_MESSAGE,
    EML_SUBJECT,
    MAILDIR_MESSAGES,
    MBOX_GOOD_1,
    MBOX_GOOD_3,
    MBOX_MALFORMED,
    build_maildir,
    emlx_bytes,
    mbox_bytes,
    write,
)

if TYPE_CHECKING:
    from pathlib import Path

MAIL = "email/test"


def _item(bundle: Path, n: int, source: str, data: bytes, collector: str = MAIL) -> dict[str, Any]:
    stored = f"data/files/{n}"
    write(bundle / stored, data)
    return {
        "id": f"{n:08d}",
        "kind": "file",
        "collector": collector,
        "source_path": source,
        "stored_as": stored,
        "status": "ok",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _bundle_with_mail(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    bundle = tmp_path / "bundle"
    maildir = build_maildir(tmp_path / "src" / "Maildir")
    items = [
        _item(bundle, 1, "/var/mail/alice", mbox_bytes()),
        *(
            _item(bundle, 2 + i, f"/home/alice/Maildir/{rel}", p.read_bytes())
            for i, (rel, p) in enumerate(zip(MAILDIR_MESSAGES, maildir, strict=True))
        ),
        _item(bundle, 4, "/home/alice/Documents/invoice.eml", EML_MESSAGE),
        _item(bundle, 5, "C:\\Users\\alice\\AppData\\Local\\Microsoft\\Outlook\\a.ost", b"!BDN" + b"\0" * 60),
        _item(bundle, 6, "C:\\Users\\alice\\Downloads\\invoice.msg", b"\xd0\xcf\x11\xe0" + b"\0" * 60),
        _item(bundle, 7, "/Users/alice/Library/Mail/V10/X/INBOX.mbox/Data/Messages/1.emlx", emlx_bytes()),
        _item(bundle, 8, "/home/alice/.thunderbird/p/Mail/Local Folders/Inbox.msf", b"// mork\n"),
        _item(bundle, 9, "/var/log/mail.log", mbox_bytes(), collector="logs/not-mail"),
    ]
    return bundle, items


def test_mbox_offsets_reproduce_each_message_hash() -> None:
    data = mbox_bytes()
    found = list(iter_mbox(io.BytesIO(data)))
    assert [raw for _o, _r, raw in found] == [MBOX_GOOD_1, MBOX_MALFORMED, MBOX_GOOD_3]
    assert found[0][0] == 0
    for offset, raw_offset, raw in found:
        assert data[offset:].startswith(b"From ")
        assert data[raw_offset : raw_offset + len(raw)] == raw


def test_from_line_inside_a_body_is_not_a_separator() -> None:
    msg = b"Subject: a\n\nbody line\nFrom here on it is still the body\n"
    assert [raw for *_x, raw in iter_mbox(io.BytesIO(b"From x Mon Sep 30 08:15:00 2024\n" + msg))] == [msg]


def test_eml_with_rfc2047_subject_and_attachment() -> None:
    entry = parse_message(EML_MESSAGE)
    assert entry["subject"] == EML_SUBJECT
    assert entry["from"] == "Jörg Kasse <joerg@attacker.example>"
    assert entry["to"] == "clerk@city.example" and entry["cc"] == "boss@city.example"
    assert entry["message_id"] == "<invoice-1@attacker.example>"
    assert entry["date"] == "Tue, 1 Oct 2024 10:00:00 +0200"
    assert entry["date_utc"] == "2024-10-01T08:00:00.000000000Z"
    assert entry["attachments"] == [EML_ATTACHMENT]
    pdf = base64.b64decode("JVBERi0xLjQKJcTl8uXrp/Og0MTGCg==")
    assert entry["attachment_files"] == [
        {"name": EML_ATTACHMENT, "size": len(pdf), "sha256": hashlib.sha256(pdf).hexdigest()}
    ]
    assert entry["sha256"] == hashlib.sha256(EML_MESSAGE).hexdigest()
    assert entry["parse_error"] is None


def test_malformed_message_is_indexed_with_a_parse_error() -> None:
    entry = parse_message(MBOX_MALFORMED)
    assert entry["parse_error"]
    assert entry["sha256"] == hashlib.sha256(MBOX_MALFORMED).hexdigest()
    assert entry["subject"] is None


def test_classify_by_path_and_content() -> None:
    def c(path: str, head: bytes = b"xxxxx") -> str | None:
        return classify({"source_path": path}, head)

    assert c("/home/a/Maildir/cur/123:2,S") == "maildir"
    assert c("/home/a/Maildir/new/123") == "maildir"
    assert c("/var/mail/a", b"From ") == "mbox"
    assert c("/var/mail/a") is None
    assert c("/x/a.EML") == "eml"
    assert c("C:\\Users\\a\\x.PST") == "outlook-pst"
    assert c("/x/Inbox.msf") is None


def test_index_covers_every_collected_mail_item_and_nothing_else(tmp_path: Path) -> None:
    bundle, items = _bundle_with_mail(tmp_path)
    entries = list(build_index(bundle, items, {MAIL}))
    by_item: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_item.setdefault(e["item"], []).append(e)
    assert sorted(by_item) == [
        "00000001",
        "00000002",
        "00000003",
        "00000004",
        "00000005",
        "00000006",
        "00000007",
    ]

    mbox = by_item["00000001"]
    assert [e["format"] for e in mbox] == ["mbox"] * 3
    assert [e["position"]["message"] for e in mbox] == [1, 2, 3]
    assert [bool(e["parse_error"]) for e in mbox] == [False, True, False]
    assert mbox[2]["subject"] == "Café meeting" and mbox[2]["from"] == "Bob <bob@city.example>"
    stored = (bundle / items[0]["stored_as"]).read_bytes()
    for e in mbox:
        pos = e["position"]
        raw = stored[pos["raw_offset"] : pos["raw_offset"] + pos["raw_length"]]
        assert hashlib.sha256(raw).hexdigest() == e["sha256"]

    seen = by_item["00000002"][0]
    assert seen["format"] == "maildir" and seen["position"] == {
        "file": "cur/1727683200.M1P100.host:2,S",
        "flags": "S",
    }
    assert seen["subject"] == "seen message"
    assert by_item["00000003"][0]["position"] == {"file": "new/1727683300.M2P100.host"}

    eml = by_item["00000004"][0]
    assert eml["subject"] == EML_SUBJECT and eml["attachments"] == [EML_ATTACHMENT]

    # Outlook files that only look like Outlook files: one line each saying why, the run goes on.
    (ost,) = by_item["00000005"]
    assert (ost["format"], ost["entry"], ost["parsed"]) == ("outlook-ost", "store", False)
    assert ost["parse_error"].startswith("not a readable PST/OST (no valid header)")
    assert ost["sha256"] == items[4]["sha256"]
    (msg,) = by_item["00000006"]
    assert (msg["format"], msg["entry"]) == ("outlook-msg", "message")
    assert msg["parse_error"].startswith("not a readable .msg")
    assert msg["sha256"] == items[5]["sha256"]

    emlx = by_item["00000007"][0]
    assert emlx["format"] == "emlx" and emlx["subject"] == "Password reset"
    assert emlx["sha256"] == hashlib.sha256(MBOX_GOOD_1).hexdigest()


def test_items_not_collected_are_not_indexed(tmp_path: Path) -> None:
    bundle, items = _bundle_with_mail(tmp_path)
    items[0] = {**items[0], "status": "skipped", "stored_as": None, "note": "size limit"}
    items[3] = {**items[3], "status": "error", "stored_as": None, "error": "permission denied"}
    ids = {e["item"] for e in build_index(bundle, items, {MAIL})}
    assert "00000001" not in ids and "00000004" not in ids and "00000002" in ids


def test_mbox_split_is_the_same_whatever_the_read_size(monkeypatch: Any) -> None:
    """The separator search reads in chunks: one across a chunk edge is still found."""
    import collectors.email_index as email_index

    data = mbox_bytes() + b"From x Mon Sep 30 08:15:00 2024\r\n\r\nFrom y\r\nSubject: b\r\n\r\nbody\r\n"
    expected = list(iter_mbox(io.BytesIO(data)))
    assert len(expected) == 5 and expected[3][2] == b""
    for size in (1, 3, 7, 64):
        monkeypatch.setattr(email_index, "_CHUNK", size)
        assert list(iter_mbox(io.BytesIO(data))) == expected
