"""IT -> investigator -> police with every court field (FORMAT.md §4.2): contact on each actor,
exhibit, device identifiers and legal authority at collection, two-party transfers with method,
tracking, seal and storage, examined / copied / stored / labelled / disposed, an incident note,
export and receive with remembered trust; at the end the police copy verifies with no --trust,
no transfer is open, and `custody show` prints every note."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.custody import PEOPLE, Person
from tests.support.env import Cli, clear_flags
from tests.support.layouts import build_linux_root

CONTACTS = {"it": "+1 555 0100", "investigator": "ivan@example.org", "police": "+1 555 0199"}


def _person(base: Path, who: str) -> Person:
    cli = Cli(base / f"home-{who}")
    name, role, org = PEOPLE[who]
    fp = cli(
        "keys", "generate", "--name", name, "--role", role, "--org", org, "--contact", CONTACTS[who],
        check=True,
    ).stdout.strip()  # fmt: skip
    return Person(cli, fp)


def _trust(a: Person, b: Person, tmp: Path) -> None:
    out = tmp / f"pub-{a.fp[7:15]}-{b.fp[7:15]}"
    a.cli("keys", "export-public", a.fp, "--out", out, check=True)
    b.cli("keys", "trust", out / "public.pem", check=True)


def _events(person: Person, bundle: Path) -> list[dict]:
    return json.loads(person.cli("custody", "show", bundle, "--json", check=True).stdout)["events"]


def test_it_investigator_police_round_trip_with_every_court_field(tmp_path: Path) -> None:
    it, inv, police = (_person(tmp_path, who) for who in ("it", "investigator", "police"))
    _trust(it, inv, tmp_path)
    _trust(inv, it, tmp_path)
    root, _ = build_linux_root(tmp_path)
    (root / "etc/hostname").write_text("parks-pc-07\n")
    out = tmp_path / "it-out"
    proc = it.cli(
        "respond", "--case", "OKC-2026-0042", "--root", root, "--out", out, "--profile", "logs",
        "--no-prompt", "--json", "--reporter", "Ida Responder", "--observed", "ransom note",
        "--crime-suspected", "--authority-basis", "consent", "--authority-issued-by", "Parks director",
        "--exhibit", "EX-0042-01", "--exhibit-description", "Parks PC 07 disk image",
        "--asset-tag", "CITY-004711", "--serial", "7XK2QF3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    try:
        # IT hands the bundle to the investigator, in person, sealed in bag SEAL-1.
        it.cli(
            "custody", "transfer", bundle, "--to", "Ivan Investigator, City IT Security", "--to-key", inv.fp,
            "--to-contact", CONTACTS["investigator"], "--method", "in-person", "--seal", "SEAL-1",
            "--storage-location", "IT safe", "--purpose", "analysis", "--reason", "hand-over for analysis",
            check=True,
        )  # fmt: skip
        first = _events(it, bundle)[-1]["seq"]
        inv.cli("custody", "accept", bundle, "--transfer", str(first), "--seal", "SEAL-1", "--seal-intact",
                "--storage-location", "lab safe 3", "--condition", "bag sealed, undamaged",
                check=True)  # fmt: skip
        inv.cli("custody", "add", bundle, "--event", "examined", "--purpose", "timeline", "--tool", "sealbox",
                "--location", "lab 2", "--result", "logins from 203.0.113.9", "--reason", "analysis",
                check=True)  # fmt: skip
        inv.cli("custody", "add", bundle, "--event", "copied", "--destination", "case share //cs/0042",
                "--method", "rsync", "--copy-verified", "--reason", "working copy", check=True)  # fmt: skip
        inv.cli("custody", "add", bundle, "--event", "stored", "--location", "lab safe 3", "--seal", "SEAL-2",
                "--retain-until", "2033-12-31", "--reason", "between analyses", check=True)  # fmt: skip
        inv.cli("custody", "add", bundle, "--event", "note", "--text", "admin account used at 03:12",
                "--reason", "finding", check=True)  # fmt: skip
        inv.cli("incident-note", bundle, "--notified", "police=2026-11-24T11:00Z", "--answer",
                "notifications.police.who=Det. Paula Police", "--text", "PD case 77", check=True)  # fmt: skip
        inv.cli(
            "custody", "transfer", bundle, "--to", "Paula Police, City PD", "--to-key", police.fp,
            "--method", "courier", "--tracking", "1Z999AA10123456784", "--seal", "SEAL-3",
            "--purpose", "prosecution", "--authority-basis", "search warrant",
            "--authority-reference", "SW-2026-118", "--reason", "hand-over to police", check=True,
        )  # fmt: skip
        second = _events(inv, bundle)[-1]["seq"]
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        inv.cli("export", bundle, "--to", "Paula Police, City PD", "--out", pkg, check=True)

        # The police know nobody yet: trust the two keys once, and keep them.
        cases = tmp_path / "cases"
        cases.mkdir()
        received = police.cli(
            "receive", pkg / (bundle.name + ".tar"), "--out", cases, "--trust", it.fp, "--trust", inv.fp,
            "--remember-trust", "--json", check=True,
        )  # fmt: skip
        copy = Path(json.loads(received.stdout)["bundle"])
        assert (
            "open transfers (not yet accepted by the receiver): seq " + str(second)
            in police.cli("verify", copy, check=True).stdout
        )
        police.cli("custody", "accept", copy, "--transfer", str(second), "--seal", "SEAL-3", "--seal-intact",
                   "--storage-location", "PD evidence room, shelf 12", check=True)  # fmt: skip
        police.cli("custody", "add", copy, "--event", "labelled", "--exhibit", "PD-77-001",
                   "--exhibit-description", "image of Parks PC 07", "--reason", "PD exhibit list",
                   check=True)  # fmt: skip
        police.cli("custody", "add", copy, "--event", "disposed", "--disposition", "retention-ended",
                   "--authority-basis", "court order", "--authority-reference", "CO-2030-5",
                   "--witness", "Sgt. K. Lee", "--reason", "case closed", check=True)  # fmt: skip

        verified = police.cli("verify", copy, "--json")
        assert verified.returncode == 0, verified.stdout
        notes = json.loads(verified.stdout)["notes"]
        assert not any(n.startswith("open transfers") for n in notes)
        shown = police.cli("custody", "show", copy, "--json", check=True)
        data = json.loads(shown.stdout)
        assert data["holds"] and data["open_transfers"] == []
        assert data["exhibit"] == {"number": "PD-77-001", "description": "image of Parks PC 07"}
        events = data["events"]
        assert all(e["actor_trusted"] for e in events)
        kinds = [e["event"] for e in events]
        for kind in ("collection-started", "sealed", "transferred", "accepted", "examined", "copied",
                     "stored", "note", "exported", "received", "labelled", "disposed"):  # fmt: skip
            assert kind in kinds, kind
        started = events[0]["details"]
        assert started["exhibit"]["number"] == "EX-0042-01"
        assert started["device"]["hostname"] == "parks-pc-07" and started["device"]["serial"] == "7XK2QF3"
        assert started["authority"] == {"basis": "consent", "issued_by": "Parks director"}
        contacts = {e["actor"]["key"]: e["actor"]["contact"] for e in events}
        assert contacts == {
            it.fp: CONTACTS["it"],
            inv.fp: CONTACTS["investigator"],
            police.fp: CONTACTS["police"],
        }
        accepts = [e for e in events if e["event"] == "accepted"]
        assert [a["details"]["transfer_seq"] for a in accepts] == [first, second]
        assert [a["actor"]["key"] for a in accepts] == [inv.fp, police.fp]

        text = police.cli("custody", "show", copy, check=True).stdout
        for expected in (
            "note: admin account used at 03:12",
            "note: PD case 77",
            "incident notifications.police.who: Det. Paula Police",
            "tracking number: 1Z999AA10123456784",
            "seal intact: yes",
            "disposition: retention-ended",
            "legal authority: basis: search warrant, reference: SW-2026-118",
            "exhibit: PD-77-001 (image of Parks PC 07)",
            "next step: ",
            "open transfers: none",
            "[trusted]",
        ):
            assert expected in text, expected
        assert "[untrusted]" not in text
        report = police.cli("report", copy, "--out", tmp_path / "report.html")
        assert report.returncode == 0, report.stderr
    finally:
        clear_flags(out)
        clear_flags(tmp_path / "cases")
