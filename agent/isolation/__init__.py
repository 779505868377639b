"""Network isolation: cut the host off except for an allow-list, prove it, restore it exactly.

Public API: `IsolateRequest`, `isolate`, `restore`, `status`, `dry_run`, `platform_plan`.
Backends: `nftables` (Linux, preferred), `iptables` (Linux fallback), `windows` and `macos`
(plans only: shown with `--dry-run --platform`). The library never prints and never exits.

Environment: `SEALBOX_STATE_DIR` (default /var/lib/sealbox: isolation.json, 0600, and
isolation-log.jsonl), `SEALBOX_SYSTEMD_DIR` (default /etc/systemd/system; when set, the boot
unit is only written there and systemctl is never called), `SEALBOX_RESOLV_CONF` (resolvers for
`--allow-dns`; default /etc/resolv.conf plus systemd-resolved's upstream list).

isolation.json (format 1): id, state, isolated_at, operator {user, uid, sudo_user}, reason,
case, backend, policy {allow[{spec, host, network, proto, port}], allow_dns, resolvers, dhcp,
forward, names{host: [addresses]}}, ruleset (exact text loaded) and ruleset_sha256,
applied_listing (normalized `nft list table inet sealbox`, or our iptables chains, read right
after loading) and applied_listing_sha256 (what status compares against), snapshot_before
{nft_json, nft_text, iptables_save, ip6tables_save, taken_at}, other_firewalls,
killed_connections, check, expire {at, at_ns, helper_pid}, persist {unit, enabled_by, files},
command.
"""

from __future__ import annotations

from agent.isolation.engine import IsolateRequest, dry_run, isolate, restore, status
from agent.isolation.model import Policy, parse_allow, parse_duration
from agent.isolation.plan import Plan


def platform_plan(platform: str, policy: Policy) -> Plan:
    """The Windows or macOS plan for `policy` (what `--dry-run --platform` shows)."""
    from agent.isolation import macos, windows

    if platform == "windows":
        return windows.plan(policy)
    if platform == "macos":
        return macos.plan(policy)
    raise ValueError(f"no plan backend for {platform}")


__all__ = [
    "IsolateRequest",
    "Plan",
    "Policy",
    "dry_run",
    "isolate",
    "parse_allow",
    "parse_duration",
    "platform_plan",
    "restore",
    "status",
]
