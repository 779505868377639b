"""Exact restore on every backend, against a complex ruleset that was there before.

The host namespace gets what a real server has: native nftables tables with sets, maps, a verdict
map, a named counter and NAT; Docker-style chains made with iptables-nft (v4 and v6, only the
FORWARD built-in chain, so that sealbox's jumps create the others); and, for the legacy backend,
the same Docker-style chains in legacy x_tables. After isolate + restore every view of the
ruleset must be byte-identical to before except for packet/byte counters, and sealbox must say
so; traffic through the allowed channel changes counters on purpose, which is not drift.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.env import require_tool
from tests.support.netns import (
    IT4,
    IT_PORT,
    LAB_CASE,
    OUT4,
    OUT_PORT,
    Lab,
    SharedLab,
    ok,
    sh,
    shared_lab,
)

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

NATIVE = """table ip natlab {
\tmap portmap {
\t\ttype inet_service : ipv4_addr . inet_service; elements = { 8081 : 198.51.100.2 . 8080 }
\t}
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tdnat ip to tcp dport map @portmap
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 198.51.100.128/25 oifname != "vout" masquerade
\t}
}
table inet filterlab {
\tset blocked4 { type ipv4_addr; flags interval; elements = { 203.0.113.200/29 } }
\tset blocked6 { type ipv6_addr; elements = { 2001:db8:9::1 } }
\tmap by_port { type inet_service : verdict; elements = { 22 : jump ssh_in, 9999 : drop } }
\tcounter outgoing { }
\tchain ssh_in { counter accept; }
\tchain input {
\t\ttype filter hook input priority 0; policy accept;
\t\ttcp dport vmap @by_port
\t\tip saddr @blocked4 drop
\t}
\tchain output {
\t\ttype filter hook output priority 0; policy accept;
\t\tcounter name "outgoing"
\t\tip daddr @blocked4 drop
\t\tip6 daddr @blocked6 drop
\t\tcounter
\t}
\tchain user { return; }
\tchain forward {
\t\ttype filter hook forward priority 0; policy accept;
\t\tjump user
\t\tct state established,related accept
\t}
}
"""

# Docker's chains, added rule by rule as dockerd does (only FORWARD of the built-in chains).
DOCKER = [
    ["-N", "DOCKER"],
    ["-N", "DOCKER-USER"],
    ["-N", "DOCKER-ISOLATION-STAGE-1"],
    ["-A", "DOCKER-USER", "-j", "RETURN"],
    ["-A", "DOCKER-ISOLATION-STAGE-1", "-j", "RETURN"],
    ["-A", "FORWARD", "-j", "DOCKER-USER"],
    ["-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"],
    ["-A", "FORWARD", "-o", "vout", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ["-A", "FORWARD", "-o", "vout", "-j", "DOCKER"],
]
DOCKER_NAT = [
    ["-t", "nat", "-N", "DOCKER"],
    ["-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"],
    [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "!",
        "-d",
        "127.0.0.0/8",
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "-j",
        "DOCKER",
    ],
    ["-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.128/25", "!", "-o", "vout", "-j", "MASQUERADE"],
    [
        "-t",
        "nat",
        "-A",
        "DOCKER",
        "-p",
        "tcp",
        "--dport",
        "8082",
        "-j",
        "DNAT",
        "--to-destination",
        f"{OUT4}:80",
    ],
]
_COUNTERS = re.compile(r"packets \d+ bytes \d+|\[\d+:\d+\]")


@pytest.fixture(scope="module")
def labs():
    yield from shared_lab("iptables-nft", "ip6tables-nft")


@pytest.fixture
def lab(labs: SharedLab, tmp_path: Path) -> Lab:
    """The module's lab with an empty ruleset (after the legacy case: a new one)."""
    return labs.fresh(tmp_path / "state")


def _build(lab: Lab, legacy: bool) -> None:
    sh("ip", "netns", "exec", lab.host, "nft", "-f", "-", input=NATIVE)
    variants = ["nft", "legacy"] if legacy else ["nft"]
    for variant in variants:
        for rule in DOCKER:
            ok(lab.run(lab.host, f"iptables-{variant}", *rule))
            ok(lab.run(lab.host, f"ip6tables-{variant}", *rule))
        for rule in DOCKER_NAT:
            ok(lab.run(lab.host, f"iptables-{variant}", *rule))


def _views(lab: Lab, legacy: bool) -> dict[str, str]:
    """Every view of the ruleset, read by the test itself with the real tools."""
    out = {"nft": lab.nft("list", "ruleset")}
    if legacy:
        for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
            text = ok(lab.run(lab.host, tool)).stdout
            out[tool] = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    return out


def _no_counters(views: dict[str, str]) -> dict[str, str]:
    return {k: _COUNTERS.sub("COUNTERS", v) for k, v in views.items()}


