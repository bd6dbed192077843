"""The output file: its name and its content, exactly as the tutorial's task script writes them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from node_app.errors import EnvironmentMissingError

#: The Batch variables printed at the end of the output, in the tutorial's order.
BATCH_VARIABLES = ("AZ_BATCH_NODE_ID", "AZ_BATCH_TASK_ID", "AZ_BATCH_JOB_ID", "AZ_BATCH_POOL_ID")

_RULE = "-" * 30


class BatchIdentity(NamedTuple):
    """Where the task ran, as Azure Batch tells it through ``AZ_BATCH_*`` variables."""

    node: str
    task: str
    job: str
    pool: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BatchIdentity:
        """Read the four ids from an environment.

        Args:
            environ: usually ``os.environ``.

        Returns:
            the ids.

        Raises:
            EnvironmentMissingError: one or more of the variables is missing or empty (all are named).
        """
        missing = [name for name in BATCH_VARIABLES if not environ.get(name)]
        if missing:
            raise EnvironmentMissingError(
                "environment variable(s) " + ", ".join(missing) + " missing or empty; "
                "Azure Batch sets them for every task (set them by hand when running outside Batch)"
            )
        return cls(*(environ[name] for name in BATCH_VARIABLES))


def output_file_name(filepath: str) -> str:
    """Name the output file after the input: ``<stem>_OUTPUT<ext>`` (``taskdata1.txt`` -> ``taskdata1_OUTPUT.txt``).

    The tutorial passes a bare file name; of a longer path only the last component is used, so the output lands
    in the task's working directory and the blob name has no directory part.

    Args:
        filepath: the ``--filepath`` argument.

    Returns:
        the output file's name, also used as the blob name.
    """
    stem, extension = os.path.splitext(os.path.basename(filepath))
    return f"{stem}_OUTPUT{extension}"


def format_report(top: Sequence[tuple[str, int]], identity: BatchIdentity) -> str:
    """Render the output file's text, byte for byte the tutorial's (``\\n`` line endings, final newline).

    Args:
        top: ``(word, count)`` pairs, most common first.
        identity: the task's Batch ids.

    Returns:
        the file content.
    """
    lines = ["Word\tCount", _RULE]
    lines.extend(f"{word}:\t{count}" for word, count in top)
    lines.append(_RULE)
    lines.append(f"Node: {identity.node}")
    lines.append(f"Task: {identity.task}")
    lines.append(f"Job:  {identity.job}")
    lines.append(f"Pool: {identity.pool}")
    return "\n".join(lines) + "\n"
