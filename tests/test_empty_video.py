"""`run --source clip.mp4` (and bench) on a 0-byte video, a copy that never finished, said
"cannot decode video file clip.mp4: OpenCV/FFmpeg does not read it; check that it plays (ffprobe)
or convert it to H.264/MPEG-4 .mp4", sending the user to convert a file that holds nothing. It
now says the file is empty, as an empty image is said."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_edgedetect


@pytest.mark.parametrize("command", ["run", "bench"])
def test_an_empty_video_is_said_to_be_empty(tmp_path: Path, command: str) -> None:
    video = tmp_path / "clip.mp4"
    video.touch()
    options = ["--no-preview"] if command == "run" else ["--no-camera"]
    res = run_edgedetect(command, "--source", str(video), *options)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"edgedetect: error: video file {video} is empty (0 bytes); copy or export it again"
    ]
