"""Security: least-privilege SAS as the pipeline hands them out, loopback-only services, SharedKey checked on
the wire, and no secret in anything a user or Prefect keeps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from batchpipe.errors import PipelineFailed
from flows.pipeline import SAS_MARGIN_SECONDS, top_words_pipeline

pytestmark = [pytest.mark.integration]
API = "api-version=2025-06-01"


def _status(method: str, url: str, data: bytes | None = None) -> int:
    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2023-11-03"} if method == "PUT" else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _split(url: str) -> tuple[str, str]:
    base, _, token = url.partition("?")
    return base, token


def _other(blob_url: str, sources: list[Path]) -> str:
    """A blob name in the same container that is not the one the SAS was made for."""
    name = blob_url.rsplit("/", 1)[1]
    return next(p.name for p in sources if p.name != name) if name in {p.name for p in sources} else sources[0].name


def _kept_run(stack: Any, sources: list[Path], out: Path) -> tuple[dict[str, Any], datetime]:
    started = datetime.now(UTC)
    summary = top_words_pipeline(
        inputs=[str(p) for p in sources], output_dir=str(out), approval="no", keep_containers=True
    )
    return summary, started


@pytest.mark.scenario(
    "Security",
    "the SAS a real run hands to the nodes (start task: node app; tasks: input, output container), probed "
    "against Azurite",
    "input/app SAS: read that one blob only (no write, list, delete, other blob); output SAS: create/write only "
    "(no read, list, delete); expiry ≤ run start + monitoring timeout + margin",
)
def test_the_sas_a_run_hands_out_are_least_privilege(
    stack: Any, inputs: Callable[..., list[Path]], observe: Callable[[str], None], tmp_path: Path
) -> None:
    sources = inputs(tmp_path / "in", 2)
    summary, started = _kept_run(stack, sources, tmp_path / "out")
    batch = stack.batch
    start_task = batch.get_pool(stack.pool_id).start_task
    app_url = start_task.resource_files[0].http_url
    task = next(iter(batch.list_tasks(summary["job_id"])))
    input_url = task.resource_files[0].http_url
    output_sas = next(e.value for e in task.environment_settings if e.name == "BATCHPIPE_OUTPUT_SAS")
    output_container = f"{stack.endpoints.storage.blob_endpoint}/{stack.names['BATCHPIPE_OUTPUT_CONTAINER']}"
    log_destination = task.output_files[0].destination.container.container_url
    assert log_destination == f"{output_container}?{output_sas}"  # the logs use the same write-only token

    checks: dict[str, tuple[int, int]] = {}
    for label, url in (("input", input_url), ("node app", app_url)):
        blob, token = _split(url)
        container = blob.rsplit("/", 1)[0]
        checks |= {
            f"{label}: read its blob": (_status("GET", url), 200),
            f"{label}: overwrite": (_status("PUT", url, b"x"), 403),
            f"{label}: delete": (_status("DELETE", url), 403),
            f"{label}: list container": (_status("GET", f"{container}?restype=container&comp=list&{token}"), 403),
            f"{label}: read another blob": (_status("GET", f"{container}/{_other(blob, sources)}?{token}"), 403),
            f"{label}: write the output container": (_status("PUT", f"{output_container}/x.txt?{token}", b"x"), 403),
        }
    existing = f"{output_container}/{Path(summary['outputs'][0]['file']).name}"
    checks |= {
        "output: create a blob": (_status("PUT", f"{output_container}/probe.txt?{output_sas}", b"x"), 201),
        "output: read an output": (_status("GET", f"{existing}?{output_sas}"), 403),
        "output: list": (_status("GET", f"{output_container}?restype=container&comp=list&{output_sas}"), 403),
        "output: delete an output": (_status("DELETE", f"{existing}?{output_sas}"), 403),
        "output: read an input": (_status("GET", f"{_split(input_url)[0]}?{output_sas}"), 403),
    }
    wrong = {name: got for name, (got, want) in checks.items() if got != want}
    assert not wrong, wrong

    limit = started + timedelta(seconds=float(os.environ["BATCHPIPE_MONITOR_TIMEOUT"]) + SAS_MARGIN_SECONDS + 60)
    permissions, expiries = {}, []
    for label, token in (("input", _split(input_url)[1]), ("node app", _split(app_url)[1]), ("output", output_sas)):
        fields = parse_qs(token)
        permissions[label] = fields["sp"][0]
        expiries.append(datetime.fromisoformat(fields["se"][0].replace("Z", "+00:00")))
    assert permissions == {"input": "r", "node app": "r", "output": "cw"}
    assert all(started < expiry <= limit for expiry in expiries)
    lifetime = max(expiries) - started
    observe(f"{len(checks)} probes, every one as expected: " + "; ".join(f"{k} → {g}" for k, (g, _) in checks.items()))
    observe(
        f"permissions {permissions}; expiry {lifetime.total_seconds() / 60:.0f} min after the start "
        f"(monitoring timeout {os.environ['BATCHPIPE_MONITOR_TIMEOUT']}s + {SAS_MARGIN_SECONDS}s margin)"
    )


@pytest.mark.scenario(
    "Security",
    "listening sockets of every service the session started (Azurite, local Batch services, `local_stack` as "
    "`batchpipe run` starts it, the Prefect API server); `python -m batch_emulator --host 0.0.0.0`",
    "all on 127.0.0.1; a non-loopback bind is refused unless --allow-remote",
)
def test_local_services_listen_on_loopback_only(
    stack: Any, procs: Any, observe: Callable[[str], None], tmp_path: Path
) -> None:
    from batchpipe.local import local_stack

    with local_stack(tmp_path / "state"):
        tree = procs.tree(os.getpid())
        sockets = procs.listening(list(tree))
    names = sorted({_service(tree[pid]) for pid in sockets})
    addresses = [a for found in sockets.values() for a in found]
    assert {"Azurite", "local Batch service", "Prefect API server"} <= set(names), names
    assert all(procs.loopback(a) for a in addresses), sockets
    refused = subprocess.run(
        [sys.executable, "-m", "batch_emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "refusing to listen on '0.0.0.0'" in refused.stderr
    observe(f"{len(addresses)} listening sockets of {len(sockets)} processes ({', '.join(names)}): all 127.0.0.1")
    observe(f"`--host 0.0.0.0`: exit 2, `{refused.stderr.strip().splitlines()[-1]}`")


def _service(command: str) -> str:
    if "azurite" in command:
        return "Azurite"
    if "batch_emulator" in command:
        return "local Batch service"
    if "prefect" in command or "uvicorn" in command:
        return "Prefect API server"
    return command.split(" ", 1)[0].rsplit("/", 1)[-1]


def _signed(method: str, url: str, key: str, account: str, body: bytes | None = None) -> dict[str, str]:
    """Headers the unmodified SDK's SharedKey policy puts on this request."""
    request = HttpRequest(method, url, content=body)
    if body is not None:
        request.headers["Content-Type"] = "application/json; odata=minimalmetadata"
        request.headers["Content-Length"] = str(len(body))
    BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(account, key)).on_request(
        PipelineRequest(request, PipelineContext(None))
    )
    return dict(request.headers)


