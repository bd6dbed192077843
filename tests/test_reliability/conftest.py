"""Reliability suite: services whose faults a test can change, per-test pipeline settings, `batchpipe run` as a
subprocess, and the matrix of scenarios written to docs/reliability.md.

Every test is one scenario (``@pytest.mark.scenario(area, case, expected)``) and reports what it saw with the
``observe`` fixture. With ``BATCHPIPE_WRITE_RELIABILITY_DOC=1`` the session writes the matrix at its end.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import ipaddress
import os
import re
import signal
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient

from batchpipe.local import LocalEndpoints
from batchpipe.services import PROJECT_ROOT, AzuriteInfo, ServiceProcess, prefect_environment
from batchpipe.services import start_batch_emulator as launch_batch_emulator
from tests.polling import wait_until

T = TypeVar("T")
DOC_ENV = "BATCHPIPE_WRITE_RELIABILITY_DOC"
DOC_PATH = PROJECT_ROOT / "docs" / "reliability.md"
AREAS = ("Faults", "Bad input", "Security")
BATCHPIPE = Path(sys.executable).parent / "batchpipe"

# --- the matrix ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario: what was injected or given, what must happen, what the run observed."""

    area: str
    case: str
    expected: str
    observed: list[str] = field(default_factory=list)
    result: str = "not run"


@dataclass
class Matrix:
    """The scenarios of this session, in collection order."""

    rows: dict[str, Row] = field(default_factory=dict)
    enabled: bool = False
    transcripts: list[tuple[str, str]] = field(default_factory=list)

    def markdown(self, seconds: float, previous: str = "") -> str:
        """The matrix of this session; rows of ``previous`` (the doc as it was) that this session did not run are
        carried over, marked as from an earlier session, so that a partial run updates the doc without losing rows."""
        carried = {
            area: [line for case, line in rows if case not in {_cell(r.case) for r in self.rows.values()}]
            for area, rows in _previous_rows(previous).items()
        }
        kept = sum(len(rows) for rows in carried.values())
        passed = sum(r.result == "pass" for r in self.rows.values()) + sum(
            line.endswith("| pass (earlier session) |") for rows in carried.values() for line in rows
        )
        lines = [
            "# Reliability and security matrix",
            "",
            "Generated from the test run of `tests/test_reliability/` "
            f"(`{DOC_ENV}=1 .venv/bin/pytest tests/test_reliability -m ''`, slow scenarios included); "
            "do not edit by hand.",
            "Each row is one test: the fault injected or the input given (Azurite and the local Batch service, "
            "real SDKs, real Prefect), what the pipeline must do, and what the run observed.",
            "",
            f"{passed} of {len(self.rows) + kept} scenarios passed; known bugs are marked xfail. "
            + (
                f"The last session ({seconds:.0f}s) ran {len(self.rows)} of them; the {kept} others are carried over "
                "from earlier sessions (marked so)."
                if kept
                else f"Session {seconds:.0f}s."
            ),
        ]
        for area in AREAS:
            rows = [row for row in self.rows.values() if row.area == area]
            if not rows and not carried.get(area):
                continue
            lines += ["", f"## {area}", "", "| Fault or input | Expected | Observed | Result |", "|---|---|---|---|"]
            for row in rows:
                cells = (row.case, row.expected, "<br>".join(row.observed) or "(nothing recorded)", row.result)
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines += carried.get(area, [])
        return "\n".join(lines) + "\n"


def _previous_rows(text: str) -> dict[str, list[tuple[str, str]]]:
    """The rows of a matrix document by area: (the escaped case cell, the whole line, its result marked as from
    an earlier session)."""
    rows: dict[str, list[tuple[str, str]]] = {}
    area = None
    for line in text.splitlines():
        if line.startswith("## "):
            area = line[3:].strip()
        elif area in AREAS and line.startswith("| ") and not line.startswith(("| Fault or input |", "|---")):
            case = re.split(r"(?<!\\) \| ", line[2:], maxsplit=1)[0]
            marked = line if line.endswith("(earlier session) |") else line[: -len(" |")] + " (earlier session) |"
            rows.setdefault(area, []).append((case, marked))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


