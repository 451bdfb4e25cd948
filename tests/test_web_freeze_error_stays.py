"""Freeze frame with no current frame (source lost, or none yet): the page said "No current frame
to freeze ..." in its message line, which the next successful /api poll blanked (within 2 s), so
an owner looking up from the button saw nothing happen. The words must still be on the page after
the next two status polls."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest
from conftest import browser_paths
from test_service_support import poll
from test_web_page_offline import _Page

pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e .[dev]")
from selenium.webdriver.common.by import By  # noqa: E402

from edgedetect.bench import headless_chromium  # noqa: E402


class _NoFrame(_Page):
    """The stand-in page server with /snapshot.jpg answering 503 as the service does with no
    frame; counts the /api/status polls."""

    status_polls = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        if path == "/snapshot.jpg":
            self._send(503, b"source lost; no current frame\n", "text/plain")
            return
        if path == "/api/status":
            type(self).status_polls += 1
        super().do_GET()


def test_freeze_without_a_frame_stays_said_after_the_next_polls() -> None:
    chromium, driver_path = browser_paths()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoFrame)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = headless_chromium(chromium, driver_path)
    said = "No current frame to freeze"
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        assert poll(lambda: driver.find_element(By.ID, "state").text == "ok", 20)
        driver.find_element(By.ID, "freeze").click()
        body = driver.find_element(By.TAG_NAME, "body")
        assert poll(lambda: said in body.text, 20), body.text
        polls = _NoFrame.status_polls
        assert poll(lambda: _NoFrame.status_polls >= polls + 2, 20)
        assert poll(lambda: driver.find_element(By.ID, "state").text == "ok", 20)
        assert said in body.text
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
