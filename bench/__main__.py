"""``python -m bench``: run the benchmark suite and write the performance table.

    python -m bench                      # full mode (~22 min): writes docs/benchmarks.md (+ .benchmarks/results.json)
    python -m bench --quick              # every benchmark at small sizes, ~1 min; report in .benchmarks/quick.md
    python -m bench --only flow,demo     # some benchmarks; report in .benchmarks/ unless --output is given
    python -m bench --repeat 5           # repetitions per case (default: each benchmark's own)

docs/benchmarks.md is only rewritten by a complete full-mode run (or with an explicit ``--output``), so that the
committed table always comes from one run of the whole suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    _machine,
    bench_autoscale,
    bench_containers,
    bench_demo,
    bench_dependencies,
    bench_emulator,
    bench_flow,
    bench_monitoring,
    bench_node_app_suite,
    bench_submission,
)
from bench._context import PROJECT_ROOT, Context
from bench._results import BenchResult, summary_table

DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
LOCAL_RESULTS = PROJECT_ROOT / ".benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the suite."""

    name: str
    run: Callable[[Context], BenchResult]
    needs_prefect: bool = False


#: In the order they run (and appear): the Prefect-free ones first, so a quick run overlaps the server's start.
BENCHMARKS = [
    Benchmark("emulator", bench_emulator.run),
    Benchmark("dependencies", bench_dependencies.run),
    Benchmark("submission", bench_submission.run),
    Benchmark("monitoring", bench_monitoring.run),
    Benchmark("node_app", bench_node_app_suite.run),
    Benchmark("containers", bench_containers.run),
    Benchmark("autoscale", bench_autoscale.run),
    Benchmark("flow", bench_flow.run, needs_prefect=True),
    Benchmark("demo", bench_demo.run, needs_prefect=True),
]
#: The order of the sections in the report (the issue's numbering).
REPORT_ORDER = [
    "demo",
    "flow",
    "submission",
    "monitoring",
    "emulator",
    "node_app",
    "containers",
    "autoscale",
    "dependencies",
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run batchpipe's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (~1 minute)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these (repeatable or comma-separated): {', '.join(b.name for b in BENCHMARKS)}",
    )
    parser.add_argument("--repeat", type=int, help="measured repetitions per case (default: per benchmark)")
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS",
        help="measure nothing: re-render the report of a saved run (.benchmarks/results-full.json) to --output",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - {b.name for b in BENCHMARKS})
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(b.name for b in BENCHMARKS)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.names = names
    return args


def report(results: list[BenchResult], info: dict[str, Any], quick: bool) -> str:
    """The whole markdown document."""
    ordered = sorted(results, key=lambda r: REPORT_ORDER.index(r.name))
    mode = "quick mode (small sizes; not the recorded numbers)" if quick else "full mode"
    parts = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench`, {mode}). Every benchmark runs its baseline and its candidate"
        " interleaved in the same run, several repetitions each, and reports the median and the min\u2013max spread;"
        " ratios compare medians. `make bench BENCH_ARGS=--quick` runs the whole suite at small sizes in about a"
        " minute; `--only NAME` and `--repeat N` select and repeat. Child processes are timed by the harness's own"
        " interleaving loop with GNU time (`/usr/bin/time`) for CPU and peak RSS: hyperfine would run each command's"
        " repetitions back to back, which a shared machine's changing load turns into a bias. Nothing is contacted"
        " but 127.0.0.1; every process started is stopped by its PID.",
        "",
        "## Goals",
        "",
        summary_table(ordered),
        "",
        _machine.markdown(info),
    ]
    parts += ["", *(result.markdown() + "\n" for result in ordered)]
    if ANALYSIS.exists() and not quick:
        parts += [ANALYSIS.read_text("utf-8").strip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; write the report; return 1 if a benchmark failed to run (not for missed goals)."""
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text("utf-8"))
        restored = [BenchResult.from_record(record) for record in saved["results"]]
        text = report(restored, saved["info"], saved["info"].get("mode") == "quick")
        (args.output or DOC).write_text(text, "utf-8")
        print(f"report re-rendered from {args.from_json} to {args.output or DOC}", file=sys.stderr)
        return 0
    selected = [b for b in BENCHMARKS if not args.names or b.name in args.names]
    workdir = Path(tempfile.mkdtemp(prefix="batchpipe-bench-"))
    ctx = Context(quick=args.quick, repeat=args.repeat, workdir=workdir)
    info = _machine.describe()
    started = time.perf_counter()
    results: list[BenchResult] = []
    failures: list[str] = []
    try:
        if args.quick and any(b.needs_prefect for b in selected):
            ctx.start_prefect_server_in_background()
        for benchmark in selected:
            ctx.log(f"== {benchmark.name}")
            load_before = _machine.load_average().split()[0]
            try:
                result = benchmark.run(ctx)
            except Exception as error:  # noqa: BLE001 - one broken benchmark must not lose the others' results
                ctx.log(f"!! {benchmark.name} failed: {type(error).__name__}: {error}")
                failures.append(benchmark.name)
                continue
            result.params["load average (1 min) before/after"] = f"{load_before}/{_machine.load_average().split()[0]}"
            results.append(result)
            ctx.log(f"== {benchmark.name} done in {result.elapsed_s:.0f} s")
    finally:
        ctx.close()
        if args.keep:
            ctx.log(f"scratch kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info["total_s"] = time.perf_counter() - started
    info["load_after"] = _machine.load_average()
    info["mode"] = "quick" if args.quick else "full"
    text = report(results, info, args.quick)
    print(text)
    if not args.no_write:
        official = not args.quick and not args.names and args.repeat is None and not failures
        target = args.output or (DOC if official else LOCAL_RESULTS / ("quick.md" if args.quick else "partial.md"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
        LOCAL_RESULTS.mkdir(parents=True, exist_ok=True)
        record = {"info": info, "results": [r.record() for r in results], "failures": failures}
        kind = "quick" if args.quick else ("full" if official else "partial")
        (LOCAL_RESULTS / f"results-{kind}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        ctx.log(f"report written to {target}")
    ctx.log(f"suite took {info['total_s']:.0f} s" + (f"; FAILED: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
