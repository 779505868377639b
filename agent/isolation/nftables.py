"""nftables backend: one table, `inet sealbox`, loaded atomically with `nft -f`.

The three base chains hook input, output and forward at priority -350: after IP defragmentation
(-400), so ports are visible, but before the raw (-300), conntrack (-200), mangle (-150), NAT and
filter (0) hooks that iptables, firewalld, ufw and Docker use. A packet this table drops is never
seen by another manager's chain, and no conntrack entry is created for it; another manager's
accept cannot override our drop, because a drop in any base chain is final.

There is no `ct state established accept`: every rule names an allow-listed peer (or a fixed,
named service such as DHCP), in both directions, so a connection that existed before isolation
gets no packets through unless its peer is allowed.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run
from manifest.errors import IsolationError

if TYPE_CHECKING:
    from pathlib import Path

    from agent.isolation.model import AllowEntry, Policy

TABLE_FAMILY = "inet"
TABLE_NAME = "sealbox"
PRIORITY = -350
CHAINS = ("input", "output", "forward")
PERSIST_FILE = "isolation.nft"


def _elements(items: list[str]) -> str:
    return f" elements = {{ {', '.join(items)} }}" if items else ""


def _svc_elements(entries: list[AllowEntry]) -> list[str]:
    items: list[str] = []
    for e in entries:
        if e.port is None and e.proto is None:
            continue
        port = str(e.port) if e.port is not None else "0-65535"
        for proto in e.protocols():
            item = f"{e.network} . {proto} . {port}"
            if item not in items:
                items.append(item)
    return items


def _peer_elements(entries: list[AllowEntry]) -> list[str]:
    items: list[str] = []
    for e in entries:
        if e.port is None and e.proto is None and str(e.network) not in items:
            items.append(str(e.network))
    return items


def render(policy: Policy) -> str:
    """The exact ruleset text that `nft -f` loads (deterministic for a given policy)."""
    sets: list[str] = []
    for v, fam in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        entries = policy.entries(v)
        sets.append(f"\tset peers{v} {{ type {fam}; flags interval;{_elements(_peer_elements(entries))} }}")
        sets.append(
            f"\tset services{v} {{ type {fam} . inet_proto . inet_service; flags interval;"
            f"{_elements(_svc_elements(entries))} }}"
        )
        sets.append(
            f"\tset resolvers{v} {{ type {fam};{_elements([str(r) for r in policy.resolvers_v(v)])} }}"
        )

    def direction(chain: str) -> list[str]:
        local, remote = ("iif", "saddr") if chain == "input" else ("oif", "daddr")
        peer_port = "sport" if chain == "input" else "dport"
        rules = [
            f'{local} "lo" accept',
            f"ip {remote} @peers4 accept",
            f"ip6 {remote} @peers6 accept",
            f"ip {remote} . meta l4proto . th {peer_port} @services4 accept",
            f"ip6 {remote} . meta l4proto . th {peer_port} @services6 accept",
        ]
        if policy.allow_dns:
            rules += [
                f"ip {remote} @resolvers4 meta l4proto {{ tcp, udp }} th {peer_port} 53 accept",
                f"ip6 {remote} @resolvers6 meta l4proto {{ tcp, udp }} th {peer_port} 53 accept",
            ]
        if policy.dhcp:
            if chain == "input":
                rules += ["udp sport 67 udp dport 68 accept", "udp sport 547 udp dport 546 accept"]
            else:
                rules += ["udp sport 68 udp dport 67 accept", "udp sport 546 udp dport 547 accept"]
        if policy.needs_nd:
            rules.append(
                "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit,"
                " nd-neighbor-advert } ip6 hoplimit 255 accept"
            )
        return rules

    lines = [
        "# sealbox network isolation (nftables); loaded atomically with `nft -f`",
        f"table {TABLE_FAMILY} {TABLE_NAME} {{",
        *sets,
    ]
    for chain in ("input", "output"):
        lines.append(f"\tchain {chain} {{")
        lines.append(f"\t\ttype filter hook {chain} priority {PRIORITY}; policy drop;")
        lines += [f"\t\t{r}" for r in direction(chain)]
        lines.append("\t}")
    forward_policy = "accept" if policy.forward else "drop"
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
