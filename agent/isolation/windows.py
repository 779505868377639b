"""Windows backend (a plan, not applied today): Windows Defender Firewall, group `sealbox`.

It renders the intents of `agent.isolation.policy`:
- The firewall is stateful: an outbound allow rule (remote address, protocol, remote port) lets
  this host open those connections and their replies in, nothing else; `--allow-in` becomes an
  inbound rule on this host's port. IT's host connecting *from* 8443 matches no inbound rule.
- A block rule beats every allow rule, so isolation is *not* a set of block rules (they would
  also block the IT channel). It is the default-block policy for inbound and outbound on every
  profile plus allow rules for the allow-list.
- Existing allow rules would still let their traffic out under a default-block policy, so every
  enabled allow rule outside the `sealbox` group in the local store is disabled, and its name
  is recorded to be re-enabled on restore.
- Existing connections are *ended*, not just listed: every TCP connection the policy does not
  allow is deleted with SetTcpEntry(DELETE_TCB) (IPv4; Windows has no such call for IPv6, so an
  IPv6 survivor is named and the script fails, as does any connection that could not be ended).
- Windows cannot tie an ICMP error to a connection: "fragmentation needed" (ICMPv4 3:4) and
  "packet too big" (ICMPv6 2) are allowed in from any address so that path MTU discovery works;
  no other ICMP but neighbour discovery.
- Group Policy can override local settings: it can forbid local rules
  (AllowLocalFirewallRules=False: isolation is refused), keep its own allow rules in force
  (local changes cannot disable them: status says `partial` and names them), set the profiles'
  default actions or switch the firewall off (a GPO value wins over Set-NetFirewallProfile: the
  script reads the effective state back and fails), and re-apply all of it at every policy
  refresh (about every 90 minutes): status reads the effective state (`-PolicyStore ActiveStore`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.isolation.plan import Plan
from agent.isolation.policy import intents

if TYPE_CHECKING:
    from agent.isolation.model import Policy
    from agent.isolation.policy import Flow, Intents

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


def _flow_rules(f: Flow) -> list[str]:
    out = f.direction == "out"
    name = f"sealbox allow {f.peer}" if out else f"sealbox allow in from {f.peer}"
    direction = "Outbound" if out else "Inbound"
    if f.any_protocol:
        return [_rule(f"{name} {direction.lower()}", direction, str(f.peer))]
    port = str(f.port) if f.port is not None else None
    return [
        _rule(
            f"{name} {proto}/{port or 'any'} {direction.lower()}",
            direction,
            str(f.peer),
            proto.upper(),
            remote_port=port if out else None,
            local_port=None if out else port,
        )
        for proto in f.protocols()
    ]


def _rules(it: Intents) -> list[str]:
    rules: list[str] = []
    for f in it.flows:
        rules += _flow_rules(f)
    for d in it.dhcp:
        v = f"DHCPv{d.version}"
        to = ",".join(str(n) for n in d.send_to)
        hear = ",".join(str(n) for n in d.hear_from) or "Any"
        client, server = str(d.client_port), str(d.server_port)
        rules.append(_rule(f"sealbox allow {v}", "Outbound", to, "UDP", server, client))
        rules.append(_rule(f"sealbox allow {v} reply", "Inbound", hear, "UDP", server, client))
    rules.append(
        _rule("sealbox allow fragmentation needed", "Inbound", "Any", "ICMPv4", extra="-IcmpType 3:4")
    )
    rules.append(_rule("sealbox allow packet too big", "Inbound", "Any", "ICMPv6", extra="-IcmpType 2"))
    if it.neighbor_discovery:
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
    return rules


def _allowed_test(it: Intents) -> list[str]:
    """PowerShell deciding, as the rules do, whether an existing TCP connection may stay."""
    checks = []
    for f in it.flows:
        if f.proto not in (None, "tcp"):
            continue
        port = (
            ""
            if f.port is None
            else (
                f" -and $c.RemotePort -eq {f.port}"
                if f.direction == "out"
                else f" -and $c.LocalPort -eq {f.port}"
            )
        )
        inbound = "$in" if f.direction == "in" else "-not $in"
        checks.append(
            f"  if ({inbound} -and (Test-InNet $c.RemoteAddress '{f.peer.network_address}'"
            f" {f.peer.prefixlen}){port}) {{ return $true }}"
        )
    return [
        "function Test-InNet($ip, $net, $len) {",
        "  $a = ([Net.IPAddress]::Parse($ip)).GetAddressBytes()",
        "  $b = ([Net.IPAddress]::Parse($net)).GetAddressBytes()",
        "  if ($a.Length -ne $b.Length) { return $false }",
        "  for ($i = 0; $i -lt $len; $i++) { $m = 0x80 -shr ($i % 8)",
        "    $k = [math]::Floor($i / 8)",
        "    if (($a[$k] -band $m) -ne ($b[$k] -band $m)) { return $false } }",
        "  return $true }",
        "$listening = @(Get-NetTCPConnection -State Listen -ErrorAction SilentlyContinue).LocalPort",
        "function Test-Allowed($c) {",
        "  if ($c.RemoteAddress -in @('127.0.0.1', '::1')) { return $true }",
        "  $in = $listening -contains $c.LocalPort",
        *checks,
        "  return $false }",
    ]


_END_CONNECTIONS = [
    "Add-Type -Namespace Sealbox -Name Tcp -MemberDefinition @'",
    "[StructLayout(LayoutKind.Sequential)] public struct Row { public uint State; public uint LocalAddr;"
    " public uint LocalPort; public uint RemoteAddr; public uint RemotePort; }",
    '[DllImport("iphlpapi.dll")] public static extern uint SetTcpEntry(ref Row row);',
    "'@",
    "function Get-Doomed { @(Get-NetTCPConnection -ErrorAction SilentlyContinue | Where-Object"
    " { $_.State -notin @('Listen', 'Bound', 'TimeWait', 'Closed') -and -not (Test-Allowed $_) }) }",
    "function ConvertTo-NetPort($p) { [uint32]((($p -band 0xFF) -shl 8) -bor ($p -shr 8)) }",
    "$doomed = Get-Doomed",
    "$doomed | Select-Object LocalAddress,LocalPort,RemoteAddress,RemotePort,State,OwningProcess |"
    ' ConvertTo-Json | Set-Content -Encoding UTF8 "' + STATE_DIR + '\\connections-cut.json"',
    "foreach ($c in $doomed) {",
    "  if (([Net.IPAddress]::Parse($c.RemoteAddress)).AddressFamily -ne 'InterNetwork') { continue }",
    "  $row = New-Object Sealbox.Tcp+Row",
    "  $row.State = 12  # MIB_TCP_STATE_DELETE_TCB",
    "  $la = ([Net.IPAddress]::Parse($c.LocalAddress)).GetAddressBytes()",
    "  $ra = ([Net.IPAddress]::Parse($c.RemoteAddress)).GetAddressBytes()",
    "  $row.LocalAddr = [BitConverter]::ToUInt32($la, 0); $row.RemoteAddr = [BitConverter]::ToUInt32($ra, 0)",
    "  $row.LocalPort = ConvertTo-NetPort $c.LocalPort; $row.RemotePort = ConvertTo-NetPort $c.RemotePort",
    "  [void][Sealbox.Tcp]::SetTcpEntry([ref]$row)",
    "  'cut: tcp {0}:{1} -> {2}:{3} (pid {4})' -f $c.LocalAddress,$c.LocalPort,$c.RemoteAddress,"
    "$c.RemotePort,$c.OwningProcess }",
    "$left = Get-Doomed",
    "if ($left) { throw ('could not end {0} connection(s) outside the allow-list: ' -f $left.Count) +"
    " (($left | ForEach-Object { 'tcp {0}:{1} -> {2}:{3} (pid {4})' -f $_.LocalAddress,$_.LocalPort,"
    "$_.RemoteAddress,$_.RemotePort,$_.OwningProcess }) -join '; ') }",
]


def plan(policy: Policy) -> Plan:
    """The PowerShell that isolates, checks and restores (run elevated)."""
    it = intents(policy)
    rules = _rules(it)
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
                "# 6. Group Policy wins over local profile settings: read the effective state back",
                "if (Get-NetFirewallProfile -PolicyStore ActiveStore | Where-Object { -not $_.Enabled -or "
                "$_.DefaultInboundAction -ne 'Block' -or $_.DefaultOutboundAction -ne 'Block' }) "
                "{ throw 'Group Policy overrides the default-block policy on some profile;"
                " isolate through GPO' }",
                "# 7. end existing connections outside the allow-list (the firewall only stalls them)",
                *_allowed_test(it),
                *_END_CONNECTIONS,
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
            "a plan only: sealbox applies isolation on Linux today",
            "run elevated; rules live in the firewall group 'sealbox'",
            "isolation = default-block policy + allow rules, never block rules",
            "Group Policy can override: AllowLocalFirewallRules=False (refused), its own allow rules"
            " (status: partial), profile defaults and firewall state (checked after applying), and"
            " it re-applies them at every refresh",
            "ICMP errors: only fragmentation-needed and packet-too-big, from any address",
            "existing IPv4 TCP connections outside the allow-list are ended; IPv6 ones cannot be"
            " (no API): the script then fails naming them",
        ),
    )
