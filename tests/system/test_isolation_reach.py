"""What isolation lets through, proven in network namespaces on every Linux backend.

The same matrix runs on nftables, iptables-nft and iptables-legacy: outbound only to the allowed
services, inbound only their replies (an IT host or a resolver sending *from* the allowed port
reaches nothing), DHCP only with the lease's server, ICMP errors of the allowed flows (a 200 KB
upload over an MTU-1280 hop completes, v4 and v6), existing flows cut v4 and v6. Documentation
addresses only, in namespaces the tests create (tests/netns.py).
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING

import pytest

from tests.support.env import require, require_root, require_tool
from tests.support.netns import (
    HOST_IT4,
    HOST_IT6,
    HOST_OUT4,
    HOST_OUT6,
    IT4,
    IT6,
    IT_PORT,
    OUT4,
    OUT6,
    OUT_PORT,
    UDP_PORT,
    Lab,
    PathLab,
    can_make_namespaces,
    need_backend,
    ok,
    sh,
)

if TYPE_CHECKING:
    from pathlib import Path

BACKENDS = ["nft", "iptables-nft", "iptables-legacy"]
SSH = 22


def _prerequisites() -> None:
    require_root()
    for tool in ("ip", "nft", "ss", "conntrack"):
        require_tool(tool)
    require(can_make_namespaces(), "cannot create network namespaces here")


@pytest.fixture
def lab(tmp_path: Path):
    _prerequisites()
    with Lab(tmp_path / "state") as lab:
        yield lab


def _isolate(lab: Lab, backend: str, *args: str) -> dict:
    return json.loads(
        ok(lab.sealbox("isolate", "--backend", backend, "--case", "OKC-1", "--json", *args)).stdout
    )


def _spoofed(host4: str, host6: str, sport: int) -> list[str]:
    """Connections *from* an allowed peer port to every service of the workstation."""
    return [
        f"tcp:{host4}:{SSH}@{sport}",
        f"tcp:{host6}:{SSH}@{sport}",
        f"tcp:{host4}:{OUT_PORT}@{sport}",
        f"tcp:{host6}:{OUT_PORT}@{sport}",
        f"udp:{host4}:{UDP_PORT}@{sport}",
        f"udp:{host6}:{UDP_PORT}@{sport}",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_outbound_to_allowed_only_and_no_spoofed_source_port_gets_in(lab: Lab, backend: str):
    need_backend(lab, backend)
    lab.start(lab.host, "serve", str(SSH), str(OUT_PORT), wait_for="serving")  # the workstation's services
    from_it = _spoofed(HOST_IT4, HOST_IT6, IT_PORT) + _spoofed(HOST_IT4, HOST_IT6, 53)
    from_it += [f"tcp:{HOST_IT4}:{SSH}", f"icmp:{HOST_IT4}", f"icmp:{HOST_IT6}"]
    from_out = [*_spoofed(HOST_OUT4, HOST_OUT6, 443), f"tcp:{HOST_OUT6}:{SSH}"]
    outbound = [*lab.everything(), f"udp:{IT4}:53", f"udp:{OUT4}:53", f"udp:{OUT6}:53"]
    assert all(lab.probe(*outbound).values())
    assert all(lab.probe(*from_out, ns=lab.outside).values())

    _isolate(
        lab, backend, "--allow", f"{IT4}:{IT_PORT}/tcp", "--allow", f"[{IT6}]:{IT_PORT}/tcp", "--allow-dns"
    )

    got = lab.probe(*outbound)
    allowed = {f"tcp:{IT4}:{IT_PORT}", f"tcp:{IT6}:{IT_PORT}", f"udp:{IT4}:53"}
    assert {t for t, ok in got.items() if ok} == allowed, got
    got = lab.probe(*from_out, ns=lab.outside)
    assert not any(got.values()), got
    lab.stop(lab.itsrv)  # its ports 8443 and 53 become the source ports of the attack
    got = lab.probe(*from_it, ns=lab.itsrv)
    assert not any(got.values()), got  # IT's host from 8443, the resolver from 53: nothing
    ok(lab.sealbox("restore"))
    # Without isolation the same probes get through: it was the isolation that stopped them.
    got = lab.probe(*from_it, ns=lab.itsrv)
    assert all(got.values()), got


@pytest.mark.parametrize("backend", BACKENDS)
def test_allow_in_opens_only_the_named_port_to_the_named_peer(lab: Lab, backend: str):
    need_backend(lab, backend)
    lab.start(lab.host, "serve", str(SSH), str(OUT_PORT), wait_for="serving")
    record = _isolate(lab, backend, "--allow-in", f"{IT4}:{SSH}/tcp", "--allow-in", f"[{IT6}]:{SSH}/tcp")
    assert [e["port"] for e in record["policy"]["allow_in"]] == [SSH, SSH]
    got = lab.probe(
        f"tcp:{HOST_IT4}:{SSH}", f"tcp:{HOST_IT6}:{SSH}", f"tcp:{HOST_IT4}:{OUT_PORT}", ns=lab.itsrv
    )
    assert got == {
        f"tcp:{HOST_IT4}:{SSH}": True,
        f"tcp:{HOST_IT6}:{SSH}": True,
        f"tcp:{HOST_IT4}:{OUT_PORT}": False,
    }
    assert lab.probe(f"tcp:{HOST_OUT4}:{SSH}", ns=lab.outside) == {f"tcp:{HOST_OUT4}:{SSH}": False}
    # Allowed in is not allowed out: the workstation cannot open a connection to IT's ssh.
    assert lab.probe(f"tcp:{IT4}:{IT_PORT}") == {f"tcp:{IT4}:{IT_PORT}": False}
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dhcp_only_with_the_lease_server(lab: Lab, backend: str):
    need_backend(lab, backend)
    lab.leases_dir.mkdir(parents=True, exist_ok=True)
    (lab.leases_dir / "dhclient.vit.leases").write_text(
        'lease {\n  interface "vit";\n  fixed-address 203.0.113.1;\n'
        "  option dhcp-server-identifier 198.51.100.2;\n}\n"
        'lease {\n  interface "vit";\n  fixed-address 203.0.113.1;\n'
        f"  option dhcp-server-identifier {IT4};\n}}\n",
        encoding="utf-8",
    )
    to_server, to_stranger = f"udp:{IT4}:67@68", f"udp:{OUT4}:67@68"
    assert all(lab.probe(to_server, to_stranger, f"udp:{OUT4}:67").values())
    record = _isolate(lab, backend, "--allow", f"{IT4}:{IT_PORT}/tcp")
    assert record["policy"]["dhcp_servers"] == [IT4]  # the current (last) lease, not an old one
    got = lab.probe(to_server, to_stranger, f"udp:{OUT4}:67", f"udp:{IT4}:{UDP_PORT}@68")
    assert got == {
        to_server: True,
        to_stranger: False,
        f"udp:{OUT4}:67": False,
        f"udp:{IT4}:{UDP_PORT}@68": False,
    }
    ok(lab.sealbox("restore"))
    # No lease known: DHCP may only broadcast; --dhcp-server names one more server.
    (lab.leases_dir / "dhclient.vit.leases").unlink()
    _isolate(lab, backend, "--allow", f"{IT4}:{IT_PORT}/tcp")
    assert lab.probe(to_server, to_stranger) == {to_server: False, to_stranger: False}
    ok(lab.sealbox("restore"))
    _isolate(lab, backend, "--allow", f"{IT4}:{IT_PORT}/tcp", "--dhcp-server", OUT4)
    assert lab.probe(to_server, to_stranger) == {to_server: False, to_stranger: True}
    ok(lab.sealbox("restore"))


def _uploads(lab: PathLab, timeout: float) -> dict[str, str]:
    results: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda a=a: results.__setitem__(a, lab.upload(a, 200 * 1024, timeout)))
        for a in (lab.SERVER4, lab.SERVER6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("backend", BACKENDS)
def test_pmtu_upload_over_a_1280_hop_completes_under_isolation(tmp_path: Path, backend: str):
    _prerequisites()
    with PathLab(tmp_path / "state") as lab:
        need_backend(lab, backend)
        # Control: with the router's ICMP errors dropped, the same upload stalls (the path needs them).
        sh(
            "ip", "netns", "exec", lab.host, "nft", "-f", "-",
            input="table inet control {\n\tchain input {\n\t\ttype filter hook input priority 0;\n"
            "\t\ticmp type destination-unreachable drop\n\t\ticmpv6 type packet-too-big drop\n\t}\n}\n",
        )  # fmt: skip
        assert all(r.startswith("failed") for r in _uploads(lab, 3).values()), "the hop does not need PMTU"
        sh("ip", "netns", "exec", lab.host, "nft", "delete", "table", "inet", "control")
        _isolate(
            lab,
            backend,
            "--allow", f"{lab.SERVER4}:{lab.SERVER_PORT}/tcp",
            "--allow", f"[{lab.SERVER6}]:{lab.SERVER_PORT}/tcp",
        )  # fmt: skip
        assert _uploads(lab, 20) == {lab.SERVER4: f"ok {200 * 1024}", lab.SERVER6: f"ok {200 * 1024}"}
        # Only errors of the allowed flow pass: a ping to the router stays blocked.
        assert lab.probe("icmp:198.51.100.126", "icmp:2001:db8:a::2") == {
            "icmp:198.51.100.126": False,
            "icmp:2001:db8:a::2": False,
        }
        ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_v4_and_v6_tcp_and_udp_flows_are_cut_and_named(lab: Lab, backend: str):
    need_backend(lab, backend)
    doomed = {
        ("tcp", OUT4, OUT_PORT): lab.start(lab.host, "hold", OUT4, str(OUT_PORT), wait_for="connected"),
        ("tcp", OUT6, OUT_PORT): lab.start(lab.host, "hold", OUT6, str(OUT_PORT), wait_for="connected"),
        ("udp", OUT4, UDP_PORT): lab.start(
            lab.host, "hold", OUT4, str(UDP_PORT), "udp", wait_for="connected"
        ),
        ("udp", OUT6, UDP_PORT): lab.start(
            lab.host, "hold", OUT6, str(UDP_PORT), "udp", wait_for="connected"
        ),
        ("tcp", IT6, OUT_PORT): lab.start(lab.host, "hold", IT6, str(OUT_PORT), wait_for="connected"),
    }
    kept = lab.start(lab.host, "hold", IT6, str(IT_PORT), wait_for="connected")
    proc = ok(
        lab.sealbox("isolate", "--backend", backend, "--allow", f"[{IT6}]:{IT_PORT}/tcp", "--case", "C")
    )
    for (proto, peer, port), held in doomed.items():
        held.wait(timeout=5)
        assert held.stdout is not None and held.stdout.read().strip() == "cut 103", (proto, peer)
        shown = f"[{peer}]:{port}" if ":" in peer else f"{peer}:{port}"
        assert any(
            ln.startswith(f"cut: {proto} ") and f"-> {shown}" in ln for ln in proc.stdout.splitlines()
        ), (
            shown,
            proc.stdout,
        )
    assert kept.poll() is None  # the allowed IPv6 connection stays open
    assert "COULD NOT CUT" not in proc.stdout
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_allowed_flow_from_before_isolation_keeps_working_when_the_peer_speaks_first(
    lab: Lab, backend: str
):
    # conntrack was not active before: without sealbox entering the flow in its own direction,
    # the server's packet would arrive first and look like a new inbound connection.
    need_backend(lab, backend)
    port = 9443
    server = lab.start(lab.itsrv, "push", str(port), wait_for="serving")
    held = lab.start(lab.host, "hold", IT6, str(port), wait_for="connected")
    assert server.stdout is not None and server.stdout.readline().strip() == "accepted"
    _isolate(lab, backend, "--allow", f"[{IT6}]:{port}/tcp")
    assert server.stdin is not None
    server.stdin.write("hello\n")
    server.stdin.flush()
    held.wait(timeout=10)
    assert held.stdout is not None and held.stdout.read().strip() == "data"
    ok(lab.sealbox("restore"))


def test_a_flow_that_cannot_be_cut_fails_the_isolation_and_is_named(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # An `ss` that lists but never destroys: the flow survives, and sealbox must say so.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ss"
    real = require_tool("ss")
    fake.write_text(f'#!/bin/sh\ncase " $* " in *" -K "*) exit 0;; esac\nexec {real} "$@"\n')
    fake.chmod(0o755)
    held = lab.start(lab.host, "hold", OUT6, str(OUT_PORT), wait_for="connected")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    proc = lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}/tcp", "--case", "C")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "could not be cut" in last and f"-> [{OUT6}]:{OUT_PORT}" in last, proc.stderr
    assert held.poll() is None
    monkeypatch.undo()
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allow", "0.0.0.0/1", "--allow", "128.0.0.0/1"], "more than one /8"),
        (["--allow", "::/1", "--allow", "8000::/1"], "more than one /32"),
        (["--allow", "2001:db8:2::2:8443"], "write [2001:db8:2::2]:8443"),
        (["--allow", "127.0.0.1:22"], "loopback"),
        (["--allow", "0.0.0.0"], "unspecified"),
        (["--allow", "[ff02::1]:547"], "multicast"),
        (["--allow-in", "255.255.255.255"], "broadcast"),
    ],
)
def test_allow_lists_that_would_not_contain_are_refused_in_one_line(lab: Lab, args: list[str], message: str):
    before = lab.nft("list", "ruleset")
    proc = lab.sealbox("isolate", "--case", "C", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert lab.nft("list", "ruleset") == before
    assert not (lab.state_dir / "isolation.json").exists()


def test_it_standing_channel_comes_from_the_config(lab: Lab):
    lab.isolation_config.write_text(
        f'allow = ["{IT4}:{IT_PORT}/tcp", "[{IT6}]:{IT_PORT}/tcp"]\ncheck = "{IT4}:{IT_PORT}"\n',
        encoding="utf-8",
    )
    record = json.loads(ok(lab.sealbox("isolate", "--case", "C", "--json")).stdout)
    assert record["policy"]["config"] == str(lab.isolation_config)
    assert record["check"]["ok"] and record["check"]["target"] == f"{IT4}:{IT_PORT}"
    got = lab.probe(f"tcp:{IT4}:{IT_PORT}", f"tcp:{IT6}:{IT_PORT}", f"tcp:{OUT4}:{OUT_PORT}")
    assert got == {
        f"tcp:{IT4}:{IT_PORT}": True,
        f"tcp:{IT6}:{IT_PORT}": True,
        f"tcp:{OUT4}:{OUT_PORT}": False,
    }
    ok(lab.sealbox("restore"))
