"""The policy's meaning, decided once: containment checks, intents, leases, isolation.toml,
the respond next step, and the Windows/macOS plans rendering the same intents (no root needed)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from agent.isolation import macos, windows
from agent.isolation.config import load_config, standing_channel
from agent.isolation.model import Policy, parse_allow
from agent.isolation.policy import Limits, check_containment, compose_policy, intents, lease_servers
from manifest.errors import UsageError
from manifest.handover.next_steps import isolate_advice, next_steps

ip = ipaddress.ip_address


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALBOX_ISOLATION_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SEALBOX_DHCP_LEASES", str(tmp_path / "no-leases" / "*"))
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "home"))


def _compose(*allow: str, allow_in: tuple[str, ...] = (), **kw: object) -> Policy:
    return compose_policy(allow=allow, allow_in=allow_in, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("allow", "allow_in", "message"),
    [
        (("0.0.0.0/1", "128.0.0.0/1"), (), "covers 4294967296 IPv4 addresses (1 of the address space)"),
        (("::/1", "8000::/1"), (), "more than one /32"),
        (("10.0.0.0/8", "11.0.0.0/8"), (), "more than one /8"),
        (("10.0.0.0/8",), ("11.0.0.0/8",), "more than one /8"),  # --allow-in counts too
        (("2001:db8::/31",), (), "more than one /32"),
        (("127.0.0.1:22",), (), "loopback"),
        (("0.0.0.0",), (), "the unspecified address"),
        (("[::]:443",), (), "the unspecified address"),
        (("[::1]:443",), (), "loopback"),
        (("224.0.0.251",), (), "multicast"),
        (("[ff02::1:2]",), (), "multicast"),
        (("255.255.255.255",), (), "broadcast"),
        (("::ffff:203.0.113.2",), (), "IPv4-mapped"),
        ((), ("127.0.0.0/8",), "--allow-in 127.0.0.0/8"),
    ],
)
def test_allow_lists_that_do_not_contain_are_refused_with_the_fix(allow, allow_in, message):
    with pytest.raises(UsageError) as err:
        _compose(*allow, allow_in=allow_in)
    assert message in err.value.message and "\n" not in err.value.message


def test_the_widest_allowed_union_is_exactly_one_slash_8_and_is_configurable():
    check_containment(_policy("10.0.0.0/9", "10.128.0.0/9", "2001:db8::/33", "2001:db8:8000::/33"))
    with pytest.raises(UsageError, match="more than one /16"):
        check_containment(_policy("10.0.0.0/15"), Limits(max_union_v4=16))
    overlapping = _policy("10.0.0.0/8", "10.1.0.0/16", "10.2.3.4")  # the union, not the sum
    check_containment(overlapping)


def _policy(*specs: str) -> Policy:
    entries, names = parse_allow(list(specs))
    return Policy(allow=entries, names=names)


@pytest.mark.parametrize(
    ("spec", "fix"),
    [
        (
            "2001:db8:2::2:8443",
            "write [2001:db8:2::2]:8443 for port 8443 of 2001:db8:2::2, or [2001:db8:2::2:8443]",
        ),
        ("2001:db8::1:22/tcp", "[2001:db8::1]:22"),
    ],
)
def test_ambiguous_ipv6_with_port_is_refused_naming_both_readings(spec, fix):
    with pytest.raises(UsageError) as err:
        parse_allow([spec])
    assert "ambiguous" in err.value.message and fix in err.value.message


def test_bracketed_ipv6_forms_are_unambiguous():
    (a,), _ = parse_allow(["[2001:db8:2::2]:8443"])
    (b,), _ = parse_allow(["[2001:db8:2::2:8443]"])
    (c,), _ = parse_allow(["2001:db8::7"])  # the last group cannot be a port: nothing to refuse
    assert (str(a.network), a.port) == ("2001:db8:2::2/128", 8443)
    assert (str(b.network), b.port) == ("2001:db8:2::2:8443/128", None)
    assert (str(c.network), c.port) == ("2001:db8::7/128", None)


def test_intents_are_directional_a_peer_port_opens_nothing_inbound():
    p = _compose("203.0.113.2:8443/tcp", "[2001:db8:1::2]:8443", allow_in=("198.51.100.7:22/tcp",))
    it = intents(p)
    assert it.permits("out", ip("203.0.113.2"), "tcp", 8443)
    assert not it.permits("in", ip("203.0.113.2"), "tcp", 8443)  # IT connecting from/to 8443
    assert not it.permits("in", ip("203.0.113.2"), "tcp", 22)
    assert not it.permits("out", ip("203.0.113.2"), "udp", 8443)
    assert it.permits("out", ip("2001:db8:1::2"), "udp", 8443)
    assert it.permits("in", ip("198.51.100.7"), "tcp", 22)
    assert not it.permits("out", ip("198.51.100.7"), "tcp", 22)
    assert not it.permits("out", ip("198.51.100.8"), "tcp", 443)
    # Policy.permits (the connection cutter's judgement) is the same judgement.
    assert p.permits(ip("203.0.113.2"), "tcp", 8443, local_port=40000)
    assert not p.permits(ip("203.0.113.2"), "tcp", 40000, local_port=22, inbound=True)
    assert p.permits(ip("198.51.100.7"), "tcp", 50000, local_port=22, inbound=True)


def test_dns_is_an_outbound_flow_to_each_resolver_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver 198.51.100.53\n")
    monkeypatch.setenv("SEALBOX_RESOLV_CONF", str(conf))
    it = intents(_compose("203.0.113.2:8443/tcp", allow_dns=True))
    assert it.permits("out", ip("198.51.100.53"), "udp", 53)
    assert not it.permits("in", ip("198.51.100.53"), "tcp", 22)  # the resolver from port 53
    conf.write_text("nameserver 127.0.0.53\n")
    with pytest.raises(UsageError, match="only name servers configured are local"):
        _compose("203.0.113.2:8443/tcp", allow_dns=True)


def test_dhcp_is_the_exchange_with_the_current_lease_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    leases = tmp_path / "leases"
    leases.mkdir()
    (leases / "dhclient.eth0.leases").write_text(
        "lease {\n option dhcp-server-identifier 198.51.100.1;\n}\n"
        "lease {\n option dhcp-server-identifier 203.0.113.1;\n}\n"
    )
    (leases / "2").write_text("# networkd\nADDRESS=203.0.113.9\nSERVER_ADDRESS=203.0.113.254\n")
    monkeypatch.setenv("SEALBOX_DHCP_LEASES", str(leases / "*"))
    assert lease_servers() == (ip("203.0.113.254"), ip("203.0.113.1"))
    p = _compose("203.0.113.2:8443/tcp", dhcp_servers=("2001:db8::67",))
    (v4, v6) = intents(p).dhcp
    assert [str(n) for n in v4.send_to] == ["255.255.255.255/32", "203.0.113.254/32", "203.0.113.1/32"]
    assert [str(n) for n in v4.hear_from] == ["203.0.113.254/32", "203.0.113.1/32"]
    assert [str(n) for n in v6.send_to] == ["ff02::1:2/128", "2001:db8::67/128"]
    assert (v4.client_port, v4.server_port, v6.client_port, v6.server_port) == (68, 67, 546, 547)
    it = intents(p)
    assert it.dhcp_exchange(ip("203.0.113.1"), 68, 67) and it.dhcp_exchange(ip("255.255.255.255"), 68, 67)
    assert not it.dhcp_exchange(ip("198.51.100.2"), 68, 67)  # a stranger is not a DHCP server
    assert not it.dhcp_exchange(ip("203.0.113.1"), 40000, 67)
    assert intents(_compose("203.0.113.2", dhcp=False)).dhcp == ()
    with pytest.raises(UsageError, match=re.escape("--dhcp-server 224.0.0.1")):
        _compose("203.0.113.2", dhcp_servers=("224.0.0.1",))


def test_config_is_it_standing_channel_merged_into_every_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tmp_path / "isolation.toml"
    cfg.write_text(
        'allow = ["203.0.113.10:8443/tcp"]\nallow_in = ["203.0.113.10:22/tcp"]\n'
        'resolvers = ["203.0.113.53"]\ncheck = "203.0.113.10:8443"\nmax_union_v4 = 16\n'
    )
    monkeypatch.setenv("SEALBOX_ISOLATION_CONFIG", str(cfg))
    p = _compose("198.51.100.7:514/udp")
    assert [e.spec for e in p.allow] == ["203.0.113.10:8443/tcp", "198.51.100.7:514/udp"]
    assert [e.spec for e in p.allow_in] == ["203.0.113.10:22/tcp"]
    assert p.resolvers == (ip("203.0.113.53"),) and p.config == str(cfg)
    assert p.first_tcp_peer() == ("203.0.113.10", 8443)
    with pytest.raises(UsageError, match="more than one /16"):
        _compose("10.0.0.0/15")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('allow = "203.0.113.2"', "allow must be a list of strings"),
        ("alow = []", "unknown key 'alow'"),
        ("max_union_v4 = 0", "max_union_v4 must be a prefix length"),
        ("allow_dns = 1", "allow_dns must be true or false"),
        ("allow = [", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str):
    cfg = tmp_path / "isolation.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        load_config(cfg)


def test_config_in_the_key_store_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SEALBOX_ISOLATION_CONFIG")
    home = tmp_path / "home"
    home.mkdir()
    (home / "isolation.toml").write_text('allow = ["203.0.113.10:8443/tcp"]\n')
    if Path("/etc/sealbox/isolation.toml").exists():
        pytest.skip("this machine has a system-wide isolation.toml, which takes precedence")
    assert load_config().path == home / "isolation.toml"


def test_next_step_isolate_keeps_it_reachable_and_names_the_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    bare = re.compile(r"`sealbox isolate --case OKC-1`")
    # no config: IT's address must be given
    steps = next_steps(tmp_path / "B", "OKC-1", None, True, standing_channel())
    detail = steps[0].detail
    assert "--case OKC-1 --allow ADDRESS:PORT/tcp --check ADDRESS:PORT" in detail and not bare.search(detail)
    cfg = tmp_path / "isolation.toml"
    cfg.write_text('allow = ["203.0.113.10:8443/tcp"]\n')
    monkeypatch.setenv("SEALBOX_ISOLATION_CONFIG", str(cfg))
    detail = next_steps(tmp_path / "B", "OKC-1", None, True, standing_channel())[0].detail
    assert f"`sealbox isolate --case OKC-1 --config '{cfg}'" in detail and not bare.search(detail)
    assert isolate_advice("C", None) != isolate_advice("C", cfg)


PLAN_POLICY = ("203.0.113.2:8443/tcp", "2001:db8:1::/64")


def test_windows_plan_renders_the_same_intents_ends_connections_and_names_gpo_overrides():
    plan = windows.plan(
        _compose(*PLAN_POLICY, allow_in=("203.0.113.2:3389/tcp",), dhcp_servers=("203.0.113.1",))
    )
    rules = [ln for ln in plan.isolate.splitlines() if ln.startswith("New-NetFirewallRule")]
    inbound = [r for r in rules if "-Direction Inbound" in r]
    # Inbound only: the --allow-in port, the DHCP server's answers, PMTU errors and ND. Never a
    # rule that lets the allowed peer's *port* in.
    assert any("-RemoteAddress 203.0.113.2/32 -Protocol TCP -LocalPort 3389" in r for r in inbound)
    assert not any("-RemotePort 8443" in r for r in inbound)
    assert any(
        "-RemoteAddress 203.0.113.1/32 -Protocol UDP -RemotePort 67 -LocalPort 68" in r for r in inbound
    )
    assert any(
        "-RemoteAddress 255.255.255.255/32,203.0.113.1/32 -Protocol UDP -RemotePort 67" in r for r in rules
    )
    assert "SetTcpEntry" in plan.isolate and "$row.State = 12" in plan.isolate  # ended, not listed
    assert "could not end" in plan.isolate  # a survivor fails the script, named
    assert "-IcmpType 3:4" in plan.isolate and "-IcmpType 2" in plan.isolate
    notes = " ".join(plan.notes)
    assert "Group Policy can override" in notes and "Linux" in notes


def test_macos_plan_renders_the_same_intents():
    rules = macos.ruleset(_compose(*PLAN_POLICY, allow_in=("203.0.113.2:22/tcp",)))
    assert "pass out quick inet proto tcp from any to 203.0.113.2/32 port 8443 flags any keep state" in rules
    assert "pass in quick inet proto tcp from 203.0.113.2/32 to any port 22 flags any keep state" in rules
    assert "pass in quick inet6 from 2001:db8:1::/64" not in rules  # a whole-host --allow is outbound only
    assert "to { 255.255.255.255/32 } port 67 no state" in rules
    assert rules.rstrip().endswith("block drop quick all")
