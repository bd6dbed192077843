"""Benchmark 8: autoscale formula evaluation, the documented formulas against a trivial one.

The interpreter (``batch_emulator.autoscale``) evaluates each example formula of Microsoft's autoscale documentation
(``batch_emulator/autoscale/examples.py``) and the baseline ``$TargetDedicatedNodes = 1;`` against one environment:
a pool with one hour of samples (120 per metric, every 30 s). A measurement is a loop of N evaluations of one
formula, compiled once and cached as the service does; the rate is N / the loop's wall time. The cases are
interleaved, a different one first each round. Parse + compile is timed separately, with the caches cleared, as a
pool's first evaluation pays it. Through the service: a child ``python -m batch_emulator`` answers N
``evaluate_pool_auto_scale`` calls of the unmodified SDK on one pool, the trivial and the task-based formula
interleaved; the rate includes HTTP, SharedKey signing and checking, and the sample the service takes at each call.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.batch import models as batchmodels

from batch_emulator.autoscale.evaluator import Environment, compile_formula, evaluate
from batch_emulator.autoscale.examples import EXAMPLES, TASK_BASED
from batch_emulator.autoscale.parser import parse
from batch_emulator.autoscale.samples import METRIC_NAMES, SampleHistory
from bench import _batch
from bench._common import interleaved
from bench._context import Context
from bench._results import BenchResult, Row, ratio_text

TRIVIAL = "$TargetDedicatedNodes = 1;"
HISTORY_SAMPLES = 120


def environment() -> Environment:
    """A pool with one hour of samples of every metric, busy enough that every branch is taken."""
    now = datetime.now(UTC)
    history = SampleHistory(METRIC_NAMES)
    for index in range(HISTORY_SAMPLES):
        values = {name: float((index * 7 + position) % 23) for position, name in enumerate(METRIC_NAMES)}
        history.record(now.timestamp() - (HISTORY_SAMPLES - index) * 30 + 1, values)
    current = {name: 4.0 for name in METRIC_NAMES}
    return Environment(target_dedicated=4, metrics=current, history=history, now=now)


def evaluation_rate(formula: str, env: Environment, count: int) -> float:
    """Evaluations per second of ``count`` evaluations in a loop."""
    evaluate(formula, env)  # compiled and cached before the clock starts
    started = time.perf_counter()
    for _ in range(count):
        evaluate(formula, env)
    return count / (time.perf_counter() - started)


def compile_microseconds(formula: str, count: int) -> float:
    """Median microseconds to parse and compile a formula with the caches cleared."""
    times = []
    for _ in range(count):
        parse.cache_clear()
        compile_formula.cache_clear()
        started = time.perf_counter()
        compile_formula(formula)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def service_rates(count: int, reps: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    """``evaluate_pool_auto_scale`` calls per second through a child service, trivial and task-based formula."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-autoscale-"))
    try:
        with _batch.emulator(data_dir) as service:
            batch = _batch.client(service.url)
            _batch.create_pool(batch, "pool", 0, 1)
            batch.enable_pool_auto_scale(
                "pool", batchmodels.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 0;")
            )

            def calls(formula: str) -> Callable[[], float]:
                options = batchmodels.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)

                def run() -> float:
                    started = time.perf_counter()
                    for _ in range(count):
                        result = batch.evaluate_pool_auto_scale("pool", options)
                        if result.error is not None:
                            raise RuntimeError(f"evaluation failed: {result.error.code}")
                    return count / (time.perf_counter() - started)

                return run

            cases = {"trivial": calls(TRIVIAL), "task-based": calls(TASK_BASED)}
            results = interleaved(cases, reps, warmup=1, progress=log)
            batch.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


def run(ctx: Context) -> BenchResult:
    """Run the benchmark (2,000 evaluations per measurement and 200 service calls; 300 and 50 in quick mode)."""
    started = time.perf_counter()
    count = 300 if ctx.quick else 2000
    calls = 50 if ctx.quick else 200
    reps = ctx.reps(3, 7)
    env = environment()
    formulas = {"trivial (baseline)": TRIVIAL, **EXAMPLES}
    cases = {name: (lambda text=text: evaluation_rate(text, env, count)) for name, text in formulas.items()}
    results = interleaved(cases, reps, warmup=1, progress=ctx.log)
    trivial = statistics.median(results["trivial (baseline)"])
    rows: list[Row] = []
    for name, rates in results.items():
        versus = "" if name == "trivial (baseline)" else ratio_text(statistics.median(rates) / trivial, "trivial")
        rows.append(Row(f"{name}: evaluations per second", "eval/s", rates, versus=versus, digits=0))
    compiled = {name: compile_microseconds(text, 50) for name, text in formulas.items()}
    for name, micros in compiled.items():
        rows.append(Row(f"{name}: parse + compile (first evaluation)", "µs", [micros], digits=0))
    through_service = service_rates(calls, reps, ctx.log)
    service_trivial = statistics.median(through_service["trivial"])
    for name, rates in through_service.items():
        versus = "" if name == "trivial" else ratio_text(statistics.median(rates) / service_trivial, "trivial")
        rows.append(Row(f"evaluateautoscale through the service, {name}", "calls/s", rates, versus=versus, digits=0))
    lengths = ", ".join(f"{name} {len(text)} characters" for name, text in EXAMPLES.items())
    raw: dict[str, Any] = {"in_process": results, "compile_us": compiled, "service": through_service}
    return BenchResult(
        name="autoscale",
        title="8. Autoscale formula evaluation",
        method=__doc__.split("\n\n", 1)[1] if __doc__ else "",
        rows=rows,
        notes=[f"Formula sizes: {lengths}."],
        params={"evaluations": count, "service calls": calls, "reps": reps, "samples per metric": HISTORY_SAMPLES},
        elapsed_s=time.perf_counter() - started,
        raw=raw,
    )
