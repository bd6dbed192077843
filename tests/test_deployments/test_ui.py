"""The Prefect UI in headless Chromium: a finished run's results artifact, and approval through the Resume form.

Screenshots go to the test's temporary directory; with DOCS_SCREENSHOTS=1 they also replace docs/images/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from batchpipe.services import PROJECT_ROOT
from tasks.cleanup import CleanupApproval

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.integration]
DEPLOYMENT = "batchpipe/daily"
SAMPLES = PROJECT_ROOT / "samples"
DOCS_IMAGES = PROJECT_ROOT / "docs" / "images"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _keep_screenshot(page: Page, shot: Path) -> None:
    """Save a PNG of the viewport to ``shot``, check that it shows a rendered page, copy it to the docs if asked."""
    page.screenshot(path=shot)
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGES / shot.name)


def _shows(page: Page, *needles: str) -> None:
    """Wait until the page shows each of ``needles`` as rendered (innerText: CSS capitals, hidden text left out)."""
    for needle in needles:
        expect(page.locator("body")).to_contain_text(needle, use_inner_text=True)


def _click(page: Page, label: str) -> None:
    """Click the visible element labelled exactly ``label`` (a tab, a link, an artifact card's title)."""
    page.get_by_text(label, exact=True).filter(visible=True).first.click()


def _form_field(page: Page, label: str) -> Locator:
    """The Resume form's field whose label is exactly ``label``."""
    name = page.locator(".schema-form-property__label").get_by_text(label, exact=True)
    return page.locator(".p-modal .schema-form-property").filter(has=name)


class _ServerBusy(Exception):
    """The Prefect server answered 503 (SQLite busy): the UI drops the request; the user submits again."""


def _submit_resume_form(page: Page, run_id: str, attempts: int = 5) -> None:
    """Click the Resume form's Submit until the server accepts the resume, waiting for its answer to each request.

    Submit makes two requests: it validates the values (``POST /api/ui/schemas/validate``), then resumes the run
    (``POST /api/flow_runs/<id>/resume``). While SQLite is busy (a loaded machine) the server answers 503, which
    Prefect's Python client retries and the UI does not: a 503 to the validation is dropped without a word (its
    promise is not caught), one to the resume shows a toast; either way the form stays open and the run PAUSED
    (measured: a 503 to the resume in 1 of 3 submits with the CPUs busy). So a 503 means: submit again, as a user
    would; any other answer is the result.
    """

    def validation(response: Response) -> bool:
        return response.request.method == "POST" and response.url.endswith("/ui/schemas/validate")

    def resume(response: Response) -> bool:
        return response.request.method == "POST" and response.url.endswith(f"/flow_runs/{run_id}/resume")

    submit = page.locator(".p-modal").get_by_text("Submit", exact=True)
    for _ in range(attempts):
        try:
            with page.expect_response(resume) as resumed:
                with page.expect_response(validation) as validated:
                    submit.click()
                if validated.value.status == 503:
                    raise _ServerBusy
                assert validated.value.ok, validated.value.text()
                assert validated.value.json()["valid"], validated.value.text()
        except _ServerBusy:
            print("Resume form: the server answered 503 to the validation; submitting again")
            continue
        if resumed.value.status == 503:
            print("Resume form: the server answered 503 to the resume; submitting again")
        else:
            assert resumed.value.ok, resumed.value.text()
            assert resumed.value.json()["status"] == "ACCEPT", resumed.value.text()
            return
    pytest.fail(f"the Prefect server answered 503 (busy) to {attempts} submits of the Resume form")


def _task_run(api: Any, flow_run_id: str, name: str) -> dict[str, Any]:
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "task_runs": {"name": {"like_": name}}}
    [task_run] = api.post("/task_runs/filter", body)
    return dict(task_run)


