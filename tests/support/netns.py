"""Test network: three network namespaces joined only to each other, and probes run inside them.

    host  ── veth ──  itsrv     203.0.113.1/24 ↔ 203.0.113.2/24,   2001:db8:1::1/64 ↔ ::2
    host  ── veth ──  outside   198.51.100.1/24 ↔ 198.51.100.2/24, 2001:db8:2::1/64 ↔ ::2

Every link is created from inside a test namespace (`ip -n NS link add ... peer ... netns
OTHER`), so nothing is ever added to the machine's own namespace. Names carry the pid and a
counter so parallel runs do not collide. Run as a script, this file is also the server and the
probe that the tests start inside the namespaces (`serve`, `probe`, `hold`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent.parent

IT4, IT6 = "203.0.113.2", "2001:db8:1::2"
OUT4, OUT6 = "198.51.100.2", "2001:db8:2::2"
HOST_IT4, HOST_OUT4 = "203.0.113.1", "198.51.100.1"
HOST_IT6, HOST_OUT6 = "2001:db8:1::1", "2001:db8:2::1"
IT_PORT, OUT_PORT, UDP_PORT = 8443, 8080, 5353
_counter = itertools.count()
LAB_CASE = "LAB-CASE-1"  # the case id a lab's `isolate` runs under unless the test names one


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """`proc`, asserted to have exited 0 (its output in the message otherwise)."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def can_make_namespaces() -> bool:
    """Whether this process may create (and delete) a network namespace."""
    name = f"sbxprobe-{os.getpid()}-{next(_counter)}"
    if sh("ip", "netns", "add", name, check=False).returncode != 0:
        return False
    sh("ip", "netns", "del", name, check=False)
    return True


