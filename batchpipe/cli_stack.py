"""Commands for the Prefect side: the local stack for the UI (``batchpipe stack``) and ``batchpipe serve``.

See docs/ui.md for the recipes these commands shorten, and deployments/prefect.yaml for the worker-based deployment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from batchpipe.cli_support import console, err_console, one_line_errors
from batchpipe.errors import ConfigurationError

#: First line of every environment file ``batchpipe stack`` writes; other files are never overwritten.
ENV_FILE_MARKER = "# Written by `batchpipe stack`: its services' addresses. Removed when the stack stops."
DEFAULT_ENV_FILE = Path(".batchpipe/stack.env")
DEFAULT_STACK_STATE = Path(".batchpipe/stack")
WORK_POOL = "batchpipe"

Approval = Literal["ask", "wait", "yes", "no"]


def env_file_text(variables: Mapping[str, str]) -> str:
    """Render ``variables`` as ``export NAME='value'`` lines: read alike by ``sh`` (``.``) and ``.env`` parsers.

    Args:
        variables: names and values (URLs, keys, connection strings).

    Returns:
        The file's text.

    Raises:
        ConfigurationError: a value holds a single quote, a backslash or a line break (the readers disagree).
    """
    lines = [ENV_FILE_MARKER]
    for name, value in sorted(variables.items()):
        if any(char in value for char in "'\\\n"):
            raise ConfigurationError(
                f"{name} cannot go into an environment file: it holds a quote, a backslash or a line break"
            )
        # Single quotes: no expansion of $ or ` in sh, and none in python-dotenv.
        lines.append(f"export {name}='{value}'")
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, variables: Mapping[str, str]) -> None:
    """Write the stack's environment file, refusing to overwrite a file somebody else wrote.

    Args:
        path: the file (its directory is created).
        variables: the variables.

    Raises:
        ConfigurationError: ``path`` exists and was not written by ``batchpipe stack``.
    """
    if path.exists() and not path.read_text("utf-8", "replace").startswith(ENV_FILE_MARKER):
        raise ConfigurationError(f"{path} exists and was not written by `batchpipe stack`: choose another --env-file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env_file_text(variables), "utf-8")


def remove_env_file(path: Path) -> None:
    """Remove the stack's environment file (only if ``batchpipe stack`` wrote it): its addresses are dead now."""
    if path.exists() and path.read_text("utf-8", "replace").startswith(ENV_FILE_MARKER):
        path.unlink()


def _print_stack(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"{label.ljust(width)}  {value}", soft_wrap=True)


def _watch(services: Mapping[str, Any]) -> None:
    """Block until Ctrl-C or SIGTERM (both arrive as KeyboardInterrupt); a dead service ends the stack too."""
    while True:
        for name, process in services.items():
            if process.poll() is not None:
                err_console.print(f"[bold red]{name} exited with code {process.returncode}[/]: stopping the stack")
                return
        time.sleep(0.5)  # a supervisor loop, not synchronisation: it only notices a dead child


def run_stack(
    port: int,
    state_dir: Path,
    env_file: Path,
    prefect_home: Path,
    deploy: bool,
) -> None:
    """Run the local stack in the foreground until Ctrl-C: Prefect server, Azurite, the local Batch service.

    Args:
        port: the Prefect server's port on 127.0.0.1.
        state_dir: Azurite's and the local Batch service's state (kept across restarts).
        env_file: where the ``BATCHPIPE_*`` and ``PREFECT_*`` variables go.
        prefect_home: the server's ``PREFECT_HOME`` (its database: runs and deployments survive a restart).
        deploy: also create the ``batchpipe`` process work pool, deploy deployments/prefect.yaml and start a worker.

    Raises:
        ServiceStartError: a service did not start (the others are stopped).
        ConfigurationError: the port is taken or the environment file belongs to somebody else.
    """
    from batchpipe.local import local_stack
    from batchpipe.prefect_server import (
        FAST_CLIENT_SETTINGS,
        FAST_SERVER_SETTINGS,
        create_process_work_pool,
        deploy_project,
        port_is_free,
        start_prefect_server,
        start_process_worker,
        stop_worker,
    )
    from batchpipe.services import PROJECT_ROOT, running

    if not port_is_free(port):
        raise ConfigurationError(f"port {port} on 127.0.0.1 is in use (another Prefect server?): use --port")
    write_env_file(env_file, {})  # fail on somebody else's file before starting anything
    prefect_home = prefect_home.resolve()
    try:
        err_console.print("Starting Azurite, the local Batch service and the Prefect server...")
        with local_stack(state_dir) as endpoints:
            server = start_prefect_server(prefect_home, port=port, extra_env=FAST_SERVER_SETTINGS)
            with running(server.service):
                variables = {**endpoints.environment(), **server.client_environment(), **FAST_CLIENT_SETTINGS}
                write_env_file(env_file, variables)
                rows = [
                    ("Prefect UI", server.ui_url),
                    ("Prefect API", server.api_url),
                    ("Azurite", endpoints.storage.blob_endpoint),
                    ("Batch service", endpoints.batch_url),
                    ("Environment", f"{env_file}   (in another shell: . {env_file})"),
                ]
                watched: dict[str, Any] = {"the Prefect server": server.service.process}
                worker = None
                if deploy:
                    client_env = {**os.environ, **variables}
                    create_process_work_pool(WORK_POOL, client_env)
                    deploy_project(PROJECT_ROOT / "deployments" / "prefect.yaml", PROJECT_ROOT, client_env)
                    worker = start_process_worker(
                        WORK_POOL, client_env, log_path=state_dir / "worker.log", cwd=PROJECT_ROOT
                    )
                    watched["the Prefect worker"] = worker.process
                    rows.append(("Worker", f"pool '{WORK_POOL}', log {state_dir / 'worker.log'}"))
                    rows.append(("Deployment", "prefect deployment run 'batchpipe/daily' -p approval=wait"))
                    rows.append(("Deployment", "prefect deployment run 'batchpipe-map/on-demand' -p approval=wait"))
                try:
                    _print_stack(rows)
                    console.print("Press Ctrl-C to stop everything.")
                    _watch(watched)
                finally:
                    if worker is not None:
                        stop_worker(worker)
    except KeyboardInterrupt:
        pass
    finally:
        remove_env_file(env_file)
    err_console.print("Stopped the Prefect server, Azurite and the local Batch service.")


