"""Overlay drawing and the run command's output sinks (video file, JSON lines)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError
from edgedetect.frame import Frame, Result
from edgedetect.overlay import draw_detections, draw_status
from edgedetect.writers import JsonlSink, VideoWriterSink

NAMES = {0: "person", 2: "car"}


def _dets(*boxes: tuple[float, float, float, float], cls: int = 0) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.full(len(boxes), 0.9),
        np.full(len(boxes), cls),
        NAMES,
    )


def test_draw_detections_draws_on_a_copy_along_the_box():
    image = np.zeros((200, 300, 3), np.uint8)
    out = draw_detections(image, _dets((50, 60, 150, 180)))
    assert not image.any()  # the frame's own pixels are untouched
    assert out.shape == image.shape and out is not image
    assert out[120, 50].any() and out[120, 150].any() and out[180, 100].any()  # box edges
    assert not out[120, 100].any()  # inside the box, away from the label: untouched
    assert not out[10, 280].any()  # far away: untouched
    assert out[60 - 8, 55].any()  # label drawn above the box


def test_draw_detections_empty_and_out_of_frame_boxes():
    image = np.full((50, 60, 3), 7, np.uint8)
    out = draw_detections(image, Detections.empty(NAMES))
    assert out is not image and np.array_equal(out, image)
    out = draw_detections(image, _dets((-20, -20, 500, 500), cls=2))  # clipped, no exception
    assert out[25, 0].any() and (out != 7).any()


def test_a_label_at_the_right_edge_is_moved_inside_the_frame_whole():
    """A person at the right edge of the picture kept a label cut off by the frame's edge."""
    image = np.zeros((200, 300, 3), np.uint8)
    out = draw_detections(image, _dets((280, 60, 299, 180)))
    (text_w, _), _ = cv2.getTextSize("person 0.90", cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    label_rows = out[40:58]  # the label sits above the box's top (y 60)
    filled = np.flatnonzero((label_rows == (0, 200, 0)).all(axis=2).any(axis=0))
    assert filled.size and filled.max() == 299  # it ends at the frame's right edge ...
    assert filled.max() - filled.min() + 1 >= text_w + 4  # ... with room for the whole text


def test_draw_status_writes_in_place():
    image = np.zeros((100, 200, 3), np.uint8)
    assert draw_status(image, "12.0 fps") is image and image[:20, :60].any()


def _result(i: int, dets: Detections, size=(64, 48)) -> Result:
    img = np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8)
    return Result(Frame(i, time.monotonic(), time.time(), img, None, "test"), dets, 12.5)


def test_video_writer_sink_writes_every_frame(tmp_path: Path):
    path = tmp_path / "out.mp4"
    sink = VideoWriterSink(path, fps=12)
    for i in range(9):
        sink(_result(i, _dets((5, 5, 30, 30)) if i % 2 else Detections.empty(NAMES)))
    sink.close()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (48, 64, 3)
        n += 1
    cap.release()
    assert n == 9 and sink.frames == 9


def test_video_writer_sink_rejects_bad_paths(tmp_path: Path):
    with pytest.raises(EdgeDetectError, match="unknown extension .gif"):
        VideoWriterSink(tmp_path / "out.gif", 10)
    with pytest.raises(EdgeDetectError, match="does not exist"):
        VideoWriterSink(tmp_path / "missing" / "out.mp4", 10)


def test_jsonl_sink_logs_frames_with_detections(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path)
    sink(_result(0, Detections.empty(NAMES)))
    sink(_result(1, _dets((1, 2, 3, 4))))
    skipped = _result(2, Detections.empty(NAMES))
    skipped.skipped = True
    sink(skipped)
    sink(_result(3, _dets((5, 6, 7, 8), (9, 9, 20, 20))))
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["frame"] for x in lines] == [1, 3]
    assert lines[1]["detections"][1] == {
        "label": "person",
        "score": 0.9,
        "box": [9.0, 9.0, 20.0, 20.0],
    }
    assert lines[0]["time"].endswith("+00:00") and lines[0]["inference_ms"] == 12.5


def test_display_detection_without_display_or_gui(monkeypatch):
    from edgedetect.preview import display_available

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ok, why = display_available()
    assert not ok and "DISPLAY" in why
    monkeypatch.setenv("DISPLAY", ":99")  # no X server there, or a headless OpenCV build
    ok, why = display_available()
    assert not ok and why


def test_preview_sink_hands_the_newest_annotated_frame_to_the_window():
    from edgedetect.preview import PreviewSink

    sink = PreviewSink()
    first, second = _result(0, _dets((5, 5, 30, 30))), _result(1, Detections.empty(NAMES))
    sink(first)
    sink(second)  # the window thread was slow: only the newest frame is kept
    shown = sink.slot.get(0.1)
    assert shown is not None
    assert sink.slot.dropped == 1 and sink.slot.get(0.01) is None
    assert shown.shape == (48, 64, 3)
    assert not np.array_equal(shown, second.frame.image)  # status line drawn
    assert np.array_equal(second.frame.image, np.full((48, 64, 3), 20, np.uint8))  # frame intact
    sink.close()
    assert sink.slot.closed


def test_preview_sink_leaves_result_annotated_untouched():
    from edgedetect.preview import PreviewSink

    r = _result(3, _dets((5, 5, 30, 30)))
    r.annotated = draw_detections(r.frame.image, r.detections)
    before = r.annotated.copy()
    sink = PreviewSink()
    sink(r)
    shown = sink.slot.get(0.1)
    assert shown is not None
    assert np.array_equal(r.annotated, before) and not np.array_equal(shown, before)


def test_video_writer_realtime_fills_dropped_frames_by_capture_time(tmp_path: Path):
    path = tmp_path / "live.mp4"
    sink = VideoWriterSink(path, fps=10, realtime=True)
    t0 = time.monotonic()
    for i, dt in ((0, 0.0), (3, 0.3), (4, 0.4), (9, 0.9)):  # frames 1-2 and 5-8 were dropped
        img = np.full((48, 64, 3), 40 * (i % 6), np.uint8)
        sink(Result(Frame(i, t0 + dt, time.time(), img), Detections.empty(NAMES)))
    sink.close()
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10  # 0.9 s at 10 fps: plays in real time
    cap.release()
    assert sink.frames == 10 and sink.repeated == 6


def test_preview_window_loop_shows_frames_and_quits_on_q(monkeypatch):
    """The main-thread window loop, with HighGUI replaced by a recording test double."""
    import edgedetect.preview as preview

    shown: list[int] = []
    keys = iter([-1, -1, ord("q")])
    calls = {"stop": 0, "destroyed": 0}
    monkeypatch.setattr(preview.cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(preview.cv2, "imshow", lambda name, img: shown.append(int(img[-1, -1, 0])))
    monkeypatch.setattr(preview.cv2, "waitKey", lambda ms: next(keys, -1))
    monkeypatch.setattr(preview.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(
        preview.cv2,
        "destroyWindow",
        lambda *a: calls.__setitem__("destroyed", calls["destroyed"] + 1),
    )
    sink = preview.PreviewSink()
    frames = iter(range(1, 10))

    def running() -> bool:  # a new frame arrives before each loop turn, like a live pipeline
        i = next(frames, None)
        if i is not None:
            sink(_result(i, Detections.empty(NAMES)))
        return True

    quit_by_user = preview.show_until_done(sink, running, lambda: calls.__setitem__("stop", 1))
    assert quit_by_user and calls == {"stop": 1, "destroyed": 1}
    assert shown == [20, 40, 60]  # three frames shown, newest each time, then q
