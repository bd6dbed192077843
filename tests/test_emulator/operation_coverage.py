"""Which ``BatchClient`` operations of azure-batch 15 the local Batch service implements: a generated table.

Every public operation of the client (found by introspection, so a new SDK operation cannot be missed) is
called once against a running service; each either answers with its real behaviour or with a Batch-shaped
``501 NotImplemented`` naming what is missing. The table lives in docs/emulator.md between the coverage
markers; ``tests/test_emulator/test_operation_coverage.py`` fails when it is stale. Regenerate it with::

    .venv/bin/python -m tests.test_emulator.operation_coverage
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as M
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from tests.polling import wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
START, END = "<!-- operation-coverage:start -->", "<!-- operation-coverage:end -->"
#: Client methods that are not Batch operations.
NOT_OPERATIONS = {"close", "send_request"}
POOL, EXTRA_POOL, JOB, EXTRA_JOB, SCHEDULE = "cov-pool", "cov-extra-pool", "cov-job", "cov-extra-job", "cov-schedule"
TASK, FAILED, NEW_TASK = "cov-task", "cov-failed", "cov-new"
TASK_DIR = f"workitems/{JOB}/job-1/{TASK}"
IMAGE = M.VirtualMachineConfiguration(
    image_reference=M.BatchVmImageReference(
        publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
    ),
    node_agent_sku_id="batch.node.ubuntu 22.04",
)


@dataclass(frozen=True)
class Outcome:
    """How one operation answered."""

    operation: str
    implemented: bool
    detail: str


def operation_names() -> list[str]:
    """The public operations of ``BatchClient``, sorted."""
    return sorted(
        name
        for name, _ in inspect.getmembers(BatchClient, inspect.isfunction)
        if not name.startswith("_") and name not in NOT_OPERATIONS
    )


def _pool(pool_id: str, nodes: int) -> M.BatchPoolCreateOptions:
    return M.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=IMAGE, target_dedicated_nodes=nodes
    )


def _task(task_id: str, command: str = "/bin/true") -> M.BatchTaskCreateOptions:
    return M.BatchTaskCreateOptions(id=task_id, command_line=command)


def set_up(client: BatchClient) -> str:
    """A pool with one idle node, a job with a preparation task, a finished task and a failed one.

    Returns:
        The node's id.
    """
    client.create_pool(_pool(POOL, 1))
    wait_until(lambda: [n.state for n in client.list_nodes(POOL)] == ["idle"], what="an idle node", timeout=30.0)
    preparation = M.BatchJobPreparationTask(command_line="/bin/true")
    release = M.BatchJobReleaseTask(command_line="/bin/true")
    client.create_job(
        M.BatchJobCreateOptions(
            id=JOB,
            pool_info=M.BatchPoolInfo(pool_id=POOL),
            job_preparation_task=preparation,
            job_release_task=release,
        )
    )
    client.create_job(M.BatchJobCreateOptions(id=EXTRA_JOB, pool_info=M.BatchPoolInfo(pool_id=POOL)))
    scratch = "/bin/bash -c 'touch scratch.txt scratch2.txt; echo done'"
    client.create_tasks(JOB, [_task(TASK, scratch), _task(FAILED, "/bin/false")])
    wait_until(
        lambda: client.get_job_task_counts(JOB).task_counts.completed == 2, what="the set-up tasks", timeout=30.0
    )
    return str(next(iter(client.list_nodes(POOL))).id)


def _then_idle(client: BatchClient, node: str, poller: Any) -> None:
    """Wait for a node operation's poller, then for the node to be idle again (the next operation needs that)."""
    poller.result()
    wait_until(lambda: client.get_node(POOL, node).state == "idle", what=f"{node} idle again", timeout=30.0)


