"""``edgedetect run``'s output files: never written over the input, and a file that lost frames
(full disk, file size limit, deleted under the writer) makes the command exit 1, not 0.

A full disk is made real without root: the child process gets a file size limit
(RLIMIT_FSIZE), so its writes past the limit fail as they would on a full disk (Python ignores
SIGXFSZ, so the write returns EFBIG instead of killing the process).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

from edgedetect import writers
from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError
from edgedetect.frame import Frame, Result
from edgedetect.writers import VideoWriterSink

SAMPLE = REPO / "data" / "sample.mp4"
PHOTO = REPO / "data" / "images" / "astronaut.jpg"


def _run(
    *argv: str, cwd: Path, limit: int | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    def fsize_limit() -> None:
        assert limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "edgedetect", "run", "--no-preview", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=fsize_limit if limit else None,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("source", "option", "target"),
    [
        ("c.mp4", "--output", "c.mp4"),  # the video it reads
        ("a.jpg", "--events", "./a.jpg"),  # the single image it reads
        ("dir:.", "--events", "a.jpg"),  # an image of the folder it reads
    ],
)
def test_run_refuses_to_write_over_its_own_input(
    tmp_path: Path, source: str, option: str, target: str
) -> None:
    shutil.copy(SAMPLE, tmp_path / "c.mp4")
    shutil.copy(PHOTO, tmp_path / "a.jpg")
    before = {p.name: _digest(p) for p in tmp_path.iterdir()}
    res = _run("--source", source, option, target, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), res.stderr
    assert option in lines[0] and "the file the source reads" in lines[0]
    assert {p.name: _digest(p) for p in tmp_path.iterdir()} == before


def test_run_exits_1_when_the_disk_fills_during_the_video(tmp_path: Path) -> None:
    """The video outgrows the limit: OpenCV drops the rest and the file has no index; was exit 0."""
    res = _run("--max-frames", "60", "--output", "v.mp4", cwd=tmp_path, limit=200_000)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "edgedetect: error: the video sink failed to finish its file" in res.stderr
    assert "v.mp4 does not play" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no broken v.mp4, no part file


def test_run_exits_1_and_keeps_whole_lines_when_the_disk_fills_during_the_events(
    tmp_path: Path,
) -> None:
    res = _run("--max-frames", "60", "--events", "e.jsonl", cwd=tmp_path, limit=4000)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "edgedetect: error: the events sink failed on" in res.stderr
    text = (tmp_path / "e.jsonl").read_text()
    assert text and text.endswith("\n"), "the file must hold whole lines only"
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) >= 1 and all(r["detections"] for r in records)


def test_run_exits_1_when_every_events_line_fails(tmp_path: Path) -> None:
    res = _run("--max-frames", "20", "--events", "e.jsonl", cwd=tmp_path, limit=1)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "edgedetect: error: the events sink failed on every frame" in res.stderr
    assert (tmp_path / "e.jsonl").read_text() == ""  # cut back: not one partial line


def _frames(n: int) -> list[Result]:
    image = np.full((48, 64, 3), 90, np.uint8)
    dets = Detections.empty({0: "person"})
    return [
        Result(Frame(i, time.monotonic(), time.time(), image, None, "t"), dets, 1.0)
        for i in range(n)
    ]


def _feed(sink: Callable[[Result], None], results: list[Result]) -> None:
    for r in results:
        sink(r)


def test_video_sink_stops_with_a_clear_error_below_the_free_space_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = VideoWriterSink(tmp_path / "v.mp4", fps=10)
    _feed(sink, _frames(3))
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(writers, "MIN_FREE_BYTES", free + (1 << 30))  # the disk "fills up"
    with pytest.raises(EdgeDetectError, match="disk is full"):
        sink(_frames(1)[0])
    sink.close()  # what was written before still plays
    assert sink.frames == 3


def test_video_sink_close_fails_when_the_file_is_gone(tmp_path: Path) -> None:
    sink = VideoWriterSink(tmp_path / "v.mp4", fps=10)
    _feed(sink, _frames(5))
    sink.part.unlink()  # deleted (or its folder unmounted) while recording
    with pytest.raises(EdgeDetectError, match="does not play after 5 frames"):
        sink.close()


def test_video_sink_close_passes_a_whole_file(tmp_path: Path) -> None:
    sink = VideoWriterSink(tmp_path / "v.mp4", fps=10)
    _feed(sink, _frames(5))
    sink.close()
    assert (tmp_path / "v.mp4").stat().st_size > 0 and sink.frames == 5


def test_video_sink_names_the_file_only_once_it_is_whole(tmp_path: Path) -> None:
    """The video was written under its final name: a run killed (power cut, OOM) or stopped by a
    full disk left a file without its index there, and an older file of that name was destroyed
    at the first frame. Now it is a hidden part file until close() renames it."""
    (tmp_path / "v.mp4").write_bytes(b"the previous video")
    sink = VideoWriterSink(tmp_path / "v.mp4", fps=10)
    _feed(sink, _frames(5))
    assert (tmp_path / "v.mp4").read_bytes() == b"the previous video"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".v.mp4.part.mp4", "v.mp4"]
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 5


def test_run_output_that_is_a_fifo_is_a_one_line_error_not_a_hang(tmp_path: Path) -> None:
    """`--output v.mp4` naming a FIFO: the check that the path is writable opened it for writing,
    which blocks until a reader comes, so the command hung before its first frame, silently."""
    os.mkfifo(tmp_path / "v.mp4")
    res = _run("--max-frames", "3", "--output", "v.mp4", cwd=tmp_path, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), res.stderr
    assert "--output v.mp4 is not a regular file (a FIFO)" in lines[0], lines[0]


@pytest.mark.parametrize("events", ["v.mp4", "./sub/../v.mp4"])
def test_run_refuses_output_and_events_naming_the_same_file(tmp_path: Path, events: str) -> None:
    """`--output v.mp4 --events v.mp4`: the JSON lines and the video went to one file, the video
    replaced the lines when it was closed, and the run exited 0 with every event lost."""
    (tmp_path / "sub").mkdir()
    res = _run("--max-frames", "3", "--output", "v.mp4", "--events", events, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), res.stderr
    assert "--output and --events name the same file" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_a_killed_runs_part_file_is_removed_by_the_next_run_of_that_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run killed (SIGKILL, OOM, power cut) leaves its hidden `.v.mp4.part.mp4`, and nothing
    removed it: the next run writing v.mp4 now does, before its first frame (the name is its
    own), and touches nothing else: not another output's part file, nor a folder of that name."""
    stale = tmp_path / ".v.mp4.part.mp4"
    stale.write_bytes(b"half a video, no index")
    other = tmp_path / ".w.mp4.part.mp4"  # another run's, maybe still writing
    other.write_bytes(b"another run's video")
    (tmp_path / "v.mp4").write_bytes(b"the previous video")
    with caplog.at_level(logging.INFO, logger="edgedetect.writers"):
        sink = VideoWriterSink(tmp_path / "v.mp4", fps=10)
    assert not stale.exists(), "the killed run's part file is still there"
    assert other.read_bytes() == b"another run's video"
    assert (tmp_path / "v.mp4").read_bytes() == b"the previous video"
    assert [r.getMessage() for r in caplog.records] == [
        f"removed {stale}, left by an earlier run writing {tmp_path / 'v.mp4'} that did not finish"
    ]
    sink.close()  # no frame: nothing written, nothing renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == [".w.mp4.part.mp4", "v.mp4"]
    (tmp_path / ".x.mp4.part.mp4").mkdir()  # not a file: never ours to remove
    VideoWriterSink(tmp_path / "x.mp4", fps=10).close()
    assert (tmp_path / ".x.mp4.part.mp4").is_dir()
