"""nftables backend: one table, `inet sealbox`, loaded atomically with `nft -f`.

It renders the intents of `agent.isolation.policy` (the semantics live there). The base chains
hook input, output and forward at priority -190: after conntrack (-200), so every packet is
judged by its connection (`ct direction`, `ct state related`, the original tuple), and before
mangle (-150), NAT and filter (0) that iptables, firewalld, ufw and Docker use. A drop in any
base chain is final, so another manager's accept cannot reopen what this table drops; a packet
dropped here is never confirmed in the conntrack table.

Packets of allowed flows are matched on their own addresses and ports together with the
conntrack direction: `ct direction original ip daddr . meta l4proto . th dport @out4` is a
packet of a connection this host opened to an allowed service; `ct direction reply ... th sport`
are its replies. A packet from IT's host *from* port 8443 to this host's port 22 is the original
direction of a new inbound connection and matches nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run
from agent.isolation.policy import ICMP_ERRORS4, ICMP_ERRORS6, intents
from manifest.errors import IsolationError

if TYPE_CHECKING:
    from pathlib import Path

    from agent.isolation.model import Policy
    from agent.isolation.policy import Flow, Intents

TABLE_FAMILY = "inet"
TABLE_NAME = "sealbox"
PRIORITY = -190
CHAINS = ("input", "output", "forward")
_FAM = {4: ("ip", "ipv4_addr", "icmp", "icmp"), 6: ("ip6", "ipv6_addr", "ipv6-icmp", "icmpv6")}
PERSIST_FILE = "isolation.nft"


def _elements(items: list[str]) -> str:
    return f" elements = {{ {', '.join(items)} }}" if items else ""


def _service_items(flows: list[Flow]) -> list[str]:
    items: list[str] = []
    for f in flows:
        if f.any_protocol:
            continue
        port = str(f.port) if f.port is not None else "0-65535"
        for proto in f.protocols():
            item = f"{f.peer} . {proto} . {port}"
            if item not in items:
                items.append(item)
    return items


def _host_items(flows: list[Flow]) -> list[str]:
    return list(dict.fromkeys(str(f.peer) for f in flows if f.any_protocol))


def _sets(it: Intents) -> list[str]:
    lines = []
    for v in (4, 6):
        _, addr_type, _, _ = _FAM[v]
        for direction in ("out", "in"):
            flows = it.flows_of(v, direction)
            lines.append(
                f"\tset {direction}{v} {{ type {addr_type} . inet_proto . inet_service; flags interval;"
                f"{_elements(_service_items(flows))} }}"
            )
            lines.append(
                f"\tset {direction}host{v} {{ type {addr_type}; flags interval;"
                f"{_elements(_host_items(flows))} }}"
            )
    return lines


def _related(f: Flow) -> str:
    """ICMP errors about an allowed flow (PMTU: fragmentation needed, packet too big)."""
    fam, _, l4, icmp = _FAM[f.version]
    types = ICMP_ERRORS4 if f.version == 4 else ICMP_ERRORS6
    peer = "daddr" if f.direction == "out" else "saddr"
    rule = (
        f"ct state related meta l4proto {l4} {icmp} type {{ {', '.join(types)} }}"
        f" ct original {fam} {peer} {f.peer}"
    )
    if not f.any_protocol:
        protos = f.protocols()
        rule += f" ct original protocol {protos[0] if len(protos) == 1 else '{ ' + ', '.join(protos) + ' }'}"
        if f.port is not None:
            rule += f" ct original proto-dst {f.port}"
    return rule + " accept"


def _chain_rules(it: Intents, chain: str) -> list[str]:
    inbound = chain == "input"
    rules = [f'{"iif" if inbound else "oif"} "lo" accept']
    for v in (4, 6):
        fam = _FAM[v][0]
        # (set, conntrack direction, address, port) for the flows' own packets and their replies.
        for direction in ("out", "in"):
            ours = (direction == "out") != inbound  # a packet in the connection's own direction
            ct_dir = "original" if ours else "reply"
            addr = "saddr" if inbound else "daddr"
            port = "dport" if ours else "sport"
            rules.append(
                f"ct direction {ct_dir} {fam} {addr} . meta l4proto . th {port} @{direction}{v} accept"
            )
            rules.append(f"ct direction {ct_dir} {fam} {addr} @{direction}host{v} accept")
    rules += [_related(f) for f in it.flows]
    for d in it.dhcp:
        fam = _FAM[d.version][0]
        if inbound:
            src = f"{fam} saddr {{ {', '.join(map(str, d.hear_from))} }} " if d.hear_from else ""
            rules.append(f"{src}udp sport {d.server_port} udp dport {d.client_port} accept")
        else:
            rules.append(
                f"{fam} daddr {{ {', '.join(map(str, d.send_to))} }} udp sport {d.client_port}"
                f" udp dport {d.server_port} accept"
            )
    if it.neighbor_discovery:
        rules.append(
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit,"
            " nd-neighbor-advert } ip6 hoplimit 255 accept"
        )
    return rules


def render(policy: Policy) -> str:
    """The exact ruleset text that `nft -f` loads (deterministic for a given policy)."""
    it = intents(policy)
    lines = [
        "# sealbox network isolation (nftables); loaded atomically with `nft -f`",
        f"table {TABLE_FAMILY} {TABLE_NAME} {{",
        *_sets(it),
    ]
    for chain in ("input", "output"):
        lines.append(f"\tchain {chain} {{")
        lines.append(f"\t\ttype filter hook {chain} priority {PRIORITY}; policy drop;")
        lines += [f"\t\t{r}" for r in _chain_rules(it, chain)]
        lines.append("\t}")
    forward_policy = "accept" if it.forward else "drop"
    lines.append("\tchain forward {")
    lines.append(f"\t\ttype filter hook forward priority {PRIORITY}; policy {forward_policy};")
    lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalize_listing(text: str) -> str:
    """`nft list table` output with trailing blanks and empty lines dropped (stable to hash)."""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip()) + "\n"


class NftBackend:
    """Applies, checks and removes the `inet sealbox` table with the `nft` tool."""

    name = "nft"

    def available(self) -> bool:
        return have("nft")

    def render(self, policy: Policy) -> str:
        return render(policy)

    def check(self, ruleset: str) -> None:
        """`nft -c -f -`: the kernel parses and validates the ruleset, nothing is committed."""
        run(["nft", "-c", "-f", "-"], input_text=ruleset)

    def apply(self, ruleset: str) -> None:
        if self.present():
            raise IsolationError(
                f"table {TABLE_FAMILY} {TABLE_NAME} already exists",
                hint="run `sealbox restore` first, or `sealbox isolation status` to inspect it",
            )
        run(["nft", "-f", "-"], input_text=ruleset)

    def present(self) -> bool:
        proc = run(["nft", "list", "table", TABLE_FAMILY, TABLE_NAME], check=False)
        return proc.returncode == 0

    def listing(self) -> str | None:
        """The normalized live table, or None when it does not exist."""
        proc = run(["nft", "list", "table", TABLE_FAMILY, TABLE_NAME], check=False)
        return normalize_listing(proc.stdout) if proc.returncode == 0 else None

    def chains_present(self) -> list[str]:
        proc = run(["nft", "-j", "list", "table", TABLE_FAMILY, TABLE_NAME], check=False)
        if proc.returncode != 0:
            return []
        data = json.loads(proc.stdout or "{}")
        return [o["chain"]["name"] for o in data.get("nftables", []) if "chain" in o]

    def remove(self) -> bool:
        """Delete only our table; returns whether there was one."""
        if not self.present():
            return False
        run(["nft", "delete", "table", TABLE_FAMILY, TABLE_NAME])
        return True

    def before_apply(self) -> dict[str, Any]:
        return {}

    def tidy(self, before: dict[str, Any]) -> list[str]:
        # Deleting our table takes everything loading it created with it.
        return []

    def persist_files(self, ruleset: str) -> dict[str, str]:
        # At boot the file is loaded again; `add`+`delete` first makes a second load replace
        # the table atomically instead of failing on "File exists".
        table = f"{TABLE_FAMILY} {TABLE_NAME}"
        return {PERSIST_FILE: f"add table {table}\ndelete table {table}\n" + ruleset}

    def persist_command(self, directory: Path) -> list[str]:
        return ["/usr/sbin/nft", "-f", str(directory / PERSIST_FILE)]


def foreign_tables() -> list[str]:
    """Tables in the ruleset that are not sealbox's, as `family name`."""
    if not have("nft"):
        return []
    proc = run(["nft", "-j", "list", "tables"], check=False)
    if proc.returncode != 0 or not proc.stdout:
        return []
    tables = [o["table"] for o in json.loads(proc.stdout).get("nftables", []) if "table" in o]
    return [
        f"{t['family']} {t['name']}" for t in tables if (t["family"], t["name"]) != (TABLE_FAMILY, TABLE_NAME)
    ]
