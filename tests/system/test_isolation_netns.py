"""Isolation for real, inside network namespaces the tests build (never the machine's own).

`host` runs sealbox; `itsrv` is IT's server (allowed), `outside` is everything else.
Each test gets its own namespaces, state directory and unit directory (see tests/netns.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.env import require, require_root, require_tool
from tests.support.netns import (
    HOST_OUT4,
    IT4,
    IT6,
    IT_PORT,
    LAB_CASE,
    OUT4,
    OUT6,
    OUT_PORT,
    UDP_PORT,
    Lab,
    SharedLab,
    need_backend,
    ok,
    sealed_bundle_for,
    sh,
    shared_lab,
)

FOREIGN_TABLE = """table ip foreign {
\tset blocked { type ipv4_addr; elements = { 198.51.100.77 } }
\tchain out { type filter hook output priority 0; policy accept; ip daddr @blocked drop; }
}
"""
BACKENDS = ["nft", "iptables", "iptables-legacy"]
REQUIRED_BACKENDS = ["nft", "iptables"]  # legacy x_tables is exercised by the main tests only


@pytest.fixture(scope="module")
def labs():
    yield from shared_lab("setpriv")


@pytest.fixture
def lab(labs: SharedLab, tmp_path: Path) -> Lab:
    """The module's lab, as fresh as a new one (a new one after a test changed its routes)."""
    return labs.fresh(tmp_path / "state")


def _status(lab: Lab) -> tuple[str, int]:
    proc = lab.sealbox("isolation", "status", "--json")
    return json.loads(proc.stdout)["status"], proc.returncode