def _tool_dir(tmp_path: Path, without: str) -> Path:
    """A PATH directory with the firewall tools sealbox uses, except `without`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "nft",
        "ss",
        "iptables",
        "iptables-save",
        "iptables-restore",
        "ip6tables",
        "ip6tables-save",
        "ip6tables-restore",
        "iptables-nft",
        "iptables-nft-save",
        "iptables-nft-restore",
        "ip6tables-nft",
        "ip6tables-nft-save",
        "ip6tables-nft-restore",
        "iptables-legacy-save",
        "ip6tables-legacy-save",
        "conntrack",
        "sh",
        "grep",
    ):
        found = shutil.which(tool)
        if found and tool != without:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


CASES = ["nft", "iptables-nft", "iptables-legacy", "fallback-without-nft"]


@pytest.mark.parametrize("case", CASES)
def test_restore_is_byte_identical_modulo_counters_on_a_complex_ruleset(lab: Lab, case: str, tmp_path: Path):
    legacy = case == "iptables-legacy"
    if legacy:
        for tool in ("iptables-legacy", "ip6tables-legacy", "iptables-legacy-restore"):
            require_tool(tool)
        probe = lab.run(lab.host, "iptables-legacy", "-S")
        if probe.returncode != 0:  # optional in modern kernels; only skip here
            pytest.skip(f"kernel has no legacy iptables: {probe.stderr.strip()}")
    _build(lab, legacy)
    before = _views(lab, legacy)
    assert "table ip filter" in before["nft"] and "chain INPUT" not in before["nft"]  # Docker-style
    lab.ensure_key()
    prefix: list[str] = []
    backend = "auto" if case == "fallback-without-nft" else case
    if case == "fallback-without-nft":
        prefix = ["env", f"PATH={_tool_dir(tmp_path, without='nft')}"]

    def sealbox(*args: str) -> subprocess.CompletedProcess[str]:
        return lab.run(lab.host, *prefix, sys.executable, "-m", "agent", *args)

    record = json.loads(
        ok(
            sealbox(
                "isolate", "--allow", f"{IT4}:{IT_PORT}", "--backend", backend, "--case", LAB_CASE, "--json"
            )
        ).stdout
    )
    assert record["backend"] == ("iptables" if backend == "auto" else backend)
    result = lab.probe(f"tcp:{IT4}:{IT_PORT}", f"tcp:{OUT4}:{OUT_PORT}")
    assert result == {f"tcp:{IT4}:{IT_PORT}": True, f"tcp:{OUT4}:{OUT_PORT}": False}
    assert _no_counters(_views(lab, legacy)) != _no_counters(before)  # our rules are in there

    restored = json.loads(ok(sealbox("restore", "--json")).stdout)
    after = _views(lab, legacy)
    assert after != before, "the allowed traffic should have moved some counters"
    assert _no_counters(after) == _no_counters(before)
    assert restored["identical"] is True and restored["drift"] == [] and restored["notes"] == []
    if case in ("iptables-nft", "fallback-without-nft"):
        # The jumps created INPUT and OUTPUT in ip and ip6 filter; they are gone again.
        assert sorted(restored["empty_tables_removed"]) == sorted(
            f"{fam} filter {c}" for fam in ("ip", "ip6") for c in ("INPUT", "OUTPUT")
        )
    text = ok(sealbox("isolation", "status"))
    assert text.stdout.splitlines()[0] == "not isolated"


@pytest.mark.parametrize("backend", ["iptables-nft", "fallback-without-nft"])
def test_iptables_nft_on_an_empty_host_leaves_no_table_behind(lab: Lab, backend: str, tmp_path: Path):
    before = lab.nft("list", "ruleset")
    assert before.strip() == ""
    lab.ensure_key()
    prefix = ["env", f"PATH={_tool_dir(tmp_path, without='nft')}"] if backend.startswith("fallback") else []
    name = "auto" if prefix else backend
    argv = [*prefix, sys.executable, "-m", "agent"]
    ok(
        lab.run(
            lab.host, *argv, "isolate", "--allow", f"{IT4}:{IT_PORT}", "--backend", name, "--case", LAB_CASE
        )
    )
    assert "table ip filter" in lab.nft("list", "ruleset")
    restored = ok(lab.run(lab.host, *argv, "restore"))
    assert lab.nft("list", "ruleset") == before
    assert "table ip filter" in restored.stdout and "table ip6 filter" in restored.stdout
    assert "ruleset identical to the snapshot taken before isolation" in restored.stdout


def test_drift_is_reported_honestly_and_counters_alone_are_not_drift(lab: Lab):
    _build(lab, legacy=False)
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    assert lab.probe(f"tcp:{IT4}:{IT_PORT}")[f"tcp:{IT4}:{IT_PORT}"] is True  # moves counters
    ok(lab.run(lab.host, "iptables-nft", "-A", "DOCKER", "-j", "RETURN"))  # someone else's change
    restored = json.loads(ok(lab.sealbox("restore", "--json")).stdout)
    assert restored["identical"] is False
    assert [d["source"] for d in restored["drift"]] == ["nft list ruleset"]
    changed = [ln for ln in restored["drift"][0]["diff"] if ln.startswith(("+", "-"))]
    assert changed[2:] == ["+\t\tcounter packets 0 bytes 0 return"], changed  # only that rule
    text = ok(lab.sealbox("isolation", "status"))
    assert text.stdout.splitlines()[0] == "not isolated"
