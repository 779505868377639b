"""`sealbox isolate`, `sealbox restore`, `sealbox isolation status`: a thin CLI over the library."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from agent.commands.common import key_options
from agent.isolation import IsolateRequest, engine, ledger, parse_duration, platform_plan
from agent.isolation.backends import CHOICES, PLATFORMS
from agent.isolation.engine import build_policy
from manifest.acquisition_log import _structlog
from manifest.errors import UsageError


def _log_to_stderr() -> None:
    # structlog prints to stdout by default; keep stdout for results (and --json).
    structlog = _structlog()  # without rich unless loaded: these events carry no traceback
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


def _emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text.rstrip("\n"))


def _with_bundle(f: Any) -> Any:
    f = key_options(f)
    return click.option(
        "--bundle",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help="Append the signed custody events to this sealed bundle (default: the case ledger).",
    )(f)


def _addr(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _flow(c: dict[str, Any]) -> str:
    arrow = "<-" if c.get("inbound") else "->"
    who = f" ({c['process']} pid {c['pid']})" if c.get("pid") else ""
    return (
        f"{c['proto']} {_addr(c['local'], c['local_port'])} {arrow} {_addr(c['peer'], c['peer_port'])}{who}"
    )


def _isolate_text(r: dict[str, Any]) -> str:
    lines = [f"recovered first: {n}" for n in r.get("recovered", [])]
    lines.append(f"isolated ({r['backend']}), rules sha256 {r['ruleset_sha256']}")
    lines.append(f"case {r['case']}, on the record: {ledger.describe(r['custody_target'])}")
    for name, addrs in r["policy"]["names"].items():
        lines.append(f"resolved {name} -> {', '.join(addrs)}")
    for e in r["policy"]["allow"]:
        lines.append(
            f"allowed: {e['network']}"
            + (f" port {e['port']}" if e["port"] else "")
            + (f"/{e['proto']}" if e["proto"] else "")
        )
    for e in r["policy"].get("allow_in", []):
        lines.append(
            f"allowed in: from {e['network']}"
            + (f" to port {e['port']}" if e["port"] else "")
            + (f"/{e['proto']}" if e["proto"] else "")
        )
    if r["policy"].get("config"):
        lines.append(f"IT's standing channel from {r['policy']['config']}")
    if r["policy"]["allow_dns"]:
        lines.append(f"allowed DNS to: {', '.join(r['policy']['resolvers'])}")
    servers = r["policy"].get("dhcp_servers") or []
    lines.append(
        "DHCP: "
        + (
            ("exchange only, servers " + ", ".join(servers) if servers else "exchange only, server unknown")
            if r["policy"]["dhcp"]
            else "blocked"
        )
    )
    lines.append("forwarding: " + ("allowed" if r["policy"]["forward"] else "blocked"))
    for c in r["killed_connections"]:
        lines.append(f"{'cut' if c['killed'] else 'COULD NOT CUT'}: {_flow(c)}")
    if not r["killed_connections"]:
        lines.append("no existing connection to a peer outside the allow-list")
    for other in r["other_firewalls"]:
        lines.append(f"other firewall present: {other}")
    if r.get("check"):
        lines.append(f"check {r['check']['target']}: ok")
    else:
        lines.append("check: skipped (no --check and no allowed TCP peer with a port)")
    if r.get("expire"):
        lines.append(f"expires at {r['expire']['at']} (helper pid {r['expire']['helper_pid']})")
    if r.get("persist"):
        lines.append(f"persistent: boot unit {r['persist']['unit']}")
    return "\n".join(lines)


@click.command("isolate")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="ADDR[/PREFIX][:PORT][/tcp|udp]",
    help="Peer that stays reachable (repeatable); host names resolve to all A/AAAA.",
)
@click.option(
    "--allow-in",
    "allow_in",
    multiple=True,
    metavar="ADDR[/PREFIX][:PORT][/tcp|udp]",
    help="Peer that may open connections to this host (the port is this host's; repeatable).",
)
@click.option("--allow-dns", is_flag=True, help="Allow DNS to the configured resolvers only.")
@click.option("--no-dhcp", is_flag=True, help="Block DHCP (allowed by default, as the exchange only).")
@click.option(
    "--dhcp-server",
    "dhcp_servers",
    multiple=True,
    metavar="ADDR",
    help="DHCP server besides those of the current leases (repeatable).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="IT's standing channel (default: /etc/sealbox/isolation.toml or $SEALBOX_HOME/isolation.toml).",
)
@click.option("--allow-forward", is_flag=True, help="Do not block forwarding (containers, VMs).")
@click.option(
    "--check",
    "check",
    metavar="HOST:PORT",
    help="Connect here after isolating (default: first allowed TCP peer).",
)
@click.option(
    "--check-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds for --check and for resolving host names.",
)
@click.option("--no-rollback", is_flag=True, help="Keep isolation when --check fails.")
@click.option("--expire", metavar="DURATION", help="Restore automatically after e.g. 30m, 2h.")
@click.option("--persist", is_flag=True, help="Re-apply at boot until `sealbox restore`.")
@click.option("--reason", default="", help="Why (recorded and logged).")
@click.option(
    "--case",
    "case",
    default="",
    metavar="ID",
    help="Case id (required): the custody events go to --bundle, or to this case's ledger.",
)
@click.option("--backend", type=click.Choice(CHOICES), default="auto", show_default=True)
@click.option(
    "--platform",
    type=click.Choice(PLATFORMS),
    default=None,
    help="With --dry-run: show the plan for another platform.",
)
@click.option("--dry-run", is_flag=True, help="Print the exact rules, validate them, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_with_bundle
def isolate_cmd(
    allow: tuple[str, ...],
    allow_in: tuple[str, ...],
    allow_dns: bool,
    no_dhcp: bool,
    dhcp_servers: tuple[str, ...],
    config: Path | None,
    allow_forward: bool,
    check: str | None,
    check_timeout: float,
    no_rollback: bool,
    expire: str | None,
    persist: bool,
    reason: str,
    case: str,
    backend: str,
    platform: str | None,
    dry_run: bool,
    as_json: bool,
    bundle: Path | None,
    key_ref: str | None,
    passphrase_file: Path | None,
) -> int:
    """Cut this host off the network except for the allow-listed peers."""
    _log_to_stderr()
    req = IsolateRequest(
        allow=allow,
        allow_dns=allow_dns,
        dhcp=not no_dhcp,
        forward=allow_forward,
        check=check,
        check_timeout=check_timeout,
        rollback=not no_rollback,
        expire_seconds=parse_duration(expire) if expire else None,
        persist=persist,
        reason=reason,
        case=case,
        backend=backend,
        resolve_timeout=check_timeout,
        allow_in=allow_in,
        dhcp_servers=dhcp_servers,
        config=str(config) if config else None,
    )

    target = platform or _current_platform()
    if target != "linux":
        if not dry_run and target != _current_platform():
            raise UsageError(f"--platform {target} only works with --dry-run on this system")
        if not dry_run:
            raise UsageError(f"isolation on {target} is shown as a plan only: add --dry-run")
        plan = platform_plan(target, build_policy(req))
        _emit({"dry_run": True, **plan.to_json()}, as_json, plan.render())
        return 0
    if dry_run:
        result = engine.dry_run(req)
        _emit(
            result,
            as_json,
            result["ruleset"] + f"# sha256 {result['ruleset_sha256']}\n"
            f"# {result['validated']}; nothing was changed",
        )
        return 0
    engine.require_root("isolate")
    engine.require_case(case)
    where = ledger.target(case, bundle, key_ref)
    custody = ledger.hook(where, passphrase_file)  # an unusable key stops here, before any change
    record = engine.isolate(replace(req, custody_target=where), custody)
    shown = {k: v for k, v in record.items() if k not in ("snapshot_before", "applied_listing")}
    _emit(shown, as_json, _isolate_text(record))
    survivors = [c for c in record["killed_connections"] if not c["killed"]]
    if survivors:
        click.echo(
            f"sealbox: {len(survivors)} connection(s) outside the allow-list could not be cut: "
            + "; ".join(_flow(c) for c in survivors),
            err=True,
        )
        return 1
    return 0


@click.command("restore")
@click.option("--reason", default="", help="Why (recorded and logged).")
@click.option(
    "--unsigned",
    is_flag=True,
    help="Restore even when the custody event cannot be signed (logged locally only).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_with_bundle
def restore_cmd(
    reason: str,
    unsigned: bool,
    as_json: bool,
    bundle: Path | None,
    key_ref: str | None,
    passphrase_file: Path | None,
) -> int:
    """Remove sealbox's isolation rules (only those) and compare the ruleset with before."""
    _log_to_stderr()
    result = engine.restore(
        reason=reason, bundle=bundle, key=key_ref, passphrase_file=passphrase_file, unsigned=unsigned
    )
    lines = [f"recovered: {n}" for n in result.get("recovered", [])]
    if not result["restored"]:
        _emit(result, as_json, "\n".join([*lines, result["message"]]))
        return 0
    lines.append(f"restored: sealbox's {result['backend']} rules removed")
    if result.get("note"):
        lines.append(f"note: {result['note']}")
    for what in result["empty_tables_removed"]:
        lines.append(f"removed, created by loading the rules: {what}")
    if result["persist_removed"]:
        lines.append(f"boot unit removed: {', '.join(result['persist_removed'])}")
    if result.get("custody"):
        lines.append(f"on the record: {result['custody']}")
    for f in result["drift"]:
        lines.append(f"drift in {f['source']} since isolation (left as it is):")
        lines += [f"  {d}" for d in f["diff"]]
    lines += [f"note: {n}" for n in result["notes"]]
    if result["identical"]:
        lines.append("ruleset identical to the snapshot taken before isolation (counters aside)")
    elif result["identical"] is not None and not result["drift"]:
        lines.append("ruleset equivalent to the snapshot taken before isolation (see the notes)")
    _emit(result, as_json, "\n".join(lines))
    return 0


