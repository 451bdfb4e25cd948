"""A reload that does not change [webhook] keeps the running webhook output and the events it
is still trying to deliver: every reload that touched [events], [snapshots], zones or lines
rebuilt all the outputs and closed the running webhook, whose queue (events waiting for an
endpoint that is down) was then tried once each and lost ("webhook output failed"), although
the endpoint came back seconds later."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

from test_service import free_port
from test_service_support import RunningService, metric, poll, service_config, to_toml


class _Hook(http.server.BaseHTTPRequestHandler):
    got: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_reload_of_another_section_keeps_the_webhook_backlog(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: the endpoint is down
    raw = service_config(
        tmp_path,
        webhook={"url": f"http://127.0.0.1:{port}/hook", "retries": 100, "timeout_s": 1.0},
    )
    config = tmp_path / "config.toml"
    config.write_text(to_toml(raw))
    events = tmp_path / "events.jsonl"
    with RunningService(config) as rs:

        def written() -> list[dict]:
            text = events.read_text() if events.exists() else ""
            return [json.loads(line) for line in text.splitlines()]

        assert poll(lambda: len(written()) >= 3, 30), "no events"
        raw["snapshots"]["max_files"] = 500  # a reload that leaves [webhook] alone
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 20)
        before = written()  # all of these were sent while the endpoint was down
        _Hook.got = []
        server = http.server.HTTPServer(("127.0.0.1", port), _Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            keys = {(e["type"], e["time"], e.get("track_id")) for e in before}
            assert poll(
                lambda: keys <= {(e["type"], e["time"], e.get("track_id")) for e in _Hook.got},
                30,
            ), f"lost: {len(keys - {(e['type'], e['time'], e.get('track_id')) for e in _Hook.got})}"
        finally:
            server.shutdown()
        assert metric(rs.metrics(), 'edgedetect_errors_total{component="webhook"}') == 0
