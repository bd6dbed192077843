"""The ``batchpipe`` command line."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from batchpipe import __version__, cli_map, cli_stack
from batchpipe.cli_support import console, err_console, one_line_errors

if TYPE_CHECKING:
    from batchpipe.pools import PoolStatus
    from batchpipe.settings import Settings

app = typer.Typer(
    name="batchpipe",
    help="Run the Azure Batch 'top words' pipeline as a Prefect flow, locally (Azurite + local Batch) or on Azure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pools_app = typer.Typer(help="Manage pools that batchpipe created.", no_args_is_help=True)
app.add_typer(pools_app, name="pools")


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


Approval = Literal["ask", "wait", "yes", "no"]
Target = Literal["local", "azure"]
LocalAuth = Literal["key", "entra"]


def _prefect_offline(project_dir: Path) -> None:
    """Prefect settings for our processes: offline, no telemetry, state in the project (before Prefect loads)."""
    from batchpipe.services import apply_prefect_environment

    apply_prefect_environment(project_dir / ".prefect-home")


@app.command()
@one_line_errors
def run(
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Input files, directories or globs (repeatable).")
    ] = None,
    output: Annotated[Path, typer.Option(help="Directory for the outputs (a subdirectory per job).")] = Path("outputs"),
    numwords: Annotated[int | None, typer.Option(help="Top N words per file (default 3).")] = None,
    approve_: Annotated[
        Approval,
        typer.Option("--approve", help="Delete job and pool: ask (terminal/UI), wait (UI/API), yes, no."),
    ] = "ask",
    target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
    keep_containers: Annotated[bool, typer.Option(help="Keep the blob containers after success.")] = False,
    state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
    local_auth: Annotated[
        LocalAuth | None,
        typer.Option(
            help="Local target: key (shared keys, default) or entra (HTTPS + Entra ID tokens, docs/azure.md)."
        ),
    ] = None,
) -> None:
    """Run the pipeline: upload, pool, job, tasks, monitor, download, clean up after approval."""
    from batchpipe.errors import ConfigurationError
    from batchpipe.naming import resolve_inputs
    from batchpipe.settings import load_settings

    if numwords is not None and numwords < 1:
        raise ConfigurationError(f"--numwords must be at least 1 (got {numwords})")
    settings = load_settings(target=target, num_words=numwords, local_auth=local_auth)
    patterns = inputs or [str(_default_samples())]
    resolve_inputs(patterns)  # bad input fails here, before any service starts or anything is created
    _prefect_offline(Path.cwd())
    if settings.target == "azure":
        settings.require_azure()
        summary = _run_flow(patterns, output, numwords, approve_, keep_containers)
    else:
        from batchpipe.local import environment, local_stack

        err_console.print("Starting Azurite and the local Batch service...")
        prefect_api = _start_prefect_api_in_background()
        with (
            local_stack(state_dir, auth=settings.local_auth) as endpoints,
            environment(endpoints.environment()),
        ):
            prefect_api.join()
            summary = _run_flow(patterns, output, numwords, approve_, keep_containers)
    _print_summary(summary)


def _start_prefect_api_in_background() -> threading.Thread:
    """Start Prefect's temporary API server while the local services start (it takes seconds of its own).

    Only without PREFECT_API_URL (otherwise the configured server is used). The caller joins the thread before the
    flow runs; if this fails, the flow starts the server itself and reports any error.
    """

    def start() -> None:
        with contextlib.suppress(Exception):
            from prefect.settings import PREFECT_API_URL

            if PREFECT_API_URL.value():
                return
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()

    thread = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    thread.start()
    return thread


def _default_samples() -> Path:
    from batchpipe.services import PROJECT_ROOT

    return PROJECT_ROOT / "samples"


def _run_flow(
    patterns: list[str], output: Path, numwords: int | None, approval: Approval, keep_containers: bool
) -> dict[str, Any]:
    from batchpipe.cli_support import quiet_explained_tracebacks
    from flows.pipeline import top_words_pipeline

    quiet_explained_tracebacks()

    result: dict[str, Any] = top_words_pipeline(
        inputs=patterns,
        output_dir=str(output),
        num_words=numwords,
        approval=approval,
        keep_containers=keep_containers,
    )
    return result


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    # File names, words, paths and approval comments are data: a "[...]" in them is not rich markup.
    table = Table(title=f"Top words (job {summary['job_id']})")
    table.add_column("file")
    table.add_column("top words")
    for item in summary["outputs"]:
        words = ", ".join(f"{word} ({count})" for word, count in item["top_words"])
        table.add_row(escape(item["file"]), escape(words))
    console.print(table)
    console.print(f"Outputs: [bold]{escape(summary['output_dir'])}[/]")
    console.print(
        f"Job {summary['job_id']}: {summary['job']}; pool {summary['pool_id']}: {summary['pool']}; "
        f"containers: {summary['containers']} ({escape(summary['decided_by'])})"
    )


@app.command()
@one_line_errors
def approve(
    run_id: Annotated[str, typer.Argument(help="The paused flow run's id (shown in the log and the UI).")],
    answer: Annotated[str, typer.Argument(help="yes | no | job-only | pool-only")],
    comment: Annotated[str, typer.Option(help="A note kept in the run's log.")] = "",
) -> None:
    """Answer a paused run's approval step from another shell (needs the same Prefect API as the run)."""
    from uuid import UUID

    from batchpipe.errors import ConfigurationError

    choices = {"yes": (True, True), "no": (False, False), "job-only": (True, False), "pool-only": (False, True)}
    if answer not in choices:
        raise ConfigurationError(f"answer must be one of {', '.join(choices)} (got {answer!r})")
    try:
        flow_run_id = UUID(run_id)
    except ValueError:
        raise ConfigurationError(f"{run_id!r} is not a flow run id (a UUID, as shown in the log or the UI)") from None
    _prefect_offline(Path.cwd())
    from prefect.exceptions import NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    delete_job, delete_pool = choices[answer]
    try:
        resume_flow_run(
            flow_run_id,
            run_input={
                "delete_job": delete_job,
                "delete_pool": delete_pool,
                "comment": comment or f"batchpipe approve {answer}",
            },
        )
    except NotPausedError:
        raise ConfigurationError(f"flow run {run_id} is not waiting for approval") from None
    except ObjectNotFound:
        raise ConfigurationError(f"no flow run {run_id} on this Prefect API (check PREFECT_API_URL)") from None
    console.print(f"Answered flow run {run_id}: delete job={delete_job}, delete pool={delete_pool}")


