"""Network isolation: cut the host off except for an allow-list, prove it, restore it exactly.

Public API: `IsolateRequest`, `isolate`, `restore`, `status`, `dry_run`, `platform_plan`.
Backends: `nftables` (Linux, preferred), `iptables` (Linux fallback), `windows` and `macos`
(plans executed only on those systems). The library never prints and never exits.
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
    "IsolateRequest", "Plan", "Policy", "dry_run", "isolate", "parse_allow", "parse_duration",
    "platform_plan", "restore", "status",
]