def _require_prefect_server() -> str:
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    if not api_url:
        raise ConfigurationError(
            "no Prefect server configured: run `batchpipe stack` and `. .batchpipe/stack.env` in this shell "
            "(or set PREFECT_API_URL)"
        )
    return str(api_url)


def serve_pipeline(name: str, cron: str | None, parameters: dict[str, Any]) -> None:
    """Serve the pipeline as deployment ``batchpipe/<name>`` until Ctrl-C (``flow.serve``).

    Args:
        name: the deployment's name.
        cron: a cron schedule (UTC), or None for manual runs only.
        parameters: the deployment's default parameters.

    Raises:
        ConfigurationError: no Prefect server, or the local target without the local services' addresses.
    """
    from batchpipe.settings import load_settings

    settings = load_settings()
    if settings.target == "local" and not settings.batch_endpoint:
        raise ConfigurationError(
            "the local target needs the local services: run `batchpipe stack` and `. .batchpipe/stack.env` "
            "in this shell first"
        )
    api_url = _require_prefect_server()
    # Prefect polls for runs every 10 s by default, which makes a local trigger feel stuck.
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    from prefect import serve
    from prefect.deployments.runner import RunnerDeployment
    from prefect.types.entrypoint import EntrypointType

    from flows.pipeline import top_words_pipeline

    deployment = cast(
        RunnerDeployment,  # to_deployment is sync here: we are not in an event loop
        top_words_pipeline.to_deployment(
            name=name,
            cron=cron,
            parameters=parameters,
            tags=["batchpipe", "serve"],
            # A module path imports from any directory (flows is installed with the project).
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
    )
    err_console.print(f"Serving deployment batchpipe/{name} on {api_url} (Ctrl-C stops it and pauses its schedule)")
    # prefect.serve(deployment), not flow.serve(): flow.serve hands the in-memory flow to each run by pickling it by
    # value, which loses the names its postponed annotations refer to (parameter validation then fails); a
    # deployment's runs import the flow from its entrypoint instead, as a worker's do.
    serve(deployment)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``batchpipe`` command line."""

    @app.command()
    @one_line_errors
    def stack(
        port: Annotated[int, typer.Option(help="Prefect server (UI and API) port on 127.0.0.1.")] = 4200,
        state_dir: Annotated[
            Path, typer.Option(help="Azurite's and the local Batch service's state.")
        ] = DEFAULT_STACK_STATE,
        env_file: Annotated[
            Path, typer.Option(help="Where to write the variables for other shells (e.g. .env).")
        ] = DEFAULT_ENV_FILE,
        prefect_home: Annotated[
            Path, typer.Option(help="The server's PREFECT_HOME (database of runs and deployments).")
        ] = Path(".prefect-home"),
        deploy: Annotated[
            bool,
            typer.Option(
                help=f"Also create the '{WORK_POOL}' work pool, deploy deployments/prefect.yaml, run a worker."
            ),
        ] = False,
    ) -> None:
        """Run a Prefect server with its UI, Azurite and the local Batch service in the foreground (Ctrl-C stops)."""
        from batchpipe.services import apply_prefect_environment

        apply_prefect_environment(prefect_home.resolve())
        run_stack(port, state_dir, env_file, prefect_home, deploy)

    @app.command()
    @one_line_errors
    def serve(
        name: Annotated[str, typer.Option(help="Deployment name: runs are 'batchpipe/<name>'.")] = "local",
        cron: Annotated[
            str | None, typer.Option(help="Cron schedule in UTC, e.g. '0 6 * * *' (default: manual runs only).")
        ] = None,
        inputs: Annotated[
            list[str] | None, typer.Option("--input", "-i", help="Default input files, directories or globs.")
        ] = None,
        output: Annotated[str, typer.Option(help="Default output directory.")] = "outputs",
        numwords: Annotated[int | None, typer.Option(help="Default top N words per file.")] = None,
        approve_: Annotated[
            Approval, typer.Option("--approve", help="Default approval: wait (UI/API), yes or no.")
        ] = "wait",
    ) -> None:
        """Serve the flow as a Prefect deployment from this process (local development; needs a Prefect server)."""
        from batchpipe.services import PROJECT_ROOT, apply_prefect_environment

        apply_prefect_environment(Path.cwd() / ".prefect-home")
        parameters: dict[str, Any] = {
            "inputs": inputs or [str(PROJECT_ROOT / "samples")],
            "output_dir": output,
            "approval": approve_,
        }
        if numwords is not None:
            parameters["num_words"] = numwords
        serve_pipeline(name, cron, parameters)
