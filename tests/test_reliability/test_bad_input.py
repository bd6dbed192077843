"""Bad input to `batchpipe run`: one line on stderr, a non-zero exit, no traceback, nothing created."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration]


def _files(work: Path) -> Path:
    """Inputs every case can point at: one good file, one of each kind of bad file."""
    root = work / "inputs"
    (root / "good").mkdir(parents=True)
    (root / "good" / "words.txt").write_text("alpha beta alpha\n", "utf-8")
    (root / "empty-dir").mkdir()
    (root / "only-hidden" / "sub").mkdir(parents=True)
    (root / "only-hidden" / ".notes").write_text("hidden files are skipped\n", "utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.dat").write_bytes(b"GIF89a\x00\x01\x02 words\x00")
    (root / "latin1.txt").write_bytes("café crème brûlée\n".encode("latin-1"))
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a" / "same.txt").write_text("one\n", "utf-8")
    (root / "b" / "same.txt").write_text("two\n", "utf-8")
    os.mkfifo(root / "pipe")
    return root


def _case(case_id: str, case: str, args: list[str], env: dict[str, str], code: int, pattern: str) -> Any:
    return pytest.param(
        args,
        env,
        code,
        pattern,
        id=case_id,
        marks=pytest.mark.scenario(
            "Bad input", case, f"exit {code}, one line matching `{pattern}`, no traceback, nothing started or created"
        ),
    )


GOOD = ["--input", "inputs/good"]


@pytest.mark.parametrize(
    ("args", "env", "code", "pattern"),
    [
        _case("empty-dir", "no input files: an empty directory", ["--input", "inputs/empty-dir"], {}, 2,
              "contains no files"),
        _case("no-match", "no input files: a glob that matches nothing", ["--input", "inputs/*.md"], {}, 2,
              "no files match"),
        _case("missing", "a missing file", ["--input", "inputs/nope.txt"], {}, 2, "does not exist"),
        _case("directory", "a directory without files (only a hidden file and an empty subdirectory; directories "
              "are read recursively, hidden files skipped)", ["--input", "inputs/only-hidden"], {}, 2,
              "contains no files"),
        _case("fifo", "not a regular file (a FIFO)", ["--input", "inputs/pipe"], {}, 2, "is not a regular file"),
        _case("empty", "an empty file", ["--input", "inputs/empty.txt"], {}, 2, "is empty"),
        _case("binary", "a binary file (NUL bytes)", ["--input", "inputs/binary.dat"], {}, 2, "is binary"),
        _case("latin1", "a non-UTF-8 file (Latin-1): refused, inputs must be UTF-8 text",
              ["--input", "inputs/latin1.txt"], {}, 2, r"is not UTF-8 text \(bad byte at offset 3\)"),
        _case("duplicates", "duplicate file names in different folders", ["--input", "inputs/a", "--input",
              "inputs/b"], {}, 2, "two inputs are named 'same.txt'"),
        _case("pool-id", "invalid pool id (`BATCHPIPE_POOL_ID='my pool!'`)", GOOD,
              {"BATCHPIPE_POOL_ID": "my pool!"}, 2, "BATCHPIPE_POOL_ID: use 1-64 letters"),
        _case("job-id", "invalid job id (65 characters)", GOOD, {"BATCHPIPE_JOB_ID": "j" * 65}, 2,
              "BATCHPIPE_JOB_ID: use 1-64 letters"),
        _case("numwords-0", "`--numwords 0`", [*GOOD, "--numwords", "0"], {}, 2, "--numwords must be at least 1"),
        _case("numwords-neg", "`--numwords -5`", [*GOOD, "--numwords", "-5"], {}, 2,
              "--numwords must be at least 1"),
        _case("image-syntax", "image without a version (`BATCHPIPE_IMAGE=ubuntu`)", GOOD,
              {"BATCHPIPE_IMAGE": "ubuntu"}, 2, "BATCHPIPE_IMAGE: use `<distro>:<version>`"),
        _case("image-local", "an image the local Batch service does not offer (`BATCHPIPE_IMAGE=ubuntu:99.04`, local "
              "target): its catalogue is data, so this is known before any service starts", GOOD,
              {"BATCHPIPE_IMAGE": "ubuntu:99.04"}, 2, r"no supported Linux image matches BATCHPIPE_IMAGE='ubuntu:99.04'"
              r"; the service offers: (\w+:[\d.]+ \([^)]+\), )*"
              r"ubuntu:22\.04 \(0001-com-ubuntu-server-jammy/22_04-lts\)"),
        _case("duration", "a duration that is not one (`BATCHPIPE_MONITOR_TIMEOUT=soon`)", GOOD,
              {"BATCHPIPE_MONITOR_TIMEOUT": "soon"}, 2, r"BATCHPIPE_MONITOR_TIMEOUT: use seconds \(90\) or a "
              r"duration such as 90s, 30m, 2h, 1d, 1h30m or ISO 8601 PT30M \(got 'soon'\)"),
        _case("output-file", "`--output` is an existing file", [*GOOD, "--output", "inputs/good/words.txt"], {}, 2,
              "--output is not a directory: give a directory for the outputs"),
        _case("output-under-file", "`--output` below an existing file", [*GOOD, "--output", "inputs/empty.txt/out"],
              {}, 2, r"--output 'inputs/empty.txt/out': '.*/inputs/empty.txt' is not a directory"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_anything_starts(
    args: list[str], env: dict[str, str], code: int, pattern: str, cli: Any, observe: Callable[[str], None]
) -> None:
    _files(cli.workdir)
    before = sorted(p.relative_to(cli.workdir) for p in cli.workdir.rglob("*"))

    output = [] if "--output" in args else ["--output", "out"]
    result = cli.run("run", *args, "--state-dir", "state", *output, "--approve", "yes", env=env)

    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # exactly one line
    assert re.search(pattern, result.error_line), result.error_line
    assert result.error_line.startswith("error: ")
    assert sorted(p.relative_to(cli.workdir) for p in cli.workdir.rglob("*")) == before  # no state, no outputs
    observe(f"exit {result.returncode}: `{result.error_line}`; no service started, nothing written")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there


WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="


def _against_services(case_id: str, case: str, code: int, pattern: str, **marks: Any) -> Any:
    return pytest.param(
        case_id,
        code,
        pattern,
        id=case_id,
        marks=pytest.mark.scenario(
            "Bad input",
            case,
            f"exit {code}, a last line matching `{pattern}`, no traceback, nothing created"
            + (" (fails fast: no retries)" if "unreachable" in case_id else ""),
        ),
    )


@pytest.mark.parametrize(
    ("case_id", "code", "pattern"),
    [
        _against_services("unknown-image", "unknown image (`BATCHPIPE_IMAGE=ubuntu:99.04`)", 2,
                          "no supported Linux image matches BATCHPIPE_IMAGE='ubuntu:99.04'"),
        _against_services("wrong-batch-key", "a wrong Batch account key", 4,
                          "Batch failed while listing supported images: AuthenticationFailed.*BATCH_ACCOUNT_KEY"),
        _against_services("wrong-storage-key", "a wrong Storage account key (in the connection string)", 4,
                          "Storage failed while creating container .*(AuthenticationFailed|AuthorizationFailure)"),
        _against_services("unreachable-batch", "unreachable Batch endpoint (`--target azure`, a closed 127.0.0.1 "
                          "port)", 4, "Batch failed while listing supported images: .*Connection refused.*"
                          "unreachable: check BATCHPIPE_BATCH_ENDPOINT"),
        _against_services("unreachable-storage", "unreachable Storage endpoint (a closed 127.0.0.1 port)", 4,
                          "Storage failed while creating container .*Connection refused.*unreachable"),
    ],
)  # fmt: skip
def test_bad_setting_or_credential_fails_in_one_line_and_creates_nothing(
    case_id: str,
    code: int,
    pattern: str,
    api_cli: Any,
    azure_target: tuple[dict[str, str], Any],
    observe: Callable[[str], None],
) -> None:
    env, inspect = azure_target
    if case_id == "unknown-image":
        env["BATCHPIPE_IMAGE"] = "ubuntu:99.04"
    elif case_id == "wrong-batch-key":
        env["BATCHPIPE_BATCH_ACCOUNT_KEY"] = WRONG_KEY
    elif case_id == "wrong-storage-key":
        env["BATCHPIPE_STORAGE_CONNECTION_STRING"] = re.sub(
            r"AccountKey=[^;]+", f"AccountKey={WRONG_KEY}", env["BATCHPIPE_STORAGE_CONNECTION_STRING"]
        )
    elif case_id == "unreachable-batch":
        env["BATCHPIPE_BATCH_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    elif case_id == "unreachable-storage":
        port = _closed_port()
        env["BATCHPIPE_STORAGE_CONNECTION_STRING"] = re.sub(
            r"BlobEndpoint=http://127\.0\.0\.1:\d+", f"BlobEndpoint=http://127.0.0.1:{port}",
            env["BATCHPIPE_STORAGE_CONNECTION_STRING"],
        )  # fmt: skip
    (api_cli.workdir / "in").mkdir()
    (api_cli.workdir / "in" / "words.txt").write_text("alpha beta alpha\n", "utf-8")

    result = api_cli.run("run", "--input", "in", "--output", "out", "--approve", "yes", env=env)

    output = result.stdout + result.stderr
    assert result.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert result.error_line.startswith("error: "), output[-2000:]
    assert re.search(pattern, result.error_line), result.error_line
    assert "Retry 1/" not in output  # permanent: not retried
    assert not inspect.existing_containers()
    assert not inspect.pool_exists()
    assert not (api_cli.workdir / "out").exists()
    observe(f"exit {result.returncode} after {result.seconds:.0f}s (process start included): `{result.error_line}`")
    observe("no retries; no container, pool or job created")


@pytest.mark.scenario(
    "Bad input",
    "an expired SAS given to the node application (container SAS for `output`, expired an hour ago)",
    "the task exits 8 with one line naming the 403, no traceback, the signature not shown",
)
def test_node_app_with_an_expired_sas_fails_in_one_line(
    azurite: Any, tmp_path: Path, observe: Callable[[str], None], transcripts: list[tuple[str, str]]
) -> None:
    import subprocess
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    from node_app.build import build_package

    BlobServiceClient.from_connection_string(azurite.connection_string).create_container("expired-sas")
    now = datetime.now(UTC)
    token = generate_container_sas(
        azurite.account_name,
        "expired-sas",
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(create=True, write=True),
        start=now - timedelta(hours=2),
        expiry=now - timedelta(hours=1),
    )
    app = build_package(tmp_path / "build")
    (tmp_path / "words.txt").write_text("alpha beta alpha\n", "utf-8")
    env = {"PATH": "/usr/bin:/bin", "OUTPUT_SAS": token, "LANG": "C.UTF-8"}
    env |= {f"AZ_BATCH_{name}_ID": "x" for name in ("NODE", "TASK", "JOB", "POOL")}
    done = subprocess.run(
        ["python3", str(app), "--filepath", "words.txt", "--numwords", "3", "--blob-endpoint",
         azurite.blob_endpoint, "--storagecontainer", "expired-sas", "--sas-env", "OUTPUT_SAS"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    transcripts.append(("node app, expired SAS", done.stdout + done.stderr))
    signature = re.search(r"sig=([^&]+)", token)
    assert signature
    assert done.returncode == 8
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("node_app: error: ")
    assert "403" in done.stderr
    assert signature.group(1) not in done.stdout + done.stderr
    assert not list(BlobServiceClient.from_connection_string(azurite.connection_string)
                    .get_container_client("expired-sas").list_blobs())  # fmt: skip
    observe(f"exit 8: `{done.stderr.strip()}`; nothing uploaded")


@pytest.mark.scenario(
    "Bad input",
    "expired SAS in a whole run (`batchpipe run --target azure` with the SAS lifetime forced into the past)",
    "the nodes cannot download: the run fails early with one line saying so (not at the monitoring timeout), "
    "naming what it leaves in place",
)
def test_run_with_expired_sas_fails_early_and_says_why(
    api_cli: Any,
    azure_target: tuple[dict[str, str], Any],
    observe: Callable[[str], None],
) -> None:
    import sys

    env, inspect = azure_target
    env["BATCHPIPE_MONITOR_TIMEOUT"] = "300"
    (api_cli.workdir / "in").mkdir()
    (api_cli.workdir / "in" / "words.txt").write_text("alpha beta alpha\n", "utf-8")
    # The same CLI, with every SAS it signs expired a day ago (as if the run had outlived its tokens).
    code = (
        "import flows.pipeline as p; p.SAS_MARGIN_SECONDS = -86400 - 300;"
        "from batchpipe.cli import app; app(prog_name='batchpipe')"
    )
    args = ["run", "--input", "in", "--output", "out", "--approve", "yes"]

    result = api_cli.command([sys.executable, "-c", code, *args], env=env)

    output = result.stdout + result.stderr
    assert result.returncode == 5, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    line = result.error_line
    assert line.startswith("error: ")
    assert "starttaskfailed" in line
    assert re.search(r"403|AuthenticationFailed|ResourceFileDownload", line), line
    assert "timed out" not in line
    for name in [*sorted(inspect.existing_containers()), inspect.pool_id, *inspect.jobs_on_pool()]:
        assert name in line
    observe(f"exit 5 after {result.seconds:.0f}s: `{line}`")


@pytest.mark.scenario(
    "Bad input",
    "unknown VM size (`BATCHPIPE_VM_SIZE=standard_nope`, `--target azure`)",
    "exit 4, one line naming the property and value; Batch's data plane cannot list VM sizes, so the containers "
    "and uploads made before the pool was refused are named in that line",
)
def test_unknown_vm_size_is_one_line_naming_what_exists(
    api_cli: Any, azure_target: tuple[dict[str, str], Any], observe: Callable[[str], None]
) -> None:
    env, inspect = azure_target
    env["BATCHPIPE_VM_SIZE"] = "standard_nope"
    (api_cli.workdir / "in").mkdir()
    (api_cli.workdir / "in" / "words.txt").write_text("alpha beta alpha\n", "utf-8")

    result = api_cli.run("run", "--input", "in", "--output", "out", "--approve", "yes", env=env)

    output = result.stdout + result.stderr
    assert result.returncode == 4, output[-3000:]
    assert "Traceback" not in output
    line = result.error_line
    assert line.startswith("error: Batch failed while creating pool")
    assert "vmSize='standard_nope'" in line
    assert not inspect.pool_exists()
    assert not inspect.jobs_on_pool()
    left = sorted(inspect.existing_containers())
    assert all(name in line for name in left)
    observe(f"exit 4: `{line}`")
    observe(f"created before the refusal and named in the error: containers {', '.join(left)}; no pool, no job")


@pytest.mark.scenario(
    "Bad input",
    "file names and words that look like terminal markup (`[bold]notes.txt` holding `[red]alarm[/red]`)",
    "they work, and the CLI prints them verbatim (exit 0)",
)
def test_markup_like_names_and_words_are_printed_verbatim(
    api_cli: Any, azure_target: tuple[dict[str, str], Any], observe: Callable[[str], None]
) -> None:
    env, _ = azure_target
    (api_cli.workdir / "in").mkdir()
    (api_cli.workdir / "in" / "[bold]notes.txt").write_text("[red]alarm[/red] [red]alarm[/red] calm\n", "utf-8")

    env["COLUMNS"] = "200"  # one table row per line

    result = api_cli.run("run", "--input", "in", "--output", "out", "--approve", "yes", env=env)

    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "[bold]notes_OUTPUT.txt" in result.stdout
    assert "red]alarm[/red (2), calm (1)" in result.stdout  # outer brackets are punctuation, stripped as tokens
    assert (api_cli.workdir / "out").rglob("[[]bold]notes_OUTPUT.txt")
    row = next(line for line in result.stdout.splitlines() if "notes_OUTPUT" in line)
    observe(f"exit 0; the summary table row: `{' '.join(row.split())}`")