@contextlib.contextmanager
def _connected(target: Target | None, state_dir: Path) -> Iterator[Settings]:
    """Settings that reach a Batch and Storage service: Azure as configured, or the local stack started here."""
    from batchpipe.settings import load_settings

    settings = load_settings(target=target)
    if settings.target == "azure":
        settings.require_azure()
        yield settings
        return
    from batchpipe.local import environment, local_stack

    with local_stack(state_dir) as endpoints, environment(endpoints.environment()):
        yield load_settings(target=target)


@app.command()
@one_line_errors
def plan(
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Input files, directories or globs.")
    ] = None,
    numwords: Annotated[int | None, typer.Option(help="Top N words per file.")] = None,
    target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
    check: Annotated[bool, typer.Option(help="Also run the read-only pre-flight checks against the service.")] = False,
    state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
) -> None:
    """Print what a run would create and the node-hours it implies; create nothing."""
    from batchpipe.naming import job_id_for, resolve_inputs
    from batchpipe.settings import load_settings

    settings = load_settings(target=target, num_words=numwords)
    files = resolve_inputs(inputs or [str(_default_samples())])
    job = settings.job_id or job_id_for(files, settings.num_words, settings.pool_id)
    size = sum(f.size for f in files)
    hours = settings.node_count * settings.monitor_timeout / 3600
    kind = "Spot" if settings.use_spot_nodes else "dedicated"
    console.print(f"[bold]Plan[/] (target {settings.target}; nothing is created)")
    console.print(
        f"  containers: {settings.application_container}, {settings.input_container}, {settings.output_container}"
    )
    console.print(f"  uploads: node application + {len(files)} input files ({size:,} bytes)")
    console.print(
        f"  pool {settings.pool_id}: {settings.node_count} x {settings.vm_size} {kind} nodes, image {settings.image},"
        f" {settings.task_slots_per_node} task slot(s) per node"
    )
    console.print(f"  job {job}: {len(files)} tasks, top {settings.num_words} words each")
    console.print(
        f"  at most {hours:.2f} node-hours ({settings.node_count} nodes x monitor timeout "
        f"{settings.monitor_timeout:.0f}s) unless the pool is kept after the run"
    )
    if check:
        from tasks.pool import find_image

        with _connected(target, state_dir) as connected:
            choice = find_image.fn(connected)
        console.print(f"  pre-flight: image {settings.image} -> {choice.describe()} [green]ok[/]")


