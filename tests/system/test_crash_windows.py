"""Crash windows (issue 13 item 9): sealbox killed with SIGKILL at each named point
(SEALBOX_TEST_KILL_AT, manifest/osio/crashpoint.py), then run again: the work finishes, no phantom
custody event, no evidence lost, one plain line where a person must act."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from agent.commands.collect import cli_sources
from collectors.collection import CollectionRequest, run_collection
from collectors.respond import capture_volatile
from manifest.hashing import sha256_file
from manifest.osio.crashpoint import CRASH_POINTS, ENV
from manifest.signing.keys import KeyStore
from tests.support.builders import assert_write_once, collect, make_key
from tests.support.custody import collect_bundle, introduce, make_person
from tests.support.env import Cli, clear_flags, require_root, require_tool

CASE = "C-CRASH"


def killed_at(cli: Cli, point: str, *args: str | Path) -> None:
    """Run sealbox with the crash point armed; it must die there, by SIGKILL."""
    assert point in CRASH_POINTS
    armed = Cli(cli.home)
    armed.env[ENV] = point
    proc = armed(*args)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr)


def events(bundle: Path) -> list[dict]:
    out = []
    for rel in ("custody/custody.jsonl", "custody/continuation.jsonl"):
        path = bundle / rel
        if path.is_file():
            out += [json.loads(line) for line in path.read_bytes().split(b"\n") if line]
    return out


@pytest.fixture
def source(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / "sub" / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    out = tmp_path / "out"
    out.mkdir()
    yield src, out
    clear_flags(out)


@pytest.mark.parametrize("point", ["seal-after-sealed-event", "seal-before-rename"])
def test_resume_finishes_a_seal_killed_after_the_sealed_event(cli, source, point):
    src, out = source
    killed_at(cli, point, "collect", "--case", CASE, "--out", out, src)
    (partial,) = out.glob("*.incomplete")
    before = events(partial)
    assert before[-1]["event"] == "sealed"
    proc = cli("collect", "--case", CASE, "--out", out, "--resume", partial, src)
    assert proc.returncode == 0, proc.stderr
    sealed = Path(proc.stdout.strip())
    assert sealed == out / partial.name.removesuffix(".incomplete") and not partial.exists()
    assert events(sealed) == before  # custody exactly as the killed run left it, ending in sealed
    verify = cli("verify", sealed)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    log = (sealed / "metadata/acquisition-log.jsonl").read_text()
    assert '"seal-resumed"' in log and '"seal-files-rewritten"' in log
    assert_write_once(sealed)


def test_resume_of_a_run_killed_before_its_first_custody_line_says_what_to_do(cli, source):
    src, out = source
    killed_at(cli, "collect-before-custody", "collect", "--case", CASE, "--out", out, src)
    (partial,) = out.glob("*.incomplete")
    proc = cli("collect", "--case", CASE, "--out", out, "--resume", partial, src)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "stopped before its collection started" in proc.stderr
    assert f"rm -r '{partial}'" in proc.stderr and "without --resume" in proc.stderr
    # Doing what it says works.
    shutil.rmtree(partial)
    assert collect(cli, out, src, case=CASE).is_dir()


# -- export and receive ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def handover(tmp_path_factory: pytest.TempPathFactory):
    """IT collects a bundle; the police trust IT's key."""
    tmp = tmp_path_factory.mktemp("crash-handover")
    it, police = make_person(tmp, "it"), make_person(tmp, "police")
    introduce(it, police, tmp)
    (tmp / "bundles").mkdir()
    bundle = collect_bundle(it, tmp, tmp / "bundles")
    yield tmp, it, police, bundle
    clear_flags(tmp)


def exported_events(bundle: Path) -> list[dict]:
    return [e for e in events(bundle) if e["event"] == "exported"]


