"""Crash safety: sealbox killed with SIGKILL at every step never strands the host.

`SEALBOX_TEST_KILL_AT=<step>` makes the CLI send itself SIGKILL at that step (a real kill -9 of
the subprocess). Afterwards `status` must name what was left (exit non-zero unless it is clean)
and `restore` must undo it, leaving the ruleset as it was. Also: `--expire` and an interrupted
`--check` honoured after a crash and after a simulated reboot, the record in the case ledger,
and status after someone else flushed the ruleset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from manifest.signing.custody import verify_chain
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
    shared_lab,
)

if TYPE_CHECKING:
    from pathlib import Path

BACKENDS = ["nft", "iptables"]


@pytest.fixture(scope="module")
def labs():
    yield from shared_lab()


@pytest.fixture
def lab(labs: SharedLab, tmp_path: Path) -> Lab:
    """The module's lab, as fresh as a new one: every kill point starts from a clean host."""
    lab = labs.fresh(tmp_path / "state")
    lab.ensure_key()
    return lab


def _status(lab: Lab) -> tuple[dict, int]:
    proc = lab.sealbox("isolation", "status", "--json")
    return json.loads(proc.stdout), proc.returncode


def _state(lab: Lab) -> tuple[str, int]:
    data, code = _status(lab)
    return data["status"], code


def _killed_at(lab: Lab, point: str, *args: str) -> None:
    """Run `sealbox ARGS` and require that it died of SIGKILL at `point`."""
    env_args = ["env", f"SEALBOX_TEST_KILL_AT={point}", sys.executable, "-m", "agent", *args]
    if args[0] == "isolate" and "--case" not in args:
        env_args += ["--case", LAB_CASE]
    proc = lab.run(lab.host, *env_args)
    assert proc.returncode == -signal.SIGKILL or proc.returncode == 128 + signal.SIGKILL, (
        proc.returncode,
        proc.stdout,
        proc.stderr,
    )


def _ledger(lab: Lab, case: str = LAB_CASE) -> list[dict]:
    path = lab.home / "cases" / case / "custody" / "custody.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _log(lab: Lab) -> list[dict]:
    return [json.loads(x) for x in (lab.state_dir / "isolation-log.jsonl").read_text().splitlines()]


def _blocked(lab: Lab) -> bool:
    target = f"tcp:{OUT4}:{OUT_PORT}"
    return lab.probe(target)[target] is False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("point", ["isolate-after-intent", "isolate-after-load"])
