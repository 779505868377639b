"""Outlook stores in the email index: real PST and .msg files (tests/assets/email, see its README),
exact counts, fields and hashes; FORMAT.md §9's recipe recomputed without sealbox's code (by a
small script over libpff's raw properties, and with `pffexport` + sha256); broken stores recorded,
never fatal."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import re
import struct
import subprocess
import urllib.parse
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectors.email_index import MailItem, index_file
from tests.support.env import ASSETS, REPO, require_tool

EMAIL = ASSETS / "email"
SAMPLE1 = EMAIL / "pstsdk-sample1.pst"
SAMPLE1_SUBJECT = "Here is a sample message"


def _index(path: Path, fmt: str, source: str | None = None) -> list[dict[str, Any]]:
    data = path.read_bytes()
    item = {
        "id": "00000007",
        "source_path": source or f"C:\\Users\\alice\\Documents\\{path.name}",
        "stored_as": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    return list(index_file(path.parent, MailItem(item, fmt)))


def _messages(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["entry"] == "message"]


def test_pst_message_fields_attachment_hash_and_store_line(tmp_path: Path) -> None:
    entries = _index(SAMPLE1, "outlook-pst")
    (msg,) = _messages(entries)
    assert msg["folder"] == "Top of Outlook data file/Sample1" and msg["recovered"] is False
    assert msg["message_class"] == "IPM.Note"
    assert msg["subject"] == "Here is a sample message"
    assert (
        msg["message_id"]
        == "<B2FDDB8BE384C94794441DB4A7F3D8B804AE624B@TK5EX14MBXC114.redmond.corp.microsoft.com>"
    )
    assert msg["from"] == "Terry Mahaffey <terrymah@microsoft.com>"
    assert msg["to"] == "Terry Mahaffey <terrymah@microsoft.com>"
    assert msg["cc"] is None and msg["bcc"] is None
    assert msg["sent_utc"] == "2010-03-15T17:12:05.000000000Z"
    assert msg["received_utc"] == "2010-03-15T17:12:07.951519700Z"
    assert msg["modified_utc"] == "2010-03-19T20:08:06.487000000Z"
    assert msg["transport_headers"].startswith("Received: from TK5EX14MBXC114")
    assert msg["attachments"] == ["leah_thumper.jpg"]
    (att,) = msg["attachment_files"]
    message_dir = _pffexport(SAMPLE1, tmp_path) / "Top of Outlook data file/Sample1/Message00001"
    exported = message_dir / "Attachments/1_leah_thumper.jpg"
    assert att == {
        "name": "leah_thumper.jpg",
        "size": 93142,
        "sha256": hashlib.sha256(exported.read_bytes()).hexdigest(),
    }
    assert msg["canonical"] == "sealbox-outlook-1" and msg["parse_error"] is None
    store = entries[-1]
    assert store["entry"] == "store" and store["parse_error"] is None
    assert (store["messages"], store["recovered_items"], store["folders"]) == (1, 0, 7)
    assert store["encryption"] == "compressible" and store["password_protected"] is False
    assert store["sha256"] == hashlib.sha256(SAMPLE1.read_bytes()).hexdigest()


def test_every_outlook_asset_is_indexed_with_exact_counts() -> None:
    got = {
        p.name: [(e["message_class"], e["folder"], e["subject"]) for e in _messages(_index(p, "outlook-pst"))]
        for p in sorted(EMAIL.glob("*.pst"))
    }
    contacts = [
        ("IPM.DistList", "Top of Personal Folders/Contacts", "test dist list"),
        ("IPM.Contact", "Top of Personal Folders/Contacts", "contact name 1"),
        ("IPM.Microsoft.ScheduleData.FreeBusy", "Freebusy Data", "LocalFreebusy"),
    ]
    assert got == {
        "java-libpst-dist-list.pst": [
            ("IPM.Appointment", "Top of Personal Folders/Calendar", "Test appointment"),
            *contacts,
        ],
        "java-libpst-passworded.pst": contacts,
        "pstsdk-sample1.pst": [("IPM.Note", "Top of Outlook data file/Sample1", "Here is a sample message")],
        "pstsdk-submessage.pst": [
            (
                "IPM.Note",
                "Top of Outlook data file/submessage",
                "This is a message which has an embedded message attached",
            )
        ],
        "pstsdk-test_unicode.pst": [
            ("IPM.Post", "Top of Personal Folders", "Test"),
            ("IPM.Post", "Top of Personal Folders/Folder", "Post"),
        ],
    }


def test_password_protected_store_is_read_and_flagged() -> None:
    entries = _index(EMAIL / "java-libpst-passworded.pst", "outlook-pst")
    store = entries[-1]
    assert store["password_protected"] is True and store["parse_error"] is None
    assert len(_messages(entries)) == store["messages"] == 3


def test_embedded_message_attachment_is_flagged_and_hashed() -> None:
    (msg,) = _messages(_index(EMAIL / "pstsdk-submessage.pst", "outlook-pst"))
    (att,) = msg["attachment_files"]
    assert att["name"] == "This is an embedded message" and att["embedded_message"] is True
    assert att["size"] == 3450 and len(att["sha256"]) == 64


def test_msg_with_attachments() -> None:
    path = EMAIL / "hfig-mapi-sample.msg"
    (msg,) = _index(path, "outlook-msg")
    assert msg["canonical"] == "file"
    assert msg["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert msg["subject"] == "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message"
    assert msg["message_id"] == "<20050430192829.0489.mlemos@acm.org>"
    assert msg["to"] == "Manuel Lemos <mlemos@linux.local>"
    assert msg["sent_utc"] == "2005-04-30T22:28:29.000000000Z"
    assert msg["attachments"] == ["attachment.txt", "logo.gif", "background.gif"]
    import extract_msg

    with extract_msg.openMsg(str(path)) as m:
        raw = [a.data for a in m.attachments]
    assert [(a["size"], a["sha256"]) for a in msg["attachment_files"]] == [
        (len(d), hashlib.sha256(d).hexdigest()) for d in raw
    ]
    assert msg["parse_error"] is None


def test_msg_with_an_embedded_msg() -> None:
    (msg,) = _index(EMAIL / "msgreader-EmailWithMsgAttachment.msg", "outlook-msg")
    assert msg["subject"] == "FW: Msg Attachment Test"
    (att,) = msg["attachment_files"]
    assert att["name"] == "Msg Attachment Test.eml" and att["embedded_message"] is True


# ---------------------------------------------------------------- the recipe, without sealbox's code

B = "sealbox-outlook-1"


def _b64(data: bytes) -> bytes:
    return b"".join(base64.b64encode(data[i : i + 57]) + b"\r\n" for i in range(0, len(data), 57))


def _value(v: str) -> str:
    return (
        v if re.fullmatch(r"[\x20-\x7e]*", v) else "=?utf-8?b?" + base64.b64encode(v.encode()).decode() + "?="
    )


def _recipe(head: list[str], bodies: list[tuple[str, bytes]], atts: list[tuple[str, bytes]]) -> bytes:
    """FORMAT.md §9 written out again from its text."""
    out = (
        "\r\n".join([*head, "MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{B}"', ""])
        + "\r\n"
    )
    data = out.encode()
    for ctype, body in bodies:
        data += (
            f"--{B}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
            + _b64(body)
        )
    for name, body in atts:
        disp = "utf-8''" + urllib.parse.quote(name, safe="!#$&+-.^_`|~")
        data += (
            f"--{B}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: attachment; filename*={disp}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + _b64(body)
    return data + f"--{B}--\r\n".encode()


def _transport(text: str) -> list[str]:
    lines = re.split(r"\r\n|\n|\r", text)
    while lines and not lines[-1]:
        lines.pop()
    out, drop = [], False
    for line in lines:
        if line[:1] in " \t":
            if not drop:
                out.append(line)
            continue
        drop = line.split(":", 1)[0].strip().lower() in (
            "mime-version",
            "content-type",
            "content-transfer-encoding",
        )
        if not drop:
            out.append(line)
    return out


def _pffexport(pst: Path, tmp_path: Path) -> Path:
    tool = require_tool("pffexport")
    target = tmp_path / "pffexport"
    subprocess.run(
        [tool, "-q", "-f", "all", "-m", "all", "-t", str(target), str(pst)], check=True, capture_output=True
    )
    return Path(f"{target}.export")


def test_pffexport_and_sha256_reproduce_the_message_hash(tmp_path: Path) -> None:
    """A message with transport headers: every byte of its canonical form comes from pffexport's
    files (InternetHeaders.txt, Message.txt, Message.html, Attachments/), none from sealbox."""
    (msg,) = _messages(_index(SAMPLE1, "outlook-pst"))
    d = _pffexport(SAMPLE1, tmp_path) / "Top of Outlook data file/Sample1/Message00001"
    head = _transport((d / "InternetHeaders.txt").read_text())
    bodies = [
        ("text/plain; charset=utf-8", (d / "Message.txt").read_bytes()),
        ("text/html", (d / "Message.html").read_bytes()),
    ]
    atts = [(p.name.split("_", 1)[1], p.read_bytes()) for p in sorted((d / "Attachments").iterdir())]
    canonical = _recipe(head, bodies, atts)
    assert hashlib.sha256(canonical).hexdigest() == msg["sha256"] and len(canonical) == msg["size"]


def _prop(rs: Any, tag: int) -> Any:
    e = rs.get_entry_by_type(tag) if rs is not None else None
    return None if e is None or not e.data else e


def _s(rs: Any, tag: int) -> str | None:
    e = _prop(rs, tag)
    return e.data_as_string if e is not None and e.value_type in (0x1E, 0x1F) else None


def _independent(item: Any) -> bytes:
    """FORMAT.md §9 from libpff's raw MAPI properties (tags by number, not sealbox's reader)."""
    rs = item.get_record_set(0)
    headers = _s(rs, 0x007D)
    if headers:
        head = _transport(headers)
    else:
        head = []
        if _s(rs, 0x1035):
            head.append("Message-ID: " + _value(_s(rs, 0x1035).strip()))
        sent = _prop(rs, 0x0039)
        if sent is not None:
            ns = (int.from_bytes(sent.data[:8], "little") - 116444736000000000) * 100
            when = datetime.fromtimestamp(ns // 10**9, UTC)
            # email.utils writes "-0000" for UTC with usegmt=False; the recipe says "+0000".
            head.append("Date: " + email.utils.format_datetime(when).replace("-0000", "+0000"))

        def box(n: str | None, a: str | None) -> str | None:
            return f"{n} <{a}>" if n and a else (n or a)

        sender = box(_s(rs, 0x0C1A), _s(rs, 0x0C1F))
        if sender:
            head.append("From: " + _value(sender))
        recips = getattr(item, "recipients", None)
        rows = [recips.get_record_set(i) for i in range(recips.number_of_record_sets)] if recips else []
        for kind, label in ((1, "To"), (2, "Cc"), (3, "Bcc")):
            people = [
                box(_s(r, 0x3001), _s(r, 0x3003))
                for r in rows
                if (int.from_bytes(_prop(r, 0x0C15).data[:4], "little") & 15) == kind
            ]
            if [p for p in people if p]:
                head.append(f"{label}: " + _value(", ".join(p for p in people if p)))
        subject = _s(rs, 0x0037)
        if subject and subject.startswith("\x01"):
            subject = subject[2:]
        if subject:
            head.append("Subject: " + _value(subject))
    bodies = [
        (ct, getattr(item, attr, None))
        for ct, attr in (
            ("text/plain; charset=utf-8", "plain_text_body"),
            ("text/html", "html_body"),
            ("application/rtf", "rtf_body"),
        )
    ]
    atts = []
    for i in range(getattr(item, "number_of_attachments", 0)):
        a = item.get_attachment(i)
        ars = a.get_record_set(0)
        name = _s(ars, 0x3707) or _s(ars, 0x3704) or _s(ars, 0x3001) or f"attachment-{i + 1}"
        atts.append((name, a.read_buffer(a.size) if a.size else b""))
    return _recipe(head, [(c, b) for c, b in bodies if b], atts)


def test_independent_recipe_reproduces_every_pst_message_hash() -> None:
    import pypff

    checked = 0
    for pst in sorted(EMAIL.glob("*.pst")):
        for entry in _messages(_index(pst, "outlook-pst")):
            store = pypff.file()
            store.open(str(pst))
            folder = store.get_root_folder()
            for i in entry["position"]["folders"]:
                folder = folder.get_sub_folder(i)
            canonical = _independent(folder.get_sub_message(entry["position"]["message"]))
            store.close()
            assert hashlib.sha256(canonical).hexdigest() == entry["sha256"], (pst.name, entry["subject"])
            checked += 1
    assert checked == 11


# ---------------------------------------------------------------- broken stores


def _broken(tmp_path: Path, name: str, data: bytes) -> list[dict[str, Any]]:
    path = tmp_path / name
    path.write_bytes(data)
    return _index(path, "outlook-pst")


def test_truncated_store_is_one_line_with_the_reason(tmp_path: Path) -> None:
    data = SAMPLE1.read_bytes()
    (store,) = _broken(tmp_path, "truncated_half.pst", data[: len(data) // 2])
    assert store["entry"] == "store" and store["parsed"] is False
    assert store["parse_error"].startswith("libpff cannot open the store: unable to read data block")
    (store,) = _broken(tmp_path, "truncated_in_header.pst", data[:300])
    assert store["parse_error"].startswith("not a readable PST/OST (no valid header)")


def test_flipped_bytes_are_recorded_per_folder_and_on_the_store(tmp_path: Path) -> None:
    data = bytearray(SAMPLE1.read_bytes())
    for offset in range(0x4400, len(data), 512):
        data[offset] ^= 0xFF
    entries = _broken(tmp_path, "flipped_every_512th_byte.pst", bytes(data))
    errors = [e for e in entries if e["entry"] == "message"]
    assert [e["parse_error"].split(":")[0] for e in errors] == ["cannot read root folder"]
    store = entries[-1]
    assert store["parse_error"] == "1 folder(s) or item(s) could not be read (see their lines)"


def test_encrypted_store_is_recorded_not_parsed(tmp_path: Path) -> None:
    data = SAMPLE1.read_bytes()
    # bCryptMethod 0x10: Windows Information Protection, a key sealbox does not have.
    (store,) = _broken(tmp_path, "wip_encrypted.pst", data[:0x201] + b"\x10" + data[0x202:])
    assert store["parse_error"].startswith("encrypted store (Windows Information Protection")
    assert store["sha256"] == hashlib.sha256(data[:0x201] + b"\x10" + data[0x202:]).hexdigest()


def test_index_lines_are_json() -> None:
    for e in _index(SAMPLE1, "outlook-pst"):
        json.dumps(e, ensure_ascii=False)


def _pst_crc(data: bytes | bytearray) -> int:
    """MS-PST ComputeCRC: CRC-32 (IEEE) with initial value 0 and no final inversion."""
    return ~zlib.crc32(bytes(data), 0xFFFFFFFF) & 0xFFFFFFFF


def orphan_reparented(pst: bytes, nid: int) -> bytes:
    """The store with node `nid`'s parent in the node B-tree set to a folder that does not exist
    (as when a folder is deleted and its messages are left behind): libpff lists it as an orphan."""
    data = bytearray(pst)
    (nbt_ib,) = struct.unpack_from("<Q", data, 0xD8 + 8)  # ROOT.BREFNBT.ib of a Unicode PST

    def walk(ib: int) -> bool:
        count, size, level = data[ib + 488], data[ib + 490], data[ib + 491]
        for i in range(count):
            off = ib + i * size
            if level:
                if walk(struct.unpack_from("<Q", data, off + 16)[0]):
                    return True
            elif struct.unpack_from("<Q", data, off)[0] == nid:
                struct.pack_into("<I", data, off + 24, 0x7FFFFFE2)
                struct.pack_into("<I", data, ib + 500, _pst_crc(data[ib : ib + 496]))
                return True
        return False

    assert walk(nbt_ib)
    return bytes(data)


def test_orphan_item_is_indexed_as_recovered(tmp_path: Path) -> None:
    (original,) = _messages(_index(SAMPLE1, "outlook-pst"))
    entries = _broken(tmp_path, "orphan_reparented.pst", orphan_reparented(SAMPLE1.read_bytes(), 0x200024))
    dangling, orphan = _messages(entries)
    # The folder still names the message, which is no longer under it: an error line in its place.
    assert dangling["folder"] == "Top of Outlook data file/Sample1" and dangling["recovered"] is False
    assert dangling["parse_error"] == "cannot read message: OSError: unable to retrieve sub message tree node"
    assert orphan["recovered"] is True and orphan["folder"] is None and orphan["position"]["orphan"] == 0
    assert orphan["subject"] == SAMPLE1_SUBJECT and orphan["parse_error"] is None
    assert orphan["sha256"] == original["sha256"]  # the same properties: the same canonical bytes
    store = entries[-1]
    assert (store["messages"], store["recovered_items"]) == (0, 1)


def test_format_md_shell_recipe_reproduces_the_message_hash(tmp_path: Path) -> None:
    """The shell block of FORMAT.md §9, run as written by bash on pffexport's output."""
    text = (REPO / "manifest/FORMAT.md").read_text()
    (block,) = re.findall(r"```sh\n(# sealbox-outlook-1:.*?)```", text, flags=re.S)
    (msg,) = _messages(_index(SAMPLE1, "outlook-pst"))
    d = _pffexport(SAMPLE1, tmp_path) / "Top of Outlook data file/Sample1/Message00001"
    proc = subprocess.run(
        ["bash", "-c", block], env={"D": str(d), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == msg["sha256"]


def test_report_lists_recovered_items(tmp_path: Path) -> None:
    from collectors.email_index import dumps_line
    from manifest.handover.report import _email_summary

    entries = _broken(tmp_path, "orphan_reparented.pst", orphan_reparented(SAMPLE1.read_bytes(), 0x200024))
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata/email-index.jsonl").write_bytes(b"".join(dumps_line(e) for e in entries))
    html = _email_summary(tmp_path)
    recovered = html[html.index("<h3>Recovered items</h3>") :]
    assert recovered.count("<tr><td>") == 1 and SAMPLE1_SUBJECT in recovered
    assert "<dt>Recovered (orphan) items</dt><dd>1</dd>" in html