class _Sink(BaseHTTPRequestHandler):
    """A blob container that accepts every upload (for ``upload_node_logs``)."""

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def _sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def calls(node: str, sink: str) -> dict[str, Callable[[BatchClient], Any]]:
    """One call per operation, in the order they run (reads first, destructive ones last)."""
    now = datetime.datetime.now(datetime.UTC)
    hourly = M.BatchJobScheduleConfiguration(recurrence_interval=datetime.timedelta(hours=1))
    schedule_job = M.BatchJobSpecification(pool_info=M.BatchPoolInfo(pool_id=POOL))
    formula = "$TargetDedicatedNodes = 1;"
    no_wait: dict[str, Any] = {"polling_interval": 0}
    return {
        "list_supported_images": lambda c: list(c.list_supported_images()),
        "list_applications": lambda c: list(c.list_applications()),
        "get_application": lambda c: c.get_application("cov-application"),
        "create_pool": lambda c: c.create_pool(_pool(EXTRA_POOL, 0)),
        "pool_exists": lambda c: c.pool_exists(POOL),
        "get_pool": lambda c: c.get_pool(POOL),
        "list_pools": lambda c: list(c.list_pools()),
        "update_pool": lambda c: c.update_pool(
            POOL, M.BatchPoolUpdateOptions(metadata=[M.BatchMetadataItem(name="k", value="v")])
        ),
        "replace_pool_properties": lambda c: c.replace_pool_properties(
            POOL, M.BatchPoolReplaceOptions(application_package_references=[], metadata=[])
        ),
        "begin_resize_pool": lambda c: c.begin_resize_pool(
            EXTRA_POOL, M.BatchPoolResizeOptions(target_dedicated_nodes=0), **no_wait
        ).result(),
        "begin_stop_pool_resize": lambda c: c.begin_stop_pool_resize(EXTRA_POOL, **no_wait).result(),
        "list_pool_node_counts": lambda c: list(c.list_pool_node_counts()),
        "list_pool_usage_metrics": lambda c: list(c.list_pool_usage_metrics()),
        "enable_pool_auto_scale": lambda c: c.enable_pool_auto_scale(
            EXTRA_POOL, M.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 0;")
        ),
        "evaluate_pool_auto_scale": lambda c: c.evaluate_pool_auto_scale(
            EXTRA_POOL, M.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
        ),
        "disable_pool_auto_scale": lambda c: c.disable_pool_auto_scale(EXTRA_POOL),
        "list_nodes": lambda c: list(c.list_nodes(POOL)),
        "get_node": lambda c: c.get_node(POOL, node),
        "list_node_files": lambda c: list(c.list_node_files(POOL, node, recursive=True)),
        "get_node_file_properties": lambda c: c.get_node_file_properties(POOL, node, f"{TASK_DIR}/stdout.txt"),
        "download_node_file": lambda c: b"".join(c.download_node_file(POOL, node, f"{TASK_DIR}/stdout.txt")),
        "delete_node_file": lambda c: c.delete_node_file(POOL, node, f"{TASK_DIR}/wd/scratch.txt"),
        "create_node_user": lambda c: c.create_node_user(
            POOL, node, M.BatchNodeUserCreateOptions(name="cov-user", password="cov-Passw0rd!")
        ),
        "replace_node_user": lambda c: c.replace_node_user(
            POOL, node, "cov-user", M.BatchNodeUserReplaceOptions(password="cov-Passw0rd!2")
        ),
        "delete_node_user": lambda c: c.delete_node_user(POOL, node, "cov-user"),
        "get_node_remote_login_settings": lambda c: c.get_node_remote_login_settings(POOL, node),
        "upload_node_logs": lambda c: c.upload_node_logs(
            POOL,
            node,
            M.UploadBatchServiceLogsOptions(container_url=f"{sink}/logs?sv=sas", start_time=now),
        ),
        "list_node_extensions": lambda c: list(c.list_node_extensions(POOL, node)),
        "get_node_extension": lambda c: c.get_node_extension(
            POOL, node, next(iter(c.list_node_extensions(POOL, node))).vm_extension.name
        ),
        "create_job": lambda c: c.create_job(
            M.BatchJobCreateOptions(id="cov-created-job", pool_info=M.BatchPoolInfo(pool_id=POOL))
        ),
        "get_job": lambda c: c.get_job(JOB),
        "list_jobs": lambda c: list(c.list_jobs()),
        "update_job": lambda c: c.update_job(JOB, M.BatchJobUpdateOptions(priority=1)),
        "replace_job": lambda c: c.replace_job(JOB, M.BatchJob(pool_info=M.BatchPoolInfo(pool_id=POOL), priority=2)),
        "get_job_task_counts": lambda c: c.get_job_task_counts(JOB),
        "list_job_preparation_and_release_task_status": lambda c: list(
            c.list_job_preparation_and_release_task_status(JOB)
        ),
        "create_task": lambda c: c.create_task(JOB, _task(NEW_TASK, "/bin/sleep 30")),
        "create_task_collection": lambda c: c.create_task_collection(
            JOB, M.BatchTaskGroup(task_values=[_task("cov-collected")])
        ),
        "create_tasks": lambda c: c.create_tasks(JOB, [_task("cov-added")]),
        "list_tasks": lambda c: list(c.list_tasks(JOB)),
        "get_task": lambda c: c.get_task(JOB, TASK),
        "replace_task": lambda c: c.replace_task(
            JOB, TASK, M.BatchTask(constraints=M.BatchTaskConstraints(max_task_retry_count=1))
        ),
        "list_subtasks": lambda c: list(c.list_subtasks(JOB, TASK)),
        "list_task_files": lambda c: list(c.list_task_files(JOB, TASK, recursive=True)),
        "get_task_file_properties": lambda c: c.get_task_file_properties(JOB, TASK, "stdout.txt"),
        "download_task_file": lambda c: b"".join(c.download_task_file(JOB, TASK, "stdout.txt")),
        "delete_task_file": lambda c: c.delete_task_file(JOB, TASK, "wd/scratch2.txt"),
        "terminate_task": lambda c: c.terminate_task(JOB, NEW_TASK),
        "reactivate_task": lambda c: c.reactivate_task(JOB, FAILED),
        "delete_task": lambda c: c.delete_task(JOB, NEW_TASK),
        "create_job_schedule": lambda c: c.create_job_schedule(
            M.BatchJobScheduleCreateOptions(id=SCHEDULE, schedule=hourly, job_specification=schedule_job)
        ),
        "job_schedule_exists": lambda c: c.job_schedule_exists(SCHEDULE),
        "get_job_schedule": lambda c: c.get_job_schedule(SCHEDULE),
        "list_job_schedules": lambda c: list(c.list_job_schedules()),
        "list_jobs_from_schedule": lambda c: list(c.list_jobs_from_schedule(SCHEDULE)),
        "update_job_schedule": lambda c: c.update_job_schedule(
            SCHEDULE, M.BatchJobScheduleUpdateOptions(metadata=[M.BatchMetadataItem(name="k", value="v")])
        ),
        "replace_job_schedule": lambda c: c.replace_job_schedule(
            SCHEDULE, M.BatchJobSchedule(schedule=hourly, job_specification=schedule_job)
        ),
        "disable_job_schedule": lambda c: c.disable_job_schedule(SCHEDULE),
        "enable_job_schedule": lambda c: c.enable_job_schedule(SCHEDULE),
        "begin_terminate_job_schedule": lambda c: c.begin_terminate_job_schedule(SCHEDULE, **no_wait).result(),
        "begin_delete_job_schedule": lambda c: c.begin_delete_job_schedule(SCHEDULE, **no_wait).result(),
        "begin_disable_job": lambda c: c.begin_disable_job(
            EXTRA_JOB, M.BatchJobDisableOptions(disable_tasks="requeue"), **no_wait
        ).result(),
        "begin_enable_job": lambda c: c.begin_enable_job(EXTRA_JOB, **no_wait).result(),
        "begin_terminate_job": lambda c: c.begin_terminate_job(
            EXTRA_JOB, M._models.BatchJobTerminateOptions(termination_reason="UserTerminate"), **no_wait
        ).result(),
        "begin_delete_job": lambda c: c.begin_delete_job(EXTRA_JOB, **no_wait).result(),
        "disable_node_scheduling": lambda c: c.disable_node_scheduling(
            POOL, node, M.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
        ),
        "enable_node_scheduling": lambda c: c.enable_node_scheduling(POOL, node),
        "begin_reboot_node": lambda c: _then_idle(
            c,
            node,
            c.begin_reboot_node(POOL, node, M._models.BatchNodeRebootOptions(node_reboot_kind="requeue"), **no_wait),
        ),
        "begin_reimage_node": lambda c: _then_idle(
            c,
            node,
            c.begin_reimage_node(
                POOL, node, M._models.BatchNodeReimageOptions(node_reimage_option="requeue"), **no_wait
            ),
        ),
        "begin_deallocate_node": lambda c: c.begin_deallocate_node(
            POOL, node, M._models.BatchNodeDeallocateOptions(node_deallocate_option="requeue"), **no_wait
        ).result(),
        "begin_start_node": lambda c: _then_idle(c, node, c.begin_start_node(POOL, node, **no_wait)),
        "begin_remove_nodes": lambda c: c.begin_remove_nodes(
            POOL, M.BatchNodeRemoveOptions(node_ids=[node]), **no_wait
        ).result(),
        "begin_delete_pool": lambda c: c.begin_delete_pool(EXTRA_POOL, **no_wait).result(),
    }


