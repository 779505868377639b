"""Network isolation: cut the host off except for an allow-list, prove it, restore it exactly.

Public API: `IsolateRequest`, `isolate`, `restore`, `status`, `boot`, `recover`, `dry_run`,
`platform_plan`. Backends (backends.py, the one place one is chosen): `nft` (Linux, preferred),
`iptables`, `iptables-nft`, `iptables-legacy` (Linux fallbacks), `windows` and `macos` (plans
only: shown with `--dry-run --platform`). The library never prints and never exits.

Environment: `SEALBOX_STATE_DIR` (default /var/lib/sealbox: isolation.json, 0600,
isolation.lock and isolation-log.jsonl), `SEALBOX_SYSTEMD_DIR` (default /etc/systemd/system;
when set, the boot unit is only written there and systemctl is never called),
`SEALBOX_RESOLV_CONF` (resolvers for `--allow-dns`; default /etc/resolv.conf plus
systemd-resolved's upstream list), `SEALBOX_HOME` (key store; the case ledgers are in its
`cases/`), `SEALBOX_TEST_KILL_AT` (tests only: SIGKILL at a named step, see manifest.osio.crashpoint).

isolation.json (format 2): id, state (applying | checking | isolated | restoring), started_at,
isolated_at and isolated_at_ns, operator {user, uid, sudo_user}, reason, case, backend, policy
{allow[{spec, host, network, proto, port}], allow_dns, resolvers, dhcp, forward, names{host:
[addresses]}}, ruleset (exact text loaded) and ruleset_sha256, applied_listing (normalized `nft
list table inet sealbox`, or our iptables chains, read right after loading) and
applied_listing_sha256 (what status compares against), snapshot_before {taken_at, nft_json,
views {"nft list ruleset", "iptables-legacy-save", ...: text}}, backend_before (what the
backend's tidy-up needs), other_firewalls, killed_connections, check {target, rollback, ok,
error}, expire {seconds, at, at_ns, helper_pid}, persist {requested} then {unit, enabled_by,
files}, custody_target {case, bundle, ledger, key}, custody [{event, seq, time}], restoring
{action, reason, started_at}, command.
"""

from __future__ import annotations

from agent.isolation.backends import choose, plan_backend
from agent.isolation.engine import IsolateRequest, boot, dry_run, isolate, recover, restore, status
from agent.isolation.model import Policy, parse_allow, parse_duration
from agent.isolation.plan import Plan


def platform_plan(platform: str, policy: Policy) -> Plan:
    """The Windows or macOS plan for `policy` (what `--dry-run --platform` shows)."""
    return plan_backend(platform).plan(policy)


__all__ = [
    "IsolateRequest",
    "Plan",
    "Policy",
    "boot",
    "choose",
    "dry_run",
    "isolate",
    "parse_allow",
    "parse_duration",
    "plan_backend",
    "platform_plan",
    "recover",
    "restore",
    "status",
]
