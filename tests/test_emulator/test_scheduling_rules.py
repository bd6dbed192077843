"""Pure rules of multi-instance placement, auto pool specs and job manager/preparation/release bodies."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from batch_emulator.errors import BatchError
from batch_emulator.models import autopools, job_tasks, jobs, multi_instance
from batch_emulator.models.account import Account
from batch_emulator.timefmt import now_ts

IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
}


def node(seq: int, free: int, state: str = "idle", ip: str = "") -> Any:
    accepts = state in ("idle", "running")
    return SimpleNamespace(seq=seq, free_slots=free, accepts_tasks=lambda: accepts, ip_address=ip or f"10.0.0.{seq}")


def test_choose_nodes_takes_distinct_nodes_with_room_or_none() -> None:
    nodes = [node(1, 1), node(2, 0), node(3, 2), node(4, 1, state="starttaskfailed")]
    assert [n.seq for n in multi_instance.choose_nodes(nodes, 1, 2, "spread")] == [3, 1]  # type: ignore[union-attr]
    assert [n.seq for n in multi_instance.choose_nodes(nodes, 1, 2, "pack")] == [1, 3]  # type: ignore[union-attr]
    assert multi_instance.choose_nodes(nodes, 1, 3, "spread") is None


def test_multi_instance_environment_names_the_master_and_the_hosts() -> None:
    nodes = [node(1, 1, ip="10.0.0.4"), node(2, 1, ip="10.0.0.5")]
    env = {item["name"]: item["value"] for item in multi_instance.environment(nodes, 1, "/shared")}  # type: ignore[arg-type]
    assert env == {
        "AZ_BATCH_HOST_LIST": "10.0.0.4,10.0.0.5",
        "AZ_BATCH_NODE_LIST": "10.0.0.4;10.0.0.5",
        "AZ_BATCH_MASTER_NODE": "10.0.0.4:6000",
        "AZ_BATCH_IS_CURRENT_NODE_MASTER": "false",
        "AZ_BATCH_TASK_SHARED_DIR": "/shared",
    }


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        ({"numberOfInstances": 0, "coordinationCommandLine": "x"}, "InvalidPropertyValue"),
        ({"numberOfInstances": 2}, "MissingRequiredProperty"),
    ],
)
def test_invalid_multi_instance_settings_are_refused(settings: dict[str, Any], code: str) -> None:
    with pytest.raises(BatchError) as caught:
        multi_instance.validate(settings, 1)
    assert caught.value.code == code


def test_a_multi_instance_task_needs_one_slot() -> None:
    with pytest.raises(BatchError) as caught:
        multi_instance.validate({"numberOfInstances": 2, "coordinationCommandLine": "x"}, 2)
    assert caught.value.code == "InvalidPropertyValue"


def test_auto_pool_spec_defaults_and_ids() -> None:
    spec = autopools.validate(
        {"poolLifetimeOption": "Job", "pool": {"vmSize": "x"}, "autoPoolIdPrefix": "r"}, owner="job"
    )
    assert (spec["poolLifetimeOption"], spec["keepAlive"]) == ("job", False)
    assert re.fullmatch(r"r_[0-9A-F-]{36}", autopools.new_pool_id(spec))
    assert autopools.validate({"poolLifetimeOption": "jobschedule", "pool": {}}, owner="jobschedule")


@pytest.mark.parametrize(
    "spec",
    [
        {"pool": {}},
        {"poolLifetimeOption": "jobschedule", "pool": {}},
        {"poolLifetimeOption": "job"},
        {"poolLifetimeOption": "job", "pool": {}, "autoPoolIdPrefix": "x" * 21},
    ],
)
def test_invalid_auto_pool_specs(spec: dict[str, Any]) -> None:
    with pytest.raises(BatchError):
        autopools.validate(spec, owner="job")


def test_job_task_bodies_get_the_service_defaults() -> None:
    preparation = job_tasks.validate_preparation({"commandLine": "a"})
    assert (preparation["id"], preparation["waitForSuccess"], preparation["rerunOnNodeRebootAfterSuccess"]) == (
        "jobpreparation",
        True,
        True,
    )
    release = job_tasks.validate_release({"commandLine": "b"}, preparation)
    assert (release["id"], release["maxWallClockTime"]) == ("jobrelease", "PT15M")
    manager = job_tasks.validate_manager({"id": "m", "commandLine": "c"})
    assert (manager["killJobOnCompletion"], manager["runExclusive"], manager["allowLowPriorityNode"]) == (True,) * 3
    defaults = {  # as the service shows a job manager (the Azure CLI's recording)
        "constraints": {
            "maxWallClockTime": "P10675199DT2H48M5.4775807S",
            "retentionTime": "P7D",
            "maxTaskRetryCount": 0,
        },
        "requiredSlots": 1,
        "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
    }
    assert job_tasks.manager_task_body(manager) == ("m", {"commandLine": "c", **defaults})
    retried = job_tasks.validate_manager({"id": "m", "commandLine": "c"}, job_retries=5)
    assert retried["constraints"]["maxTaskRetryCount"] == 5  # the job's retries are the manager's default
    with pytest.raises(BatchError):
        job_tasks.validate_release({"commandLine": "b"}, None)
    with pytest.raises(BatchError):
        job_tasks.validate_manager({"commandLine": "c"})


def test_a_schedule_job_runs_on_the_schedule_auto_pool(tmp_path: Any) -> None:
    account, now = Account("acct", tmp_path), now_ts()
    spec = {
        "poolLifetimeOption": "jobschedule",
        "pool": {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE},
    }
    pool = autopools.create_auto_pool(account, autopools.validate(spec, owner="jobschedule"), now)
    job_spec = jobs.validate_job_spec({"poolInfo": {"autoPoolSpecification": spec}}, owner="jobschedule")
    job = jobs.add_job(account, "sched:job-1", job_spec, now, schedule_pool_id=pool.id)
    assert job.pool_id == pool.id
    assert list(account.pools) == [pool.key]  # no pool of its own
    jobs.job_ended(job, now)
    assert account.pools[pool.key].state == "active"  # the schedule deletes it, not the job
    autopools.release_auto_pool(account, spec, pool.id, now)
    assert account.pools[pool.key].state == "deleting"


def test_a_job_manager_with_the_preparation_task_id_is_refused(tmp_path: Any) -> None:
    account = Account("acct", tmp_path)
    body = {
        "id": "j",
        "poolInfo": {"poolId": "p"},
        "jobManagerTask": {"id": "jobpreparation", "commandLine": "a"},
        "jobPreparationTask": {"commandLine": "b"},
    }
    with pytest.raises(BatchError, match="InvalidPropertyValue"):
        jobs.create_job(account, body, now_ts())
    assert account.jobs == {}
