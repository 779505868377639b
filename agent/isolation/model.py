"""The isolation policy: the allow-list as parsed and resolved, and the switches around it.

An `--allow` value is `ADDR[/PREFIX][:PORT][/tcp|udp]`; ADDR may be an IPv4 or IPv6 address
(IPv6 with a port is written in brackets, `[2001:db8::2]:8443`) or a host name, which is resolved
to all of its A/AAAA records. A port means the *peer's* port: `--allow 203.0.113.2:8443` lets this
host talk to 203.0.113.2 port 8443 (both directions of those flows), nothing else with that peer.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifest.errors import UsageError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTOCOLS = ("tcp", "udp")
RESOLVE_TIMEOUT = 5.0
RESOLV_CONF = Path("/etc/resolv.conf")
# systemd-resolved keeps the real upstream servers here when resolv.conf points at 127.0.0.53.
RESOLVED_UPSTREAMS = Path("/run/systemd/resolve/resolv.conf")

_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


@dataclass(frozen=True)
class AllowEntry:
    """One allowed peer: a network, and optionally the protocol and the peer's port."""

    spec: str
    network: IPNetwork
    proto: str | None = None
    port: int | None = None
    host: str | None = None

    @property
    def version(self) -> int:
        return self.network.version

    def protocols(self) -> tuple[str, ...]:
        """The protocols this entry opens when it is limited to a port or protocol."""
        return (self.proto,) if self.proto else PROTOCOLS

    def permits(self, peer: IPAddress, proto: str, peer_port: int) -> bool:
        """Whether traffic with `peer` (its port `peer_port`, protocol `proto`) is allowed."""
        if peer.version != self.network.version or peer not in self.network:
            return False
        if self.proto is not None and proto != self.proto:
            return False
        return self.port is None or self.port == peer_port

    def describe(self) -> str:
        text = str(
            self.network
            if self.network.prefixlen != self.network.max_prefixlen
            else self.network.network_address
        )
        if self.port is not None:
            text = f"[{text}]:{self.port}" if self.version == 6 else f"{text}:{self.port}"
        if self.proto:
            text += f"/{self.proto}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "host": self.host,
            "network": str(self.network),
            "proto": self.proto,
            "port": self.port,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AllowEntry:
        return cls(
            spec=data["spec"],
            network=ipaddress.ip_network(data["network"]),
            proto=data.get("proto"),
            port=data.get("port"),
            host=data.get("host"),
        )


@dataclass(frozen=True)
class Policy:
    """Everything the rules are generated from; nothing else influences the ruleset."""

    allow: tuple[AllowEntry, ...] = ()
    allow_dns: bool = False
    resolvers: tuple[IPAddress, ...] = ()
    dhcp: bool = True
    forward: bool = False
    names: dict[str, list[str]] = field(default_factory=dict)

    def entries(self, version: int) -> list[AllowEntry]:
        return [e for e in self.allow if e.version == version]

    def resolvers_v(self, version: int) -> list[IPAddress]:
        return [r for r in self.resolvers if r.version == version] if self.allow_dns else []

    @property
    def needs_nd(self) -> bool:
        """IPv6 neighbor discovery is needed to reach any IPv6 peer or for DHCPv6."""
        return bool(self.entries(6) or self.resolvers_v(6) or self.dhcp)

    def permits(self, peer: IPAddress, proto: str, peer_port: int) -> bool:
        """Whether an existing flow with this peer may stay (used to pick connections to kill)."""
        if peer.is_loopback:
            return True
        if any(e.permits(peer, proto, peer_port) for e in self.allow):
            return True
        return peer_port == 53 and peer in self.resolvers_v(peer.version)

    def first_tcp_peer(self) -> tuple[str, int] | None:
        """The default `--check` target: the first allowed peer with a TCP port."""
        for e in self.allow:
            if e.port is not None and e.proto in (None, "tcp"):
                return str(e.network.network_address), e.port
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "allow": [e.to_json() for e in self.allow],
            "allow_dns": self.allow_dns,
            "resolvers": [str(r) for r in self.resolvers],
            "dhcp": self.dhcp,
            "forward": self.forward,
            "names": self.names,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(
            allow=tuple(AllowEntry.from_json(e) for e in data.get("allow", [])),
            allow_dns=bool(data.get("allow_dns")),
            resolvers=tuple(ipaddress.ip_address(r) for r in data.get("resolvers", [])),
            dhcp=bool(data.get("dhcp", True)),
            forward=bool(data.get("forward")),
            names=dict(data.get("names", {})),
        )


