"""sealbox command line: parses, calls the library, prints. Exit 0 ok, 1 failure/findings, 2 usage."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import TYPE_CHECKING

import click

from manifest import __version__
from manifest.errors import SealboxError

if TYPE_CHECKING:
    from collections.abc import Sequence


# Command name -> module defining it (as `COMMANDS`). Loaded on use: a responder's first command
# on a live host should start fast, and each module's imports are paid only when needed.
COMMAND_MODULES = {
    "keys": "agent.commands.keys",
    "collect": "agent.commands.collect",
    "verify": "agent.commands.verify",
    "custody": "agent.commands.custody",
    "export": "agent.commands.package",
    "receive": "agent.commands.package",
    "report": "agent.commands.report",
    "artifacts": "agent.commands.artifacts",
    "profiles": "agent.commands.artifacts",
    "respond": "agent.commands.respond",
    "incident-note": "agent.commands.respond",
    "isolate": "agent.commands.isolate",
    "restore": "agent.commands.isolate",
    "isolation": "agent.commands.isolate",
    "watch": "agent.commands.watch",
    "mail": "agent.commands.mail",
    "vault": "agent.commands.vault",
    "order": "agent.commands.order",
    "agent": "agent.commands.agent",
    "fleet": "agent.commands.fleet",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(module_name)
        return next(c for c in module.COMMANDS if c.name == cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealbox")
@click.option("-v", "--verbose", is_flag=True, help="Show the underlying cause of errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Preserve evidence on a live host: collect, seal, verify, contain, hand over."""
    ctx.obj = {"verbose": verbose}


def _terminated(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and map errors to exit codes; never shows a traceback unless --verbose."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    # SIGTERM (kill, a service stop, a shutdown) ends a run as Ctrl-C does: workers stopped, an
    # unsealed bundle left .incomplete and said so, one line. Left to its default it killed this
    # process alone, and its workers printed tracebacks as they found no one to report to.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        result = cli.main(args=args, prog_name="sealbox", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and SIGTERM, made one above) inside a command into Abort.
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("sealbox: interrupted" if interrupted else "sealbox: aborted", err=True)
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
