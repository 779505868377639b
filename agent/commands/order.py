"""`sealbox order new|cosign|show|send`: make and deliver signed orders for agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.commands.common import key_options, load_signer, print_json
from agent.daemon import delivery
from agent.daemon.hostid import check_host_id
from agent.daemon.order import (
    ACTIONS,
    ARGUMENTS,
    MAX_BYTES,
    OrderRefused,
    cosign,
    describe,
    new_order,
    parse,
    verify_signatures,
)
from agent.daemon.order import serialize as order_bytes
from agent.isolation.model import parse_duration
from manifest.bundle import check_case_id
from manifest.errors import UsageError
from manifest.format.timefmt import parse_rfc3339_ns


def parse_arguments(action: str, items: tuple[str, ...]) -> dict[str, Any]:
    """`--arg NAME=VALUE`, typed by what the action takes; list arguments repeat."""
    schema = ARGUMENTS[action]
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        kind = schema.get(name)
        if not sep or kind is None:
            takes = ", ".join(schema) or "no arguments"
            raise UsageError(f"--arg {item}: {action} takes {takes}", "give --arg NAME=VALUE")
        if kind is list:
            out.setdefault(name, []).append(value)
        elif kind is bool:
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise UsageError(f"--arg {item}: expected true or false")
            out[name] = value.lower() in ("true", "yes", "1")
        else:
            out[name] = value
    return out


def read_order_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read order {path}: {exc.strerror}") from exc
    return data


def _load(path: Path) -> dict[str, Any]:
    try:
        return parse(read_order_file(path)).doc
    except OrderRefused as exc:
        raise UsageError(f"{path} is not a usable order: {exc.reason}") from exc


@click.group()
def order() -> None:
    """Signed orders that tell agents to isolate, restore, respond, collect, push or report."""


@order.command("new")
@click.option("--action", required=True, type=click.Choice(ACTIONS))
@click.option("--case", required=True, help="Case id the order belongs to.")
@click.option("--host", "hosts", multiple=True, metavar="HOST-ID", help="Target host id (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="NAME", help="Target group (repeatable).")
@click.option("--arg", "args", multiple=True, metavar="NAME=VALUE", help="Action argument (repeatable).")
@click.option("--reason", required=True, help="Why (shown to the host's log and custody).")
@click.option("--valid", default="1h", show_default=True, help="How long the order holds (at most 7d).")
@click.option("--not-before", metavar="TIME", help="RFC 3339 time from which it holds (default: now).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@key_options
def new_cmd(
    action: str,
    case: str,
    hosts: tuple[str, ...],
    groups: tuple[str, ...],
    args: tuple[str, ...],
    reason: str,
    valid: str,
    not_before: str | None,
    out: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
) -> int:
    """Make and sign an order (the issuer is the signing key's holder)."""
    check_case_id(case)
    if not hosts and not groups:
        raise UsageError("an order needs a target", "give --host HOST-ID or --group NAME")
    for name in (*hosts, *groups):
        check_host_id(name, "target")
    try:
        start = parse_rfc3339_ns(not_before) if not_before else None
    except ValueError as exc:
        raise UsageError(f"--not-before {not_before} is not an RFC 3339 time") from exc
    seconds = parse_duration(valid)
    if out.exists():
        raise UsageError(f"{out} already exists", "choose another --out")
    signer = load_signer(key_ref, passphrase_file)
    doc = new_order(
        signer=signer,
        action=action,
        case=case,
        hosts=hosts,
        groups=groups,
        arguments=parse_arguments(action, args),
        reason=reason,
        not_before_ns=start,
        valid_ns=seconds * 1_000_000_000,
    )
    out.write_bytes(order_bytes(doc))
    click.echo(f"order {doc['id']} ({action}) written to {out}")
    return 0


@order.command("cosign")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@key_options
def cosign_cmd(file: Path, key_ref: str | None, passphrase_file: Path | None) -> int:
    """Add your signature to an order (the two-person rule), in place."""
    doc = _load(file)
    try:
        signed = cosign(doc, load_signer(key_ref, passphrase_file))
    except OrderRefused as exc:
        raise UsageError(f"{file}: {exc.reason}", "do not co-sign an order whose signatures fail") from exc
    tmp = file.with_name(file.name + ".part")
    tmp.write_bytes(order_bytes(signed))
    tmp.replace(file)
    click.echo(f"order {signed['id']} now has {len(signed['signatures'])} signatures")
    return 0


@order.command("show")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True)
def show_cmd(file: Path, as_json: bool) -> int:
    """Print an order and whether its signatures hold (who may command is each host's decision)."""
    doc = _load(file)
    try:
        verify_signatures(doc)
        problem = ""
    except OrderRefused as exc:
        problem = exc.reason
    if as_json:
        print_json({"order": doc, "signatures_ok": not problem, "problem": problem})
    else:
        click.echo(describe(doc))
        click.echo("signatures: " + ("ok" if not problem else f"FAILED: {problem}"))
    return 1 if problem else 0


@order.command("send")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--spool", type=click.Path(path_type=Path, file_okay=False), help="Drop it into this spool.")
@click.option("--vault", "vault_url", metavar="s3://BUCKET[/PREFIX]", help="Put it in the vault's orders/.")
def send_cmd(file: Path, spool: Path | None, vault_url: str | None) -> int:
    """Deliver an order: into a spool directory (scp, Ansible, GPO…) or the vault's orders/."""
    if not spool and not vault_url:
        raise UsageError("nowhere to send the order", "give --spool DIR or --vault s3://BUCKET")
    doc = _load(file)
    if spool:
        click.echo(f"dropped {delivery.to_spool(doc, spool)}")
    if vault_url:
        from manifest.vault.client import make_client
        from manifest.vault.location import resolve

        for key in delivery.to_vault(doc, resolve(vault_url), make_client()):
            click.echo(f"stored {key}")
    return 0


COMMANDS: list[click.Command] = [order]
