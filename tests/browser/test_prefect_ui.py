"""The Prefect UI as a data scientist sees it, in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) against a real Prefect server with driftloop's
deployments (the `ui_stack` fixture of tests/conftest.py).

Three days land in the stack's lake and a real `process` run (on the stack's worker) ingests
them, trains v1, scores and checks drift: the status page, the drift report, the history
plot and the Data Docs it published are what these tests open. Assertions are on what comes
back: the UIs answer 200 for any route, so a status says nothing.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urljoin

import pytest

from driftloop.deployments.stack import Stack

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("browser tests need Debian's chromium and chromium-driver (make system-deps)")
    selenium = pytest.importorskip("selenium", reason="pip install -e '.[test]'")
    from selenium.webdriver import Chrome
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1600,2400")
    driver = Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    assert selenium.__version__
    try:
        yield driver
    finally:
        driver.quit()


def _text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def _until(browser: Any, find: Callable[[Any], Any], what: str, timeout: float = 45) -> Any:
    """`find(browser)`'s first truthy value; the page re-renders while it loads, so a step
    that finds a stale or missing element is simply tried again."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(browser, timeout, ignored_exceptions=ignored).until(find)
    except TimeoutException:
        page = _text(browser)[-3000:]
        raise AssertionError(f"never saw {what}; the page said:\n{page}") from None


def _deployment_id(stack: Stack, on_stack: Any, name: str) -> str:
    async def read(client: Any) -> Any:
        return await client.read_deployment_by_name(f"{name}/{name}")

    return str(on_stack(stack, read).id)


