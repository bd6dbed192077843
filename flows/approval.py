"""The approval step before deleting the job and the pool, shared by every flow."""

# No `from __future__ import annotations`: Prefect reads real types.
import contextvars
import sys
import threading
import time
from dataclasses import dataclass
from uuid import UUID

from prefect import get_run_logger
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from prefect.settings import PREFECT_API_URL

from batchpipe.approval_help import approval_instructions, serves_ui
from batchpipe.settings import Settings
from tasks.cleanup import ApprovalMode, ApprovalTimer, CleanupApproval, terminal_prompt

# How often a paused run checks for an answer (Prefect's default of 10 s makes approval feel stuck).
APPROVAL_POLL_SECONDS = 2


@dataclass(frozen=True)
class Decision:
    """What happens to the job and the pool, and who decided."""

    delete_job: bool
    delete_pool: bool
    decided_by: str


def _ask_in_terminal(flow_run_id: str, deadline: float) -> None:
    """Ask like the tutorial, then answer the paused run (retrying until the pause is registered)."""
    from prefect import get_client
    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:  # ask once the pause (and its log line) is there, not inside it
        while time.monotonic() < deadline:
            state = client.read_flow_run(UUID(flow_run_id)).state
            if state is not None and state.is_paused():
                break
            time.sleep(0.2)  # polling the run's state, bounded by the deadline
    answer = CleanupApproval(
        delete_job=terminal_prompt("Delete job?", True),
        delete_pool=terminal_prompt("Delete pool?", True),
        comment="answered in the terminal",
    )
    while time.monotonic() < deadline:
        try:
            resume_flow_run(UUID(flow_run_id), run_input=answer.model_dump())
            return
        except NotPausedError:
            time.sleep(0.5)  # the flow has not reached its pause yet


def request_approval(mode: ApprovalMode, settings: Settings, job_id: str, pool_id: str) -> Decision:
    """The approval step before deleting the job and the pool.

    ``yes``/``no`` answer without asking; ``wait`` pauses the run for an answer from the Prefect UI, the API or
    ``batchpipe approve``; ``ask`` also asks in the terminal. Without an answer the configured default applies
    after ``approval_timeout`` and the run still completes.
    """
    if mode in ("yes", "no"):
        return Decision(mode == "yes", mode == "yes", f"--approve {mode}")
    logger = get_run_logger()
    default = CleanupApproval(
        delete_job=settings.delete_job_on_approval_timeout,
        delete_pool=settings.delete_pool_on_approval_timeout,
        comment="approval timed out",
    )
    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    flow_run_id = str(flow_run.id)  # type: ignore[union-attr]
    terminal = sys.stdin is not None and sys.stdin.isatty()
    api_url = PREFECT_API_URL.value()
    logger.info(
        approval_instructions(
            mode=mode,
            terminal=terminal,
            flow_run_name=flow_run.name,  # type: ignore[union-attr]
            flow_run_id=flow_run_id,
            api_url=api_url,
            ui_url=serves_ui(api_url),
            job_id=job_id,
            pool_id=pool_id,
            timeout=settings.approval_timeout,
            default_job=default.delete_job,
            default_pool=default.delete_pool,
        )
    )
    if mode == "ask" and terminal:
        deadline = time.monotonic() + settings.approval_timeout
        # In the run's context: its Prefect settings (the API this run uses) are context variables, and a bare thread
        # without them would start a temporary Prefect server of its own.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(_ask_in_terminal, flow_run_id, deadline), daemon=True).start()
    with ApprovalTimer(flow_run_id, settings.approval_timeout, default) as timer:
        answer = pause_flow_run(
            wait_for_input=CleanupApproval.form(
                description=f"Delete job `{job_id}` and pool `{pool_id}`? An idle pool keeps costing money.",
                delete_job=default.delete_job,
                delete_pool=default.delete_pool,
            ),
            timeout=int(settings.approval_timeout) + 300,
            poll_interval=APPROVAL_POLL_SECONDS,
        )
    decided_by = "timeout (configured default)" if timer.fired else f"approval ({answer.comment or 'no comment'})"
    logger.info("Approval: delete job=%s, delete pool=%s, by %s", answer.delete_job, answer.delete_pool, decided_by)
    return Decision(answer.delete_job, answer.delete_pool, decided_by)