@click.group("isolation")
def isolation_group() -> None:
    """Inspect network isolation."""


@isolation_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(as_json: bool) -> int:
    """isolated, not isolated, partial, interrupted, busy or unknown (exit 0 only when clean)."""
    _log_to_stderr()  # status may roll back or expire (see engine.recover), which logs
    result = engine.status()
    lines = [result["status"]]
    if result.get("case"):
        lines.append(f"case {result['case']}, on the record: {result.get('custody') or '-'}")
    if result.get("isolated_at"):
        lines.append(
            f"since {result['isolated_at']} by {result['operator']['user']}"
            f" ({result['backend']}), reason: {result.get('reason') or '-'}"
        )
        lines.append(f"allowed: {', '.join(result['allow']) or 'nothing'}")
    lines += result["findings"]
    lines += [f"recovered: {n}" for n in result["notes"]]
    _emit(result, as_json, "\n".join(lines))
    return 0 if result["clean"] else 1


@isolation_group.command("expire-helper", hidden=True)
@click.option("--id", "isolation_id", required=True)
@click.option("--at", "at_ns", type=int, required=True)
def expire_helper_cmd(isolation_id: str, at_ns: int) -> int:
    """Detached helper started by `isolate --expire`."""
    _log_to_stderr()
    engine.expire_helper(isolation_id, at_ns)
    return 0


@isolation_group.command("boot", hidden=True)
def boot_cmd() -> int:
    """Run by the `--persist` boot unit: expire, roll back or re-apply as the record says."""
    _log_to_stderr()
    result = engine.boot()
    for note in result["notes"]:
        click.echo(note)
    if result["applied"]:
        click.echo(f"isolation {result['isolation_id']} applied again")
    return 0


COMMANDS: list[click.Command] = [isolate_cmd, restore_cmd, isolation_group]
