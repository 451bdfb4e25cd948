"""The page once the service is gone: it said the browser's "Failed to fetch" under an
"offline" badge, which does not tell an owner that the service stopped. It must say so.

A tiny stand-in server serves the real page files and minimal /api answers, then shuts down, so
the browser sees exactly what it sees when the service stops (connection refused).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import browser_paths
from test_service_support import poll

pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e .[dev]")
from selenium.webdriver.common.by import By  # noqa: E402

from edgedetect.bench import headless_chromium  # noqa: E402
from edgedetect.service.webapp import WEB_TYPES, web_file  # noqa: E402

STATUS = {
    "status": "ok",
    "persons": 1,
    "fps": 5.0,
    "source": "file:x.mp4",
    "source_connected": True,
}


class _Page(BaseHTTPRequestHandler):
    """The page's three files at / and /static/, and fixed /api answers."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        if name in WEB_TYPES:
            self._send(200, web_file(name)[0], WEB_TYPES[name])
        elif path == "/api/status":
            self._send(200, json.dumps(STATUS).encode(), "application/json")
        elif path == "/api/events":
            self._send(200, b'{"events": []}', "application/json")
        else:
            self._send(404, b"", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_page_says_the_service_is_gone_when_it_stops() -> None:
    chromium, driver_path = browser_paths()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    driver = headless_chromium(chromium, driver_path)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        state = driver.find_element(By.ID, "state")
        assert poll(lambda: state.text == "ok", 20), state.text
        server.shutdown()
        server.server_close()
        assert poll(lambda: state.text == "offline", 20), state.text
        message = driver.find_element(By.ID, "message").text
        assert "service is not answering" in message
        assert "Failed to fetch" not in message
    finally:
        driver.quit()
        server.server_close()
