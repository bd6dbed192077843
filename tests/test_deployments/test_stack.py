"""`batchpipe stack`: the local stack for the UI, its environment file, and stopping everything by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from dotenv import dotenv_values

from batchpipe.cli_stack import ENV_FILE_MARKER, env_file_text, remove_env_file, write_env_file
from batchpipe.errors import ConfigurationError
from batchpipe.prefect_server import descendant_pids, free_loopback_port
from batchpipe.services import ServiceProcess

VARIABLES = {
    "BATCHPIPE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k==;",
    "PREFECT_API_URL": "http://127.0.0.1:4200/api",
    "TRICKY": '$HOME `x` a;b "c"',
}


def test_env_file_reads_the_same_in_sh_and_as_a_dotenv_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    write_env_file(path, VARIABLES)

    assert path.read_text().startswith(ENV_FILE_MARKER)
    assert dotenv_values(path) == VARIABLES
    script = f". {path}; " + "; ".join(f'printf "%s\\n" "${name}"' for name in VARIABLES)
    shell = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env={})
    assert shell.stdout.splitlines() == list(VARIABLES.values())


def test_a_file_somebody_else_wrote_is_neither_overwritten_nor_removed(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("MY_SECRET=1\n")

    with pytest.raises(ConfigurationError, match="not written by `batchpipe stack`"):
        write_env_file(path, VARIABLES)
    remove_env_file(path)
    assert path.read_text() == "MY_SECRET=1\n"
    assert env_file_text({}) == ENV_FILE_MARKER + "\n"
    with pytest.raises(ConfigurationError, match="quote"):
        env_file_text({"X": "it's"})


@pytest.mark.server
@pytest.mark.integration
def test_stack_serves_prefect_and_the_local_services_then_stops_all_of_them(tmp_path: Path) -> None:
    env_file = tmp_path / "stack.env"
    port = free_loopback_port()
    command = [sys.executable, "-m", "batchpipe.cli", "stack", "--port", str(port), "--env-file", str(env_file)]
    command += ["--state-dir", str(tmp_path / "state"), "--prefect-home", str(tmp_path / "prefect-home")]
    log = tmp_path / "stack.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHPIPE_", "PREFECT_"))}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=clean)
    stack = ServiceProcess("batchpipe stack", process, "", log)
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling the stack's output until it reports it is up
        variables = dotenv_values(env_file)
        children = descendant_pids(process.pid)

        assert variables["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api"
        assert variables["PREFECT_HOME"] == str(tmp_path / "prefect-home")
        assert httpx.get(f"{variables['PREFECT_API_URL']}/health", timeout=5).json() is True
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200  # the UI
        batch = BatchClient(
            endpoint=str(variables["BATCHPIPE_BATCH_ENDPOINT"]),
            credential=AzureNamedKeyCredential(
                str(variables["BATCHPIPE_BATCH_ACCOUNT_NAME"]), str(variables["BATCHPIPE_BATCH_ACCOUNT_KEY"])
            ),
        )
        assert list(batch.list_pools()) == []
        assert "127.0.0.1" in str(variables["BATCHPIPE_STORAGE_CONNECTION_STRING"])
        assert len(children) == 3  # Azurite, the local Batch service, the Prefect server

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        stack.stop()
    assert not env_file.exists()  # its addresses are dead now
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)
