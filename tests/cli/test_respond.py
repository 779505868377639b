"""`sealbox respond` end to end as a subprocess on fixture roots (`--root`): exactly the expected
items, email index, incident report, next steps, verification, untouched sources."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from collectors.incident import IncidentReport, prompt_missing
from manifest.verify import verify_bundle
from tests.support.env import Cli, clear_flags
from tests.support.layouts import (
    age_tree,
    build_linux_root,
    build_macos_root,
    build_windows_root,
    snapshot,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

INCIDENT_TOML = """
observed = "Ransom note on the desktop; files renamed to *.locked"
crime_suspected = true

[reporter]
name = "Ann Example"
role = "IT technician"
department = "Parks and Recreation"

[discovery]
when = "2026-11-24T08:30:00+01:00"
how = "User called the help desk"

[affected]
systems = ["PARKS-PC-07"]
accounts = ["aexample"]

[notifications.supervisor]
notified = true
when = "2026-11-24T09:00:00+01:00"
who = "R. Swanson"
"""


def _items(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bundle / "metadata/items.jsonl").read_text().splitlines()]


def _file_items(bundle: Path) -> dict[str, tuple[str, str]]:
    return {i["source_path"]: (i["collector"], i["kind"]) for i in _items(bundle) if i["kind"] != "volatile"}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def linux_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One respond run on the Linux fixture root, shared by the tests that read its bundle."""
    base = tmp_path_factory.mktemp("linux-run")
    root, expected = build_linux_root(base)
    age_tree(root)
    before = snapshot(root)
    incident = base / "incident.toml"
    incident.write_text(INCIDENT_TOML)
    out = base / "out"
    cli = Cli(base / "home")
    proc = cli(
        "respond", "--case", "OKC-2026-0042", "--root", root, "--out", out, "--demo-key",
        "--incident", incident, "--reporter-contact", "555-0100",
        "--notified", "it=2026-11-24T09:15:00+01:00", "--json",
    )  # fmt: skip
    yield {"proc": proc, "root": root, "expected": expected, "before": before, "out": out, "cli": cli}
    clear_flags(out)


def _bundle(run: dict[str, Any]) -> Path:
    assert run["proc"].returncode == 0, run["proc"].stderr
    return Path(json.loads(run["proc"].stdout)["bundle"])


