"""Isolate, restore, status, boot: the orchestration the CLI calls (it never prints or exits).

Crash safety: the record is saved before each step that changes the host (see state.py), and
every command that could meet a record left by a killed run first calls `recover()`, which
rolls back an interrupted `--check`, restores an isolation whose `--expire` time has passed and
restarts a missing expiry helper. Everything else a kill can leave (`applying`, `restoring`) is
named by `status` and undone by `restore`.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.isolation import backends, connections, foreign, ledger, persist, rulesets, state
from agent.isolation.nftables import sha256_text
from agent.isolation.policy import compose_policy
from manifest.acquisition_log import _structlog
from manifest.errors import IsolationError, SealboxError, UsageError
from manifest.format.timefmt import now_ns, rfc3339_ns
from manifest.osio.crashpoint import crash_point

if TYPE_CHECKING:
    from pathlib import Path

    from agent.isolation.ledger import CustodyHook
    from agent.isolation.model import Policy


def _log() -> Any:
    """The isolation log (structlog; the CLI sends it to stderr). Imported when an action is
    logged, not when sealbox starts: structlog and rich were half of every command's start-up."""
    return _structlog().get_logger("sealbox.isolation")


BACKENDS = backends.CHOICES
PLATFORMS = backends.PLATFORMS


@dataclass(frozen=True)
class IsolateRequest:
    """Everything `sealbox isolate` was asked to do."""

    allow: tuple[str, ...] = ()
    allow_dns: bool = False
    dhcp: bool = True
    forward: bool = False
    check: str | None = None
    check_timeout: float = 5.0
    rollback: bool = True
    expire_seconds: int | None = None
    persist: bool = False
    reason: str = ""
    case: str = ""
    backend: str = "auto"
    resolve_timeout: float = 5.0
    # Where custody events go (ledger.target()): a sealed bundle or the case ledger. Recorded,
    # so that a restore by expiry, at boot or after a crash logs its event there too.
    custody_target: dict[str, Any] = field(default_factory=dict)
    # Peers that may open connections to this host (`--allow-in`, the port is this host's).
    allow_in: tuple[str, ...] = ()
    # DHCP servers besides those of the current leases (`--dhcp-server`).
    dhcp_servers: tuple[str, ...] = ()
    # isolation.toml to use instead of the one found (`--config`).
    config: str | None = None


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise UsageError(
            f"sealbox {action} needs root (running as uid {os.geteuid()})",
            hint="run it with sudo",
        )


def require_case(case: str) -> None:
    if not case.strip():
        raise UsageError(
            "isolation needs a case id: every containment goes on the record",
            hint="add --case ID (the custody events go to --bundle, or to the case ledger)",
        )


def operator() -> dict[str, Any]:
    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        name = str(os.getuid())
    return {"user": name, "uid": os.getuid(), "sudo_user": os.environ.get("SUDO_USER") or None}


def build_policy(req: IsolateRequest) -> Policy:
    return compose_policy(
        allow=req.allow,
        allow_in=req.allow_in,
        allow_dns=req.allow_dns,
        dhcp=req.dhcp,
        dhcp_servers=req.dhcp_servers,
        forward=req.forward,
        resolve_timeout=req.resolve_timeout,
        config_path=req.config,
    )


def _check_target(req: IsolateRequest, policy: Policy) -> tuple[str, int] | None:
    if req.check:
        host, sep, port = req.check.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"--check {req.check}: expected HOST:PORT")
        return host.strip("[]"), int(port)
    return policy.first_tcp_peer()


