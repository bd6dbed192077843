"""The machine, the versions and the load the numbers were measured with."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._context import PROJECT_ROOT

MEASURED_PATHS = ["batch_emulator", "batchpipe", "flows", "tasks", "node_app", "bench"]
PACKAGES = ["prefect", "azure-batch", "azure-storage-blob", "azure-core", "uvicorn", "starlette", "httpx", "pydantic"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gib() -> float:
    """MemTotal in GiB (0 where /proc/meminfo does not exist)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def git_commit() -> str:
    """The checked-out commit (short), with ``+ uncommitted changes`` when the measured code has local edits."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", *MEASURED_PATHS],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = [line for line in status if not line.endswith(".md")]  # prose (bench/analysis.md) is not measured
    return f"{commit} + uncommitted changes" if dirty else commit


def azurite_version() -> str:
    """The pinned Azurite's version from node_modules."""
    try:
        data = json.loads((PROJECT_ROOT / "node_modules" / "azurite" / "package.json").read_text())
        return str(data.get("version", "unknown"))
    except (OSError, ValueError):
        return "not installed"


def describe() -> dict[str, Any]:
    """Everything the report header shows about where and with what it was measured."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["Azurite"] = azurite_version()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory_total_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "load_before": load_average(),
    }


def markdown(info: dict[str, Any]) -> str:
    """The report's "Machine and versions" section."""
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    return "\n".join(
        [
            "## Machine and versions",
            "",
            f"- Date: {info['date']}; commit `{info['commit']}`; suite took {info.get('total_s', 0) / 60:.1f} min"
            f" ({info.get('mode', 'full')} mode).",
            f"- Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB RAM, Linux {info['kernel']}.",
            f"- Load average (1/5/15 min) before the suite: {info['load_before']};"
            f" after: {info.get('load_after', '?')}."
            " The machine is shared with other work; every benchmark interleaves its cases so that both sides see"
            " the same load.",
            f"- Python {info['python']}; {versions}.",
        ]
    )
