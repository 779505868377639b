"""Follow-up bundles (SPEC §2 Sealbox-Previous-Bundle): only what changed is copied, and the
chain to the previous bundle is checkable by sha256sum and by `verify --previous`."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

from tests.support.builders import collect, make_key
from tests.support.env import clear_flags
from tests.support.resume import CASE, interrupted, make_tree

if TYPE_CHECKING:
    from pathlib import Path


def items(bundle: Path) -> dict[str, dict]:
    lines = (bundle / "metadata/items.jsonl").read_text().splitlines()
    return {i["source_path"]: i for i in map(json.loads, lines)}


def bag_info(bundle: Path) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in (bundle / "bag-info.txt").read_text().splitlines())
    return dict(pairs)


def test_a_follow_up_copies_only_what_changed_and_links_to_the_previous_bundle(cli, tmp_path, out_dir):
    make_key(cli)
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    for name in ("auth.log", "syslog", "kern.log"):
        (src / "logs" / name).write_text(f"{name} day one\n")
    first = collect(cli, out_dir, src, case="C-FOLLOW")
    with (src / "logs/auth.log").open("a") as fh:
        fh.write("day two: a new login\n")
    (src / "logs/new.log").write_text("appeared on day two\n")

    later = tmp_path / "day-two"  # bundle names have whole seconds: one out dir per bundle here
    later.mkdir()
    try:
        _follow_up(cli, src, first, later)
    finally:
        clear_flags(later)


def _follow_up(cli, src: Path, first: Path, later: Path) -> None:
    second = collect(cli, later, src, case="C-FOLLOW", extra=("--previous", str(first)))
    found = items(second)
    assert found[str(src / "logs/auth.log")]["status"] == "ok"
    assert found[str(src / "logs/new.log")]["status"] == "ok"
    for name in ("syslog", "kern.log"):
        same = found[str(src / "logs" / name)]
        assert same["status"] == "skipped" and same["stored_as"] is None
        previous_id = items(first)[str(src / "logs" / name)]["id"]
        assert same["note"] == (
            f"unchanged since the previous bundle {first.name}: same size, mtime, ctime and inode "
            f"as its item {previous_id}"
        )
    copied = sorted(p.name for p in (second / "data/files").rglob("*") if p.is_file())
    assert copied == ["auth.log", "new.log"]

    # The link, checked with a standard tool: sha256sum of the previous tagmanifest.
    digest = subprocess.run(
        ["sha256sum", "tagmanifest-sha256.txt"], cwd=first, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert bag_info(second)["Sealbox-Previous-Bundle"] == digest
    started = json.loads((second / "custody/custody.jsonl").read_text().splitlines()[0])
    assert started["details"]["previous"] == {"bundle": first.name, "tagmanifest_sha256": digest}
    assert cli("verify", second).returncode == 0
    assert cli("verify", second, "--previous", first).returncode == 0

    other = collect(cli, later, src, case="C-OTHER")
    proc = cli("verify", "--json", second, "--previous", other)
    assert proc.returncode == 1
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["kind"] == "previous-bundle-mismatch" and finding["found"] == digest
    proc = cli("verify", "--json", first, "--previous", other)
    assert [f["kind"] for f in json.loads(proc.stdout)["findings"]] == ["previous-bundle-unlinked"]


def test_a_previous_bundle_that_does_not_check_out_is_refused(cli, tmp_path, out_dir):
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.log").write_text("a\n")
    first = collect(cli, out_dir, src, case="C-FOLLOW")
    out2 = tmp_path / "out2"
    out2.mkdir()

    def refused(previous: Path, text: str) -> None:
        proc = cli("collect", "--case", "C-FOLLOW", "--out", out2, "--previous", previous, src)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and text in proc.stderr, proc.stderr
        assert list(out2.iterdir()) == []  # nothing was started

    refused(tmp_path / "nope", "is not a sealed bundle")
    clear_flags(first)
    items_file = first / "metadata/items.jsonl"
    os.chmod(items_file, 0o644)
    items_file.write_text(items_file.read_text().replace('"size":2', '"size":3'))
    refused(first, "metadata/items.jsonl differs from its tagmanifest")
    (first / "tagmanifest-sha256.txt.sig").chmod(0o644)
    (first / "tagmanifest-sha256.txt.sig").write_bytes(bytes(64))
    refused(first, "its tagmanifest signature is invalid")


def test_resume_keeps_to_the_previous_bundle_it_was_started_with(cli, tmp_path, out_dir):
    make_key(cli)
    src = make_tree(tmp_path / "src")
    first = collect(cli, out_dir, src, case=CASE)
    later = tmp_path / "later"
    later.mkdir()
    try:
        bundle = interrupted(cli, src, later, after=100)
        proc = cli("collect", "--case", CASE, "--out", later, "--resume", bundle, "--previous", first, src)
        assert proc.returncode == 2 and "was started without --previous" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        clear_flags(later)
