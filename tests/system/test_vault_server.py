"""The embedded vault: S3 and nothing else reachable; every WORM check of objlock_probe holds."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from tests.support.env import REPO, require

if TYPE_CHECKING:
    from tests.support.vault_server import VaultServer

# CI has ../shared beside the clone; a worktree of this session has it further up.
PROBE = next(
    (p / "shared/tools/objlock_probe.py" for p in REPO.parents if (p / "shared/tools").is_dir()),
    REPO.parent / "shared/tools/objlock_probe.py",
)
# weed mini's usual ports: master, volume, filer, admin (HTTP and gRPC), S3 itself.
WEED_DEFAULT_PORTS = (9333, 19333, 9340, 19340, 8888, 18888, 23646, 33646, 8333, 18333, 7333, 8181, 9101)


def _weed(server: VaultServer) -> psutil.Process:
    kids = [p for p in psutil.Process(server.proc.pid).children(recursive=True) if p.name() == "weed"]
    assert len(kids) == 1, kids
    return kids[0]


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            out.add(int(match.group(1)))
    return out


def _listening(net_dir: str) -> dict[int, int]:
    """inode -> port of every listening TCP socket in the network namespace of `net_dir`."""
    out = {}
    for name in ("tcp", "tcp6"):
        with open(f"{net_dir}/{name}") as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A":  # LISTEN
                    out[int(cols[9])] = int(cols[1].rsplit(":", 1)[1], 16)
    return out


def test_only_s3_is_reachable(vault: VaultServer) -> None:
    weed = _weed(vault)
    weed_sockets = _socket_inodes(weed.pid)
    inside = {
        inode: port for inode, port in _listening(f"/proc/{weed.pid}/net").items() if inode in weed_sockets
    }
    # weed does run its other servers: they listen, in its own namespace.
    assert {9333, 8888, 8333} <= set(inside.values()), inside
    outside = _listening("/proc/self/net")
    assert not weed_sockets & outside.keys(), "a weed socket listens where clients are"
    server_sockets = _socket_inodes(vault.proc.pid)
    ours = sorted(port for inode, port in outside.items() if inode in server_sockets)
    s3_port = int(vault.url.rsplit(":", 1)[1])
    assert ours == [s3_port], ours
    for port in sorted(set(inside.values()) | set(WEED_DEFAULT_PORTS)):
        if port in outside.values():
            continue  # another program of this machine uses it; weed's are not in this namespace
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED, port
    # weed's gRPC unix sockets live in its private /tmp, invisible here.
    unix_paths = []
    with open(f"/proc/{weed.pid}/net/unix") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if len(cols) >= 8 and int(cols[6]) in weed_sockets and cols[7].startswith("/"):
                unix_paths.append(cols[7])
    assert unix_paths, "weed opened no unix socket: the check would prove nothing"
    for path in unix_paths:
        assert not Path(path).exists(), path
    with socket.create_connection(("127.0.0.1", s3_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(5) == b"HTTP/"


def test_objlock_probe_passes(vault: VaultServer) -> None:
    require(PROBE.is_file(), f"{PROBE} (../shared beside the clone) is missing")
    ak, sk = vault.keys("admin")
    proc = subprocess.run(
        [sys.executable, str(PROBE), vault.url, ak, sk], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY")]
    assert summary and re.match(r"SUMMARY (\d+) passed, 0 failed", summary[0]), proc.stdout
    assert int(summary[0].split()[1]) >= 19, summary
    assert "FAIL" not in proc.stdout.replace("0 failed", ""), proc.stdout


def test_endpoint_host_port_for_the_isolation_channel(vault: VaultServer, monkeypatch) -> None:
    """The host:port a contained machine must still reach, from boto3's own configuration."""
    from manifest.vault.client import endpoint_host_port

    for key, value in vault.env("uploader", base={}).items():
        monkeypatch.setenv(key, value)
    assert endpoint_host_port() == vault.url.removeprefix("http://")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://[2001:db8::5]/")
    assert endpoint_host_port() == "[2001:db8::5]:443"
