"""Existing connections: after the rules load, flows with peers that are not allowed are killed.

Dropping packets only stalls an established connection (the application keeps waiting); the
socket is destroyed with `ss -K` (kernel SOCK_DESTROY), so the process sees ECONNABORTED at once.
Every connection found and what happened to it is reported.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run

if TYPE_CHECKING:
    from agent.isolation.model import IPAddress, Policy

_PROC_RE = re.compile(r'\("([^"]*)",pid=(\d+)')


@dataclass(frozen=True)
class Connection:
    proto: str
    state: str
    local: str
    local_port: int
    peer: str
    peer_port: int
    process: str = ""
    pid: int | None = None

    def describe(self) -> str:
        who = f" ({self.process} pid {self.pid})" if self.pid else ""
        return f"{self.proto} {_join(self.local, self.local_port)} -> {_join(self.peer, self.peer_port)}{who}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _join(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _split(endpoint: str) -> tuple[IPAddress, int] | None:
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(host)
        return (addr.ipv4_mapped or addr) if addr.version == 6 else addr, int(port)
    except ValueError:
        return None


def list_connections() -> list[Connection]:
    """TCP and connected UDP sockets of this network namespace (`ss -tun state connected`)."""
    if not have("ss"):
        return []
    proc = run(["ss", "-H", "-n", "-p", "-t", "-u", "state", "connected"], check=False)
    conns = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[1] == "TIME-WAIT":  # no socket left to kill
            continue
        local, peer = _split(parts[4]), _split(parts[5])
        if local is None or peer is None:
            continue
        m = _PROC_RE.search(line)
        conns.append(
            Connection(
                proto=parts[0],
                state=parts[1],
                local=str(local[0]),
                local_port=local[1],
                peer=str(peer[0]),
                peer_port=peer[1],
                process=m.group(1) if m else "",
                pid=int(m.group(2)) if m else None,
            )
        )
    return conns


def to_kill(policy: Policy, conns: list[Connection]) -> list[Connection]:
    return [c for c in conns if not policy.permits(ipaddress.ip_address(c.peer), c.proto, c.peer_port)]


def kill(conns: list[Connection]) -> list[dict[str, Any]]:
    """Destroy each socket and confirm it is gone; returns one report per connection."""
    reports = []
    for c in conns:
        reports.append({**c.to_json(), "killed": _kill_one(c)})
    return reports


def _kill_one(c: Connection) -> bool:
    peers = [c.peer] if ":" in c.peer else [c.peer, f"::ffff:{c.peer}"]
    for peer in peers:
        run(
            [
                "ss",
                "-K",
                "-H",
                "-n",
                f"-{c.proto[0]}",
                "dst",
                peer,
                "dport",
                "=",
                str(c.peer_port),
                "sport",
                "=",
                str(c.local_port),
            ],
            check=False,
        )
    still = any(
        (x.proto, x.peer, x.peer_port, x.local_port) == (c.proto, c.peer, c.peer_port, c.local_port)
        for x in list_connections()
    )
    return not still
