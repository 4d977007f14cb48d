"""Headless Debian Chromium driven by Selenium through /usr/bin/chromedriver (never downloaded)."""

import shutil
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _chromium_options(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", "--window-size=1280,900", f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # "performance": every request the pages send, as Chromium's DevTools saw it (network.py).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return options


@pytest.fixture
def new_browser(request):
    """Open fresh browsers (separate profiles: separate cookies); check and close them after."""
    opened = []

    def open_browser():
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=_chromium_options(profile))
        driver.set_page_load_timeout(30)
        opened.append((driver, profile))
        return driver

    yield open_browser

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    errors = []
    for number, (driver, profile) in enumerate(opened):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = ARTIFACTS / f"{request.node.name}-browser{number}"
            driver.save_screenshot(f"{stem}.png")
            Path(f"{stem}.html").write_text(driver.page_source)
        errors += [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert errors == [], f"JavaScript console errors: {errors}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