def _outcome(name: str, call: Callable[[BatchClient], Any], client: BatchClient) -> Outcome:
    try:
        call(client)
    except HttpResponseError as error:
        code = error.error.code if error.error is not None else ""
        if error.status_code == 501:
            message = str(error.error.message if error.error is not None else "").split("\n", 1)[0]
            return Outcome(name, False, message or "(a HEAD request: the answer has no body)")
        return Outcome(name, True, f"answers {error.status_code} `{code}` here")
    return Outcome(name, True, "")


def measure(url: str, account_name: str, account_key: str) -> list[Outcome]:
    """Call every operation once against the service at ``url`` (an empty account) and classify the answers.

    Raises:
        AssertionError: an operation has no call here, or a call names no operation.
    """
    client = BatchClient(url, AzureNamedKeyCredential(account_name, account_key))
    try:
        node = set_up(client)
        with _sink() as sink:
            planned = calls(node, sink)
            names = operation_names()
            missing, unknown = sorted(set(names) - set(planned)), sorted(set(planned) - set(names))
            assert not missing, f"no coverage call for the new SDK operation(s) {missing}; add them to calls()"
            assert not unknown, f"calls() names operations the SDK does not have: {unknown}"
            outcomes = {name: _outcome(name, call, client) for name, call in planned.items()}
    finally:
        client.close()
    return [outcomes[name] for name in names]