def fresh_dir(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir()
    return path


def export_args(bundle: Path, out: Path) -> tuple[str | Path, ...]:
    return ("export", bundle, "--to", "Paula Police, City PD", "--out", out)


@pytest.mark.parametrize("point", ["export-partial-written", "export-staged", "export-event-appended"])
def test_export_killed_anywhere_leaves_no_phantom_event_and_a_rerun_just_works(handover, tmp_path, point):
    _tmp, it, police, original = handover
    bundle = writable_bundle_copy(original, tmp_path)
    pkg = fresh_dir(tmp_path, "pkg")
    killed_at(it.cli, point, *export_args(bundle, pkg))
    package = pkg / (bundle.name + ".tar")
    assert not package.exists()
    logged = exported_events(bundle)
    # Only a package that is complete and durable gets its event in the bundle's log.
    assert len(logged) == (1 if point == "export-event-appended" else 0)
    staged = list(pkg.glob("*.staged-*"))
    assert len(staged) == (0 if point == "export-partial-written" else 1)

    proc = it.cli(*export_args(bundle, pkg), "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in pkg.iterdir()) == sorted(
        package.name + suffix for suffix in ("", ".sha256", ".sig", ".pub.pem")
    )
    (event,) = exported_events(bundle)
    assert json.loads(proc.stdout)["custody_seq"] == event["seq"]
    with tarfile.open(package) as tar:  # the package carries the log with its own event
        carried = tar.extractfile(f"{bundle.name}/custody/continuation.jsonl").read()
        report = tar.extractfile("custody-report.html").read().decode()
    assert carried == (bundle / "custody/continuation.jsonl").read_bytes()
    assert "exported" in report and "continuation.jsonl:1" in report
    assert it.cli("verify", bundle).returncode == 0
    out = fresh_dir(tmp_path, "received")
    got = police.cli("receive", package, "--out", out)
    assert got.returncode == 0, got.stderr
    assert [e["event"] for e in events(out / bundle.name)][-2:] == ["exported", "received"]


def writable_bundle_copy(bundle: Path, base: Path) -> Path:
    """Each test exports its own copy of the sealed bundle (the log is append-only)."""
    dest = fresh_dir(base, "bundles") / bundle.name
    shutil.copytree(bundle, dest)
    return dest


@pytest.mark.parametrize("point", ["receive-extracted", "receive-event-appended", "receive-extras-moved"])
def test_receive_killed_anywhere_can_be_run_again(handover, tmp_path, point):
    _tmp, it, police, original = handover
    bundle = writable_bundle_copy(original, tmp_path)
    pkg = fresh_dir(tmp_path, "pkg")
    it.cli(*export_args(bundle, pkg), check=True)
    package = pkg / (bundle.name + ".tar")
    out = fresh_dir(tmp_path, "received")
    killed_at(police.cli, point, "receive", package, "--out", out)
    assert not (out / bundle.name).exists()  # the bundle's rename is the last step
    proc = police.cli("receive", package, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        bundle.name + suffix
        for suffix in ("", ".VERIFY.txt", ".custody-report.html", ".custody-receipt.json")
    )  # no quarantine left behind
    received = out / bundle.name
    assert [e["event"] for e in events(received)].count("received") == 1
    assert police.cli("verify", received).returncode == 0


@pytest.mark.parametrize("missing", ["VERIFY.txt", "custody-report.html"])
def test_receive_checks_everything_before_moving_anything(handover, tmp_path, missing):
    _tmp, it, police, original = handover
    bundle = writable_bundle_copy(original, tmp_path)
    pkg = fresh_dir(tmp_path, "pkg")
    it.cli(*export_args(bundle, pkg), check=True)
    package = pkg / (bundle.name + ".tar")
    # The same package without one of its two documents, signed again by the exporter.
    bad_dir = fresh_dir(tmp_path, "bad")
    bad = bad_dir / package.name
    with tarfile.open(package) as src, tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            if member.name != missing:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    signer = KeyStore(it.cli.home).load_signer(None)
    sha_bytes = f"{sha256_file(bad)}  {bad.name}\n".encode()
    (bad_dir / (bad.name + ".sha256")).write_bytes(sha_bytes)
    (bad_dir / (bad.name + ".sig")).write_bytes(signer.sign(sha_bytes))
    shutil.copy(pkg / (package.name + ".pub.pem"), bad_dir / (bad.name + ".pub.pem"))
    out = fresh_dir(tmp_path, "received")
    proc = police.cli("receive", bad, "--out", out)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"no {missing}" in proc.stderr and "internal error" not in proc.stderr
    assert list(out.iterdir()) == []  # nothing moved, no quarantine left
    assert police.cli("receive", package, "--out", out).returncode == 0  # the good one still goes in


# -- volatile snapshots --------------------------------------------------------------------


def test_volatile_snapshots_get_the_immutable_flag_like_every_payload_file(cli, source):
    require_root()
    lsattr = require_tool("lsattr")
    src, out = source
    signer = KeyStore(cli.home).load_signer(None)
    request = CollectionRequest(
        case=CASE,
        out_dir=out,
        signer=signer,
        sources=cli_sources((str(src),), (), None, None),
        volatile=capture_volatile(["system", "users"]),
        workers=1,
    )
    bundle = run_collection(request).bundle
    snapshots = sorted((bundle / "data/volatile").iterdir())
    copies = sorted((bundle / "data/files").rglob("*.txt"))
    assert [p.name for p in snapshots] == ["system.json", "users.json"] and copies
    listed = subprocess.run([lsattr, *map(str, snapshots + copies[:2])], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    flags = [line.split()[0] for line in listed.stdout.splitlines()]
    assert flags and all("i" in f for f in flags), listed.stdout
    assert cli("verify", bundle).returncode == 0


# -- a file growing while it is read ---------------------------------------------------------

_APPENDER = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
block = os.urandom(65536)
while True:
    os.write(fd, block)
    time.sleep(0.005)
"""

_EXTENDER = """
import os, sys, time
size = os.stat(sys.argv[1]).st_size
while True:
    size += 1 << 20
    os.truncate(sys.argv[1], size)
    time.sleep(0.005)
"""


def _collect_while(cli, tmp_path, script: str, prepare) -> tuple[dict, Path, Path]:
    """Collect one file while `script` keeps changing it: its item, the bundle, the file."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / "growing.log"
    prepare(path)
    start = path.stat().st_size
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)])
    try:
        while path.stat().st_size == start:  # it is running: the file is growing
            time.sleep(0.01)
        out = tmp_path / "out"
        out.mkdir()
        bundle = collect(cli, out, path, case=CASE)
    finally:
        writer.kill()
        writer.wait()
    (item,) = [i for i in map(json.loads, (bundle / "metadata/items.jsonl").read_bytes().splitlines())]
    return item, bundle, path


