"""macOS backend: a pf anchor `com.sealbox`, loaded with pfctl; /etc/pf.conf is never rewritten.

The stock /etc/pf.conf evaluates `anchor "com.apple/*"`, so the anchor is loaded as
`com.apple/com.sealbox` and is reached without editing pf.conf (if a customised pf.conf does not
reference `com.apple/*`, isolation is refused). pf is enabled with `pfctl -E`, whose reference
token is kept so that restore releases exactly that reference (`pfctl -X`); existing states are
killed (`pfctl -k`), otherwise established connections would continue to pass on their state.
Every rule is `quick`, so nothing later in the main ruleset can reopen traffic.

It renders the intents of `agent.isolation.policy`: pf is stateful, so `pass out ... keep state`
to an allowed service lets this host open those connections and their replies in (and ICMP
errors that match the state: path MTU discovery works); `--allow-in` becomes `pass in` on this
host's port. Nothing else passes but DHCP (the exchange only) and neighbour discovery. Sockets
of killed states are not closed (macOS has no SOCK_DESTROY); their packets are dropped.
This is a plan only: sealbox applies isolation on Linux today.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.isolation.plan import Plan
from agent.isolation.policy import intents

if TYPE_CHECKING:
    from agent.isolation.model import Policy
    from agent.isolation.policy import Flow

ANCHOR = "com.apple/com.sealbox"
STATE_DIR = "/var/db/sealbox"
RULES = f"{STATE_DIR}/com.sealbox.pf"


def _flow_rules(f: Flow) -> list[str]:
    af = "inet" if f.version == 4 else "inet6"
    if f.direction == "out":
        head, ends = "pass out quick", f"from any to {f.peer}"
    else:
        head, ends = "pass in quick", f"from {f.peer} to any"
    if f.any_protocol:
        return [f"{head} {af} {ends} keep state"]
    rules = []
    for proto in f.protocols():
        port = f" port {f.port}" if f.port is not None else ""
        # flags any: an allowed connection that lost its state (pfctl -k) picks it up again
        flags = " flags any" if proto == "tcp" else ""
        rules.append(f"{head} {af} proto {proto} {ends}{port}{flags} keep state")
    return rules


def ruleset(policy: Policy) -> str:
    it = intents(policy)
    lines = ["# sealbox network isolation (pf anchor com.sealbox)", "pass quick on lo0 all no state"]
    for f in it.flows:
        lines += _flow_rules(f)
    for d in it.dhcp:
        af = "inet" if d.version == 4 else "inet6"
        to = ", ".join(str(n) for n in d.send_to)
        hear = "{ " + ", ".join(str(n) for n in d.hear_from) + " }" if d.hear_from else "any"
        lines.append(
            f"pass out quick {af} proto udp from any port {d.client_port}"
            f" to {{ {to} }} port {d.server_port} no state"
        )
        lines.append(
            f"pass in quick {af} proto udp from {hear} port {d.server_port}"
            f" to any port {d.client_port} no state"
        )
    if it.neighbor_discovery:
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
        notes=(
            "a plan only: sealbox applies isolation on Linux today",
            "run as root; /etc/pf.conf is never rewritten",
            f"rules live in the pf anchor {ANCHOR}",
            "existing states are killed; their sockets stall (macOS cannot destroy them)",
        ),
    )
