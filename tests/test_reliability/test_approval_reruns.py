"""Every approval answer, then the same run again: the rerun ends with every output verified and no task run
twice. `batchpipe approve` answers a paused run by its name or with --latest."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration]


class PausedRun(threading.Thread):
    """The pipeline with ``approval='wait'`` in a thread of its own, under a flow-run name we choose."""

    def __init__(self, sources: list[Path], out: Path, name: str) -> None:
        super().__init__(daemon=True)
        self.sources, self.out, self.name = sources, out, name
        self.state: Any = None

    def run(self) -> None:
        flow = top_words_pipeline.with_options(flow_run_name=self.name)
        self.state = flow(
            inputs=[str(p) for p in self.sources], output_dir=str(self.out), approval="wait", return_state=True
        )


def _paused(name: str) -> bool:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return bool(runs) and runs[0].state is not None and runs[0].state.is_paused()


def _first_run(answer: str, stack: Any, api_cli: Any, sources: list[Path], out: Path, wait: Any) -> Any:
    """Run once and answer the approval ``answer`` (yes, no directly; job-only by name; pool-only with --latest;
    timeout: nobody answers within BATCHPIPE_APPROVAL_TIMEOUT)."""
    if answer in ("yes", "no"):
        return top_words_pipeline(
            inputs=[str(p) for p in sources], output_dir=str(out), approval=answer, return_state=True
        )
    name = f"approval-{answer}-{stack.pool_id}"
    run = PausedRun(sources, out, name)
    run.start()
    wait(lambda: _paused(name) or not run.is_alive(), timeout=180, what="the run to pause for approval")
    if answer == "job-only":
        done = api_cli.run("approve", name, "job-only")
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(
            rf"Answered flow run {name} \([0-9a-f-]+\): delete job=True, delete pool=False\n", done.stdout
        )
    elif answer == "pool-only":
        done = api_cli.run("approve", "--latest", "pool-only")
        assert done.returncode == 0, done.stderr
        assert f"Answered flow run {name} " in done.stdout
    run.join(180)
    return run.state


def _submitted(flow_logs: Callable[..., list[str]], state: Any) -> int:
    logs = flow_logs(state.state_details.flow_run_id)
    return sum(int(n) for line in logs for n in re.findall(r"Submitted (\d+) tasks to job", line))


def _rerun_case(answer: str, **marks: Any) -> Any:
    kept = {
        "yes": "nothing kept",
        "no": "job and pool kept",
        "job-only": "pool kept (answered by flow-run name)",
        "pool-only": "job kept (answered with --latest)",
        "timeout": "nobody answered; the default deleted both",
    }[answer]
    return pytest.param(
        answer,
        id=answer,
        marks=[
            pytest.mark.scenario(
                "Faults",
                f"approval answered `{answer}` ({kept}), containers deleted; then the same run again",
                "the rerun completes with every output verified; no task submitted twice across the two runs",
            ),
            *marks.get("extra", []),
        ],
    )


@pytest.mark.parametrize(
    "answer",
    [
        _rerun_case("no"),
        _rerun_case("yes", extra=[pytest.mark.slow]),
        _rerun_case("job-only", extra=[pytest.mark.slow]),
        _rerun_case("pool-only", extra=[pytest.mark.slow]),
        _rerun_case("timeout", extra=[pytest.mark.slow]),
    ],
)
def test_every_approval_answer_then_the_same_run_completes(
    answer: str,
    stack: Any,
    api_cli: Any,
    inputs: Callable[..., list[Path]],
    check_outputs: Callable[..., int],
    flow_logs: Callable[..., list[str]],
    observe: Callable[[str], None],
    wait: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    api_cli.api_url = None  # set below from the session's API (same as the in-process runs)
    from prefect.settings import PREFECT_API_URL

    api_cli.api_url = str(PREFECT_API_URL.value())
    if answer == "timeout":
        monkeypatch.setenv("BATCHPIPE_APPROVAL_TIMEOUT", "1s")
    sources, out = inputs(tmp_path / "in", 3), tmp_path / "out"

    first = _first_run(answer, stack, api_cli, sources, out, wait)
    assert first.is_completed(), first.message
    summary = first.result()
    observe(
        f"first run: job {summary['job']}, pool {summary['pool']}, containers {summary['containers']} "
        f"({summary['decided_by']})"
    )

    rerun = top_words_pipeline(inputs=[str(p) for p in sources], output_dir=str(out), approval="yes", return_state=True)

    submitted = _submitted(flow_logs, first) + _submitted(flow_logs, rerun)
    observe(f"rerun: {rerun.type.value}: {rerun.message or ''}"[:300])
    observe(f"tasks submitted across both runs: {submitted} for {len(sources)} inputs")
    assert rerun.is_completed(), rerun.message
    check_outputs(out / summary["job_id"], sources, 3, summary["job_id"], stack.pool_id)
    assert submitted == len(sources)


@pytest.mark.scenario(
    "Bad input",
    "`batchpipe approve` with a flow-run name nobody has, and `--latest` when no run is paused",
    "one line each, exit 2, saying what was looked for and where (the Prefect API)",
)
def test_approve_says_what_it_could_not_find(api_cli: Any, observe: Callable[[str], None]) -> None:
    by_name = api_cli.run("approve", "no-such-run", "yes")
    latest = api_cli.run("approve", "--latest", "yes")
    assert by_name.returncode == 2, by_name.stderr
    assert by_name.error_line == "error: no flow run named 'no-such-run' on this Prefect API (check PREFECT_API_URL)"
    assert latest.returncode == 2, latest.stderr
    assert latest.error_line.startswith("error: no flow run waiting for approval on this Prefect API")
    bad = api_cli.run("approve", "--latest", "maybe")
    assert bad.error_line == "error: answer must be one of yes, no, job-only, pool-only (got 'maybe')"
    observe(f"`{by_name.error_line}`; `{latest.error_line}`; `{bad.error_line}`")