def test_the_train_form_reads_as_written_and_offers_the_profiles(
    ui_stack: Stack, on_stack: Any, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    train = _deployment_id(ui_stack, on_stack, "train")
    browser.get(f"{ui_stack.config.prefect_url}/v2/deployments/deployment/{train}/run")
    _until(browser, lambda b: "configs/PROFILE.yaml" in _text(b), "the profile's description")

    # overrides and hyperparameters are JSON editors holding {}, not a choice of type with
    # "None" picked (before: 'dict | None' tabs and 'Property is type "None"'); the editors
    # fill in after the descriptions, later still on a busy machine
    def json_fields(b: Any) -> str:
        page = _text(b)
        fields = page[page.find("overrides (Optional)") : page.find("dry_run (Optional)")]
        return fields if fields.count("{}") == 2 else ""

    json_fields_text = _until(browser, json_fields, "two JSON editors holding {}")
    page = _text(browser)
    assert "config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod" in page
    assert "first day of the training window (YYYY-MM-DD)" in page
    assert 'e.g. {"max_iter": 80, "learning_rate": 0.05}' in page
    assert 'Property is type "None"' not in json_fields_text, json_fields_text
    assert "trigger" not in page.split("Parameters", 1)[1], "the system records the trigger"

    # every optional field is a plain field of its type: no "None" to pick anywhere
    assert 'Property is type "None"' not in page, page
    assert "Property is type" not in page, page

    def open_the_profile_choices(b: Any) -> list[str]:
        """Open the profile's select and read its options (the form re-renders while it
        loads: every step finds its element again)."""
        options = [o.text for o in b.find_elements(By.XPATH, "//*[@role='option']") if o.text]
        if not options:
            field = b.find_element(
                By.XPATH,
                "//*[contains(text(), 'configs/PROFILE.yaml')]"
                "/ancestor::*[.//button[@aria-haspopup='listbox']][1]",
            )
            field.find_element(By.XPATH, ".//button[@aria-haspopup='listbox']").click()
        return options

    options = _until(browser, open_the_profile_choices, "the profile choices")
    assert sorted(options) == ["local", "prod"], options


def test_the_schedule_names_its_time_zone(ui_stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(f"{ui_stack.config.prefect_url}/v2/deployments")

    def hover_the_schedule(b: Any) -> list[str]:
        badge = b.find_element(
            By.XPATH, "//*[@data-slot='tooltip-trigger'][contains(., 'Every 15 minutes')]"
        )
        ActionChains(b).move_to_element(badge).perform()
        return [t.text for t in b.find_elements(By.XPATH, "//*[contains(text(), '(UTC)')]")]

    shown = _until(browser, hover_the_schedule, "the process schedule's time zone")
    assert any("Every 15 minutes" in t and "(UTC)" in t for t in shown), shown


DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(3)]
ROWS = 1000


@dataclass(frozen=True)
class Published:
    """What the real `process` run left behind: the runs of the last day's stages and the
    artifacts they published (newest of each key)."""

    runs: dict[str, str]  # stage -> flow run id
    artifacts: dict[str, Any]  # key -> artifact


@pytest.fixture(scope="module")
def published(ui_stack: Stack, on_stack: Any, wait_for: Any) -> Published:
    from driftloop.configs.settings import load_settings
    from driftloop.data.generate import generate_day
    from driftloop.tasks.adapters import day_states, storage

    lake = storage.Lake(ui_stack.config.overrides["storage.root"], "loans")
    for day in DAYS:
        storage.write_frame(generate_day(day, ROWS, seed=3), lake.raw(day))

    async def start(client: Any) -> Any:
        deployment = await client.read_deployment_by_name("process/process")
        return await client.create_flow_run_from_deployment(deployment.id)

    run = on_stack(ui_stack, start)
    done = {"ingest": "done", "score": "done", "check": "done"}

    def last_day_done() -> Any:  # by this run, or a scheduled one that got there first
        state = day_states.read_states(lake).get(DAYS[-1])
        if state is None:
            return None
        stages = {k: r.status for k, r in state.stages.items()}
        if "failed" in stages.values():
            raise AssertionError(f"the last day failed: {state}")
        return state if stages == done else None

    state = wait_for(
        last_day_done,
        420,
        interval=2,
        what=f"the process run {run.id} to ingest, train, score and check the days",
        detail=lambda: ui_stack.worker.tail(60),
    )
    runs = {stage: str(record.flow_run_id) for stage, record in state.stages.items()}
    every_day = day_states.read_states(lake).values()
    stage_runs = {str(r.flow_run_id) for s in every_day for r in s.stages.values()}
    model = load_settings("local").registry.model_name

    async def artifacts(client: Any) -> dict[str, Any]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        keys = [
            f"drift-report-{model}",
            f"drift-history-plot-{model}",
            "data-docs-loans",
            "loop-status-loans",
        ]
        found = {}
        for key in keys:
            newest = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort="CREATED_DESC",
                limit=1,
            )
            found[key.removesuffix(f"-{model}")] = newest[0] if newest else None
        return found

    found = on_stack(ui_stack, artifacts)
    assert all(found.values()), [key for key, artifact in found.items() if artifact is None]
    docs_by = str(found["data-docs-loans"].flow_run_id)
    assert docs_by in stage_runs, "Data Docs of the contract check of an ingest or score run"
    return Published(runs=runs, artifacts=found)


def _link(artifact: Any) -> str:
    """The URL of a link artifact (Prefect stores it as markdown: `[text](url)`)."""
    found = re.fullmatch(r"\[.*\]\((?P<url>[^)\s]+)\)", artifact.data.strip(), re.S)
    assert found, artifact.data
    return found["url"]


def _fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.headers["Content-Type"], resp.read()


def test_the_drift_report_link_opens_the_report(
    ui_stack: Stack, published: Published, browser: Any
) -> None:
    from driftloop.configs.settings import load_settings

    artifact = published.artifacts["drift-report"]
    assert str(artifact.flow_run_id) == published.runs["check"], "the check_drift run's report"
    link = _link(artifact)
    assert link.startswith(ui_stack.config.reports_url + "/"), link
    content_type, body = _fetch(link)
    html = body.decode("utf-8", errors="replace")
    assert content_type.startswith("text/html")
    features = load_settings("local").dataset.feature_columns
    assert features
    # the drift report has a row per column, and links Evidently's report beside it, where
    # each column's drift section names it ("Value Drift for column income", "column 'income'")
    missing = [c for c in features if f"<td><b>{c}</b>" not in html]
    assert not missing, f"columns not in the drift report: {missing}"
    detail = re.search(r'<a href="([^"]+)">Evidently', html)
    assert detail, "the drift report links Evidently's report"
    content_type, body = _fetch(urljoin(link, detail.group(1)))
    evidently = body.decode("utf-8", errors="replace")
    assert content_type.startswith("text/html")
    missing = [c for c in features if not re.search(rf"column '?{re.escape(c)}\b", evidently)]
    assert not missing, f"columns not in Evidently's report: {missing}"

    # ... and the Prefect UI's artifact page links it (not a file:// path a browser refuses)
    browser.get(f"{ui_stack.config.prefect_url}/v2/artifacts/artifact/{artifact.id}")
    _until(browser, lambda b: _links_to(b, link), "the report's link on the artifact page")


