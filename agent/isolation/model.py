"""The isolation policy: the allow-lists as parsed and resolved, and the switches around them.

An `--allow` value is `ADDR[/PREFIX][:PORT][/tcp|udp]`; ADDR may be an IPv4 or IPv6 address
(IPv6 with a port is written in brackets, `[2001:db8::2]:8443`; an unbracketed IPv6 address whose
last group could be a port is refused as ambiguous) or a host name, which is resolved to all of
its A/AAAA records. For `--allow` the port is the *peer's*: this host may open connections to
203.0.113.2 port 8443, and the replies of those connections come back; nothing else with that
peer. For `--allow-in` the port is *this host's*: the peer may open connections to it.
What the lists mean for packets is decided once, in `agent.isolation.policy`.
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
    # Peers that may open connections to this host (the port is this host's).
    allow_in: tuple[AllowEntry, ...] = ()
    # The DHCP servers of the current leases (or --dhcp-server): the only unicast DHCP peers.
    dhcp_servers: tuple[IPAddress, ...] = ()
    # Where the standing IT channel came from (isolation.toml), recorded for the record.
    config: str | None = None
    # The config's `check` target (HOST:PORT): the default for --check.
    check: str | None = None

    def entries(self, version: int) -> list[AllowEntry]:
        return [e for e in self.allow if e.version == version]

    def resolvers_v(self, version: int) -> list[IPAddress]:
        return [r for r in self.resolvers if r.version == version] if self.allow_dns else []

    def permits(
        self, peer: IPAddress, proto: str, peer_port: int, local_port: int = 0, inbound: bool = False
    ) -> bool:
        """Whether an existing flow may stay: the same judgement the rules make (see policy.py)."""
        from agent.isolation.policy import intents

        if peer.is_loopback:
            return True
        direction = "in" if inbound else "out"
        port = local_port if inbound else peer_port
        return intents(self).permits(direction, peer, proto, port)

    def first_tcp_peer(self) -> tuple[str, int] | None:
        """The default `--check` target: the config's, else the first allowed TCP host and port."""
        if self.check:
            host, _, port = self.check.rpartition(":")
            if port.isdigit():
                return host.strip("[]"), int(port)
        for e in self.allow:
            if e.port is not None and e.proto in (None, "tcp") and e.network.num_addresses == 1:
                return str(e.network.network_address), e.port
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "allow": [e.to_json() for e in self.allow],
            "allow_in": [e.to_json() for e in self.allow_in],
            "allow_dns": self.allow_dns,
            "resolvers": [str(r) for r in self.resolvers],
            "dhcp": self.dhcp,
            "dhcp_servers": [str(s) for s in self.dhcp_servers],
            "forward": self.forward,
            "names": self.names,
            "config": self.config,
            "check": self.check,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(
            allow=tuple(AllowEntry.from_json(e) for e in data.get("allow", [])),
            allow_in=tuple(AllowEntry.from_json(e) for e in data.get("allow_in", [])),
            allow_dns=bool(data.get("allow_dns")),
            resolvers=tuple(ipaddress.ip_address(r) for r in data.get("resolvers", [])),
            dhcp=bool(data.get("dhcp", True)),
            dhcp_servers=tuple(ipaddress.ip_address(r) for r in data.get("dhcp_servers", [])),
            forward=bool(data.get("forward")),
            names=dict(data.get("names", {})),
            config=data.get("config"),
            check=data.get("check"),
        )


@dataclass(frozen=True)
class _Parsed:
    spec: str
    target: str
    prefix: int | None
    port: int | None
    proto: str | None


