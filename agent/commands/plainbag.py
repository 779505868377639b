"""`sealbox verify` on a plain BagIt bag: integrity only, said plainly before anything else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agent.commands.common import print_json
from manifest.errors import UsageError
from manifest.handover.plainbag import validate_plain_bag

if TYPE_CHECKING:
    from pathlib import Path

HEADLINE = "BagIt bag — no signature, no custody: integrity only"


def verify_plain_bag(bag: Path, as_json: bool, workers: int | None, bundle_options: list[str]) -> int:
    """Validate `bag` as RFC 8493 BagIt, print errors and warnings; exit 0 valid, 1 invalid.
    Options that check what only a sealbox bundle has are refused, never silently ignored."""
    if bundle_options:
        raise UsageError(
            f"{bag} is a plain BagIt bag (no signature, no custody): {', '.join(bundle_options)} "
            "cannot be checked on it",
            "verify it without those options for its integrity",
        )
    report = validate_plain_bag(bag, workers=workers)
    if as_json:
        print_json({"headline": HEADLINE, **report.as_dict()})
        return 0 if report.ok else 1
    click.echo(HEADLINE)
    for finding in report.errors:
        click.echo(f"FAIL {finding.line()}")
    for finding in report.warnings:
        click.echo(f"WARN {finding.line()}")
    version = f"BagIt {report.version} bag" if report.version else "BagIt bag"
    if report.ok:
        click.echo(
            f"VALID {version} {bag}: {report.payload_files} payload files, {report.payload_bytes} bytes, "
            f"checked with {', '.join(report.algorithms)}; {len(report.warnings)} warning(s)"
        )
    else:
        click.echo(
            f"NOT VALID {version} {bag}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )
    return 0 if report.ok else 1
