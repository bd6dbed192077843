"""The command line: lists its commands and turns errors into one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batchpipe.cli import app
from tests.test_emulator.test_cli import foreground  # runs the service, stops it by SIGTERM and checks its exit


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "emulator", "approve", "plan", "serve", "pools"):
        assert command in result.output


def test_invalid_setting_is_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "run"],
        env={"BATCHPIPE_NODE_COUNT": "zero", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BATCHPIPE_NODE_COUNT" in result.stderr


def test_emulator_passes_the_container_runtime_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import batch_emulator.server

    started: list[Any] = []
    monkeypatch.setattr(batch_emulator.server, "run_forever", lambda config, **_: started.append(config))
    result = CliRunner().invoke(app, ["emulator", "--port", "0", "--container-runtime", "docker"])
    assert result.exit_code == 0, result.output
    assert started[0].container_runtime == "docker"


def test_emulator_passes_tls_and_bearer_options_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--cert``, ``--key-file``, ``--allow-bearer`` reach the service's config (serving https and accepting Bearer
    tokens with that config is tested in tests/test_emulator/test_tls_and_conditions.py)."""
    import batch_emulator.server

    started: list[Any] = []
    monkeypatch.setattr(batch_emulator.server, "run_forever", lambda config, **_: started.append(config))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    options = ["--cert", str(cert), "--key-file", str(key), "--allow-bearer"]
    result = CliRunner().invoke(app, ["emulator", "--port", "0", *options])
    assert result.exit_code == 0, result.output
    assert (started[0].certfile, started[0].keyfile, started[0].allow_bearer) == (cert, key, True)


def test_a_misspelled_variable_in_dot_env_is_warned_about_once_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BATCHPIPE_NUM_WORDS=5\nBATCHPIPE_NODE_COUNTS=2\nOTHER_TOOL=1\n", "utf-8")
    (tmp_path / "in.txt").write_text("a b c\n", "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "plan", "--input", "in.txt"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "BATCHPIPE_POLL_INTERVALL": "5"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: BATCHPIPE_POLL_INTERVALL is not a batchpipe setting and is ignored "
        "(did you mean BATCHPIPE_POLL_INTERVAL?)",
        "warning: BATCHPIPE_NODE_COUNTS in .env is not a batchpipe setting and is ignored "
        "(did you mean BATCHPIPE_NODE_COUNT?)",
    ]
    assert "top 5 words each" in result.stdout  # the file's valid entry is read
    assert "1 x standard_d2s_v3" in result.stdout  # the misspelled one is not


def test_plan_numwords_is_what_the_plan_counts_and_names_its_job(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a b c\n", "utf-8")

    def plan(*extra: str) -> str:
        result = CliRunner().invoke(app, ["plan", "--input", str(tmp_path / "in.txt"), *extra], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    default, seven = plan(), plan("--numwords", "7")
    assert "top 3 words each" in default
    assert "top 7 words each" in seven
    job = next(line for line in seven.splitlines() if "top 7 words each" in line).split()[1]
    assert job.rstrip(":") not in default  # the job id is derived from the count: a different plan, a different job


def test_emulator_account_and_key_are_the_credentials_it_accepts(tmp_path: Path) -> None:
    """``batchpipe emulator --account --key``: clients sign with these, and the well-known ones are refused."""
    import base64

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    key = base64.b64encode(b"a key of this test only, 32 byte").decode()
    command = [sys.executable, "-m", "batchpipe.cli", "emulator", "--port", "0", "--data-dir", str(tmp_path)]
    with foreground([*command, "--account", "acme", "--key", key]) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "(account acme)" in line, line
        url = line.split(" on ")[1].split(" ")[0]
        with BatchClient(url, AzureNamedKeyCredential("acme", key)) as client:
            assert list(client.list_pools()) == []
        with BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)) as client:
            with pytest.raises((ClientAuthenticationError, HttpResponseError)) as refused:
                list(client.list_pools())
            assert refused.value.status_code in (401, 403)
