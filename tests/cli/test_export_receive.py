"""Hand-over: collect -> transfer -> export -> receive -> verify -> report, and tampered packages."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
from typing import TYPE_CHECKING

import pytest

from tests.support.builders import run_on_exfat
from tests.support.custody import collect_bundle, introduce, make_person, transfer_to_investigator
from tests.support.env import REPO, clear_flags, require

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def handover(tmp_path_factory: pytest.TempPathFactory):
    """IT collects and hands to the investigator, who exports to the police."""
    tmp = tmp_path_factory.mktemp("handover")
    it, inv, police = (make_person(tmp, who) for who in ("it", "investigator", "police"))
    introduce(it, inv, tmp)
    for p in (it, inv):
        introduce(p, police, tmp)
    (tmp / "bundles").mkdir()
    bundle = collect_bundle(it, tmp, tmp / "bundles")
    transfer_to_investigator(it, bundle, "for analysis")
    (tmp / "pkg").mkdir()
    proc = inv.cli(
        "export", bundle, "--to", "Paula Police, City PD", "--out", tmp / "pkg", "--json", check=True
    )
    yield {
        "tmp": tmp,
        "it": it,
        "inv": inv,
        "police": police,
        "bundle": bundle,
        "export": json.loads(proc.stdout),
    }
    clear_flags(tmp)


def test_round_trip_three_keys(handover, tmp_path: Path) -> None:
    h = handover
    it, inv, police = h["it"], h["inv"], h["police"]
    package = h["tmp"] / "pkg" / (h["bundle"].name + ".tar")
    assert h["export"]["package"] == str(package) and h["export"]["exporter"] == inv.fp
    with tarfile.open(package) as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n.encode())
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
        assert {"VERIFY.txt", "custody-report.html", h["bundle"].name + "/bagit.txt"} <= set(names)
        assert tar.pax_headers is not None
        verify_txt = tar.extractfile("VERIFY.txt").read().decode()
    assert it.fp in verify_txt and inv.fp in verify_txt and "sha256sum -c manifest-sha256.txt" in verify_txt
    out = tmp_path / "received"
    out.mkdir()
    proc = police.cli("receive", package, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    received = out / h["bundle"].name
    assert got["bundle"] == str(received) and got["exporter"] == inv.fp and got["verified"] is True
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            received.name,
            received.name + ".VERIFY.txt",
            received.name + ".custody-report.html",
            received.name + ".custody-receipt.json",  # the exporter's head receipt
        ]
    )
    show = json.loads(police.cli("custody", "show", received, "--json", check=True).stdout)
    events = [(e["event"], e["actor"]["key"]) for e in show["events"]]
    assert events[-3:] == [("transferred", it.fp), ("exported", inv.fp), ("received", police.fp)]
    assert show["events"][-2]["details"]["recipient"] == "Paula Police, City PD"
    verify = police.cli("verify", received, "--json")
    assert verify.returncode == 0, verify.stdout
    actors = {a["fingerprint"]: a["trusted"] for a in json.loads(verify.stdout)["actors"]}
    assert actors == {it.fp: True, inv.fp: True, police.fp: True}
    report = police.cli("report", received, "--out", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "VERIFIED" in html and "Paula Police" in html and inv.fp in html and "<svg" in html
    clear_flags(out)


def _copy_package(h, dest: Path) -> Path:
    dest.mkdir()
    name = h["bundle"].name + ".tar"
    for suffix in ("", ".sha256", ".sig", ".pub.pem"):
        shutil.copyfile(h["tmp"] / "pkg" / (name + suffix), dest / (name + suffix))
    return dest / name


def _flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[700] ^= 0x01
    p.write_bytes(bytes(data))


def _wrong_sig(p: Path) -> None:
    sig = p.with_name(p.name + ".sig")
    sig.write_bytes(bytes(64))


def _sha256_of_another_file(p: Path) -> None:
    sha = p.with_name(p.name + ".sha256")
    sha.write_text(sha.read_text().split()[0] + "  other-bundle.tar\n")


def _entry_appended(p: Path) -> None:
    with tarfile.open(p, "a") as tar:
        info = tarfile.TarInfo("planted.txt")
        tar.addfile(info)


TAMPERED = {
    "flipped_byte_in_tar": (_flip_byte, "does not match"),
    "wrong_sig": (_wrong_sig, ".tar.sig is not a valid signature over"),
    "sha256_of_another_file": (
        _sha256_of_another_file,
        ".tar.sha256 is for another file ('other-bundle.tar')",
    ),
    "entry_appended_to_tar": (_entry_appended, "does not match"),
}


def test_police_receive_onto_an_exfat_stick_and_verify_there(handover, tmp_path: Path) -> None:
    # The police may well keep the evidence on a USB stick (exFAT: no case, no permissions).
    h = handover
    package = h["tmp"] / "pkg" / (h["bundle"].name + ".tar")
    agent = f"{sys.executable} -m agent"
    proc = run_on_exfat(
        tmp_path,
        f'cd {REPO} && {agent} receive {package} --out "$STICK" >/dev/null && '
        f'{agent} verify "$STICK/{h["bundle"].name}" && '
        f'{agent} custody show "$STICK/{h["bundle"].name}" --json',
        h["police"].cli.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VERIFIED" in proc.stdout
    assert '"event": "received"' in proc.stdout


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_package_refused(handover, tmp_path: Path, case: str) -> None:
    tamper, message = TAMPERED[case]
    package = _copy_package(handover, tmp_path / "in")
    tamper(package)
    out = tmp_path / "out"
    out.mkdir()
    proc = handover["police"].cli("receive", package, "--out", out)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert list(out.iterdir()) == []


def test_untrusted_exporter_refused(handover, tmp_path: Path) -> None:
    package = _copy_package(handover, tmp_path / "in")
    stranger = make_person(tmp_path, "police")
    (tmp_path / "out").mkdir()
    proc = stranger.cli("receive", package, "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert f"was signed by {handover['inv'].fp}, which you do not trust" in proc.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_encrypted_round_trip(handover, tmp_path: Path) -> None:
    require(importlib.util.find_spec("pyrage") is not None, "pyrage (age encryption) is not installed")
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    id_file = tmp_path / "police.agekey"
    id_file.write_text(f"# police key\n{identity}\n")
    id_file.chmod(0o600)
    h = handover
    (tmp_path / "pkg").mkdir()
    proc = h["inv"].cli(
        "export",
        h["bundle"],
        "--to",
        "Paula Police, City PD",
        "--out",
        tmp_path / "pkg",
        "--encrypt-to",
        str(identity.to_public()),
        "--json",
        check=True,
    )
    package = tmp_path / "pkg" / (h["bundle"].name + ".tar.age")
    assert json.loads(proc.stdout)["encrypted"] is True
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == sorted(
        package.name + s for s in ("", ".sha256", ".sig", ".pub.pem")
    ), "no clear-text tar may stay beside the encrypted one"
    assert package.read_bytes().startswith(b"age-encryption.org/v1")
    (tmp_path / "out").mkdir()
    proc = h["police"].cli("receive", package, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "is encrypted" in proc.stderr
    proc = h["police"].cli("receive", package, "--out", tmp_path / "out", "--identity", id_file)
    assert proc.returncode == 0, proc.stderr
    assert str(identity) not in proc.stdout + proc.stderr
    other = tmp_path / "other.agekey"
    other.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    (tmp_path / "out2").mkdir()
    proc = h["police"].cli("receive", package, "--out", tmp_path / "out2", "--identity", other)
    assert proc.returncode == 1 and "cannot be decrypted" in proc.stderr
    assert list((tmp_path / "out2").iterdir()) == []
    clear_flags(tmp_path / "out")


def test_receive_trust_is_remembered_only_when_asked(handover, tmp_path: Path) -> None:
    """A detective who knows nobody yet: `--trust` for one receive, then kept with --remember-trust,
    so `verify` and `custody show` on the same folder need no --trust any more."""
    h = handover
    package = h["tmp"] / "pkg" / (h["bundle"].name + ".tar")
    trust = ("--trust", h["it"].fp, "--trust", h["inv"].fp)
    once = make_person(tmp_path / "once", "police")
    (tmp_path / "once-out").mkdir()
    proc = once.cli("receive", package, "--out", tmp_path / "once-out", *trust, check=True)
    assert "trusted for this receive only" in proc.stderr and "--remember-trust" in proc.stderr
    received = tmp_path / "once-out" / h["bundle"].name
    assert once.cli("verify", received).returncode == 1
    assert once.cli("verify", received, *trust).returncode == 0
    shown = once.cli("custody", "show", received, *trust, check=True).stdout
    assert "[untrusted]" not in shown
    assert "[untrusted]" in once.cli("custody", "show", received, check=True).stdout

    kept = make_person(tmp_path / "kept", "police")
    (tmp_path / "kept-out").mkdir()
    proc = kept.cli(
        "receive", package, "--out", tmp_path / "kept-out", *trust, "--remember-trust", "--json", check=True
    )
    assert sorted(json.loads(proc.stdout)["remembered_trust"]) == sorted([h["it"].fp, h["inv"].fp])
    assert "now trusted in" in proc.stderr
    received = tmp_path / "kept-out" / h["bundle"].name
    verified = kept.cli("verify", received)
    assert verified.returncode == 0, verified.stdout
    listed = {k["fingerprint"]: k for k in json.loads(kept.cli("keys", "list", "--json", check=True).stdout)}
    assert listed[h["inv"].fp]["name"] == "Ivan Investigator" and listed[h["inv"].fp]["type"] == "trusted"
    assert "[untrusted]" not in kept.cli("custody", "show", received, check=True).stdout
    clear_flags(tmp_path / "once-out")
    clear_flags(tmp_path / "kept-out")
