"""`sealbox vault init|push|verify|pull|ls|serve`: bundles into S3 Object Lock (WORM) storage.

Endpoint and credentials come from boto3's standard configuration (AWS_ENDPOINT_URL,
AWS_PROFILE, ~/.aws/config and credentials), never from this command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from agent.commands.common import key_options, load_signer, print_json
from agent.commands.verify import full_fingerprints
from manifest.errors import UsageError


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen '{value}' is not HOST:PORT", "e.g. --listen 127.0.0.1:8333")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.group()
def vault() -> None:
    """Store sealed bundles in WORM object storage (S3 Object Lock) and verify them there."""


@vault.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the vault keeps its data.",
)
@click.option("--listen", default="127.0.0.1:8333", show_default=True, help="HOST:PORT of the S3 endpoint.")
def serve(data: Path, listen: str) -> int:
    """Run the embedded vault (SeaweedFS): S3 on --listen and nothing else reachable."""
    from manifest.vault.server import Identity, run_embedded

    host, port = _parse_listen(listen)

    def announce(url: str, identities: list[Identity]) -> None:
        creds = data.resolve() / "credentials"
        click.echo(f"S3 endpoint: {url}")
        click.echo(f"credentials: {creds} (profiles: {', '.join('sealbox-' + i.name for i in identities)})")
        click.echo(
            f"use: AWS_ENDPOINT_URL={url} AWS_SHARED_CREDENTIALS_FILE={creds} AWS_PROFILE=sealbox-uploader "
            "sealbox vault push BUNDLE --vault s3://BUCKET",
            nl=True,
        )
        sys.stdout.flush()

    return run_embedded(data.resolve(), host, port, announce)


def vault_option(func: Any) -> Any:
    return click.option(
        "--vault",
        "vault_url",
        envvar="SEALBOX_VAULT",
        metavar="s3://BUCKET[/PREFIX]",
        help="The vault (or set SEALBOX_VAULT). Endpoint and credentials: AWS_ENDPOINT_URL, AWS_PROFILE...",
    )(func)


def retention_options(func: Any) -> Any:
    func = click.option(
        "--mode",
        type=click.Choice(["compliance", "governance"], case_sensitive=False),
        default="compliance",
        show_default=True,
        help="Object Lock mode: compliance cannot be shortened or lifted by anyone.",
    )(func)
    return click.option(
        "--retention", default="7y", show_default=True, help="How long nobody can delete it: 7y, 90d..."
    )(func)


def trust_option(func: Any) -> Any:
    return click.option(
        "--trust", multiple=True, metavar="FP", help="Trust this signer fingerprint (repeatable)."
    )(func)


@vault.command()
@vault_option
@retention_options
def init(vault_url: str | None, retention: str, mode: str) -> None:
    """Create (or check) a bucket with versioning, Object Lock and a default retention."""
    from manifest.vault.bucket import init_bucket, parse_retention
    from manifest.vault.client import make_client
    from manifest.vault.location import resolve

    location = resolve(vault_url)
    click.echo(init_bucket(make_client(), location, parse_retention(retention, mode)))


@vault.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@vault_option
@retention_options
@click.option(
    "--legal-hold", is_flag=True, help="Also set a legal hold on every object (in the same request)."
)
@click.option(
    "--attempts", type=click.IntRange(1, 20), default=4, show_default=True, help="Tries while unreachable."
)
@click.option("--reason", default="", help="Why it is stored (custody log).")
@trust_option
@key_options
def push(
    bundle: Path,
    vault_url: str | None,
    retention: str,
    mode: str,
    legal_hold: bool,
    attempts: int,
    reason: str,
    trust: tuple[str, ...],
    key_ref: str | None,
    passphrase_file: Path | None,
) -> None:
    """Verify BUNDLE, store every file with its SHA-256 and retention, then sign a 'stored' event."""
    from manifest.vault.bucket import parse_retention
    from manifest.vault.location import resolve
    from manifest.vault.push import push as run_push
    from manifest.vault.push import push_with_retries, summary

    location = resolve(vault_url)
    lock = parse_retention(retention, mode)
    signer = load_signer(key_ref, passphrase_file)
    trusted = full_fingerprints(trust)

    def on_retry(attempt: int, wait: float, exc: Exception) -> None:
        click.echo(
            f"vault unreachable (attempt {attempt} of {attempts}); trying again in {wait:.0f} s", err=True
        )

    result = push_with_retries(
        attempts,
        lambda: run_push(
            bundle, location, signer, lock, legal_hold=legal_hold, trusted=trusted, reason=reason
        ),
        on_retry,
    )
    click.echo(summary(result))


@vault.command(name="verify")
@click.argument("ref", metavar="CASE/BUNDLE")
@vault_option
@trust_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def verify_cmd(ref: str, vault_url: str | None, trust: tuple[str, ...], as_json: bool) -> int:
    """Verify the vault's copy of CASE/BUNDLE where it lies: content, signatures, custody, retention."""
    from manifest.vault.location import resolve, split_case_bundle
    from manifest.vault.remote import verify_remote

    location = resolve(vault_url)
    case, name = split_case_bundle(ref)
    report = verify_remote(location, case, name, full_fingerprints(trust))
    if as_json:
        print_json(report.as_dict())
        return 0 if report.ok else 1
    for finding in report.findings:
        click.echo(f"FAIL {finding.line()}")
    details = (report.stored or {}).get("details", {})
    where = f"{location.url}/{case}/{name}"
    if report.ok:
        click.echo(
            f"VERIFIED {where}: {report.objects} objects, {report.payload_bytes} payload bytes, "
            f"{report.custody_events} continuation events, "
            f"{details.get('mode')} until {details.get('retain_until')}"
            f", signer {report.signer} (trusted)"
        )
    else:
        click.echo(f"NOT VERIFIED {where}: {len(report.findings)} finding(s)")
    return 0 if report.ok else 1


