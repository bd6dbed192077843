"""SQLite persistence: what is saved comes back, running tasks come back requeued, deletions stick."""

from __future__ import annotations

from pathlib import Path

from batch_emulator.errors import NotFound
from batch_emulator.models import jobs, pools, schedules, tasks
from batch_emulator.models.account import Account
from batch_emulator.store import Store
from batch_emulator.timefmt import now_ts

IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
}


def saved_account(root: Path, store: Store) -> Account:
    account = Account("acct", root)
    now = now_ts()
    body = {"id": "Pool-A", "vmSize": "STANDARD_D2S_V3", "virtualMachineConfiguration": IMAGE, "taskSlotsPerNode": 3}
    pools.create_pool(account, body, now)
    job = jobs.create_job(account, {"id": "Job-A", "poolInfo": {"poolId": "Pool-A"}, "priority": 5}, now)
    bodies = [
        {"id": f"T{i}", "commandLine": f"/bin/echo {i}", "constraints": {"maxTaskRetryCount": 2}} for i in range(3)
    ]
    tasks.add_task_collection(account, job, bodies, now)
    task = job.tasks["t1"]
    tasks.set_state(task, "running", now)
    task.node_id, task.pool_id, task.start_time = "tvmps_x_d", "Pool-A", now
    done = job.tasks["t2"]
    done.result, done.exit_code = "success", 0
    tasks.set_state(done, "completed", now)
    assert store.flush(account) > 0
    return account


def test_round_trip_requeues_running_tasks(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    saved_account(tmp_path, store)
    loaded = Account("acct", tmp_path)
    store.load(loaded, now_ts())
    pool = loaded.pools["pool-a"]
    assert (pool.id, pool.spec["vmSize"], pool.slots_per_node) == ("Pool-A", "standard_d2s_v3", 3)
    job = loaded.jobs["job-a"]
    assert (job.id, job.priority, job.pool_id) == ("Job-A", 5, "Pool-A")
    assert [task.id for task in job.tasks.values()] == ["T0", "T1", "T2"]
    requeued = job.tasks["t1"]
    assert (requeued.state, requeued.requeue_count, requeued.max_retries) == ("active", 1, 2)
    assert requeued.prev_state == "running"
    assert (job.tasks["t2"].state, job.tasks["t2"].exit_code) == ("completed", 0)
    assert job.task_counts == {"active": 2, "running": 0, "completed": 1, "succeeded": 1, "failed": 0}
    assert [task.id for task in job.queue] == ["T0", "T1"]
    store.close()


def test_deletions_are_saved(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    account = saved_account(tmp_path, store)
    job = account.jobs["job-a"]
    tasks.delete_task(account, job, "T0", now_ts())
    account.changes.removals.append(("job", "job-a"))  # what the scheduler records when it removes a job
    job.removed = True
    del account.jobs["job-a"]
    store.flush(account)
    loaded = Account("acct", tmp_path)
    store.load(loaded, now_ts())
    assert loaded.jobs == {}
    assert list(loaded.pools) == ["pool-a"]
    store.close()


def test_a_re_created_id_after_a_removal_is_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    account = saved_account(tmp_path, store)
    old = account.jobs.pop("job-a")
    old.removed = True
    account.changes.removals.append(("job", "job-a"))
    jobs.create_job(account, {"id": "job-A", "poolInfo": {"poolId": "Pool-A"}}, now_ts())
    store.flush(account)
    loaded = Account("acct", tmp_path)
    store.load(loaded, now_ts())
    assert loaded.jobs["job-a"].id == "job-A"
    assert loaded.jobs["job-a"].tasks == {}
    store.close()


def test_a_schedules_auto_pool_and_a_scheduling_error_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    account, now = Account("acct", tmp_path), now_ts()
    pool = {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}
    auto = {"autoPoolSpecification": {"poolLifetimeOption": "jobschedule", "pool": pool}}
    body = {"id": "nightly", "schedule": {}, "jobSpecification": {"poolInfo": auto}}
    schedule = schedules.create_schedule(account, body, now)
    made = schedules.make_job(account, schedule, now)
    broken = {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": {**pool, "vmSize": "no_such_size"}}}
    failed = jobs.add_job(
        account, "nightly:job-x", jobs.validate_job_spec({"poolInfo": broken}), now, pool_error=NotFound("gone")
    )
    store.flush(account)
    loaded = Account("acct", tmp_path)
    store.load(loaded, now_ts())
    assert loaded.schedules["nightly"].auto_pool_id == schedule.auto_pool_id == made.pool_id
    assert loaded.pools[made.pool_id.lower()].id == made.pool_id
    assert loaded.jobs[failed.key].scheduling_error == {
        "category": "usererror",
        "code": "ResourceNotFound",
        "message": "gone",
    }
    assert loaded.jobs[failed.key].state == "completed"
    store.close()