MATRIX = Matrix()
_SESSION_START = time.monotonic()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(area, case, expected): a row of docs/reliability.md")
    MATRIX.enabled = os.environ.get(DOC_ENV) == "1"  # read before the autouse fixture scrubs BATCHPIPE_*


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("scenario")
    if marker is not None:
        area, case, expected = marker.args
        assert area in AREAS, f"unknown area {area!r}"
        MATRIX.rows[item.nodeid] = Row(area, case, expected)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    row = MATRIX.rows.get(item.nodeid)
    if row is not None and (report.when == "call" or report.failed):
        xfail = item.get_closest_marker("xfail")
        if hasattr(report, "wasxfail"):
            if report.skipped:
                row.result = "known bug (xfail)"
            elif xfail is not None and xfail.kwargs.get("strict") is False:
                row.result = "pass this time (known intermittent bug, xfail)"
            else:
                row.result = "**XPASS: remove the xfail**"
        elif report.passed:
            row.result = "pass"
        elif report.skipped:
            row.result = "skipped"
        else:
            row.result = "**FAIL**"
            if call.excinfo is not None:
                first = str(call.excinfo.value).strip().splitlines()
                row.observed.append(f"test failed: {call.excinfo.typename}: {first[0] if first else ''}"[:300])
    return report  # type: ignore[return-value]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if MATRIX.enabled and MATRIX.rows:
        previous = DOC_PATH.read_text("utf-8") if DOC_PATH.exists() else ""
        DOC_PATH.write_text(MATRIX.markdown(time.monotonic() - _SESSION_START, previous), "utf-8")


@pytest.fixture
def observe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], None]:
    """Record what this scenario observed (temporary paths are shortened to ``<tmp>``)."""
    row = MATRIX.rows.get(request.node.nodeid)
    base = str(tmp_path_factory.getbasetemp())

    def add(text: str) -> None:
        if row is not None:
            row.observed.append(text.replace(base, "<tmp>"))

    return add


@pytest.fixture(scope="session")
def transcripts() -> list[tuple[str, str]]:
    """Everything users saw in this session (CLI output, error messages), for the secrets scan."""
    return MATRIX.transcripts


# --- waiting --------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """:func:`tests.polling.wait_until` with a minute's timeout and a slower poll."""
    return wait_until(condition, timeout=timeout, what=what, interval=0.05)


@pytest.fixture(scope="session")
def wait() -> Callable[..., Any]:
    """:func:`wait_for` for test modules (which cannot import this conftest)."""
    return wait_for


# --- inputs and outputs ---------------------------------------------------------------------------------------


def write_inputs(directory: Path, count: int, prefix: str = "doc") -> list[Path]:
    """``count`` small UTF-8 files with distinct, unambiguous top words."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = directory / f"{prefix}{number}.txt"
        path.write_text(f"w{number % 7} " * 4 + f"v{number % 5}, " * 3 + f"u{number}! u{number}.\n", "utf-8")
        paths.append(path)
    return paths


def expected_top_words(path: Path, n: int) -> list[tuple[str, int]]:
    """The tutorial's counting, written out independently: read all, split, strip ASCII punctuation."""
    words = [token.strip(string.punctuation) for token in path.read_text("utf-8").split()]
    return Counter(words).most_common(n)


def verify_outputs(out_dir: Path, sources: list[Path], n: int, job_id: str, pool_id: str) -> int:
    """Every source has its output, with the right top words and ids, and nothing else is there."""
    expected_names = {f"{s.stem}_OUTPUT{s.suffix}" for s in sources}
    assert {p.name for p in out_dir.iterdir()} == expected_names  # no partial or stray file
    for source in sources:
        lines = (out_dir / f"{source.stem}_OUTPUT{source.suffix}").read_text("utf-8").split("\n")
        top = expected_top_words(source, n)
        assert lines[2 : 2 + len(top)] == [f"{w}:\t{c}" for w, c in top], source.name
        assert f"Job:  {job_id}" in lines
        assert f"Pool: {pool_id}" in lines
    return len(sources)


@pytest.fixture
def inputs() -> Callable[..., list[Path]]:
    """:func:`write_inputs` for test modules."""
    return write_inputs