def test_linux_profile_collects_exactly_the_expected_items(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    assert _file_items(bundle) == linux_run["expected"]
    assert {i["status"] for i in _items(bundle)} == {"ok"}
    assert not [i for i in _items(bundle) if i["kind"] == "volatile"]  # --root: not this host's state
    collected = (bundle / "data/files/var/log/auth.log").read_bytes()
    # Compared with what the builder wrote: reading the source here would move its atime.
    assert collected == b"Oct  1 10:00:00 host sshd[1]: Failed password for root\n"


def test_linux_bundle_verifies_and_records_the_root(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    summary = json.loads(linux_run["proc"].stdout)
    assert summary["verified"] is True and summary["profile"] == "linux-default" and summary["demo_key"]
    fp = re.search(r"Sealbox-Signer-Fingerprint: (\S+)", (bundle / "bag-info.txt").read_text())
    assert fp is not None
    assert verify_bundle(bundle, {fp.group(1)}).ok
    assert f"Sealbox-Root: {linux_run['root']}" in (bundle / "bag-info.txt").read_text()
    proc = linux_run["cli"]("verify", bundle, "--trust", fp.group(1))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sources_were_not_touched(linux_run: dict[str, Any]) -> None:
    _bundle(linux_run)
    assert snapshot(linux_run["root"]) == linux_run["before"]


def test_email_index_lists_every_collected_message(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    entries = _jsonl(bundle / "metadata/email-index.jsonl")
    by_source: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_source.setdefault(e["source_path"], []).append(e)
    tb = "/home/alice/.thunderbird/abcd1234.default-release/Mail/Local Folders/Inbox"
    assert sorted(by_source) == sorted(
        [
            "/var/mail/alice",
            tb,
            "/home/alice/Maildir/cur/1727683200.M1P100.host:2,S",
            "/home/alice/Maildir/new/1727683300.M2P100.host",
            "/home/alice/Documents/invoice.eml",
        ]
    )
    for mbox in ("/var/mail/alice", tb):
        assert [bool(e["parse_error"]) for e in by_source[mbox]] == [False, True, False]
    (eml,) = by_source["/home/alice/Documents/invoice.eml"]
    assert eml["subject"] == "Überweisung für die Stadtkasse"
    assert eml["attachments"] == ["Rechnung März.pdf"]
    items = {i["id"]: i for i in _items(bundle)}
    for e in entries:
        assert items[e["item"]]["source_path"] == e["source_path"]


def test_incident_report_travels_with_the_evidence(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    report = json.loads((bundle / "metadata/incident.json").read_text())
    assert report["case"] == "OKC-2026-0042"
    assert report["reporter"] == {
        "name": "Ann Example",
        "role": "IT technician",
        "department": "Parks and Recreation",
        "contact": "555-0100",
    }
    assert report["discovery"]["how"] == "User called the help desk"
    assert report["affected"] == {"systems": ["PARKS-PC-07"], "accounts": ["aexample"]}
    assert report["crime_suspected"] is True
    assert report["notifications"]["it"] == {
        "notified": True,
        "when": "2026-11-24T09:15:00+01:00",
        "who": None,
    }
    assert report["notifications"]["supervisor"]["who"] == "R. Swanson"
    assert report["provided_by"]["reporter.contact"] == "flag"
    assert report["provided_by"]["reporter.name"] == "file:incident.toml"
    assert "notifications.police.notified" in report["missing"]
    manifest = (bundle / "tagmanifest-sha256.txt").read_text()
    assert "metadata/incident.json" in manifest


def test_next_steps_are_printed_and_recorded(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    steps = json.loads(linux_run["proc"].stdout)["next_steps"]
    keys = [s["key"] for s in steps]
    # A collection from a root tree is a dead box: nothing there runs, so no "keep it powered on".
    assert keys == ["keep-original", "report-it", "police", "supervisor", "records-custodian", "keep-bundle"]
    assert not any("powered on" in s["title"] + s["detail"] for s in steps)
    signer = json.loads((bundle / "custody/custody.jsonl").read_text().splitlines()[0])["actor"]["key"]
    assert f"--key {signer}" in steps[2]["detail"]  # the export command works with several keys
    done = {s["key"] for s in steps if s["done"]}
    assert done == {"report-it", "supervisor"}
    assert "A crime is suspected" in steps[2]["detail"] and "sealbox export" in steps[2]["detail"]
    (note,) = _jsonl(bundle / "custody/continuation.jsonl")
    assert note["event"] == "note" and note["details"]["next_steps"] == steps
    assert note["details"]["verification"] == {"ok": True, "findings": []}
    log = _jsonl(bundle / "metadata/acquisition-log.jsonl")
    plan = next(e for e in log if e["event"] == "artifact-plan")
    assert plan["notes"]["linux-evolution"] == "nothing found"
    assert "/var/log/audit" in plan["artifacts"]["linux-audit"]


def test_incident_note_appends_to_the_custody_continuation(linux_run: dict[str, Any]) -> None:
    bundle = _bundle(linux_run)
    cli = linux_run["cli"]
    proc = cli(
        "incident-note", bundle, "--notified", "police=2026-11-24T11:00:00+01:00", "--text", "case no 77"
    )
    assert proc.returncode == 0, proc.stderr
    last = _jsonl(bundle / "custody/continuation.jsonl")[-1]
    assert last["event"] == "note" and last["details"]["text"] == "case no 77"
    assert last["details"]["incident_update"] == {
        "notifications.police.notified": True,
        "notifications.police.when": "2026-11-24T11:00:00+01:00",
    }
    fp = last["actor"]["key"]
    receipt = Path(proc.stdout.strip().splitlines()[-1].removeprefix("receipt: "))
    assert json.loads(receipt.read_bytes())["seq"] == last["seq"]
    verified = cli("verify", bundle, "--trust", fp)
    assert verified.returncode == 0 and f"last anchored at seq {last['seq']}" in verified.stdout
    empty = cli("incident-note", bundle)
    assert empty.returncode == 2 and "nothing to add" in empty.stderr


@pytest.mark.parametrize(
    ("builder", "profile"), [(build_macos_root, "macos-default"), (build_windows_root, "windows-default")]
)
def test_macos_and_windows_layouts_detected_and_collected_exactly(
    builder: Any, profile: str, cli: Cli, tmp_path: Path, out_dir: Path
) -> None:
    root, expected = builder(tmp_path)
    proc = cli(
        "respond", "--case", "C-1", "--root", root, "--out", out_dir, "--demo-key", "--no-prompt", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["profile"] == profile and result["verified"] is True
    bundle = Path(result["bundle"])
    assert _file_items(bundle) == expected
    index = _jsonl(bundle / "metadata/email-index.jsonl")
    if profile == "macos-default":
        assert [(e["format"], e["subject"]) for e in index] == [("emlx", "Password reset")]
    else:
        formats = sorted(e["format"] for e in index)
        assert formats == ["mbox", "mbox", "mbox", "outlook-msg", "outlook-ost", "outlook-pst"]
        stored = [i["stored_as"] for i in _items(bundle) if i["source_path"].endswith("Operational.evtx")]
        assert stored == [
            "data/files/C/Windows/System32/winevt/Logs/Microsoft-Windows-PowerShell=254Operational.evtx"
        ]


def test_size_and_time_limits_record_skipped_items(cli: Cli, tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    age_tree(root)
    os.utime(root / "var/log/auth.log")  # modified now: passes --since
    (root / "var/log/syslog").write_bytes(b"s" * 5000)  # new but too big
    proc = cli(
        "respond", "--case", "C-2", "--root", root, "--out", out_dir, "--profile", "logs", "--demo-key",
        "--no-prompt", "--since", "2021-01-01", "--max-file-size", "1K", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    items = {i["source_path"]: i for i in _items(Path(json.loads(proc.stdout)["bundle"]))}
    assert items["/var/log/auth.log"]["status"] == "ok"
    assert items["/var/log/syslog"]["status"] == "skipped"
    assert "exceeds the limit of 1024 bytes" in items["/var/log/syslog"]["note"]
    assert items["/var/log/auth.log.1"]["status"] == "skipped"
    assert "before --since" in items["/var/log/auth.log.1"]["note"]
    assert items["/var/log/syslog"]["stored_as"] is None and items["/var/log/syslog"]["sha256"] is None
    assert "/etc/passwd" not in items  # the logs profile is logs only
    assert "/var/mail/alice" not in items


def test_volatile_state_in_the_bundle_shows_the_socket_the_test_opened(
    cli: Cli, tmp_path: Path, out_dir: Path
) -> None:
    root, _ = build_linux_root(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        proc = cli(
            "respond", "--case", "C-3", "--root", root, "--out", out_dir, "--profile", "minimal",
            "--volatile", "--demo-key", "--no-prompt", "--json",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    items = _items(bundle)
    volatile = [i for i in items if i["kind"] == "volatile"]
    assert [i["collector"] for i in volatile][:3] == [
        "volatile/system",
        "volatile/connections",
        "volatile/listening",
    ]
    assert len(volatile) == 11 and [i["id"] for i in volatile] == [f"{n:08d}" for n in range(1, 12)]
    listening = json.loads((bundle / "data/volatile/listening.json").read_text())
    mine = [r for r in listening["data"]["listening"] if r["port"] == port]
    assert len(mine) == 1 and mine[0]["pid"] == os.getpid() and mine[0]["ip"] == "127.0.0.1"
    processes = json.loads((bundle / "data/volatile/processes.json").read_text())
    assert os.getpid() in {p["pid"] for p in processes["data"]["processes"]}
    custody = _jsonl(bundle / "custody/custody.jsonl")
    assert [e["event"] for e in custody][:2] == ["collection-started", "volatile-captured"]
    assert json.loads(proc.stdout)["verified"] is True


def test_without_a_key_it_says_how_to_make_one(cli: Cli, tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    proc = cli("respond", "--case", "C-4", "--root", root, "--out", out_dir, "--no-prompt")
    assert proc.returncode == 1
    assert "no signing key" in proc.stderr
    assert "sealbox keys generate" in proc.stderr and "--demo-key" in proc.stderr
    assert list(out_dir.iterdir()) == []


def test_demo_key_is_labeled_and_reused(cli: Cli, tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    args = ("respond", "--root", root, "--out", out_dir, "--profile", "minimal", "--demo-key", "--no-prompt")
    first = cli(*args, "--case", "C-5")
    assert first.returncode == 0, first.stderr
    assert "created DEMO KEY - not for evidence" in first.stderr and "WARNING" in first.stderr
    second = cli(*args, "--case", "C-5b")  # another case: two runs in one second would share a name
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stderr
    keys = json.loads(cli("keys", "list", "--json", check=True).stdout)
    assert [k["name"] for k in keys] == ["DEMO KEY - not for evidence"]
    bundle = Path(first.stdout.splitlines()[0])
    custody = _jsonl(bundle / "custody/custody.jsonl")
    assert custody[0]["actor"]["name"] == "DEMO KEY - not for evidence"
    assert "Next steps" in first.stdout


def test_malformed_incident_file_names_file_and_field(cli: Cli, tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    bad = tmp_path / "incident.json"
    bad.write_text(json.dumps({"reporter": {"name": "A", "shoe_size": 44}}))
    proc = cli("respond", "--case", "C-6", "--root", root, "--out", out_dir, "--demo-key", "--incident", bad)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "reporter.shoe_size" in proc.stderr
    assert list(out_dir.iterdir()) == []


def test_dry_run_plans_without_collecting(cli: Cli, tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    proc = cli("respond", "--case", "C-7", "--root", root, "--out", out_dir, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["os"] == "linux" and plan["profile"] == "linux-default" and plan["volatile_sections"] == []
    assert plan["artifacts"]["linux-auth"] == [
        "/var/log/auth.log",
        "/var/log/auth.log.1",
        "/var/log/auth.log.2.gz",
    ]
    assert list(out_dir.iterdir()) == []


def test_prompts_ask_only_for_what_is_missing() -> None:
    report = IncidentReport()
    report.set("reporter.name", "Ann", "flag")
    asked: list[str] = []
    answers = {"observed": "ransom note", "crime_suspected": "yes", "notifications.police.notified": "y"}

    def ask(field: Any) -> str:
        asked.append(field.path)
        return answers.get(field.path, "")

    prompt_missing(report, ask)
    assert "reporter.name" not in asked
    assert "notifications.police.when" in asked  # asked because police was just answered "yes"
    assert "notifications.it.when" not in asked  # not asked: IT was not notified
    doc = report.to_dict("C-8")
    assert doc["observed"] == "ransom note" and doc["crime_suspected"] is True
    assert doc["provided_by"]["observed"] == "prompt"


def test_output_inside_a_collected_tree_is_not_collected(cli: Cli, tmp_path: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    out = root / "var/log/evidence"
    proc = cli("respond", "--case", "C-9", "--root", root, "--out", out, "--profile", "logs", "--demo-key",
               "--no-prompt", "--json")  # fmt: skip
    try:
        assert proc.returncode == 0, proc.stderr
        paths = [i["source_path"] for i in _items(Path(json.loads(proc.stdout)["bundle"]))]
        assert "/var/log/auth.log" in paths
        assert not [p for p in paths if p.startswith("/var/log/evidence")]
    finally:
        clear_flags(out)
