"""`sealbox report`: the custody report as one self-contained HTML file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from agent.commands.verify import full_fingerprints
from manifest.errors import UsageError
from manifest.handover.report import DEFAULT_ITEM_ROWS, render_report
from manifest.verify import verify_bundle


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out", "out", type=click.Path(path_type=Path, dir_okay=False), help="Write here (default: stdout)."
)
@click.option("--trust", multiple=True, metavar="FP", help="Trust this signer fingerprint (repeatable).")
@click.option(
    "--rows", type=click.IntRange(0), default=DEFAULT_ITEM_ROWS, show_default=True, help="Item rows."
)
def report(bundle: Path, out: Path | None, trust: tuple[str, ...], rows: int) -> int:
    """Verify BUNDLE and write its custody report (HTML) for a case file."""
    result = verify_bundle(bundle, full_fingerprints(trust))
    html = render_report(bundle, result, rows=rows)
    if out is None:
        click.echo(html, nl=False)
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise UsageError(f"{out} already exists", "choose another --out") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        verdict = "VERIFIED" if result.ok else f"NOT VERIFIED ({len(result.findings)} finding(s))"
        click.echo(f"{out}: custody report for {bundle.name}, {verdict}", err=True)
    return 0 if result.ok else 1


COMMANDS = [report]
