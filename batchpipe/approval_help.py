"""What the approval step tells the user: only the ways of answering that exist for this run.

A plain ``batchpipe run`` has a temporary Prefect API without a UI, and maybe no terminal to ask in; a run on
``batchpipe stack`` or a deployment has the UI's Resume form. :func:`approval_instructions` says which apply.
"""

from __future__ import annotations

import contextlib

import httpx

from batchpipe.durations import describe


def serves_ui(api_url: str | None) -> str | None:
    """The Prefect UI's address when the server behind ``api_url`` serves one (a quick loopback probe), else None."""
    if not api_url:
        return None
    ui_url = api_url.rstrip("/").removesuffix("/api")
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(ui_url, timeout=1.0)
        if response.status_code == 200 and "html" in response.headers.get("content-type", ""):
            return ui_url
    return None


def approval_instructions(
    *,
    mode: str,
    terminal: bool,
    flow_run_name: str,
    flow_run_id: str,
    api_url: str | None,
    ui_url: str | None,
    job_id: str,
    pool_id: str,
    timeout: float,
    default_job: bool,
    default_pool: bool,
) -> str:
    """One message: what is waiting, every way of answering that works for this run, what happens without one.

    Args:
        mode: ``ask`` or ``wait``.
        terminal: stdin is a terminal (``ask`` asks there).
        flow_run_name: the paused run's name (``batchpipe approve`` takes it, or its id).
        flow_run_id: the paused run's id.
        api_url: the Prefect API the run reports to.
        ui_url: the Prefect UI's address when the server serves one (see :func:`serves_ui`).
        job_id: the job to delete.
        pool_id: the pool to delete.
        timeout: seconds before the default applies.
        default_job: the default for the job.
        default_pool: the default for the pool.
    """
    env = f"PREFECT_API_URL={api_url} " if api_url else ""
    command = f"`{env}batchpipe approve {flow_run_name} yes|no|job-only|pool-only`"
    ways = []
    if mode == "ask" and terminal:
        ways.append("answer the questions below in this terminal")
    ways.append(f"from another shell: {command}")
    if ui_url:
        ways.append(f"the Resume form in the Prefect UI ({ui_url}/runs/flow-run/{flow_run_id})")
    lead = f"Waiting for approval to delete job {job_id} and pool {pool_id}"
    if mode == "ask" and not terminal:
        lead = f"No terminal to ask in (stdin is not a TTY, --approve ask). {lead}"
    fallback = (
        f"without an answer in {describe(timeout)}: delete job={default_job}, delete pool={default_pool} "
        "(BATCHPIPE_APPROVAL_TIMEOUT; --approve yes|no answers up front)"
    )
    return f"{lead}: {'; or '.join(ways)}; {fallback}"
