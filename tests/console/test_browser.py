"""The console in headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

Covers sign-in, RBAC, tenant isolation and a dead-letter replay, and takes a screenshot of every page
(into ``$RB_CONSOLE_SCREENSHOTS`` when set, which is how ``docs/console/`` is refreshed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from .harness import KEYS, ServedApp

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: run `make system-deps`")
        pytest.skip("chromium / chromium-driver not installed (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager never looks for (or downloads) a driver.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("RB_CONSOLE_SCREENSHOTS")
    return Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")


def sign_in(driver: WebDriver, served: ServedApp, who: str, path: str = "/returns") -> None:
    driver.delete_all_cookies()
    driver.get(served.console_url + path)
    WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "token")))
    driver.find_element(By.ID, "token").send_keys(KEYS[who][0])
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "principal")))


def text(driver: WebDriver, element_id: str) -> str:
    """Text of an element of the page being loaded (waits for it: a click does not wait for navigation)."""
    try:
        element = WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.ID, element_id))
        )
    except Exception as exc:
        raise AssertionError(
            f"#{element_id} not on {driver.current_url}:\n{driver.page_source[:3000]}"
        ) from exc
    return str(element.text)


def snap(driver: WebDriver, shots: Path, name: str) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    target = shots / f"{name}.png"
    driver.save_screenshot(str(target))
    assert target.stat().st_size > 10_000, f"{name}: screenshot looks empty"


def test_sign_in_lands_on_the_requested_page_and_shows_the_principal(
    served: ServedApp, browser: WebDriver, shots: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(served.console_url + "/inventory")
    assert "/login" in browser.current_url
    snap(browser, shots, "login")
    browser.find_element(By.ID, "token").send_keys("rbk_wrong_key_0123456789abcdef")
    browser.find_element(By.ID, "sign-in").click()
    assert "invalid API key" in text(browser, "login-error")
    sign_in(browser, served, "acme_reader", "/inventory")
    assert browser.current_url.endswith("/inventory")
    assert text(browser, "tenant") == "acme"
    # The session cookie is invisible to page scripts (HttpOnly).
    assert "rb_console" not in str(browser.execute_script("return document.cookie"))


def test_reader_gets_no_operator_pages(served: ServedApp, browser: WebDriver) -> None:
    sign_in(browser, served, "acme_reader")
    links = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")}
    assert links == {"Returns", "Inventory"}
    for path in ("/dead-letters", "/kpis", "/sandbox"):
        browser.get(served.console_url + path)
        assert text(browser, "error-code") == "PERMISSION_DENIED", path


def test_tenant_isolation_in_the_browser(served: ServedApp, browser: WebDriver) -> None:
    served.submit("acme_admin", "browser-acme-1")
    sign_in(browser, served, "globex_admin")
    browser.find_element(By.ID, "q").send_keys("browser-acme-1")
    browser.find_element(By.ID, "find").click()
    assert text(browser, "error-code") == "NOT_FOUND"
    sign_in(browser, served, "acme_reader")
    browser.get(served.console_url + "/returns/browser-acme-1")
    assert text(browser, "return-id") == "browser-acme-1"
    assert text(browser, "lifecycle-state") not in (
        "",
        "\u2013",
    )  # the lifecycle state GetReturnStatus reports


def test_dead_letter_replay_delivers_and_every_page_renders(
    served: ServedApp, browser: WebDriver, shots: Path
) -> None:
    # One permanent failure on the create: the document is dead-lettered; the replay then succeeds.
    served.put_faults(
        "netsuite",
        {
            "error_rate": 1.0,
            "error_statuses": [400],
            "methods": ["POST"],
            "path_pattern": "record/v1/.*returnAuthorization",
            "remaining": 1,
        },
    )
    served.submit("acme_admin", "browser-dlq-1")
    served.submit("acme_admin", "browser-ok-1")
    sign_in(browser, served, "acme_admin", "/dead-letters?return_id=browser-dlq-1")
    snap(browser, shots, "dead-letters")
    browser.find_element(By.CSS_SELECTOR, "#letters a[href^='/dead-letters/']").click()
    assert "Simulated fault" in text(browser, "dl-reason")
    assert text(browser, "dl-state") == "PENDING"
    assert '"return_id": "browser-dlq-1"' in text(browser, "payload")
    snap(browser, shots, "dead-letter")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/replay'] input[name=comment]").send_keys(
        "fault cleared"
    )
    browser.find_element(By.ID, "replay").click()
    text(browser, "confirm-title")
    browser.find_element(By.ID, "confirm").click()
    WebDriverWait(browser, 30).until(lambda d: "done=replay" in d.current_url)
    assert text(browser, "dl-state") == "REPLAYED"

    def delivered(driver: WebDriver) -> bool:
        driver.get(served.console_url + "/returns/browser-dlq-1")
        return str(driver.find_element(By.ID, "overall-state").text) == "DELIVERED"

    WebDriverWait(browser, 60, poll_frequency=0.5).until(delivered)
    page = browser.page_source
    assert "dlq.replayed" in page  # the replay is in the audit trail, shown on the timeline
    assert "fault cleared" in page
    snap(browser, shots, "timeline")

    browser.get(served.console_url + "/kpis")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "accuracy").text != "n/a")
    # A 400 is an answer: the dead letter above paused no ERP's delivery.
    assert text(browser, "erp-down").startswith("No delivery paused"), text(browser, "erp-down")
    snap(browser, shots, "kpis")

    browser.get(served.console_url + "/sandbox?sample=us_authorized_netsuite")
    browser.find_element(By.ID, "translate").click()
    assert text(browser, "output").startswith("{")
    assert browser.find_elements(By.CSS_SELECTOR, "#explain tbody tr")
    snap(browser, shots, "sandbox")

    def stock_shown(driver: WebDriver) -> bool:
        driver.get(served.console_url + "/inventory")
        return bool(driver.find_elements(By.CSS_SELECTOR, "section.inventory tbody tr"))

    WebDriverWait(browser, 60, poll_frequency=1).until(stock_shown)
    assert {s.get_attribute("id") for s in browser.find_elements(By.CSS_SELECTOR, "section.inventory")} >= {
        "inv-netsuite",
        "inv-sap",
    }
    snap(browser, shots, "inventory")


def test_bulk_replay_needs_a_confirmation(served: ServedApp, browser: WebDriver) -> None:
    served.put_faults(
        "netsuite",
        {
            "error_rate": 1.0,
            "error_statuses": [400],
            "methods": ["POST"],
            "path_pattern": "record/v1/.*returnAuthorization",
            "remaining": 2,
        },
    )
    served.submit("acme_admin", "browser-bulk-1")
    served.submit("acme_admin", "browser-bulk-2")
    sign_in(browser, served, "acme_admin", "/dead-letters")
    browser.find_element(By.CSS_SELECTOR, "input[data-select-all]").click()  # progressive enhancement
    boxes = browser.find_elements(By.CSS_SELECTOR, "#letters input[name=id]")
    assert len(boxes) >= 2 and all(box.is_selected() for box in boxes)
    browser.find_element(By.ID, "bulk-replay").click()
    # The confirmation page first: nothing is replayed yet.
    assert text(browser, "confirm-title").startswith(f"Replay {len(boxes)} dead letters")
    browser.find_element(By.ID, "confirm").click()
    text(browser, "bulk-results")
    results = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#bulk-results tbody tr")]
    assert len(results) == len(boxes)
    assert all(row.endswith("replayed") for row in results)


def test_chromium_is_not_downloaded() -> None:
    # Selenium Manager keeps downloads under ~/.cache/selenium; an explicit driver path must avoid it.
    cache = Path.home() / ".cache" / "selenium"
    assert not cache.exists() or not any(cache.rglob("chromedriver*")), shutil.which("chromedriver")
