"""One real local Prefect server per session, the project's deployment on a process worker, and headless Chromium.

Everything binds 127.0.0.1 and is stopped by the PID we started (the worker with two signals). Prefect's poll
intervals are lowered through environment variables so that a run is picked up within a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import string
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from playwright.sync_api import Browser, Page, sync_playwright

from batchpipe.local import LocalEndpoints, local_stack
from batchpipe.prefect_server import (
    FAST_CLIENT_SETTINGS,
    FAST_SERVER_SETTINGS,
    PrefectServer,
    create_process_work_pool,
    deploy_project,
    prefect_executable,
    start_prefect_server,
    start_process_worker,
    stop_worker,
)
from batchpipe.services import PROJECT_ROOT, ServiceProcess

SAMPLES = PROJECT_ROOT / "samples"
PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"
WORK_POOL = "batchpipe"
DEPLOYMENT = "batchpipe/daily"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
_FOREIGN_PREFIXES = ("BATCHPIPE_", "AZURE_", "PREFECT_")
# The local Batch service fails the task of any input named doomed*.txt with exit code 3 (and its retries).
FAILING_TASKS = "task_fail=topn-doomed*:3"


def clean_base_environment() -> dict[str, str]:
    """This process's environment without the developer's BATCHPIPE_*, AZURE_* and PREFECT_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}