@vault.command()
@click.argument("ref", metavar="CASE/BUNDLE")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@vault_option
@trust_option
def pull(ref: str, out_dir: Path, vault_url: str | None, trust: tuple[str, ...]) -> int:
    """Download CASE/BUNDLE (its exact stored versions) into --out, then verify it."""
    from manifest.vault.location import resolve, split_case_bundle
    from manifest.vault.pull import pull as run_pull

    location = resolve(vault_url)
    case, name = split_case_bundle(ref)
    target, remote, local = run_pull(location, case, name, out_dir, full_fingerprints(trust))
    findings = remote.findings + [f for f in local.findings if f not in remote.findings]
    for finding in findings:
        click.echo(f"FAIL {finding.line()}")
    click.echo(str(target))
    if findings:
        click.echo(f"NOT VERIFIED {target}: {len(findings)} finding(s)", err=True)
        return 1
    click.echo(
        f"VERIFIED {target}: {local.payload_files} payload files, {local.payload_bytes} bytes, "
        f"{local.custody_events} custody events",
        err=True,
    )
    return 0


@vault.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False, exists=True))
def witness(bundle: Path) -> None:
    """Write BUNDLE's custody events that its vault does not hold yet (e.g. appended offline)."""
    from manifest.vault.witness import witness_bundle

    count = witness_bundle(bundle)
    click.echo(f"witnessed {count} custody event(s) of {bundle.name} in the vault")


@vault.command(name="ls")
@click.argument("case", required=False)
@vault_option
def ls_cmd(case: str | None, vault_url: str | None) -> None:
    """List the vault's cases, or CASE's bundles with host, size, retention and last custody event."""
    from manifest.vault.client import make_client
    from manifest.vault.listing import list_bundles, list_cases
    from manifest.vault.location import resolve

    location = resolve(vault_url)
    client = make_client()
    if case is None:
        for name, count in list_cases(client, location):
            click.echo(f"{name}  {count} bundle(s)")
        return
    for row in list_bundles(client, location, case):
        click.echo(row.line())


COMMANDS = [vault]