@pytest.mark.scenario(
    "Security",
    "requests to the local Batch service whose SharedKey signature does not verify: wrong key, tampered path, "
    "tampered query, tampered ocp-date, unknown account, no Authorization",
    "every one refused (401/403), nothing created; the correctly signed request succeeds",
)
def test_batch_service_rejects_requests_whose_signature_does_not_verify(
    emulator: Any, stack: Any, observe: Callable[[str], None]
) -> None:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    base = emulator.url
    body = json.dumps(
        {"id": "forged-pool", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0,
         "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical",
         "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}
    ).encode()  # fmt: skip
    good = _signed("GET", f"{base}/pools?{API}", DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME)
    create = _signed("POST", f"{base}/jobs?{API}", DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME, body)
    wrong_key = _signed("POST", f"{base}/pools?{API}", "d3Jvbmcta2V5", DEFAULT_ACCOUNT_NAME, body)
    stranger = _signed("POST", f"{base}/pools?{API}", DEFAULT_ACCOUNT_KEY, "someoneelse", body)
    attempts = {
        "correctly signed GET /pools": httpx.get(f"{base}/pools?{API}", headers=good),
        "wrong key": httpx.post(f"{base}/pools?{API}", headers=wrong_key, content=body),
        "signed for /jobs, sent to /pools": httpx.post(f"{base}/pools?{API}", headers=create, content=body),
        "query changed after signing": httpx.get(f"{base}/pools?{API}&$filter=id%20eq%20%27x%27", headers=good),
        "ocp-date changed after signing": httpx.get(
            f"{base}/pools?{API}", headers=good | {"ocp-date": "Mon, 01 Jan 2024 00:00:00 GMT"}
        ),
        "unknown account": httpx.post(f"{base}/pools?{API}", headers=stranger, content=body),
        "no Authorization": httpx.post(
            f"{base}/pools?{API}", headers={k: v for k, v in wrong_key.items() if k != "Authorization"}, content=body
        ),
    }
    codes = {name: (r.status_code, r.json().get("code") if r.content else None) for name, r in attempts.items()}
    assert codes.pop("correctly signed GET /pools")[0] == 200
    assert all(status in (401, 403) for status, _ in codes.values()), codes
    assert "forged-pool" not in {p.id for p in stack.batch.list_pools()}
    with pytest.raises(HttpResponseError) as sdk:  # and the unmodified SDK with a wrong key
        list(stack.batch.__class__(base, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, "d3Jvbmc=")).list_pools())
    assert (sdk.value.status_code, sdk.value.error.code) == (403, "AuthenticationFailed")
    observe("; ".join(f"{name} → {status} {code}" for name, (status, code) in codes.items()))
    observe("the correctly signed request → 200; the SDK with a wrong key → 403 AuthenticationFailed; no pool created")


