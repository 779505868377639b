"""A person with a key, a sealed bundle and an initialised vault bucket, for the vault tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conftest import Cli
from custody_helpers import Person, collect_bundle, make_person

if TYPE_CHECKING:
    from pathlib import Path

    from vault_server import VaultServer


def vault_cli(person: Person, vault: VaultServer, profile: str = "uploader") -> Cli:
    """The person's CLI with the vault's endpoint and a profile in the environment."""
    cli = Cli(person.cli.home)
    cli.env = vault.env(profile, base=person.cli.env)
    return cli


def new_bucket(vault: VaultServer, person: Person) -> str:
    bucket = vault.new_bucket_name()
    admin = vault_cli(person, vault, "admin")
    proc = admin("vault", "init", "--vault", f"s3://{bucket}", "--retention", "2d", check=True)
    assert "Object Lock on" in proc.stdout, proc.stdout
    return bucket


def it_person(tmp: Path) -> Person:
    return make_person(tmp, "it")


def sealed_bundle(person: Person, tmp: Path, out: Path) -> Path:
    return collect_bundle(person, tmp, out)
