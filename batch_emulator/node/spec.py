"""Input and output records of one task run on an emulated node (no behaviour here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from batch_emulator.node.containers.spec import ContainerRunSpec
from batch_emulator.usage import NO_USAGE, Usage


@dataclass(frozen=True)
class TaskRunSpec:
    """Everything the node runner needs to execute one start task or job task."""

    kind: Literal["start", "job"]  # pool start task or a job task
    account_name: str
    pool_id: str
    node_id: str
    node_root: Path  # the node's root dir (contains shared/, startup/, workitems/)
    job_id: str | None  # None for start tasks
    task_id: str | None  # None for start tasks
    command_line: str
    resource_files: list[dict[str, Any]]  # wire JSON resourceFiles
    environment_settings: list[dict[str, str]]  # wire JSON [{"name","value"}]
    output_files: list[dict[str, Any]]  # wire JSON outputFiles
    max_wall_clock_seconds: float | None
    retry_count: int = 0
    batch_url: str = ""  # AZ_BATCH_ACCOUNT_URL
    storage_endpoint: str | None = None  # production blob hosts are reached here, path-style
    attempt: int = 0  # the scheduler's token of this run (names its container)
    container: ContainerRunSpec | None = None  # run in this container instead of as a process
    refusal: dict[str, Any] | None = None  # a failureInfo: the run fails with it before anything starts
    # Multi-instance commonResourceFiles: downloaded into the task directory (not wd/) before the command.
    common_resource_files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TaskRunResult:
    """Outcome of one task run, shaped after the Batch ``executionInfo``."""

    exit_code: int | None
    result: Literal["success", "failure"]
    start_time: datetime
    end_time: datetime
    task_dir: Path  # holds stdout.txt, stderr.txt, wd/
    failure_info: dict[str, Any] | None  # wire JSON failureInfo {category, code, message, details[]}
    usage: Usage = NO_USAGE  # CPU time of the command, and the bytes of its resource files and its own I/O
