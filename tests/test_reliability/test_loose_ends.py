"""Loose ends a new user found: one duration syntax, misspelled variables, the approval message, the summary's
empty word, the shared console of the progress bar and the log (pure logic; no services)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from batchpipe.approval_help import approval_instructions
from batchpipe.durations import describe, parse_seconds
from batchpipe.errors import ConfigurationError, OutputWriteError
from batchpipe.settings import load_settings, unknown_variables
from tasks.storage import output_write_error

DURATION_SETTINGS = ["POLL_INTERVAL", "MAX_POLL_INTERVAL", "MONITOR_TIMEOUT", "POOL_READY_TIMEOUT", "APPROVAL_TIMEOUT"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("2.5", 2.5), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     ("PT30M", 1800), ("pt1h", 3600), ("P1DT2H", 93600), ("PT0.5S", 0.5), (" 45s ", 45)],
)  # fmt: skip
def test_one_duration_syntax(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "30x", "PT", "P", "-5m", "1m30", "half an hour", "PT30"])
def test_what_is_not_a_duration_says_what_is(text: str) -> None:
    with pytest.raises(ValueError, match=r"seconds \(90\) or a duration such as 90s, 30m, 2h"):
        parse_seconds(text)


@pytest.mark.parametrize("name", DURATION_SETTINGS)
def test_every_duration_setting_takes_every_form(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPIPE_MAX_POLL_INTERVAL", "10m")  # the upper bound of the poll interval
    for text, seconds in (("90s", 90.0), ("2m", 120.0), ("PT1M", 60.0), ("45", 45.0)):
        monkeypatch.setenv(f"BATCHPIPE_{name}", text)
        assert getattr(load_settings(), name.lower()) == seconds, text
    monkeypatch.setenv(f"BATCHPIPE_{name}", "soon")
    with pytest.raises(ConfigurationError, match=rf"^invalid setting: BATCHPIPE_{name}: use seconds .*\(got 'soon'\)$"):
        load_settings()


def test_durations_read_back_short() -> None:
    assert [describe(s) for s in (5, 125, 3600, 5400, 93600, 86400)] == ["5s", "2m 5s", "1h", "1h 30m", "1d 2h", "1d"]


def test_a_misspelled_variable_is_named_with_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert unknown_variables(["BATCHPIPE_NODE_COUNTS", "BATCHPIPE_NODE_COUNT", "PATH", "BATCHPIPE_LIVE_VM_SIZE"]) == [
        "BATCHPIPE_NODE_COUNTS is not a batchpipe setting and is ignored (did you mean BATCHPIPE_NODE_COUNT?)"
    ]
    assert "did you mean BATCHPIPE_APPROVAL_TIMEOUT?" in unknown_variables(["BATCHPIPE_APROVAL_TIMEOUT"])[0]
    assert "see the settings table" in unknown_variables(["BATCHPIPE_XYZZY"])[0]
    monkeypatch.setenv("BATCHPIPE_POLL_INTERVALL", "5")
    load_settings()
    load_settings()
    assert capsys.readouterr().err.count("warning: BATCHPIPE_POLL_INTERVALL is not a batchpipe setting") == 1


def _instructions(**changes: object) -> str:
    values: dict[str, object] = {
        "mode": "ask",
        "terminal": True,
        "flow_run_name": "calm-otter",
        "flow_run_id": "0b0e",
        "api_url": "http://127.0.0.1:4321/api",
        "ui_url": None,
        "job_id": "batchpipe-1",
        "pool_id": "batchpipe-pool",
        "timeout": 3600.0,
        "default_job": True,
        "default_pool": True,
    }
    return approval_instructions(**(values | changes))  # type: ignore[arg-type]


def test_the_approval_message_names_only_the_ways_that_exist() -> None:
    plain = _instructions()
    assert "answer the questions below in this terminal" in plain
    assert "`PREFECT_API_URL=http://127.0.0.1:4321/api batchpipe approve calm-otter yes|no|job-only|pool-only`" in plain
    assert "UI" not in plain  # a plain CLI run has no UI
    assert "without an answer in 1h: delete job=True, delete pool=True" in plain
    with_ui = _instructions(mode="wait", ui_url="http://127.0.0.1:4200")
    assert "the Resume form in the Prefect UI (http://127.0.0.1:4200/runs/flow-run/0b0e)" in with_ui
    assert "this terminal" not in with_ui


def test_ask_without_a_terminal_says_so_and_how_to_answer() -> None:
    text = _instructions(terminal=False)
    assert text.startswith("No terminal to ask in (stdin is not a TTY, --approve ask). Waiting for approval")
    assert "batchpipe approve calm-otter" in text
    assert "this terminal" not in text


def test_a_full_disk_names_the_path_and_the_space_needed(tmp_path: Path) -> None:
    target = tmp_path / "words_OUTPUT.txt"
    error = output_write_error(target, 5000, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(error, OutputWriteError)
    assert error.message.startswith(f"cannot write output '{target}': No space left on device; it needs 5,000 bytes")
    assert f"are free in '{tmp_path}'" in error.message
    readonly = output_write_error(target, 10, OSError(errno.EROFS, "Read-only file system"))
    assert (
        readonly.message == f"cannot write output '{target}': Read-only file system: give a writable --output and rerun"
    )


def test_the_progress_bar_shares_the_console_of_prefects_log_handler() -> None:
    from prefect.logging.configuration import setup_logging

    from batchpipe.cli_support import log_console

    setup_logging()
    consoles = [getattr(h, "console", None) for h in logging.getLogger().handlers]
    console = log_console()
    assert console in [c for c in consoles if c is not None]
    assert console.get_style("bar.back")  # the progress bar's styles are there (Prefect's theme lacks them)


def test_the_summary_says_what_the_empty_word_means(capsys: pytest.CaptureFixture[str]) -> None:
    from batchpipe.cli import _print_summary

    summary = {
        "job_id": "batchpipe-1",
        "outputs": [{"file": "README_OUTPUT.md", "top_words": [("", 12), ("the", 9)]}],
        "output_dir": "out/batchpipe-1",
        "job": "deleted",
        "pool_id": "batchpipe-pool",
        "pool": "deleted",
        "containers": "deleted",
        "decided_by": "--approve yes",
    }
    _print_summary(summary)
    text = " ".join(capsys.readouterr().out.split())
    assert "'' (12), the (9)" in text
    assert "'': tokens made only of punctuation (Markdown's #, -, ---, ...)" in text
    summary["outputs"] = [{"file": "a_OUTPUT.txt", "top_words": [("the", 9)]}]
    _print_summary(summary)
    assert "punctuation" not in capsys.readouterr().out