@pytest.fixture
def check_outputs() -> Callable[..., int]:
    """:func:`verify_outputs` for test modules."""
    return verify_outputs


def one_task_per_input(batch: BatchClient, job_id: str, sources: list[Path]) -> list[Any]:
    """The job's tasks: exactly one per input, with the input's task id (no duplicate, none missing)."""
    from batchpipe.naming import resolve_inputs, task_id_for

    tasks = list(batch.list_tasks(job_id))
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids))
    assert set(ids) == {task_id_for(item) for item in resolve_inputs([str(s) for s in sources])}
    return tasks


@pytest.fixture
def job_tasks() -> Callable[..., list[Any]]:
    """:func:`one_task_per_input` for test modules."""
    return one_task_per_input


# --- processes and sockets ------------------------------------------------------------------------------------


def process_tree(root: int) -> dict[int, str]:
    """Every descendant of ``root`` (pid → command line), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found[child] = command_line(child)
            pending.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{'.'.join(str(b) for b in raw[::-1])}:{int(port, 16)}"
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]  # /proc prints IPv6 as four host-order words
    return f"[{ipaddress.IPv6Address(b''.join(words))}]:{int(port, 16)}"


def listening_sockets(pids: list[int]) -> dict[int, list[str]]:
    """The TCP addresses each of ``pids`` listens on (from /proc/<pid>/fd and /proc/net/tcp{,6})."""
    listening: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening[fields[9]] = _address(fields[1])
    result: dict[int, list[str]] = {}
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes = [link[8:-1] for link in links if link.startswith("socket:[")]
        addresses = sorted(listening[i] for i in inodes if i in listening)
        if addresses:
            result[pid] = addresses
    return result


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (``host:port`` or ``[host]:port``)."""
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def service_name(command: str) -> str:
    """A readable name for a process of a run's tree, from its command line."""
    for marker, name in (
        ("azurite", "Azurite"),
        ("batch_emulator", "local Batch service"),
        ("uvicorn", "Prefect API server"),
    ):
        if marker in command:
            return name
    return command.split(" ", 1)[0].rsplit("/", 1)[-1]


@pytest.fixture
def procs() -> Any:
    """/proc helpers for test modules: ``tree``, ``cmdline``, ``running``, ``listening``, ``loopback``, ``name``."""
    from types import SimpleNamespace

    return SimpleNamespace(
        tree=process_tree,
        cmdline=command_line,
        running=is_running,
        listening=listening_sockets,
        loopback=is_loopback,
        name=service_name,
    )


# --- services -------------------------------------------------------------------------------------------------