# --- secrets ------------------------------------------------------------------------------------------------------

_LEAK_PATTERNS = {
    "SAS signature": re.compile(r"(?i)[?&]sig=(?!REDACTED)[A-Za-z0-9%+/=]{8,}"),
    "account key in a connection string": re.compile(r"(?i)AccountKey=(?!REDACTED)[A-Za-z0-9+/=]{8,}"),
    "SharedKey authorization": re.compile(r"(?i)SharedKey\s+[^:\s]+:(?!REDACTED)[A-Za-z0-9+/=]{8,}"),
    "Bearer token": re.compile(r"(?i)Bearer\s+(?!REDACTED)[A-Za-z0-9._~+/=-]{20,}"),
}


def _prefect_records() -> Iterator[tuple[str, str]]:
    """Every log, artifact, flow run (state message, parameters) and task run state message the API keeps."""
    from prefect import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        for reader, label in (
            (client.read_logs, "log"),
            (client.read_artifacts, "artifact"),
            (client.read_flow_runs, "flow run"),
            (client.read_task_runs, "task run"),
        ):
            offset = 0
            while True:
                page = reader(limit=200, offset=offset)
                for item in page:
                    yield label, _text_of(label, item)
                if len(page) < 200:
                    break
                offset += len(page)


def _result_files() -> list[Path]:
    """Files Prefect persisted (task results, cache records) under its home and its result storage."""
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    roots = {Path(str(PREFECT_HOME.value())), Path(str(PREFECT_LOCAL_STORAGE_PATH.value()))}
    return sorted(
        {p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and ".db" not in p.name}
    )


def _text_of(label: str, item: Any) -> str:
    if label == "log":
        return str(item.message)
    if label == "artifact":
        return f"{item.key} {item.description} {json.dumps(item.data, default=str)}"
    state = item.state.message if item.state else ""
    parameters = json.dumps(getattr(item, "parameters", {}), default=str)
    return f"{item.name} {state} {parameters}"


