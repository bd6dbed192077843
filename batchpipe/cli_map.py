"""``batchpipe map``: run your own program over many inputs (the general flow, ``flows/batch_map.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from batchpipe.cli_support import console, one_line_errors

if TYPE_CHECKING:
    from batchpipe.settings import Settings

Approval = Literal["ask", "wait", "yes", "no"]
Target = Literal["local", "azure"]
LocalAuth = Literal["key", "entra"]

EPILOG = (
    "Example: batchpipe map --input data/ --command 'gzip -c {input} > {output_dir}/{input_name}.gz' "
    "--output-pattern '{input_name}.gz' --approve yes. Placeholders and the manifest: docs/workloads.md."
)


def register(app: typer.Typer) -> None:
    """Add ``map`` to the ``batchpipe`` command line."""

    @app.command(name="map", epilog=EPILOG)
    @one_line_errors
    def map_command(
        inputs: Annotated[
            list[str],
            typer.Option(
                "--input", "-i", help="Input files, directories, globs or blob://CONTAINER/PREFIX (repeatable)."
            ),
        ],
        command: Annotated[str, typer.Option(help="Command template run for each input (placeholders: {input}, ...).")],
        output_patterns: Annotated[
            list[str],
            typer.Option("--output-pattern", help="Files the command writes under {output_dir} (repeatable)."),
        ],
        app_path: Annotated[
            Path | None, typer.Option("--app", help="Application directory or file, staged on every node as {app}.")
        ] = None,
        output: Annotated[Path, typer.Option(help="Directory for the outputs (a subdirectory per run).")] = Path(
            "outputs"
        ),
        param: Annotated[list[str] | None, typer.Option(help="Your own placeholder NAME=VALUE (repeatable).")] = None,
        env: Annotated[list[str] | None, typer.Option(help="Environment variable NAME=VALUE for every task.")] = None,
        secret: Annotated[
            list[str] | None,
            typer.Option(help="NAME of a variable of this shell passed to every task (value never shown)."),
        ] = None,
        required_slots: Annotated[int, typer.Option(help="Task slots each task needs.")] = 1,
        max_wall_clock: Annotated[
            str | None, typer.Option(help="End a task running longer than this (90s, 30m, 2h).")
        ] = None,
        retries: Annotated[int | None, typer.Option(help="Batch retries of a failed task (default 1).")] = None,
        image: Annotated[str | None, typer.Option(help="Run every task in this container image.")] = None,
        app_package: Annotated[
            str | None, typer.Option(help="Application package NAME[:VERSION] of the Batch account, as {app}.")
        ] = None,
        pool_id: Annotated[
            str | None, typer.Option(help="Pool to create or reuse (default BATCHPIPE_POOL_ID).")
        ] = None,
        approve_: Annotated[
            Approval, typer.Option("--approve", help="Delete job and pool: ask (terminal/UI), wait (UI/API), yes, no.")
        ] = "ask",
        keep_containers: Annotated[bool, typer.Option(help="Keep the blob containers after success.")] = False,
        target: Annotated[Target | None, typer.Option(help="local (default) or azure.")] = None,
        state_dir: Annotated[Path, typer.Option(help="Local services' state (local target).")] = Path(".batchpipe"),
        local_auth: Annotated[LocalAuth | None, typer.Option(help="Local target: key (default) or entra.")] = None,
    ) -> None:
        """Run a command over many inputs, one Batch task each; outputs are uploaded by Batch and downloaded here."""
        from batchpipe.run_guard import check_output_dir
        from batchpipe.settings import load_settings
        from batchpipe.workload import parse_assignments, resolve_map_inputs
        from flows.batch_map import build_spec, map_run_id

        settings = load_settings(target=target, local_auth=local_auth, pool_id=pool_id)
        parameters = parse_assignments(param or [], "--param")
        environment = parse_assignments(env or [], "--env")
        # Bad input, templates, patterns, names, missing secrets and an unwritable --output fail here, before any
        # service starts.
        files = resolve_map_inputs(inputs)
        check_output_dir(output)
        if settings.target == "azure":
            settings.require_azure()
        options: dict[str, Any] = {
            "inputs": inputs,
            "command": command,
            "output_patterns": output_patterns,
            "app": str(app_path) if app_path else None,
            "output_dir": str(output),
            "parameters": parameters,
            "environment": environment,
            "secrets": secret or [],
            "required_slots": required_slots,
            "max_wall_clock": max_wall_clock,
            "retries": retries,
            "image": image,
            "app_package": app_package,
            "approval": approve_,
            "keep_containers": keep_containers,
            "pool_id": pool_id,
        }
        spec_keys = ["command", "output_patterns", "app", "parameters", "environment", "secrets", "required_slots"]
        spec_keys += ["max_wall_clock", "retries", "image", "app_package"]
        spec = build_spec(**{k: options[k] for k in spec_keys})
        summary = _run(settings, state_dir, options, map_run_id(files, spec, settings.pool_id))
        _print_summary(summary)


def _run(settings: Settings, state_dir: Path, options: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The flow with its services, as ``batchpipe run`` runs it (interrupts, services stopped in order)."""
    from batchpipe import cli
    from batchpipe.cli_support import quiet_explained_tracebacks

    cli._prefect_offline(Path.cwd())

    def run_flow() -> dict[str, Any]:
        from flows.batch_map import batch_map

        quiet_explained_tracebacks()

        def seen(flow: Any, flow_run: Any, state: Any) -> None:
            cli._FLOW_RUN.id, cli._FLOW_RUN.name = flow_run.id, flow_run.name

        return dict(batch_map.with_options(on_running=[seen])(**options))

    return cli._run_guarded(
        run_flow,
        local=settings.target == "local",
        state_dir=state_dir,
        local_auth=settings.local_auth,
        job_id=run_id,
        settings_overrides={"target": settings.target, "local_auth": settings.local_auth, "pool_id": settings.pool_id},
    )


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Run {summary['run_id']}")
    for column in ("input", "status", "what happened"):
        table.add_column(column)
    for item in summary["inputs"]:
        table.add_row(escape(item["key"]), item["status"], escape("; ".join(item["history"]) or item["reason"]))
    console.print(table)
    console.print(f"Inputs: {summary['reconcile']}")
    console.print(f"Outputs: [bold]{escape(summary['output_dir'])}[/] (manifest: {escape(summary['manifest'])})")
    console.print(
        f"Job {summary['job_id']}: {summary['job']}; pool {summary['pool_id']}: {summary['pool']}; "
        f"containers: {summary['containers']} ({escape(summary['decided_by'])})"
    )
