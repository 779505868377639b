"""`sealbox respond --profile email` on a root holding real Outlook files in a Linux home, then
`sealbox mail ls` / `mail export` as subprocesses: filters, date order, provenance, `tail -n +2 |
sha256sum` giving back each message hash, attachments checked, and a tampered bundle refused."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.env import ASSETS, REPO, Cli, clear_flags
from tests.support.mail import EML_MESSAGE, build_maildir, mbox_bytes, write

if TYPE_CHECKING:
    from collections.abc import Iterator

EMAIL = ASSETS / "email"
SAMPLE1_SUBJECT = "Here is a sample message"


def _outlook_home(root: Path) -> None:
    home = root / "home/alice"
    write(home / "Documents/archive.pst", (EMAIL / "pstsdk-sample1.pst").read_bytes())
    write(home / "Documents/old/posts.pst", (EMAIL / "pstsdk-test_unicode.pst").read_bytes())
    write(home / "Downloads/invoice.msg", (EMAIL / "hfig-mapi-sample.msg").read_bytes())
    sample = (EMAIL / "pstsdk-sample1.pst").read_bytes()
    write(home / "Desktop/truncated.pst", sample[: len(sample) // 2])
    write(home / "wip-encrypted.pst", sample[:0x201] + b"\x10" + sample[0x202:])
    write(root / "var/mail/alice", mbox_bytes())
    build_maildir(home / "Maildir")
    write(home / "Documents/invoice.eml", EML_MESSAGE)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("mail-run")
    root = base / "root"
    _outlook_home(root)
    cli = Cli(base / "home")
    out = base / "out"
    proc = cli(
        "respond", "--case", "C-MAIL", "--root", root, "--out", out, "--profile", "email",
        "--demo-key", "--no-prompt", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    yield {"cli": cli, "bundle": Path(result["bundle"]), "result": result, "base": base}
    clear_flags(out)
    clear_flags(base)


def _index(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (bundle / "metadata/email-index.jsonl").read_text().splitlines() if x]


def _ls(run: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    proc = run["cli"]("mail", "ls", run["bundle"], "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_collection_succeeds_with_broken_stores_recorded(run: dict[str, Any]) -> None:
    assert run["result"]["verified"] is True
    stores = {e["source_path"]: e for e in _index(run["bundle"]) if e["entry"] == "store"}
    assert sorted(stores) == [
        "/home/alice/Desktop/truncated.pst",
        "/home/alice/Documents/archive.pst",
        "/home/alice/Documents/old/posts.pst",
        "/home/alice/wip-encrypted.pst",
    ]
    assert stores["/home/alice/Documents/archive.pst"]["messages"] == 1
    assert stores["/home/alice/Documents/old/posts.pst"]["password_protected"] is True
    assert stores["/home/alice/Desktop/truncated.pst"]["parse_error"].startswith(
        "libpff cannot open the store"
    )
    assert stores["/home/alice/wip-encrypted.pst"]["parse_error"].startswith("encrypted store")


def test_ls_lists_every_message_sorted_by_date(run: dict[str, Any]) -> None:
    found = _ls(run)
    dated = [e["date_utc"] for e in found if e["date_utc"]]
    assert dated == sorted(dated)
    subjects = [e["subject"] for e in found]
    assert subjects[:4] == [
        "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message",  # 2005
        "Test",  # 2008 posts
        "Post",
        SAMPLE1_SUBJECT,  # 2010
    ]
    # mbox 3 (one malformed) + Maildir 2 + eml 1 + PST 1 + PST 2 + msg 1
    assert len(found) == 10
    assert all(e["entry"] == "message" for e in found)


def test_ls_filters(run: dict[str, Any]) -> None:
    def subjects(*args: str) -> list[str]:
        return [e["subject"] for e in _ls(run, *args)]

    assert subjects("--from", "MAHAFFEY") == ["Test", "Post", SAMPLE1_SUBJECT]
    assert subjects("--from", "terrymah@microsoft.com") == [SAMPLE1_SUBJECT]
    assert subjects("--to", "linux.local") == [
        "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message"
    ]
    assert subjects("--subject", "überweisung") == ["Überweisung für die Stadtkasse"]
    assert subjects("--has-attachment") == [
        "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message",
        SAMPLE1_SUBJECT,
        "Überweisung für die Stadtkasse",
    ]
    assert subjects("--since", "2010-01-01", "--until", "2010-12-31") == [SAMPLE1_SUBJECT]
    assert subjects("--until", "2008-07-09") == [
        "Testing Manuel Lemos' MIME E-mail composing and sending PHP class: HTML message",
        "Test",
        "Post",
    ]
    assert subjects("--folder", "Personal Folders/Folder") == ["Post"]


def test_ls_table(run: dict[str, Any]) -> None:
    proc = run["cli"]("mail", "ls", run["bundle"], "--has-attachment")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("DATE (UTC)") and len(lines) == 4
    assert "2010-03-15 17:12:05" in lines[2] and "Top of Outlook data file/Sample1" in lines[2]
    assert "3 message(s)" in proc.stderr


def _key(run: dict[str, Any], **match: str) -> dict[str, Any]:
    (entry,) = [e for e in _ls(run) if all(e.get(k) == v for k, v in match.items())]
    return entry


def _tail_sha256(path: Path) -> str:
    out = subprocess.run(
        f"tail -n +2 '{path}' | sha256sum", shell=True, check=True, capture_output=True, text=True
    ).stdout
    return out.split()[0]


def test_export_pst_message_with_provenance_and_attachments(run: dict[str, Any], tmp_path: Path) -> None:
    entry = _key(run, subject=SAMPLE1_SUBJECT)
    out, atts = tmp_path / "m.eml", tmp_path / "att"
    proc = run["cli"]("mail", "export", run["bundle"], entry["key"], "--out", out, "--attachments", atts)
    assert proc.returncode == 0, proc.stderr
    assert _tail_sha256(out) == entry["sha256"]
    msg = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    prov = dict(p.split("=", 1) for p in str(msg["X-Sealbox-Provenance"]).split("; "))
    bundle_id = run["result"].get("bundle_id") or prov["bundle"]
    assert prov == {
        "bundle": bundle_id,
        "item": entry["item"],
        "store": "/home/alice/Documents/archive.pst",
        "folder": "Top of Outlook data file/Sample1",
        "key": entry["key"],
        "sha256": entry["sha256"],
    }
    assert msg["Subject"] == SAMPLE1_SUBJECT and msg["Message-ID"] == entry["message_id"]
    assert msg["From"] == "Terry Mahaffey <terrymah@microsoft.com>"
    assert msg["Date"] == "Mon, 15 Mar 2010 10:12:05 -0700"
    parts = [p.get_filename() for p in msg.iter_attachments()]
    assert parts == ["leah_thumper.jpg"]
    (saved,) = sorted(atts.iterdir())
    assert saved.name == "1-leah_thumper.jpg"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == entry["attachment_files"][0]["sha256"]
    attached = next(msg.iter_attachments()).get_payload(decode=True)
    assert attached == saved.read_bytes()


def test_export_by_message_id_of_a_synthesized_header_message(run: dict[str, Any], tmp_path: Path) -> None:
    entry = _key(run, subject="Post")
    out = tmp_path / "post.eml"
    proc = run["cli"]("mail", "export", run["bundle"], entry["sha256"][:12], "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert _tail_sha256(out) == entry["sha256"]
    msg = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Post" and msg["Date"] == "Wed, 09 Jul 2008 18:11:14 +0000"


def test_export_mbox_and_msg(run: dict[str, Any], tmp_path: Path) -> None:
    mbox = _key(run, message_id="<m3@city.example>")
    out = tmp_path / "m3.eml"
    assert run["cli"]("mail", "export", run["bundle"], "<m3@city.example>", "--out", out).returncode == 0
    assert _tail_sha256(out) == mbox["sha256"]
    assert out.read_bytes().split(b"\n", 1)[0].startswith(b"X-Sealbox-Provenance: ")

    msg = _key(run, format="outlook-msg")
    out, atts = tmp_path / "msg.eml", tmp_path / "msg-att"
    proc = run["cli"]("mail", "export", run["bundle"], msg["key"], "--out", out, "--attachments", atts)
    assert proc.returncode == 0, proc.stderr
    assert _tail_sha256(out) == msg["canonical_sha256"]
    parsed = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert f"sha256={msg['sha256']}" in str(parsed["X-Sealbox-Provenance"])
    assert parsed["Message-ID"] == "<20050430192829.0489.mlemos@acm.org>"
    assert sorted(p.name for p in atts.iterdir()) == ["1-attachment.txt", "2-logo.gif", "3-background.gif"]


def test_unknown_message_and_existing_out(run: dict[str, Any], tmp_path: Path) -> None:
    proc = run["cli"]("mail", "export", run["bundle"], "no-such-key", "--out", tmp_path / "x.eml")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no message 'no-such-key'" in proc.stderr
    (tmp_path / "taken.eml").write_bytes(b"")
    proc = run["cli"]("mail", "export", run["bundle"], "<m3@city.example>", "--out", tmp_path / "taken.eml")
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_tampered_bundle_is_refused_unless_unverified(run: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / run["bundle"].name
    shutil.copytree(run["bundle"], copy)
    clear_flags(copy)
    for p in copy.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    entry = _key(run, subject=SAMPLE1_SUBJECT)
    # The index is altered: the message's recorded hash no longer matches its bytes.
    index = copy / "metadata/email-index.jsonl"
    text = index.read_text()
    forged = entry["sha256"][:-1] + ("0" if entry["sha256"][-1] != "0" else "1")
    index.write_text(text.replace(entry["sha256"], forged))

    proc = run["cli"]("mail", "ls", copy)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "does NOT verify" in proc.stderr and "--unverified" in proc.stderr

    proc = run["cli"]("mail", "ls", copy, "--unverified", "--json")
    assert proc.returncode == 0 and "WARNING" in proc.stderr and len(json.loads(proc.stdout)) == 10

    proc = run["cli"]("mail", "export", copy, entry["key"], "--unverified", "--out", tmp_path / "t.eml")
    assert "WARNING" in proc.stderr
    assert proc.returncode == 1 and "are not those indexed" in proc.stderr


def test_report_email_section_by_date_with_per_store_counts(run: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run["cli"]("report", run["bundle"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    section = html[html.index("<h2>Email index</h2>") :]
    per_store = section[section.index("<h3>Per store</h3>") : section.index("<h3>Messages by date</h3>")]
    rows = re.findall(
        r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>((?:<td[^>]*>[^<]*</td>){4})", per_store
    )
    got = {src: (fmt, re.findall(r">([^<]*)</td>", rest)) for _i, src, fmt, rest in rows}
    assert got["/home/alice/Documents/archive.pst"] == ("outlook-pst", ["1", "0", "0", ""])
    assert got["/home/alice/Documents/old/posts.pst"] == (
        "outlook-pst",
        ["2", "0", "0", "password-protected"],
    )
    assert got["/var/mail/alice"] == ("mbox", ["3", "1", "0", ""])
    assert got["/home/alice/wip-encrypted.pst"][1][:3] == ["0", "0", "0"]
    assert got["/home/alice/wip-encrypted.pst"][1][3].startswith("encrypted store")
    by_date = section[section.index("<h3>Messages by date</h3>") :]
    # the first cell holds the date and the time as two unbreakable tokens
    dates = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<tr><td>(.*?)</td>", by_date)]
    assert dates == sorted(dates) and len(dates) == 9
    assert dates[0] == "2005-04-30 22:28:29"


def test_bench_mail_quick_run_prints_ratio_and_memory() -> None:
    """scripts/bench-mail runs end to end (a smoke run: its figures are read by people)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench-mail"), "--quick", "--messages", "300"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"floor: mailbox.mbox iteration +300 msgs", proc.stdout), proc.stdout
    assert re.search(r"sealbox email index \(mbox\) +300 msgs .* ratio \d+\.\d\dx CPU", proc.stdout), (
        proc.stdout
    )
    assert re.search(r"sealbox email index \(PST\) +4 msgs", proc.stdout), proc.stdout
    assert re.search(r"peak RSS of sealbox's runs: \d+ MB", proc.stdout), proc.stdout
