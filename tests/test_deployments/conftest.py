"""One real local Prefect server per session, the project's deployment on a process worker, and headless Chromium.

Everything binds 127.0.0.1 and is stopped by the PID we started (the worker with two signals). Prefect's poll
intervals are lowered through environment variables so that a run is picked up within a second.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
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


# --- headless Chromium over the DevTools protocol -------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
# No outside connections: no background services, and no host name resolves except through loopback addresses.
CHROMIUM_FLAGS = (
    "--headless=new",
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
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1400,900",
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


class CdpPage:
    """One browser tab driven over the Chrome DevTools protocol (a websocket)."""

    def __init__(self, websocket_url: str) -> None:
        from websockets.sync.client import connect

        self._socket = connect(websocket_url, max_size=64 * 2**20, open_timeout=10)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def wait_for_text(self, *needles: str, timeout: float = 30.0, scroll: bool = False) -> str:
        """Wait until the page shows every one of ``needles``; return the page's text.

        ``scroll``: scroll to the end before each look, for text at the end of a list the UI loads as you scroll.
        """
        deadline = time.monotonic() + timeout
        while True:
            if scroll:
                self.scroll_to_end()
            text = self.text()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the page never showed {needles!r}; it shows:\n{text[-1500:]}")
            time.sleep(0.2)  # polling the rendered page, bounded by the deadline

    def scroll_to_end(self) -> None:
        """Scroll the page and every scrollable pane in it to the end (the UI renders long log lists lazily)."""
        self.evaluate(
            """[document.scrollingElement, ...document.querySelectorAll('*')]
                .filter(e => e && e.scrollHeight > e.clientHeight)
                .forEach(e => { e.scrollTop = e.scrollHeight; })"""
        )

    def click_text(self, label: str, within: str = "body") -> None:
        """Click the innermost element inside ``within`` (a CSS selector) whose text is exactly ``label``."""
        script = """((label, within) => {
            const root = document.querySelector(within);
            if (!root) return false;
            const same = e => e.innerText && e.innerText.trim() === label;
            const hits = [...root.querySelectorAll('*')].filter(same);
            const leaf = hits.find(e => ![...e.children].some(same));
            if (!leaf) return false;
            (leaf.closest('button, a, li, [role=tab], [role=switch]') || leaf).click();
            return true;
        })"""
        deadline = time.monotonic() + 15
        while not self.evaluate(f"{script}({json.dumps(label)}, {json.dumps(within)})"):
            if time.monotonic() > deadline:
                pytest.fail(f"nothing labelled {label!r} to click; the page shows:\n{self.text()[-1500:]}")
            time.sleep(0.2)  # polling for the element to render, bounded by the deadline

    def screenshot(self, path: Path, height: int | None = None) -> Path:
        """Save a PNG of the viewport (``height``: make the viewport that tall first, for a long form)."""
        if height is not None:
            self.call(
                "Emulation.setDeviceMetricsOverride", width=1400, height=height, deviceScaleFactor=1, mobile=False
            )
            # Two animation frames: the page has laid out and painted at the new size.
            self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def toggle(self, label: str) -> None:
        """Flip the switch of the Resume form's field labelled ``label`` (e.g. "Delete Pool")."""
        script = """(label => {
            const field = [...document.querySelectorAll('.p-modal .schema-form-property')]
                .find(p => (p.querySelector('.schema-form-property__label') || {}).innerText === label);
            const toggle = field && field.querySelector('[role=switch]');
            if (!toggle) return false;
            toggle.click();
            return true;
        })"""
        assert self.evaluate(f"{script}({json.dumps(label)})"), f"no switch labelled {label!r} in the form"

    def type_into_textarea(self, text: str) -> None:
        """Type ``text`` into the form's text area (as a user would: the framework sees an input event)."""
        script = """(text => {
            const area = document.querySelector('.p-modal textarea');
            if (!area) return false;
            area.focus();
            area.value = text;
            area.dispatchEvent(new Event('input', {bubbles: true}));
            return true;
        })"""
        assert self.evaluate(f"{script}({json.dumps(text)})"), "no text area in the form"

    def wait_for_switch(self, label: str, checked: str, timeout: float = 30.0) -> None:
        """Wait until the Resume form's switch ``label`` shows ``checked`` ("true"/"false"): the UI re-renders
        asynchronously after a click."""
        deadline = time.monotonic() + timeout
        while (state := self.resume_form().get(label, {}).get("checked")) != checked:
            if time.monotonic() > deadline:
                pytest.fail(f"switch {label!r} stayed {state!r}, expected {checked!r}")
            time.sleep(0.1)  # polling the rendered form, bounded by the deadline

    def resume_form(self) -> dict[str, dict[str, Any]]:
        """What the UI's Resume form shows, by field label: its description and toggle state."""
        script = """[...document.querySelectorAll('.p-modal .schema-form-property')].map(p => ({
            label: (p.querySelector('.schema-form-property__label') || {}).innerText || '',
            description: (p.querySelector('.schema-form-property__description') || {}).innerText || '',
            checked: (p.querySelector('[role=switch]') || {getAttribute: () => null}).getAttribute('aria-checked'),
        }))"""
        return {item["label"]: item for item in self.evaluate(script)}

    def close(self) -> None:
        self._socket.close()


@dataclass
class Browser:
    """A headless Chromium we started, with a fresh profile, reachable over DevTools on a loopback port."""

    process: subprocess.Popen[bytes]
    devtools_port: int
    pages: list[CdpPage] = field(default_factory=list)

    def open(self, url: str) -> CdpPage:
        response = httpx.put(f"http://127.0.0.1:{self.devtools_port}/json/new?{url}", timeout=10)
        response.raise_for_status()
        page = CdpPage(response.json()["webSocketDebuggerUrl"])
        page.call("Page.enable")
        self.pages.append(page)
        return page


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get by this fixture when it is missing."""
    return install_chromium()


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh --user-data-dir, making no outside connections; stopped by its PID."""
    profile = tmp_path / "chromium-profile"
    log = (tmp_path / "chromium.log").open("wb")
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    try:
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start: {(tmp_path / 'chromium.log').read_text()[-800:]}")
            time.sleep(0.05)  # polling for the file Chromium writes once DevTools listens
        instance = Browser(process, int(port_file.read_text().split()[0]))
        yield instance
        for page in instance.pages:
            page.close()
    finally:
        ServiceProcess("Chromium", process, "", tmp_path / "chromium.log").stop(timeout=10)
        log.close()


def stop_by_pid(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Stop a process we started by its PID (SIGTERM, then SIGKILL)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    ServiceProcess("process", process, "", log_path).stop(timeout=10)
