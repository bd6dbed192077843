"""What every command shares: the consoles and one-line error reporting."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from batchpipe.errors import BatchpipeError

err_console = Console(stderr=True, highlight=False)
# soft_wrap: long paths and ids stay on one line (copy-pastable) when output is not a terminal.
console = Console(highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report a :class:`BatchpipeError` as one line on stderr and exit with its code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BatchpipeError as error:
            # Escaped: messages quote service details such as "[vmSize='x': ...]", which rich would take for markup.
            label = "[bold yellow]interrupted:[/]" if error.exit_code >= 128 else "[bold red]error:[/]"
            err_console.print(f"{label} {escape(error.message)}", soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: local services stopped")
            raise typer.Exit(130) from None

    return wrapper


class _NoTracebackForExplainedErrors(logging.Filter):
    """Drop the traceback from log records of errors that already explain themselves in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BatchpipeError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_explained_tracebacks() -> None:
    """Keep Prefect's console log free of traceback soup for errors that carry a one-line explanation."""
    quiet = _NoTracebackForExplainedErrors()
    names = [name for name in list(logging.Logger.manager.loggerDict) if name.startswith("prefect")]
    for logger in [logging.getLogger("prefect"), *map(logging.getLogger, names)]:
        for handler in logger.handlers:
            if quiet not in handler.filters:
                handler.addFilter(quiet)


def log_console() -> Console:
    """The console Prefect's log handler writes to (stderr), for a live display that shares the terminal.

    A rich ``Progress`` on this console keeps one bar at the bottom with the log lines scrolling above it; on a
    console of its own, every log line would carry a copy of the bar.
    """
    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            console = getattr(handler, "console", None)
            if isinstance(console, Console):
                return _with_progress_styles(console)
    return err_console


def _with_progress_styles(console: Console) -> Console:
    """Prefect's console has a theme of its own, without rich's progress styles (``bar.back``, ...): add those."""
    from rich.default_styles import DEFAULT_STYLES
    from rich.errors import MissingStyle
    from rich.theme import Theme

    try:
        console.get_style("bar.back")
    except MissingStyle:
        console.push_theme(Theme({k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))}))
    return console