def _parse_spec(spec: str, option: str = "--allow") -> _Parsed:
    text = spec.strip()
    if not text:
        raise UsageError(f"{option} needs a value like 203.0.113.5:8443/tcp")
    proto = None
    head, sep, tail = text.rpartition("/")
    if sep and tail.lower() in PROTOCOLS:
        proto, text = tail.lower(), head
    port: int | None = None
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep:
            raise UsageError(f"{option} {spec}: missing ']' after the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"{option} {spec}: expected ':PORT' after ']'")
            port = _port(spec, rest[1:], option)
        text = inner
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        port = _port(spec, port_text, option)
    elif ":" in text:
        _refuse_ambiguous_v6(spec, text, option)
    prefix: int | None = None
    addr, sep, prefix_text = text.partition("/")
    if sep:
        if not prefix_text.isdigit():
            raise UsageError(f"{option} {spec}: the prefix length must be a number")
        prefix = int(prefix_text)
    if proto and port is None and not addr:
        raise UsageError(f"{option} {spec}: no address")
    return _Parsed(spec=spec, target=addr, prefix=prefix, port=port, proto=proto)


def _refuse_ambiguous_v6(spec: str, text: str, option: str) -> None:
    """`2001:db8:2::2:8443` is both an address and an address with a port: refuse, name both."""
    addr, sep, prefix = text.partition("/")
    head, _, last = addr.rpartition(":")
    if not (last.isdigit() and 0 < int(last) < 65536 and head):
        return
    try:
        ipaddress.IPv6Address(head)
    except ValueError:
        return
    bare = f"[{addr}]" + (f"/{prefix}" if sep else "")
    with_port = f"[{head}" + (f"/{prefix}" if sep else "") + f"]:{last}"
    raise UsageError(
        f"{option} {spec}: ambiguous IPv6 form; write {with_port} for port {last} of {head},"
        f" or {bare} for the address alone"
    )


def _port(spec: str, text: str, option: str = "--allow") -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{option} {spec}: port must be a number from 1 to 65535")
    return int(text)


def _resolve(name: str, timeout: float, option: str = "--allow") -> list[IPAddress]:
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
            f"{option} {name}: the name did not resolve within {timeout:g} s; isolation refused",
            hint="give the address instead",
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise UsageError(
            f"{option} {name}: the name does not resolve ({exc}); isolation refused",
            hint="give the address instead",
        ) from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# Destinations that are never a remote IT peer: allowing them opens this host to itself, to
# everyone on the link, or to an address that means "any".
_NOT_PEERS: tuple[tuple[IPNetwork, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/32"), "the unspecified address"),
    (ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    (ipaddress.ip_network("224.0.0.0/4"), "multicast"),
    (ipaddress.ip_network("255.255.255.255/32"), "the broadcast address"),
    (ipaddress.ip_network("::/128"), "the unspecified address"),
    (ipaddress.ip_network("::1/128"), "loopback"),
    (ipaddress.ip_network("ff00::/8"), "multicast"),
    (ipaddress.ip_network("::ffff:0:0/96"), "IPv4-mapped (write the IPv4 address)"),
)


def refuse_non_peer(option: str, spec: str, network: IPNetwork) -> None:
    """Loopback, unspecified, multicast and broadcast destinations are refused with the reason."""
    for bad, what in _NOT_PEERS:
        if bad.version == network.version and network.overlaps(bad):
            raise UsageError(
                f"{option} {spec}: {network} includes {what} ({bad}); that is not a remote peer",
                hint="allow IT's hosts by their own addresses",
            )


def parse_allow(
    specs: list[str] | tuple[str, ...],
    *,
    resolve_timeout: float = RESOLVE_TIMEOUT,
    option: str = "--allow",
) -> tuple[tuple[AllowEntry, ...], dict[str, list[str]]]:
    """Parse every value of `option`, resolving host names; returns the entries and name -> addresses."""
    entries: list[AllowEntry] = []
    names: dict[str, list[str]] = {}
    for spec in specs:
        p = _parse_spec(spec, option)
        try:
            addrs: list[IPAddress] = [ipaddress.ip_address(p.target)]
            host = None
        except ValueError:
            if not _HOST_RE.match(p.target) or p.prefix is not None:
                raise UsageError(
                    f"{option} {spec}: {p.target!r} is neither an IP address nor a host name"
                ) from None
            host = p.target.rstrip(".")
            addrs = _resolve(host, resolve_timeout, option)
            names[host] = [str(a) for a in addrs]
        for addr in addrs:
            prefix = p.prefix if p.prefix is not None else addr.max_prefixlen
            try:
                network = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
            except ValueError as exc:
                raise UsageError(f"{option} {spec}: {exc}") from exc
            if network.prefixlen == 0:
                raise UsageError(f"{option} {spec}: allowing every address is not isolation")
            entry = AllowEntry(spec=spec, network=network, proto=p.proto, port=p.port, host=host)
            if entry not in entries:
                entries.append(entry)
    return tuple(entries), names


def parse_servers(
    values: list[str] | tuple[str, ...], option: str = "--dhcp-server"
) -> tuple[IPAddress, ...]:
    """Plain addresses (DHCP servers, resolvers): one line naming a bad one."""
    out: list[IPAddress] = []
    for value in values:
        try:
            addr = ipaddress.ip_address(value.strip().strip("[]"))
        except ValueError:
            raise UsageError(f"{option} {value}: not an IP address") from None
        refuse_non_peer(option, value, ipaddress.ip_network(addr))
        if addr not in out:
            out.append(addr)
    return tuple(out)


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
