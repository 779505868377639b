"""Isolate, restore, status: the orchestration the CLI calls (it never prints or exits)."""

from __future__ import annotations

import difflib
import getpass
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agent.isolation import connections, foreign, persist, state
from agent.isolation import iptables as ipt
from agent.isolation import nftables as nft
from agent.isolation.policy import compose_policy
from manifest.errors import IsolationError, UsageError
from manifest.timefmt import now_ns, rfc3339_ns

if TYPE_CHECKING:
    from agent.isolation.model import Policy

log = structlog.get_logger("sealbox.isolation")

BACKENDS = ("auto", "nft", "iptables", "iptables-legacy", "iptables-nft")
PLATFORMS = ("linux", "windows", "macos")
PERSIST_FILES = {"nft": ["isolation.nft"], "iptables": ["isolation.rules.v4", "isolation.rules.v6"]}

# Appends a custody event to a bundle: (event, details, reason) -> the event as written.
CustodyHook = Callable[[str, dict[str, Any], str], dict[str, Any]]


class Backend(Protocol):
    name: str

    def available(self) -> bool: ...
    def render(self, policy: Policy) -> str: ...
    def check(self, ruleset: str) -> None: ...
    def apply(self, ruleset: str) -> None: ...
    def present(self) -> bool: ...
    def listing(self) -> str | None: ...
    def chains_present(self) -> list[str]: ...
    def remove(self) -> bool: ...
    def persist_command(self, ruleset_path: str) -> list[str]: ...
    def persist_text(self, ruleset: str) -> str: ...


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
    # Where custody events go ({"bundle": path, "key": ref}); recorded so that an `--expire`
    # restore can log its event too (it can only sign with a key that has no passphrase).
    custody_target: dict[str, Any] | None = None
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


def make_backend(name: str) -> Backend:
    if name == "nft":
        return nft.NftBackend()
    if name.startswith("iptables"):
        return ipt.IptablesBackend(name.removeprefix("iptables").lstrip("-"))
    if name == "auto":
        for candidate in (nft.NftBackend(), ipt.IptablesBackend()):
            if candidate.available():
                return candidate
        raise IsolationError("neither nft nor iptables-restore is installed", hint="install nftables")
    raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


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
    backend = make_backend(req.backend)
    ruleset = backend.render(policy)
    result: dict[str, Any] = {
        "dry_run": True,
        "platform": "linux",
        "backend": backend.name,
        "policy": policy.to_json(),
        "ruleset": ruleset,
        "ruleset_sha256": nft.sha256_text(ruleset),
        "check_target": _check_target(req, policy),
    }
    if os.geteuid() != 0:
        result["validated"] = "not checked: the kernel check needs root"
    else:
        backend.check(ruleset)
        result["validated"] = f"{backend.name} check passed"
    return result


def _snapshot(backend: Backend) -> dict[str, Any]:
    snap = nft.snapshot()
    snap.update(ipt.snapshot(backend if isinstance(backend, ipt.IptablesBackend) else None))
    snap["taken_at"] = rfc3339_ns(now_ns())
    return snap


