"""The local Batch service and Azurite restarted while a run monitors its tasks: nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration]
SLOW_NODES = "slow_allocation=4s"  # the restart lands while the tasks wait for nodes


class Run(threading.Thread):
    """The pipeline in a thread of its own, so that the test's main thread can restart services meanwhile.

    Services are restarted from the main thread on purpose: PR_SET_PDEATHSIG fires when the *thread* that
    started a child exits, so a service started from a short-lived thread would die with it.
    """

    def __init__(self, sources: list[Path], out: Path) -> None:
        super().__init__(daemon=True)
        self.sources, self.out = sources, out
        self.state: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.state = top_words_pipeline(
                inputs=[str(p) for p in self.sources], output_dir=str(self.out), approval="no", return_state=True
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def restart_mid_run(
    stack: Any, sources: list[Path], out: Path, restart: Callable[[], dict[str, Any]], wait: Any
) -> tuple[Any, dict[str, Any]]:
    """Run the pipeline; once all its tasks are submitted (and wait for nodes), ``restart``; return the final
    state and what was seen at the restart."""
    run = Run(sources, out)
    run.start()

    def submitted() -> bool:
        jobs = stack.jobs_on_pool()
        return bool(jobs) and len(list(stack.batch.list_tasks(jobs[0]))) == len(sources)

    wait(lambda: submitted() or not run.is_alive(), timeout=180, what="the run to submit its tasks")
    assert run.is_alive(), f"the run ended before the restart: {run.state or run.error!r}"
    batch = stack.batch
    job_id = stack.jobs_on_pool()[0]
    counts = batch.get_job_task_counts(job_id).task_counts
    seen = {"job": job_id, "pending": counts.active + counts.running}
    seen["pool_created"] = batch.get_pool(stack.pool_id).creation_time
    seen |= restart()
    run.join(240)
    assert run.error is None, repr(run.error)
    return run.state, seen


@pytest.mark.scenario(
    "Faults",
    "the local Batch service stopped (SIGTERM) and started again on its data directory while the run monitors "
    "4 tasks waiting for nodes",
    "its state (pool, job, tasks) survives and the run completes with every output",
)
def test_batch_service_restart_mid_run(
    own_stack: Any,
    own_emulator: Any,
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    job_tasks: Callable[..., list[Any]],
    observe: Callable[[str], None],
    wait: Any,
    tmp_path: Path,
) -> None:
    sources = inputs(tmp_path / "in", 4)
    own_emulator.set_faults(SLOW_NODES)

    def restart() -> dict[str, Any]:
        own_emulator.restart()  # comes back without faults, on the same port
        return {}

    state, seen = restart_mid_run(own_stack, sources, tmp_path / "out", restart, wait)

    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["job_id"] == seen["job"]
    assert seen["pending"] > 0  # the restart happened mid-run
    assert own_stack.batch.get_pool(own_stack.pool_id).creation_time == seen["pool_created"]
    job_tasks(own_stack.batch, summary["job_id"], sources)
    verified = check_outputs(Path(summary["output_dir"]), sources, 3, summary["job_id"], own_stack.pool_id)
    observe(f"restarted with {seen['pending']} of 4 tasks unfinished; pool, job and tasks were still there")
    observe(f"run Completed: {verified} outputs verified, one task per input, pool not recreated")


@pytest.mark.scenario(
    "Faults",
    "Azurite stopped (SIGTERM) and started again on its --location (same port) while the run monitors 4 tasks",
    "no data lost: the uploaded inputs are unchanged and the run completes with every output",
)
def test_azurite_restart_mid_run(
    own_stack: Any,
    own_azurite: Any,
    own_emulator: Any,
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
    wait: Any,
    tmp_path: Path,
) -> None:
    sources = inputs(tmp_path / "in", 4)
    own_emulator.set_faults(SLOW_NODES)
    input_container = own_stack.names["BATCHPIPE_INPUT_CONTAINER"]

    def blobs() -> dict[str, tuple[str, str]]:
        container = own_stack.blobs.get_container_client(input_container)
        return {b.name: (b.etag, b.content_settings.content_md5.hex()) for b in container.list_blobs()}

    def restart() -> dict[str, Any]:
        before = blobs()
        own_azurite.restart()
        return {"before": before, "after": blobs()}

    state, seen = restart_mid_run(own_stack, sources, tmp_path / "out", restart, wait)

    assert state.is_completed(), state.message
    summary = state.result()
    assert seen["pending"] > 0
    assert sorted(seen["before"]) == sorted(p.name for p in sources)
    assert seen["after"] == seen["before"]  # same blobs, same ETags and MD5s
    verified = check_outputs(Path(summary["output_dir"]), sources, 3, summary["job_id"], own_stack.pool_id)
    observe(
        f"restarted with {seen['pending']} of 4 tasks unfinished; "
        f"{len(seen['after'])} input blobs unchanged (ETag, MD5)"
    )
    observe(f"run Completed: nodes read the inputs from the restarted Azurite; {verified} outputs verified")
