"""`sealbox collect`: acquire chosen files and directories into a sealed bundle."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import click

from agent.commands.common import (
    case_out_options,
    key_options,
    load_signer,
    print_json,
    run_options,
    stderr_is_tty,
)
from collectors.acquire import ProgressSink, Source
from collectors.collection import CollectionRequest, CollectionResult, run_collection
from manifest.errors import UsageError
from manifest.format.timefmt import parse_rfc3339_ns

if TYPE_CHECKING:
    from pathlib import Path

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | None) -> int | None:
    """`500`, `64K`, `100M`, `2G` (binary units) -> bytes."""
    if text is None:
        return None
    clean = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = clean[-1:] if clean[-1:] in _UNITS and not clean[-1:].isdigit() else ""
    number = clean[: len(clean) - len(unit)]
    if not number.isdigit():
        raise UsageError(f"'{text}' is not a size", "use e.g. 500, 64K, 100M or 2G")
    return int(number) * _UNITS[unit]


def parse_since(text: str | None) -> int | None:
    """`2026-11-01` or an RFC 3339 time -> ns since the epoch (UTC)."""
    if text is None:
        return None
    value = text.strip()
    if len(value) == 10:
        value += "T00:00:00Z"
    try:
        return parse_rfc3339_ns(value)
    except ValueError as exc:
        raise UsageError(f"'{text}' is not a date", "use YYYY-MM-DD or an RFC 3339 time") from exc


def cli_sources(
    paths: tuple[str, ...], excludes: tuple[str, ...], max_size: int | None, since: int | None
) -> list[Source]:
    sources = []
    for raw in paths:
        absolute = os.path.abspath(raw)  # noqa: PTH100 - must not resolve symlinks
        try:
            os.lstat(absolute)
        except FileNotFoundError:
            raise UsageError(f"{raw} does not exist", "check the path; nothing was collected") from None
        except OSError as exc:
            raise UsageError(f"cannot read {raw}: {exc.strerror}") from None
        encoded = os.fsencode(absolute)
        sources.append(
            Source(encoded, encoded, "files/cli", excludes=excludes, max_file_size=max_size, since_ns=since)
        )
    return sources


def run_with_progress(request: CollectionRequest, show: bool) -> CollectionResult:
    if show:  # rich is loaded only to draw: a run with no terminal starts sooner without it
        from agent.progress import RichProgress

        ctx: contextlib.AbstractContextManager[ProgressSink] = RichProgress(request.sources)
    else:
        ctx = contextlib.nullcontext(ProgressSink())
    with ctx as progress:
        return run_collection(request, progress)


def summary(result: CollectionResult) -> dict[str, object]:
    s = result.stats
    return {
        "bundle": str(result.bundle),
        "bundle_id": result.bundle_id,
        "items": s.items,
        "payload_files": s.files,
        "payload_bytes": s.bytes,
        "by_status": s.by_status,
        "by_kind": s.by_kind,
        "volatile_sections": result.volatile_sections,
        "not_walked": s.not_walked,
        "case_collisions": s.case_collisions,
        "unlisted_dirs": s.unlisted_dirs,
    }


def _first_of(names: list[str]) -> str:
    """`a`, or `a and 2 more`."""
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def warn(result: CollectionResult) -> None:
    """What the responder should know about a run that still sealed."""
    if result.shared_filesystem:
        click.echo(
            f"warning: the bundle was written to the filesystem of {_first_of(result.shared_filesystem)}, "
            "which can overwrite deleted data on it (next time use removable media or a network "
            "share for --out)",
            err=True,
        )
    if result.stats.unlisted_dirs:
        click.echo(
            f"warning: nothing inside these directories was collected, they could not be listed: "
            f"{_first_of(result.stats.unlisted_dirs)} (see directory-unreadable in "
            "metadata/acquisition-log.jsonl)",
            err=True,
        )
    if result.stats.not_walked:
        paths = ", ".join(result.stats.not_walked[:3]) + (" ..." if len(result.stats.not_walked) > 3 else "")
        click.echo(
            f"warning: not walked: {paths}: pseudo filesystems hold the kernel's live state, not "
            "stored files (the volatile snapshot records it; `sealbox respond` takes one)",
            err=True,
        )
    if result.stats.case_collisions:
        click.echo(
            f"warning: the output filesystem ignores case: {result.stats.case_collisions} copies whose "
            "names differ from another only in case are under data/long (items.jsonl has their paths; "
            "next time use an ext4 or NTFS disk for --out)",
            err=True,
        )
    if result.timestamp_error:
        click.echo(
            f"warning: sealed without a trusted timestamp: {result.timestamp_error} "
            "(add one later with `sealbox export --tsa URL`)",
            err=True,
        )


def print_summary(result: CollectionResult) -> None:
    s = result.stats
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(s.by_status.items()))
    click.echo(str(result.bundle))
    click.echo(f"sealed: {s.items} items ({statuses}); {s.files} files, {s.bytes} bytes copied", err=True)
    if s.by_status.get("error"):
        click.echo("  some items could not be read: see status 'error' in metadata/items.jsonl", err=True)
    click.echo(f"next: sealbox verify '{result.bundle}'", err=True)


@click.command()
@case_out_options
@key_options
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths or names matching GLOB.")
@click.option("--max-file-size", metavar="N", help="Record larger files as skipped (e.g. 100M).")
@click.option("--since", metavar="DATE", help="Record files modified before DATE as skipped.")
@run_options
@click.option("--tsa", "tsa_url", metavar="URL", help="RFC 3161 timestamp authority to stamp the seal.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.argument("paths", nargs=-1, required=True)
def collect(
    case: str,
    out_dir: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
    exclude: tuple[str, ...],
    max_file_size: str | None,
    since: str | None,
    reason: str,
    workers: int | None,
    resume: Path | None,
    previous: Path | None,
    tsa_url: str | None,
    as_json: bool,
    paths: tuple[str, ...],
) -> None:
    """Acquire PATHS (files, directories, links, specials) into a sealed, signed bundle."""
    sources = cli_sources(paths, exclude, parse_size(max_file_size), parse_since(since))
    signer = load_signer(key_ref, passphrase_file)
    request = CollectionRequest(
        case=case,
        out_dir=out_dir,
        signer=signer,
        sources=sources,
        reason=reason,
        workers=workers,
        resume=resume,
        previous=previous,
        tsa_url=tsa_url,
        private_mounts=True,
    )
    result = run_with_progress(request, stderr_is_tty() and not as_json)
    warn(result)
    if as_json:
        print_json({**summary(result), "timestamp_error": result.timestamp_error})
    else:
        print_summary(result)


COMMANDS = [collect]
