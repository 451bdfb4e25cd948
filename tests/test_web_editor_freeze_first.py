"""The zone/line editor before a frame is frozen: the canvas says "Press Freeze frame first", yet
a click there counted as a point ("Click at least 3 points for a zone (1 so far)"), placed blind
on the grey placeholder and kept in the snippet once a frame was frozen. Clicks before a freeze
must add nothing; after it they must (so the check does not pass on an editor that ignores all).
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from conftest import browser_paths
from test_service_support import poll
from test_web_page_offline import _Page

pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e .[dev]")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from edgedetect.bench import headless_chromium  # noqa: E402

JPEG = cv2.imencode(".jpg", np.full((240, 320, 3), 90, np.uint8))[1].tobytes()


class _PageWithSnapshot(_Page):
    """The stand-in page server, plus a still at /snapshot.jpg for Freeze frame."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] == "/snapshot.jpg":
            self._send(200, JPEG, "image/jpeg")
        else:
            super().do_GET()


def _click_three(driver, canvas) -> None:
    """Three points around the canvas centre (it is scrolled fully into view first)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    for x, y in [(-60, -40), (60, -40), (60, 40)]:
        ActionChains(driver).move_to_element_with_offset(canvas, x, y).click().perform()


def test_clicks_before_freeze_frame_add_no_points() -> None:
    chromium, driver_path = browser_paths()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageWithSnapshot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = headless_chromium(chromium, driver_path)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        canvas, snippet = (
            driver.find_element(By.ID, "canvas"),
            driver.find_element(By.ID, "snippet"),
        )
        _click_three(driver, canvas)
        assert snippet.get_attribute("value") == ""
        assert "Freeze frame" in driver.find_element(By.ID, "hint").text
        driver.find_element(By.ID, "freeze").click()
        assert poll(lambda: driver.execute_script("return editor.frame !== null"), 20)
        _click_three(driver, canvas)
        text = snippet.get_attribute("value")
        assert text.startswith("[zones.zone1]")
        assert text.count("], [") == 2, text  # exactly the three points after the freeze
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
