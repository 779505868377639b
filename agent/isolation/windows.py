"""Windows backend: Windows Defender Firewall, rules in the group `sealbox`, via PowerShell.

Traps designed around:
- A block rule beats every allow rule, so isolation is *not* a set of block rules (they would
  also block the IT channel). It is the default-block policy for inbound and outbound on every
  profile plus allow rules for the allow-list.
- Existing allow rules would still let their traffic out under a default-block policy, so every
  enabled allow rule outside the `sealbox` group in the local store is disabled, and its name
  is recorded to be re-enabled on restore.
- Group Policy can override local settings (and forbid local rules with
  AllowLocalFirewallRules=False): status reads the *effective* state (`-PolicyStore ActiveStore`)
  and reports GPO allow rules, which local changes cannot disable, as `partial`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.isolation.plan import Plan

if TYPE_CHECKING:
    from agent.isolation.model import AllowEntry, Policy

STATE_DIR = r"$env:ProgramData\sealbox"
GROUP = "sealbox"


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rule(
    name: str,
    direction: str,
    remote: str,
    proto: str | None = None,
    remote_port: str | None = None,
    local_port: str | None = None,
    extra: str = "",
) -> str:
    parts = [
        "New-NetFirewallRule",
        f"-Group {_ps_quote(GROUP)}",
        f"-DisplayName {_ps_quote(name)}",
        f"-Direction {direction}",
        "-Action Allow",
        "-Profile Any",
        f"-RemoteAddress {remote}",
    ]
    if proto:
        parts.append(f"-Protocol {proto}")
    if remote_port:
        parts.append(f"-RemotePort {remote_port}")
    if local_port:
        parts.append(f"-LocalPort {local_port}")
    if extra:
        parts.append(extra)
    return " ".join(parts) + " | Out-Null"


def _entry_rules(e: AllowEntry) -> list[str]:
    # The firewall is stateful: an outbound allow also lets that flow's replies in. Inbound
    # rules are only added for whole-host entries (IT may open connections to this host).
    if e.port is None and e.proto is None:
        return [
            _rule(f"sealbox allow {e.network} {d.lower()}", d, str(e.network))
            for d in ("Outbound", "Inbound")
        ]
    port = str(e.port) if e.port is not None else None
    return [
        _rule(
            f"sealbox allow {e.network} {proto}/{port or 'any'} outbound",
            "Outbound",
            str(e.network),
            proto.upper(),
            remote_port=port,
        )
        for proto in e.protocols()
    ]


def plan(policy: Policy) -> Plan:
    """The PowerShell that isolates, checks and restores (run elevated)."""
    rules: list[str] = []
    for e in policy.allow:
        rules += _entry_rules(e)
    for r in policy.resolvers_v(4) + policy.resolvers_v(6):
        for proto in ("UDP", "TCP"):
            rules.append(
                _rule(f"sealbox allow DNS {r} {proto.lower()}", "Outbound", str(r), proto, remote_port="53")
            )
    if policy.dhcp:
        rules.append(_rule("sealbox allow DHCPv4", "Outbound", "Any", "UDP", "67", "68"))
        rules.append(_rule("sealbox allow DHCPv4 reply", "Inbound", "Any", "UDP", "67", "68"))
        rules.append(_rule("sealbox allow DHCPv6", "Outbound", "Any", "UDP", "547", "546"))
        rules.append(_rule("sealbox allow DHCPv6 reply", "Inbound", "Any", "UDP", "547", "546"))
    if policy.needs_nd:
        for direction in ("Outbound", "Inbound"):
            rules.append(
                _rule(
                    f"sealbox allow IPv6 neighbor discovery {direction.lower()}",
                    direction,
                    "Any",
                    "ICMPv6",
                    extra="-IcmpType 133,134,135,136",
                )
            )
    isolate = (
        "\n".join(
            [
                "$ErrorActionPreference = 'Stop'",
                f'New-Item -ItemType Directory -Force -Path "{STATE_DIR}" | Out-Null',
                "# 1. snapshot: the effective profiles and the full local policy",
                "Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,Enabled,"
                "DefaultInboundAction,DefaultOutboundAction,AllowLocalFirewallRules | ConvertTo-Json |"
                f' Set-Content -Encoding UTF8 "{STATE_DIR}\\profiles-before.json"',
                f'netsh advfirewall export "{STATE_DIR}\\firewall-before.wfw" | Out-Null',
                "# 2. refuse when Group Policy forbids local rules: ours would be ignored",
                "if (Get-NetFirewallProfile -PolicyStore ActiveStore | Where-Object "
                "{ $_.AllowLocalFirewallRules -eq 'False' }) { throw 'Group Policy ignores local "
                "firewall rules (AllowLocalFirewallRules=False); isolate through GPO instead' }",
                "# 3. allow rules for the allow-list (group sealbox)",
                *rules,
                "# 4. disable every other enabled allow rule in the local store, recording its name",
                f"$others = Get-NetFirewallRule -PolicyStore PersistentStore -Action Allow -Enabled True |"
                f" Where-Object {{ $_.Group -ne '{GROUP}' }}",
                f'$others.Name | Set-Content -Encoding UTF8 "{STATE_DIR}\\disabled-rules.txt"',
                "$others | Disable-NetFirewallRule",
                "# 5. default-block policy on every profile (block rules would beat our allow rules)",
                "Set-NetFirewallProfile -Profile Domain,Private,Public -Enabled True "
                "-DefaultInboundAction Block -DefaultOutboundAction Block",
                "# 6. existing connections: the firewall re-evaluates new packets only; report survivors",
                "Get-NetTCPConnection -State Established | Select-Object LocalAddress,LocalPort,"
                "RemoteAddress,RemotePort,OwningProcess | ConvertTo-Json |"
                f' Set-Content -Encoding UTF8 "{STATE_DIR}\\connections-at-isolation.json"',
            ]
        )
        + "\n"
    )
    status = (
        "\n".join(
            [
                "# effective state, including Group Policy (ActiveStore)",
                "$p = Get-NetFirewallProfile -PolicyStore ActiveStore",
                "$blocked = -not ($p | Where-Object { -not $_.Enabled -or "
                "$_.DefaultInboundAction -ne 'Block' -or $_.DefaultOutboundAction -ne 'Block' })",
                f"$ours = @(Get-NetFirewallRule -PolicyStore ActiveStore -Group '{GROUP}')",
                "$foreign = @(Get-NetFirewallRule -PolicyStore ActiveStore -Action Allow -Enabled True |"
                f" Where-Object {{ $_.Group -ne '{GROUP}' }})",
                f"if ($blocked -and $ours.Count -eq {len(rules)} -and $foreign.Count -eq 0) "
                "{ 'isolated' } elseif ($ours.Count -gt 0 -or $blocked) { 'partial' } "
                "else { 'not isolated' }",
                "$foreign | Select-Object Name,DisplayName,PolicyStoreSource | Format-Table",
            ]
        )
        + "\n"
    )
    restore = (
        "\n".join(
            [
                "$ErrorActionPreference = 'Stop'",
                f"Remove-NetFirewallRule -Group '{GROUP}' -ErrorAction SilentlyContinue",
                f'$saved = Get-Content "{STATE_DIR}\\profiles-before.json" | ConvertFrom-Json',
                "foreach ($p in $saved) { Set-NetFirewallProfile -Profile $p.Name "
                "-Enabled $p.Enabled -DefaultInboundAction $p.DefaultInboundAction "
                "-DefaultOutboundAction $p.DefaultOutboundAction }",
                f'Get-Content "{STATE_DIR}\\disabled-rules.txt" | ForEach-Object '
                "{ Enable-NetFirewallRule -Name $_ }",
                "# drift: compare with the export taken before (never imported over others' changes)",
                f'netsh advfirewall export "{STATE_DIR}\\firewall-after.wfw" | Out-Null',
            ]
        )
        + "\n"
    )
    return Plan(
        platform="windows",
        shell="powershell",
        isolate=isolate,
        status=status,
        restore=restore,
        notes=(
            "run elevated; rules live in the firewall group 'sealbox'",
            "isolation = default-block policy + allow rules, never block rules",
        ),
    )