class Built:
    """A lab as a context manager: `_build()` on entry, `close()` on exit and after a failed build
    (a half-built lab leaves no namespace behind)."""

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Lab(Built):
    """The three namespaces, their servers, and helpers to run things inside `host`."""

    def __init__(self, state_dir: Path) -> None:
        tag = f"{os.getpid()}-{next(_counter)}"
        self.host, self.itsrv, self.outside = (f"sbx{n}-{tag}" for n in ("host", "it", "out"))
        self._paths(state_dir)
        self.procs: list[subprocess.Popen[str]] = []
        self.started: dict[str, list[subprocess.Popen[str]]] = {}
        self.servers: list[subprocess.Popen[str]] = []
        self._keys: Path | None = None  # a copy of the first key store ensure_key made
        self._built: list[str] = []

    def _paths(self, state_dir: Path) -> None:
        """Everything sealbox keeps or reads on the host lives beside `state_dir` (one per test)."""
        self.state_dir = state_dir
        self.systemd_dir = state_dir.parent / "systemd"
        self.resolv_conf = state_dir.parent / "resolv.conf"
        self.home = state_dir.parent / "home"
        self.isolation_config = state_dir.parent / "isolation.toml"
        self.leases_dir = state_dir.parent / "leases"

    # -- building and tearing down -------------------------------------------------------
    def _build(self) -> None:
        for ns in (self.host, self.itsrv, self.outside):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # No duplicate address detection: addresses are usable at once, probes are stable.
            for conf in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
        for peer, v4, v6, hv4, hv6 in (
            (self.itsrv, IT4, IT6, HOST_IT4, "2001:db8:1::1"),
            (self.outside, OUT4, OUT6, HOST_OUT4, "2001:db8:2::1"),
        ):
            here, there = ("vit", "vhost") if peer == self.itsrv else ("vout", "vhost")
            sh(
                "ip",
                "-n",
                self.host,
                "link",
                "add",
                here,
                "type",
                "veth",
                "peer",
                "name",
                there,
                "netns",
                peer,
            )
            for ns, dev, a4, a6 in ((self.host, here, hv4, hv6), (peer, there, v4, v6)):
                sh("ip", "-n", ns, "addr", "add", f"{a4}/24", "dev", dev)
                sh("ip", "-n", ns, "addr", "add", f"{a6}/64", "dev", dev, "nodad")
                sh("ip", "-n", ns, "link", "set", dev, "up")
        deadline = time.monotonic() + 5
        for ns, dev in (
            (self.host, "vit"),
            (self.host, "vout"),
            (self.itsrv, "vhost"),
            (self.outside, "vhost"),
        ):
            while "LOWER_UP" not in sh("ip", "-n", ns, "-o", "link", "show", dev).stdout:
                assert time.monotonic() < deadline, f"{dev} in {ns} did not come up"
                time.sleep(0.02)
        for ns in (self.host, self.itsrv, self.outside):
            sh("ip", "-n", ns, "neigh", "flush", "all")  # no FAILED entries from before link-up
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.resolv_conf.write_text(f"nameserver {IT4}\n", encoding="utf-8")
        for ns in (self.itsrv, self.outside):
            self.servers.append(self.start(ns, "serve", wait_for="serving"))
        # Links need a moment to come up: retry until everything answers. Generous, for a loaded
        # machine: a ready network answers the first probe, so the limit costs nothing then.
        result = self._answers(deadline=time.monotonic() + 30)
        assert all(result.values()), f"test network not ready: {result}"
        self._built = self._topology()

    def _topology(self) -> list[str]:
        """Links, addresses, routes and forwarding of every namespace: what `reset` cannot undo."""
        show = (
            "ip -o link; ip -o addr; ip route; ip -6 route; "
            "sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding"
        )
        out = [
            sh("ip", "netns", "exec", ns, "sh", "-c", show).stdout
            for ns in (self.host, self.itsrv, self.outside)
        ]
        # Address lifetimes count down on their own; the rest must be as built.
        return [re.sub(r"valid_lft \S+ preferred_lft \S+", "", text) for text in out]

    def _answers(self, deadline: float) -> dict[str, bool]:
        """Probe everything until all of it answers or `deadline` passes; the last result."""
        while not all((result := self.probe(*self.everything(), timeout=1.0)).values()):
            if time.monotonic() > deadline:
                break
        return result

    def reset(self, state_dir: Path) -> bool:
        """Make this lab what a new one is, for the next test, keeping the namespaces, links and
        servers (building them is most of a lab's cost): new state, home and config paths beside
        `state_dir`, nothing a test started still running, empty rulesets, no conntrack entries,
        and every probe answered. False when that cannot be had (legacy x_tables tables, which
        only deleting the namespace removes; a server or link gone): build a new lab then."""
        for ns, procs in list(self.started.items()):
            for proc in procs:
                if proc not in self.servers:
                    proc.kill()
                    proc.wait(timeout=5)
            self.started[ns] = [p for p in procs if p in self.servers]
        self.procs = [p for p in self.procs if p in self.servers]
        if any(server.poll() is not None for server in self.servers):
            return False
        for pid in sh("ip", "netns", "pids", self.host, check=False).stdout.split():
            try:  # expiry helpers, held connections: only tests start anything inside `host`
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if self._topology() != self._built:  # a test changed routes, links or forwarding
            return False
        legacy = sh(
            "ip", "netns", "exec", self.host, "sh", "-c", "cat /proc/net/ip*_tables_names", check=False
        )
        if legacy.stdout.strip():
            return False
        for ns in (self.host, self.itsrv, self.outside):
            sh("ip", "netns", "exec", ns, "nft", "flush", "ruleset")
            sh(
                "ip", "netns", "exec", ns, "conntrack", "-F", check=False
            )  # absent tool: no entries kept anyway
        self._paths(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.resolv_conf.write_text(f"nameserver {IT4}\n", encoding="utf-8")
        return all(self._answers(deadline=time.monotonic() + 15).values())

    def everything(self) -> list[str]:
        """Every kind of traffic the tests look at, to each namespace, v4 and v6."""
        return [
            f"tcp:{IT4}:{IT_PORT}",
            f"tcp:{IT6}:{IT_PORT}",
            f"tcp:{OUT4}:{OUT_PORT}",
            f"tcp:{OUT6}:{OUT_PORT}",
            f"udp:{OUT4}:{UDP_PORT}",
            f"udp:{OUT6}:{UDP_PORT}",
            f"icmp:{OUT4}",
            f"icmp:{OUT6}",
            f"tcp:{IT4}:{OUT_PORT}",
            f"udp:{IT4}:{UDP_PORT}",
            f"icmp:{IT4}",
        ]

    def close(self) -> None:
        if self._keys is not None:
            import shutil

            shutil.rmtree(self._keys.parent, ignore_errors=True)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
        for ns in (self.host, self.itsrv, self.outside):
            # Anything still running inside a test namespace was started by this test.
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)

    # -- running things ------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SEALBOX_STATE_DIR": str(self.state_dir),
            "SEALBOX_SYSTEMD_DIR": str(self.systemd_dir),
            "SEALBOX_HOME": str(self.home),
            "SEALBOX_RESOLV_CONF": str(self.resolv_conf),
            # Hermetic: no isolation.toml and no DHCP lease of this machine leaks into a test.
            "SEALBOX_ISOLATION_CONFIG": str(self.isolation_config),
            "SEALBOX_DHCP_LEASES": str(self.leases_dir / "*"),
        }

    def run(
        self, ns: str, *argv: str, timeout: float = 60, user: bool = False
    ) -> subprocess.CompletedProcess[str]:
        prefix, env, cwd = ["ip", "netns", "exec", ns], self.env(), REPO
        if user:  # as nobody, from a world-readable copy: the checkout's parents may be 0700
            from tests.support.env import as_nobody, unprivileged_tree  # not in the probes run as scripts

            tree = unprivileged_tree()
            nobody, nobody_env = as_nobody(tree)
            prefix += nobody
            env = {**env, **nobody_env}
            cwd = tree
            if argv[0] == sys.executable:
                argv = argv[1:]  # as_nobody names the interpreter
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd
        )

    def boot_unit(self) -> tuple[list[str], dict[str, str]]:
        """The boot unit's ExecStart and Environment, as systemd would run them."""
        text = (self.systemd_dir / "sealbox-isolation.service").read_text()
        exec_start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
        env = dict(
            shlex.split(ln.removeprefix("Environment="))[0].split("=", 1)
            for ln in text.splitlines()
            if ln.startswith("Environment=")
        )
        return shlex.split(exec_start.removeprefix("ExecStart=")), env

    def sealbox(
        self, *args: str, user: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`sealbox ARGS` in `host`. Isolation is always on the record: a real `isolate` without
        `--case` gets the lab's case id, and the lab's key store gets a signing key first."""
        if args and args[0] == "isolate" and "--dry-run" not in args and not user:
            self.ensure_key()
            if "--case" not in args:
                args = (*args, "--case", LAB_CASE)
        return self.run(self.host, sys.executable, "-m", "agent", *args, user=user, timeout=timeout)

    def ensure_key(self) -> None:
        """A signing key (no passphrase) in the lab's key store: made once per lab, copied into
        the key store of each later test."""
        import shutil
        import tempfile

        if (self.home / "keys").is_dir():
            return
        if self._keys is not None:
            shutil.copytree(self._keys, self.home, symlinks=True, dirs_exist_ok=True)
            return
        who = ["--name", "Lab Responder", "--role", "IT responder", "--org", "Lab IT"]
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "keys", "generate", *who],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=REPO,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self._keys = Path(tempfile.mkdtemp(prefix="sealbox-lab-keys-")) / "home"
        shutil.copytree(self.home, self._keys, symlinks=True)

    def nft(self, *args: str, ns: str | None = None) -> str:
        return sh("ip", "netns", "exec", ns or self.host, "nft", *args).stdout

    def start(self, ns: str, *args: str, wait_for: str = "") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HERE), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
        self.procs.append(proc)
        self.started.setdefault(ns, []).append(proc)
        if wait_for:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert wait_for in line, f"{args} did not start: {line!r} {proc.stderr.read()}"
        return proc

    def stop(self, ns: str) -> None:
        """End what this lab started in `ns` (to free its ports for probes from them)."""
        for proc in self.started.pop(ns, []):
            proc.kill()
            proc.wait(timeout=5)

    def probe(self, *targets: str, timeout: float = 1.0, ns: str | None = None) -> dict[str, bool]:
        """`tcp:ADDR:PORT`, `udp:ADDR:PORT`, `icmp:ADDR` from `host`; True = it got through."""
        proc = self.run(ns or self.host, sys.executable, str(HERE), "probe", str(timeout), *targets)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def shared_lab(*tools: str) -> Iterator[SharedLab]:
    """A module's lab after its prerequisites (root, namespaces, ip/nft/ss and `tools`) are
    checked; a module-scoped fixture yields from it."""
    from tests.support.env import require, require_root, require_tool

    require_root()
    for tool in ("ip", "nft", "ss", *tools):
        require_tool(tool)
    require(can_make_namespaces(), "cannot create network namespaces here")
    shared = SharedLab()
    try:
        yield shared
    finally:
        shared.close()


class SharedLab:
    """One `Lab` for a test module (a module-scoped fixture holds it), made fresh for each test by
    `Lab.reset`; built anew only when a reset cannot undo what the last test left."""

    def __init__(self) -> None:
        self.lab: Lab | None = None

    def fresh(self, state_dir: Path) -> Lab:
        if self.lab is not None and not self.lab.reset(state_dir):
            self.lab.close()
            self.lab = None
        if self.lab is None:
            self.lab = Lab(state_dir).__enter__()
        return self.lab

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
            self.lab = None


def need_backend(lab: Lab, backend: str) -> None:
    """Require the restore tools of an iptables `backend` ("nft" needs none); skip the legacy one
    when the kernel lacks it."""
    import pytest

    from tests.support.env import require_tool

    if backend == "nft":
        return
    suffix = backend.removeprefix("iptables")
    for tool in ("iptables", "ip6tables"):
        require_tool(f"{tool}{suffix}-restore")
    if backend == "iptables-legacy":
        # The legacy x_tables kernel interface is optional in modern kernels; only skip here.
        probe = lab.run(lab.host, "iptables-legacy", "-S")
        if probe.returncode != 0:
            pytest.skip(f"kernel has no legacy iptables: {probe.stderr.strip()}")


class PathLab(Lab):
    """A routed path with a smaller-MTU hop, for path MTU discovery through isolation:

        host ── veth ── router ── veth (router end MTU 1280) ── server
        198.51.100.1/25 ↔ .126        203.0.113.1/25 ↔ 203.0.113.2/25
        2001:db8:a::1/64 ↔ ::2        2001:db8:b::1/64 ↔ 2001:db8:b::2/64

    Both ends advertise an MSS for 1500 bytes, so the host learns the 1280 hop only from the
    router's "fragmentation needed" (v4) / "packet too big" (v6), which isolation must let in.
    The server runs `sink` on SERVER_PORT.
    """

    SERVER4, SERVER6, SERVER_PORT = "203.0.113.2", "2001:db8:b::2", 8443
    HOP_MTU = 1280

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        tag = self.host.split("-", 1)[1]
        # `itsrv` is the router here, `outside` the server (Lab.close removes both).
        self.itsrv, self.outside = f"sbxrt-{tag}", f"sbxsv-{tag}"
        self.router, self.server = self.itsrv, self.outside

    def _build(self) -> None:
        for ns in (self.host, self.router, self.server):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for conf in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
        # Both veth pairs end in the router: `vrt` in host and server, `vhost`/`vsrv` in the router.
        veth = ("link", "add", "vrt", "type", "veth", "peer", "name")
        for ns, peer in ((self.host, "vhost"), (self.server, "vsrv")):
            sh("ip", "-n", ns, *veth, peer, "netns", self.router)
        for ns, dev, a4, a6 in (
            (self.host, "vrt", "198.51.100.1/25", "2001:db8:a::1/64"),
            (self.router, "vhost", "198.51.100.126/25", "2001:db8:a::2/64"),
            (self.router, "vsrv", "203.0.113.1/25", "2001:db8:b::1/64"),
            (self.server, "vrt", "203.0.113.2/25", "2001:db8:b::2/64"),
        ):
            sh("ip", "-n", ns, "addr", "add", a4, "dev", dev)
            sh("ip", "-n", ns, "addr", "add", a6, "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.router, "link", "set", "vsrv", "mtu", str(self.HOP_MTU))
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            sh("ip", "netns", "exec", self.router, "sysctl", "-qw", key)
        sh("ip", "-n", self.host, "route", "add", "203.0.113.0/25", "via", "198.51.100.126")
        sh("ip", "-n", self.host, "-6", "route", "add", "2001:db8:b::/64", "via", "2001:db8:a::2")
        sh("ip", "-n", self.server, "route", "add", "198.51.100.0/25", "via", "203.0.113.1")
        sh("ip", "-n", self.server, "-6", "route", "add", "2001:db8:a::/64", "via", "2001:db8:b::1")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.resolv_conf.write_text(f"nameserver {self.SERVER4}\n", encoding="utf-8")
        self.start(self.server, "sink", str(self.SERVER_PORT), wait_for="serving")
        deadline = time.monotonic() + 10
        while not all("ok" in self.upload(a, 1000, 0.5) for a in (self.SERVER4, self.SERVER6)):
            assert time.monotonic() < deadline, "routed test network not ready"

    def upload(self, addr: str, size: int, timeout: float) -> str:
        proc = self.run(
            self.host,
            sys.executable,
            str(HERE),
            "upload",
            addr,
            str(self.SERVER_PORT),
            str(size),
            str(timeout),
        )
        return proc.stdout.strip() or proc.stderr.strip()


# -- the programs that run inside the namespaces -----------------------------------------


def _serve(
    tcp_ports: tuple[int, ...] = (IT_PORT, OUT_PORT), udp_ports: tuple[int, ...] = (UDP_PORT, 53, 67)
) -> None:
    listeners = []
    for port in tcp_ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(16)
        listeners.append(s)
    udps = []
    for port in udp_ports:
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        udp.bind(("::", port))
        udps.append(udp)

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    print("serving", flush=True)
    while True:
        ready, _, _ = select.select([*listeners, *udps], [], [])
        for s in ready:
            if s in udps:
                data, addr = s.recvfrom(4096)
                s.sendto(data, addr)
            else:
                conn, _ = s.accept()
                threading.Thread(target=echo, args=(conn,), daemon=True).start()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _icmp(addr: str, timeout: float) -> bool:
    v6 = ":" in addr
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    echo_type, reply_type = (128, 129) if v6 else (8, 0)
    ident = os.getpid() & 0xFFFF
    header = struct.pack("!BBHHH", echo_type, 0, 0, ident, 1) + b"sealbox"
    if not v6:  # the kernel fills in the ICMPv6 checksum
        header = header[:2] + struct.pack("!H", _checksum(header)) + header[4:]
    with socket.socket(family, socket.SOCK_RAW, proto) as s:
        s.settimeout(timeout)
        try:
            s.sendto(header, (addr, 0))
        except OSError:
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _src = s.recvfrom(2048)
            except OSError:
                return False
            icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
            if icmp[0] == reply_type and struct.unpack("!H", icmp[4:6])[0] == ident:
                return True
    return False


def _one(target: str, timeout: float) -> bool:
    """`tcp:ADDR:PORT`, `udp:ADDR:PORT` (`@SPORT`: from that source port), `icmp:ADDR`."""
    kind, _, rest = target.partition(":")
    if kind == "icmp":
        return _icmp(rest, timeout)
    rest, _, sport = rest.partition("@")
    addr, _, port = rest.rpartition(":")
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(sport)))
            # Connected, also for UDP: probes sharing a source port each get their own answers.
            s.connect((addr, int(port)))
            s.sendall(b"ping")
            return s.recv(4) == b"ping"
    except OSError:
        return False


def _probe(timeout: float, targets: list[str]) -> None:
    results: dict[str, bool] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, _one(t, timeout))) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))


def _hold(addr: str, port: int, proto: str = "tcp") -> None:
    """Open a TCP connection (or connect a UDP socket), say so, then report how it ends."""
    if proto == "udp":
        s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((addr, port))
        s.send(b"ping")
        s.recv(16)  # the echo: the flow exists both ways
    else:
        s = socket.create_connection((addr, port), timeout=2)
    s.settimeout(None)
    print("connected", flush=True)
    try:
        data = s.recv(1)
        print("closed" if not data else "data", flush=True)
    except OSError as exc:
        print(f"cut {exc.errno}", flush=True)


def _sink(port: int) -> None:
    """Accept connections, read each to its end, answer with the byte count (uploads)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(16)

    def one(conn: socket.socket) -> None:
        with conn:
            total = 0
            while data := conn.recv(65536):
                total += len(data)
            conn.sendall(f"{total}".encode())

    print("serving", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=one, args=(conn,), daemon=True).start()


def _push(port: int) -> None:
    """Accept one connection, then send each line read from stdin to it (the peer speaks first)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(1)
    print("serving", flush=True)
    conn, _ = s.accept()
    print("accepted", flush=True)
    for line in sys.stdin:
        conn.sendall(line.encode())


def _upload(addr: str, port: int, size: int, timeout: float) -> None:
    """Send `size` bytes and wait for the count: prints `ok N` or why it failed."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"x" * size)
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(64).decode()
        print(f"ok {answer}" if answer == str(size) else f"short {answer}", flush=True)
    except OSError as exc:
        print(f"failed {exc}", flush=True)


def _many(addr: str, port: int, count: int) -> None:
    """Open `count` TCP connections, say so, then wait for them all to be cut (bench-isolate)."""
    socks = [socket.create_connection((addr, port), timeout=5) for _ in range(count)]
    print("connected", flush=True)
    for s in socks:
        s.settimeout(None)
        try:
            s.recv(1)
        except OSError:
            pass
    print("all cut", flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        ports = [int(p) for p in sys.argv[2:]]
        _serve(tuple(ports)) if ports else _serve()
    elif cmd == "push":
        _push(int(sys.argv[2]))
    elif cmd == "sink":
        _sink(int(sys.argv[2]))
    elif cmd == "upload":
        _upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "many":
        _many(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "probe":
        _probe(float(sys.argv[2]), sys.argv[3:])
    elif cmd == "hold":
        _hold(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])


def sealed_bundle_for(lab: Lab, cli: Any, tmp_path: Path) -> tuple[str, Path]:
    """A key and a small sealed bundle; the lab's sealbox uses the same key store."""
    from tests.support.builders import collect, make_key

    fp = make_key(cli)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "note.txt").write_text("seen at 09:14\n")
    out = tmp_path / "out"
    out.mkdir()
    lab.home = cli.home  # the same key store inside the namespace
    return fp, collect(cli, out, evidence)