@pools_app.command("list")
@one_line_errors
def pools_list(
    target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
) -> None:
    """List the pools batchpipe created, with how long each has been idle."""
    with _connected(target, state_dir) as settings:
        statuses = _batchpipe_pools(settings)
    _print_pools(statuses)


@pools_app.command("prune")
@one_line_errors
def pools_prune(
    idle: Annotated[str, typer.Option(help="Delete pools idle at least this long (30m, 2h, 1d).")] = "30m",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
) -> None:
    """Delete idle pools that batchpipe created (after showing them)."""
    from datetime import UTC, datetime

    from batchpipe.clients import batch_client
    from batchpipe.pools import idle_longer_than, parse_duration

    threshold = parse_duration(idle)
    with _connected(target, state_dir) as settings:
        victims = idle_longer_than(_batchpipe_pools(settings), threshold, datetime.now(UTC))
        if not victims:
            console.print(f"No batchpipe pool has been idle for {idle}.")
            return
        _print_pools(victims)
        if not yes and not typer.confirm(f"Delete these {len(victims)} pool(s)?", default=False):
            raise typer.Exit(1)
        client = batch_client(settings)
        for status in victims:
            client.begin_delete_pool(status.pool_id, polling_interval=1).result()
            console.print(f"Deleted pool {status.pool_id}")


@pools_app.command("delete")
@one_line_errors
def pools_delete(
    pool_id: Annotated[str, typer.Argument(help="The pool to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
) -> None:
    """Delete one pool (for example one a failed run left behind)."""
    from azure.core.exceptions import ResourceNotFoundError

    from batchpipe.clients import batch_client
    from batchpipe.errors import ConfigurationError

    if not yes and not typer.confirm(f"Delete pool {pool_id}?", default=False):
        raise typer.Exit(1)
    with _connected(target, state_dir) as settings:
        try:
            batch_client(settings).begin_delete_pool(pool_id, polling_interval=1).result()
        except ResourceNotFoundError:
            raise ConfigurationError(f"pool {pool_id!r} does not exist") from None
    console.print(f"Deleted pool {pool_id}")


def _batchpipe_pools(settings: Settings) -> list[PoolStatus]:
    from batchpipe.clients import batch_client
    from batchpipe.pools import created_by_batchpipe, pool_status

    client = batch_client(settings)
    return [
        pool_status(pool, list(client.list_nodes(pool.id)))
        for pool in client.list_pools()
        if created_by_batchpipe(pool)
    ]


def _print_pools(statuses: list[PoolStatus]) -> None:
    from rich.table import Table

    table = Table(title="batchpipe pools")
    for column in ("pool", "state", "nodes", "idle since"):
        table.add_column(column)
    for status in statuses:
        since = status.idle_since.isoformat(timespec="seconds") if status.idle_since else "busy"
        table.add_row(status.pool_id, status.state, str(status.nodes), since)
    console.print(table)


cli_stack.register(app)
cli_map.register(app)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
