"""Two-party transfers (SPEC §4.2): `custody transfer` stays open until the named receiver
countersigns it with `custody accept`; a wrong key is refused, a forged accept is a finding."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.support.custody import collect_bundle, introduce, make_person
from tests.support.env import clear_flags

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def handed_once(tmp_path_factory: pytest.TempPathFactory):
    """Three people who know each other's keys and a bundle with an open transfer to the
    investigator: made once (eleven sealbox runs); each test gets a copy of the bundle."""
    base = tmp_path_factory.mktemp("handed")
    it = make_person(base, "it")
    inv = make_person(base, "investigator")
    police = make_person(base, "police")
    for a, b in ((it, inv), (inv, it), (it, police), (inv, police), (police, inv)):
        introduce(a, b, base)
    out = base / "bundles"
    out.mkdir()
    bundle = collect_bundle(it, base, out)
    proc = it.cli(
        "custody", "transfer", bundle,
        "--to", "Ivan Investigator, City IT Security", "--to-key", inv.fp,
        "--to-contact", "ivan@example.org", "--method", "courier", "--tracking", "1Z999AA10123456784",
        "--storage-location", "evidence locker B-2", "--seal", "SEAL-000731", "--purpose", "analysis",
        "--authority-basis", "policy", "--authority-reference", "City IT policy 4.2",
        "--reason", "hand-over for analysis",
        check=True,
    )  # fmt: skip
    assert "is open until the receiver" in proc.stdout
    yield it, inv, police, bundle
    clear_flags(out)


@pytest.fixture
def handed(handed_once, tmp_path: Path):
    from tests.support.builders import writable_copy

    it, inv, police, bundle = handed_once
    return it, inv, police, writable_copy(bundle, tmp_path)


def _show(person, bundle: Path) -> dict:
    return json.loads(person.cli("custody", "show", bundle, "--json", check=True).stdout)


def test_transfer_is_open_until_the_named_receiver_accepts(handed) -> None:
    it, inv, police, bundle = handed
    shown = _show(inv, bundle)
    transfer = shown["events"][-1]
    assert transfer["event"] == "transferred" and transfer["open"] is True
    assert shown["open_transfers"] == [transfer["seq"]]
    assert transfer["details"] == {
        "to": "Ivan Investigator, City IT Security",
        "to_key": inv.fp,
        "to_contact": "ivan@example.org",
        "method": "courier",
        "tracking": "1Z999AA10123456784",
        "storage_location": "evidence locker B-2",
        "seal": "SEAL-000731",
        "purpose": "analysis",
        "authority": {"basis": "policy", "reference": "City IT policy 4.2"},
    }
    text = inv.cli("custody", "show", bundle, check=True).stdout
    assert "OPEN: not yet accepted" in text and "tracking number: 1Z999AA10123456784" in text
    assert f"open transfers (not yet accepted): seq {transfer['seq']} to Ivan Investigator" in text
    verified = inv.cli("verify", bundle, check=True).stdout
    assert "note: open transfers (not yet accepted by the receiver)" in verified

    # Paula is not the receiver the transfer names: refused, nothing appended.
    before = (bundle / "custody/continuation.jsonl").read_bytes()
    refused = police.cli("custody", "accept", bundle, "--transfer", str(transfer["seq"]))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "names " + inv.fp in refused.stderr and "Traceback" not in refused.stderr
    assert (bundle / "custody/continuation.jsonl").read_bytes() == before
    # Nor can the giver accept, nor anyone accept what is not a transfer.
    assert it.cli("custody", "accept", bundle, "--transfer", str(transfer["seq"])).returncode == 2
    assert inv.cli("custody", "accept", bundle, "--transfer", "1").returncode == 2

    done = inv.cli(
        "custody", "accept", bundle, "--transfer", str(transfer["seq"]),
        "--seal", "SEAL-000731", "--seal-intact", "--storage-location", "lab safe 3", check=True,
    )  # fmt: skip
    assert "is complete" in done.stdout
    shown = _show(it, bundle)
    accepted = shown["events"][-1]
    assert accepted["event"] == "accepted" and accepted["actor"]["key"] == inv.fp
    assert accepted["details"]["transfer_seq"] == transfer["seq"]
    assert accepted["details"]["seal_intact"] is True
    assert shown["open_transfers"] == []
    assert shown["events"][-2]["accepted_at"] == accepted["seq"]
    assert "open transfers: none" in it.cli("custody", "show", bundle, check=True).stdout
    assert it.cli("verify", bundle).returncode == 0
    again = inv.cli("custody", "accept", bundle, "--transfer", str(transfer["seq"]))
    assert again.returncode == 2 and "already accepted" in again.stderr


def test_forged_accept_is_a_finding(handed, tmp_path: Path) -> None:
    _it, inv, _police, bundle = handed
    seq = _show(inv, bundle)["events"][-1]["seq"]
    inv.cli("custody", "accept", bundle, "--transfer", str(seq), check=True)
    forged = tmp_path / "forged"
    shutil.copytree(bundle, forged)
    for path in [forged, *forged.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    log = forged / "custody/continuation.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    accept = json.loads(lines[-1])
    # The accept re-pointed at another line hash: its signature no longer holds either.
    accept["details"]["transfer_sha256"] = "0" * 64
    lines[-1] = json.dumps(accept, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    report = json.loads(inv.cli("verify", forged, "--json").stdout)
    kinds = {f["kind"] for f in report["findings"]}
    assert {"custody-accept-unmatched", "custody-signature-invalid"} <= kinds, kinds
    shown = json.loads(inv.cli("custody", "show", forged, "--json").stdout)
    assert shown["holds"] is False and shown["open_transfers"] == [seq]


def test_custody_add_records_court_events_and_refuses_wrong_flags(handed) -> None:
    it, inv, _police, bundle = handed
    inv.cli(
        "custody", "add", bundle, "--event", "examined", "--purpose", "timeline", "--tool", "sealbox",
        "--tool", "mactime", "--location", "lab 2", "--result", "logins at 03:12", "--reason", "analysis",
        check=True,
    )  # fmt: skip
    inv.cli("custody", "add", bundle, "--event", "copied", "--destination", "case share",
            "--copy-verified", "--reason", "working copy", check=True)  # fmt: skip
    inv.cli("custody", "add", bundle, "--event", "stored", "--location", "locker B-2", "--seal", "S-1",
            "--reason", "stored", check=True)  # fmt: skip
    inv.cli("custody", "add", bundle, "--event", "labelled", "--exhibit", "EX-42-01",
            "--exhibit-description", "clerk laptop", "--reason", "exhibit list", check=True)  # fmt: skip
    inv.cli("custody", "add", bundle, "--event", "note", "--text", "line one\nline two",
            "--reason", "remark", check=True)  # fmt: skip
    inv.cli("custody", "add", bundle, "--event", "disposed", "--disposition", "returned",
            "--to", "Ida Responder, City IT", "--witness", "Sgt. K", "--reason", "closed",
            check=True)  # fmt: skip
    wrong = inv.cli("custody", "add", bundle, "--event", "note", "--tracking", "1", "--reason", "x")
    assert wrong.returncode == 2
    wrong = inv.cli("custody", "add", bundle, "--event", "stored", "--seal-number", "1", "--reason", "x")
    assert wrong.returncode == 2
    shown = _show(it, bundle)
    by_event = {e["event"]: e["details"] for e in shown["events"]}
    assert by_event["examined"]["tools"] == ["sealbox", "mactime"]
    assert by_event["copied"] == {"destination": "case share", "verified": True}
    assert by_event["disposed"]["disposition"] == "returned"
    assert shown["exhibit"] == {"number": "EX-42-01", "description": "clerk laptop"}
    text = it.cli("custody", "show", bundle, check=True).stdout
    assert "note: line one" in text and "note: line two" in text
    assert "exhibit: EX-42-01 (clerk laptop)" in text
    assert it.cli("verify", bundle).returncode == 0
