"""`sealbox vault init|push|verify|pull|ls|serve`: bundles into S3 Object Lock (WORM) storage.

Endpoint and credentials come from boto3's standard configuration (AWS_ENDPOINT_URL,
AWS_PROFILE, ~/.aws/config and credentials), never from this command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

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


COMMANDS = [vault]
