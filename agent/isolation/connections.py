"""Existing connections: after the rules load, every flow the policy does not allow is cut.

The rules already drop the packets of such a flow, but that only stalls it (the application keeps
waiting, the conntrack entry lives for days). So, judged exactly as the rules judge (the policy's
intents, with the direction the connection was opened in):

- sockets (TCP and connected UDP, IPv4 and IPv6) are destroyed with `ss -K` (kernel
  SOCK_DESTROY; the process sees ECONNABORTED at once), in a few calls whose filters name each
  socket by both ends (`src [2001:db8::1]:40000 and dst [2001:db8:1::2]:8443`);
- conntrack entries of such flows are deleted (`conntrack -D`), which also cuts flows that have
  no socket here (raw sockets, forwarded traffic).

Every flow found is reported with what happened to it; one that survived is reported as not cut.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run
from agent.isolation.policy import intents

if TYPE_CHECKING:
    from collections.abc import Collection

    from agent.isolation.model import IPAddress, Policy
    from agent.isolation.policy import Intents

_PROC_RE = re.compile(r'\("([^"]*)",pid=(\d+)')
_BATCH = 64  # sockets per `ss -K` call: one filter expression must stay short


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
    inbound: bool = False  # the peer opened it (its local port is a listening port here)

    def describe(self) -> str:
        who = f" ({self.process} pid {self.pid})" if self.pid else ""
        arrow = "<-" if self.inbound else "->"
        ends = f"{_join(self.local, self.local_port)} {arrow} {_join(self.peer, self.peer_port)}"
        return f"{self.proto} {ends}{who}"

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS}

    def key(self) -> tuple[str, str, int, str, int]:
        return (self.proto, self.local, self.local_port, self.peer, self.peer_port)


_FIELDS = ("proto", "state", "local", "local_port", "peer", "peer_port", "process", "pid", "inbound")


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


def _listening_tcp_ports() -> set[int]:
    proc = run(["ss", "-H", "-n", "-l", "-t"], check=False)
    ports = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and (local := _split(parts[3])) is not None:
            ports.add(local[1])
    return ports


def list_connections(with_process: bool = True) -> list[Connection]:
    """TCP and connected UDP sockets of this network namespace (`ss -tun state connected`)."""
    if not have("ss"):
        return []
    argv = ["ss", "-H", "-n", *(["-p"] if with_process else []), "-t", "-u", "state", "connected"]
    proc = run(argv, check=False)
    listening = _listening_tcp_ports()
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
                inbound=parts[0] == "tcp" and local[1] in listening,
            )
        )
    return conns


def _allowed(it: Intents, c: Connection) -> bool:
    peer = ipaddress.ip_address(c.peer)
    if c.proto == "udp" and it.dhcp_exchange(peer, c.local_port, c.peer_port):
        return True
    if c.inbound:
        return it.permits("in", peer, c.proto, c.local_port)
    return it.permits("out", peer, c.proto, c.peer_port)


def to_kill(policy: Policy, conns: list[Connection]) -> list[Connection]:
    it = intents(policy)
    return [c for c in conns if not _allowed(it, c)]


def _term(c: Connection) -> str:
    forms = [f"( src {_join(c.local, c.local_port)} and dst {_join(c.peer, c.peer_port)} )"]
    if ":" not in c.peer:  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
        forms.append(f"( src [::ffff:{c.local}]:{c.local_port} and dst [::ffff:{c.peer}]:{c.peer_port} )")
    return " or ".join(forms)


def _destroy(conns: list[Connection], whole_peers: Collection[str] = ()) -> None:
    """`ss -K` in a few calls: one term per peer none of whose flows is allowed (`dst PEER`),
    else one per socket (both ends)."""
    for proto in ("tcp", "udp"):
        batch = [c for c in conns if c.proto == proto]
        terms = []
        for peer in sorted({c.peer for c in batch if c.peer in whole_peers}):
            terms.append(f"dst {_host(peer)}")
            if ":" not in peer:
                terms.append(f"dst [::ffff:{peer}]")
        terms += [_term(c) for c in batch if c.peer not in whole_peers]
        for i in range(0, len(terms), _BATCH):
            expr = " or ".join(terms[i : i + _BATCH])
            run(["ss", "-K", "-H", "-n", f"-{proto[0]}", "state", "connected", expr], check=False)


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def kill(conns: list[Connection], policy: Policy | None = None) -> list[dict[str, Any]]:
    """Destroy each socket and confirm it is gone; returns one report per connection."""
    if not conns:
        return []
    it = intents(policy) if policy is not None else None
    whole = {c.peer for c in conns if it is not None and not it.touches(ipaddress.ip_address(c.peer))}
    _destroy(conns, whole)
    left = {c.key() for c in list_connections(with_process=False)}
    retry = [c for c in conns if c.key() in left]
    if retry:  # once more, one by one: a socket may have been busy
        for c in retry:
            _destroy([c])
        left = {c.key() for c in list_connections(with_process=False)}
    return [{**c.to_json(), "how": "socket", "killed": c.key() not in left} for c in conns]


# -- conntrack ----------------------------------------------------------------------------

_KV = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class Tracked:
    """A conntrack entry by its original tuple (who sent the first packet, to whom)."""

    family: str
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    state: str = ""

    @property
    def live(self) -> bool:
        """Worth naming in the report: not a TCP connection that is already closing."""
        return self.proto != "tcp" or self.state in ("ESTABLISHED", "SYN_SENT", "SYN_RECV")


def _local_addresses() -> set[IPAddress]:
    import psutil

    found: set[IPAddress] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            try:
                found.add(ipaddress.ip_address(a.address.split("%", 1)[0]))
            except ValueError:
                continue
    return found


def list_tracked() -> list[Tracked]:
    if not have("conntrack"):
        return []
    out = []
    for family in ("ipv4", "ipv6"):
        proc = run(["conntrack", "-L", "-f", family], check=False)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0] not in ("tcp", "udp", "icmp", "icmpv6"):
                continue
            first: dict[str, str] = {}
            for k, v in _KV.findall(line):
                first.setdefault(k, v)
            if "src" not in first or "dst" not in first:
                continue
            out.append(
                Tracked(
                    family,
                    parts[0],
                    first["src"],
                    first["dst"],
                    int(first.get("sport", 0)),
                    int(first.get("dport", 0)),
                    parts[3] if parts[0] == "tcp" and len(parts) > 3 else "",
                )
            )
    return out


def _tracked_allowed(it: Intents, t: Tracked, local: set[IPAddress], forward: bool) -> bool:
    src, dst = ipaddress.ip_address(t.src), ipaddress.ip_address(t.dst)
    if src.is_loopback or dst.is_loopback or (src in local and dst in local):
        return True
    if t.proto in ("icmp", "icmpv6"):
        peer, direction = (dst, "out") if src in local else (src, "in")
        return any(f.any_protocol and f.matches(direction, peer, "", 0) for f in it.flows)
    if t.proto == "udp" and src in local and it.dhcp_exchange(dst, t.sport, t.dport):
        return True
    if src in local:
        return it.permits("out", dst, t.proto, t.dport)
    if dst in local:
        return it.permits("in", src, t.proto, t.dport)
    return forward  # a forwarded flow: cut unless forwarding stays allowed


def cut_tracked(policy: Policy, sockets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Delete the conntrack entries of flows the policy does not allow; report the ones that no
    socket report already names."""
    it = intents(policy)
    if not have("conntrack"):
        return []
    local = _local_addresses()
    doomed = [t for t in list_tracked() if not _tracked_allowed(it, t, local, policy.forward)]
    whole_peers: set[tuple[str, str, str]] = set()
    for t in doomed:
        src = ipaddress.ip_address(t.src)
        side, peer_text = ("-d", t.dst) if src in local else ("-s", t.src)
        if not it.touches(ipaddress.ip_address(peer_text)):
            whole_peers.add((t.family, side, peer_text))
    for family, side, peer in sorted(whole_peers):
        run(["conntrack", "-D", "-f", family, side, peer], check=False)
    for t in doomed:
        src = ipaddress.ip_address(t.src)
        side, peer_text = ("-d", t.dst) if src in local else ("-s", t.src)
        if (t.family, side, peer_text) in whole_peers:
            continue
        argv = ["conntrack", "-D", "-f", t.family, "-p", t.proto, "-s", t.src, "-d", t.dst]
        if t.proto in ("tcp", "udp"):
            argv += ["--sport", str(t.sport), "--dport", str(t.dport)]
        run(argv, check=False)
    left = {(t.proto, t.src, t.dst, t.sport, t.dport) for t in list_tracked()}
    named = {(s["proto"], s["local"], s["local_port"], s["peer"], s["peer_port"]) for s in sockets}
    reports = []
    for t in doomed:
        outbound = ipaddress.ip_address(t.src) in local
        lo, lp, pe, pp = (t.src, t.sport, t.dst, t.dport) if outbound else (t.dst, t.dport, t.src, t.sport)
        if (t.proto, lo, lp, pe, pp) in named or not t.live:
            continue
        reports.append(
            {
                "proto": t.proto,
                "state": "tracked",
                "local": lo,
                "local_port": lp,
                "peer": pe,
                "peer_port": pp,
                "process": "",
                "pid": None,
                "inbound": not outbound,
                "how": "conntrack",
                "killed": (t.proto, t.src, t.dst, t.sport, t.dport) not in left,
            }
        )
    return reports


