"""The run's manifest: a JSON file next to the outputs listing each input, its task and its verified outputs.

It is ``manifest.json`` in the run's output directory (the tutorial flow writes ``<job id>.manifest.json`` beside
its job directory, which keeps only the outputs).

Schema (``"schema": "batchpipe-manifest/1"``; documented in docs/workloads.md):

.. code-block:: text

    {schema, run_id, job_ids[], pool_id, output_dir, written_at, complete,
     counts: {done, download, wait, submit, give-up},
     inputs: [{key, source, sha256, size, status, reason, history[],
               task: {id, job_id, attempt, state, result, exit_code, duration_seconds} | null,
               outputs: [{path, blob, url, size, sha256}]}]}

A rerun reads it back: an input whose outputs are listed here and still on disk with the same size and SHA-256 (and
whose own content has not changed) is done without touching any service.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchpipe.naming import InputFile, file_sha256
from batchpipe.reconcile import TaskSeen

SCHEMA = "batchpipe-manifest/1"
MANIFEST_NAME = "manifest.json"


def task_record(task: TaskSeen | None) -> dict[str, Any] | None:
    """The manifest's view of a task."""
    if task is None:
        return None
    return {
        "id": task.task_id,
        "job_id": task.job_id,
        "attempt": task.attempt,
        "state": task.state,
        "result": task.result,
        "exit_code": task.exit_code,
        "duration_seconds": task.duration_seconds,
    }


def input_record(
    item: InputFile,
    status: str,
    reason: str,
    history: list[str],
    task: TaskSeen | None,
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """One input's entry.

    Args:
        item: the input.
        status: ``verified`` (every output on disk and verified) or ``missing``.
        reason: why (what was reused or redone, or why it could not be produced).
        history: what this run did for it, in order (``downloaded``, ``submitted attempt 1: ...``).
        task: the latest task seen for it.
        outputs: ``{path, blob, url, size, sha256}`` per verified output; ``path`` relative to the output directory.
    """
    return {
        "key": item.blob_name,
        "source": item.source,
        "sha256": item.sha256,
        "size": item.size,
        "status": status,
        "reason": reason,
        "history": history,
        "task": task_record(task),
        "outputs": outputs,
    }


def build_manifest(
    run_id: str,
    job_ids: list[str],
    pool_id: str,
    output_dir: Path,
    counts: Mapping[str, int],
    inputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole manifest (see the module docstring for the schema)."""
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "job_ids": job_ids,
        "pool_id": pool_id,
        "output_dir": str(output_dir),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": all(i["status"] == "verified" for i in inputs),
        "counts": dict(counts),
        "inputs": inputs,
    }


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> Path:
    """Write the manifest atomically (a temporary file, then a rename): a crash leaves the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(path)
    return path


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest a previous run wrote, or None (missing, unreadable or another schema)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def verified_on_disk(previous: Mapping[str, Any] | None, item: InputFile, output_dir: Path) -> list[dict[str, Any]]:
    """The input's outputs from a previous manifest if they are all still on disk and unchanged, else ``[]``.

    The input's own content must be the one the outputs were made from, and each output file must have the recorded
    size and SHA-256.
    """
    if previous is None:
        return []
    entry = next((i for i in previous.get("inputs", []) if i.get("key") == item.blob_name), None)
    if not entry or entry.get("status") != "verified" or entry.get("sha256") != item.sha256:
        return []
    outputs: list[dict[str, Any]] = entry.get("outputs") or []
    for output in outputs:
        path = output_dir / str(output.get("path", ""))
        try:
            if path.stat().st_size != output.get("size") or file_sha256(path) != output.get("sha256"):
                return []
        except OSError:
            return []
    return outputs
