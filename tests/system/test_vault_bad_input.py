"""Bad input to the vault commands: one line naming the thing, exit 1 or 2, nothing claimed as stored."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from tests.support.builders import writable_copy
from tests.support.vault import it_person, new_bucket, sealed_bundle, vault_cli, versions_by_key

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from tests.support.custody import Person
    from tests.support.env import Cli
    from tests.support.vault_server import VaultServer


def _one_line_failure(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    stderr = proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sealbox: error: "), stderr
    assert "Traceback" not in stderr and "STORED" not in proc.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _no_stored_event(bundle: Path) -> None:
    assert b'"event":"stored"' not in (bundle / "custody/continuation.jsonl").read_bytes()


def _setup(vault: VaultServer, tmp_path: Path, out_dir: Path) -> tuple[Person, Path, Cli]:
    it = it_person(tmp_path)
    return it, sealed_bundle(it, tmp_path, out_dir), vault_cli(it, vault)


def test_no_such_bucket(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    _it, bundle, up = _setup(vault, tmp_path, out_dir)
    proc = up("vault", "push", bundle, "--vault", "s3://no-such-bucket-here")
    _one_line_failure(proc, 2, "no-such-bucket-here", "does not exist")
    _no_stored_event(bundle)
    proc = up("vault", "verify", f"OKC-2026-0042/{bundle.name}", "--vault", "s3://no-such-bucket-here")
    _one_line_failure(proc, 2, "no-such-bucket-here")


def test_bucket_without_object_lock(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it, bundle, up = _setup(vault, tmp_path, out_dir)
    bucket = vault.new_bucket_name()
    vault.client("admin").create_bucket(Bucket=bucket)
    proc = up("vault", "push", bundle, "--vault", f"s3://{bucket}")
    _one_line_failure(proc, 2, bucket, "no Object Lock")
    assert versions_by_key(vault.client("admin"), bucket) == {}
    _no_stored_event(bundle)
    proc = vault_cli(it, vault, "admin")("vault", "init", "--vault", f"s3://{bucket}")
    _one_line_failure(proc, 2, "no Object Lock", "when a bucket is created")


def test_wrong_credentials(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it, bundle, up = _setup(vault, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    wrong = tmp_path / "wrong-credentials"
    ak, _sk = vault.keys("uploader")
    wrong.write_text(
        f"[sealbox-uploader]\naws_access_key_id = {ak}\naws_secret_access_key = not-the-secret\n"
    )
    up.env["AWS_SHARED_CREDENTIALS_FILE"] = str(wrong)
    proc = up("vault", "push", bundle, "--vault", f"s3://{bucket}")
    _one_line_failure(proc, 2, "refused these credentials")
    _no_stored_event(bundle)
    assert versions_by_key(vault.client("admin"), bucket) == {}
    up.env.pop("AWS_PROFILE")
    up.env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    proc = up("vault", "push", bundle, "--vault", f"s3://{bucket}")
    _one_line_failure(proc, 2, "no credentials")


def test_endpoint_down(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    _it, bundle, up = _setup(vault, tmp_path, out_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed again: nothing listens there
    up.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    proc = up("vault", "push", bundle, "--vault", "s3://sbx-anything", "--attempts", "2")
    assert "attempt 1 of 2" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("sealbox: error:")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "unreachable" in lines[0] and "gave up after 2 attempts" in lines[0] and "continues" in lines[0]
    _no_stored_event(bundle)


def test_unverified_bundle_is_refused(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    it, bundle, up = _setup(vault, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    copy = writable_copy(bundle, tmp_path / "copy")
    victim = next(p for p in (copy / "data/files").rglob("auth.log"))
    victim.write_text("Mar  2 10:00:01 clerk sshd[1]: nothing happened\n")
    proc = up("vault", "push", copy, "--vault", f"s3://{bucket}")
    _one_line_failure(proc, 1, "does not verify", "nothing was sent")
    assert versions_by_key(vault.client("admin"), bucket) == {}
    _no_stored_event(copy)


def test_bad_vault_url(vault: VaultServer, tmp_path: Path, out_dir: Path) -> None:
    _it, bundle, up = _setup(vault, tmp_path, out_dir)
    _one_line_failure(up("vault", "push", bundle, "--vault", "https://x/y"), 2, "not an s3:// URL")
    up.env.pop("SEALBOX_VAULT", None)
    _one_line_failure(up("vault", "push", bundle), 2, "no vault given")
    _one_line_failure(up("vault", "verify", "just-a-case", "--vault", "s3://sbx-x"), 2, "CASE/BUNDLE")
