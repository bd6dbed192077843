"""The ``batchpipe`` command line."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from batchpipe import __version__, cli_map, cli_stack
from batchpipe.cli_support import console, err_console, one_line_errors

if TYPE_CHECKING:
    from batchpipe.pools import PoolStatus
    from batchpipe.settings import Settings
    from tasks.pool import ImageChoice

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
    storage_endpoint: Annotated[
        str | None,
        typer.Option(help="Reach <account>.blob.core.windows.net here, path-style (e.g. http://127.0.0.1:10000)."),
    ] = None,
    container_runtime: Annotated[
        str | None, typer.Option(help="Container runtime client: podman, docker or a path (default: podman, docker).")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="Run service-defined intervals (autoscale, schedules) this many times faster.")
    ] = 1.0,
) -> None:
    """Run the local Azure Batch service in the foreground."""
    if not 0 < time_scale < float("inf"):
        raise typer.BadParameter(f"must be a positive number, not {time_scale}", param_hint="--time-scale")
    try:
        from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME
        from batch_emulator.node.transfer import check_storage_endpoint
        from batch_emulator.server import EmulatorConfig, run_forever
    except ImportError:
        _not_implemented("the local Azure Batch service (batch_emulator) has not landed")
        return
    try:
        check_storage_endpoint(storage_endpoint)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--storage-endpoint") from None
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
            storage_endpoint=storage_endpoint,
            container_runtime=container_runtime,
            time_scale=time_scale,
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
    from batchpipe.naming import job_id_for, resolve_inputs
    from batchpipe.run_guard import check_output_dir
    from batchpipe.settings import load_settings

    if numwords is not None and numwords < 1:
        raise ConfigurationError(f"--numwords must be at least 1 (got {numwords})")
    settings = load_settings(target=target, num_words=numwords, local_auth=local_auth)
    patterns = inputs or [str(_default_samples())]
    files = resolve_inputs(patterns)  # bad input fails here, before any service starts or anything is created
    check_output_dir(output)
    if settings.target == "azure":
        settings.require_azure()
        _check_service_image(settings)
    else:
        _check_local_image(settings.image)
    job_id = settings.job_id or job_id_for(files, settings.num_words, settings.pool_id)
    _prefect_offline(Path.cwd())
    summary = _run_guarded(
        lambda: _run_flow(patterns, output, numwords, approve_, keep_containers),
        local=settings.target == "local",
        state_dir=state_dir,
        local_auth=settings.local_auth,
        job_id=job_id,
        settings_overrides={"target": target, "num_words": numwords, "local_auth": local_auth},
    )
    _print_summary(summary)


def _check_local_image(image: str) -> None:
    """The local Batch service's images are data (its catalogue): an unsupported one fails now, once, before any
    service starts.

    Raises:
        ConfigurationError: no supported image matches; the message lists them as ``distro:version``.
    """
    from batch_emulator.catalog import load_catalog
    from tasks.pool import choose_image

    choose_image(load_catalog().supported_images(), image)


def _check_service_image(settings: Settings) -> None:
    """The azure target: ask the Batch service for its images now, so that an unsupported one fails once, before
    Prefect or anything else starts (inside the flow it was reported by the step, the flow run and the CLI).

    Raises:
        ConfigurationError: no supported image matches; the message lists them as ``distro:version``.
        CloudError: the Batch service refused or cannot be reached (one line, no retries).
    """
    from prefect.logging import disable_run_logger

    with disable_run_logger():
        _service_image(settings)


def _service_image(settings: Settings) -> ImageChoice:
    """The configured image among the Batch service's, outside any flow run (the listing step's plain function).

    Raises:
        ConfigurationError: no supported image matches; the message lists them as ``distro:version``.
        CloudError: the Batch service refused or cannot be reached (one line, no retries).
    """
    from tasks.pool import choose_image, list_images

    return choose_image(list_images.fn(settings), settings.image)


@dataclass
class _FlowRunSeen:
    """The flow run this process started (recorded by an ``on_running`` hook), to name it after an interrupt."""

    id: Any = None
    name: str | None = None


_FLOW_RUN = _FlowRunSeen()


def _run_guarded(
    run_flow: Callable[[], dict[str, Any]],
    *,
    local: bool,
    state_dir: Path,
    local_auth: LocalAuth,
    job_id: str,
    settings_overrides: dict[str, Any],
) -> dict[str, Any]:
    """Run the flow with its services, and stop them in order whatever happens.

    The services (Azurite, the local Batch service, the temporary Prefect API) run in sessions of their own, so
    Ctrl-C reaches only this process: the flow records its final state (Crashed), then the services stop (the
    Batch service, Azurite by SIGTERM so that it persists, the Prefect API last) and one line says what was left
    in place and how to resume. They die with this process too (PR_SET_PDEATHSIG), so a SIGKILL leaves none.

    Raises:
        Interrupted: Ctrl-C or SIGTERM.
    """
    from batchpipe.local import environment, local_stack, owned_state_dir
    from batchpipe.run_guard import Interrupted, exit_code_for, interrupted_message, left_in_place, signals_as_interrupt
    from batchpipe.settings import load_settings

    received: list[int] = []
    left: list[str] | None = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(signals_as_interrupt(received))
        if local:
            stack.enter_context(owned_state_dir(state_dir))  # a second run on it stops here, having started nothing
        api = _temporary_prefect_api()
        if api is not None:
            stack.callback(_stop_prefect_api, api)
        try:
            if local:
                err_console.print("Starting Azurite and the local Batch service...")
                endpoints = stack.enter_context(local_stack(state_dir, auth=local_auth))
                stack.enter_context(environment(endpoints.environment()))
            if api is not None:
                stack.enter_context(_using_api(api.wait_ready()))
            return run_flow()
        except BaseException as error:
            if not _is_interrupt(error):
                raise
            with contextlib.suppress(Exception):
                left = left_in_place(load_settings(**settings_overrides), job_id)
            signum = received[-1] if received else _signal_of(error)
            flow_run = _flow_run_outcome()
            message = interrupted_message(signum, flow_run, left)
    raise Interrupted(message, exit_code_for(signum))


def _signal_of(error: BaseException) -> int:
    """The signal behind an interrupt: Prefect's TerminationSignal carries it (SIGTERM); Ctrl-C is SIGINT."""
    seen: BaseException | None = error
    while seen is not None:
        number = getattr(seen, "signal", None)
        if isinstance(number, int):
            return number
        seen = seen.__context__
    return signal.SIGINT


