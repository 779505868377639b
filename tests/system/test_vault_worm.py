"""Credentials that cannot destroy: on a stored bundle, delete, overwrite, shorten retention and
lift a legal hold are refused to the uploader, and to the administrator where S3 allows refusing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from tests.support.vault import it_person, new_bucket, sealed_bundle, vault_cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.vault_server import VaultServer


def _refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as err:
        result = call()
        if isinstance(result, dict) and result.get("Errors"):  # DeleteObjects reports per key
            raise ClientError({"Error": result["Errors"][0]}, "DeleteObjects")
    return str(err.value.response["Error"]["Code"])


def _stored(
    vault: VaultServer, tmp_path: Path, out_dir: Path, profile: str, *extra: str
) -> tuple[Any, str, Path]:
    it = it_person(tmp_path)
    bundle = sealed_bundle(it, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    cli = vault_cli(it, vault, profile)
    proc = cli("vault", "push", bundle, "--vault", f"s3://{bucket}", "--retention", "1d", *extra)
    assert proc.returncode == 0, proc.stderr
    return it, bucket, bundle


def _cannot_destroy(s3: Any, bucket: str, key: str) -> None:
    """Every destructive call on a stored object version, refused."""
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    until = s3.head_object(Bucket=bucket, Key=key, VersionId=version)["ObjectLockRetainUntilDate"]
    assert _refused(lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version)) == "AccessDenied"
    assert _refused(
        lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    )
    assert _refused(lambda: s3.delete_object(Bucket=bucket, Key=key)) == "AccessDenied"  # no delete marker
    assert _refused(
        lambda: s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key, "VersionId": version}]})
    )
    assert _refused(
        lambda: s3.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=12)},
        )
    )
    assert _refused(
        lambda: s3.put_object_retention(
            Bucket=bucket,
            Key=key,
            VersionId=version,
            BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
        )
    )
    assert _refused(lambda: s3.delete_bucket(Bucket=bucket))
    assert _refused(
        lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    )


def test_uploader_and_admin_cannot_destroy(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it, bucket, bundle = _stored(vault, tmp_path, out_dir, "uploader")
    key = f"OKC-2026-0042/{bundle.name}/bag/manifest-sha256.txt"
    for profile in ("uploader", "admin"):
        _cannot_destroy(vault.client(profile), bucket, key)
    assert _refused(lambda: vault.client("uploader").delete_bucket_policy(Bucket=bucket)) == "AccessDenied"
    # An overwrite is a new version: the stored one stays, and vault verify says so.
    vault.client("uploader").put_object(Bucket=bucket, Key=key, Body=b"forged manifest\n")
    up = vault_cli(it, vault)
    proc = up("vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", f"s3://{bucket}", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    kinds = {(f["kind"], f["where"]) for f in json.loads(proc.stdout)["findings"]}
    assert kinds == {("vault-object-overwritten", key)}, kinds


def test_legal_hold_cannot_be_lifted_by_the_uploader(
    vault: VaultServer, tmp_path: Path, out_dir: Path
) -> None:
    it, bucket, bundle = _stored(vault, tmp_path, out_dir, "custodian", "--legal-hold")
    key = f"OKC-2026-0042/{bundle.name}/bag/bag-info.txt"
    up = vault.client("uploader")
    version = up.head_object(Bucket=bucket, Key=key)["VersionId"]
    assert up.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)["LegalHold"]["Status"] == "ON"
    assert (
        _refused(
            lambda: up.put_object_legal_hold(
                Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "OFF"}
            )
        )
        == "AccessDenied"
    )
    # The uploader cannot set one either: `--legal-hold` needs the custodian (S3 has one right for both).
    proc = vault_cli(it, vault, "uploader")(
        "vault", "push", bundle, "--vault", f"s3://{bucket}/again", "--retention", "1d", "--legal-hold"
    )
    assert proc.returncode == 2 and "denied" in proc.stderr and "STORED" not in proc.stdout, proc.stderr
    assert not vault.client("admin").list_objects_v2(Bucket=bucket, Prefix="again/").get("Contents")
    proc = vault_cli(it, vault, "uploader")(
        "vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", f"s3://{bucket}"
    )
    assert proc.returncode == 0, proc.stdout
    # The administrator may lift a hold (S3 semantics, objlock_probe expects it): the COMPLIANCE
    # retention still refuses the delete, and vault verify reports the hold gone.
    admin = vault.client("admin")
    admin.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "OFF"})
    assert _refused(lambda: admin.delete_object(Bucket=bucket, Key=key, VersionId=version))
    proc = vault_cli(it, vault)(
        "vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", f"s3://{bucket}", "--json"
    )
    assert proc.returncode == 1
    kinds = {(f["kind"], f["where"]) for f in json.loads(proc.stdout)["findings"]}
    assert kinds == {("vault-legal-hold-off", "bag-info.txt")}, kinds
