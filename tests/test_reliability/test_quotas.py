"""Exhausted account quotas: a clear error that names the quota, and whatever was created is named too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchpipe.errors import BatchpipeError
from flows.pipeline import top_words_pipeline

pytestmark = [pytest.mark.integration]


def _quota(spec: str, code: str, words: str) -> Any:
    return pytest.param(
        spec,
        code,
        marks=pytest.mark.scenario(
            "Faults",
            f"{words} quota exhausted (`{spec}`)",
            f"one-line error naming the quota ({code}); everything already created is named in it",
        ),
        id=spec,
    )


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        _quota("quota.pools=0", "PoolQuotaReached", "pool"),
        _quota("quota.active_jobs=0", "ActiveJobAndScheduleQuotaReached", "active job"),
        _quota("quota.cores=1", "AccountCoreQuotaReached", "dedicated core"),
    ],
)
def test_exhausted_quota_is_named_and_nothing_is_left_unsaid(
    spec: str,
    code: str,
    stack: Any,
    faults: Callable[[str], None],
    inputs: Callable[..., list[Path]],
    observe: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BATCHPIPE_MONITOR_TIMEOUT", "300")  # the core quota must not wait for this
    faults(spec)

    state = top_words_pipeline(
        inputs=[str(p) for p in inputs(tmp_path / "in", 2)],
        output_dir=str(tmp_path / "out"),
        approval="yes",
        return_state=True,
    )

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BatchpipeError), repr(error)
    message = error.message
    assert "\n" not in message
    assert code in message
    assert "quota" in message.lower()
    assert "timed out" not in message
    left = sorted(stack.existing_containers())
    if stack.pool_exists():
        left.append(stack.pool_id)
    left += stack.jobs_on_pool()
    for name in left:
        assert name in message, f"{name} exists but the error does not say so"
    observe(f"{type(error).__name__}: `{message}`")
    observe(f"left in place (and named in the error): {', '.join(left) or 'nothing'}")
