"""`[events] jsonl` naming the very video (or image) the source reads: check-config said OK and
the service appended its JSON lines to the video, and its rotation would have renamed the video
away. It is refused now, at start, in check-config and by a reload that changes the source, as
`edgedetect run --events` refuses its input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_service_support import RunningService, poll, service_config, to_toml

SAMPLE = REPO / "data" / "sample.mp4"


def test_check_config_refuses_an_events_file_that_is_the_source_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE, video)
    before = video.read_bytes()
    config = tmp_path / "config.toml"
    config.write_text(f'[source]\nspec = "file:{video}"\n[events]\njsonl = "{video}"\n')
    res = subprocess.run(
        [sys.executable, "-m", "edgedetect", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), res.stderr
    assert f"[events] jsonl = '{video}'" in lines[0], lines[0]
    assert "the file the source reads" in lines[0], lines[0]
    assert video.read_bytes() == before


def test_a_reload_to_a_source_that_is_the_events_file_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE, video)
    raw = service_config(tmp_path, events={"jsonl": str(video)})  # the source is a folder
    config = tmp_path / "config.toml"
    config.write_text(to_toml(raw))
    with RunningService(config) as rs:
        source = rs.svc.source
        raw["source"]["spec"] = f"file:{video}"
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reload_failures + rs.svc.reloads > 0, 20)
        assert rs.svc.reload_failures == 1 and rs.svc.reloads == 0
        assert rs.svc.source is source and rs.svc.cfg.source.spec != f"file:{video}"
        assert f"[events] jsonl = '{video}'" in rs.svc.last_reload_error
        assert "the file the source reads" in rs.svc.last_reload_error
