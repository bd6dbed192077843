"""`batchpipe run` killed with SIGKILL while it monitors; the same command again finishes the same job."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient

from batchpipe.naming import resolve_inputs, task_id_for
from batchpipe.services import PROJECT_ROOT, AzuriteInfo, ServiceProcess, running, start_azurite, start_batch_emulator

pytestmark = [pytest.mark.integration]
SAMPLES = sorted((PROJECT_ROOT / "samples").glob("*.txt"))
_AZURITE_URL = re.compile(r"successfully listens on (http://127\.0\.0\.1:\d+)")


class Output(threading.Thread):
    """Collects a child's merged output lines as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def _input_etags(blob_endpoint: str) -> dict[str, str]:
    client = BlobServiceClient.from_connection_string(AzuriteInfo(blob_endpoint).connection_string)
    return {
        f"{container}/{blob.name}": str(blob.etag)
        for container in ("application", "input")
        for blob in client.get_container_client(container).list_blobs()
    }


def _kill(pid: int, procs: Any, wait: Callable[..., Any]) -> None:
    """Stop a leftover process by its PID (SIGTERM, then SIGKILL)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(BaseException):
        wait(lambda: not procs.running(pid), timeout=10, what=f"pid {pid} to stop")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _services_on(state_dir: Path) -> Iterator[tuple[str, ServiceProcess]]:
    """Azurite and the local Batch service on the run's state directory, to inspect what it left."""
    azurite = start_azurite(state_dir / "azurite", log_path=state_dir / "inspect-azurite.log")
    with running(azurite):
        batch = start_batch_emulator(state_dir / "batch", log_path=state_dir / "inspect-batch.log")
        with running(batch):
            yield azurite.url, batch


@pytest.mark.slow  # the normal suite kills the CLI mid-run in tests/test_reliability/test_interrupts.py
@pytest.mark.scenario(
    "Faults",
    "`batchpipe run --state-dir S` (samples, its temporary Prefect API) killed with SIGKILL while monitoring, its "
    "nodes slowed so no task has run; then the same command again",
    "no process left behind; the rerun completes the same job with no re-upload and no duplicate task",
)
def test_sigkill_mid_monitoring_then_the_same_command_finishes_the_job(
    cli: Any,
    procs: Any,
    wait: Callable[..., Any],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
) -> None:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    state_dir, out = cli.workdir / "state", cli.workdir / "out"
    args = ["run", "--state-dir", str(state_dir), "--output", str(out), "--approve", "no", "--keep-containers"]
    env = {"BATCHPIPE_POLL_INTERVAL": "0.2", "BATCHPIPE_MAX_POLL_INTERVAL": "0.5"}
    ready = state_dir / "batch" / "emulator.ready"

    process = cli.start(*args, env=env)
    output = Output(process)
    output.start()
    try:
        wait(lambda: ready.exists() and ready.read_text().strip(), timeout=120, what="the local Batch service")
        # Nodes that take ten minutes to allocate: the run is certainly still monitoring when it is killed.
        httpx.put(f"{ready.read_text().strip()}/_emulator/faults", json={"spec": "slow_allocation=600s"}, timeout=10)
        wait(lambda: "Tasks: 3 active" in output.text() or process.poll() is not None, timeout=240, what="monitoring")
        assert process.poll() is None, output.text()[-3000:]
        tree = procs.tree(process.pid)
        sockets = procs.listening(list(tree))
        azurite_url = _AZURITE_URL.findall((state_dir / "azurite" / "azurite.log").read_text())[-1]
        etags_before = _input_etags(f"{azurite_url}/devstoreaccount1")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    with contextlib.suppress(BaseException):
        wait(lambda: not any(procs.running(pid) for pid in tree), timeout=20, what="the run's processes to end")
    survivors = {pid: cmd for pid, cmd in tree.items() if procs.running(pid)}
    for pid in survivors:
        _kill(pid, procs, wait)  # clean up by PID whatever outlived the kill
    output.join(30)  # survivors held the run's output pipe open; it ends now that they are gone
    assert not output.is_alive()
    assert process.stdout is not None
    process.stdout.close()
    cli.transcripts.append(("batchpipe run (killed)", output.text()))
    assert not survivors, f"processes outlived the killed run: {survivors}"
    assert all(procs.loopback(a) for addresses in sockets.values() for a in addresses), sockets

    rerun = cli.run(*args, env=env)

    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    job_id = re.search(r"Top words \(job (batchpipe-\w+)\)", log)
    assert job_id, log[-2000:]
    # The killed run's tasks, in its job: still queued, or already run by the restarted service.
    reconciled = re.search(r"Reconcile \(round 1\): 3 (wait|download)\b", log)
    assert reconciled, log[-3000:]
    assert _submitted(log) == 0, log[-3000:]
    check_outputs(out / job_id.group(1), SAMPLES, 3, job_id.group(1), "batchpipe-pool")
    with _services_on(state_dir) as (blob_endpoint, batch):
        assert _input_etags(blob_endpoint) == etags_before  # nothing uploaded again
        client = BatchClient(batch.url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY))
        tasks = list(client.list_tasks(job_id.group(1)))
        client.close()
    assert sorted(t.id for t in tasks) == sorted(task_id_for(i) for i in resolve_inputs([str(p) for p in SAMPLES]))
    assert all(t.execution_info.exit_code == 0 and t.execution_info.retry_count == 0 for t in tasks)

    services = sorted({procs.name(cmd) for cmd in tree.values()} - {""})
    observe(f"killed while monitoring; its process tree was: {', '.join(services)}")
    observe("every child process ended with the run (none left behind), the temporary Prefect API server included")
    observe(f"all {sum(len(a) for a in sockets.values())} listening sockets of the run were on 127.0.0.1")
    observe(
        f"rerun exit 0 in {rerun.seconds:.0f}s: same job {job_id.group(1)}, '{reconciled.group(0)}', "
        "no task submitted, "
        f"{len(etags_before)} blobs with unchanged ETags, {len(tasks)} tasks (each ran once), 3 outputs verified"
    )


