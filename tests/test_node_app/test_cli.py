"""The zipapp run as a Batch task runs it: output file, exit codes and one-line errors for every bad input."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from node_app import __version__
from node_app.errors import ExitCode
from node_app.output import BATCH_VARIABLES

RunNodeApp = Callable[..., subprocess.CompletedProcess[str]]
ExpectError = Callable[[subprocess.CompletedProcess[str], int, str], None]

SAMPLE = "the quick brown fox. The lazy dog's tail; the end—the “end” !!! ...\n"
SAMPLE_TOP4 = (
    "Word\tCount\n"
    "------------------------------\n"
    "the:\t2\n"
    ":\t2\n"
    "quick:\t1\n"
    "brown:\t1\n"
    "------------------------------\n"
    "Node: tvmps_node1\n"
    "Task: topNtask0\n"
    "Job:  PythonTutorialJob\n"
    "Pool: PythonTutorialPool\n"
)
LOCAL = ["--numwords", "4", "--no-upload"]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "taskdata1.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    return path


def test_writes_the_tutorials_output_file(run_node_app: RunNodeApp, sample: Path, tmp_path: Path) -> None:
    result = run_node_app(["--filepath", sample.name, *LOCAL])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "taskdata1_OUTPUT.txt").read_bytes() == SAMPLE_TOP4.encode("utf-8")
    assert "taskdata1_OUTPUT.txt" in result.stdout


def test_output_goes_to_the_working_directory(run_node_app: RunNodeApp, tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data.txt").write_text("a b a", encoding="utf-8")
    (tmp_path / "work").mkdir()
    result = run_node_app(["--filepath", "../shared/data.txt", *LOCAL], cwd=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "work" / "data_OUTPUT.txt").read_text(encoding="utf-8").splitlines()[2:4] == ["a:\t2", "b:\t1"]


def test_options_casefold_and_strip_bom(run_node_app: RunNodeApp, tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffWord word WORD other".encode())
    plain = run_node_app(["--filepath", "bom.txt", "--numwords", "1", "--no-upload"])
    assert plain.returncode == 0, plain.stderr
    assert (tmp_path / "bom_OUTPUT.txt").read_text(encoding="utf-8").splitlines()[2] == "\ufeffWord:\t1"
    folded = run_node_app(["--filepath", "bom.txt", "--numwords", "1", "--no-upload", "--casefold", "--strip-bom"])
    assert folded.returncode == 0, folded.stderr
    assert (tmp_path / "bom_OUTPUT.txt").read_text(encoding="utf-8").splitlines()[2] == "word:\t3"


def test_version(run_node_app: RunNodeApp) -> None:
    result = run_node_app(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"node_app {__version__}"


def test_runs_on_python_38(
    run_node_app: RunNodeApp, expect_error: ExpectError, python38: str, sample: Path, tmp_path: Path
) -> None:
    result = run_node_app(["--filepath", sample.name, *LOCAL], python=python38)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "taskdata1_OUTPUT.txt").read_bytes() == SAMPLE_TOP4.encode("utf-8")
    bad = run_node_app(["--filepath", "missing.txt", *LOCAL], python=python38)
    expect_error(bad, ExitCode.INPUT_NOT_FOUND, "does not exist")


@pytest.mark.parametrize(
    ("args", "exit_code", "fragment"),
    [
        (["--filepath", "missing.txt", *LOCAL], ExitCode.INPUT_NOT_FOUND, "'missing.txt' does not exist"),
        (["--filepath", "taskdata1.txt/x", *LOCAL], ExitCode.INPUT_NOT_FOUND, "does not exist"),
        (["--filepath", "adir", *LOCAL], ExitCode.INPUT_NOT_A_FILE, "'adir' is a directory"),
        (["--filepath", "empty.txt", *LOCAL], ExitCode.INPUT_EMPTY, "is empty (0 bytes)"),
        (["--filepath", "blank.txt", *LOCAL], ExitCode.INPUT_EMPTY, "contains only whitespace"),
        (["--filepath", "latin1.txt", *LOCAL], ExitCode.INPUT_NOT_UTF8, "not valid UTF-8: invalid continuation"),
        (["--filepath", "taskdata1.txt", "--numwords", "0", "--no-upload"], ExitCode.USAGE, "at least 1, got 0"),
        (["--filepath", "taskdata1.txt", "--numwords", "-3", "--no-upload"], ExitCode.USAGE, "at least 1, got -3"),
        (["--filepath", "taskdata1.txt", "--numwords", "x", "--no-upload"], ExitCode.USAGE, "invalid int value"),
        (["--numwords", "3", "--no-upload"], ExitCode.USAGE, "required: --filepath"),
        (["--filepath", "taskdata1.txt", "--numwords", "3", "--bogus"], ExitCode.USAGE, "unrecognized arguments"),
        (
            ["--filepath", "taskdata1.txt", "--numwords", "3", "--storageaccount", "a", "--storagecontainer", "o"],
            ExitCode.USAGE,
            "a container SAS is required",
        ),
        (
            ["--filepath", "taskdata1.txt", "--numwords", "3", "--storageaccount", "a", "--sastoken", "sv=1"],
            ExitCode.USAGE,
            "--storagecontainer is required",
        ),
        (
            ["--filepath", "taskdata1.txt", "--numwords", "3", "--storagecontainer", "o", "--sastoken", "sv=1"],
            ExitCode.USAGE,
            "--storageaccount or --blob-endpoint is required",
        ),
        (
            [
                *("--filepath", "taskdata1.txt", "--numwords", "3", "--storageaccount", "a"),
                *("--storagecontainer", "o", "--sastoken", "sv=1", "--sas-env", "SAS"),
            ],
            ExitCode.USAGE,
            "not both",
        ),
        (
            [
                *("--filepath", "taskdata1.txt", "--numwords", "3", "--storagecontainer", "o"),
                *("--blob-endpoint", "ftp://127.0.0.1/acct", "--sastoken", "sv=1&sig=SECRET"),
            ],
            ExitCode.USAGE,
            "--blob-endpoint must be an http(s) URL",
        ),
        (
            [
                *("--filepath", "taskdata1.txt", "--numwords", "3", "--storageaccount", "a"),
                *("--storagecontainer", "o", "--sas-env", "NOT_SET_ANYWHERE"),
            ],
            ExitCode.ENVIRONMENT,
            "NOT_SET_ANYWHERE (named by --sas-env) is missing",
        ),
        (["--filepath", "clash.txt", *LOCAL], ExitCode.IO_ERROR, "cannot write output file 'clash_OUTPUT.txt'"),
    ],
    ids=lambda value: str(value) if isinstance(value, ExitCode) else None,
)
def test_bad_input_gives_one_line_and_a_distinct_exit_code(
    run_node_app: RunNodeApp,
    expect_error: ExpectError,
    sample: Path,
    tmp_path: Path,
    args: list[str],
    exit_code: int,
    fragment: str,
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(" \n\t\u3000\n".encode())
    (tmp_path / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (tmp_path / "clash.txt").write_text("a b", encoding="utf-8")
    (tmp_path / "clash_OUTPUT.txt").mkdir()  # the output path is taken by a directory
    result = run_node_app(args)
    expect_error(result, exit_code, fragment)
    assert "SECRET" not in result.stderr


def test_non_utf8_message_gives_the_byte_offset(
    run_node_app: RunNodeApp, expect_error: ExpectError, tmp_path: Path
) -> None:
    (tmp_path / "bad.txt").write_bytes(b"fine words\n" * 10000 + b"caf\xe9\n")
    result = run_node_app(["--filepath", "bad.txt", *LOCAL])
    expect_error(result, ExitCode.INPUT_NOT_UTF8, "at byte offset 110003")
    assert not (tmp_path / "bad_OUTPUT.txt").exists()


@pytest.mark.parametrize("variable", BATCH_VARIABLES)
def test_missing_batch_variable(
    run_node_app: RunNodeApp, expect_error: ExpectError, sample: Path, task_env: dict[str, str], variable: str
) -> None:
    env = {name: value for name, value in task_env.items() if name != variable}
    result = run_node_app(["--filepath", sample.name, *LOCAL], env=env)
    expect_error(result, ExitCode.ENVIRONMENT, f"environment variable(s) {variable} missing or empty")


def test_exit_codes_are_distinct() -> None:
    codes = [int(code) for code in ExitCode]
    assert len(codes) == len(set(codes))
