"""`sealbox agent run|trust|id`: the daemon that carries out signed orders on this host."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from agent.daemon.trust import config_dir, load_config, parse_require, trust_order_key
from manifest.errors import UsageError
from manifest.signing.keys import KeyStore, Signer

DEFAULT_STATE = Path("/var/lib/sealbox")
AGENT_ROLE = "sealbox agent"


def parse_interval(text: str) -> float:
    from agent.isolation.model import parse_duration

    seconds = parse_duration(text)
    if seconds < 1:
        raise UsageError(f"--interval {text} is shorter than a second")
    return float(seconds)


def agent_signer(store: KeyStore, host: str) -> Signer:
    """The agent's own key (made on first start): it signs status documents and custody events."""
    own = [k for k in store.own_keys() if k.identity.role == AGENT_ROLE]
    if not own:
        made = store.generate(f"agent {host}", AGENT_ROLE, "")
        return store.load_signer(made.identity.fingerprint)
    return store.load_signer(own[0].identity.fingerprint)


@click.group("agent")
def agent_group() -> None:
    """Carry out signed orders from a spool directory or the vault (see `sealbox order`)."""


@agent_group.command("run")
@click.option("--spool", type=click.Path(path_type=Path, file_okay=False), help="Watch this directory.")
@click.option("--vault", "vault_url", metavar="s3://BUCKET[/PREFIX]", help="Poll this vault's orders/.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_STATE,
    show_default=True,
    help="Journal, bundles, isolation state, the agent's key store (keys/).",
)
@click.option(
    "--config-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="orders-trusted/ and agent.toml (default /etc/sealbox or $SEALBOX_CONFIG_DIR).",
)
@click.option("--interval", default="30s", show_default=True, help="Heartbeat, drift check and poll period.")
@click.option(
    "--heartbeat",
    "heartbeat",
    metavar="DURATION",
    help="Time between heartbeats (default: the interval); large fleets save requests with e.g. 5m.",
)
@click.option("--host-id", help="This host's id (default: hostname-machine-id, or $SEALBOX_HOST_ID).")
@click.option("--group", "groups", multiple=True, help="Group this host belongs to (repeatable).")
@click.option(
    "--require", "require", multiple=True, metavar="ACTION=N", help="Signers needed, e.g. isolate=2."
)
@click.option("--once", is_flag=True, help="One pass: take what is there, carry it out, heartbeat, exit.")
def run_cmd(
    spool: Path | None,
    vault_url: str | None,
    state: Path,
    config_dir: Path | None,
    interval: str,
    heartbeat: str | None,
    host_id: str | None,
    groups: tuple[str, ...],
    require: tuple[str, ...],
    once: bool,
) -> int:
    """Run the agent until stopped (SIGTERM); an order under way is resumed at the next start."""
    import structlog  # the runner's log (with rich, for its tracebacks): only `agent run` logs

    from agent.daemon import hostid
    from agent.daemon.runner import Agent, Settings, single_instance
    from agent.daemon.trust import config_dir as default_config

    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if spool is None and vault_url is None:
        raise UsageError("no order source", "give --spool DIR, --vault s3://BUCKET, or both")
    state = state.resolve()
    # The library finds its state and keys through these; the agent's are under --state.
    os.environ.setdefault("SEALBOX_HOME", str(state / "keys"))
    os.environ.setdefault("SEALBOX_STATE_DIR", str(state / "isolation"))
    Path(os.environ["SEALBOX_STATE_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    config = default_config(config_dir)
    settings_file = load_config(config)
    location = None
    if vault_url:
        from manifest.vault.location import parse

        location = parse(vault_url)
    me = hostid.host_id(host_id)
    settings = Settings(
        state=state,
        config=config,
        host=me,
        spool=spool.resolve() if spool else None,
        vault=location,
        interval=parse_interval(interval),
        groups=tuple(dict.fromkeys((*settings_file.groups, *groups))),
        require={**settings_file.require, **parse_require(require)},
        once=once,
        heartbeat=parse_interval(heartbeat) if heartbeat else 0.0,
    )
    with single_instance(state):
        signer = agent_signer(KeyStore.default(), me)
        agent = Agent(settings, signer)
        if not agent.trust.keys:
            click.echo(
                f"sealbox: warning: no key in {config / 'orders-trusted'}: every order will be refused",
                err=True,
            )

        def stop(_signum: int, _frame: object) -> None:
            agent.stop.set()
            agent.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"sealbox agent {me} (key {signer.fingerprint}) running", err=True)
        agent.run()
    return 0


@agent_group.command("trust")
@click.argument("pubkey", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--config-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", default="", help="Holder's name (default: from identity.json beside the key).")
def trust_cmd(pubkey: Path, config_dir: Path | None, name: str) -> int:
    """Let the holder of PUBKEY (a public.pem) give this host orders."""
    directory = _config(config_dir)
    identity = trust_order_key(directory, pubkey, name)
    click.echo(f"may give orders: {identity.name} {identity.fingerprint} ({directory / 'orders-trusted'})")
    return 0


def _config(given: Path | None) -> Path:
    return config_dir(given)


@agent_group.command("id")
@click.option("--host-id", help="Override (as for `agent run`).")
def id_cmd(host_id: str | None) -> int:
    """Print this host's id, as orders must name it."""
    from agent.daemon import hostid

    click.echo(hostid.host_id(host_id))
    return 0


COMMANDS: list[click.Command] = [agent_group]
