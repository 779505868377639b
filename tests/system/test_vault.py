"""The vault end to end against the embedded SeaweedFS through the real CLI and boto3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.env import clear_flags
from tests.support.vault import (
    collect,
    it_person,
    make_tree,
    new_bucket,
    payload_oxum,
    sealed_bundle,
    vault_cli,
    versions_by_key,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.vault_server import VaultServer

SMALL_FILES = 20_000  # the size issue 16 names for this round trip


def test_push_verify_pull_small_bundle(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it = it_person(tmp_path)
    bundle = sealed_bundle(it, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    proc = up("vault", "push", bundle, "--vault", f"s3://{bucket}/city", "--retention", "1d")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("STORED "), proc.stdout
    again = up("vault", "push", bundle, "--vault", f"s3://{bucket}/city", "--retention", "1d")
    assert again.returncode == 0 and "(0 uploaded, " in again.stdout, again.stdout + again.stderr
    keys = versions_by_key(vault.client("admin"), bucket, "city/")
    assert all(len(v) == 1 for v in keys.values()), keys  # nothing stored twice, the index neither
    ref = f"OKC-2026-0042/{bundle.name}"
    proc = up("vault", "verify", ref, "--vault", f"s3://{bucket}/city")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("VERIFIED "), proc.stdout
    proc = up("vault", "ls", "--vault", f"s3://{bucket}/city", check=True)
    assert "OKC-2026-0042  1 bundle(s)" in proc.stdout
    proc = up("vault", "ls", "OKC-2026-0042", "--vault", f"s3://{bucket}/city", check=True)
    assert "COMPLIANCE until" in proc.stdout and "last: stored" in proc.stdout, proc.stdout
    pulled_to = tmp_path / "pulled"
    proc = up("vault", "pull", ref, "--out", pulled_to, "--vault", f"s3://{bucket}/city")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pulled = pulled_to / bundle.name
    proc = it.cli("verify", pulled)
    assert proc.returncode == 0, proc.stdout
    assert (pulled / "custody/continuation.jsonl").read_bytes() == (
        bundle / "custody/continuation.jsonl"
    ).read_bytes()


def test_push_verify_pull_1gib_and_20000_files(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    """Multipart (a 1 GiB file in 8 MiB parts) and many small objects, through every command.
    Each pass over the data is one the commands must make: `vault pull` verifies the local copy
    itself (its VERIFIED line is checked), so no second local verify runs."""
    it = it_person(tmp_path)
    bundle = collect(it, make_tree(tmp_path, big_mib=1024, small=SMALL_FILES), out_dir)
    nbytes, nfiles = payload_oxum(bundle)
    assert nfiles == SMALL_FILES + 1 and nbytes > 1 << 30
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    where = f"s3://{bucket}"
    proc = up("vault", "push", bundle, "--vault", where, "--retention", "1d", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    keys = versions_by_key(vault.client("admin"), bucket, f"OKC-2026-0042/{bundle.name}/bag/")
    assert len(keys) == sum(1 for p in bundle.rglob("*") if p.is_file()) - 1  # all but continuation.jsonl
    assert all(len(v) == 1 for v in keys.values())
    big_key = next(k for k in keys if k.endswith("disk.img"))
    head = vault.client("admin").head_object(Bucket=bucket, Key=big_key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].endswith("-128"), head.get("ChecksumSHA256")  # 128 parts, each checked
    assert head["ObjectLockMode"] == "COMPLIANCE"
    ref = f"OKC-2026-0042/{bundle.name}"
    proc = up("vault", "verify", ref, "--vault", where, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f" {nbytes} payload bytes" in proc.stdout, proc.stdout
    pulled = tmp_path / "pulled"
    proc = up("vault", "pull", ref, "--out", pulled, "--vault", where, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"VERIFIED {pulled / bundle.name}: {nfiles} payload files, {nbytes} bytes" in proc.stderr
    assert (pulled / bundle.name / "data").is_dir()
    clear_flags(pulled)
