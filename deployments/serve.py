"""Serve the pipeline from this process for local development: the same as ``batchpipe serve``.

Needs a Prefect server and, for the local target, the local services (``batchpipe stack`` starts both and writes
``.batchpipe/stack.env``)::

    . .batchpipe/stack.env
    .venv/bin/python deployments/serve.py --cron '0 6 * * *'      # deployment 'batchpipe/local'
    .venv/bin/prefect deployment run 'batchpipe/local' -p approval=wait

Runs execute in child processes of this one, with its environment; Ctrl-C stops serving and pauses the schedule.
"""

from __future__ import annotations

import sys

from batchpipe.cli import app


def main(argv: list[str]) -> None:
    """Run ``batchpipe serve`` with ``argv`` (``--name``, ``--cron``, ``--input``, ``--approve`` ...)."""
    app(["serve", *argv], prog_name="deployments/serve.py")


if __name__ == "__main__":
    main(sys.argv[1:])