# --- the kill-point matrix: every step x SIGKILL of the CLI, of Azurite, of the local Batch service ------------

#: Each step of the flow and the log line that shows it was reached (the kill lands right after it).
STEPS = {
    "containers": "Containers ready",
    "uploads": "Container input: uploaded",
    "pool": "Created pool",
    "job": "Created job",
    "submission": "Submitted 3 tasks",
    "monitoring": "Tasks: ",
    "download": "Downloaded and verified",
}
VICTIMS = {"cli": "the CLI", "azurite": "Azurite", "batch": "the local Batch service"}


#: The cells `make test` runs too (the whole matrix takes half an hour: `make test-slow`): Azurite SIGKILLed once the
#: pool exists, so that it may lose the application blob the nodes' start task needs, and the rerun must mend that.
IN_EVERY_RUN = {("job", "azurite")}


def _submitted(text: str) -> int:
    return sum(int(n) for n in re.findall(r"Submitted (\d+) tasks to job", text))


def _cell(step: str, victim: str) -> Any:
    marks = [
        pytest.mark.scenario(
            "Faults",
            f"kill point: SIGKILL of {VICTIMS[victim]} once `batchpipe run` logs `{STEPS[step]}` ({step}); then the "
            "same command again",
            "no process left behind, no traceback; the rerun completes: every output verified, no task submitted twice",
        )
    ]
    if (step, victim) not in IN_EVERY_RUN:
        marks.append(pytest.mark.slow)
    return pytest.param(step, victim, id=f"{step}-{victim}", marks=marks)


@pytest.mark.parametrize(("step", "victim"), [_cell(step, victim) for step in STEPS for victim in VICTIMS])
def test_kill_point_then_the_same_command_completes(
    step: str,
    victim: str,
    cli: Any,
    live: Callable[..., Any],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
) -> None:
    args = ["run", "--state-dir", "state", "--output", "out", "--approve", "yes"]
    env = {"BATCHPIPE_POLL_INTERVAL": "0.2", "BATCHPIPE_MAX_POLL_INTERVAL": "0.5"}
    run = live(*args, env=env)
    run.wait_marker(STEPS[step])
    if victim == "cli":
        run.send(signal.SIGKILL)
    else:
        run.kill_service("azurite" if victim == "azurite" else "batch_emulator")
    first = run.finish(timeout=240)
    left = run.leftovers()
    observe(f"first run exit {first.returncode} ({first.error_line[:200]}); {len(left)} process(es) left")
    assert not left, f"processes outlived the run: {left}"
    if victim != "cli":
        assert first.returncode != 0 or "Finished in state Completed" in first.stdout, first.stdout[-2000:]
        assert "Traceback" not in first.stdout, first.stdout[-3000:]

    rerun = cli.run(*args, env=env)

    assert rerun.returncode == 0, first.stdout[-1500:] + rerun.stdout[-1500:] + rerun.stderr[-3000:]
    job_id = re.search(r"Top words \(job (batchpipe-\w+)\)", rerun.stdout)
    assert job_id, rerun.stdout[-2000:]
    check_outputs(cli.workdir / "out" / job_id.group(1), SAMPLES, 3, job_id.group(1), "batchpipe-pool")
    submitted = _submitted(first.stdout) + _submitted(rerun.stdout + rerun.stderr)
    assert submitted <= 3, f"{submitted} task submissions for 3 inputs"
    observe(f"rerun exit 0 in {rerun.seconds:.0f}s: 3 outputs verified, {submitted} task submission(s) in all")
