"""`sealbox keys ...`: make, list, show, export and trust Ed25519 keys."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import click

from agent.commands.common import print_json
from manifest.errors import UsageError
from manifest.signing.keys import KeyStore, read_passphrase_file


@click.group()
def keys() -> None:
    """Manage signing keys and the keys you trust."""


@keys.command()
@click.option("--name", required=True, help="Holder's full name.")
@click.option("--role", required=True, help="e.g. 'IT responder', 'detective'.")
@click.option("--org", "organization", required=True, help="Organization, e.g. 'City IT'.")
@click.option("--contact", default="", help="Phone or e-mail; shown with every custody event you sign.")
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Encrypt the private key with the passphrase in this file.",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default signing key.")
def generate(
    name: str, role: str, organization: str, contact: str, passphrase_file: Path | None, make_default: bool
) -> None:
    """Create a new Ed25519 key pair in the key store."""
    store = KeyStore.default()
    stored = store.generate(name, role, organization, read_passphrase_file(passphrase_file), contact)
    click.echo(stored.identity.fingerprint)
    click.echo(f"key for {name} ({role}, {organization}) stored in {stored.directory}", err=True)
    if make_default:
        store.set_default(stored.identity.fingerprint)
        click.echo("it is the default signing key (used when no --key is given)", err=True)
    elif len(store.own_keys()) > 1 and store.default_fingerprint() is None:
        click.echo(
            f"you now have {len(store.own_keys())} keys: choose the one used without --key with "
            f"`sealbox keys default {stored.identity.fingerprint}`",
            err=True,
        )


@keys.command("default")
@click.argument("fp", required=False)
def default_key(fp: str | None) -> None:
    """Make FP the key used when no --key is given (without FP: show the default)."""
    store = KeyStore.default()
    if fp is None:
        chosen = store.default_fingerprint()
        own = store.own_keys()
        if chosen is None and len(own) == 1:
            chosen = own[0].identity.fingerprint
        if chosen is None:
            raise UsageError("no default key is set", "set one with `sealbox keys default FP`")
        click.echo(chosen)
        return
    identity = store.set_default(fp)
    click.echo(f"default signing key: {identity.fingerprint} ({identity.name})")


@keys.command()
@click.argument("fp")
@click.option(
    "--force", is_flag=True, help="Delete even a key that signed events of a bundle on this machine."
)
def delete(fp: str, force: bool) -> None:
    """Delete a key (your own, with its private key, or a trusted one). A key that signed
    anything in a bundle on this machine is kept unless --force."""
    identity, used = KeyStore.default().delete(fp, force=force)
    click.echo(f"deleted {identity.fingerprint} ({identity.name})")
    for path in used:
        click.echo(f"warning: {path} holds events it signed; trust its public key to verify them", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_keys(as_json: bool) -> None:
    """List your keys and the keys you trust."""
    store = KeyStore.default()
    rows = [("own", k) for k in store.own_keys()] + [("trusted", k) for k in store.trusted_keys()]
    if as_json:
        print_json([{"type": kind, **asdict(k.identity), "encrypted": k.encrypted} for kind, k in rows])
        return
    for warning in store.warnings:
        click.echo(f"warning: {warning.line()}", err=True)
    if not rows:
        click.echo(f"no keys in {store.home}; create one with `sealbox keys generate`", err=True)
    chosen = store.default_fingerprint()
    for kind, k in rows:
        i = k.identity
        lock = " (passphrase)" if k.encrypted else ""
        default = " (default)" if kind == "own" and i.fingerprint == chosen else ""
        click.echo(f"{kind:8} {i.fingerprint}  {i.name} / {i.role} / {i.organization}{lock}{default}")


@keys.command()
@click.argument("fp")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(fp: str, as_json: bool) -> None:
    """Show one key's identity and public key."""
    k = KeyStore.default().find(fp)
    if as_json:
        print_json({**asdict(k.identity), "directory": str(k.directory), "private": k.has_private})
        return
    i = k.identity
    click.echo(
        f"fingerprint:  {i.fingerprint}\nname:         {i.name}\nrole:         {i.role}\n"
        f"organization: {i.organization}\ncontact:      {i.contact}\n"
        f"private key:  {'yes' if k.has_private else 'no'}\n"
        f"directory:    {k.directory}"
    )
    click.echo((k.directory / "public.pem").read_text(), nl=False)


@keys.command("export-public")
@click.argument("fp")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False))
def export_public(fp: str, out: Path) -> None:
    """Write a key's public parts (PEM, minisign, identity) to DIR for others to trust."""
    k = KeyStore.default().find(fp)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("public.pem", "minisign.pub", "identity.json"):
        target = out / name
        if target.exists():
            raise UsageError(f"{target} already exists", "choose an empty --out directory")
        shutil.copyfile(k.directory / name, target)
    click.echo(str(out / "public.pem"))


@keys.command()
@click.argument("pubkey_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--name", default="", help="Holder's name (default: from identity.json beside it).")
@click.option("--role", default="")
@click.option("--org", "organization", default="")
def trust(pubkey_file: Path, name: str, role: str, organization: str) -> None:
    """Trust a public key (PEM) for verifying bundles and custody events."""
    identity = KeyStore.default().trust(pubkey_file, name, role, organization)
    click.echo(f"trusted {identity.fingerprint} ({identity.name})")


@keys.command()
@click.argument("fp")
def untrust(fp: str) -> None:
    """Stop trusting a key."""
    identity = KeyStore.default().untrust(fp)
    click.echo(f"no longer trusted: {identity.fingerprint} ({identity.name})")


@keys.command("trust-tsa")
@click.argument("cert_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def trust_tsa(cert_file: Path) -> None:
    """Trust a timestamp authority's CA certificate (PEM) for checking .tsr timestamps."""
    target = KeyStore.default().trust_tsa(cert_file)
    click.echo(f"trusted TSA certificate kept as {target}")


COMMANDS = [keys]
