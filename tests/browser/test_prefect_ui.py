"""The Prefect UI as a data scientist sees it, in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) against a real Prefect server with driftloop's
deployments (the `ui_stack` fixture of tests/conftest.py).

Assertions are on visible text: the UI answers 200 for any route, so a status says nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

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
    page = _text(browser)
    assert "config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod" in page
    assert "first day of the training window (YYYY-MM-DD)" in page
    assert 'e.g. {"max_iter": 80, "learning_rate": 0.05}' in page
    assert "trigger" not in page.split("Parameters", 1)[1], "the system records the trigger"

    def open_the_profile_choices(b: Any) -> list[str]:
        """Pick the field's str branch, open its select, read the options (the form
        re-renders while it loads: every step finds its element again)."""
        field = b.find_element(
            By.XPATH,
            "//*[contains(text(), 'configs/PROFILE.yaml')]/ancestor::*[.//*[text()='str']][1]",
        )
        tab = field.find_element(By.XPATH, ".//button[@role='tab'][text()='str']")
        if tab.get_attribute("aria-selected") != "true":
            tab.click()
            return []
        options = [o.text for o in b.find_elements(By.XPATH, "//*[@role='option']") if o.text]
        if not options:
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


def test_the_loop_status_page_shows_the_champion(
    ui_stack: Stack, on_stack: Any, browser: Any
) -> None:
    from driftloop.tasks.core.status import ChampionMove, LoopStatus, status_markdown

    now = datetime.now(UTC)
    page = status_markdown(
        LoopStatus(
            model="loan-default",
            dataset="loans",
            now=now,
            champion="2",
            moves=[ChampionMove("2", "promotion", now - timedelta(days=1), "gate passed: +0.04")],
            checks=[],
        )
    )

    async def publish(client: Any) -> Any:
        from prefect.client.schemas.actions import ArtifactCreate

        made = await client.create_artifact(
            ArtifactCreate(key="loop-status-loans", type="markdown", data=page)
        )
        return made.id

    artifact = on_stack(ui_stack, publish)
    browser.get(f"{ui_stack.config.prefect_url}/v2/artifacts/artifact/{artifact}")
    _until(browser, lambda b: "Loop status: loans" in _text(b), "the status page")
    shown = _text(browser)
    assert "v2 since" in shown and "(promotion): gate passed: +0.04" in shown
    assert "Nothing waits for approval." in shown
