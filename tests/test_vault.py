"""The vault end to end against the embedded SeaweedFS through the real CLI and boto3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault_helpers import it_person, new_bucket, sealed_bundle, vault_cli
from vault_server import VaultServer, vault_fixture  # noqa: F401

if TYPE_CHECKING:
    from pathlib import Path


def test_push_verify_pull_small_bundle(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it = it_person(tmp_path)
    bundle = sealed_bundle(it, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    proc = up("vault", "push", bundle, "--vault", f"s3://{bucket}/city", "--retention", "1d")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("STORED "), proc.stdout
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
    assert (pulled / "custody/continuation.jsonl").read_bytes() == (bundle / "custody/continuation.jsonl").read_bytes()