def isolate(req: IsolateRequest, custody: CustodyHook | None = None) -> dict[str, Any]:
    """Apply isolation; returns the record (as also saved in the state file)."""
    require_root("isolate")
    policy = build_policy(req)
    backend = make_backend(req.backend)
    if not backend.available():
        raise IsolationError(f"the {backend.name} backend's tools are not installed")
    previous = state.load()
    if previous is not None:
        raise IsolationError(
            f"an isolation is already on record ({state.state_path()}, since {previous.get('isolated_at')})",
            hint="run `sealbox isolation status`, or `sealbox restore` first",
        )
    target = _check_target(req, policy)
    ruleset = backend.render(policy)
    backend.check(ruleset)
    snapshot = _snapshot(backend)
    others = foreign.detect()
    backend.apply(ruleset)
    try:
        listing = backend.listing() or ""
        record: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "state": "isolated",
            "isolated_at": rfc3339_ns(now_ns()),
            "operator": operator(),
            "reason": req.reason,
            "case": req.case,
            "backend": backend.name,
            "policy": policy.to_json(),
            "ruleset": ruleset,
            "ruleset_sha256": nft.sha256_text(ruleset),
            "applied_listing": listing,
            "applied_listing_sha256": nft.sha256_text(listing),
            "snapshot_before": snapshot,
            "other_firewalls": others,
            "killed_connections": [],
            "check": None,
            "expire": None,
            "persist": None,
            "command": sys.argv[1:],
            "custody_target": req.custody_target if custody is not None else None,
        }
        state.save(record)
    except BaseException:
        # Never leave rules loaded that no record describes (restore could not find them).
        backend.remove()
        raise
    record["killed_connections"] = connections.cut(policy)
    state.save(record)
    _event(record, "isolate", custody, "network-isolated", req.reason)
    if target is not None:
        failure = check_connect(target[0], target[1], req.check_timeout)
        record["check"] = {"target": f"{target[0]}:{target[1]}", "ok": failure is None, "error": failure}
        state.save(record)
        if failure is not None:
            where = f"{target[0]}:{target[1]}"
            if req.rollback:
                restore(
                    reason=f"rollback: --check {where} failed: {failure}", custody=custody, _action="rollback"
                )
                raise IsolationError(
                    f"--check {where} failed ({failure}); isolation rolled back",
                    hint="fix the allow-list, or use --no-rollback to keep isolation anyway",
                )
            raise IsolationError(
                f"--check {where} failed ({failure}); isolation kept (--no-rollback)",
                hint="the channel to IT is not working; `sealbox restore` to undo",
            )
    if req.expire_seconds:
        at = now_ns() + req.expire_seconds * 1_000_000_000
        record["expire"] = {
            "at": rfc3339_ns(at),
            "at_ns": at,
            "helper_pid": persist.spawn_expiry(record["id"], at),
        }
    if req.persist:
        kind = "nft" if backend.name == "nft" else "iptables"
        files = PERSIST_FILES[kind]
        if kind == "nft":
            contents = {files[0]: backend.persist_text(ruleset)}
        else:
            parts = ipt.split(ruleset)
            contents = {files[0]: parts[4], files[1]: parts[6]}
        base = (
            str(state.state_dir() / "isolation.rules")
            if kind == "iptables"
            else str(state.state_dir() / files[0])
        )
        record["persist"] = persist.install(backend.persist_command(base), contents)
        record["persist"]["files"] = files
    state.save(record)
    return record


def _event(
    record: dict[str, Any],
    action: str,
    custody: CustodyHook | None,
    event: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> None:
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
    log.info(action, **details, reason=reason)
    state.append_log(
        {"time": rfc3339_ns(now_ns()), "action": action, "reason": reason, "operator": operator(), **details}
    )
    if custody is not None:
        written = custody(event, details, reason)
        record.setdefault("custody", []).append(
            {"event": event, "seq": written.get("seq"), "time": written.get("time")}
        )


def _diff(label: str, before: str, after: str) -> list[str]:
    return list(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            f"{label} before isolation",
            f"{label} now",
            lineterm="",
            n=1,
        )
    )


def drift(snapshot: dict[str, Any], backend_name: str) -> list[dict[str, Any]]:
    """Differences between the ruleset before isolation and now (reported, never 'fixed')."""
    findings = []
    now_nft = nft.snapshot()
    before_text, after_text = snapshot.get("nft_text"), now_nft.get("nft_text")
    if before_text is not None and after_text is not None and before_text != after_text:
        findings.append(
            {"kind": "drift", "source": "nft list ruleset", "diff": _diff("nft", before_text, after_text)}
        )
    variant = make_backend(backend_name) if backend_name.startswith("iptables") else None
    now_ipt = ipt.snapshot(variant if isinstance(variant, ipt.IptablesBackend) else None)
    for key in ("iptables_save", "ip6tables_save"):
        b = ipt.normalize_save(snapshot.get(key))
        a = ipt.normalize_save(now_ipt.get(key))
        if key in snapshot and key in now_ipt and a != b:
            findings.append({"kind": "drift", "source": key.replace("_", "-"), "diff": _diff(key, b, a)})
    return findings


