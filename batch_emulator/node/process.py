"""Run a task command line like the Batch node agent on Linux: no shell, own process group, files for output."""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from batch_emulator.node.failures import FAILURE_EXIT_CODE_MESSAGE, TASK_ENDED_BY_USER_MESSAGE, failure_info
from batch_emulator.node.layout import TaskPaths
from batch_emulator.node.spec import TaskRunSpec
from batch_emulator.node.task_processes import TASK_PROCESSES
from batch_emulator.node.watchdog import WATCHDOG
from batch_emulator.usage import NO_USAGE, Usage

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_devnull_fd: int | None = None

EndedBy = Literal["exit", "timeout", "cancel", "launch_error"]


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How the command ended."""

    exit_code: int | None
    ended_by: EndedBy
    failure_info: dict[str, Any] | None  # None when the command exited 0
    usage: Usage = NO_USAGE  # CPU time and block I/O of the process (and the children it waited for)


def _devnull() -> int:
    """One read-only /dev/null descriptor shared by all children (opened once)."""
    global _devnull_fd  # noqa: PLW0603 - process-wide cache, opened once
    if _devnull_fd is None:
        _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


def parse_command_line(command_line: str) -> list[str]:
    """Split a command line the way a POSIX shell would, without expanding anything.

    Args:
        command_line: The task's ``commandLine``.

    Returns:
        The argument vector.

    Raises:
        ValueError: Unbalanced quotes, or nothing to run.
    """
    argv = shlex.split(command_line, posix=True)
    if not argv:
        raise ValueError("the command line is empty")
    return argv


def _launch_failure(error: OSError | ValueError, command_line: str) -> ProcessOutcome:
    if isinstance(error, OSError) and error.errno in (errno.ENOENT, errno.ENOTDIR):
        code, message = "CommandProgramNotFound", "The specified command program is not found"
    else:
        code, message = "CommandLaunchFailed", "Failed to launch the specified command line"
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    program = getattr(error, "filename", None)
    detail = f"{program}: {reason}" if program else reason
    info = failure_info("usererror", code, f"{message}: {detail}", CommandLine=command_line, Message=detail)
    return ProcessOutcome(exit_code=None, ended_by="launch_error", failure_info=info)


def _exit_code(status: int) -> int:
    # A signal death is reported as a shell would (128 + signal), not as Python's negative number.
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run_command(
    command_line: str,
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout_path: Path,
    stderr_path: Path,
    max_wall_clock_seconds: float | None,
    cancel: threading.Event,
    prefix: Sequence[str] = (),
    node_root: Path | None = None,
) -> ProcessOutcome:
    """Run one command line to completion, a wall-clock expiry, or a cancel request.

    The command runs without a shell (``$VAR`` stays literal unless a shell is invoked), in a new
    session so the whole process group can be killed, with stdin from /dev/null and stdout/stderr
    written (truncated first) to the given files.

    Args:
        command_line: The task's ``commandLine``.
        env: The complete environment of the child.
        cwd: The working directory (must exist).
        stdout_path: Where standard output goes.
        stderr_path: Where standard error goes.
        max_wall_clock_seconds: Kill the group after this long; ``None`` for no limit.
        cancel: When set, the group is killed within about 20 ms.
        prefix: A program that runs the command line (e.g. ``podman run ... image``); empty to run it directly.
        node_root: The node it runs on: its processes are measured for autoscale while it runs.

    Returns:
        The exit code and, unless the command exited 0, a wire ``failureInfo``.
    """
    if cancel.is_set():
        return ProcessOutcome(None, "cancel", failure_info("usererror", "TaskEnded", TASK_ENDED_BY_USER_MESSAGE))
    try:
        argv = [*prefix, *parse_command_line(command_line)]
    except ValueError as error:
        return _launch_failure(error, command_line)
    out_fd = os.open(stdout_path, _OPEN_FLAGS, 0o660)
    try:
        err_fd = os.open(stderr_path, _OPEN_FLAGS, 0o660)
        try:
            started = time.monotonic()
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=_devnull(),
                stdout=out_fd,
                stderr=err_fd,
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            return _launch_failure(error, command_line)
        finally:
            os.close(err_fd)
    finally:
        os.close(out_fd)
    deadline = None if max_wall_clock_seconds is None else started + max_wall_clock_seconds
    watch = WATCHDOG.register(process.pid, deadline, cancel)
    if node_root is not None:
        TASK_PROCESSES.register(process.pid, node_root)
    try:
        # Wait without reaping: the zombie keeps its PID (and group id) reserved until unregistered.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass  # reaped elsewhere (SIGCHLD ignored by the host program); waitpid below reports it
    finally:
        TASK_PROCESSES.unregister(process.pid)
        WATCHDOG.unregister(process.pid)
    try:
        _, status, rusage = os.wait4(process.pid, 0)
    except ChildProcessError:
        process.returncode = -1
        message = "The task process was reaped by another part of the emulator; its exit code is unknown"
        return ProcessOutcome(None, "exit", failure_info("servererror", "Unknown", message))
    exit_code = _exit_code(status)
    process.returncode = exit_code
    usage = Usage.of_process(rusage)
    if watch.ended_by == "timeout":
        message = (
            f"The task ran longer than its maxWallClockTime constraint ({max_wall_clock_seconds:g} s) and was ended"
        )
        info = failure_info("usererror", "TaskEnded", message, Reason="MaxWallClockTimeExpiry")
        return ProcessOutcome(exit_code, "timeout", info, usage)
    if watch.ended_by == "cancel":
        ended = failure_info("usererror", "TaskEnded", TASK_ENDED_BY_USER_MESSAGE)
        return ProcessOutcome(exit_code, "cancel", ended, usage)
    if exit_code != 0:
        failed = failure_info("usererror", "FailureExitCode", FAILURE_EXIT_CODE_MESSAGE)
        return ProcessOutcome(exit_code, "exit", failed, usage)
    return ProcessOutcome(exit_code, "exit", None, usage)


def launch_process(
    spec: TaskRunSpec,
    paths: TaskPaths,
    env: Mapping[str, str],
    cancel: threading.Event,
    prefix: Sequence[str] = (),
) -> ProcessOutcome:
    """Run a task's command line as a process on this machine (the launcher of plain tasks).

    Args:
        spec: The task run.
        paths: Its directories: the command starts in ``wd/`` and writes ``stdout.txt``/``stderr.txt``.
        env: The process's complete environment.
        cancel: Set to end it.
        prefix: A program that runs the command line, e.g. a container runtime's ``run ... image``.

    Returns:
        How it ended.
    """
    return run_command(
        spec.command_line,
        prefix=prefix,
        env=env,
        cwd=paths.working_dir,
        stdout_path=paths.stdout,
        stderr_path=paths.stderr,
        max_wall_clock_seconds=spec.max_wall_clock_seconds,
        cancel=cancel,
        node_root=spec.node_root,
    )
