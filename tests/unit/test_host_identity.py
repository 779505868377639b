"""Device identifiers of a dead-box image come from the image alone (collectors/host_identity.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.host_identity import identify, started_details, windows_computer_name
from tests.support.hive import system_hive

if TYPE_CHECKING:
    from pathlib import Path


def test_image_identity_is_read_from_the_image_and_never_through_its_links(tmp_path: Path) -> None:
    root = tmp_path / "image"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "examiner-hostname"
    outside.write_text("examiner-box\n")
    (root / "etc/hostname").symlink_to(outside)  # an image's link must not reach the examiner
    (root / "etc/machine-id").write_text("uninitialized\n# comment\n")
    (root / "etc/os-release").write_text('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    device = identify(root)
    assert device["source"] == "image" and device["hostname"] is None
    assert device["machine_id"] == "uninitialized" and device["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert device["macs"] == [] and device["ips"] == []  # never the examiner's interfaces
    given = identify(root, {"hostname": "clerk-pc", "asset_tag": "CITY-1", "shoe": "44"})
    assert given["hostname"] == "clerk-pc" and given["read_from"]["asset_tag"] == "flag"
    assert "shoe" not in given


def test_started_details_keep_what_was_given_and_add_the_device(tmp_path: Path) -> None:
    root = tmp_path / "image"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("# set by installer\nparks-pc-07\n")
    out = started_details(root, {"exhibit": {"number": "EX-1"}, "authority": {}, "device": {"serial": "S1"}})
    assert out["exhibit"] == {"number": "EX-1"} and "authority" not in out
    assert out["device"]["hostname"] == "parks-pc-07" and out["device"]["serial"] == "S1"


def test_a_damaged_hive_names_no_computer(tmp_path: Path) -> None:
    hive = tmp_path / "SYSTEM"
    hive.write_bytes(system_hive("PARKS-PC-07")[:5000])
    assert windows_computer_name(hive) is None
    hive.write_bytes(b"regf" + b"\0" * 100)
    assert windows_computer_name(hive) is None
    hive.write_bytes(system_hive("PARKS-PC-07"))
    assert windows_computer_name(hive) == "PARKS-PC-07"
