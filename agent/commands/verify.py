"""`sealbox verify`: every rule of SPEC §6, all findings, exit 0 verified / 1 findings / 2 usage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from manifest.errors import UsageError
from manifest.verify.stream import start_stream

if TYPE_CHECKING:
    from manifest.verify import VerifyReport
    from manifest.verify.stream import StreamRun

# The rest is imported once the payload workers run: they start before the heavy imports
# (cryptography, the rules), which the main process then does while they hash.


def full_fingerprints(values: tuple[str, ...]) -> set[str]:
    from manifest.signing.keys import FP_PREFIX, normalize_fp

    out = set()
    for value in values:
        hexpart = normalize_fp(value)
        if len(hexpart) != 64:
            raise UsageError(
                f"--trust '{value}' is not a full fingerprint", "trust needs all 64 hex digits: SHA256:<hex>"
            )
        out.add(FP_PREFIX + hexpart)
    return out


def print_report(report: VerifyReport) -> None:
    for finding in report.findings:
        click.echo(f"FAIL {finding.line()}")
    trust = "trusted" if report.signer_trusted else "NOT trusted"
    click.echo(f"signer: {report.signer} ({trust})")
    for actor in report.actors:
        mark = "trusted" if actor["trusted"] else "untrusted"
        click.echo(
            f"custody actor: {actor['fingerprint']} {actor['name']} / {actor['role']} / "
            f"{actor['organization']} ({mark})"
        )
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.ok:
        click.echo(
            f"VERIFIED {report.bundle}: {report.payload_files} payload files, "
            f"{report.payload_bytes} bytes, {report.items} items, "
            f"{report.custody_events} custody events"
        )
    else:
        click.echo(f"NOT VERIFIED {report.bundle}: {len(report.findings)} finding(s)")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--trust", multiple=True, metavar="FP", help="Trust this signer fingerprint (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel hashing workers.")
@click.option(
    "--tsa-ca",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CA certificates of the timestamp authority: the .tsr must verify against them.",
)
@click.option(
    "--receipt",
    "receipts",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A custody receipt (from `custody add`, export, receive): the log must still hold its event.",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also check that BUNDLE follows up this earlier bundle (Sealbox-Previous-Bundle).",
)
@click.option("--vault", "vault_url", metavar="s3://BUCKET", help="Also check custody against the vault.")
def verify(
    bundle: Path,
    trust: tuple[str, ...],
    as_json: bool,
    workers: int | None,
    tsa_ca: Path | None,
    previous: Path | None,
    receipts: tuple[Path, ...],
    vault_url: str | None,
) -> int:
    """Verify BUNDLE: bag, hashes, signatures, trust, items, custody chain and timestamp."""
    stream = start_stream(bundle, workers)  # None for a small bundle, or no sealbox bundle
    try:
        return _verify(bundle, trust, as_json, workers, tsa_ca, previous, receipts, vault_url, stream)
    finally:
        if stream is not None:
            stream.cancel()  # taken already, unless verify ended early


def _is_plain_bag(bundle: Path) -> bool:
    from manifest.handover.plainbag import is_plain_bag

    return is_plain_bag(bundle)


def _verify(
    bundle: Path,
    trust: tuple[str, ...],
    as_json: bool,
    workers: int | None,
    tsa_ca: Path | None,
    previous: Path | None,
    receipts: tuple[Path, ...],
    vault_url: str | None,
    stream: StreamRun | None,
) -> int:
    from agent.commands.common import print_json
    from manifest.verify import verify_bundle

    # A run started means metadata/items.jsonl is there: a sealbox bundle, no plain bag.
    if stream is None and _is_plain_bag(bundle):  # a BagIt bag, no sealbox bundle: integrity only
        from agent.commands.plainbag import verify_plain_bag

        given = {
            "--trust": trust,
            "--tsa-ca": tsa_ca,
            "--previous": previous,
            "--receipt": receipts,
            "--vault": vault_url,
        }
        return verify_plain_bag(bundle, as_json, workers, [name for name, v in given.items() if v])
    report = verify_bundle(
        bundle,
        full_fingerprints(trust),
        workers=workers,
        tsa_ca=tsa_ca,
        previous=previous,
        receipts=receipts,
        stream=stream,
    )
    if vault_url:
        from manifest.vault.witness import vault_tail_findings

        report.findings.extend(vault_tail_findings(bundle, vault_url))
    if as_json:
        print_json(report.as_dict())
    else:
        print_report(report)
    return 0 if report.ok else 1


COMMANDS = [verify]
