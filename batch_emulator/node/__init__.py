"""Node runner: executes one start task or job task on an emulated compute node.

The scheduler calls :func:`batch_emulator.node.runner.run_task` with a :class:`TaskRunSpec`
and gets back a :class:`TaskRunResult`.
"""

from batch_emulator.node.redact import redact_url
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec

__all__ = ["TaskRunResult", "TaskRunSpec", "redact_url"]
