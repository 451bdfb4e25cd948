"""/healthz is 503 as soon as the source is known to be gone, not only once `stall_timeout_s`
has passed: with the default 10 s it answered 200 "status": "ok" (beside "source_connected":
false and the source_error) for up to 10 s after the looping file was deleted, while
docs/service.md says it is 503 while the source is being reopened."""

from __future__ import annotations

import json
import time
from pathlib import Path

from test_service_support import RunningService, poll, write_config
from test_source_bugs import small_video


def test_healthz_is_503_while_the_source_is_reopened_within_the_stall_timeout(
    tmp_path: Path,
) -> None:
    clip = small_video(tmp_path / "clip.mp4", 10)
    saved = clip.read_bytes()
    source = {"spec": f"file:{clip}", "loop": True, "reconnect_max_s": 0.5}
    cfg = write_config(tmp_path, source=source, service={"stall_timeout_s": 60.0})
    with RunningService(cfg) as rs:

        def health() -> tuple[int, dict]:
            code, _, body = rs.get("/healthz")
            return code, json.loads(body)

        assert poll(lambda: health()[0] == 200, 30), "never healthy"
        clip.unlink()
        src = rs.svc.source
        assert src is not None
        assert poll(lambda: not src.connected, 20), "the source never noticed the file gone"
        t0 = time.monotonic()
        code, info = health()
        assert info["source_connected"] is False and info["last_frame_age_s"] < 60.0
        assert (code, info["status"]) == (503, "unhealthy"), info
        assert time.monotonic() - t0 < 5.0
        clip.write_bytes(saved)
        back = poll(lambda: (got := health())[0] == 200 and got, 30)
        assert back and back[1]["source_connected"] is True and back[1]["status"] == "ok"
        assert rs.exit_code is None
