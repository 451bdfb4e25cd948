"""The page in chromium leaves no error in the browser console: every load logged
"favicon.ico - Failed to load resource: 404 (Not Found)", the browser's own request for an icon
the service did not answer, which an owner opening the developer tools takes for a fault."""

from __future__ import annotations

import pytest
from conftest import browser_paths
from test_http_hardening import _get, serving
from test_service_support import poll

pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e .[dev]")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def _chromium_with_console_log(chromium: str, driver_path: str) -> webdriver.Chrome:
    """Headless chromium (as edgedetect.bench.headless_chromium) that keeps the console log."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))


def test_page_load_leaves_no_console_error() -> None:
    chromium, driver_path = browser_paths()
    with serving() as server:
        assert _get(server, "/favicon.ico")[0] == 204
        driver = _chromium_with_console_log(chromium, driver_path)
        try:
            driver.set_page_load_timeout(30)
            driver.get(f"http://127.0.0.1:{server.port}/")
            state = driver.find_element(By.ID, "state")
            assert poll(lambda: state.text != "connecting", 20), state.text
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    assert errors == []
