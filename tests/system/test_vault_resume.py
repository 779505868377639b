"""A push cut by kill -9 at random points continues where it stopped: nothing twice, nothing missing;
a corrupted upload is refused by the server's SHA-256 check."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.support.env import REPO
from tests.support.vault import collect, it_person, make_tree, new_bucket, vault_cli, versions_by_key

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.vault_server import VaultServer


def _progress(vault: VaultServer, bucket: str, prefix: str) -> tuple[int, int]:
    """Objects stored so far, and parts of unfinished multipart uploads (not objects yet)."""
    admin = vault.client("admin")
    objects = sum(
        int(page.get("KeyCount", 0))
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    parts = 0
    for upload in admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
        listed = admin.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        parts += len(listed.get("Parts", []))
    return objects, parts


def test_push_killed_at_random_points_resumes(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it = it_person(tmp_path)
    bundle = collect(it, make_tree(tmp_path, big_mib=200, small=1000), out_dir)
    expected = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    expected.discard("custody/continuation.jsonl")
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    where = f"s3://{bucket}"
    prefix = f"OKC-2026-0042/{bundle.name}/bag/"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    cuts = []
    for _ in range(6):
        if len(cuts) >= 2:
            break
        before = _progress(vault, bucket, prefix)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "vault",
                "push",
                str(bundle),
                "--vault",
                where,
                "--retention",
                "1d",
            ],
            env=up.env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Cut at a random point of the upload itself: wait until it has stored something (the
        # local verify before it takes long on a loaded machine), then a random while longer.
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if _progress(vault, bucket, prefix) != before:
                break
            time.sleep(0.3)
        delay = rng.uniform(0.0, 4.0)
        time.sleep(delay)
        if proc.poll() is not None:
            break  # this run finished what the cuts left: the pushes after a cut resumed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = _progress(vault, bucket, prefix)
        if after != before:
            cuts.append((round(delay, 1), before, after))
    assert cuts, f"no cut landed during the upload (seed {seed})"
    proc = up("vault", "push", bundle, "--vault", where, "--retention", "1d", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "already there" in proc.stdout and " 0 already there" not in proc.stdout, proc.stdout
    admin = vault.client("admin")
    keys = versions_by_key(admin, bucket, prefix)
    assert {k[len(prefix) :] for k in keys} == expected, f"seed {seed}"
    doubled = {k: v for k, v in keys.items() if len(v) != 1}
    assert not doubled, f"stored twice (seed {seed}, cuts {cuts}): {list(doubled)[:5]}"
    assert not admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    proc = up("vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", where, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_multipart_upload_resumed_later_gets_the_later_retention(
    vault: VaultServer, tmp_path: Path, out_dir: Path
) -> None:
    """A push cut after the first part of a multipart upload, resumed later: the upload was created
    with the first push's retain-until, and the object it becomes must hold (at least) the date the
    resumed push records, or the vault's own check reports retention shortened."""
    it = it_person(tmp_path)
    bundle = collect(it, make_tree(tmp_path, big_mib=80), out_dir)  # over the 64 MiB of one put
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    where = f"s3://{bucket}"
    cut = subprocess.run(
        [sys.executable, "-m", "agent", "vault", "push", str(bundle), "--vault", where, "--retention", "1d"],
        env={**up.env, "SEALBOX_TEST_KILL_AT": "vault-part-uploaded"},
        cwd=REPO,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert cut.returncode == -signal.SIGKILL, cut.stderr
    admin = vault.client("admin")
    prefix = f"OKC-2026-0042/{bundle.name}/bag/"
    (upload,) = admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix)["Uploads"]
    time.sleep(2.5)  # the resumed push computes a retain-until seconds later
    proc = up("vault", "push", bundle, "--vault", where, "--retention", "1d", timeout=600)
    assert proc.returncode == 0, proc.stderr
    version = admin.head_object(Bucket=bucket, Key=upload["Key"])
    stored = json.loads((bundle / "custody/continuation.jsonl").read_text().splitlines()[-1])
    recorded = datetime.fromisoformat(stored["details"]["retain_until"])
    assert version["ObjectLockRetainUntilDate"] >= recorded
    proc = up("vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", where, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_corrupted_transfer_is_refused_by_the_server(vault: VaultServer, tmp_path: Path) -> None:
    """The server checks ChecksumSHA256: bytes that differ from the digest sent never become an object."""
    from botocore.exceptions import ClientError

    from manifest.vault.location import VaultLocation
    from manifest.vault.objects import Lock, put_bytes

    it = it_person(tmp_path)
    bucket = new_bucket(vault, it)
    client = vault.client("uploader")
    until = datetime.now(UTC) + timedelta(days=1)
    good = b"evidence part " * 100_000
    corrupted = bytearray(good)
    corrupted[12345] ^= 0x01
    digest = hashlib.sha256(good).hexdigest()
    lock = Lock("COMPLIANCE", until)
    with pytest.raises(ClientError) as err:
        put_bytes(client, VaultLocation(bucket), "k/single", bytes(corrupted), digest, lock)
    assert err.value.response["Error"]["Code"] == "BadDigest"
    upload = client.create_multipart_upload(
        Bucket=bucket,
        Key="k/multi",
        ChecksumAlgorithm="SHA256",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )
    with pytest.raises(ClientError) as err:
        client.upload_part(
            Bucket=bucket,
            Key="k/multi",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=bytes(corrupted),
            ChecksumSHA256=base64.b64encode(hashlib.sha256(good).digest()).decode(),
        )
    assert err.value.response["Error"]["Code"] == "BadDigest"
    parts = client.list_parts(Bucket=bucket, Key="k/multi", UploadId=upload["UploadId"]).get("Parts", [])
    assert parts == []
    assert versions_by_key(vault.client("admin"), bucket, "k/") == {}
