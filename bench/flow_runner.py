"""Run the Prefect flow once in this process against the services the environment points at; print one JSON line.

The flow-overhead benchmark runs this as a child process next to ``plain_sdk_pipeline.py``: same ``BATCHPIPE_*``
variables, same inputs. ``PREFECT_API_URL`` set means a running Prefect server; unset means Prefect's ephemeral
mode (a temporary server inside this process). Prefect's offline variables must be in the environment already.

    .venv/bin/python bench/flow_runner.py INPUT_DIR --output-dir OUT

Prints ``{"elapsed_s": ..., "import_s": ..., "tasks": ..., "outputs": ...}``; ``elapsed_s`` is the flow call alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``flow_runner.py INPUT_DIR --output-dir OUT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from flows.pipeline import top_words_pipeline

    imported = time.perf_counter()
    output_dir = str(args.output_dir.resolve())
    summary = top_words_pipeline(inputs=[str(args.input_dir)], output_dir=output_dir, approval="yes")
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "elapsed_s": round(finished - imported, 3),
                "import_s": round(imported - started, 3),
                "tasks": len(summary["outputs"]) + len(summary["failed_tasks"]),
                "failed": len(summary["failed_tasks"]),
                "outputs": len(summary["outputs"]),
            }
        )
    )
    return 0 if not summary["failed_tasks"] else 1


if __name__ == "__main__":
    sys.exit(main())
