"""Collect an awkward tree, then check every item, every copy and that no source was touched."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from manifest.format.pathenc import stored_path
from tests.support.builders import assert_write_once, build_awkward_tree, collect, make_key, snapshot_times
from tests.support.env import require_root, require_tool


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    from tests.support.env import Cli, clear_flags

    base = tmp_path_factory.mktemp("roundtrip")
    cli = Cli(base / "home")
    fp = make_key(cli)
    src = build_awkward_tree(base)
    before = snapshot_times(src)
    out = base / "out"
    out.mkdir()
    mounts_before = Path("/proc/self/mountinfo").read_bytes()
    bundle = collect(cli, out, src)
    after = snapshot_times(src)
    mounts_after = Path("/proc/self/mountinfo").read_bytes()
    yield {
        "cli": cli,
        "fp": fp,
        "src": src,
        "bundle": bundle,
        "before": before,
        "after": after,
        "mounts": (mounts_before, mounts_after),
    }
    clear_flags(out)


def items_of(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "metadata/items.jsonl").read_bytes().splitlines()]


def test_sources_untouched(sealed):
    """Nothing moves. As root not even a symlink's atime, which readlink would update (there is
    no O_NOATIME for it): sealbox reads from a private mount namespace with noatime mounts.
    Without root only that one atime may move; the link's mtime and ctime stay."""
    before, after = sealed["before"], sealed["after"]
    assert before.keys() == after.keys()
    for path, times in before.items():
        if os.path.islink(path) and os.geteuid() != 0:
            assert times[1:] == after[path][1:], path
        else:
            assert times == after[path], path
    mounts_before, mounts_after = sealed["mounts"]
    assert mounts_after == mounts_before  # the noatime remounts were in sealbox's own namespace
    log = (sealed["bundle"] / "metadata/acquisition-log.jsonl").read_text()
    assert ('"noatime-mounts"' if os.geteuid() == 0 else '"noatime-mounts-unavailable"') in log