def _is_interrupt(error: BaseException) -> bool:
    if isinstance(error, KeyboardInterrupt):
        return True
    from prefect.exceptions import TerminationSignal

    return isinstance(error, TerminationSignal)


def _flow_run_outcome() -> str | None:
    """``'name' (Crashed)``: the interrupted flow run and the state Prefect recorded for it."""
    if _FLOW_RUN.id is None:
        return None
    state: str | None = "state unknown"
    with contextlib.suppress(Exception):
        from prefect import get_client

        with get_client(sync_client=True) as client:
            recorded = client.read_flow_run(_FLOW_RUN.id).state
            if recorded is not None:
                state = recorded.name
    return f"{_FLOW_RUN.name!r} ended {state}"


def _temporary_prefect_api() -> Any:
    """Start this run's own Prefect API server (unless PREFECT_API_URL names one); it starts while the local
    services do. Returns a :class:`~batchpipe.prefect_server.TemporaryPrefectApi` or None."""
    import os

    if os.environ.get("PREFECT_API_URL"):
        return None
    from batchpipe.prefect_server import TemporaryPrefectApi

    return TemporaryPrefectApi(Path(os.environ["PREFECT_HOME"]))


def _stop_prefect_api(api: Any) -> None:
    """Send the flow's last logs, then stop the server (so no "Error logging to API" at exit)."""
    with contextlib.suppress(Exception):
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    api.stop()


def _default_samples() -> Path:
    from batchpipe.services import PROJECT_ROOT

    return PROJECT_ROOT / "samples"