def _ipt_save(lab: Lab, backend: str) -> str:
    if backend == "nft":
        return ""
    suffix = backend.removeprefix("iptables")
    out = []
    for tool in ("iptables", "ip6tables"):
        text = ok(lab.run(lab.host, f"{tool}{suffix}-save")).stdout
        lines = [re.sub(r" \[\d+:\d+\]$", "", ln) for ln in text.splitlines() if not ln.startswith("#")]
        # A table with only built-in chains, policy ACCEPT and no rules is the same as none:
        # legacy iptables shows it once its kernel module has been used.
        tables = "\n".join(lines).split("COMMIT")
        empty = re.compile(r"^\s*\*\w+(\n:[A-Z]+ ACCEPT)*\s*$")
        out.append("COMMIT".join(t for t in tables if not empty.match(t)))
    return "\n".join(out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_isolate_keeps_only_allowed_channel_and_restore_is_exact(lab: Lab, backend: str):
    need_backend(lab, backend)
    sh("ip", "netns", "exec", lab.host, "nft", "-f", "-", input=FOREIGN_TABLE)
    before = lab.nft("list", "ruleset")
    foreign_before = lab.nft("list", "table", "ip", "foreign")
    ipt_before = _ipt_save(lab, backend) if backend == "iptables-legacy" else ""
    held = lab.start(lab.host, "hold", OUT4, str(OUT_PORT), wait_for="connected")

    proc = ok(
        lab.sealbox(
            "isolate",
            "--allow",
            f"{IT4}:{IT_PORT}/tcp",
            "--backend",
            backend,
            "--reason",
            "suspected exfiltration",
            "--case",
            "OKC-2026-0042",
            "--json",
        )
    )
    record = json.loads(proc.stdout)

    # The connection opened before isolation is cut at once, and reported.
    held.wait(timeout=5)
    assert held.stdout is not None and held.stdout.read().strip() == "cut 103"  # ECONNABORTED
    killed = [
        c
        for c in record["killed_connections"]
        if (c["peer"], c["peer_port"]) == (OUT4, OUT_PORT) and c["state"] == "ESTAB"
    ]
    assert killed and all(c["killed"] for c in killed), record["killed_connections"]

    result = lab.probe(*lab.everything())
    assert result.pop(f"tcp:{IT4}:{IT_PORT}") is True
    assert not any(result.values()), result  # TCP, UDP, ICMP, IPv6 elsewhere: all blocked
    assert lab.nft("list", "table", "ip", "foreign") == foreign_before
    assert "nft table ip foreign" in record["other_firewalls"]
    assert _status(lab) == ("isolated", 0)

    state_file = lab.state_dir / "isolation.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    saved = json.loads(state_file.read_text())
    assert saved["reason"] == "suspected exfiltration" and saved["case"] == "OKC-2026-0042"
    assert saved["operator"]["uid"] == 0
    assert saved["snapshot_before"]["views"]["nft list ruleset"] == before
    assert "nftables" in saved["snapshot_before"]["nft_json"]
    assert hashlib.sha256(saved["ruleset"].encode()).hexdigest() == saved["ruleset_sha256"]
    assert [e["network"] for e in saved["policy"]["allow"]] == [f"{IT4}/32"]

    restored = ok(lab.sealbox("restore", "--json"))
    assert json.loads(restored.stdout)["drift"] == []
    assert json.loads(restored.stdout)["identical"] is True
    assert all(lab.probe(*lab.everything()).values())
    assert lab.nft("list", "ruleset") == before  # byte-identical
    if backend == "iptables-legacy":
        assert _ipt_save(lab, backend) == ipt_before
    assert _status(lab) == ("not isolated", 0)
    assert not state_file.exists()
    again = ok(lab.sealbox("restore"))
    assert "not isolated: nothing to restore" in again.stdout


@pytest.mark.parametrize("backend", REQUIRED_BACKENDS)
def test_check_to_unreachable_server_rolls_back(lab: Lab, backend: str):
    need_backend(lab, backend)
    before = lab.nft("list", "ruleset")
    proc = lab.sealbox(
        "isolate",
        "--allow",
        f"{IT4}:{IT_PORT}",
        "--backend",
        backend,
        "--check",
        f"{OUT4}:{OUT_PORT}",
        "--check-timeout",
        "1",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "isolation rolled back" in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert lab.nft("list", "ruleset") == before
    assert all(lab.probe(*lab.everything()).values())
    assert _status(lab) == ("not isolated", 0)
    log = (lab.state_dir / "isolation-log.jsonl").read_text().splitlines()
    assert [json.loads(x)["action"] for x in log] == ["isolate", "rollback"]


def test_check_failure_with_no_rollback_stays_isolated(lab: Lab):
    proc = lab.sealbox(
        "isolate",
        "--allow",
        f"{IT4}:{IT_PORT}",
        "--check",
        f"{IT4}:{UDP_PORT}",
        "--check-timeout",
        "1",
        "--no-rollback",
    )
    assert proc.returncode == 1 and "isolation kept" in proc.stderr
    assert _status(lab) == ("isolated", 0)
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_allowed_ipv6_peer_works_through_neighbor_discovery(lab: Lab, backend: str):
    need_backend(lab, backend)
    sh("ip", "-n", lab.host, "neigh", "flush", "all")
    ok(lab.sealbox("isolate", "--allow", f"[{IT6}]:{IT_PORT}", "--backend", backend))
    result = lab.probe(
        f"tcp:{IT6}:{IT_PORT}",
        f"tcp:{IT4}:{IT_PORT}",
        f"tcp:{OUT6}:{OUT_PORT}",
        f"icmp:{OUT6}",
        f"udp:{OUT6}:{UDP_PORT}",
    )
    assert result == {
        f"tcp:{IT6}:{IT_PORT}": True,
        f"tcp:{IT4}:{IT_PORT}": False,
        f"tcp:{OUT6}:{OUT_PORT}": False,
        f"icmp:{OUT6}": False,
        f"udp:{OUT6}:{UDP_PORT}": False,
    }
    neigh = sh("ip", "-n", lab.host, "-6", "neigh", "show", IT6).stdout
    assert "lladdr" in neigh, neigh  # resolved by neighbor discovery under isolation
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", REQUIRED_BACKENDS)
def test_status_partial_after_a_chain_is_deleted(lab: Lab, backend: str):
    need_backend(lab, backend)
    before = lab.nft("list", "ruleset")
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--backend", backend))
    if backend == "nft":
        lab.nft("delete", "chain", "inet", "sealbox", "forward")
    else:
        ipt = "iptables" + backend.removeprefix("iptables")
        for args in (
            ["-D", "FORWARD", "-j", "SEALBOX-FORWARD"],
            ["-F", "SEALBOX-FORWARD"],
            ["-X", "SEALBOX-FORWARD"],
        ):
            ok(lab.run(lab.host, ipt, *args))
    proc = lab.sealbox("isolation", "status")
    assert proc.returncode == 1 and proc.stdout.splitlines()[0] == "partial", proc.stdout
    ok(lab.sealbox("restore"))
    assert lab.nft("list", "ruleset") == before
    assert _status(lab) == ("not isolated", 0)


def test_status_partial_when_a_rule_is_added(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    lab.nft("insert", "rule", "inet", "sealbox", "output", "accept")
    assert _status(lab) == ("partial", 1)
    assert lab.probe(f"tcp:{OUT4}:{OUT_PORT}")[f"tcp:{OUT4}:{OUT_PORT}"] is False  # input drops
    ok(lab.sealbox("restore"))


def test_status_unknown_when_rules_exist_without_a_record(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    moved = lab.state_dir / "isolation.json"
    moved.rename(lab.state_dir / "elsewhere.json")
    assert _status(lab) == ("unknown", 1)
    (lab.state_dir / "elsewhere.json").rename(moved)
    ok(lab.sealbox("restore"))


def test_needs_root_exits_2_with_one_line(lab: Lab):
    before = lab.nft("list", "ruleset")
    for args in (["isolate", "--allow", f"{IT4}:{IT_PORT}"], ["restore"], ["isolation", "status"]):
        proc = lab.sealbox(*args, user=True)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "needs root" in lines[0], proc.stderr
    assert lab.nft("list", "ruleset") == before


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_dry_run_prints_checked_rules_and_changes_nothing(lab: Lab, backend: str):
    need_backend(lab, backend)
    before = lab.nft("list", "ruleset")
    ipt_before = _ipt_save(lab, backend)
    proc = ok(lab.sealbox("isolate", "--dry-run", "--allow", f"{IT4}:{IT_PORT}", "--backend", backend))
    expected = "table inet sealbox {" if backend == "nft" else "-A SEALBOX-OUTPUT -d"
    assert expected in proc.stdout and "check passed; nothing was changed" in proc.stdout
    assert lab.nft("list", "ruleset") == before
    assert _ipt_save(lab, backend) == ipt_before
    assert not (lab.state_dir / "isolation.json").exists()
    assert all(lab.probe(*lab.everything()).values())


def test_dry_run_rejects_a_ruleset_the_kernel_refuses(lab: Lab):
    # A /0 is refused by sealbox itself; a bad prefix never reaches the kernel either.
    proc = lab.sealbox("isolate", "--dry-run", "--allow", "0.0.0.0/0")
    assert proc.returncode == 2 and "not isolation" in proc.stderr


def test_unresolvable_name_refuses_isolation(lab: Lab):
    before = lab.nft("list", "ruleset")
    proc = lab.sealbox("isolate", "--allow", "no-such-host.invalid:443", "--check-timeout", "2")
    assert proc.returncode == 2 and "does not resolve" in proc.stderr, proc.stderr
    assert lab.nft("list", "ruleset") == before
    assert not (lab.state_dir / "isolation.json").exists()


def test_allow_dns_opens_port_53_to_configured_resolvers_only(lab: Lab):
    ok(lab.sealbox("isolate", "--allow-dns", "--allow", f"{IT4}:{IT_PORT}"))
    result = lab.probe(f"udp:{IT4}:53", f"udp:{OUT4}:53", f"udp:{IT4}:{UDP_PORT}")
    assert result == {f"udp:{IT4}:53": True, f"udp:{OUT4}:53": False, f"udp:{IT4}:{UDP_PORT}": False}
    ok(lab.sealbox("restore"))
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    assert lab.probe(f"udp:{IT4}:53") == {f"udp:{IT4}:53": False}  # closed by default
    ok(lab.sealbox("restore"))


def test_forwarding_blocked_unless_allowed(lab: Lab):
    sh("ip", "netns", "exec", lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "-n", lab.itsrv, "route", "add", "198.51.100.0/24", "via", "203.0.113.1")
    sh("ip", "-n", lab.outside, "route", "add", "203.0.113.0/24", "via", HOST_OUT4)
    target = f"tcp:{OUT4}:{OUT_PORT}"
    assert lab.probe(target, ns=lab.itsrv)[target] is True
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    assert lab.probe(target, ns=lab.itsrv)[target] is False
    ok(lab.sealbox("restore"))
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--allow-forward"))
    assert lab.probe(target, ns=lab.itsrv)[target] is True
    ok(lab.sealbox("restore"))


def test_expire_restores_automatically(lab: Lab):
    before = lab.nft("list", "ruleset")
    record = json.loads(
        ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--expire", "5s", "--json")).stdout
    )
    pid = record["expire"]["helper_pid"]
    # The helper runs inside the test namespace, not the machine's.
    assert str(pid) in sh("ip", "netns", "pids", lab.host).stdout.split()
    state = _status(lab)
    if time.time() < record["expire"]["at_ns"] / 1e9:  # answered before the expiry time
        assert state == ("isolated", 0)
    deadline = time.monotonic() + 20
    while _status(lab)[0] != "not isolated":
        assert time.monotonic() < deadline, "isolation did not expire"
        time.sleep(0.3)
    assert lab.nft("list", "ruleset") == before
    assert all(lab.probe(*lab.everything()).values())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and "expire-helper" in Path(
        f"/proc/{pid}/cmdline"
    ).read_bytes().decode(errors="replace"):
        assert time.monotonic() < deadline, "expiry helper did not end"
        time.sleep(0.1)


def test_restore_stops_a_pending_expiry_helper(lab: Lab):
    record = json.loads(
        ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--expire", "1h", "--json")).stdout
    )
    pid = record["expire"]["helper_pid"]
    assert json.loads(ok(lab.sealbox("restore", "--json")).stdout)["expiry_helper_stopped"]
    assert str(pid) not in sh("ip", "netns", "pids", lab.host).stdout.split()


def _boot(lab: Lab, fallback_only: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the unit's command in `host` with only the unit's environment (a "reboot")."""
    argv, env = lab.boot_unit()
    if fallback_only:  # sealbox itself cannot run at boot: the unit must still isolate
        env["PYTHONPATH"] = "/nonexistent"
        argv = [*argv[:2], argv[2].replace(sys.executable, "/bin/false", 1)]
    return lab.run(
        lab.host,
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        *[f"{k}={v}" for k, v in env.items()],
        *argv,
    )


def test_persist_installs_a_boot_unit_that_reapplies_until_restore(lab: Lab):
    record = json.loads(
        ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--persist", "--json")).stdout
    )
    unit = lab.systemd_dir / "sealbox-isolation.service"
    assert record["persist"]["unit"] == str(unit)
    text = unit.read_text()
    assert "Before=network-pre.target" in text and "DefaultDependencies=no" in text
    link = lab.systemd_dir / "sysinit.target.wants" / "sealbox-isolation.service"
    assert link.is_symlink() and link.resolve() == unit
    argv, env = lab.boot_unit()
    assert argv[:2] == ["/bin/sh", "-c"] and "-m agent isolation boot ||" in argv[2]
    assert f"/usr/sbin/nft -f {lab.state_dir}/isolation.nft" in argv[2]
    assert env["SEALBOX_STATE_DIR"] == str(lab.state_dir)
    # "Reboot": the table is gone; the unit brings exactly the same rules back, also when
    # sealbox itself cannot run (it falls back to loading the rules file), and running it
    # twice is harmless.
    for fallback_only in (False, False, True, True):
        lab.nft("delete", "table", "inet", "sealbox")
        assert _status(lab) == ("not isolated", 1)
        ok(_boot(lab, fallback_only))
        ok(_boot(lab, fallback_only))
        assert _status(lab) == ("isolated", 0)
    ok(lab.sealbox("restore"))
    assert not unit.exists() and not link.is_symlink() and not (lab.state_dir / "isolation.nft").exists()


def test_json_status_names_operator_allow_list_and_hash(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", f"{IT4}/32:{IT_PORT}/tcp", "--reason", "contain"))
    data = json.loads(lab.sealbox("isolation", "status", "--json").stdout)
    assert data["status"] == "isolated" and data["reason"] == "contain"
    assert data["allow"] == [f"{IT4}/32:{IT_PORT}/tcp"] and len(data["ruleset_sha256"]) == 64
    assert data["operator"]["uid"] == 0
    ok(lab.sealbox("restore"))


def test_isolating_twice_is_refused(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    proc = lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}")
    assert proc.returncode == 1 and "already on record" in proc.stderr
    ok(lab.sealbox("restore"))


def test_restore_reports_drift_without_touching_others_rules(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}"))
    sh("ip", "netns", "exec", lab.host, "nft", "-f", "-", input=FOREIGN_TABLE)
    data = json.loads(ok(lab.sealbox("restore", "--json")).stdout)
    assert [f["source"] for f in data["drift"]] == ["nft list ruleset"]
    assert any("+table ip foreign" in line for line in data["drift"][0]["diff"])
    assert "table ip foreign" in lab.nft("list", "ruleset")  # left alone
    assert "sealbox" not in lab.nft("list", "ruleset")


def test_lab_never_touches_this_machines_namespace():
    require_root()
    require(Path("/proc/self/ns/net").exists(), "no network namespaces")
    proc = subprocess.run(["nft", "list", "table", "inet", "sealbox"], capture_output=True)
    assert proc.returncode != 0, "a sealbox table exists in the machine's own namespace"


def test_isolate_and_restore_append_signed_custody_events(lab: Lab, cli, tmp_path: Path):
    fp, bundle = sealed_bundle_for(lab, cli, tmp_path)
    record = json.loads(
        ok(
            lab.sealbox(
                "isolate",
                "--allow",
                f"{IT4}:{IT_PORT}",
                "--bundle",
                str(bundle),
                "--key",
                fp,
                "--reason",
                "contain",
                "--json",
            )
        ).stdout
    )
    ok(lab.sealbox("restore", "--bundle", str(bundle), "--key", fp, "--reason", "cleared"))
    lines = (bundle / "custody" / "continuation.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert [e["event"] for e in events] == ["network-isolated", "network-restored"]
    isolated, restored = events
    assert isolated["details"]["ruleset_sha256"] == record["ruleset_sha256"]
    assert isolated["details"]["allow"] == [f"{IT4}:{IT_PORT}"]
    assert "killed_connections" in isolated["details"]
    assert isolated["actor"]["key"] == fp and isolated["reason"] == "contain"
    assert restored["reason"] == "cleared" and restored["details"]["drift"] == []
    verified = cli("verify", bundle, "--trust", fp)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Both events left a receipt in the key store (SPEC §4.1): the tail is anchored.
    assert f"custody after seal: 2 events, last anchored at seq {restored['seq']}" in verified.stdout


def test_bundle_without_key_store_is_refused_before_any_change(lab: Lab, tmp_path: Path):
    before = lab.nft("list", "ruleset")
    not_bundle = tmp_path / "plain"
    not_bundle.mkdir()
    proc = lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--bundle", str(not_bundle))
    assert proc.returncode == 2 and "not a sealed sealbox bundle" in proc.stderr
    assert lab.nft("list", "ruleset") == before


def test_other_firewall_managers_are_reported_and_isolation_holds_beside_them(lab: Lab):
    require_tool("iptables")
    sh(
        "ip",
        "netns",
        "exec",
        lab.host,
        "nft",
        "-f",
        "-",
        input=(
            "table inet firewalld {\n\tchain filter_OUTPUT {\n"
            "\t\ttype filter hook output priority 10; policy accept;\n\t\taccept\n\t}\n}\n"
        ),
    )
    ok(lab.run(lab.host, "iptables", "-N", "DOCKER-USER"))
    before = lab.nft("list", "ruleset")
    record = json.loads(ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--json")).stdout)
    others = "\n".join(record["other_firewalls"])
    assert "nft table inet firewalld" in others and "DOCKER-USER" in others
    result = lab.probe(f"tcp:{IT4}:{IT_PORT}", f"tcp:{OUT4}:{OUT_PORT}", f"icmp:{OUT6}")
    assert result == {
        f"tcp:{IT4}:{IT_PORT}": True,
        f"tcp:{OUT4}:{OUT_PORT}": False,
        f"icmp:{OUT6}": False,
    }  # their accept-everything does not reopen it
    ok(lab.sealbox("restore"))
    assert lab.nft("list", "ruleset") == before


def test_iptables_refuses_when_ipv6_cannot_be_filtered(lab: Lab, tmp_path: Path):
    require_tool("iptables-restore")
    # A PATH on which ip6tables-restore does not exist, everything else does.
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
        "conntrack",
    ):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    before = lab.nft("list", "ruleset")
    lab.ensure_key()
    proc = lab.run(
        lab.host,
        "env",
        f"PATH={bin_dir}",
        sys.executable,
        "-m",
        "agent",
        "isolate",
        "--allow",
        f"{IT4}:{IT_PORT}",
        "--backend",
        "iptables",
        "--case",
        LAB_CASE,
    )
    assert proc.returncode == 1 and "IPv6" in proc.stderr and "ip6tables-restore" in proc.stderr
    assert lab.nft("list", "ruleset") == before
    assert not (lab.state_dir / "isolation.json").exists()
    assert all(lab.probe(*lab.everything()).values())


def test_iptables_persist_unit_reapplies_the_same_chains(lab: Lab):
    require_tool("iptables-restore")
    before = lab.nft("list", "ruleset")
    ok(lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--backend", "iptables", "--persist"))
    for fallback_only in (False, True):
        for ipt in ("iptables", "ip6tables"):  # "reboot": the chains are gone
            for builtin in ("INPUT", "OUTPUT", "FORWARD"):
                ok(lab.run(lab.host, ipt, "-D", builtin, "-j", f"SEALBOX-{builtin}"))
                ok(lab.run(lab.host, ipt, "-F", f"SEALBOX-{builtin}"))
                ok(lab.run(lab.host, ipt, "-X", f"SEALBOX-{builtin}"))
        assert _status(lab)[0] == "not isolated"
        ok(_boot(lab, fallback_only))
        ok(_boot(lab, fallback_only))  # a second run adds no second jump
        assert _status(lab) == ("isolated", 0)
    ok(lab.sealbox("restore"))
    assert lab.nft("list", "ruleset") == before


def test_expiry_restore_is_logged_in_the_bundle_too(lab: Lab, cli, tmp_path: Path):
    fp, bundle = sealed_bundle_for(lab, cli, tmp_path)
    ok(
        lab.sealbox(
            "isolate", "--allow", f"{IT4}:{IT_PORT}", "--bundle", str(bundle), "--key", fp, "--expire", "1s"
        )
    )
    continuation = bundle / "custody" / "continuation.jsonl"
    deadline = time.monotonic() + 10
    while len(continuation.read_text().splitlines()) < 2:
        assert time.monotonic() < deadline, "the expiry did not log network-restored"
        time.sleep(0.2)
    events = [json.loads(x) for x in continuation.read_text().splitlines()]
    assert [e["event"] for e in events] == ["network-isolated", "network-restored"]
    assert events[1]["reason"] == "expired (--expire)"
    assert _status(lab) == ("not isolated", 0)
    verified = cli("verify", bundle, "--trust", fp)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"last anchored at seq {events[1]['seq']}" in verified.stdout, "the expiry helper kept a receipt"
