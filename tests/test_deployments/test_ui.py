"""The Prefect UI in headless Chromium: a finished run's results artifact, and approval through the Resume form.

Screenshots go to the test's temporary directory; with DOCS_SCREENSHOTS=1 they also replace docs/images/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from batchpipe.services import PROJECT_ROOT
from tasks.cleanup import CleanupApproval

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.integration]
DEPLOYMENT = "batchpipe/daily"
SAMPLES = PROJECT_ROOT / "samples"
DOCS_IMAGES = PROJECT_ROOT / "docs" / "images"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _keep_screenshot(shot: Path) -> None:
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGES / shot.name)


def _task_run(api: Any, flow_run_id: str, name: str) -> dict[str, Any]:
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "task_runs": {"name": {"like_": name}}}
    [task_run] = api.post("/task_runs/filter", body)
    return dict(task_run)


def test_the_ui_shows_the_results_artifact_of_a_finished_run(
    deployment_stack: Any, triggered_run: Any, browser: Any, tmp_path: Path
) -> None:
    page = browser.open(f"{deployment_stack.server.ui_url}/runs/flow-run/{triggered_run.run_id}")
    page.wait_for_text(triggered_run.run["name"], "Completed")
    page.click_text("Artifacts")
    page.wait_for_text("batchpipe-results", "batchpipe-summary")
    page.click_text("batchpipe-results")

    harbour_top = deployment_stack.tutorial_top_words(SAMPLES / "harbour.txt", triggered_run.num_words)
    cells = ", ".join(f"{word} ({count})" for word, count in harbour_top)
    text = page.wait_for_text("harbour_OUTPUT.txt", cells)
    assert all(f"{p.stem}_OUTPUT.txt" in text for p in triggered_run.samples)
    _keep_screenshot(page.screenshot(tmp_path / "ui-results-artifact.png"))

    # The monitoring step's progress artifact, on its task run's page, finished at 100%.
    monitor = _task_run(deployment_stack.api, triggered_run.run_id, "monitor-tasks")
    page.goto(f"{deployment_stack.server.ui_url}/runs/task-run/{monitor['id']}")
    page.wait_for_text(monitor["name"], "Completed")
    page.click_text("Artifacts")
    page.wait_for_text("PROGRESS", "Tasks completed in job")
    page.click_text("PROGRESS")
    page.wait_for_text("100%")


def test_the_ui_shows_the_failed_tasks_artifact_of_a_failed_run(
    deployment_stack: Any, failed_run: Any, browser: Any, tmp_path: Path
) -> None:
    page = browser.open(f"{deployment_stack.server.ui_url}/runs/flow-run/{failed_run.run_id}")
    page.wait_for_text(failed_run.run["name"], "Failed")
    # The flow's last log line (its failure) is at the end of a long list the UI loads as it is scrolled.
    page.wait_for_text("1 task(s) failed", scroll=True)
    # The monitoring step writes it, so it is on that task run's page (the flow run's tab lists its own artifacts).
    monitor = _task_run(deployment_stack.api, failed_run.run_id, "monitor-tasks")
    page.goto(f"{deployment_stack.server.ui_url}/runs/task-run/{monitor['id']}")
    page.wait_for_text(monitor["name"], "Completed")
    page.click_text("Artifacts")
    page.wait_for_text("batchpipe-failed-tasks", "PROGRESS")
    page.click_text("batchpipe-failed-tasks")

    page.wait_for_text("Failed tasks of job", "topn-doomed", "exit code 3", "stderr (tail)")
    _keep_screenshot(page.screenshot(tmp_path / "ui-failed-tasks.png"))


def test_the_deployment_run_form_offers_each_typed_parameter(
    deployment_stack: Any, browser: Any, tmp_path: Path
) -> None:
    deployment = deployment_stack.api.deployment(DEPLOYMENT)
    page = browser.open(f"{deployment_stack.server.ui_url}/deployments/deployment/{deployment['id']}/run")
    descriptions = [p["description"] for p in deployment["parameter_openapi_schema"]["properties"].values()]
    # Markdown in the descriptions (``wait``) renders as code, so compare their plain start.
    page.wait_for_text("Parameters", *deployment["parameters"], *(d.split("``")[0] for d in descriptions))

    approval = page.evaluate("[...document.querySelectorAll('select')].map(s => [...s.options].map(o => o.value))")
    assert ["ask", "wait", "yes", "no"] in approval  # a drop-down, not a free text field
    assert page.evaluate("[...document.querySelectorAll('textarea, input')].some(e => e.value === 'samples')")
    _keep_screenshot(page.screenshot(tmp_path / "ui-custom-run.png", height=1520))


def test_approval_from_the_ui_resume_form_is_followed(deployment_stack: Any, browser: Any, tmp_path: Path) -> None:
    api = deployment_stack.api
    pool_id, env = deployment_stack.run_settings("ui-approval")
    job_id = "job-ui-approval"
    run_id = api.run_deployment(
        DEPLOYMENT,
        {
            "inputs": [str(SAMPLES / "observatory.txt")],
            "output_dir": str(tmp_path / "out"),
            "approval": "wait",
            "pool_id": pool_id,
            "job_id": job_id,
        },
        env,
    )
    run = api.wait_for_state(run_id, "PAUSED", timeout=120)

    page = browser.open(f"{deployment_stack.server.ui_url}/runs/flow-run/{run_id}")
    page.wait_for_text(run["name"], "Paused")
    page.click_text("Resume")
    page.wait_for_text("Resume Flow Run", "Delete Job", "Delete Pool", "Comment", f"Delete job {job_id} and pool")

    form = page.resume_form()
    fields = CleanupApproval.model_fields
    assert set(form) == {"Delete Job (Optional)", "Delete Pool (Optional)", "Comment (Optional)"}
    assert form["Delete Job (Optional)"]["description"] == fields["delete_job"].description
    assert form["Delete Pool (Optional)"]["description"] == fields["delete_pool"].description
    assert form["Comment (Optional)"]["description"] == fields["comment"].description
    # Pre-filled with what a timeout would do (delete both, unless configured otherwise).
    assert form["Delete Job (Optional)"]["checked"] == "true"
    assert form["Delete Pool (Optional)"]["checked"] == "true"

    page.toggle("Delete Pool (Optional)")
    page.type_into_textarea("keep the pool for the afternoon batch")
    page.wait_for_switch("Delete Pool (Optional)", "false")
    _keep_screenshot(page.screenshot(tmp_path / "ui-approval-form.png"))
    page.click_text("Submit", within=".p-modal")

    api.wait_for_state(run_id, "COMPLETED", timeout=60)
    assert not deployment_stack.exists("job", job_id)
    assert deployment_stack.exists("pool", pool_id)
    summary = str(api.artifacts(run_id)["batchpipe-summary"]["data"])
    assert "keep the pool for the afternoon batch" in summary
    deployment_stack.batch().begin_delete_pool(pool_id, polling_interval=0).result()