def _stat_size(item: dict) -> int:
    match = re.search(r"grew past the (\d+) bytes it had when stat'ed", item["note"] or "")
    assert match, item
    return int(match.group(1))


def test_a_file_growing_while_read_is_read_only_to_its_size_at_stat(cli, tmp_path):
    make_key(cli)
    item, bundle, path = _collect_while(
        cli, tmp_path, _APPENDER, lambda p: p.write_bytes(os.urandom(8 << 20))
    )
    copy = bundle / item["stored_as"]
    recorded = _stat_size(item)
    assert item["status"] == "changed" and item["size"] == recorded == copy.stat().st_size
    assert path.stat().st_size > recorded  # it did grow, and the copy stopped at the size at stat
    with path.open("rb") as fh:
        assert hashlib.sha256(fh.read(recorded)).hexdigest() == item["sha256"] == sha256_file(copy)
    assert cli("verify", bundle).returncode == 0


def test_a_sparse_file_extended_while_read_is_read_only_to_its_size_at_stat(cli, tmp_path):
    make_key(cli)

    def sparse(p: Path) -> None:
        with p.open("wb") as fh:
            fh.write(b"head of a sparse file\n")
            fh.truncate(256 << 20)

    item, bundle, path = _collect_while(cli, tmp_path, _EXTENDER, sparse)
    copy = bundle / item["stored_as"]
    recorded = _stat_size(item)
    assert item["status"] == "changed" and item["size"] == recorded == copy.stat().st_size
    assert path.stat().st_size > recorded and copy.stat().st_blocks * 512 <= 2 << 20  # still sparse
    assert cli("verify", bundle).returncode == 0


def test_export_after_leftovers_of_an_older_run(handover, tmp_path):
    _tmp, it, _police, original = handover
    bundle = writable_bundle_copy(original, tmp_path)
    pkg = fresh_dir(tmp_path, "pkg")
    (pkg / (bundle.name + ".tar.partial")).write_bytes(b"half a tar from a run that died")
    (pkg / (bundle.name + ".tar.staged-" + "0" * 64)).write_bytes(b"a package whose event never came")
    proc = it.cli(*export_args(bundle, pkg))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in pkg.iterdir()) == sorted(
        bundle.name + ".tar" + suffix for suffix in ("", ".sha256", ".sig", ".pub.pem")
    )
    assert len(exported_events(bundle)) == 1
    # A directory where the unfinished package goes is not sealbox's to remove: one line.
    other = fresh_dir(tmp_path, "other")
    (other / (bundle.name + ".tar.partial")).mkdir()
    refused = it.cli(*export_args(bundle, other))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "is a directory" in refused.stderr and "internal error" not in refused.stderr
    assert len(exported_events(bundle)) == 1
