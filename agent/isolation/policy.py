"""What isolation lets through, decided once, as backend-neutral intents the backends render.

The meaning (every backend renders exactly this, and the connection cutter judges by it):

- A `Flow` "out" lets this host open connections to a peer (host, protocol, the peer's port);
  packets pass only in the connection's own direction and its replies (conntrack: the original
  direction leaves to the peer, the reply direction comes back from it). A flow "in"
  (`--allow-in`) lets the peer open connections to this host's port. Nothing is matched by a
  port alone: IT's host sending *from* 8443 is a new inbound connection and is dropped.
- ICMP and ICMPv6 errors pass only when conntrack marks them RELATED to an allowed flow
  (fragmentation needed, packet too big, unreachable): path MTU discovery works on the channel,
  and no other ICMP passes. Neighbour discovery (types 133-136, hop limit 255) passes when
  IPv6 is in use at all; nothing else of ICMPv6.
- DHCP is only the exchange: client port to server port, to the broadcast (v4) or the
  all-DHCP-servers group (v6) or a known server, and server answers from a known server (from
  any server while none is known; v6 answers come from link-local addresses).
- Loopback passes; forwarding is dropped unless `forward`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.isolation.config import IsolationConfig, load_config
from agent.isolation.model import (
    PROTOCOLS,
    AllowEntry,
    Policy,
    parse_allow,
    parse_servers,
    read_resolvers,
    refuse_non_peer,
)
from manifest.errors import UsageError

if TYPE_CHECKING:
    from agent.isolation.model import IPAddress, IPNetwork

DIRECTIONS = ("out", "in")
DHCP4_BROADCAST = ipaddress.ip_network("255.255.255.255/32")
DHCP6_SERVERS_GROUP = ipaddress.ip_network("ff02::1:2/128")
LINK_LOCAL6 = ipaddress.ip_network("fe80::/10")
ND_TYPES = (133, 134, 135, 136)  # router solicitation/advertisement, neighbour sol./adv.
ICMP_ERRORS4 = ("destination-unreachable", "time-exceeded", "parameter-problem")
ICMP_ERRORS6 = ("destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem")


@dataclass(frozen=True)
class Flow:
    """Connections one side may open. `port` is the port connected *to*: the peer's for "out",
    this host's for "in"; None with `proto` None means any protocol (ICMP echo included)."""

    direction: str
    peer: IPNetwork
    proto: str | None
    port: int | None
    source: str

    @property
    def version(self) -> int:
        return self.peer.version

    @property
    def any_protocol(self) -> bool:
        return self.proto is None and self.port is None

    def protocols(self) -> tuple[str, ...]:
        return (self.proto,) if self.proto else PROTOCOLS

    def matches(self, direction: str, peer: IPAddress, proto: str, port: int) -> bool:
        if direction != self.direction or peer.version != self.version or peer not in self.peer:
            return False
        if self.any_protocol:
            return True
        return proto in self.protocols() and (self.port is None or self.port == port)


@dataclass(frozen=True)
class Dhcp:
    """The DHCP exchange of one family: what the client may send to, and hear from."""

    version: int
    client_port: int
    server_port: int
    send_to: tuple[IPNetwork, ...]
    hear_from: tuple[IPNetwork, ...]  # empty: from any server (none is known)


@dataclass(frozen=True)
class Intents:
    flows: tuple[Flow, ...]
    dhcp: tuple[Dhcp, ...]
    neighbor_discovery: bool
    forward: bool

    def flows_of(self, version: int, direction: str) -> list[Flow]:
        return [f for f in self.flows if f.version == version and f.direction == direction]

    def permits(self, direction: str, peer: IPAddress, proto: str, port: int) -> bool:
        """Whether a connection opened in `direction` with `peer` (to `port`) may pass."""
        if peer.is_loopback:
            return True
        return any(f.matches(direction, peer, proto, port) for f in self.flows)

    def dhcp_exchange(self, peer: IPAddress, local_port: int, peer_port: int) -> bool:
        """Whether a UDP flow with `peer` is the DHCP exchange the rules let through."""
        for d in self.dhcp:
            if d.version != peer.version or (local_port, peer_port) != (d.client_port, d.server_port):
                continue
            if not d.hear_from or any(peer in n for n in (*d.send_to, *d.hear_from)):
                return True
        return False

    def touches(self, peer: IPAddress) -> bool:
        """Whether any allowed flow involves `peer` at all."""
        return any(peer.version == f.version and peer in f.peer for f in self.flows)