def test_sealbox_verifies(sealed):
    proc = sealed["cli"]("verify", sealed["bundle"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("VERIFIED")
    report = json.loads(sealed["cli"]("verify", "--json", sealed["bundle"], check=True).stdout)
    assert report["verified"] is True and report["findings"] == []
    assert report["signer"] == sealed["fp"] and report["signer_trusted"] is True


def test_every_item_matches_its_source(sealed):
    bundle, src = sealed["bundle"], sealed["src"]
    items = items_of(bundle)
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    by_path = {}
    for item in items:
        raw = (
            base64.b64decode(item["source_path_b64"])
            if "source_path_b64" in item
            else item["source_path"].encode()
        )
        by_path[raw] = item
    expected = set(sealed["before"])
    assert set(by_path) == expected
    for raw, item in by_path.items():
        st = os.lstat(raw)
        assert item["status"] == "ok", item
        assert (item["atime_ns"], item["mtime_ns"], item["ctime_ns"]) == sealed["before"][raw]
        assert (item["inode"], item["mode"], item["uid"], item["nlink"]) == (
            st.st_ino,
            st.st_mode,
            st.st_uid,
            st.st_nlink,
        )
        assert isinstance(item["birthtime_ns"], int | None)
        if stat.S_ISREG(st.st_mode):
            data = Path(os.fsdecode(raw)).read_bytes()
            assert item["kind"] == "file" and item["size"] == len(data)
            assert item["sha256"] == hashlib.sha256(data).hexdigest()
            assert item["stored_as"] == stored_path(raw)
            copy = bundle / item["stored_as"]
            cst = copy.stat()  # before reading it: reading may move the copy's atime
            assert copy.read_bytes() == data
            atime, mtime, _ctime = sealed["before"][raw]  # the test's own reads move source atimes
            assert (cst.st_atime_ns, cst.st_mtime_ns) == (atime, mtime)
            assert stat.S_IMODE(cst.st_mode) == 0o444
        elif stat.S_ISLNK(st.st_mode):
            assert item["kind"] == "symlink" and item["stored_as"] is None
            assert item["link_target"] == os.readlink(raw).decode()
        elif stat.S_ISDIR(st.st_mode):
            assert item["kind"] == "directory" and item["stored_as"] is None
        else:
            assert item["kind"] == "special" and item["stored_as"] is None and item["sha256"] is None
    outside = by_path[os.fsencode(src / "outside-link")]
    assert outside["link_target"] == "/etc/passwd"
    assert not any("etc/passwd" in (i["stored_as"] or "") for i in items)
    hard = by_path[os.fsencode(src / "hardlink-to-readonly.log")]
    first = by_path[os.fsencode(src / "readonly.log")]
    notes = {hard["note"], first["note"]}
    assert notes in (
        {None, f"hard link: shares inode with item {first['id']}"},
        {None, f"hard link: shares inode with item {hard['id']}"},
    )
    latin = by_path[os.fsencode(src) + b"/latin1-\xe9t\xe9/caf\xe9.txt"]
    assert latin["stored_as"].endswith("latin1-=E9t=E9/caf=E9.txt")
    assert by_path[os.fsencode(src / "line\nbreak.txt")]["stored_as"].endswith("line=0Abreak.txt")
    assert by_path[os.fsencode(src / "100% sure=yes.txt")]["stored_as"].endswith("100=25 sure=3Dyes.txt")


def test_bundle_is_write_once(sealed):
    bundle = sealed["bundle"]
    assert not bundle.name.endswith(".incomplete")
    assert_write_once(bundle)


def test_immutable_flags_when_root(sealed):
    require_root()
    lsattr = require_tool("lsattr")
    bundle = sealed["bundle"]
    out = subprocess.run(
        [
            lsattr,
            str(bundle / "bagit.txt"),
            str(bundle / "manifest-sha256.txt"),
            str(bundle / "custody/continuation.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    flags = [line.split()[0] for line in out.stdout.splitlines()]
    assert "i" in flags[0] and "i" in flags[1] and "a" in flags[2], out.stdout
    payload = next((bundle / "data/files").rglob("big.bin"))
    assert "i" in subprocess.run([lsattr, str(payload)], capture_output=True, text=True).stdout.split()[0]


def test_third_party_verifiers_agree(sealed):
    bundle = sealed["bundle"]
    sha256sum = require_tool("sha256sum")
    for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        subprocess.run([sha256sum, "--strict", "-c", "--quiet", manifest], cwd=bundle, check=True)
    openssl = require_tool("openssl")
    proc = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "keys/signer.pub.pem",
            "-rawin",
            "-in",
            "tagmanifest-sha256.txt",
            "-sigfile",
            "tagmanifest-sha256.txt.sig",
        ],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Signature Verified Successfully" in proc.stdout
    minisign = require_tool("minisign")
    proc = subprocess.run(
        [minisign, "-Vm", "tagmanifest-sha256.txt", "-p", "keys/signer.minisign.pub"],
        cwd=bundle,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sealbox bundle" in proc.stdout and "OKC-2026-0042" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "bagit", "--validate", str(bundle)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "is valid" in proc.stderr, proc.stderr


def test_custody_links_check_with_standard_tools(sealed):
    bundle = sealed["bundle"]
    lines = (bundle / "custody/custody.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "collection-started",
        "collection-completed",
        "sealed",
    ]
    for n in range(1, len(lines)):
        out = subprocess.run(
            f"sed -n '{n}p' custody/custody.jsonl | tr -d '\\n' | sha256sum",
            shell=True,
            cwd=bundle,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(lines[n])["prev"] == out.stdout.split()[0]
    sealed_event = json.loads(lines[-1])
    manifest_hash = hashlib.sha256((bundle / "manifest-sha256.txt").read_bytes()).hexdigest()
    assert sealed_event["details"]["manifest_sha256"] == manifest_hash
