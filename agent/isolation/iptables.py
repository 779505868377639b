"""iptables fallback: sealbox's own chains, jumped to from the first rule of INPUT/OUTPUT/FORWARD.

The rules render the intents of `agent.isolation.policy` with `-m conntrack` (`--ctdir` for a
flow's own packets and its replies, `--ctstate RELATED` with the original tuple for the ICMP
errors of allowed flows): the same semantics as the nftables table.

Used when nftables is not available (or chosen with `--backend iptables` / `iptables-legacy`).
The chains are loaded with `iptables-restore --noflush` and `ip6tables-restore --noflush`, so
nothing else in the filter table is touched. If IPv6 is enabled and cannot be filtered, isolation
is refused (and the IPv4 half is taken back out): half an isolation is not one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run
from agent.isolation.policy import ICMP_ERRORS4, ICMP_ERRORS6, intents
from manifest.errors import IsolationError

if TYPE_CHECKING:
    from agent.isolation.model import Policy
    from agent.isolation.policy import Flow

CHAINS = {"INPUT": "SEALBOX-INPUT", "OUTPUT": "SEALBOX-OUTPUT", "FORWARD": "SEALBOX-FORWARD"}
_ND_TYPES = (
    "router-solicitation",
    "router-advertisement",
    "neighbour-solicitation",
    "neighbour-advertisement",
)


def ipv6_enabled() -> bool:
    """IPv6 exists in this network namespace (an address is configured on some interface)."""
    try:
        return bool(Path("/proc/net/if_inet6").read_text(encoding="ascii").strip())
    except OSError:
        return False


def _flow_rules(chain: str, f: Flow) -> list[str]:
    """A flow's own packets and its replies (by conntrack direction), as in nftables.py."""
    inbound = chain == CHAINS["INPUT"]
    ours = (f.direction == "out") != inbound
    addr = "-s" if inbound else "-d"
    ctdir = "ORIGINAL" if ours else "REPLY"
    port_opt = "--dport" if ours else "--sport"
    if f.any_protocol:
        return [f"-A {chain} {addr} {f.peer} -m conntrack --ctdir {ctdir} -j ACCEPT"]
    port = f" {port_opt} {f.port}" if f.port is not None else ""
    return [
        f"-A {chain} {addr} {f.peer} -p {proto} -m {proto}{port} -m conntrack --ctdir {ctdir} -j ACCEPT"
        for proto in f.protocols()
    ]


def _related_rules(chain: str, f: Flow) -> list[str]:
    """ICMP errors about an allowed flow (PMTU), matched on the flow's original tuple."""
    icmp, type_opt = ("icmp", "--icmp-type") if f.version == 4 else ("ipv6-icmp", "--icmpv6-type")
    module = "icmp" if f.version == 4 else "icmp6"
    types = ICMP_ERRORS4 if f.version == 4 else ICMP_ERRORS6
    orig = "--ctorigdst" if f.direction == "out" else "--ctorigsrc"
    tuples = [""]
    if not f.any_protocol:
        port = f" --ctorigdstport {f.port}" if f.port is not None else ""
        tuples = [f" --ctproto {proto}{port}" for proto in f.protocols()]
    return [
        f"-A {chain} -p {icmp} -m {module} {type_opt} {t} -m conntrack --ctstate RELATED"
        f" {orig} {f.peer}{tup} -j ACCEPT"
        for t in types
        for tup in tuples
    ]


def render_family(policy: Policy, version: int) -> str:
    """The `iptables-restore --noflush` input for one address family (4 or 6)."""
    it = intents(policy)
    lines = ["# sealbox network isolation (iptables fallback)", "*filter"]
    lines += [f":{own} - [0:0]" for own in CHAINS.values()]
    lines += [f"-I {builtin} 1 -j {own}" for builtin, own in CHAINS.items()]
    flows = [f for f in it.flows if f.version == version]
    for direction in ("INPUT", "OUTPUT"):
        chain = CHAINS[direction]
        inbound = direction == "INPUT"
        lines.append(f"-A {chain} {'-i' if inbound else '-o'} lo -j ACCEPT")
        for f in flows:
            lines += _flow_rules(chain, f)
        for f in flows:
            lines += _related_rules(chain, f)
        for d in it.dhcp:
            if d.version != version:
                continue
            if inbound:
                for src in d.hear_from or (None,):
                    s_opt = f"-s {src} " if src is not None else ""
                    lines.append(
                        f"-A {chain} {s_opt}-p udp -m udp --sport {d.server_port}"
                        f" --dport {d.client_port} -j ACCEPT"
                    )
            else:
                for dst in d.send_to:
                    lines.append(
                        f"-A {chain} -d {dst} -p udp -m udp --sport {d.client_port}"
                        f" --dport {d.server_port} -j ACCEPT"
                    )
        if version == 6 and it.neighbor_discovery:
            for t in _ND_TYPES:
                lines.append(
                    f"-A {chain} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m hl --hl-eq 255 -j ACCEPT"
                )
        lines.append(f"-A {chain} -j DROP")
    if not it.forward:
        lines.append(f"-A {CHAINS['FORWARD']} -j DROP")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render(policy: Policy) -> str:
    """Both families in one text, each introduced by a `# family` comment line."""
    return "# ipv4\n" + render_family(policy, 4) + "# ipv6\n" + render_family(policy, 6)


