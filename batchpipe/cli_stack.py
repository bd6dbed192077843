"""Commands for the Prefect side: the local stack for the UI, serving deployments (see deployments/)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``batchpipe`` command line."""

    @app.command()
    def serve() -> None:
        """Serve the flow as a Prefect deployment (not implemented yet)."""
        typer.echo("not implemented yet: serve", err=True)
        raise typer.Exit(2)