def _flows(entries: tuple[AllowEntry, ...], direction: str) -> list[Flow]:
    return [Flow(direction, e.network, e.proto, e.port, e.spec) for e in entries]


def intents(policy: Policy) -> Intents:
    """The policy's meaning for packets; every backend renders exactly this."""
    flows = _flows(policy.allow, "out") + _flows(policy.allow_in, "in")
    for r in policy.resolvers_v(4) + policy.resolvers_v(6):
        for proto in ("udp", "tcp"):
            flows.append(Flow("out", ipaddress.ip_network(r), proto, 53, "--allow-dns"))
    unique = tuple(dict.fromkeys(flows))
    dhcp: list[Dhcp] = []
    if policy.dhcp:
        servers = {
            v: tuple(ipaddress.ip_network(s) for s in policy.dhcp_servers if s.version == v) for v in (4, 6)
        }
        dhcp.append(Dhcp(4, 68, 67, (DHCP4_BROADCAST, *servers[4]), servers[4]))
        hear6 = (LINK_LOCAL6, *servers[6])
        dhcp.append(Dhcp(6, 546, 547, (DHCP6_SERVERS_GROUP, *servers[6]), hear6))
    nd = policy.dhcp or any(f.version == 6 for f in unique)
    return Intents(flows=unique, dhcp=tuple(dhcp), neighbor_discovery=nd, forward=policy.forward)


