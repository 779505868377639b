"""`sealbox fleet status`: every agent's heartbeat, isolation and last order, from the vault."""

from __future__ import annotations

import json
import time

import click

from agent.daemon.fleet import fleet_rows, render


@click.group("fleet")
def fleet_group() -> None:
    """The hosts that run `sealbox agent`, as the vault sees them."""


@fleet_group.command("status")
@click.option(
    "--vault", "vault_url", metavar="s3://BUCKET[/PREFIX]", help="The fleet's vault (or $SEALBOX_VAULT)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", "watch", is_flag=True, help="Refresh until interrupted.")
@click.option("--every", default=5.0, show_default=True, help="Seconds between refreshes with --watch.")
def status_cmd(vault_url: str | None, as_json: bool, watch: bool, every: float) -> int:
    """One row per host: last heartbeat (stale marked), isolation, last order and result, last bundle."""
    from manifest.vault.client import make_client
    from manifest.vault.location import resolve

    location = resolve(vault_url)
    client = make_client()
    while True:
        rows = fleet_rows(client, location)
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in rows], indent=2, sort_keys=True))
        else:
            if watch:
                click.clear()
            click.echo(render(rows) if rows else f"no agent has reported to {location.url} yet")
        if not watch:
            return 0
        time.sleep(max(0.5, every))


COMMANDS: list[click.Command] = [fleet_group]