@dataclass
class PrefectApi:
    """The Prefect REST API, as the UI and `prefect deployment run` use it."""

    url: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # Like Prefect's own client, retry 503: the server's answer while SQLite is busy (e.g. scheduling runs).
        for attempt in range(6):
            response = self.http.request(method, f"{self.url}{path}", json=body)
            if response.status_code != 503 or attempt == 5:
                break
            time.sleep(0.5 * (attempt + 1))  # back off before retrying a busy server
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        return self._send("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("POST", path, body)

    def deployment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/deployments/name/{name}")
        return result

    def run_deployment(self, name: str, parameters: dict[str, Any], env: dict[str, str] | None = None) -> str:
        """Create a flow run of deployment ``name`` with these parameters and job variables ``{"env": env}``."""
        deployment_id = self.deployment(name)["id"]
        body = {"parameters": parameters, "job_variables": {"env": env or {}}}
        run_id: str = self.post(f"/deployments/{deployment_id}/create_flow_run", body)["id"]
        return run_id

    def flow_run(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/flow_runs/{run_id}")
        return result

    def logs(self, run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
        return [entry["message"] for entry in self.post("/logs/filter", body)]

    def wait_for_state(self, run_id: str, wanted: str, timeout: float = 90.0) -> dict[str, Any]:
        """Poll the run until its state type is ``wanted``; a different final state fails at once, with its log."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(run_id)
            state = run["state"]["type"]
            if state == wanted:
                return run
            if state in TERMINAL or time.monotonic() > deadline:
                log = "\n".join(self.logs(run_id)[-25:])
                pytest.fail(f"flow run {run_id} is {state} ({run['state'].get('message')}), not {wanted}:\n{log}")
            time.sleep(0.3)  # polling the API for a state change, bounded by the deadline

    def artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's keyed artifacts by key (results table, summary, failed tasks)."""
        body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
        found = {a["key"]: a for a in self.post("/artifacts/filter", body) if a.get("key")}
        for artifact in found.values():
            if artifact["type"] == "table" and isinstance(artifact["data"], str):
                artifact["data"] = json.loads(artifact["data"])  # tables are stored as JSON text
        return found

    def flow_runs_of(self, deployment_id: str, state: str) -> list[dict[str, Any]]:
        body = {
            "deployments": {"id": {"any_": [deployment_id]}},
            "flow_runs": {"state": {"type": {"any_": [state]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
        result: list[dict[str, Any]] = self.post("/flow_runs/filter", body)
        return result


@dataclass
class DeploymentStack:
    """The server, the local services, and the environment a Prefect client (CLI, `batchpipe approve`) needs."""

    server: PrefectServer
    endpoints: LocalEndpoints
    api: PrefectApi
    client_env: dict[str, str]
    state_dir: Path

    def batch(self) -> BatchClient:
        credential = AzureNamedKeyCredential(self.endpoints.batch_account_name, self.endpoints.batch_account_key)
        return BatchClient(endpoint=self.endpoints.batch_url, credential=credential)

    @staticmethod
    def run_settings(label: str) -> tuple[str, dict[str, str]]:
        """A pool id and BATCHPIPE_* variables of one run's own (containers, fast polling), sent as job variables."""
        suffix = hashlib.sha256(label.encode()).hexdigest()[:8]
        env = {
            "BATCHPIPE_APPLICATION_CONTAINER": f"app-{suffix}",
            "BATCHPIPE_INPUT_CONTAINER": f"in-{suffix}",
            "BATCHPIPE_OUTPUT_CONTAINER": f"out-{suffix}",
            "BATCHPIPE_POLL_INTERVAL": "0.2",
            "BATCHPIPE_MAX_POLL_INTERVAL": "0.5",
            "BATCHPIPE_MONITOR_TIMEOUT": "120",
        }
        return f"pool-{suffix}", env

    @staticmethod
    def tutorial_top_words(path: Path, n: int) -> list[tuple[str, int]]:
        """The tutorial's counting, written out independently: read all, split, strip ASCII punctuation."""
        words = [token.strip(string.punctuation) for token in path.read_text("utf-8").split()]
        return Counter(words).most_common(n)

    def exists(self, kind: str, resource_id: str) -> bool:
        """Whether the local Batch service still has pool/job ``resource_id``."""
        client = self.batch()
        getter = client.get_pool if kind == "pool" else client.get_job
        try:
            getter(resource_id)
        except ResourceNotFoundError:
            return False
        return True


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real `prefect server start` on a free loopback port, fresh database, fast scheduler; stopped by PID."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-server"), extra_env=FAST_SERVER_SETTINGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def deployment_stack(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeploymentStack]:
    """Azurite + the local Batch service, the `batchpipe` process pool, deployments/prefect.yaml and a worker."""
    state_dir = tmp_path_factory.mktemp("deployment-stack")
    with local_stack(state_dir / "services", faults=FAILING_TASKS) as endpoints:
        client_env = {
            **clean_base_environment(),
            **prefect_server.client_environment(),
            **FAST_CLIENT_SETTINGS,
            **endpoints.environment(),
        }
        create_process_work_pool(WORK_POOL, client_env)
        deploy_project(PREFECT_YAML, PROJECT_ROOT, client_env)
        worker = start_process_worker(WORK_POOL, client_env, log_path=state_dir / "worker.log", cwd=state_dir)
        try:
            api = PrefectApi(prefect_server.api_url)
            yield DeploymentStack(prefect_server, endpoints, api, client_env, state_dir)
            api.http.close()
        finally:
            stop_worker(worker)


@dataclass(frozen=True)
class TriggeredRun:
    """A run of `batchpipe/daily` triggered with `prefect deployment run`, finished."""

    run_id: str
    run: dict[str, Any]
    output_dir: Path
    pool_id: str
    samples: list[Path]
    num_words: int


@pytest.fixture(scope="session")
def triggered_run(deployment_stack: DeploymentStack, tmp_path_factory: pytest.TempPathFactory) -> TriggeredRun:
    """`prefect deployment run 'batchpipe/daily' -p ...` (the documented command) on every sample, approval yes.

    Shared by the API test and the browser test, which both look at a finished run.
    """
    pool_id, env = deployment_stack.run_settings("triggered")
    output_dir = tmp_path_factory.mktemp("triggered-outputs")
    samples = sorted(SAMPLES.glob("*.txt"))
    parameters = {
        "inputs": json.dumps([str(p) for p in samples]),
        "output_dir": str(output_dir),
        "num_words": "2",
        "approval": "yes",
        "pool_id": pool_id,
    }
    command = [prefect_executable(), "deployment", "run", DEPLOYMENT]
    for name, value in parameters.items():
        command += ["-p", f"{name}={value}"]
    command += ["--job-variable", f"env={json.dumps(env)}"]
    result = subprocess.run(
        command, env=deployment_stack.client_env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = result.stdout.split("UUID: ")[1].split()[0]
    run = deployment_stack.api.wait_for_state(run_id, "COMPLETED", timeout=120)
    return TriggeredRun(run_id, run, output_dir, pool_id, samples, 2)


@dataclass(frozen=True)
class FailedRun:
    """A run of `batchpipe/daily` in which one of two tasks failed, finished Failed."""

    run_id: str
    run: dict[str, Any]
    pool_id: str


@pytest.fixture(scope="session")
def failed_run(deployment_stack: DeploymentStack, tmp_path_factory: pytest.TempPathFactory) -> FailedRun:
    """A run whose `doomed.txt` task fails on the local Batch service (fault injection); `harbour.txt` succeeds."""
    inputs = tmp_path_factory.mktemp("failing-inputs")
    (inputs / "doomed.txt").write_text("this task is failed by the local Batch service\n", "utf-8")
    shutil.copyfile(SAMPLES / "harbour.txt", inputs / "harbour.txt")
    pool_id, env = deployment_stack.run_settings("failing")
    parameters = {"inputs": [str(inputs)], "output_dir": str(inputs / "out"), "approval": "yes", "pool_id": pool_id}
    run_id = deployment_stack.api.run_deployment(DEPLOYMENT, parameters, env)
    run = deployment_stack.api.wait_for_state(run_id, "FAILED", timeout=120)
    return FailedRun(run_id, run, pool_id)


# --- headless Chromium driven by Playwright ---------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
# No outside connections: no background services, and no host name resolves except through loopback addresses.
# Playwright adds --headless (headless=True) and --no-sandbox (chromium_sandbox=False) itself; these are ours too.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def find_chromium() -> str | None:
    """The Chromium binary itself (Debian's /usr/bin/chromium wrapper adds remote extensions and API keys)."""
    for candidate in CHROMIUM_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    return None


def install_chromium() -> str:
    """Install Debian's `chromium` with apt-get unless it is there; skip the test if apt cannot be used."""
    found = find_chromium()
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        pytest.skip("headless Chromium is missing and cannot be installed here (needs apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "-o", "DPkg::Lock::Timeout=120", "install", "-y", "--no-install-recommends", "chromium"]
    for attempt in ([], [[apt_get, "-o", "DPkg::Lock::Timeout=120", "update"]]):
        for command in [*attempt, install]:
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
            if result.returncode != 0:
                break
        found = find_chromium()
        if found:
            return found
    pytest.skip(f"apt-get could not install chromium: {result.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get by this fixture when it is missing."""
    return install_chromium()


@pytest.fixture(scope="module")
def playwright_browser(chromium: str) -> Iterator[Browser]:
    """Headless Debian Chromium launched by Playwright (never a downloaded browser), making no outside connections.

    Module-scoped on purpose: while a sync Playwright driver is alive its event loop counts as running in the main
    thread, which turns Prefect's sync-compatible calls (``State.result``) into coroutines in every later test.
    """
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, chromium_sandbox=False, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(playwright_browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own cookies and storage) and one tab in it, 1400x900.

    With a touch screen, as headless Chromium on its own reports (no hover): the UI renders native drop-downs.
    """
    context = playwright_browser.new_context(viewport={"width": 1400, "height": 900}, has_touch=True)
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def stop_by_pid(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Stop a process we started by its PID (SIGTERM, then SIGKILL)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    ServiceProcess("process", process, "", log_path).stop(timeout=10)