def adopt(policy: Policy, conns: list[Connection]) -> list[Connection]:
    """Enter the allowed flows that conntrack does not know (it was not active before the
    rules loaded) in the direction they were opened. Otherwise the first packet after isolation
    would decide their direction, and a reply arriving first would make an allowed flow look
    like a new inbound one, which the rules drop."""
    if not have("conntrack"):
        return []
    it = intents(policy)
    known: set[tuple[str, str, int, str, int]] = set()
    for t in list_tracked():
        known.add((t.proto, t.src, t.sport, t.dst, t.dport))
        known.add((t.proto, t.dst, t.dport, t.src, t.sport))
    adopted = []
    for c in conns:
        if (c.proto == "tcp" and c.state != "ESTAB") or not _allowed(it, c):
            continue
        if (c.proto, c.local, c.local_port, c.peer, c.peer_port) in known:
            continue
        if ipaddress.ip_address(c.peer).is_loopback:
            continue
        src, sport, dst, dport = (
            (c.peer, c.peer_port, c.local, c.local_port)
            if c.inbound
            else (c.local, c.local_port, c.peer, c.peer_port)
        )
        argv = [
            "conntrack",
            "-I",
            "-p",
            c.proto,
            "-s",
            src,
            "-d",
            dst,
            "--sport",
            str(sport),
            "--dport",
            str(dport),
        ]
        if c.proto == "tcp":
            argv += ["--state", "ESTABLISHED", "-t", "432000"]
        else:
            argv += ["-t", "180"]
        if run([*argv, "-u", "SEEN_REPLY,ASSURED"], check=False).returncode == 0:
            adopted.append(c)
    return adopted


def cut(policy: Policy) -> list[dict[str, Any]]:
    """Cut every existing flow the policy does not allow; one report per flow. Allowed flows
    unknown to conntrack are entered first, in their own direction (see `adopt`)."""
    conns = list_connections()
    adopt(policy, conns)
    reports = kill(to_kill(policy, conns), policy)
    return reports + cut_tracked(policy, reports)