@dataclass(frozen=True)
class _Parsed:
    spec: str
    target: str
    prefix: int | None
    port: int | None
    proto: str | None


def _parse_spec(spec: str) -> _Parsed:
    text = spec.strip()
    if not text:
        raise UsageError("--allow needs a value like 203.0.113.5:8443/tcp")
    proto = None
    head, sep, tail = text.rpartition("/")
    if sep and tail.lower() in PROTOCOLS:
        proto, text = tail.lower(), head
    port: int | None = None
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep:
            raise UsageError(f"--allow {spec}: missing ']' after the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"--allow {spec}: expected ':PORT' after ']'")
            port = _port(spec, rest[1:])
        text = inner
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        port = _port(spec, port_text)
    prefix: int | None = None
    addr, sep, prefix_text = text.partition("/")
    if sep:
        if not prefix_text.isdigit():
            raise UsageError(f"--allow {spec}: the prefix length must be a number")
        prefix = int(prefix_text)
    if proto and port is None and not addr:
        raise UsageError(f"--allow {spec}: no address")
    return _Parsed(spec=spec, target=addr, prefix=prefix, port=port, proto=proto)


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"--allow {spec}: port must be a number from 1 to 65535")
    return int(text)


def _resolve(name: str, timeout: float) -> list[IPAddress]:
    def lookup() -> list[IPAddress]:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        found: list[IPAddress] = []
        for info in infos:
            addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if addr not in found:
                found.append(addr)
        if not found:
            raise OSError("no A or AAAA record")
        return found

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(lookup).result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise UsageError(
            f"--allow {name}: the name did not resolve within {timeout:g} s; isolation refused",
            hint="give the address instead",
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise UsageError(
            f"--allow {name}: the name does not resolve ({exc}); isolation refused",
            hint="give the address instead",
        ) from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def parse_allow(
    specs: list[str] | tuple[str, ...], *, resolve_timeout: float = RESOLVE_TIMEOUT
) -> tuple[tuple[AllowEntry, ...], dict[str, list[str]]]:
    """Parse every `--allow`, resolving host names; returns the entries and name -> addresses."""
    entries: list[AllowEntry] = []
    names: dict[str, list[str]] = {}
    for spec in specs:
        p = _parse_spec(spec)
        try:
            addrs: list[IPAddress] = [ipaddress.ip_address(p.target)]
            host = None
        except ValueError:
            if not _HOST_RE.match(p.target) or p.prefix is not None:
                raise UsageError(
                    f"--allow {spec}: {p.target!r} is neither an IP address nor a host name"
                ) from None
            host = p.target.rstrip(".")
            addrs = _resolve(host, resolve_timeout)
            names[host] = [str(a) for a in addrs]
        for addr in addrs:
            prefix = p.prefix if p.prefix is not None else addr.max_prefixlen
            try:
                network = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
            except ValueError as exc:
                raise UsageError(f"--allow {spec}: {exc}") from exc
            if network.prefixlen == 0:
                raise UsageError(f"--allow {spec}: allowing every address is not isolation")
            entry = AllowEntry(spec=spec, network=network, proto=p.proto, port=p.port, host=host)
            if entry not in entries:
                entries.append(entry)
    return tuple(entries), names


def read_resolvers(path: Path | None = None) -> tuple[IPAddress, ...]:
    """The name servers already configured (resolv.conf, plus systemd-resolved's upstreams)."""
    override = os.environ.get("SEALBOX_RESOLV_CONF")
    paths = [Path(override)] if override else [path or RESOLV_CONF, RESOLVED_UPSTREAMS]
    found: list[IPAddress] = []
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    addr = ipaddress.ip_address(parts[1].split("%", 1)[0])
                except ValueError:
                    continue
                if addr not in found:
                    found.append(addr)
    return tuple(found)


_DURATION_RE = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `2h`, `1d`, `1h30m` -> seconds (at least 1)."""
    compact = text.strip().lower().replace(" ", "")
    pos, total = 0, 0
    while pos < len(compact):
        m = _DURATION_RE.match(compact, pos)
        if not m:
            raise UsageError(f"--expire {text}: expected a duration like 30m, 2h or 1h30m")
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if total <= 0:
        raise UsageError(f"--expire {text}: the duration must be longer than zero")
    return total
