"""`sealbox export` and `sealbox receive`: the signed hand-over package (SPEC §7)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agent.commands.common import key_options, load_signer, print_json, witness
from agent.commands.verify import full_fingerprints
from manifest.handover.export import export_bundle
from manifest.handover.package import Limits
from manifest.handover.receive import keys_to_remember, receive_package
from manifest.signing.keys import KeyStore


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "to", required=True, metavar='"NAME, ORG"', help="Who receives the package.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@key_options
@click.option("--encrypt-to", metavar="AGE_RECIPIENT", help="Encrypt the package to this age1... key.")
@click.option("--tsa", "tsa_url", metavar="URL", help="Get an RFC 3161 timestamp over the tagmanifest.")
@click.option("--trust", multiple=True, metavar="FP", help="Also trust this bundle signer (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def export(
    bundle: Path,
    to: str,
    out_dir: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
    encrypt_to: str | None,
    tsa_url: str | None,
    trust: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify BUNDLE, log the hand-over, and write a signed package into --out."""
    signer = load_signer(key_ref, passphrase_file)
    result = export_bundle(
        bundle,
        signer,
        to,
        out_dir,
        encrypt_to=encrypt_to,
        tsa_url=tsa_url,
        trusted=full_fingerprints(trust),
    )
    witness(bundle, result.event)
    if as_json:
        print_json(
            {
                "package": str(result.package),
                "sha256": result.sha256,
                "sha256_file": str(result.sha256_path),
                "signature": str(result.sig_path),
                "exporter_key": str(result.pub_path),
                "exporter": signer.fingerprint,
                "encrypted": result.encrypted,
                "timestamped": result.timestamped,
                "custody_seq": result.event["seq"],
                "receipt": str(result.receipt),
            }
        )
        return
    click.echo(str(result.package))
    click.echo(f"receipt: {result.receipt}", err=True)
    click.echo(
        f"exported to {to}: sha256 {result.sha256}; signed by {signer.fingerprint}; "
        f"custody event {result.event['seq']}",
        err=True,
    )
    click.echo(
        f"send {result.package.name} with .sha256, .sig and .pub.pem; tell the recipient your "
        "fingerprint by another channel",
        err=True,
    )


@click.command()
@click.argument("package", type=click.Path(path_type=Path, dir_okay=False))
@key_options
@click.option("--trust", multiple=True, metavar="FP", help="Trust this exporter / signer (repeatable).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--identity", "identity", type=click.Path(path_type=Path, dir_okay=False), help="age identity file."
)
@click.option("--max-entries", type=click.IntRange(1), default=Limits.max_entries, show_default=True)
@click.option("--max-entry-size", type=click.IntRange(0), default=Limits.max_entry_bytes, show_default=True)
@click.option("--max-total-size", type=click.IntRange(0), default=Limits.max_total_bytes, show_default=True)
@click.option(
    "--remember-trust/--no-remember-trust",
    "remember",
    default=None,
    help="Keep the --trust keys as trusted keys (`keys trust`), so later `verify`, `report` and "
    "`custody show` need no --trust (default: ask on a terminal, else do not).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def receive(
    package: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
    trust: tuple[str, ...],
    out_dir: Path,
    identity: Path | None,
    max_entries: int,
    max_entry_size: int,
    max_total_size: int,
    remember: bool | None,
    as_json: bool,
) -> None:
    """Check PACKAGE, extract it safely, verify the bundle, and sign a `received` event."""
    signer = load_signer(key_ref, passphrase_file)
    store = KeyStore.default()
    own = {k.identity.fingerprint for k in store.own_keys()}
    trusted = full_fingerprints(trust) | store.trusted_fingerprints() | own
    result = receive_package(
        package,
        signer,
        trusted,
        out_dir,
        identity_file=identity,
        limits=Limits(max_entries, max_entry_size, max_total_size),
        store=store,
    )
    witness(result.bundle, result.event)
    remembered = remember_trust(result.bundle, full_fingerprints(trust), store, remember, quiet=as_json)
    if as_json:
        print_json(
            {
                "bundle": str(result.bundle),
                "exporter": result.exporter,
                "package_sha256": result.sha256,
                "verified": result.report.ok,
                "signer": result.report.signer,
                "custody_seq": result.event["seq"],
                "receipt": str(result.receipt),
                "remembered_trust": remembered,
                **{k: str(v) for k, v in result.extras.items()},
            }
        )
        return
    click.echo(str(result.bundle))
    click.echo(f"receipt: {result.receipt}", err=True)
    click.echo(
        f"received and VERIFIED: exported by {result.exporter}, bundle signed by {result.report.signer}; "
        f"custody event {result.event['seq']} signed by {signer.fingerprint}",
        err=True,
    )


def remember_trust(
    bundle: Path, fps: set[str], store: KeyStore, remember: bool | None, *, quiet: bool
) -> list[str]:
    """Offer to keep the keys trusted for this receive only; say what was (not) kept."""
    offer = keys_to_remember(bundle, fps, store)
    if not offer:
        return []
    names = ", ".join(f"{i.fingerprint} ({i.name})" for i, _ in offer)
    if remember is None and not quiet and sys.stdin.isatty():
        remember = click.confirm(
            f"Trust {names} from now on (later `verify`, `report`, `custody show` then need no --trust)?",
            default=True,
            err=True,
        )
    if not remember:
        hint = " or pass --remember-trust" if remember is None else ""
        click.echo(
            f"trusted for this receive only: {names}; to keep trusting, run "
            f"`sealbox keys trust` with their public key{hint}",
            err=True,
        )
        return []
    kept = [store.trust_public(public, identity).fingerprint for identity, public in offer]
    click.echo(f"now trusted in {store.home}: {names} (undo with `sealbox keys untrust FP`)", err=True)
    return kept


COMMANDS = [export, receive]
