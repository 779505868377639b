"""Offline first: `respond --vault` seals locally whatever the vault does, and stores when it can."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.env import Cli
from tests.support.layouts import build_linux_root
from tests.support.vault import versions_by_key

if TYPE_CHECKING:
    from tests.support.vault_server import VaultServer


def _respond(cli: Cli, root: Path, out: Path, vault_url: str) -> tuple[int, Path, str]:
    proc = cli(
        "respond", "--case", "C-V", "--root", root, "--out", out, "--profile", "logs", "--demo-key",
        "--no-prompt", "--json", "--vault", vault_url,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["verified"] is True
    return proc.returncode, Path(summary["bundle"]), proc.stderr


def test_respond_seals_locally_when_the_vault_is_down_and_stores_when_up(
    vault: VaultServer, tmp_path: Path, out_dir: Path
) -> None:
    root, _ = build_linux_root(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Cli(tmp_path / "home")
    cli.env = vault.env("admin", base=cli.env)
    bucket = vault.new_bucket_name()
    cli("vault", "init", "--vault", f"s3://{bucket}", "--retention", "1d", check=True)
    cli.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    code, bundle, stderr = _respond(cli, root, out_dir, f"s3://{bucket}")
    assert code == 0, stderr
    assert "is unreachable: the bundle is sealed locally only; push it later with" in stderr
    assert f"sealbox vault push {bundle} --vault s3://{bucket}" in stderr
    assert cli("verify", bundle).returncode == 0
    cli.env["AWS_ENDPOINT_URL"] = vault.url
    proc = cli("vault", "push", bundle, "--vault", f"s3://{bucket}", "--retention", "1d")
    assert proc.returncode == 0 and proc.stdout.startswith("STORED"), proc.stderr
    code, second, stderr = _respond(cli, root, tmp_path / "out2", f"s3://{bucket}")
    assert code == 0 and "STORED " in stderr, stderr
    assert versions_by_key(vault.client("admin"), bucket, f"C-V/{second.name}/bag/")
