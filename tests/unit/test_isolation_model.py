"""Allow-list parsing, the generated rules and the Windows/macOS plans (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from agent.isolation import iptables, macos, nftables, windows
from agent.isolation.model import Policy, parse_allow, parse_duration
from manifest.errors import UsageError
from tests.support.env import REPO

ASSETS = REPO / "tests" / "assets" / "isolation"
PLAN_ALLOW = ["203.0.113.2:8443/tcp", "2001:db8:1::/64", "198.51.100.7:514"]


def _policy(*specs: str, **kw: object) -> Policy:
    entries, names = parse_allow(list(specs))
    return Policy(allow=entries, names=names, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "network", "port", "proto"),
    [
        ("203.0.113.5", "203.0.113.5/32", None, None),
        ("203.0.113.0/24", "203.0.113.0/24", None, None),
        ("203.0.113.5:8443", "203.0.113.5/32", 8443, None),
        ("203.0.113.5:8443/tcp", "203.0.113.5/32", 8443, "tcp"),
        ("203.0.113.0/25:53/udp", "203.0.113.0/25", 53, "udp"),
        ("203.0.113.5/tcp", "203.0.113.5/32", None, "tcp"),
        ("2001:db8::7", "2001:db8::7/128", None, None),
        ("2001:db8::/32", "2001:db8::/32", None, None),
        ("[2001:db8::7]:443/tcp", "2001:db8::7/128", 443, "tcp"),
        ("[2001:db8:1::/48]:22", "2001:db8:1::/48", 22, None),
    ],
)
def test_allow_specs_parse(spec, network, port, proto):
    (entry,), names = parse_allow([spec])
    assert (str(entry.network), entry.port, entry.proto) == (network, port, proto)
    assert names == {} and entry.spec == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("203.0.113.5:0", "port must be"),
        ("203.0.113.5:70000", "port must be"),
        ("203.0.113.5:http", "port must be"),
        ("0.0.0.0/0", "not isolation"),
        ("::/0", "not isolation"),
        ("203.0.113.5/33", "203.0.113.5/33"),
        ("[2001:db8::7:443", "missing ']'"),
        ("bad_host!name", "neither an IP address nor a host name"),
        ("", "needs a value"),
    ],
)
def test_bad_allow_specs_are_usage_errors(spec, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_allow([spec])


def test_host_names_resolve_to_every_address_and_are_recorded():
    entries, names = parse_allow(["localhost:8443/tcp"])
    assert names["localhost"] and "127.0.0.1" in names["localhost"]
    assert {str(e.network.network_address) for e in entries} == set(names["localhost"])
    assert all(e.host == "localhost" and e.port == 8443 for e in entries)


def test_unresolvable_host_name_is_refused():
    with pytest.raises(UsageError, match=r"resolve.*isolation refused"):
        parse_allow(["no-such-host.invalid:443"], resolve_timeout=3)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "soon", "5x", "-5m", ""])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_policy_permits_only_allowed_flows():
    p = _policy(
        "203.0.113.2:8443/tcp",
        "2001:db8:1::/64",
        allow_dns=True,
        resolvers=(ipaddress.ip_address("198.51.100.53"),),
    )
    ip = ipaddress.ip_address
    assert p.permits(ip("203.0.113.2"), "tcp", 8443)
    assert not p.permits(ip("203.0.113.2"), "tcp", 22)
    assert not p.permits(ip("203.0.113.2"), "udp", 8443)
    assert p.permits(ip("2001:db8:1::99"), "udp", 9)
    assert p.permits(ip("198.51.100.53"), "udp", 53)
    assert not p.permits(ip("198.51.100.53"), "tcp", 443)
    assert not p.permits(ip("198.51.100.54"), "udp", 53)
    assert p.permits(ip("127.0.0.1"), "tcp", 1)
    assert p.first_tcp_peer() == ("203.0.113.2", 8443)


def test_nft_ruleset_is_stateful_directional_and_drops_by_default():
    text = nftables.render(_policy("203.0.113.2:8443/tcp"))
    assert "ct state established" not in text  # no blanket accept of whatever is established
    assert text.count("policy drop;") == 3
    assert f"priority {nftables.PRIORITY};" in text and -200 < nftables.PRIORITY < -150
    assert (
        "set out4 { type ipv4_addr . inet_proto . inet_service; flags interval;"
        " elements = { 203.0.113.2/32 . tcp . 8443 } }" in text
    )
    # Own packets leave in the original direction to the service; replies come back from it.
    assert "ct direction original ip daddr . meta l4proto . th dport @out4 accept" in text
    assert "ct direction reply ip saddr . meta l4proto . th sport @out4 accept" in text
    assert "set in4 { type ipv4_addr . inet_proto . inet_service; flags interval; }" in text  # no --allow-in
    assert " 53 " not in text  # DNS closed by default
    assert "ip daddr { 255.255.255.255/32 } udp sport 68 udp dport 67 accept" in text  # DHCP: broadcast only
    related = [ln.strip() for ln in text.splitlines() if "ct state related" in ln]
    assert related and all(
        "ct original ip daddr 203.0.113.2/32 ct original protocol tcp" in ln for ln in related
    )


def test_nft_switches_change_only_what_they_say():
    base = nftables.render(_policy("203.0.113.2"))
    no_dhcp = nftables.render(_policy("203.0.113.2", dhcp=False))
    assert "dport 67" in base and "dport 67" not in no_dhcp
    assert "nd-neighbor-solicit" not in no_dhcp  # no IPv6 peer, no DHCPv6: no ND
    assert "nd-neighbor-solicit" in nftables.render(_policy("2001:db8::1", dhcp=False))
    fwd = nftables.render(_policy("203.0.113.2", forward=True))
    assert f"hook forward priority {nftables.PRIORITY}; policy accept;" in fwd
    dns = nftables.render(
        _policy(
            "203.0.113.2",
            allow_dns=True,
            resolvers=(ipaddress.ip_address("198.51.100.53"), ipaddress.ip_address("2001:db8::53")),
        )
    )
    assert "198.51.100.53/32 . udp . 53, 198.51.100.53/32 . tcp . 53" in dns
    assert "2001:db8::53/128 . udp . 53, 2001:db8::53/128 . tcp . 53" in dns


def test_iptables_rules_are_stateful_end_in_drop_and_jump_first():
    text = iptables.render(_policy("203.0.113.2:8443/tcp", "2001:db8::7"))
    v4, v6 = iptables.split(text)[4], iptables.split(text)[6]
    for part in (v4, v6):
        assert "-I INPUT 1 -j SEALBOX-INPUT" in part and "-I OUTPUT 1 -j SEALBOX-OUTPUT" in part
        assert "-A SEALBOX-INPUT -j DROP" in part and "-A SEALBOX-FORWARD -j DROP" in part
        assert "ESTABLISHED" not in part
    assert (
        "-A SEALBOX-OUTPUT -d 203.0.113.2/32 -p tcp -m tcp --dport 8443"
        " -m conntrack --ctdir ORIGINAL -j ACCEPT" in v4
    )
    assert (
        "-A SEALBOX-INPUT -s 203.0.113.2/32 -p tcp -m tcp --sport 8443 -m conntrack --ctdir REPLY -j ACCEPT"
        in v4
    )
    assert "--ctstate RELATED --ctorigdst 203.0.113.2/32 --ctproto tcp --ctorigdstport 8443" in v4
    assert "2001:db8::7" in v6 and "2001:db8::7" not in v4
    assert "neighbour-solicitation" in v6 and "packet-too-big" in v6


def test_iptables_save_normalisation_ignores_counters_and_empty_tables():
    a = "# c\n*filter\n:INPUT ACCEPT [1:2]\n:OUTPUT ACCEPT [3:4]\nCOMMIT\n"
    b = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n"
    assert iptables.normalize_save(a) == "" == iptables.normalize_save(None)
    assert iptables.normalize_save(b) == "*filter\n:INPUT ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"


def test_windows_plan_matches_expected():
    plan = windows.plan(_policy(*PLAN_ALLOW))
    assert plan.render() == (ASSETS / "windows-plan.txt").read_text()


def test_windows_plan_isolates_by_default_block_policy_not_block_rules():
    plan = windows.plan(_policy(*PLAN_ALLOW))
    assert "-Action Block" not in plan.isolate and "New-NetFirewallRule" in plan.isolate
    assert "-DefaultInboundAction Block -DefaultOutboundAction Block" in plan.isolate
    assert all(
        "-Group 'sealbox'" in ln for ln in plan.isolate.splitlines() if ln.startswith("New-NetFirewallRule")
    )
    assert "AllowLocalFirewallRules" in plan.isolate  # Group Policy can ignore local rules
    assert "-PolicyStore ActiveStore" in plan.status  # effective state, GPO included
    assert "Remove-NetFirewallRule -Group 'sealbox'" in plan.restore


def test_macos_plan_matches_expected():
    plan = macos.plan(_policy(*PLAN_ALLOW))
    assert plan.render() == (ASSETS / "macos-plan.txt").read_text()


def test_macos_plan_uses_its_anchor_enables_pf_kills_states_and_leaves_pf_conf():
    plan = macos.plan(_policy(*PLAN_ALLOW))
    rules = plan.files[macos.RULES]
    assert rules.rstrip().splitlines()[-1] == "block drop quick all"
    assert all(" quick " in ln for ln in rules.splitlines() if not ln.startswith("#"))
    assert "pfctl -a com.apple/com.sealbox -f" in plan.isolate
    assert "pfctl -E" in plan.isolate and "pfctl -k 0.0.0.0/0" in plan.isolate
    assert "pfctl -X" in plan.restore  # releases only our enable reference
    everything = plan.render()
    assert "> /etc/pf.conf" not in everything and "pfctl -f /etc/pf.conf" not in everything
