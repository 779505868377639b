"""macOS backend: a pf anchor `com.sealbox`, loaded with pfctl; /etc/pf.conf is never rewritten.

The stock /etc/pf.conf evaluates `anchor "com.apple/*"`, so the anchor is loaded as
`com.apple/com.sealbox` and is reached without editing pf.conf (if a customised pf.conf does not
reference `com.apple/*`, isolation is refused). pf is enabled with `pfctl -E`, whose reference
token is kept so that restore releases exactly that reference (`pfctl -X`); existing states are
killed (`pfctl -k`), otherwise established connections would continue to pass on their state.
Every rule is `quick`, so nothing later in the main ruleset can reopen traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.isolation.plan import Plan

if TYPE_CHECKING:
    from agent.isolation.model import AllowEntry, Policy

ANCHOR = "com.apple/com.sealbox"
STATE_DIR = "/var/db/sealbox"
RULES = f"{STATE_DIR}/com.sealbox.pf"


def _entry_rules(e: AllowEntry) -> list[str]:
    af = "inet" if e.version == 4 else "inet6"
    if e.port is None and e.proto is None:
        return [
            f"pass out quick {af} from any to {e.network} flags any keep state",
            f"pass in quick {af} from {e.network} to any flags any keep state",
        ]
    rules = []
    for proto in e.protocols():
        port = f" port {e.port}" if e.port is not None else ""
        flags = " flags any" if proto == "tcp" else ""
        rules.append(f"pass out quick {af} proto {proto} from any to {e.network}{port}{flags} keep state")
    return rules


def ruleset(policy: Policy) -> str:
    lines = ["# sealbox network isolation (pf anchor com.sealbox)", "pass quick on lo0 all no state"]
    for e in policy.allow:
        lines += _entry_rules(e)
    for r in policy.resolvers_v(4) + policy.resolvers_v(6):
        af = "inet" if r.version == 4 else "inet6"
        lines.append(f"pass out quick {af} proto {{ udp, tcp }} from any to {r} port 53 keep state")
    if policy.dhcp:
        lines.append("pass quick inet proto udp from any port 68 to any port 67 no state")
        lines.append("pass quick inet proto udp from any port 67 to any port 68 no state")
        lines.append("pass quick inet6 proto udp from any port 546 to any port 547 no state")
        lines.append("pass quick inet6 proto udp from any port 547 to any port 546 no state")
    if policy.needs_nd:
        lines.append(
            "pass quick inet6 proto ipv6-icmp icmp6-type "
            "{ routersol, routeradv, neighbrsol, neighbradv } no state"
        )
    lines.append("block drop quick all")
    return "\n".join(lines) + "\n"


def plan(policy: Policy) -> Plan:
    isolate = (
        "\n".join(
            [
                "set -eu",
                f"install -d -m 0700 {STATE_DIR}",
                f"pfctl -s info > {STATE_DIR}/pf-info-before.txt 2>&1 || true",
                f"pfctl -sr > {STATE_DIR}/pf-rules-before.txt 2>/dev/null || true",
                "# the anchor must be reachable from the main ruleset",
                '# (the stock pf.conf has: anchor "com.apple/*")',
                "pfctl -sr 2>/dev/null | grep -q 'anchor \"com.apple/\\*\"' || "
                "{ echo 'pf main ruleset does not evaluate com.apple/*; refusing' >&2; exit 1; }",
                f"pfctl -a {ANCHOR} -n -f {RULES}",
                f"pfctl -a {ANCHOR} -f {RULES}",
                f"pfctl -E 2>&1 | sed -n 's/^Token : //p' > {STATE_DIR}/pf-token",
                "pfctl -k 0.0.0.0/0",
                "pfctl -k ::/0",
            ]
        )
        + "\n"
    )
    status = (
        "\n".join(
            [
                "pfctl -s info | grep -q 'Status: Enabled' ||",
                "  { echo 'not isolated (pf disabled)'; exit 0; }",
                f"pfctl -a {ANCHOR} -sr",
                f"# isolated when the anchor's rules equal {RULES} as loaded; partial otherwise",
            ]
        )
        + "\n"
    )
    restore = (
        "\n".join(
            [
                "set -eu",
                f"pfctl -a {ANCHOR} -F all",
                f'[ -s {STATE_DIR}/pf-token ] && pfctl -X "$(cat {STATE_DIR}/pf-token)"',
                f"pfctl -sr > {STATE_DIR}/pf-rules-after.txt 2>/dev/null || true",
                f"diff -u {STATE_DIR}/pf-rules-before.txt {STATE_DIR}/pf-rules-after.txt || true",
            ]
        )
        + "\n"
    )
    return Plan(
        platform="macos",
        shell="sh",
        files={RULES: ruleset(policy)},
        isolate=isolate,
        status=status,
        restore=restore,
        notes=("run as root; /etc/pf.conf is never rewritten", f"rules live in the pf anchor {ANCHOR}"),
    )