# -- containment checks -------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The widest allow-list (union of every allowed network) that still counts as containment,
    as a prefix length: the default is one /8 of IPv4 and one /32 of IPv6 in total."""

    max_union_v4: int = 8
    max_union_v6: int = 32

    def prefix(self, version: int) -> int:
        return self.max_union_v4 if version == 4 else self.max_union_v6


def union_size(networks: list[IPNetwork], version: int) -> int:
    """Addresses covered by the union of `networks` of one family (overlaps counted once)."""
    nets = [n for n in networks if n.version == version]
    collapsed: list[IPNetwork] = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
    return sum(n.num_addresses for n in collapsed)


def check_containment(policy: Policy, limits: Limits | None = None) -> None:
    """Refuse, in one line with the fix, an allow-list that would not contain this host."""
    limits = limits or Limits()
    tagged = [("--allow", e) for e in policy.allow] + [("--allow-in", e) for e in policy.allow_in]
    for version in (4, 6):
        nets = [e.network for _, e in tagged if e.version == version]
        size = union_size(nets, version)
        prefix = limits.prefix(version)
        bits = 32 if version == 4 else 128
        if size > 2 ** (bits - prefix):
            specs = " + ".join(dict.fromkeys(e.spec for _, e in tagged if e.version == version))
            share = size / 2**bits
            raise UsageError(
                f"allow-list {specs} covers {size} IPv{version} addresses ({share:.3g} of the address"
                f" space), more than one /{prefix}: that is not containment; allow IT's hosts by"
                f" address, or raise max_union_v{version} in isolation.toml",
            )
    for option, e in tagged:
        refuse_non_peer(option, e.spec, e.network)


# -- the current DHCP leases --------------------------------------------------------------

# dhclient (also NetworkManager with dhclient), systemd-networkd, NetworkManager's internal client.
LEASE_GLOBS = (
    "/var/lib/dhcp/dhclient*.lease*",
    "/var/lib/dhclient/*.lease*",
    "/var/lib/NetworkManager/*.lease",
    "/run/systemd/netif/leases/*",
)
_DHCLIENT_SERVER = re.compile(r"option\s+dhcp-server-identifier\s+([0-9a-fA-F.:]+)\s*;")
_KEYED_SERVER = re.compile(r"^\s*(?:SERVER_ADDRESS|dhcp_server_identifier)\s*=\s*(\S+)\s*$", re.M)


def _glob(pattern: str) -> list[Path]:
    path = Path(pattern)
    anchor = Path(path.anchor or ".")
    return sorted(anchor.glob(str(path.relative_to(anchor)))) if pattern else []


def lease_servers(globs: tuple[str, ...] | None = None) -> tuple[IPAddress, ...]:
    """The server of each current lease (dhclient: the last lease block of each file;
    networkd/NetworkManager: SERVER_ADDRESS). `SEALBOX_DHCP_LEASES` (':'-separated globs)
    replaces the default places."""
    override = os.environ.get("SEALBOX_DHCP_LEASES")
    patterns = tuple(override.split(":")) if override is not None else (globs or LEASE_GLOBS)
    found: list[IPAddress] = []
    for pattern in patterns:
        for name in _glob(pattern):
            try:
                text = name.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            blocks = text.split("lease {")
            last = blocks[-1] if len(blocks) > 1 else text
            for value in _DHCLIENT_SERVER.findall(last) + _KEYED_SERVER.findall(text):
                try:
                    addr = ipaddress.ip_address(value)
                except ValueError:
                    continue
                if addr not in found:
                    found.append(addr)
    return tuple(found)


def describe(intent: Intents) -> list[dict[str, Any]]:
    """The intents as plain data (for --json and the record)."""
    return [
        {
            "direction": f.direction,
            "peer": str(f.peer),
            "proto": f.proto,
            "port": f.port,
            "source": f.source,
        }
        for f in intent.flows
    ]


def compose_policy(
    *,
    allow: tuple[str, ...] = (),
    allow_in: tuple[str, ...] = (),
    allow_dns: bool = False,
    dhcp: bool = True,
    dhcp_servers: tuple[str, ...] = (),
    forward: bool = False,
    resolve_timeout: float = 5.0,
    config: IsolationConfig | None = None,
    config_path: str | None = None,
) -> Policy:
    """The policy for one isolation: IT's standing channel (isolation.toml) plus the options,
    checked for containment (refused in one line when it would not contain the host)."""
    cfg = config if config is not None else load_config(Path(config_path) if config_path else None)
    out, names = parse_allow(cfg.allow + tuple(allow), resolve_timeout=resolve_timeout)
    inbound, in_names = parse_allow(
        cfg.allow_in + tuple(allow_in), resolve_timeout=resolve_timeout, option="--allow-in"
    )
    resolvers = list(parse_servers(cfg.resolvers, "resolvers"))
    if allow_dns or cfg.allow_dns:
        system = read_resolvers()
        if allow_dns and not system:
            raise UsageError("--allow-dns: no name server is configured in /etc/resolv.conf")
        resolvers += [r for r in system if r not in resolvers and not r.is_loopback]
        if allow_dns and not resolvers:
            raise UsageError(
                "--allow-dns: the only name servers configured are local (a stub resolver)",
                hint="name IT's resolvers in isolation.toml (resolvers = [...])",
            )
    servers: tuple[IPAddress, ...] = ()
    if dhcp:
        explicit = parse_servers(cfg.dhcp_servers + tuple(dhcp_servers))
        servers = tuple(dict.fromkeys(explicit + lease_servers()))
    policy = Policy(
        allow=out,
        allow_in=inbound,
        allow_dns=bool(resolvers),
        resolvers=tuple(resolvers),
        dhcp=dhcp,
        dhcp_servers=servers,
        forward=forward,
        names={**names, **in_names},
        config=str(cfg.path) if cfg.path else None,
        check=cfg.check,
    )
    check_containment(policy, Limits(cfg.max_union_v4, cfg.max_union_v6))
    return policy