def test_the_ui_shows_the_results_artifact_of_a_finished_run(
    deployment_stack: Any, triggered_run: Any, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{deployment_stack.server.ui_url}/runs/flow-run/{triggered_run.run_id}")
    _shows(page, triggered_run.run["name"], "Completed")
    _click(page, "Artifacts")
    _shows(page, "batchpipe-results", "batchpipe-summary")
    _click(page, "batchpipe-results")

    harbour_top = deployment_stack.tutorial_top_words(SAMPLES / "harbour.txt", triggered_run.num_words)
    cells = ", ".join(f"{word} ({count})" for word, count in harbour_top)
    _shows(page, cells, *(f"{p.stem}_OUTPUT.txt" for p in triggered_run.samples))
    _keep_screenshot(page, tmp_path / "ui-results-artifact.png")

    # The monitoring step's progress artifact, on its task run's page, finished at 100%.
    monitor = _task_run(deployment_stack.api, triggered_run.run_id, "monitor-tasks")
    page.goto(f"{deployment_stack.server.ui_url}/runs/task-run/{monitor['id']}")
    _shows(page, monitor["name"], "Completed")
    _click(page, "Artifacts")
    _shows(page, "PROGRESS", "Tasks completed in job")
    _click(page, "progress")  # the key, which the UI shows in capitals
    _shows(page, "100%")


def test_the_ui_shows_the_failed_tasks_artifact_of_a_failed_run(
    deployment_stack: Any, failed_run: Any, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{deployment_stack.server.ui_url}/runs/flow-run/{failed_run.run_id}")
    _shows(page, failed_run.run["name"], "Failed")
    # The flow's last log line (its failure) is at the end of a long list the UI loads as it is scrolled: scroll
    # the page and each scrollable pane to the end until it is there (Playwright re-runs this on every frame).
    page.wait_for_function(
        """needle => {
            [document.scrollingElement, ...document.querySelectorAll('*')]
                .filter(e => e && e.scrollHeight > e.clientHeight)
                .forEach(e => { e.scrollTop = e.scrollHeight; });
            return document.body.innerText.includes(needle);
        }""",
        arg="1 task(s) failed",
    )
    _shows(page, "1 task(s) failed")
    # The monitoring step writes it, so it is on that task run's page (the flow run's tab lists its own artifacts).
    monitor = _task_run(deployment_stack.api, failed_run.run_id, "monitor-tasks")
    page.goto(f"{deployment_stack.server.ui_url}/runs/task-run/{monitor['id']}")
    _shows(page, monitor["name"], "Completed")
    _click(page, "Artifacts")
    _shows(page, "batchpipe-failed-tasks", "PROGRESS")
    _click(page, "batchpipe-failed-tasks")

    _shows(page, "Failed tasks of job", "topn-doomed", "exit code 3", "stderr (tail)")
    _keep_screenshot(page, tmp_path / "ui-failed-tasks.png")


def test_the_deployment_run_form_offers_each_typed_parameter(deployment_stack: Any, page: Page, tmp_path: Path) -> None:
    deployment = deployment_stack.api.deployment(DEPLOYMENT)
    page.goto(f"{deployment_stack.server.ui_url}/deployments/deployment/{deployment['id']}/run")
    descriptions = [p["description"] for p in deployment["parameter_openapi_schema"]["properties"].values()]
    # Markdown in the descriptions (``wait``) renders as code, so compare their plain start.
    _shows(page, "Parameters", *deployment["parameters"], *(d.split("``")[0] for d in descriptions))

    approval = page.locator("select").filter(has=page.locator('option[value="wait"]'))
    expect(approval).to_have_count(1)  # a drop-down, not a free text field
    assert approval.locator("option").evaluate_all("os => os.map(o => o.value)") == ["ask", "wait", "yes", "no"]
    page.wait_for_function("() => [...document.querySelectorAll('textarea, input')].some(e => e.value === 'samples')")
    page.set_viewport_size({"width": 1400, "height": 1520})  # the whole form
    _keep_screenshot(page, tmp_path / "ui-custom-run.png")


def test_approval_from_the_ui_resume_form_is_followed(deployment_stack: Any, page: Page, tmp_path: Path) -> None:
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

    page.goto(f"{deployment_stack.server.ui_url}/runs/flow-run/{run_id}")
    _shows(page, run["name"], "Paused")
    _click(page, "Resume")
    _shows(page, "Resume Flow Run", "Delete Job", "Delete Pool", "Comment", f"Delete job {job_id} and pool")

    fields = CleanupApproval.model_fields
    labels = page.locator(".p-modal .schema-form-property .schema-form-property__label")
    assert sorted(labels.all_inner_texts()) == ["Comment (Optional)", "Delete Job (Optional)", "Delete Pool (Optional)"]
    for label, name in (("Delete Job", "delete_job"), ("Delete Pool", "delete_pool"), ("Comment", "comment")):
        description = _form_field(page, f"{label} (Optional)").locator(".schema-form-property__description")
        expect(description).to_have_text(str(fields[name].description))
    delete_job = _form_field(page, "Delete Job (Optional)").get_by_role("switch")
    delete_pool = _form_field(page, "Delete Pool (Optional)").get_by_role("switch")
    # Pre-filled with what a timeout would do (delete both, unless configured otherwise).
    expect(delete_job).to_have_attribute("aria-checked", "true")
    expect(delete_pool).to_have_attribute("aria-checked", "true")

    delete_pool.click()
    expect(delete_pool).to_have_attribute("aria-checked", "false")  # the UI re-renders after the click
    comment = page.locator(".p-modal textarea")
    comment.fill("keep the pool for the afternoon batch")
    expect(comment).to_have_value("keep the pool for the afternoon batch")
    _keep_screenshot(page, tmp_path / "ui-approval-form.png")
    _submit_resume_form(page, run_id)
    expect(page.locator(".p-modal")).to_be_hidden()  # the form was accepted

    api.wait_for_state(run_id, "COMPLETED", timeout=60)
    assert not deployment_stack.exists("job", job_id)
    assert deployment_stack.exists("pool", pool_id)
    summary = str(api.artifacts(run_id)["batchpipe-summary"]["data"])
    assert "keep the pool for the afternoon batch" in summary
    deployment_stack.batch().begin_delete_pool(pool_id, polling_interval=0).result()
