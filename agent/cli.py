"""sealbox command line: parses, calls the library, prints. Exit 0 ok, 1 failure/findings, 2 usage."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from manifest import __version__
from manifest.errors import SealboxError

if TYPE_CHECKING:
    from collections.abc import Sequence


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealbox")
@click.option("-v", "--verbose", is_flag=True, help="Show the underlying cause of errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Preserve evidence on a live host: collect, seal, verify, contain, hand over."""
    ctx.obj = {"verbose": verbose}


def _register() -> None:
    # Explicit registration: each command group lives in its own module under agent/commands/.
    from agent.commands import collect, isolate, keys, verify

    for module in (keys, collect, verify, isolate):
        for command in module.COMMANDS:
            cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map errors to exit codes; never shows a traceback unless --verbose."""
    _register()
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    try:
        result = cli.main(args=args, prog_name="sealbox", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sealbox: aborted", err=True)
        return 130
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "sealbox"
        click.echo(f"sealbox: error: {exc.format_message()} (see `{where} --help`)", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"sealbox: error: {exc.format_message()}", err=True)
        return 2
    except SealboxError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"sealbox: error: {exc.diagnostics()}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("sealbox: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug must still end in one line, not a traceback
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(
            f"sealbox: internal error: {type(exc).__name__}: {exc} (rerun with -v for details)", err=True
        )
        return 1
    return result if isinstance(result, int) else 0