@contextlib.contextmanager
def _using_api(api_url: str) -> Iterator[None]:
    """Prefect clients of this process use ``api_url`` for the block (the flow, and reading its final state).

    Also in the environment: threads the flow starts (the terminal prompt, the approval timer) do not inherit the
    settings context and read the environment instead.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from batchpipe.local import environment

    with environment({"PREFECT_API_URL": api_url}), temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def _run_flow(
    patterns: list[str], output: Path, numwords: int | None, approval: Approval, keep_containers: bool
) -> dict[str, Any]:
    from batchpipe.cli_support import quiet_explained_tracebacks
    from flows.pipeline import top_words_pipeline

    quiet_explained_tracebacks()

    def seen(flow: Any, flow_run: Any, state: Any) -> None:
        _FLOW_RUN.id, _FLOW_RUN.name = flow_run.id, flow_run.name

    pipeline = top_words_pipeline.with_options(on_running=[seen])
    result: dict[str, Any] = pipeline(
        inputs=patterns,
        output_dir=str(output),
        num_words=numwords,
        approval=approval,
        keep_containers=keep_containers,
    )
    return result


#: How the summary shows the empty word, and what it means (the tutorial's rule, kept: the node application strips
#: ASCII punctuation from each token, so a token made only of punctuation, such as Markdown's `#`, `-` or `---`,
#: counts as '').
EMPTY_WORD = "''"
EMPTY_WORD_MEANING = (
    "tokens made only of punctuation (Markdown's #, -, ---, ...), which the tutorial's rule strips to an empty word"
)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    # File names, words, paths and approval comments are data: a "[...]" in them is not rich markup.
    table = Table(title=f"Top words (job {summary['job_id']})")
    table.add_column("file")
    table.add_column("top words")
    empty = False
    for item in summary["outputs"]:
        words = ", ".join(f"{word or EMPTY_WORD} ({count})" for word, count in item["top_words"])
        empty = empty or any(not word for word, _ in item["top_words"])
        table.add_row(escape(item["file"]), escape(words))
    if empty:
        table.caption = escape(f"{EMPTY_WORD}: {EMPTY_WORD_MEANING}")
    console.print(table)
    console.print(f"Outputs: [bold]{escape(summary['output_dir'])}[/]")
    console.print(
        f"Job {summary['job_id']}: {summary['job']}; pool {summary['pool_id']}: {summary['pool']}; "
        f"containers: {summary['containers']} ({escape(summary['decided_by'])})"
    )


@app.command()
@one_line_errors
def approve(
    run: Annotated[
        str, typer.Argument(help="The paused flow run: its name or id (as the log shows), or the answer with --latest.")
    ],
    answer: Annotated[str | None, typer.Argument(help="yes | no | job-only | pool-only")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Answer the most recently paused run.")] = False,
    comment: Annotated[str, typer.Option(help="A note kept in the run's log.")] = "",
) -> None:
    """Answer a paused run's approval step from another shell (needs the same Prefect API as the run).

    `batchpipe approve <name-or-id> yes`, or `batchpipe approve --latest yes`.
    """
    from batchpipe.errors import ConfigurationError

    choices = {"yes": (True, True), "no": (False, False), "job-only": (True, False), "pool-only": (False, True)}
    if latest:
        if answer is not None:
            raise ConfigurationError("with --latest give only the answer: batchpipe approve --latest yes")
        run, answer = "", run
    if answer is None:
        raise ConfigurationError(
            "give the run and the answer: batchpipe approve <name-or-id> yes|no|job-only|pool-only"
        )
    if answer not in choices:
        raise ConfigurationError(f"answer must be one of {', '.join(choices)} (got {answer!r})")
    _prefect_offline(Path.cwd())
    from prefect.exceptions import NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    flow_run_id, shown = _paused_run(run)
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
        raise ConfigurationError(f"flow run {shown} is not waiting for approval") from None
    except ObjectNotFound:
        raise ConfigurationError(f"no flow run {shown} on this Prefect API (check PREFECT_API_URL)") from None
    console.print(f"Answered flow run {shown}: delete job={delete_job}, delete pool={delete_pool}")


def _paused_run(run: str) -> tuple[Any, str]:
    """The flow run ``run`` names (a UUID or a flow-run name; empty: the latest paused one), and how to show it.

    Raises:
        ConfigurationError: no such run, or the name is ambiguous.
    """
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    from batchpipe.errors import ConfigurationError

    with contextlib.suppress(ValueError):
        return UUID(run), run
    if run:
        runs_filter = FlowRunFilter(name=FlowRunFilterName(any_=[run]))
    else:
        runs_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    try:
        with get_client(sync_client=True) as client:
            found = client.read_flow_runs(flow_run_filter=runs_filter, sort=FlowRunSort.START_TIME_DESC, limit=2)
    except Exception as error:  # noqa: BLE001 - any failure to reach the API is the same advice
        raise ConfigurationError(
            f"cannot reach the Prefect API to find the run ({type(error).__name__}): set PREFECT_API_URL to the "
            "run's API (the run's approval message shows it)"
        ) from None
    if not found:
        what = f"named {run!r}" if run else "waiting for approval"
        raise ConfigurationError(f"no flow run {what} on this Prefect API (check PREFECT_API_URL)")
    if run and len(found) > 1:
        raise ConfigurationError(f"more than one flow run is named {run!r}: give its id")
    return found[0].id, f"{found[0].name} ({found[0].id})"


@contextlib.contextmanager
def _connected(target: Target | None, state_dir: Path) -> Iterator[Settings]:
    """Settings that reach a Batch and Storage service: Azure as configured, the services of a running
    ``batchpipe stack`` (its ``stack.env`` loaded: the local target with an endpoint set), or the local services
    started here on ``state_dir``."""
    from batchpipe.settings import load_settings

    settings = load_settings(target=target)
    if settings.target == "azure":
        settings.require_azure()
        yield settings
        return
    if settings.batch_endpoint:
        err_console.print(f"Using the running local services at {settings.batch_endpoint} (BATCHPIPE_BATCH_ENDPOINT)")
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
        from prefect.logging import disable_run_logger

        from tasks.capacity import check_capacity

        with _connected(target, state_dir) as connected, disable_run_logger():
            choice = _service_image(connected)
            capacity = check_capacity.fn(connected, job)
        console.print(f"  pre-flight: image {settings.image} -> {choice.describe()} [green]ok[/]")
        console.print(f"  pre-flight: {capacity.describe()}")


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
    from datetime import UTC, datetime

    from rich.table import Table

    from batchpipe.durations import describe

    now = datetime.now(UTC)
    table = Table(title="batchpipe pools")
    for column in ("pool", "state", "VM size", "nodes", "idle for", "idle since"):
        table.add_column(column)
    for status in statuses:
        since = status.idle_since.isoformat(timespec="seconds") if status.idle_since else "-"
        idle = describe((now - status.idle_since).total_seconds()) if status.idle_since else "busy"
        table.add_row(status.pool_id, status.state, status.vm_size, str(status.nodes), idle, since)
    console.print(table)


cli_stack.register(app)
cli_map.register(app)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