def check_connect(host: str, port: int, timeout: float) -> str | None:
    """Connect within `timeout`; None on success, otherwise the reason it failed."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def dry_run(req: IsolateRequest) -> dict[str, Any]:
    """The exact ruleset for this request, validated by the kernel when privileges allow."""
    policy = build_policy(req)
    backend = backends.choose(req.backend)
    ruleset = backend.render(policy)
    result: dict[str, Any] = {
        "dry_run": True,
        "platform": "linux",
        "backend": backend.name,
        "policy": policy.to_json(),
        "ruleset": ruleset,
        "ruleset_sha256": sha256_text(ruleset),
        "check_target": _check_target(req, policy),
    }
    if os.geteuid() != 0:
        result["validated"] = "not checked: the kernel check needs root"
    else:
        backend.check(ruleset)
        result["validated"] = f"{backend.name} check passed"
    return result


def _loaded_without_record() -> list[str]:
    return [b.name for b in backends.installed() if b.present()]


def _on_record(record: dict[str, Any]) -> IsolationError:
    phase = record.get("state")
    if phase == "applying":
        what = "an interrupted isolate (killed while loading its rules)"
    elif phase == "restoring":
        what = "an interrupted restore"
    else:
        what = f"an isolation (since {record.get('isolated_at')})"
    return IsolationError(
        f"{what} is already on record at {state.state_path()}, case {record.get('case') or '-'}",
        hint="run `sealbox isolation status`, or `sealbox restore` first",
    )


def isolate(req: IsolateRequest, custody: CustodyHook) -> dict[str, Any]:
    """Apply isolation; returns the record (as also saved in the state file)."""
    require_root("isolate")
    require_case(req.case)
    policy = build_policy(req)
    backend = backends.choose(req.backend)
    if not backend.available():
        raise IsolationError(f"the {backend.name} backend's tools are not installed")
    with state.locked():
        previous, notes = recover(state.load())
        if previous is not None:
            raise _on_record(previous)
        loaded = _loaded_without_record()
        if loaded:
            raise IsolationError(
                f"sealbox rules are loaded ({', '.join(loaded)}) but no isolation is on record"
                f" at {state.state_path()}",
                hint="`sealbox restore` removes them (no snapshot exists to compare with), then isolate",
            )
        record = _isolate_locked(req, policy, backend, custody)
        record["recovered"] = notes
        return record


def _isolate_locked(
    req: IsolateRequest, policy: Policy, backend: backends.Backend, custody: CustodyHook
) -> dict[str, Any]:
    target = _check_target(req, policy)
    ruleset = backend.render(policy)
    backend.check(ruleset)
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "state": "applying",
        "started_at": rfc3339_ns(now_ns()),
        "isolated_at": None,
        "operator": operator(),
        "reason": req.reason,
        "case": req.case,
        "backend": backend.name,
        "policy": policy.to_json(),
        "ruleset": ruleset,
        "ruleset_sha256": sha256_text(ruleset),
        "applied_listing": None,
        "applied_listing_sha256": None,
        "snapshot_before": rulesets.take(),
        "backend_before": backend.before_apply(),
        "other_firewalls": foreign.detect(),
        "killed_connections": [],
        "check": (
            {"target": f"{target[0]}:{target[1]}", "rollback": req.rollback, "ok": None, "error": None}
            if target
            else None
        ),
        # The time runs from when the isolation is in place (set in _finish, or by recover()).
        "expire": (
            {"seconds": req.expire_seconds, "at": None, "at_ns": None, "helper_pid": None}
            if req.expire_seconds
            else None
        ),
        "persist": {"requested": True} if req.persist else None,
        "command": sys.argv[1:],
        "custody_target": req.custody_target,
        "custody": [],
    }
    state.save(record)  # the intent, on disk before anything is loaded
    crash_point("isolate-after-intent")
    try:
        backend.apply(ruleset)
    except BaseException:
        # Nothing (or only what apply took back out) is loaded: the intent is void.
        backend.remove()
        backend.tidy(record["backend_before"])
        state.clear()
        raise
    crash_point("isolate-after-load")
    listing = backend.listing() or ""
    loaded_ns = now_ns()
    record.update(
        state="checking" if target else "isolated",
        isolated_at=rfc3339_ns(loaded_ns),
        isolated_at_ns=loaded_ns,
        applied_listing=listing,
        applied_listing_sha256=sha256_text(listing),
    )
    state.save(record)
    crash_point("isolate-after-record")
    try:
        record["killed_connections"] = connections.cut(policy)
        state.save(record)
        _event(record, "isolate", custody, "network-isolated", req.reason)
        state.save(record)
    except Exception as exc:
        # The rules hold; losing them over a failed kill or custody write would be worse. Mark
        # the record settled (not a killed --check to roll back); restore writes the event late.
        record["state"] = "isolated"
        if record.get("check"):
            record["check"].update(ok=None, error=f"not run: {exc}")
        state.save(record)
        message = exc.message if isinstance(exc, SealboxError) else str(exc)
        raise IsolationError(
            f"isolated, but the run stopped before its check: {message}",
            hint="`sealbox isolation status` shows the isolation; `sealbox restore` undoes it",
        ) from exc
    if target is not None:
        crash_point("isolate-during-check")
        failure = check_connect(target[0], target[1], req.check_timeout)
        record["check"].update(ok=failure is None, error=failure)
        where = f"{target[0]}:{target[1]}"
        if failure is not None and req.rollback:
            state.save(record)
            _restore_locked(record, f"rollback: --check {where} failed: {failure}", custody, "rollback")
            raise IsolationError(
                f"--check {where} failed ({failure}); isolation rolled back",
                hint="fix the allow-list, or use --no-rollback to keep isolation anyway",
            )
        record["state"] = "isolated"
        state.save(record)
        if failure is not None:
            _finish(record, req, backend)
            raise IsolationError(
                f"--check {where} failed ({failure}); isolation kept (--no-rollback)",
                hint="the channel to IT is not working; `sealbox restore` to undo",
            )
    _finish(record, req, backend)
    return record


def _finish(record: dict[str, Any], req: IsolateRequest, backend: backends.Backend) -> None:
    """Start the expiry helper and install the boot unit (both already in the intent)."""
    expire = record.get("expire")
    if expire:
        _set_expiry(expire, now_ns())
        state.save(record)
        expire["helper_pid"] = persist.spawn_expiry(record["id"], expire["at_ns"])
        state.save(record)
    if req.persist:
        files = backend.persist_files(record["ruleset"])
        command, env = persist.boot_command(backend.persist_command(state.state_dir()))
        record["persist"] = persist.install(command, files, env)
        state.save(record)


def _set_expiry(expire: dict[str, Any], start_ns: int) -> None:
    at = start_ns + int(expire["seconds"]) * 1_000_000_000
    expire.update(at=rfc3339_ns(at), at_ns=at)


def _event(
    record: dict[str, Any],
    action: str,
    custody: CustodyHook | None,
    event: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """One line in the local log and one signed custody event (when a signer is at hand)."""
    details = {
        "backend": record.get("backend"),
        "ruleset_sha256": record.get("ruleset_sha256"),
        "allow": [
            e["spec"] if e.get("host") is None else f"{e['spec']} -> {e['network']}"
            for e in record.get("policy", {}).get("allow", [])
        ],
        "killed_connections": [
            f"{c['proto']} {c['local']}:{c['local_port']} -> {c['peer']}:{c['peer_port']}"
            f"{'' if c['killed'] else ' (still open)'}"
            for c in record.get("killed_connections", [])
        ],
        "isolation_id": record.get("id"),
        **(extra or {}),
    }
    where = record.get("custody_target") or {}
    entry: dict[str, Any] = {
        "time": rfc3339_ns(now_ns()),
        "action": action,
        "case": record.get("case"),
        "reason": reason,
        "operator": operator(),
        "custody": ledger.describe(where) if where else None,
        **details,
    }
    if custody is not None:
        written = custody(event, details, reason)
        record.setdefault("custody", []).append(
            {"event": event, "seq": written.get("seq"), "time": written.get("time")}
        )
        entry["custody_seq"] = written.get("seq")
    else:
        entry["custody"] = "NOT SIGNED: " + str(record.get("custody_problem") or "no signer")
    _log().info(action, **details, reason=reason, case=record.get("case"))
    state.append_log(entry)


def _restore_locked(
    record: dict[str, Any], reason: str, custody: CustodyHook | None, action: str
) -> dict[str, Any]:
    """Take the recorded isolation out and compare what is left with the snapshot before."""
    record["state"] = "restoring"
    record["restoring"] = {"action": action, "reason": reason, "started_at": rfc3339_ns(now_ns())}
    state.save(record)
    crash_point("restore-after-intent")
    backend = backends.choose(record["backend"])
    expire = record.get("expire") or {}
    helper_stopped = persist.stop_expiry(expire.get("helper_pid"), record["id"])
    persisted = record.get("persist") or {}
    removed_files = persist.uninstall(persisted.get("files", [])) if persisted else []
    removed = backend.remove()
    crash_point("restore-after-remove")
    tidied = backend.tidy(record.get("backend_before") or {})
    comparison = rulesets.compare(record.get("snapshot_before") or {}, rulesets.take())
    result: dict[str, Any] = {
        "restored": True,
        "action": action,
        "case": record.get("case"),
        "isolation_id": record["id"],
        "backend": record["backend"],
        "rules_removed": removed,
        "empty_tables_removed": tidied,
        "expiry_helper_stopped": helper_stopped,
        "persist_removed": removed_files,
        "drift": comparison.drift,
        "notes": comparison.notes,
        "identical": comparison.identical,
        "restored_at": rfc3339_ns(now_ns()),
        "custody": ledger.describe(record["custody_target"]) if record.get("custody_target") else None,
    }
    if not removed and record.get("isolated_at"):
        result["note"] = "the rules were already gone (removed outside sealbox)"
    if not any(e.get("event") == "network-isolated" for e in record.get("custody", [])) and (
        removed or record.get("isolated_at")
    ):
        # The isolating run was killed before it wrote its event: the record must still show it.
        _event(
            record,
            "isolate",
            custody,
            "network-isolated",
            record.get("reason", ""),
            {"recorded_late": "the isolating run was interrupted; written by the restore that undid it"},
        )
    _event(
        record,
        action,
        custody,
        "network-restored",
        reason,
        {
            "drift": [f["source"] for f in comparison.drift],
            "rules_removed": removed,
            "tidied": tidied,
            "identical": comparison.identical,
        },
    )
    crash_point("restore-before-clear")
    state.clear()
    return result


def _unattended(record: dict[str, Any]) -> CustodyHook | None:
    hook, problem = ledger.unattended_hook(record.get("custody_target"))
    if hook is None:
        record["custody_problem"] = problem
        _log().warning("custody-not-signed", case=record.get("case"), why=problem)
    return hook


def recover(record: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Honour what a killed or rebooted run left behind (the caller holds the lock).

    Returns the record as it stands afterwards (None once restored) and what was done."""
    notes: list[str] = []
    if record is None:
        return None, notes
    if record.get("state") == "checking":
        check = record.get("check") or {}
        if check.get("rollback", True):
            _restore_locked(
                record,
                f"rollback: --check {check.get('target')} was interrupted",
                _unattended(record),
                "rollback",
            )
            notes.append(f"an interrupted --check {check.get('target')} was rolled back: isolation removed")
            return None, notes
        check.update(ok=False, error="interrupted")
        record["state"] = "isolated"
        state.save(record)
        notes.append(f"--check {check.get('target')} was interrupted; isolation kept (--no-rollback)")
    expire = record.get("expire") or {}
    if record.get("state") == "isolated" and expire.get("seconds") and not expire.get("at_ns"):
        # Killed before the expiry was set: count from when the rules were loaded.
        _set_expiry(expire, int(record.get("isolated_at_ns") or now_ns()))
        state.save(record)
    if record.get("state") == "isolated" and expire.get("at_ns"):
        alive = persist.expiry_alive(expire.get("helper_pid"), record["id"])
        if expire["at_ns"] <= now_ns() and not alive:
            _restore_locked(record, "expired (--expire)", _unattended(record), "expire")
            notes.append(f"the isolation expired at {expire['at']}: restored now")
            return None, notes
        if not alive:
            expire["helper_pid"] = persist.spawn_expiry(record["id"], expire["at_ns"])
            state.save(record)
            notes.append(f"expiry helper started again (pid {expire['helper_pid']}, expires {expire['at']})")
    return record, notes


