"""`sealbox watch`: hold a host under watch, sealing a follow-up bundle whenever its sources change."""

from __future__ import annotations

from pathlib import Path

import click

from agent.commands.collect import cli_sources, warn
from agent.commands.common import case_out_options, key_options, load_signer
from agent.watch import Watch, stop_on_signals
from collectors.collection import CollectionRequest, CollectionResult
from manifest.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_interval(text: str) -> float:
    """`30s`, `15m`, `1h` (or plain seconds) -> seconds, at least 1 (bundle names have seconds)."""
    clean = text.strip().lower()
    unit = clean[-1:] if clean[-1:] in _UNITS else "s"
    number = clean[:-1] if clean[-1:] in _UNITS else clean
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise UsageError(f"--every '{text}' is not an interval", "use e.g. 30s, 15m or 1h") from None
    if seconds < 1:
        raise UsageError(f"--every '{text}' is shorter than a second", "use e.g. 30s, 15m or 1h")
    return seconds


def announce(result: CollectionResult) -> None:
    s = result.stats
    click.echo(str(result.bundle))
    click.echo(f"sealed: {s.items} items; {s.files} files, {s.bytes} bytes copied", err=True)
    warn(result)


@click.command()
@case_out_options
@key_options
@click.option("--every", default="15m", show_default=True, help="How often to look for changes.")
@click.option(
    "--previous",
    type=click.Path(path_type=Path, file_okay=False),
    help="Start from this sealed bundle of the same sources instead of a full first collection.",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths or names matching GLOB.")
@click.option("--reason", default="", help="Why the host is watched (custody log of each bundle).")
@click.argument("paths", nargs=-1, required=True)
def watch(
    case: str,
    out_dir: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
    every: str,
    previous: Path | None,
    exclude: tuple[str, ...],
    reason: str,
    paths: tuple[str, ...],
) -> None:
    """Collect PATHS, then seal a follow-up bundle of what changed, every interval with changes.

    Runs until SIGTERM or Ctrl-C, which end it between collections (one under way is finished).
    Each bundle names the one before it (Sealbox-Previous-Bundle); `sealbox verify --previous`
    checks the link."""
    interval = parse_interval(every)
    request = CollectionRequest(
        case=case,
        out_dir=out_dir,
        signer=load_signer(key_ref, passphrase_file),
        sources=cli_sources(paths, exclude, None, None),
        reason=reason,
        previous=previous,
        private_mounts=True,
    )
    if not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist", "create it or choose another --out")
    with stop_on_signals(Watch(request, interval, on_bundle=announce)) as running:
        bundles = running.run()
    click.echo(f"watch ended: {len(bundles)} bundle(s) sealed", err=True)


COMMANDS = [watch]
