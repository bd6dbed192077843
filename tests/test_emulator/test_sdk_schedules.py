"""Job schedules through azure-batch 15: the ten operations, jobs made on time one at a time, and the
service's error codes; the service runs 600 times faster (a 1-minute recurrence lasts 0.1 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batch_emulator.server import EmulatorConfig, ThreadedEmulator

TIME_SCALE = 600.0  # the time scale of the scaled_emulator fixture


@pytest.fixture
def client(scaled_emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    client: BatchClient = helpers.make_client(scaled_emulator)
    return client


def job_spec(on_all_tasks_complete: str = "noaction", **extra: Any) -> batch_models.BatchJobSpecification:
    return batch_models.BatchJobSpecification(
        pool_info=batch_models.BatchPoolInfo(pool_id="pool_id"),
        all_tasks_complete_mode=on_all_tasks_complete,
        **extra,
    )


def create(client: BatchClient, schedule_id: str, spec: batch_models.BatchJobSpecification, **schedule: Any) -> None:
    client.create_job_schedule(
        batch_models.BatchJobScheduleCreateOptions(
            id=schedule_id, schedule=batch_models.BatchJobScheduleConfiguration(**schedule), job_specification=spec
        )
    )


def job_ids(client: BatchClient, schedule_id: str) -> list[str]:
    return [job.id for job in client.list_jobs_from_schedule(schedule_id)]


def terminate_job(client: BatchClient, job_id: str) -> None:
    options = batch_models._models.BatchJobTerminateOptions(termination_reason="UserTerminate")  # not exported
    client.begin_terminate_job(job_id, options, polling_interval=0).result()


def error_of(call: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value


def test_the_ten_operations_as_recorded(client: BatchClient, helpers: Any) -> None:
    create(
        client,
        "nightly",
        job_spec("terminatejob", constraints=batch_models.BatchJobConstraints(max_task_retry_count=2)),
        start_window=timedelta(hours=1),
        recurrence_interval=timedelta(days=1),
    )
    helpers.wait_until(lambda: job_ids(client, "nightly") == ["nightly:job-1"], what="the first job")
    schedule = client.get_job_schedule("nightly")
    wire = schedule.as_dict()
    assert wire["schedule"] == {"startWindow": "PT1H", "recurrenceInterval": "P1D"}
    assert wire["jobSpecification"] == {
        "priority": 0,
        "maxParallelTasks": -1,
        "allowTaskPreemption": False,
        "usesTaskDependencies": False,
        "onAllTasksComplete": "terminatejob",
        "onTaskFailure": "noaction",
        "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "maxTaskRetryCount": 2},
        "poolInfo": {"poolId": "pool_id"},
    }
    assert schedule.state == "active"
    assert schedule.execution_info.recent_job.id == "nightly:job-1"
    assert schedule.execution_info.recent_job.url.endswith("/jobs/nightly%3Ajob-1")
    next_run = schedule.execution_info.next_run_time - schedule.creation_time
    assert next_run == pytest.approx(timedelta(days=1) / TIME_SCALE, abs=timedelta(seconds=0.2))
    assert client.job_schedule_exists("nightly") is True
    with pytest.raises(ResourceNotFoundError):  # v15 raises on the 404 of a HEAD
        client.job_schedule_exists("never")
    assert [item.id for item in client.list_job_schedules()] == ["nightly"]
    job = client.get_job("nightly:job-1")
    assert (job.pool_info.pool_id, job.constraints.max_task_retry_count) == ("pool_id", 2)
    totals = client.get_job_schedule("nightly", expand=["stats"]).job_schedule_statistics
    assert (totals.succeeded_tasks_count, totals.url) == (0, schedule.url)
    assert schedule.job_schedule_statistics is None

    client.disable_job_schedule("nightly")
    assert client.get_job_schedule("nightly").state == "disabled"
    client.enable_job_schedule("nightly")
    assert client.get_job_schedule("nightly").state == "active"
    replacement = batch_models.BatchJobSchedule(
        schedule=batch_models.BatchJobScheduleConfiguration(recurrence_interval=timedelta(hours=10)),
        job_specification=job_spec(),
    )
    client.replace_job_schedule("nightly", replacement)
    assert client.get_job_schedule("nightly").as_dict()["schedule"] == {"recurrenceInterval": "PT10H"}
    patch = batch_models.BatchJobScheduleUpdateOptions(
        schedule=batch_models.BatchJobScheduleConfiguration(recurrence_interval=timedelta(hours=5))
    )
    client.update_job_schedule("nightly", patch)
    updated = client.get_job_schedule("nightly")
    assert updated.as_dict()["schedule"] == {"recurrenceInterval": "PT5H"}
    assert updated.job_specification.all_tasks_complete_mode == "noaction"

    client.begin_terminate_job_schedule("nightly", polling_interval=0).result()
    done = client.get_job_schedule("nightly")
    assert done.state == "completed"
    assert done.execution_info.end_time is not None
    assert done.execution_info.next_run_time is None
    assert client.get_job("nightly:job-1").state == "completed"

    client.begin_delete_job_schedule("nightly", polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job_schedule("nightly")
    with pytest.raises(ResourceNotFoundError):
        client.get_job("nightly:job-1")  # a schedule's jobs go with it


def test_recurring_jobs_until_do_not_run_after(client: BatchClient, helpers: Any) -> None:
    stop = datetime.now(UTC) + timedelta(seconds=0.6)  # six recurrences of a minute at 600x
    # A job without tasks completes at once with terminatejob, so every recurrence makes a new job.
    every_minute = timedelta(minutes=1)
    create(client, "minutely", job_spec("terminatejob"), recurrence_interval=every_minute, do_not_run_after=stop)
    schedule = helpers.wait_until(
        lambda: (schedule := client.get_job_schedule("minutely")).state == "completed" and schedule,
        what="completed schedule",
    )
    ids = job_ids(client, "minutely")
    assert ids == [f"minutely:job-{number}" for number in range(1, len(ids) + 1)]
    assert 3 <= len(ids) <= 7
    assert schedule.execution_info.end_time >= stop
    assert schedule.execution_info.recent_job.id == ids[-1]


def test_one_job_at_a_time(client: BatchClient, helpers: Any) -> None:
    create(client, "serial", job_spec(), recurrence_interval=timedelta(minutes=1))
    helpers.wait_until(lambda: job_ids(client, "serial") == ["serial:job-1"], what="the first job")

    def overdue() -> bool:
        next_run = client.get_job_schedule("serial").execution_info.next_run_time
        return next_run is not None and next_run < datetime.now(UTC) - timedelta(seconds=0.3)

    helpers.wait_until(overdue, what="the second run to be overdue")
    assert job_ids(client, "serial") == ["serial:job-1"]  # job-1 is still active: no second job
    terminate_job(client, "serial:job-1")
    helpers.wait_until(lambda: len(job_ids(client, "serial")) == 2, what="the second job")
    assert job_ids(client, "serial") == ["serial:job-1", "serial:job-2"]
    client.begin_delete_job_schedule("serial", polling_interval=0).result()


def test_do_not_run_until(client: BatchClient, helpers: Any) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    create(client, "later", job_spec(), do_not_run_until=start)
    schedule = client.get_job_schedule("later")
    assert schedule.execution_info.next_run_time == start
    assert schedule.execution_info.recent_job is None
    assert job_ids(client, "later") == []
    helpers.wait_until(lambda: job_ids(client, "later") == ["later:job-1"], what="the job at doNotRunUntil")
    assert client.get_job("later:job-1").creation_time >= start
    # Without a recurrence the schedule makes one job and completes when that job does.
    terminate_job(client, "later:job-1")
    helpers.wait_until(lambda: client.get_job_schedule("later").state == "completed", what="completed schedule")


def test_errors(client: BatchClient, helpers: Any) -> None:
    missing = error_of(lambda: client.get_job_schedule("nope"))
    assert (missing.status_code, missing.error.code) == (404, "JobScheduleNotFound")
    create(client, "dup", job_spec(), recurrence_interval=timedelta(hours=1))
    again = error_of(lambda: create(client, "DUP", job_spec()))
    assert (again.status_code, again.error.code) == (409, "JobScheduleExists")
    same_id = error_of(
        lambda: client.create_job(
            batch_models.BatchJobCreateOptions(id="dup", pool_info=batch_models.BatchPoolInfo(pool_id="p"))
        )
    )
    assert (same_id.status_code, same_id.error.code) == (409, "JobScheduleWithSameIdExists")
    client.create_job(batch_models.BatchJobCreateOptions(id="plain", pool_info=batch_models.BatchPoolInfo(pool_id="p")))
    clash = error_of(lambda: create(client, "plain", job_spec()))
    assert (clash.status_code, clash.error.code) == (409, "JobWithSameIdExists")
    short = error_of(lambda: create(client, "short", job_spec(), recurrence_interval=timedelta(seconds=30)))
    assert (short.status_code, short.error.code) == (400, "InvalidPropertyValue")

    client.begin_terminate_job_schedule("dup", polling_interval=0).result()
    completed = error_of(lambda: client.disable_job_schedule("dup"))
    assert (completed.status_code, completed.error.code) == (409, "JobScheduleCompleted")
    client.begin_delete_job_schedule("dup", polling_interval=0).result()
    client.begin_delete_job("plain", polling_interval=0).result()


def test_schedules_and_autoscale_survive_a_restart(tmp_path: Path, helpers: Any) -> None:
    config = EmulatorConfig(port=0, allocation_seconds=0.05, data_dir=tmp_path, time_scale=TIME_SCALE)
    with ThreadedEmulator(config) as first:
        client: BatchClient = helpers.make_client(first)
        create(client, "kept", job_spec(), recurrence_interval=timedelta(minutes=1))
        helpers.wait_until(lambda: job_ids(client, "kept") == ["kept:job-1"], what="the first job")
        client.create_pool(helpers.pool_options("kept-pool", nodes=0))
        helpers.wait_until(lambda: client.get_pool("kept-pool").allocation_state == "steady", what="steady pool")
        options = batch_models.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 1;")
        client.enable_pool_auto_scale("kept-pool", options)
        helpers.wait_until(lambda: client.get_pool("kept-pool").auto_scale_run, what="an evaluation")

    with ThreadedEmulator(config) as second:
        client = helpers.make_client(second)
        schedule = client.get_job_schedule("kept")
        assert (schedule.state, schedule.execution_info.recent_job.id) == ("active", "kept:job-1")
        terminate_job(client, "kept:job-1")  # the restarted service goes on with the next job
        helpers.wait_until(lambda: "kept:job-2" in job_ids(client, "kept"), what="the next job after the restart")
        pool = client.get_pool("kept-pool")
        assert (pool.enable_auto_scale, pool.auto_scale_formula) == (True, "$TargetDedicatedNodes = 1;")
        assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=1;")