def test_isolate_killed_while_loading_is_named_by_status_and_undone_by_restore(
    lab: Lab, backend: str, point: str
):
    if backend != "nft":
        require_tool("iptables-restore")
    before = lab.nft("list", "ruleset")
    _killed_at(lab, point, "isolate", "--allow", IT4, "--backend", backend)
    data, code = _status(lab)
    loaded = point == "isolate-after-load"
    assert (data["status"], code) == ("interrupted", 1), data
    assert f"rules loaded: {'yes' if loaded else 'no'}" in data["findings"][0]
    assert _blocked(lab) is loaded  # the rules that were loaded hold until restore
    again = lab.sealbox("isolate", "--allow", IT4, "--backend", backend)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    assert "interrupted isolate" in again.stderr and "sealbox restore" in again.stderr
    restored = json.loads(ok(lab.sealbox("restore", "--json")).stdout)
    assert restored["identical"] is True and restored["rules_removed"] is loaded
    assert lab.nft("list", "ruleset") == before
    assert _state(lab) == ("not isolated", 0)  # one status run: each is a sealbox start
    events = [e["event"] for e in _ledger(lab)]
    # The isolating run never wrote its event; the restore writes it when rules were loaded.
    assert events == (["network-isolated", "network-restored"] if loaded else ["network-restored"])
    if loaded:
        assert "recorded_late" in _ledger(lab)[0]["details"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_isolate_killed_after_recording_is_a_clean_isolation(lab: Lab, backend: str):
    if backend != "nft":
        require_tool("iptables-restore")
    before = lab.nft("list", "ruleset")
    _killed_at(lab, "isolate-after-record", "isolate", "--allow", IT4, "--backend", backend)
    data, code = _status(lab)
    assert (data["status"], code) == ("isolated", 0), data
    assert _blocked(lab)
    ok(lab.sealbox("restore"))
    assert lab.nft("list", "ruleset") == before
    assert [e["event"] for e in _ledger(lab)] == ["network-isolated", "network-restored"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_check_is_rolled_back_by_the_next_invocation(lab: Lab, backend: str):
    if backend != "nft":
        require_tool("iptables-restore")
    before = lab.nft("list", "ruleset")
    _killed_at(lab, "isolate-during-check", "isolate", "--allow", f"{IT4}:{IT_PORT}", "--backend", backend)
    record = json.loads((lab.state_dir / "isolation.json").read_text())
    assert record["state"] == "checking" and record["check"]["rollback"] is True
    assert _blocked(lab)
    data, code = _status(lab)  # the next sealbox invocation
    assert (data["status"], code) == ("not isolated", 0), data
    assert any("interrupted --check" in n and "rolled back" in n for n in data["notes"])
    assert lab.nft("list", "ruleset") == before
    assert not _blocked(lab)
    assert [e["action"] for e in _log(lab)] == ["isolate", "rollback"]
    assert [e["event"] for e in _ledger(lab)] == ["network-isolated", "network-restored"]


def test_killed_check_with_no_rollback_keeps_isolation(lab: Lab):
    _killed_at(lab, "isolate-during-check", "isolate", "--allow", f"{IT4}:{IT_PORT}", "--no-rollback")
    data, code = _status(lab)
    assert (data["status"], code) == ("isolated", 0), data
    assert any("interrupted; isolation kept" in n for n in data["notes"])
    ok(lab.sealbox("restore"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("point", ["restore-after-intent", "restore-after-remove", "restore-before-clear"])
def test_restore_killed_at_any_step_is_finished_by_the_next_restore(lab: Lab, backend: str, point: str):
    if backend != "nft":
        require_tool("iptables-restore")
    before = lab.nft("list", "ruleset")
    ok(lab.sealbox("isolate", "--allow", IT4, "--backend", backend))
    _killed_at(lab, point, "restore")
    data, code = _status(lab)
    assert (data["status"], code) == ("interrupted", 1), data
    assert "restore was interrupted" in data["findings"][0]
    restored = json.loads(ok(lab.sealbox("restore", "--json")).stdout)
    assert restored["identical"] is True
    assert lab.nft("list", "ruleset") == before
    assert _state(lab) == ("not isolated", 0)  # one status run: each is a sealbox start
    assert not _blocked(lab)


def test_rules_without_a_record_are_named_and_restore_removes_them(lab: Lab):
    before = lab.nft("list", "ruleset")
    ok(lab.sealbox("isolate", "--allow", IT4))
    (lab.state_dir / "isolation.json").unlink()  # the record is lost
    data, code = _status(lab)
    assert (data["status"], code) == ("unknown", 1)
    assert "no isolation is on record" in data["findings"][0] and "sealbox restore" in data["findings"][0]
    again = lab.sealbox("isolate", "--allow", IT4)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    assert "sealbox restore" in again.stderr
    restored = ok(lab.sealbox("restore"))
    assert "no snapshot to compare" in restored.stdout
    assert lab.nft("list", "ruleset") == before
    assert _status(lab)[1] == 0


def test_status_after_nft_flush_ruleset_is_not_clean(lab: Lab):
    ok(lab.sealbox("isolate", "--allow", IT4))
    lab.nft("flush", "ruleset")
    proc = lab.sealbox("isolation", "status")
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.splitlines()[0] == "not isolated"
    assert "removed outside sealbox" in proc.stdout
    restored = ok(lab.sealbox("restore", "--json"))
    assert json.loads(restored.stdout)["rules_removed"] is False
    assert _status(lab)[1] == 0


def _power_off(lab: Lab, helper_pid: int | None) -> None:
    """What a shutdown does to isolation: the helper process and the loaded rules are gone."""
    if helper_pid is not None:
        try:
            os.kill(helper_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    lab.run(lab.host, "nft", "delete", "table", "inet", "sealbox")


def _boot(lab: Lab) -> subprocess.CompletedProcess[str]:
    """The boot unit runs, with only its own environment."""
    argv, env = lab.boot_unit()
    return lab.run(
        lab.host,
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        *[f"{k}={v}" for k, v in env.items()],
        *argv,
    )


def test_expire_is_honoured_across_reboots(lab: Lab):
    before = lab.nft("list", "ruleset")
    record = json.loads(
        ok(lab.sealbox("isolate", "--allow", IT4, "--persist", "--expire", "20s", "--json")).stdout
    )
    first_helper = record["expire"]["helper_pid"]
    # A reboot before the expiry time: isolated again, and a new helper waits for the expiry.
    _power_off(lab, first_helper)
    booted = ok(_boot(lab))
    assert "applied again" in booted.stdout and "expiry helper started again" in booted.stdout
    data, code = _status(lab)
    assert (data["status"], code) == ("isolated", 0), data
    second_helper = json.loads((lab.state_dir / "isolation.json").read_text())["expire"]["helper_pid"]
    assert second_helper != first_helper
    # A reboot after the expiry time (the helper died with the machine): not isolated again,
    # the unit is removed and the restore is on the record.
    deadline = record["expire"]["at_ns"] / 1e9
    _power_off(lab, second_helper)
    while time.time() < deadline + 0.5:
        time.sleep(0.2)
    booted = ok(_boot(lab))
    assert "expired" in booted.stdout and "restored now" in booted.stdout
    assert lab.nft("list", "ruleset") == before
    assert not (lab.systemd_dir / "sealbox-isolation.service").exists()
    assert _state(lab) == ("not isolated", 0)  # one status run: each is a sealbox start
    restored = _ledger(lab)[-1]
    assert restored["event"] == "network-restored" and restored["reason"] == "expired (--expire)"
    assert _log(lab)[-1]["action"] == "expire"


def test_expire_is_honoured_after_the_helper_was_killed(lab: Lab):
    before = lab.nft("list", "ruleset")
    record = json.loads(ok(lab.sealbox("isolate", "--allow", IT4, "--expire", "2s", "--json")).stdout)
    os.kill(record["expire"]["helper_pid"], signal.SIGKILL)
    time.sleep(max(0.0, record["expire"]["at_ns"] / 1e9 - time.time()) + 0.3)
    assert _blocked(lab)  # nobody restored it yet
    data, code = _status(lab)  # the next sealbox invocation honours the expiry
    assert (data["status"], code) == ("not isolated", 0), data
    assert any("expired" in n for n in data["notes"])
    assert lab.nft("list", "ruleset") == before


def test_every_containment_is_on_the_case_ledger(lab: Lab, cli, tmp_path: Path):
    lab.home = cli.home  # the CLI below reads the same key store
    lab.ensure_key()
    before = lab.nft("list", "ruleset")
    missing = lab.run(lab.host, sys.executable, "-m", "agent", "isolate", "--allow", IT4)
    assert missing.returncode == 2 and "needs a case id" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert lab.nft("list", "ruleset") == before

    case = "OKC-2026/0042"  # a case id that is no file name
    record = json.loads(
        ok(lab.sealbox("isolate", "--allow", IT4, "--case", case, "--reason", "contain", "--json")).stdout
    )
    ok(lab.sealbox("restore", "--reason", "cleared"))
    ledger_dir = cli.home / "cases" / "OKC-2026%2F0042"
    events = _ledger(lab, "OKC-2026%2F0042")
    assert [e["event"] for e in events] == ["network-isolated", "network-restored"]
    assert all(e["case"] == case for e in events)
    assert events[0]["details"]["isolation_id"] == record["id"] == events[1]["details"]["isolation_id"]
    assert events[1]["reason"] == "cleared" and events[1]["details"]["identical"] is True
    findings, _ = verify_chain(ledger_dir)
    assert findings == []
    assert [(e["case"], e["action"]) for e in _log(lab)] == [(case, "isolate"), (case, "restore")]

    shown = cli("custody", "show", "--case", case)
    assert shown.returncode == 0 and "chain holds: 2 event(s)" in shown.stdout, shown.stdout + shown.stderr
    out = tmp_path / "exported"
    ok(cli("custody", "export", "--case", case, "--out", out))
    assert cli("custody", "show", out).returncode == 0
    # One flipped byte in the ledger breaks the chain, and show says so.
    path = ledger_dir / "custody" / "custody.jsonl"
    path.write_text(path.read_text().replace('"cleared"', '"clearex"'))
    broken = cli("custody", "show", "--case", case)
    assert broken.returncode == 1 and "BROKEN" in broken.stderr


def test_restore_refuses_before_any_change_when_it_cannot_sign(lab: Lab, tmp_path: Path):
    ok(lab.sealbox("isolate", "--allow", IT4))
    for key_dir in (lab.home / "keys").iterdir():
        (key_dir / "private.pem").chmod(0o644)  # unsafe: sealbox will not sign with it
    proc = lab.sealbox("restore")
    assert proc.returncode == 1 and "nothing was changed" in proc.stderr and "--unsigned" in proc.stderr
    assert _status(lab)[0]["status"] == "isolated"
    ok(lab.sealbox("restore", "--unsigned"))
    assert _status(lab)[0]["status"] == "not isolated"
    assert _log(lab)[-1]["custody"].startswith("NOT SIGNED")


def test_a_failed_custody_write_keeps_the_isolation_and_restore_writes_the_event(
    lab: Lab, cli, tmp_path: Path
):
    require_tool("chattr")
    from tests.support.netns import sealed_bundle_for

    fp, bundle = sealed_bundle_for(lab, cli, tmp_path)
    continuation = bundle / "custody" / "continuation.jsonl"
    subprocess.run(["chattr", "+i", str(continuation)], check=True)
    try:
        proc = lab.sealbox("isolate", "--allow", f"{IT4}:{IT_PORT}", "--bundle", str(bundle), "--key", fp)
    finally:
        subprocess.run(["chattr", "-i", str(continuation)], check=True)
    assert proc.returncode == 1 and "isolated, but the run stopped before its check" in proc.stderr, (
        proc.stderr
    )
    data, code = _status(lab)
    assert (data["status"], code) == ("isolated", 0), data  # not rolled back: the rules hold
    assert _blocked(lab)
    ok(lab.sealbox("restore", "--reason", "cleared"))
    events = [json.loads(x) for x in continuation.read_text().splitlines()]
    assert [e["event"] for e in events] == ["network-isolated", "network-restored"]
    assert "recorded_late" in events[0]["details"]
    verified = cli("verify", bundle, "--trust", fp)
    assert verified.returncode == 0, verified.stdout + verified.stderr
