"""`sealbox respond` for court: the volatile state is taken before the first question (RFC 3227),
every question can be answered by flag or file, and a dead box is named after the imaged machine."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.env import REPO, Cli, clear_flags
from tests.support.hive import system_hive
from tests.support.layouts import build_linux_root, build_windows_root


def _ns(rfc3339: str) -> int:
    """RFC 3339 UTC with up to nanoseconds -> integer ns (datetime keeps only microseconds)."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00")
    return int(whole.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_volatile_state_is_captured_before_the_first_question(tmp_path: Path, out_dir: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    cli = Cli(tmp_path / "home")
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "respond", "--case", "C-PTY", "--root", str(root), "--out",
         str(out_dir), "--profile", "minimal", "--volatile", "--demo-key", "--json"],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=cli.env, cwd=REPO,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    first_prompt_ns = None
    deadline = time.monotonic() + 240
    try:
        while first_prompt_ns is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                seen += os.read(master, 4096)
                if b"Your name" in seen:
                    first_prompt_ns = time.time_ns()
        assert first_prompt_ns is not None, seen.decode(errors="replace")
        assert b"Capturing volatile state first" in seen
        # Every question skipped with Enter (more newlines than questions; the rest is never read).
        os.write(master, b"\n" * 40)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == 0, seen.decode(errors="replace")
    bundle = Path(json.loads(out)["bundle"])
    snapshots = sorted((bundle / "data/volatile").glob("*.json"))
    assert len(snapshots) >= 3
    for snap in snapshots:
        captured = _ns(json.loads(snap.read_text())["captured_at"])
        assert captured < first_prompt_ns, (snap.name, captured, first_prompt_ns)
    incident = json.loads((bundle / "metadata/incident.json").read_text())
    assert incident["reporter"]["name"] is None  # skipped, and said so
    clear_flags(out_dir)


INCIDENT_JSON = {
    "reporter": {"name": "Ann Example", "contact": "ann@example.org"},
    "legal_authority": {"basis": "consent", "issued_by": "R. Swanson, Parks director"},
    "notifications": {"police": {"notified": True, "when": "2026-11-24T10:00:00+01:00"}},
}


def test_every_question_from_file_or_flags_and_the_dead_box_is_named_after_the_image(
    tmp_path: Path, out_dir: Path
) -> None:
    root, _ = build_linux_root(tmp_path)
    (root / "etc/hostname").write_text("parks-pc-07\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps(INCIDENT_JSON))
    cli = Cli(tmp_path / "home")
    proc = cli(
        "respond", "--case", "C-COURT", "--root", root, "--out", out_dir, "--profile", "minimal",
        "--demo-key", "--no-prompt", "--json", "--incident", incident,
        "--answer", "notifications.police.who=Det. J. Doe, City PD",
        "--authority-reference", "Parks IT policy 7", "--exhibit", "EX-0042-01",
        "--exhibit-description", "Parks PC 07 system disk image", "--asset-tag", "CITY-004711",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    assert "_parks-pc-07_" in bundle.name, bundle.name  # not the examiner's host name
    assert "Sealbox-Host: parks-pc-07" in (bundle / "bag-info.txt").read_text()
    started = _jsonl(bundle / "custody/custody.jsonl")[0]
    assert started["event"] == "collection-started"
    details = started["details"]
    assert details["exhibit"] == {"number": "EX-0042-01", "description": "Parks PC 07 system disk image"}
    assert details["authority"] == {
        "basis": "consent",
        "reference": "Parks IT policy 7",
        "issued_by": "R. Swanson, Parks director",
    }
    device = details["device"]
    assert device["source"] == "image" and device["hostname"] == "parks-pc-07"
    assert device["machine_id"] == "0123456789abcdef0123456789abcdef"
    assert device["asset_tag"] == "CITY-004711" and device["read_from"]["asset_tag"] == "flag"
    assert device["read_from"]["hostname"] == "/etc/hostname" and device["macs"] == []
    report = json.loads((bundle / "metadata/incident.json").read_text())
    assert report["notifications"]["police"]["who"] == "Det. J. Doe, City PD"
    assert report["legal_authority"]["reference"] == "Parks IT policy 7"
    assert report["reporter"]["contact"] == "ann@example.org"
    # A later addition of legal authority is a signed incident note, shown with its text.
    cli(
        "incident-note", bundle, "--authority-basis", "search warrant",
        "--authority-reference", "SW-2026-118", "--text", "warrant served at 14:00", check=True,
    )  # fmt: skip
    shown = cli("custody", "show", bundle, check=True).stdout
    assert "incident legal_authority.reference: SW-2026-118" in shown
    assert "note: warrant served at 14:00" in shown
    assert "device: " in shown and "parks-pc-07" in shown
    bad = cli("respond", "--case", "C-X", "--root", root, "--out", out_dir, "--demo-key", "--no-prompt",
              "--answer", "reporter.shoe_size=44")  # fmt: skip
    assert bad.returncode == 2 and "reporter.shoe_size" in bad.stderr and "Traceback" not in bad.stderr
    clear_flags(out_dir)


def test_a_windows_image_is_named_from_its_system_hive(tmp_path: Path, out_dir: Path) -> None:
    """No /etc/hostname in a Windows image: the host name is the SYSTEM hive's ComputerName of
    the current control set (read with regipy from a hive written here from the REGF format)."""
    root, _ = build_windows_root(tmp_path)
    config = root / "Windows/System32/CONFIG"  # an NTFS image keeps its own case
    config.mkdir(parents=True)
    (config / "SYSTEM").write_bytes(system_hive("PARKS-PC-07", current=2))
    before = os.stat(config / "SYSTEM")
    cli = Cli(tmp_path / "home")
    proc = cli(
        "respond", "--case", "C-WIN", "--root", root, "--out", out_dir, "--profile", "minimal",
        "--demo-key", "--no-prompt", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    assert "_PARKS-PC-07_" in bundle.name, bundle.name
    device = _jsonl(bundle / "custody/custody.jsonl")[0]["details"]["device"]
    assert device["hostname"] == "PARKS-PC-07" and device["source"] == "image"
    assert device["read_from"]["hostname"] == "/Windows/System32/config/SYSTEM:ComputerName"
    after = os.stat(config / "SYSTEM")
    assert (after.st_atime_ns, after.st_mtime_ns) == (before.st_atime_ns, before.st_mtime_ns)
    clear_flags(out_dir)