def split(ruleset: str) -> dict[int, str]:
    _, _, rest = ruleset.partition("# ipv4\n")
    v4, _, v6 = rest.partition("# ipv6\n")
    return {4: v4, 6: v6}


_COUNTERS = re.compile(r"\s\[\d+:\d+\]$")


def normalize_save(text: str | None) -> str:
    """iptables-save output without comments, counters, and tables that hold nothing
    (a table with only built-in chains, policy ACCEPT and no rule is the same as no table)."""
    if not text:
        return ""
    tables: list[list[str]] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = _COUNTERS.sub("", raw.rstrip())
        if not line or line.startswith("#"):
            continue
        current.append(line)
        if line == "COMMIT":
            tables.append(current)
            current = []
    kept = []
    for t in tables:
        body = t[1:-1]
        trivial = all((ln.startswith(":") and ln.split()[1] == "ACCEPT") for ln in body)
        if not trivial:
            kept.append("\n".join(t))
    return "\n".join(kept) + ("\n" if kept else "")


class IptablesBackend:
    """The fallback; `variant` is "" for the system's iptables, or "legacy" / "nft"."""

    def __init__(self, variant: str = "") -> None:
        self.variant = variant
        self.name = f"iptables-{variant}" if variant else "iptables"

    def tool(self, version: int, kind: str = "") -> str:
        base = "iptables" if version == 4 else "ip6tables"
        if self.variant:
            base = f"{base}-{self.variant}"
        return f"{base}-{kind}" if kind else base

    def available(self) -> bool:
        return have(self.tool(4, "restore"))

    def uses_nf_tables(self) -> bool:
        proc = run([self.tool(4), "--version"], check=False)
        return "nf_tables" in proc.stdout

    def render(self, policy: Policy) -> str:
        return render(policy)

    def _require_ipv6(self) -> bool:
        """Whether IPv6 must be filtered; refuses when it must but cannot be."""
        if not ipv6_enabled():
            return False
        if not have(self.tool(6, "restore")):
            raise IsolationError(
                f"IPv6 is enabled but {self.tool(6, 'restore')} is missing; refusing to isolate IPv4 only",
                hint="install ip6tables or use the nftables backend",
            )
        return True

    def check(self, ruleset: str) -> None:
        parts = split(ruleset)
        run([self.tool(4, "restore"), "--test", "--noflush"], input_text=parts[4])
        if self._require_ipv6():
            run([self.tool(6, "restore"), "--test", "--noflush"], input_text=parts[6])

    def present(self) -> bool:
        return bool(self.chains_present())

    def chains_present(self) -> list[str]:
        found = []
        for version in (4, 6):
            if version == 6 and not have(self.tool(6)):
                continue
            for own in CHAINS.values():
                if run([self.tool(version), "-S", own], check=False).returncode == 0:
                    found.append(f"ipv{version} {own}")
        return found

    def apply(self, ruleset: str) -> None:
        if self.present():
            raise IsolationError(
                "sealbox's iptables chains already exist",
                hint="run `sealbox restore` first, or `sealbox isolation status` to inspect them",
            )
        parts = split(ruleset)
        v6 = self._require_ipv6()
        run([self.tool(4, "restore"), "--noflush"], input_text=parts[4])
        if v6:
            try:
                run([self.tool(6, "restore"), "--noflush"], input_text=parts[6])
            except IsolationError as exc:
                self.remove()
                raise IsolationError(
                    f"IPv6 cannot be filtered ({exc.message}); IPv4 rules taken back out, isolation refused",
                    hint="use the nftables backend",
                ) from exc

    def listing(self) -> str | None:
        """Our chains and the first rule of each built-in chain, both families."""
        out: list[str] = []
        for version in (4, 6):
            if version == 6 and not (ipv6_enabled() and have(self.tool(6))):
                continue
            out.append(f"# ipv{version}")
            for builtin, own in CHAINS.items():
                proc = run([self.tool(version), "-S", own], check=False)
                if proc.returncode != 0:
                    return None
                out += proc.stdout.strip().splitlines()
                first = run([self.tool(version), "-S", builtin, "1"], check=False)
                out.append(first.stdout.strip() or f"# {builtin} empty")
        return "\n".join(out) + "\n"

    def remove(self) -> bool:
        found = False
        for version in (4, 6):
            if not have(self.tool(version)):
                continue
            ipt = self.tool(version)
            for builtin, own in CHAINS.items():
                while run([ipt, "-D", builtin, "-j", own], check=False).returncode == 0:
                    found = True
                if run([ipt, "-S", own], check=False).returncode == 0:
                    found = True
                    run([ipt, "-F", own])
                    run([ipt, "-X", own])
        return found

    def _chain_exists(self, version: int, chain: str) -> bool:
        """Whether `chain` really exists. iptables-nft shows built-in chains that do not exist
        (as policy ACCEPT); deleting rule 1,000,000 fails differently when the chain is
        missing than when the index is too big, and changes nothing either way."""
        proc = run([self.tool(version), "-t", "filter", "-D", chain, "1000000"], check=False)
        return "No chain" not in proc.stderr

    def _filter_table_exists(self, version: int) -> bool:
        # Without `-t`: with `-t filter`, iptables-nft-save shows the table even when it is absent.
        proc = run([self.tool(version, "save")], check=False)
        return "\n*filter\n" in f"\n{proc.stdout}"

    def _families(self) -> list[int]:
        return [v for v in (4, 6) if have(self.tool(v)) and have(self.tool(v, "save"))]

    def before_apply(self) -> dict[str, Any]:
        """With iptables-nft, which built-in chains and filter tables exist before loading."""
        if not self.uses_nf_tables():
            return {}
        out: dict[str, Any] = {}
        for version in self._families():
            table = self._filter_table_exists(version)
            out[f"ipv{version}"] = {
                "filter_table": table,
                "builtin_chains": [c for c in CHAINS if table and self._chain_exists(version, c)],
            }
        return out

    def tidy(self, before: dict[str, Any]) -> list[str]:
        """With iptables-nft, the jumps into our chains created the built-in chains (and the
        `filter` table) they sit in; delete those that were not there before and hold nothing.
        Legacy iptables has nothing to delete (its built-in chains always exist)."""
        if not self.uses_nf_tables() or not before:
            return []
        deleted: list[str] = []
        for version in self._families():
            was = before.get(f"ipv{version}") or {}
            family = "ip" if version == 4 else "ip6"
            kept = set(was.get("builtin_chains", []))
            for chain in CHAINS:
                if chain in kept or not self._chain_exists(version, chain):
                    continue
                rules = run([self.tool(version), "-t", "filter", "-S", chain], check=False).stdout.split("\n")
                if any(r.startswith("-A ") for r in rules):
                    continue
                if run([self.tool(version), "-t", "filter", "-X", chain], check=False).returncode == 0:
                    deleted.append(f"{family} filter {chain}")
            if (
                not was.get("filter_table")
                and self._filter_table_exists(version)
                and self._table_empty(version)
            ):
                # Restoring an empty `*filter` without --noflush deletes the (empty) table.
                run([self.tool(version, "restore")], input_text="*filter\nCOMMIT\n", check=False)
                if not self._filter_table_exists(version):
                    deleted.append(f"table {family} filter")
        return deleted

    def _table_empty(self, version: int) -> bool:
        text = run([self.tool(version, "save"), "-t", "filter"], check=False).stdout
        return normalize_save(text) == "" and all(not self._chain_exists(version, c) for c in CHAINS)

    def persist_files(self, ruleset: str) -> dict[str, str]:
        parts = split(ruleset)
        return {"isolation.rules.v4": parts[4], "isolation.rules.v6": parts[6]}

    def persist_command(self, directory: Path) -> list[str]:
        # Loading twice would add a second jump: load only when our chain is not there yet.
        # /proc files report size 0, so test for content with grep rather than `[ -s ]`.
        base = directory / "isolation.rules"
        own = CHAINS["INPUT"]
        v4 = f"{self.tool(4)} -S {own} >/dev/null 2>&1 || {self.tool(4, 'restore')} --noflush < {base}.v4"
        v6 = f"{self.tool(6)} -S {own} >/dev/null 2>&1 || {self.tool(6, 'restore')} --noflush < {base}.v6"
        return ["/bin/sh", "-c", f"{{ {v4}; }} && {{ ! grep -qs . /proc/net/if_inet6 || {v6}; }}"]


class IptablesNftBackend(IptablesBackend):
    def __init__(self) -> None:
        super().__init__("nft")


class IptablesLegacyBackend(IptablesBackend):
    def __init__(self) -> None:
        super().__init__("legacy")
