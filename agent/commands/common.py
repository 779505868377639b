"""Options and output helpers shared by command modules."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from manifest.signing.keys import KeyStore, Signer, read_passphrase_file

F = TypeVar("F", bound=Callable[..., Any])


def case_out_options(func: F) -> F:
    """`--case ID` and `--out DIR` (required) for the commands that make bundles from paths."""
    func = click.option(
        "--out",
        "out_dir",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="Directory in which bundle directories are created (external media is best).",
    )(func)
    return click.option("--case", required=True, help="Case id, e.g. OKC-2026-0042.")(func)


def key_options(func: F) -> F:
    """`--key FP` and `--passphrase-file F` for commands that sign."""
    func = click.option(
        "--passphrase-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File whose first line is the private key's passphrase (or set SEALBOX_PASSPHRASE_FILE).",
    )(func)
    return click.option(
        "--key",
        "key_ref",
        metavar="FP",
        help="Signing key fingerprint or prefix (default: the only key in the store).",
    )(func)


def run_options(func: F) -> F:
    """`--reason`, `--workers`, `--resume` and `--previous` for the commands that run a collection."""
    func = click.option(
        "--previous",
        type=click.Path(path_type=Path, file_okay=False),
        help="A sealed bundle of the same sources: copy only what is new or changed since (follow-up).",
    )(func)
    func = click.option(
        "--resume",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help="Finish the interrupted BUNDLE.incomplete of this same command instead of starting anew.",
    )(func)
    func = click.option(
        "--workers", type=click.IntRange(1, 64), help="Parallel workers (default: CPU count)."
    )(func)
    return click.option("--reason", default="", help="Why this collection is made (custody log).")(func)


def load_signer(key_ref: str | None, passphrase_file: Path | None) -> Signer:
    env = os.environ.get("SEALBOX_PASSPHRASE_FILE")
    path = passphrase_file or (Path(env) if env else None)
    return KeyStore.default().load_signer(key_ref, read_passphrase_file(path))


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def witness(bundle: Path, event: dict[str, Any]) -> None:
    """A custody event appended after sealing also goes, as its own immutable object, to the vault
    that holds the bundle (if any): the vault witnesses the custody tail (FORMAT.md §10)."""
    from manifest.vault.errors import VaultError
    from manifest.vault.witness import witness_event

    try:
        key = witness_event(bundle, event)
    except VaultError as exc:
        click.echo(
            f"sealbox: warning: custody event {event.get('seq')} is not yet in the vault ({exc.message}); "
            f"run `sealbox vault witness {bundle}` when the vault can be reached",
            err=True,
        )
        return
    if key is not None:
        click.echo(f"witnessed in the vault: {key}", err=True)