def restore(
    reason: str = "",
    *,
    bundle: Path | None = None,
    key: str | None = None,
    passphrase_file: Path | None = None,
    unsigned: bool = False,
) -> dict[str, Any]:
    """Remove only sealbox's rules, then compare the ruleset with the snapshot taken before.

    The custody events go where the isolation recorded them (or to `bundle`, which may have
    been sealed since), signed with the recorded key (or `key`); the key is loaded before
    anything changes. `unsigned` restores anyway and logs the events locally only."""
    require_root("restore")
    with state.locked():
        record, notes = recover(state.load())
        if record is None:
            return _restore_unrecorded(reason, notes)
        where = dict(record.get("custody_target") or {})
        if bundle is not None:
            where.update(ledger.target(str(record.get("case") or ""), bundle, where.get("key")))
        if key is not None:
            where["key"] = key
        record["custody_target"] = where
        custody: CustodyHook | None = None
        if unsigned:
            record["custody_problem"] = "restored with --unsigned"
        else:
            try:
                custody = ledger.hook(where, passphrase_file)
            except SealboxError as exc:
                raise IsolationError(
                    f"cannot sign the restore's custody event ({exc.message}); nothing was changed",
                    hint="give --passphrase-file or --key, or --unsigned to restore and log it locally only",
                ) from exc
        result = _restore_locked(record, reason, custody, "restore")
        result["recovered"] = notes
        return result