@pytest.mark.scenario(
    "Security",
    "after a full run, a failed-task run, a start-task failure and a wrong-key CLI run (plus every run of the "
    "session before): all Prefect logs, artifacts, flow/task run states and parameters read back from the API, "
    "all CLI output and error messages, the result storage",
    "no account key, SAS signature or token anywhere",
)
def test_no_secret_in_logs_artifacts_cli_output_or_errors(
    stack: Any,
    faults: Callable[[str], None],
    azurite: Any,
    inputs: Callable[..., list[Path]],
    api_cli: Any,
    azure_target: tuple[dict[str, str], Any],
    transcripts: list[tuple[str, str]],
    observe: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY

    sources = inputs(tmp_path / "in", 2)
    secrets = {"Azurite account key": azurite.account_key, "Batch account key": DEFAULT_ACCOUNT_KEY}

    summary, _ = _kept_run(stack, sources, tmp_path / "ok")  # 1. a full run
    urls = [stack.batch.get_pool(stack.pool_id).start_task.resource_files[0].http_url]
    for task in stack.batch.list_tasks(summary["job_id"]):
        urls += [task.resource_files[0].http_url, *(f"?{e.value}" for e in task.environment_settings)]
    signatures = {parse_qs(urlsplit(url).query).get("sig", [""])[0] for url in urls} - {""}
    secrets |= {f"SAS signature {number}": value for number, value in enumerate(sorted(signatures))}
    assert len(signatures) == 1 + len(sources) + 1  # node app, each input, the output container
    stack.cleanup()

    faults("task_fail=topn-doc0-*:7")  # 2. a failed task: its stderr tail goes to the log and an artifact
    with pytest.raises(PipelineFailed) as failed_task:
        top_words_pipeline(inputs=[str(p) for p in sources], output_dir=str(tmp_path / "f1"), approval="no")
    stack.cleanup()
    faults(f"starttask_fail={stack.pool_id}")  # 3. a failed start task
    with pytest.raises(PipelineFailed) as failed_start:
        top_words_pipeline(inputs=[str(p) for p in sources], output_dir=str(tmp_path / "f2"), approval="no")
    faults("")
    transcripts += [("exception", str(failed_task.value)), ("exception", str(failed_start.value))]
    env, _ = azure_target  # 4. the CLI with a wrong key
    env["BATCHPIPE_BATCH_ACCOUNT_KEY"] = secrets["wrong key"] = "c2VjcmV0LWJ1dC13cm9uZy1rZXktZm9yLXRoZS1zY2Fu"
    (api_cli.workdir / "in").mkdir()
    (api_cli.workdir / "in" / "a.txt").write_text("a b a\n", "utf-8")
    assert api_cli.run("run", "--input", "in", "--approve", "yes", env=env).returncode == 4

    scanned = list(_prefect_records())
    scanned += [(f"CLI/exception: {label}", text) for label, text in transcripts]
    scanned += [(f"result file {p.name}", p.read_bytes().decode("latin-1")) for p in _result_files()]
    forms = {name: {value, unquote(value)} for name, value in secrets.items() if len(value) >= 8}
    leaks = [
        f"{name} in {where}"
        for where, text in scanned
        for name, values in forms.items()
        if any(v in text for v in values)
    ]
    leaks += [f"{name} in {where}" for where, text in scanned for name, rx in _LEAK_PATTERNS.items() if rx.search(text)]
    assert not leaks, leaks[:20]
    kinds = {}
    for where, _ in scanned:
        kind = where.split(":")[0].split(" ")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    observe(
        f"scanned {len(scanned)} records ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) for "
        f"{len(forms)} secret values and 4 secret patterns: none found"
    )
    observe("failure messages scanned: " + "; ".join(f"`{str(e.value)[:90]}...`" for e in (failed_task, failed_start)))


@pytest.mark.scenario(
    "Security",
    "the local Batch service's own log (`<state>/batch/emulator.log`) after a run",
    "no SAS signature (the nodes' downloads and uploads carry SAS URLs)",
)
def test_local_batch_service_log_has_no_sas_signature(
    stack: Any, emulator: Any, inputs: Callable[..., list[Path]], observe: Callable[[str], None], tmp_path: Path
) -> None:
    top_words_pipeline(inputs=[str(p) for p in inputs(tmp_path / "in", 1)], output_dir=str(tmp_path), approval="yes")
    found = _LEAK_PATTERNS["SAS signature"].findall(emulator.process.log_path.read_text("utf-8", "replace"))
    assert not found, f"{len(found)} SAS signatures in the log"
    observe(f"no SAS signature in the {emulator.process.log_path.stat().st_size:,}-byte log after a run")