def restore(reason: str = "", custody: CustodyHook | None = None, _action: str = "restore") -> dict[str, Any]:
    """Remove only sealbox's rules, then report drift against the snapshot taken before."""
    require_root("restore")
    record = state.load()
    if record is None:
        leftovers = [
            b.name for b in (nft.NftBackend(), ipt.IptablesBackend()) if b.available() and b.present()
        ]
        if not leftovers:
            return {"restored": False, "message": "not isolated: nothing to restore"}
        raise IsolationError(
            f"sealbox rules are loaded ({', '.join(leftovers)}) but no isolation is on record"
            f" at {state.state_path()}",
            hint="set SEALBOX_STATE_DIR to where it was recorded, or delete `table inet sealbox`"
            " by hand after checking it",
        )
    backend = make_backend(record["backend"])
    expire = record.get("expire") or {}
    helper_stopped = persist.stop_expiry(expire.get("helper_pid"), record["id"])
    persisted = record.get("persist") or {}
    removed_files = persist.uninstall(persisted.get("files", [])) if persisted else []
    removed = backend.remove()
    dropped: list[str] = []
    if isinstance(backend, ipt.IptablesBackend):
        dropped = backend.drop_empty_tables(record.get("snapshot_before", {}))
    findings = drift(record.get("snapshot_before", {}), record["backend"])
    result = {
        "restored": True,
        "isolation_id": record["id"],
        "backend": record["backend"],
        "rules_removed": removed,
        "empty_tables_removed": dropped,
        "expiry_helper_stopped": helper_stopped,
        "persist_removed": removed_files,
        "drift": findings,
        "restored_at": rfc3339_ns(now_ns()),
    }
    if not removed:
        result["note"] = "the rules were already gone (removed outside sealbox)"
    _event(
        record,
        _action,
        custody,
        "network-restored",
        reason,
        {"drift": [f["source"] for f in findings], "rules_removed": removed},
    )
    state.clear()
    return result


def status() -> dict[str, Any]:
    """`isolated`, `partial`, `not isolated` or `unknown`, with the reasons."""
    require_root("isolation status")
    findings: list[str] = []
    try:
        record = state.load()
    except IsolationError as exc:
        return {"status": "unknown", "findings": [exc.message]}
    if record is None:
        present = [b.name for b in (nft.NftBackend(), ipt.IptablesBackend()) if b.available() and b.present()]
        if present:
            return {
                "status": "unknown",
                "findings": [
                    f"sealbox rules are loaded ({', '.join(present)}) but no isolation is on record"
                    f" at {state.state_path()}"
                ],
            }
        return {"status": "not isolated", "findings": []}
    backend = make_backend(record["backend"])
    base = {
        "backend": backend.name,
        "isolation_id": record["id"],
        "isolated_at": record.get("isolated_at"),
        "operator": record.get("operator"),
        "reason": record.get("reason"),
        "case": record.get("case"),
        "allow": [
            e["network"]
            + (f":{e['port']}" if e.get("port") else "")
            + (f"/{e['proto']}" if e.get("proto") else "")
            for e in record["policy"]["allow"]
        ],
        "ruleset_sha256": record.get("ruleset_sha256"),
        "expire": (record.get("expire") or {}).get("at"),
        "persist": bool(record.get("persist")),
    }
    if not backend.available():
        return {**base, "status": "unknown", "findings": [f"{backend.name} tools are missing"]}
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
            "findings": ["the isolation on record was removed outside sealbox"],
        }
    if nft.sha256_text(live) != record.get("applied_listing_sha256"):
        chains = backend.chains_present()
        findings.append(
            f"the loaded rules differ from what was applied (chains present: {', '.join(chains) or 'none'})"
        )
        findings += _diff("applied", record.get("applied_listing", ""), live)
        return {**base, "status": "partial", "findings": findings}
    if record.get("persist"):
        unit = record["persist"].get("unit")
        if unit and not os.path.exists(unit):  # noqa: PTH110
            findings.append(f"boot unit {unit} is missing: isolation will not survive a reboot")
    return {**base, "status": "isolated", "findings": findings}


def expire_helper(
    isolation_id: str,
    at_ns: int,
    custody_for: Callable[[dict[str, Any]], CustodyHook | None] | None = None,
) -> dict[str, Any] | None:
    """Body of the detached `--expire` helper: sleep, then restore if still the same isolation.

    `custody_for` turns the recorded custody target into a hook (None when it cannot sign)."""
    while (remaining := at_ns - now_ns()) > 0:
        time.sleep(min(remaining / 1e9, 60.0))
    record = state.load()
    if record is None or record.get("id") != isolation_id:
        return None
    hook = None
    target = record.get("custody_target")
    if target and custody_for is not None:
        hook = custody_for(target)
        if hook is None:
            log.warning(
                "expire-without-custody", bundle=target.get("bundle"), why="the key cannot be used unattended"
            )
    return restore(reason="expired (--expire)", custody=hook, _action="expire")
