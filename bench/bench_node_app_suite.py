"""Benchmark 6: the node application, run through ``bench/bench_node_app.py`` and turned into the suite's table.

``bench_node_app.py`` (its docstring has the details) generates English-like text, then runs interleaved
repetitions of the node application's zipapp (``--no-upload``), the tutorial's approach (read everything,
``str.split``, ``strip(string.punctuation)``, ``Counter``) and a coreutils pipeline (``tr | sort | uniq -c | sort
-rn | head``, ``LC_ALL=C``, its fastest setting; it splits words differently and is shown for speed only), under GNU
time for CPU and peak RSS. The main dataset is 1 GiB; "small" is 1/8 of it, at most 64 MiB. The tutorial's approach
needs ~20 bytes of RAM per byte of text, so at 1 GiB it is skipped when that would exceed half of the available
memory, and its ratio is taken at the small size. node_app's output is checked to be identical to the tutorial's.
The suite runs it with ``--lean`` (the cases its goals need); run ``bench/bench_node_app.py`` alone for every case
(text with U+00A0 spaces, coreutils in a UTF-8 locale, per-chunk-size timings).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench._context import PROJECT_ROOT, Context
from bench._results import BenchResult, Row, ratio_text

GOAL_VS_TUTORIAL = 2.0
GOAL_RSS_GROWTH = 1.10  # "flat": RSS at the main size at most 10% above RSS at the small size (1/16 of it)


def run(ctx: Context) -> BenchResult:
    """Run bench_node_app.py as a child process (1 GiB, 2 repetitions; quick: 8 MiB, 1) and tabulate its JSON."""
    started = time.perf_counter()
    size = 8 if ctx.quick else 1024
    reps = ctx.reps(1, 2)
    json_path = ctx.workdir / "node_app.json"
    argv = [sys.executable, "-m", "bench.bench_node_app", "--lean", "--size-mib", str(size), "--reps", str(reps)]
    argv += ["--json", str(json_path), "--workdir", str(ctx.scratch("node-app"))]
    completed = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if not json_path.exists():
        raise RuntimeError(f"bench_node_app.py failed ({completed.returncode}): {completed.stderr[-800:]}")
    data = json.loads(json_path.read_text("utf-8"))
    result = _result(data, reps)
    if completed.returncode != 0:
        result.notes.append(f"**bench_node_app.py reported a failure:** {completed.stderr[-400:]}")
    result.elapsed_s = time.perf_counter() - started
    return result


def _result(data: dict[str, Any], reps: int) -> BenchResult:
    cases = {(c["name"], c["dataset"]): c for c in data["cases"]}

    def walls(name: str, dataset: str) -> list[float]:
        case = cases.get((name, dataset))
        return [run["wall_s"] for run in case["runs"]] if case else []

    def median_wall(name: str, dataset: str) -> float | None:
        case = cases.get((name, dataset))
        return case["wall_s"]["median"] if case and case["runs"] else None

    def cpu_ratio(other: str, dataset: str) -> str:
        ours, theirs = cases.get(("node_app", dataset)), cases.get((other, dataset))
        if not (ours and theirs and ours["runs"] and theirs["runs"]):
            return ""
        return f" (CPU time: {theirs['cpu_s']['median'] / ours['cpu_s']['median']:.2f}\u00d7)"

    main, small = data["size_mib"], data["small_mib"]
    tutorial_dataset = "main" if median_wall("tutorial", "main") else "small"
    rows = []
    ours_main = median_wall("node_app", "main") or float("nan")
    coreutils_main = median_wall("coreutils C", "main")
    rows.append(
        Row(
            f"node_app vs coreutils, {main} MiB: wall",
            "s",
            walls("node_app", "main"),
            versus=(ratio_text(coreutils_main / ours_main, "faster than coreutils") + cpu_ratio("coreutils C", "main"))
            if coreutils_main
            else "",
            goal="≥ coreutils",
            met=bool(coreutils_main and coreutils_main / ours_main >= 1.0),
        )
    )
    if coreutils_main:
        rows.append(Row(f"coreutils (LC_ALL=C), {main} MiB: wall", "s", walls("coreutils C", "main")))
    size_of = {"main": main, "small": small}
    ours = median_wall("node_app", tutorial_dataset) or float("nan")
    tutorial = median_wall("tutorial", tutorial_dataset) or float("nan")
    rows.append(
        Row(
            f"node_app vs the tutorial's approach, {size_of[tutorial_dataset]} MiB: wall",
            "s",
            walls("node_app", tutorial_dataset),
            versus=ratio_text(tutorial / ours, "faster than the tutorial's approach")
            + cpu_ratio("tutorial", tutorial_dataset),
            goal=f"≥ {GOAL_VS_TUTORIAL:.0f}\u00d7 the tutorial's approach",
            met=tutorial / ours >= GOAL_VS_TUTORIAL,
        )
    )
    rows.append(
        Row(f"tutorial's approach, {size_of[tutorial_dataset]} MiB: wall", "s", walls("tutorial", tutorial_dataset))
    )
    nbsp_ours, nbsp_tutorial = median_wall("node_app", "small-nbsp"), median_wall("tutorial", "small-nbsp")
    if nbsp_ours and nbsp_tutorial:
        rows.append(
            Row(
                f"node_app, {small} MiB with U+00A0 spaces (exact pass): wall",
                "s",
                walls("node_app", "small-nbsp"),
                versus=ratio_text(nbsp_tutorial / nbsp_ours, "faster than the tutorial's approach"),
            )
        )
    rss = {
        dataset: [run["max_rss_kib"] / 1024 for run in cases[("node_app", dataset)]["runs"]]
        for dataset in ("small", "main")
    }
    growth = (sorted(rss["main"])[len(rss["main"]) // 2]) / (sorted(rss["small"])[len(rss["small"]) // 2])
    rows.append(Row(f"node_app peak RSS, {small} MiB", "MiB", rss["small"], digits=0))
    rows.append(
        Row(
            f"node_app peak RSS, {main} MiB",
            "MiB",
            rss["main"],
            versus=ratio_text(growth, f"the {small} MiB run"),
            goal=f"flat (≤ {GOAL_RSS_GROWTH:.2f}\u00d7 at {main / small:.0f}\u00d7 the input)",
            # Below 8 MiB the small run has not met the whole vocabulary yet (8 distinct 1 MiB blocks).
            met=growth <= GOAL_RSS_GROWTH if small >= 8 else None,
            digits=0,
        )
    )
    tutorial_rss = cases.get(("tutorial", tutorial_dataset))
    notes = []
    if tutorial_rss and tutorial_rss["runs"]:
        notes.append(
            f"The tutorial's approach peaks at {tutorial_rss['max_rss_mib']:.0f} MiB RSS on {size_of[tutorial_dataset]}"
            " MiB of text."
            + (f" At {main} MiB: {cases[('tutorial', 'main')]['skipped']}." if tutorial_dataset == "small" else "")
        )
    cpu = {f"{c['name']} at {c['size_mib']:.0f} MiB": c["cpu_s"]["median"] for c in data["cases"] if c["runs"]}
    notes.append(
        "CPU seconds (median; less sensitive to the shared machine's load than wall time): "
        + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
        + "."
    )
    verification = data.get("verification", {})
    notes.append(
        "Output check (node_app's top-N lines equal the tutorial's): "
        + ", ".join(f"{dataset}: {'identical' if same else 'DIFFERENT'}" for dataset, same in verification.items())
        + "."
    )
    return BenchResult(
        name="node_app",
        title="6. Node application: top-N words",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=notes,
        params={"main": f"{main} MiB", "small": f"{small} MiB", "reps": reps},
        raw=data,
    )
