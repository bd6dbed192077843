"""The node runner executes commands like the Batch node agent on Linux (real processes, no shell)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from batch_emulator.node.runner import run_task
from batch_emulator.node.spec import TaskRunResult
from tests.polling import wait_until
from tests.test_emulator.node_runs import job_task, run


def stdout_of(result: TaskRunResult) -> str:
    return (result.task_dir / "stdout.txt").read_text(encoding="utf-8")


def child_env(result: TaskRunResult) -> dict[str, str]:
    lines = stdout_of(result).split("\0")
    return dict(line.split("=", 1) for line in lines if line)


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie no longer runs


def test_job_task_gets_batch_layout_and_environment(tmp_path: Path) -> None:
    spec = job_task(
        tmp_path,
        "/usr/bin/env -0",
        environment_settings=[{"name": "MY_SETTING", "value": "hello world"}],
    )
    result = run(spec)

    task_dir = tmp_path / "workitems" / "job-1" / "job-1" / "task-1"
    assert result.result == "success"
    assert result.exit_code == 0
    assert result.failure_info is None
    assert result.task_dir == task_dir
    assert (task_dir / "wd").is_dir()
    for name in ("shared", "startup", "workitems"):
        assert (tmp_path / name).is_dir()
    env = child_env(result)
    assert env["MY_SETTING"] == "hello world"
    assert env["AZ_BATCH_ACCOUNT_NAME"] == "emuaccount"
    assert env["AZ_BATCH_ACCOUNT_URL"] == "http://127.0.0.1:8001"
    assert env["AZ_BATCH_POOL_ID"] == "pool-1"
    assert env["AZ_BATCH_NODE_ID"] == "tvmps_node-1"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert env["AZ_BATCH_JOB_ID"] == "job-1"
    assert env["AZ_BATCH_TASK_ID"] == "task-1"
    assert env["AZ_BATCH_NODE_ROOT_DIR"] == str(tmp_path)
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == str(tmp_path / "shared")
    assert env["AZ_BATCH_NODE_STARTUP_DIR"] == str(tmp_path / "startup")
    assert env["AZ_BATCH_TASK_DIR"] == str(task_dir)
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(task_dir / "wd")
    assert env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert result.start_time <= result.end_time
    assert result.start_time.tzinfo is not None


def test_start_task_runs_in_startup_dir_without_job_variables(tmp_path: Path) -> None:
    spec = job_task(tmp_path, "/usr/bin/env -0", kind="start", job_id=None, task_id=None)
    result = run(spec)

    assert result.result == "success"
    assert result.task_dir == tmp_path / "startup"
    env = child_env(result)
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(tmp_path / "startup" / "wd")
    assert env["AZ_BATCH_NODE_STARTUP_WORKING_DIR"] == str(tmp_path / "startup" / "wd")
    assert "AZ_BATCH_JOB_ID" not in env
    assert "AZ_BATCH_TASK_ID" not in env


def test_emulator_environment_does_not_leak_into_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMULATOR_PRIVATE_VALUE", "do-not-leak")
    result = run(job_task(tmp_path, "/usr/bin/env -0"))

    assert "EMULATOR_PRIVATE_VALUE" not in child_env(result)


def test_dollar_variable_is_literal_without_a_shell(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, "/bin/echo $AZ_BATCH_TASK_ID ${AZ_BATCH_JOB_ID}"))

    assert stdout_of(result) == "$AZ_BATCH_TASK_ID ${AZ_BATCH_JOB_ID}\n"


def test_bash_c_expands_variables_and_runs_in_working_dir(tmp_path: Path) -> None:
    command = '/bin/bash -c "echo $AZ_BATCH_TASK_ID $MY_SETTING; pwd; echo oops >&2"'
    spec = job_task(tmp_path, command, environment_settings=[{"name": "MY_SETTING", "value": "x y"}])
    result = run(spec)

    task_dir = tmp_path / "workitems" / "job-1" / "job-1" / "task-1"
    assert stdout_of(result) == f"task-1 x y\n{task_dir / 'wd'}\n"
    assert (task_dir / "stderr.txt").read_text() == "oops\n"


def test_locale_is_utf8(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, "/bin/bash -c 'locale charmap; printf \"h\\xc3\\xa9llo\\n\"'"))

    assert stdout_of(result) == "UTF-8\nhéllo\n"


def test_nonzero_exit_is_a_failure_exit_code(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, "/bin/bash -c 'echo partial; exit 3'"))

    assert result.exit_code == 3
    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "FailureExitCode"
    assert stdout_of(result) == "partial\n"


def test_retry_truncates_previous_output(tmp_path: Path) -> None:
    run(job_task(tmp_path, "/bin/echo first attempt with a long line"))
    result = run(job_task(tmp_path, "/bin/echo second", retry_count=1))

    assert stdout_of(result) == "second\n"


def test_missing_program_cannot_start(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, "no-such-program-xyz --flag"))

    assert result.exit_code is None
    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "CommandProgramNotFound"
    assert "no-such-program-xyz" in result.failure_info["message"]
    assert "No such file or directory" in result.failure_info["message"]


def test_program_is_found_on_path_from_environment_settings(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    script = tools / "hello-tool"
    script.write_text("#!/bin/sh\necho tool ran\n")
    script.chmod(0o755)
    spec = job_task(tmp_path, "hello-tool", environment_settings=[{"name": "PATH", "value": f"{tools}:/usr/bin:/bin"}])

    assert stdout_of(run(spec)) == "tool ran\n"


def test_unbalanced_quotes_fail_to_launch(tmp_path: Path) -> None:
    result = run(job_task(tmp_path, "/bin/echo 'unterminated"))

    assert result.exit_code is None
    assert result.failure_info is not None
    assert result.failure_info["code"] == "CommandLaunchFailed"


def test_max_wall_clock_time_kills_the_process_group(tmp_path: Path) -> None:
    command = "/bin/bash -c 'sleep 30 & echo $! > background.pid; wait'"
    result = run(job_task(tmp_path, command, max_wall_clock_seconds=0.5))

    assert result.result == "failure"
    assert result.exit_code == 137  # SIGKILL, reported as a shell would
    assert result.failure_info is not None
    assert result.failure_info["code"] == "TaskEnded"
    assert {"name": "Reason", "value": "MaxWallClockTimeExpiry"} in result.failure_info["details"]
    background = int((result.task_dir / "wd" / "background.pid").read_text())
    wait_until(lambda: process_gone(background), what="the background child to be killed", timeout=10.0)


def test_cancel_kills_a_running_task(tmp_path: Path) -> None:
    cancel = threading.Event()
    results: list[TaskRunResult] = []
    spec = job_task(tmp_path, "/bin/bash -c 'echo started > started.txt; exec sleep 30'")
    worker = threading.Thread(target=lambda: results.append(run_task(spec, cancel)))
    worker.start()
    started = tmp_path / "workitems" / "job-1" / "job-1" / "task-1" / "wd" / "started.txt"
    wait_until(started.exists, what="the task to start", timeout=10.0)

    cancel.set()
    worker.join(timeout=10)

    assert not worker.is_alive()
    [result] = results
    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["code"] == "TaskEnded"
    assert result.failure_info["message"] == "Task Was Ended by User Request"


def test_cancel_before_start_does_not_run_the_command(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run_task(job_task(tmp_path, "/bin/bash -c 'touch ran.txt'"), cancel)

    assert result.failure_info is not None
    assert result.failure_info["code"] == "TaskEnded"
    assert not (result.task_dir / "wd" / "ran.txt").exists()


def test_concurrent_tasks_keep_their_own_outputs(tmp_path: Path) -> None:
    specs = [job_task(tmp_path / f"node-{i % 2}", f"/bin/echo task {i}", task_id=f"t{i}") for i in range(40)]
    results: dict[int, TaskRunResult] = {}

    def work(index: int) -> None:
        results[index] = run(specs[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == list(range(40))
    for index, result in results.items():
        assert stdout_of(result) == f"task {index}\n"


@pytest.mark.parametrize("bad_id", ["..", "a/b", ""])
def test_ids_that_are_not_one_path_segment_are_refused(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(ValueError, match="cannot be used as a directory name"):
        run(job_task(tmp_path, "/bin/true", task_id=bad_id))
    assert list(tmp_path.iterdir()) == []
