"""The ``batchpipe`` command line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from batchpipe import __version__
from batchpipe.errors import BatchpipeError

app = typer.Typer(
    name="batchpipe",
    help="Run the Azure Batch 'top words' pipeline as a Prefect flow, locally (Azurite + local Batch) or on Azure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pools_app = typer.Typer(help="Manage pools that batchpipe created.", no_args_is_help=True)
app.add_typer(pools_app, name="pools")

err_console = Console(stderr=True, highlight=False)
P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report a :class:`BatchpipeError` as one line on stderr and exit with its code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BatchpipeError as error:
            err_console.print(f"[bold red]error:[/] {error.message}", soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: local services stopped")
            raise typer.Exit(130) from None

    return wrapper


def _not_implemented(what: str) -> None:
    err_console.print(f"[bold yellow]not implemented yet:[/] {what}")
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        print(f"batchpipe {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """batchpipe."""


@app.command()
@one_line_errors
def emulator(
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless --allow-remote).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8001,
    account: Annotated[str | None, typer.Option(help="Account name (default: the well-known one).")] = None,
    key: Annotated[str | None, typer.Option(help="Base64 account key (default: the well-known one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="State directory (default: a temp dir).")] = None,
    faults: Annotated[str | None, typer.Option(help="Fault-injection spec, see docs/emulator.md.")] = None,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve https.")] = None,
    key_file: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    allow_bearer: Annotated[bool, typer.Option(help="Accept Bearer tokens (development Entra ID).")] = False,
    allow_remote: Annotated[bool, typer.Option(help="Allow binding a non-loopback address.")] = False,
) -> None:
    """Run the local Azure Batch service in the foreground."""
    try:
        from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
        from batch_emulator.server import EmulatorConfig, run_forever
    except ImportError:
        _not_implemented("the local Azure Batch service (batch_emulator) has not landed")
        return
    run_forever(
        EmulatorConfig(
            host=host,
            port=port,
            account_name=account or DEFAULT_ACCOUNT_NAME,
            account_key=key or DEFAULT_ACCOUNT_KEY,
            data_dir=data_dir,
            faults=faults,
            certfile=cert,
            keyfile=key_file,
            allow_bearer=allow_bearer,
            allow_remote=allow_remote,
        )
    )


@app.command()
@one_line_errors
def run() -> None:
    """Run the pipeline (not implemented yet)."""
    from batchpipe.settings import load_settings

    load_settings()
    _not_implemented("the pipeline flow")


@app.command()
@one_line_errors
def approve(run_id: str, answer: str) -> None:
    """Answer a paused run's approval step (not implemented yet)."""
    _not_implemented("approval")


@app.command()
@one_line_errors
def plan() -> None:
    """Print what a run would create, creating nothing (not implemented yet)."""
    _not_implemented("plan")


@app.command()
@one_line_errors
def serve() -> None:
    """Serve the flow as a Prefect deployment (not implemented yet)."""
    _not_implemented("serve")


@pools_app.command("prune")
@one_line_errors
def pools_prune() -> None:
    """Delete idle pools that batchpipe created (not implemented yet)."""
    _not_implemented("pools prune")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