def _restore_unrecorded(reason: str, notes: list[str]) -> dict[str, Any]:
    """No record: remove sealbox's rules if any are loaded (they are ours by name)."""
    loaded = [b for b in backends.installed() if b.present()]
    if not loaded:
        return {"restored": False, "message": "not isolated: nothing to restore", "recovered": notes}
    names = sorted({b.name for b in loaded})
    for b in loaded:
        b.remove()
    state.append_log(
        {
            "time": rfc3339_ns(now_ns()),
            "action": "restore-unrecorded",
            "case": None,
            "reason": reason,
            "operator": operator(),
            "backends": names,
        }
    )
    return {
        "restored": True,
        "action": "restore",
        "isolation_id": None,
        "backend": ", ".join(names),
        "rules_removed": True,
        "empty_tables_removed": [],
        "persist_removed": [],
        "drift": [],
        "notes": [],
        "identical": None,
        "recovered": notes,
        "note": "no isolation was on record: sealbox's rules were removed, but there is no"
        " snapshot to compare the ruleset with",
    }


def _problem_status(record: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | None:
    phase = record.get("state")
    if phase == "applying":
        loaded = backends.choose(record["backend"]).present()
        return {
            **base,
            "status": "interrupted",
            "findings": [
                "isolate was interrupted while loading its rules"
                f" (rules loaded: {'yes' if loaded else 'no'}); `sealbox restore` undoes it"
            ],
        }
    if phase == "restoring":
        return {
            **base,
            "status": "interrupted",
            "findings": ["restore was interrupted; run `sealbox restore` again to finish it"],
        }
    return None


def status() -> dict[str, Any]:
    """`isolated` or `not isolated` (clean), else `partial`, `interrupted`, `busy` or `unknown`,
    with the reasons; `clean` is False whenever anything needs attention."""
    require_root("isolation status")
    with state.locked(wait=False) as got:
        if not got:
            return {
                "status": "busy",
                "clean": False,
                "findings": ["another sealbox command is isolating or restoring right now"],
                "notes": [],
            }
        try:
            record, notes = recover(state.load())
        except IsolationError as exc:
            return {"status": "unknown", "clean": False, "findings": [exc.message], "notes": []}
        result = _status(record)
    result["notes"] = notes
    result["clean"] = result["status"] in ("isolated", "not isolated") and not result["findings"]
    return result


def _status(record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        present = _loaded_without_record()
        if present:
            return {
                "status": "unknown",
                "findings": [
                    f"sealbox rules are loaded ({', '.join(present)}) but no isolation is on record"
                    f" at {state.state_path()}; `sealbox restore` removes them"
                ],
            }
        return {"status": "not isolated", "findings": []}
    backend = backends.choose(record["backend"])
    base = {
        "backend": backend.name,
        "isolation_id": record["id"],
        "phase": record.get("state"),
        "isolated_at": record.get("isolated_at"),
        "operator": record.get("operator"),
        "reason": record.get("reason"),
        "case": record.get("case"),
        "custody": ledger.describe(record["custody_target"]) if record.get("custody_target") else None,
        "allow": [
            e["network"]
            + (f":{e['port']}" if e.get("port") else "")
            + (f"/{e['proto']}" if e.get("proto") else "")
            for e in record["policy"]["allow"]
        ],
        "ruleset_sha256": record.get("ruleset_sha256"),
        "expire": (record.get("expire") or {}).get("at"),
        "persist": bool((record.get("persist") or {}).get("unit")),
    }
    if not backend.available():
        return {**base, "status": "unknown", "findings": [f"{backend.name} tools are missing"]}
    problem = _problem_status(record, base)
    if problem is not None:
        return problem
    findings: list[str] = []
    live = backend.listing()
    if live is None:
        chains = backend.chains_present()
        if chains:
            return {
                **base,
                "status": "partial",
                "findings": [f"only part of sealbox's rules are loaded: {', '.join(chains)}"],
            }
        return {
            **base,
            "status": "not isolated",
            "findings": [
                "the isolation on record was removed outside sealbox; `sealbox restore` closes the record"
            ],
        }
    if sha256_text(live) != record.get("applied_listing_sha256"):
        chains = backend.chains_present()
        findings.append(
            f"the loaded rules differ from what was applied (chains present: {', '.join(chains) or 'none'})"
        )
        findings += rulesets.diff("applied", record.get("applied_listing") or "", live)
        return {**base, "status": "partial", "findings": findings}
    persisted = record.get("persist") or {}
    if persisted.get("requested") and not persisted.get("unit"):
        findings.append("--persist was asked for but the boot unit was never installed (interrupted)")
    unit = persisted.get("unit")
    if unit and not os.path.exists(unit):  # noqa: PTH110
        findings.append(f"boot unit {unit} is missing: isolation will not survive a reboot")
    return {**base, "status": "isolated", "findings": findings}


def expire_helper(isolation_id: str, at_ns: int) -> dict[str, Any] | None:
    """Body of the detached `--expire` helper: sleep, then restore if still the same isolation."""
    while (remaining := at_ns - now_ns()) > 0:
        time.sleep(min(remaining / 1e9, 60.0))
    with state.locked():
        record = state.load()
        if record is None or record.get("id") != isolation_id or record.get("state") != "isolated":
            return None
        return _restore_locked(record, "expired (--expire)", _unattended(record), "expire")


def boot() -> dict[str, Any]:
    """What the `--persist` unit runs at boot: honour expiry and an interrupted --check, else
    load the recorded ruleset again and restart the expiry helper."""
    require_root("isolation boot")
    with state.locked():
        record, notes = recover(state.load())
        if record is None:
            return {"applied": False, "notes": notes or ["no isolation on record: nothing to apply"]}
        problem = _problem_status(record, {})
        if problem is not None:
            raise IsolationError(problem["findings"][0])
        backend = backends.choose(record["backend"])
        live = backend.listing()
        if live is not None and sha256_text(live) == record.get("applied_listing_sha256"):
            return {"applied": False, "notes": [*notes, "the recorded rules are already loaded"]}
        if backend.present():
            backend.remove()
        backend.apply(record["ruleset"])
        state.append_log(
            {
                "time": rfc3339_ns(now_ns()),
                "action": "boot-apply",
                "case": record.get("case"),
                "isolation_id": record["id"],
                "operator": operator(),
            }
        )
        return {"applied": True, "isolation_id": record["id"], "notes": notes}