def _links_to(browser: Any, url: str) -> bool:
    from selenium.webdriver.common.by import By

    return any(a.get_attribute("href") == url for a in browser.find_elements(By.TAG_NAME, "a"))


def test_the_history_plot_and_the_data_docs_links_open(
    ui_stack: Stack, published: Published
) -> None:
    plot = _link(published.artifacts["drift-history-plot"])
    assert plot.startswith(ui_stack.config.reports_url + "/"), plot
    content_type, body = _fetch(plot)
    assert content_type == "image/png" and body.startswith(b"\x89PNG"), content_type

    docs = _link(published.artifacts["data-docs-loans"])
    assert docs.startswith(ui_stack.config.reports_url + "/") and docs.endswith("index.html")
    content_type, body = _fetch(docs)
    assert content_type.startswith("text/html")
    assert b"Data Docs" in body or b"Great Expectations" in body, body[:500]


def test_the_loop_status_page_shows_the_champion(
    ui_stack: Stack, on_stack: Any, published: Published, browser: Any
) -> None:
    page = published.artifacts["loop-status-loans"]

    async def publisher(client: Any) -> Any:
        return await client.read_flow_run(page.flow_run_id)

    run = on_stack(ui_stack, publisher)  # a run on the stack wrote it, not this test
    assert str(run.id) in published.runs.values() and run.state.is_completed(), run
    browser.get(f"{ui_stack.config.prefect_url}/v2/artifacts/artifact/{page.id}")
    _until(browser, lambda b: "Loop status: loans" in _text(b), "the status page")
    shown = _text(browser)
    assert "v1 since" in shown, shown[-2000:]
    assert "Nothing waits for approval." in shown


def test_a_run_submitted_from_the_form_leaves_empty_fields_to_their_defaults(
    ui_stack: Stack, on_stack: Any, browser: Any
) -> None:
    """A data scientist fills the one required field of `rollback` and submits: the run is
    created (the server's schema check passes) with the empty optional fields left out, so
    the flow's defaults apply (not a null its type refuses)."""
    from selenium.webdriver.common.by import By

    deployment = _deployment_id(ui_stack, on_stack, "rollback")
    browser.get(f"{ui_stack.config.prefect_url}/v2/deployments/deployment/{deployment}/run")
    _until(browser, lambda b: "why (an incident" in _text(b), "the reason's description")
    assert "Property is type" not in _text(browser)
    reason = _until(
        browser,
        lambda b: b.find_element(
            By.XPATH, "//*[contains(text(), 'why (an incident')]/following::textarea[1]"
        ),
        "the reason's text box",
    )
    reason.send_keys("form test: INC-1")
    (submit,) = [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Submit"]
    submit.click()

    async def submitted(client: Any) -> Any:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment]))
        )
        return next((r for r in runs if r.parameters.get("reason") == "form test: INC-1"), None)

    run = _until(browser, lambda _b: on_stack(ui_stack, submitted), "the submitted run")

    async def cancel(client: Any) -> None:  # nothing to roll back here: do not let it run
        from prefect.states import Cancelled

        await client.set_flow_run_state(run.id, Cancelled(), force=True)

    on_stack(ui_stack, cancel)
    assert run.parameters == {"reason": "form test: INC-1", "overrides": {}}, run.parameters
