"""`sealbox artifacts list|show` and `sealbox profiles list|show`: what can be collected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.commands.common import print_json
from collectors.artifacts import OSES, Catalog

if TYPE_CHECKING:
    from collections.abc import Callable


def artifacts_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--artifacts-dir",
        "artifacts_dirs",
        multiple=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="Extra artifact definitions (*.toml, and profiles/*.toml); repeatable.",
    )(func)


def _json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


@click.group()
def artifacts() -> None:
    """List and show artifact definitions (what to preserve, where it lives)."""


@artifacts.command("list")
@artifacts_dir_option
@click.option("--os", "os_name", type=click.Choice(OSES), help="Only artifacts for this OS.")
@click.option("--tag", help="Only artifacts with this tag (e.g. logs, email, auth, shell).")
@_json_option
def list_artifacts(
    artifacts_dirs: tuple[Path, ...], os_name: str | None, tag: str | None, as_json: bool
) -> None:
    """List every artifact: name, kind, OS, tags."""
    catalog = Catalog.load(artifacts_dirs)
    rows = [
        a
        for a in catalog.artifacts.values()
        if (os_name is None or os_name in a.os) and (tag is None or tag in a.tags)
    ]
    if as_json:
        print_json([a.as_dict() for a in rows])
        return
    for a in sorted(rows, key=lambda a: a.name):
        click.echo(f"{a.name:28} {a.kind:8} {','.join(a.os):20} {','.join(a.tags)}")


@artifacts.command("show")
@click.argument("name")
@artifacts_dir_option
@_json_option
def show_artifact(name: str, artifacts_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Show one artifact's full definition."""
    art = Catalog.load(artifacts_dirs).artifact(name)
    if as_json:
        print_json(art.as_dict())
        return
    click.echo(f"name:        {art.name}\ndescription: {art.description}\nkind:        {art.kind}")
    click.echo(f"os:          {', '.join(art.os)}\ntags:        {', '.join(art.tags)}")
    click.echo(f"collector:   {art.collector}\ndefined in:  {art.origin}")
    for key, value in art.kind_of.describe(art).items():  # the fields its kind takes
        if key == "paths":
            click.echo("paths:" + "".join(f"\n  {p}" for p in value))
        elif isinstance(value, list):
            if value:
                click.echo(f"{key + ':':13}{', '.join(value)}")
        elif value is not None:
            click.echo(f"{key + ':':13}{value}")


@click.group()
def profiles() -> None:
    """List and show collection profiles (named sets of artifacts)."""


@profiles.command("list")
@artifacts_dir_option
@_json_option
def list_profiles(artifacts_dirs: tuple[Path, ...], as_json: bool) -> None:
    """List every profile."""
    catalog = Catalog.load(artifacts_dirs)
    if as_json:
        print_json([p.as_dict() for p in catalog.profiles.values()])
        return
    for p in sorted(catalog.profiles.values(), key=lambda p: p.name):
        click.echo(f"{p.name:18} {len(catalog.resolve(p)):3} artifacts  {p.description}")


@profiles.command("show")
@click.argument("name")
@artifacts_dir_option
@_json_option
def show_profile(name: str, artifacts_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Show a profile and the artifacts it resolves to."""
    catalog = Catalog.load(artifacts_dirs)
    prof = catalog.profile(name)
    resolved = catalog.resolve(prof)
    if as_json:
        print_json({**prof.as_dict(), "resolved": [a.name for a in resolved]})
        return
    click.echo(f"name:        {prof.name}\ndescription: {prof.description}\ndefined in:  {prof.origin}")
    if prof.tags:
        click.echo(f"tags:        {', '.join(prof.tags)}")
    click.echo("artifacts:")
    for a in resolved:
        click.echo(f"  {a.name:28} {a.kind:8} {','.join(a.os)}")


COMMANDS = [artifacts, profiles]
