"""Ctrl-C, SIGTERM and SIGKILL of `batchpipe run`, a service dying under it, and a second run on the same state:
each stops within seconds with one line, leaves no process behind, and the same command resumes."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchpipe.services import PROJECT_ROOT

pytestmark = [pytest.mark.integration]
SAMPLES = sorted((PROJECT_ROOT / "samples").glob("*.txt"))
FAST = {"BATCHPIPE_POLL_INTERVAL": "0.2", "BATCHPIPE_MAX_POLL_INTERVAL": "0.5"}
MONITORING = "Tasks: 3 active"
INTERRUPTED = re.compile(
    r"^interrupted: (SIG\w+) received; flow run '[\w-]+' ended (Crashed|Cancelled); "
    r"left in place: job (batchpipe-\w+), pool batchpipe-pool, containers application, input, output; "
    r"local services stopped; resume with: batchpipe run .*--state-dir"
)


def _args(cli: Any) -> list[str]:
    return ["run", "--state-dir", str(cli.workdir / "state"), "--output", str(cli.workdir / "out"), "--approve", "no"]


def _submitted(text: str) -> int:
    return sum(int(n) for n in re.findall(r"Submitted (\d+) tasks to job", text))


@pytest.mark.scenario(
    "Faults",
    "Ctrl-C (SIGINT to the run's process group, as a terminal sends it) while `batchpipe run` monitors; then the "
    "same command again",
    "exit 130 within seconds with one line: the flow run's final state, what was left in place and the command "
    "that resumes; no traceback; no process left; the rerun completes the same job, no task submitted twice",
)
def test_ctrl_c_stops_within_seconds_and_the_same_command_resumes(
    cli: Any,
    live: Callable[..., Any],
    nodes_slowed: Callable[[Path], None],
    check_outputs: Callable[..., int],
    observe: Callable[[str], None],
) -> None:
    run = live(*_args(cli), env=FAST)
    nodes_slowed(cli.workdir / "state")
    run.wait_marker(MONITORING)
    run.send(signal.SIGINT, group=True)
    result = run.finish(timeout=60)
    left = run.leftovers()

    last = result.error_line
    assert result.returncode == 130, result.stdout[-3000:]
    match = INTERRUPTED.match(last)
    assert match, last
    assert match.group(1) == "SIGINT"
    assert "Traceback" not in result.stdout
    assert "Error logging to API" not in result.stdout
    assert result.seconds < 15, f"{result.seconds:.1f}s after the signal"
    assert not left, f"processes outlived the run: {left}"
    services = run.services()
    assert services == ["Azurite", "Prefect API server", "local Batch service"], run.tree

    rerun = cli.run(*_args(cli), env=FAST)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    job_id = match.group(3)
    check_outputs(cli.workdir / "out" / job_id, SAMPLES, 3, job_id, "batchpipe-pool")
    assert _submitted(result.stdout) + _submitted(rerun.stdout + rerun.stderr) == 3
    observe(f"exit 130 {result.seconds:.1f}s after the signal: `{last}`")
    observe(f"no traceback; the run's {len(run.tree)} services ({', '.join(services)}) all ended with it")
    observe(f"rerun exit 0 in {rerun.seconds:.0f}s: job {job_id}, 3 outputs verified, each task submitted once")


@pytest.mark.scenario(
    "Faults",
    "a second `batchpipe run` on the same `--state-dir` while the first monitors; then SIGTERM to the first",
    "the second refuses at once with one line naming the first's PID (no second Azurite or Batch service, no "
    "task run twice); the first stops within seconds like on Ctrl-C (exit 143, one line, no process left)",
)
def test_a_second_run_on_the_same_state_refuses_and_sigterm_stops_the_first(
    cli: Any, live: Callable[..., Any], nodes_slowed: Callable[[Path], None], observe: Callable[[str], None]
) -> None:
    first = live(*_args(cli), env=FAST)
    nodes_slowed(cli.workdir / "state")
    first.wait_marker(MONITORING)

    second = cli.run(*_args(cli), env=FAST, timeout=60)
    assert second.returncode == 3, second.stderr[-2000:]
    assert re.fullmatch(
        rf"error: state directory '.*state' is in use by another batchpipe process \(pid {first.process.pid}\): .*",
        second.error_line,
    ), second.error_line
    assert "Traceback" not in second.stderr
    assert "Starting Azurite" not in second.stderr

    first.send(signal.SIGTERM)
    result = first.finish(timeout=60)
    left = first.leftovers()
    assert result.returncode == 143, result.stdout[-3000:]
    match = INTERRUPTED.match(result.error_line)
    assert match, result.error_line
    assert match.group(1) == "SIGTERM"
    assert "Traceback" not in result.stdout
    assert result.seconds < 15
    assert not left, f"processes outlived the run: {left}"
    observe(f"second run: exit 3 in {second.seconds:.1f}s (process start included): `{second.error_line}`")
    observe(f"SIGTERM: exit 143 {result.seconds:.1f}s after the signal: `{result.error_line}`; no process left")


@pytest.mark.scenario(
    "Faults",
    "`batchpipe run` killed with SIGKILL while it monitors (nothing can run in it any more)",
    "no process left behind: Azurite, the local Batch service and the temporary Prefect API server end with it",
)
def test_sigkill_of_the_cli_leaves_no_process(
    cli: Any, live: Callable[..., Any], nodes_slowed: Callable[[Path], None], observe: Callable[[str], None]
) -> None:
    run = live(*_args(cli), env=FAST)
    nodes_slowed(cli.workdir / "state")
    run.wait_marker(MONITORING)
    run.send(signal.SIGKILL)
    run.finish(timeout=30)
    tree = dict(run.tree)
    left = run.leftovers()
    services = run.services()
    assert services == ["Azurite", "Prefect API server", "local Batch service"]
    assert not left, f"processes outlived the SIGKILL: {left}"
    observe(
        f"{len(tree)} processes under the run ({', '.join(services)}): "
        "every one ended with it (PR_SET_PDEATHSIG), none left behind"
    )


@pytest.mark.scenario(
    "Faults",
    "the local Batch service killed (SIGKILL) while `batchpipe run` monitors",
    "the run fails within a poll interval plus the SDK's connection retries, with one line naming the service "
    "(not minutes of retries); no process left",
)
def test_a_dead_batch_service_fails_the_run_fast(
    cli: Any, live: Callable[..., Any], nodes_slowed: Callable[[Path], None], observe: Callable[[str], None]
) -> None:
    run = live(*_args(cli), env=FAST)
    nodes_slowed(cli.workdir / "state")
    run.wait_marker(MONITORING)
    pid = run.kill_service("batch_emulator")
    result = run.finish(timeout=120)
    left = run.leftovers()
    assert result.returncode == 3, result.stdout[-3000:]
    assert re.match(
        rf"error: local Batch service \(pid {pid}\) was killed by signal 9 while the run was using it",
        result.error_line,
    ), result.error_line
    assert "Traceback" not in result.stdout
    assert result.seconds < 30
    assert not left, f"processes outlived the run: {left}"
    observe(f"exit 3 {result.seconds:.1f}s after the kill (poll interval 0.2s): `{result.error_line}`")
