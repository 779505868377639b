"""A person with a key, a sealed bundle and an initialised vault bucket, for the vault tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.custody import Person, collect_bundle, make_person
from tests.support.env import Cli

if TYPE_CHECKING:
    from tests.support.vault_server import VaultServer


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


def make_tree(root: Path, *, big_mib: int = 0, small: int = 0) -> Path:
    """A source tree: one big file whose every MiB differs (its number in the first 8 bytes, the
    rest a hole: made in milliseconds, no disk write, and no two multipart parts alike) and
    `small` small files in directories of 500."""
    src = root / "src"
    src.mkdir(parents=True)
    if big_mib:
        with open(src / "disk.img", "wb") as f:
            for i in range(big_mib):
                f.seek(i << 20)
                f.write(i.to_bytes(8, "little"))
            f.truncate(big_mib << 20)
    for i in range(small):
        d = src / f"d{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir()
        (d / f"f{i:05d}.txt").write_bytes(f"small file {i}\n".encode() * (1 + i % 7))
    return src


def payload_oxum(bundle: Path) -> tuple[int, int]:
    """The bundle's Payload-Oxum: (bytes, files) of data/."""
    for line in (bundle / "bag-info.txt").read_text().splitlines():
        if line.startswith("Payload-Oxum:"):
            nbytes, _, files = line.split(":", 1)[1].strip().partition(".")
            return int(nbytes), int(files)
    raise AssertionError(f"{bundle} has no Payload-Oxum")


def collect(person: Person, src: Path, out: Path) -> Path:
    proc = person.cli("collect", "--case", "OKC-2026-0042", "--out", out, src, check=True, timeout=900)
    return Path(proc.stdout.strip().splitlines()[-1])


def versions_by_key(client: Any, bucket: str, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            out.setdefault(v["Key"], []).append(v["VersionId"])
        for m in page.get("DeleteMarkers", []):
            out.setdefault(m["Key"], []).append("delete-marker")
    return out