class Emulator:
    """A local Batch service child process whose faults can be changed while it runs; restartable in place."""

    def __init__(self, data_dir: Path, faults: str | None = None) -> None:
        self.data_dir = data_dir
        self.process: ServiceProcess = launch_batch_emulator(data_dir, faults=faults)

    @property
    def url(self) -> str:
        return self.process.url

    def set_faults(self, spec: str) -> None:
        response = httpx.put(f"{self.url}/_emulator/faults", json={"spec": spec}, timeout=10)
        assert response.status_code == 200, response.text

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_emulator/stats", timeout=10).json())

    def restart(self, faults: str | None = None) -> None:
        """Stop (SIGTERM: it saves its state) and start again on the same port and data directory."""
        port = self.url.rsplit(":", 1)[1]
        self.process.stop()
        self.process = launch_batch_emulator(self.data_dir, faults=faults, extra_args=["--port", port])

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The suite's local Batch service; tests set its faults through ``PUT /_emulator/faults``."""
    service = Emulator(tmp_path_factory.mktemp("batch"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def faults(emulator: Emulator) -> Iterator[Callable[[str], None]]:
    """Set the suite emulator's fault spec for this test; cleared afterwards."""
    yield emulator.set_faults
    emulator.set_faults("")


def batch_client(endpoints: LocalEndpoints, key: str | None = None) -> BatchClient:
    """An unmodified azure-batch client for the local Batch service."""
    credential = AzureNamedKeyCredential(endpoints.batch_account_name, key or endpoints.batch_account_key)
    return BatchClient(endpoint=endpoints.batch_url, credential=credential)


@dataclass
class Stack:
    """What an in-process pipeline run talks to, with clients to inspect it afterwards."""

    endpoints: LocalEndpoints
    names: dict[str, str]
    workdir: Path

    @property
    def batch(self) -> BatchClient:
        return batch_client(self.endpoints)

    @property
    def blobs(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.endpoints.storage.connection_string)

    @property
    def pool_id(self) -> str:
        return self.names["BATCHPIPE_POOL_ID"]

    def containers(self) -> list[str]:
        return [self.names[f"BATCHPIPE_{kind}_CONTAINER"] for kind in ("APPLICATION", "INPUT", "OUTPUT")]

    def existing_containers(self) -> set[str]:
        return {c.name for c in self.blobs.list_containers()} & set(self.containers())

    def pool_exists(self) -> bool:
        return self.pool_id in {p.id for p in self.batch.list_pools()}

    def jobs_on_pool(self) -> list[str]:
        return [j.id for j in self.batch.list_jobs() if j.pool_info and j.pool_info.pool_id == self.pool_id]

    def cleanup(self) -> None:
        """Delete what a failed or kept run left (so quotas and later tests start clean)."""
        batch = self.batch
        for job_id in self.jobs_on_pool():
            batch.begin_delete_job(job_id, polling_interval=0.1).result()
        if self.pool_exists():
            batch.begin_delete_pool(self.pool_id, polling_interval=0.1).result()
        for name in self.existing_containers():
            self.blobs.delete_container(name)


def unique_names(nodeid: str) -> dict[str, str]:
    """Containers and pool of one test's own (tests share the services)."""
    suffix = hashlib.sha256(nodeid.encode()).hexdigest()[:8]
    return {
        "BATCHPIPE_APPLICATION_CONTAINER": f"app-{suffix}",
        "BATCHPIPE_INPUT_CONTAINER": f"in-{suffix}",
        "BATCHPIPE_OUTPUT_CONTAINER": f"out-{suffix}",
        "BATCHPIPE_POOL_ID": f"pool-{suffix}",
    }


FAST = {
    "BATCHPIPE_POLL_INTERVAL": "0.2",
    "BATCHPIPE_MAX_POLL_INTERVAL": "0.5",
    "BATCHPIPE_MONITOR_TIMEOUT": "180",
    "BATCHPIPE_APPROVAL_TIMEOUT": "60",
    "BATCHPIPE_TASK_SLOTS_PER_NODE": "4",
}


def make_stack(
    endpoints: LocalEndpoints, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> Stack:
    """Point this process's BATCHPIPE_* settings at ``endpoints`` with names of the test's own."""
    names = unique_names(request.node.nodeid)
    for name, value in (endpoints.environment() | FAST | names).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    return Stack(endpoints, names, workdir)


@pytest.fixture
def stack(
    prefect_harness: None,
    azurite: AzuriteInfo,
    emulator: Emulator,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Settings for an in-process run against the shared Azurite and the suite emulator; cleaned up after."""
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    endpoints = LocalEndpoints(azurite, emulator.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    result = make_stack(endpoints, request, monkeypatch, tmp_path_factory.mktemp("workdir"))
    yield result
    emulator.set_faults("")
    result.cleanup()


@pytest.fixture(scope="module")
def own_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An Azurite of this module's own, restartable on its port and location."""
    service = Azurite(tmp_path_factory.mktemp("own-azurite"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def own_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A local Batch service of this module's own, restartable on its port and data directory."""
    service = Emulator(tmp_path_factory.mktemp("own-batch"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def own_stack(
    prefect_harness: None,
    own_azurite: Azurite,
    own_emulator: Emulator,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Settings for an in-process run against this module's own (restartable) services."""
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    endpoints = LocalEndpoints(own_azurite.info, own_emulator.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    result = make_stack(endpoints, request, monkeypatch, tmp_path_factory.mktemp("workdir"))
    yield result
    own_emulator.set_faults("")
    result.cleanup()


def read_flow_logs(flow_run_id: Any, *, until: str | None = None, timeout: float = 30) -> list[str]:
    """The flow run's log messages (its tasks' included) as stored by the Prefect API.

    Args:
        flow_run_id: the flow run.
        until: wait until a message containing this text has arrived (logs are shipped in batches).
        timeout: how long to wait for it.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)

    def fetch() -> list[str]:
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while True:
                page = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                    limit=200,
                    offset=len(messages),
                )
                messages += [log.message for log in page]
                if len(page) < 200:
                    return messages

    if until is None:
        return fetch()
    return wait_for(lambda: (logs := fetch()) and any(until in m for m in logs) and logs, timeout=timeout, what=until)


@pytest.fixture
def flow_logs(prefect_harness: None) -> Callable[..., list[str]]:
    """:func:`read_flow_logs` for test modules."""
    return read_flow_logs


@pytest.fixture
def azure_target(
    azurite: AzuriteInfo, emulator: Emulator, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Stack]]:
    """`--target azure` settings pointing at the suite's services (names of the test's own), and a Stack to
    inspect what a run created; everything is deleted afterwards."""
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    endpoints = LocalEndpoints(azurite, emulator.url, DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY)
    names = unique_names(request.node.nodeid)
    env = endpoints.environment() | FAST | names | {"BATCHPIPE_TARGET": "azure"}
    inspect = Stack(endpoints, names, tmp_path)
    yield env, inspect
    inspect.cleanup()


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness: None) -> str:
    """The session's Prefect API, so that `batchpipe run` subprocesses log where the tests can read."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


# --- Azurite on a fixed port (a restart must come back where the SAS URLs point) --------------------------------

_AZURITE_LISTENS = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux SIGTERMs the child when the test process dies, so a killed session leaves no Azurite behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class Azurite:
    """An Azurite child process on a location that survives restarts, restarted on the same port."""

    location: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def info(self) -> AzuriteInfo:
        return AzuriteInfo(blob_endpoint=f"http://127.0.0.1:{self.port}/devstoreaccount1", location=self.location)

    def start(self) -> None:
        from batchpipe.services import azurite_executable

        log = self.location / f"azurite-{time.monotonic_ns()}.log"
        self.location.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                [
                    str(azurite_executable()),
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--location",
                    str(self.location),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(self.port),
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.location,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - a plain prctl, no locks taken
            )
        match = wait_for(lambda: _AZURITE_LISTENS.search(log.read_text("utf-8", "replace")), what="Azurite")
        self.port = int(match.group(1))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


# --- `batchpipe run` as a subprocess -----------------------------------------------------------------------------


@dataclass
class CliResult:
    """A finished `batchpipe` command."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_line(self) -> str:
        """The last non-empty line on stderr (the one-line error)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


@dataclass
class Cli:
    """Runs `batchpipe` in ``workdir`` with a clean, offline environment."""

    workdir: Path
    prefect_home: Path
    transcripts: list[tuple[str, str]]
    api_url: str | None = None

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHPIPE_", "AZURE_", "PREFECT_"))}
        env |= prefect_environment(self.prefect_home)
        env["PYTHONUNBUFFERED"] = "1"
        if self.api_url:
            env["PREFECT_API_URL"] = self.api_url
        return env | (extra or {})

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> CliResult:
        return self.command([str(BATCHPIPE), *args], env=env, timeout=timeout)

    def start(self, *args: str, env: dict[str, str] | None = None, new_session: bool = False) -> subprocess.Popen[str]:
        """Start `batchpipe` without waiting; stdout and stderr merged into one text pipe (``new_session``: in a
        session of its own, like a shell job)."""
        return subprocess.Popen(
            [str(BATCHPIPE), *args],
            cwd=self.workdir,
            env=self.environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=new_session,
        )

    def command(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 240) -> CliResult:
        started = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        result = CliResult(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.transcripts.append((f"batchpipe {' '.join(argv[1:])[:80]}", done.stdout + done.stderr))
        return result


@pytest.fixture(scope="session")
def cli_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the session's `batchpipe` processes: its database is migrated once (the first run's
    temporary Prefect API does it, under the home's start lock), not by every test."""
    return tmp_path_factory.mktemp("cli-prefect-home")


@pytest.fixture
def cli(tmp_path: Path, transcripts: list[tuple[str, str]], cli_prefect_home: Path) -> Cli:
    """`batchpipe` in a fresh working directory; nothing from the test process's settings leaks in."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(workdir, cli_prefect_home, transcripts)


@pytest.fixture
def api_cli(cli: Cli, prefect_api_url: str) -> Cli:
    """`batchpipe` whose flow runs log to the session's Prefect API (no temporary server per process)."""
    cli.api_url = prefect_api_url
    return cli


# --- `batchpipe run` watched live: markers in its output, its process tree, signals ---------------------------


class LiveRun:
    """A `batchpipe run` subprocess in a session of its own (like a shell job), its output collected as it comes.

    ``interrupt`` signals its whole process group, as a terminal's Ctrl-C does; services that share the group
    would get the signal too.
    """

    def __init__(self, cli: Cli, args: list[str], env: dict[str, str] | None = None) -> None:
        self.cli = cli
        self.args = args
        self.lines: list[str] = []
        self.process = cli.start(*args, env=env, new_session=True)
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        self.tree: dict[int, str] = {}
        self.signalled_at: float | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_marker(self, marker: str, timeout: float = 240) -> None:
        """Wait until ``marker`` shows in the output (fails the test if the run ends first)."""
        wait_for(lambda: marker in self.text() or self.process.poll() is not None, timeout=timeout, what=marker)
        assert marker in self.text(), f"the run ended before {marker!r}:\n{self.text()[-3000:]}"

    def snapshot(self) -> dict[int, str]:
        """Record the run's process tree now (its services)."""
        self.tree = process_tree(self.process.pid)
        return self.tree

    def services(self) -> list[str]:
        """The names of the processes in the recorded tree (see :func:`service_name`)."""
        return sorted({service_name(command) for command in self.tree.values()})

    def service_pid(self, marker: str) -> int:
        """The PID of the run's child whose command line contains ``marker`` (``azurite``, ``batch_emulator``)."""
        found = [pid for pid, cmd in self.snapshot().items() if marker in cmd]
        assert found, f"no {marker} under the run: {self.tree}"
        return found[0]

    def kill_service(self, marker: str) -> int:
        """SIGKILL the run's service whose command line contains ``marker``; return its PID."""
        pid = self.service_pid(marker)
        self.signalled_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        return pid

    def send(self, signum: int, *, group: bool = False) -> None:
        self.snapshot()
        self.signalled_at = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def finish(self, timeout: float = 240) -> CliResult:
        """Wait for the exit; the result's ``seconds`` count from the signal when one was sent."""
        started = self.signalled_at or time.monotonic()
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(30)
        seconds = time.monotonic() - started
        self._pump.join(30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        text = self.text()
        self.cli.transcripts.append((f"batchpipe {' '.join(self.args)[:80]}", text))
        return CliResult(self.args, self.process.returncode, text, text, seconds)

    def leftovers(self, timeout: float = 15) -> dict[int, str]:
        """The recorded tree's processes still running after ``timeout`` (none is the goal); they are stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(is_running(pid) for pid in self.tree):
            time.sleep(0.1)  # polling /proc for processes that are not our children, bounded by the deadline
        left = {pid: cmd for pid, cmd in self.tree.items() if is_running(pid)}
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left


def slow_down_nodes(state_dir: Path) -> None:
    """Nodes that take ten minutes to allocate: a run that reached monitoring stays there (no task runs)."""
    ready = state_dir / "batch" / "emulator.ready"
    url = wait_for(lambda: ready.exists() and ready.read_text().strip(), timeout=180, what="the local Batch service")
    response = httpx.put(f"{url}/_emulator/faults", json={"spec": "slow_allocation=600s"}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def live(cli: Cli) -> Iterator[Callable[..., LiveRun]]:
    """Start `batchpipe <args>` watched live (see :class:`LiveRun`)."""
    started: list[LiveRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> LiveRun:
        run = LiveRun(cli, list(args), env)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(30)


@pytest.fixture
def nodes_slowed() -> Callable[[Path], None]:
    """:func:`slow_down_nodes` for test modules."""
    return slow_down_nodes