def table(outcomes: list[Outcome]) -> str:
    """The markdown table (with its summary line)."""
    done = sum(1 for outcome in outcomes if outcome.implemented)
    if done == len(outcomes):
        summary = f"All {done} operations of azure-batch 15's `BatchClient` answer with their real behaviour."
    else:
        summary = (
            f"{done} of the {len(outcomes)} operations of azure-batch 15's `BatchClient` answer with their real"
            f" behaviour; the other {len(outcomes) - done} answer `501 NotImplemented` and say what is missing."
        )
    lines = [
        summary,
        "",
        "| operation | answer |",
        "|---|---|",
    ]
    for outcome in outcomes:
        answer = "implemented" if outcome.implemented else f"501: {outcome.detail}"
        if outcome.implemented and outcome.detail:
            answer += f" ({outcome.detail})"
        lines.append(f"| `{outcome.operation}` | {answer} |")
    return "\n".join(lines)


def replace_section(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced by ``generated``.

    Raises:
        ValueError: the markers are missing.
    """
    before, found, rest = document.partition(START)
    _, found_end, after = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"{DOC} has no {START} … {END} section")
    return f"{before}{START}\n{generated}\n{END}{after}"


def main() -> None:
    """Regenerate the table in docs/emulator.md against a fresh in-process service."""
    from batch_emulator.server import EmulatorConfig, ThreadedEmulator

    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05)) as emulator:
        outcomes = measure(emulator.url, emulator.account_name, emulator.account_key)
    DOC.write_text(replace_section(DOC.read_text("utf-8"), table(outcomes)), "utf-8")
    print(f"{DOC}: {sum(o.implemented for o in outcomes)} of {len(outcomes)} operations implemented")


if __name__ == "__main__":
    main()
