"""A small city in network namespaces: an IT namespace with the embedded vault and an echo
server, and workstations joined to it by a bridge, each running `sealbox agent run`.

    ws1 203.0.113.11 ─┐
    ws2 203.0.113.12 ─┼─ br0 in `it`: 203.0.113.1 (vault :8333, echo :8080 :8443), 2001:db8:1::1
    ws3 203.0.113.13 ─┘

Only documentation addresses; every link is made from inside the test namespaces."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.env import REPO
from tests.support.netns import HERE as NETNS_PY
from tests.support.netns import Built, sh

IT_ADDR, IT6 = "203.0.113.1", "2001:db8:1::1"
VAULT_PORT, ECHO_PORT = 8333, 8080
_counter = itertools.count()
_CONNECT = """
import json, socket, sys
out = {}
for t in sys.argv[2:]:
    _, addr, port = t.rsplit(":", 2) if t.count(":") == 2 else (None, *t[4:].rsplit(":", 1))
    try:
        socket.create_connection((addr, int(port)), timeout=float(sys.argv[1])).close()
        out[t] = True
    except OSError:
        out[t] = False
print(json.dumps(out))
"""


@dataclass
class Station:
    name: str  # also its host id
    ns: str
    addr: str
    root: Path  # its state, config, spool
    proc: subprocess.Popen[str] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def spool(self) -> Path:
        return self.root / "spool"


class AgentLab(Built):
    """The namespaces, the vault in `it`, and the agents. Use as a context manager."""

    def __init__(self, base: Path, stations: int = 3) -> None:
        tag = f"{os.getpid()}-{next(_counter)}"
        self.base = base
        self.it = f"sbxit-{tag}"
        self.stations = [
            Station(f"ws{i}", f"sbxws{i}-{tag}", f"203.0.113.{10 + i}", base / f"ws{i}")
            for i in range(1, stations + 1)
        ]
        self.procs: list[subprocess.Popen[str]] = []
        self.vault_url = ""
        self.vault_data = base / "vault-data"
        self.bucket = "sbx-fleet-" + tag.replace("-", "")[:10]

    # -- building ---------------------------------------------------------------------
    def _build(self) -> None:
        sh("ip", "netns", "add", self.it)
        sh("ip", "-n", self.it, "link", "set", "lo", "up")
        sh("ip", "-n", self.it, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.it, "addr", "add", f"{IT_ADDR}/24", "dev", "br0")
        sh("ip", "-n", self.it, "addr", "add", f"{IT6}/64", "dev", "br0", "nodad")
        sh("ip", "-n", self.it, "link", "set", "br0", "up")
        for n, st in enumerate(self.stations, start=1):
            sh("ip", "netns", "add", st.ns)
            sh("ip", "-n", st.ns, "link", "set", "lo", "up")
            sh(
                "ip",
                "-n",
                st.ns,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                f"p{n}",
                "netns",
                self.it,
            )
            sh("ip", "-n", self.it, "link", "set", f"p{n}", "master", "br0")
            sh("ip", "-n", self.it, "link", "set", f"p{n}", "up")
            sh("ip", "-n", st.ns, "addr", "add", f"{st.addr}/24", "dev", "eth0")
            sh("ip", "-n", st.ns, "addr", "add", f"2001:db8:1::{10 + n}/64", "dev", "eth0", "nodad")
            sh("ip", "-n", st.ns, "link", "set", "eth0", "up")
            for d in (st.state, st.config, st.spool):
                d.mkdir(parents=True, exist_ok=True)
                d.chmod(0o700)
            (st.root / "resolv.conf").write_text(f"nameserver {IT_ADDR}\n")
        self._start_echo()
        self._start_vault()

    def _start_echo(self) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.it, sys.executable, str(NETNS_PY), "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None and "serving" in proc.stdout.readline()

    def _start_vault(self, timeout: float = 120) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.it, sys.executable, "-m", "agent", "vault", "serve",
             "--data", str(self.vault_data), "--listen", f"{IT_ADDR}:{VAULT_PORT}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("S3 endpoint: "):
                self.vault_url = line.split(": ", 1)[1].strip()
                break
        assert self.vault_url, "vault serve did not start: " + " | ".join(seen)

    def close(self) -> None:
        for st in self.stations:
            self.kill_agent(st)
        for proc in self.procs:  # the lab's servers, thrown away with it: no graceful stop to wait for
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in (*(s.ns for s in self.stations), self.it):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)

    # -- environments ---------------------------------------------------------------------
    def aws_env(self, profile: str, base: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in (base or dict(os.environ)).items() if not k.startswith("AWS_")}
        config = self.vault_data / "aws-config"
        if not config.exists():
            config.write_text("")
        env.update(
            AWS_ENDPOINT_URL=self.vault_url,
            AWS_SHARED_CREDENTIALS_FILE=str(self.vault_data / "credentials"),
            AWS_CONFIG_FILE=str(config),
            AWS_PROFILE=f"sealbox-{profile}",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_REGION="us-east-1",
        )
        return env

    def station_env(self, st: Station) -> dict[str, str]:
        env = self.aws_env("uploader")
        for var in ("SEALBOX_HOME", "SEALBOX_STATE_DIR", "SEALBOX_VAULT", "SEALBOX_HOST_ID"):
            env.pop(var, None)
        env.update(
            PYTHONPATH=str(REPO),
            SEALBOX_CONFIG_DIR=str(st.config),
            SEALBOX_SYSTEMD_DIR=str(st.root / "systemd"),
            SEALBOX_RESOLV_CONF=str(st.root / "resolv.conf"),
            SEALBOX_ISOLATION_CONFIG=str(st.root / "isolation.toml"),
            SEALBOX_DHCP_LEASES=str(st.root / "leases" / "*"),
        )
        return env

    def it_cli(
        self, home: Path, *args: str, profile: str = "admin", timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`sealbox ARGS` as IT, from the IT namespace, with its own key store `home`."""
        env = self.aws_env(profile)
        env.update(PYTHONPATH=str(REPO), SEALBOX_HOME=str(home))
        return subprocess.run(
            ["ip", "netns", "exec", self.it, sys.executable, "-m", "agent", *args],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout,
        )  # fmt: skip

    # -- agents ---------------------------------------------------------------------------
    def start_agent(
        self, st: Station, *extra: str, interval: str = "2s", env_extra: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        log = st.root / f"agent-{len(st.logs)}.log"
        st.logs.append(log)
        with open(log, "w") as out:
            st.proc = subprocess.Popen(
                ["ip", "netns", "exec", st.ns, sys.executable, "-m", "agent", "agent", "run",
                 "--spool", str(st.spool), "--vault", f"s3://{self.bucket}", "--state", str(st.state),
                 "--interval", interval, "--host-id", st.name, *extra],
                stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                env={**self.station_env(st), **(env_extra or {})},
            )  # fmt: skip
        return st.proc

    def kill_agent(self, st: Station, sig: int = signal.SIGKILL) -> None:
        if st.proc is not None and st.proc.poll() is None:
            # `ip netns exec` execs the program: this pid is the agent itself.
            st.proc.send_signal(sig)
            st.proc.wait(timeout=30)
        st.proc = None

    def log_text(self, st: Station) -> str:
        return "\n".join(p.read_text(errors="replace") for p in st.logs if p.exists())

    def statuses(self, st: Station) -> list[dict[str, Any]]:
        """Every status document the agent wrote locally, in order."""
        path = st.state / "agent-log.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_status(self, st: Station, timeout: float = 90, **match: Any) -> dict[str, Any]:
        """The first status document whose fields equal `match` (waiting for it to appear)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for doc in self.statuses(st):
                if all(doc.get(k) == v for k, v in match.items()):
                    return doc
            if st.proc is not None and st.proc.poll() is not None:
                raise AssertionError(f"agent {st.name} exited {st.proc.returncode}:\n{self.log_text(st)}")
            time.sleep(0.2)
        raise AssertionError(f"no status {match} from {st.name} in {timeout}s:\n{self.log_text(st)[-4000:]}")

    def probe(self, st: Station, *targets: str, timeout: float = 1.0) -> dict[str, bool]:
        """`tcp:ADDR:PORT` from `st`: True when a TCP connection opens (the vault speaks S3, not
        echo, so a connection is the test)."""
        proc = subprocess.run(
            ["ip", "netns", "exec", st.ns, sys.executable, "-c", _CONNECT, str(timeout), *targets],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    # -- sshd, for the Ansible test -----------------------------------------------------------
    def start_sshd(self, st: Station, authorized_key: str) -> None:
        """An sshd in `st` on port 22 of its address, letting in root with `authorized_key`
        only; its host key, configuration and pid file are the test's own."""
        d = st.root / "sshd"
        d.mkdir(mode=0o700, exist_ok=True)
        key = d / "host_ed25519"
        if not key.exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        (d / "authorized_keys").write_text(authorized_key)
        (d / "authorized_keys").chmod(0o600)
        config = d / "sshd_config"
        config.write_text(
            f"ListenAddress {st.addr}\nPort 22\nHostKey {key}\nPidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        proc = subprocess.Popen(
            ["ip", "netns", "exec", st.ns, shutil.which("sshd") or "/usr/sbin/sshd",
             "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        self.procs.append(proc)
        deadline = time.monotonic() + 20
        while not self.probe(st, f"tcp:{st.addr}:22")[f"tcp:{st.addr}:22"]:
            assert proc.poll() is None and time.monotonic() < deadline, (d / "sshd.log").read_text()
            time.sleep(0.2)

    def nft(self, st: Station, *args: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", st.ns, "nft", *args, check=False)


def weed_available() -> bool:
    return bool(shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed"))
