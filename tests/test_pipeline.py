"""Pipeline mechanics (with small named test doubles) and end-to-end runs with the real model."""

from __future__ import annotations

import json
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from edgedetect.detections import Detections
from edgedetect.errors import SourceLost
from edgedetect.frame import Frame, Result
from edgedetect.pipeline import LatestSlot, Pipeline
from edgedetect.resilient import ResilientSource
from edgedetect.sources import FrameSource, open_source

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample.mp4"


# --------------------------------------------------------------------------- test doubles
class CountingSource(FrameSource):
    """Test double: ``n`` small frames whose pixels encode their own index (B + 256 * G)."""

    def __init__(self, n: int, delay: float = 0.0, live: bool = False) -> None:
        super().__init__("test:counting")
        self.n, self.delay, self.live = n, delay, live
        self.alive: weakref.WeakSet[Frame] = weakref.WeakSet()
        self.closed_calls = 0

    def _grab(self):
        i = self.next_id
        if i >= self.n:
            return None
        if self.delay:
            time.sleep(self.delay)
        img = np.zeros((24, 32, 3), np.uint8)
        img[..., 0], img[..., 1] = i % 256, i // 256
        return img, None, ""

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is not None:
            self.alive.add(frame)
        return frame

    def close(self) -> None:
        self.closed_calls += 1
        super().close()


class FrameIdEchoDetector:
    """Test double: 'detects' one box whose x1 is the frame index read from the *pixels*.

    So a result whose box does not equal its frame's id shows that boxes were paired with the
    wrong frame. ``delay`` simulates interpreter time.
    """

    names = {0: "person"}

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.infer_calls = 0
        self.threads: set[str] = set()

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        return np.array([int(bgr[0, 0, 0]) + 256 * int(bgr[0, 0, 1])], np.int64)

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        self.infer_calls += 1
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        return tensor.copy()

    def postprocess(self, raw: np.ndarray, size: tuple[int, int]) -> Detections:
        v = float(raw[0])
        return Detections(
            np.array([[v, v, v + 1, v + 1]]), np.array([0.9]), np.array([0]), self.names
        )


class Collect:
    """Sink test double that records (frame id, box x1, skipped) and whether close() ran."""

    name = "collect"

    def __init__(self) -> None:
        self.items: list[tuple[int, float | None, bool]] = []
        self.closed = False

    def __call__(self, r: Result) -> None:
        x1 = float(r.detections.xyxy[0, 0]) if len(r.detections) else None
        self.items.append((r.frame.id, x1, r.skipped))
        assert r.annotated is not None and r.annotated.shape == r.frame.image.shape

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------- LatestSlot
def test_latest_slot_keeps_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot("t")
    for i in range(5):
        assert slot.put(i)
    assert len(slot) == 1 and slot.dropped == 4
    assert slot.get(0.01) == 4
    assert slot.get(0.01) is None and len(slot) == 0


def test_latest_slot_blocking_waits_for_consumer_and_close_wakes():
    slot: LatestSlot[int] = LatestSlot("t", blocking=True)
    assert slot.put(1)
    done = []
    t = threading.Thread(target=lambda: done.append(slot.put(2)))
    t.start()
    time.sleep(0.1)
    assert not done  # still blocked: the slot holds 1
    assert slot.get(0.1) == 1
    t.join(1)
    assert done == [True] and slot.get(0.1) == 2 and slot.dropped == 0
    assert slot.put(3)
    t2 = threading.Thread(target=lambda: done.append(slot.put(4)))
    t2.start()
    time.sleep(0.05)
    slot.close()
    t2.join(1)
    assert done[-1] is False and not t2.is_alive()
    assert slot.get(0.01) == 3 and slot.get(0.01) is None  # drains, then reports closed


# --------------------------------------------------------------------------- mechanics
def test_every_frame_mode_processes_all_frames_in_order_on_their_own_frame():
    src, det, sink = CountingSource(40), FrameIdEchoDetector(delay=0.002), Collect()
    stats = Pipeline(src, det, [sink], every_frame=True).run(timeout=30)
    assert [i for i, _, _ in sink.items] == list(range(40))
    assert all(x1 == i for i, x1, _ in sink.items)
    assert stats["captured"] == stats["inferred"] == stats["output"] == 40
    assert stats["dropped"] == {"capture": 0, "inference": 0}
    assert stats["state"] == "finished" and stats["source_state"] == "ended"
    assert sink.closed and src.closed_calls == 1
    assert det.threads == {"edgedetect-inference"}


def test_latest_mode_drops_oldest_counts_every_frame_and_stays_bounded():
    src, det, sink = CountingSource(300), FrameIdEchoDetector(delay=0.01), Collect()
    peak = []

    def watch(_: Result) -> None:  # frames alive while the fast source outruns the detector
        peak.append(len(src.alive))

    stats = Pipeline(src, det, [sink, watch]).run(timeout=60)
    ids = [i for i, _, _ in sink.items]
    assert ids == sorted(set(ids)) and ids[-1] == 299  # strictly increasing, last frame kept
    assert all(x1 == i for i, x1, _ in sink.items)  # boxes always from their own frame
    assert stats["dropped"]["capture"] > 100
    # exact accounting: every captured frame was either inferred or dropped at a slot
    assert stats["captured"] == 300
    assert stats["inferred"] + stats["dropped"]["capture"] == 300
    assert stats["output"] == stats["inferred"] - stats["dropped"]["inference"]
    assert det.infer_calls == stats["inferred"]
    # capture (reading + in slot), inference (taken + previous locals), out slot, output: a
    # handful at any moment, never the ~290 that an unbounded queue would hold here
    assert max(peak) <= 8


def test_gate_false_skips_inference_and_emits_empty_skipped_result():
    src, det, sink = CountingSource(30), FrameIdEchoDetector(), Collect()
    stats = Pipeline(src, det, [sink], gate=lambda f: f.id % 3 == 0, every_frame=True).run(30)
    assert len(sink.items) == 30
    for i, x1, skipped in sink.items:
        assert skipped == (i % 3 != 0)
        assert (x1 is None) == skipped and (skipped or x1 == i)
    assert det.infer_calls == 10 and stats["inferred"] == 10 and stats["skipped"] == 20


def test_gate_that_raises_is_counted_and_inference_runs():
    def bad_gate(frame: Frame) -> bool:
        raise RuntimeError("gate bug")

    det, sink = FrameIdEchoDetector(), Collect()
    stats = Pipeline(CountingSource(5), det, [sink], gate=bad_gate, every_frame=True).run(10)
    assert stats["gate_errors"] == 5 and det.infer_calls == 5 and len(sink.items) == 5


def test_sink_that_raises_is_logged_counted_and_not_fatal(caplog):
    class Broken:
        name = "broken"
        closed = False

        def __call__(self, r: Result) -> None:
            if r.frame.id % 2:
                raise ValueError("disk full")

        def close(self) -> None:
            self.closed = True
            raise OSError("close failed too")

    broken, good = Broken(), Collect()
    stats = Pipeline(
        CountingSource(10), FrameIdEchoDetector(), [broken, good], every_frame=True
    ).run(10)
    assert [i for i, _, _ in good.items] == list(range(10))  # later sinks still get every frame
    assert stats["sink_errors_by_sink"] == {"broken": 6}  # 5 frames + the failing close()
    assert stats["sink_errors"] == 6 and stats["state"] == "finished"
    assert broken.closed and good.closed
    assert "disk full" in caplog.text


def test_stop_returns_in_time_with_a_source_that_blocks_forever():
    release = threading.Event()

    class BlockingSource(CountingSource):
        """Test double: three frames, then read() blocks like a dead USB camera."""

        def _grab(self):
            if self.next_id >= 3:
                release.wait()
                return None
            return super()._grab()

    src, sink = BlockingSource(100, live=True), Collect()
    p = Pipeline(src, FrameIdEchoDetector(), [sink]).start()
    deadline = time.monotonic() + 10
    while len(sink.items) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    ok = p.stop(timeout=0.5)
    assert time.monotonic() - t0 < 1.5
    assert ok is False  # the capture thread is stuck in read(), and says so
    assert p.stats()["threads_alive"] == ["edgedetect-capture"]
    assert sink.closed  # writers flushed even though the source is stuck
    release.set()  # the read returns: the capture thread ends and releases the source
    p._threads[0].join(2)
    assert not p._threads[0].is_alive() and src.closed_calls == 1


def test_a_sink_with_idle_is_called_in_the_output_thread_while_no_frame_comes(caplog):
    """The service ends a visit when its camera is gone; the output thread owns the sink's
    state, so it must be the one to notice the silence (it was never called without a frame)."""
    release = threading.Event()

    class SilentSource(CountingSource):
        """Test double: three frames, then read() blocks (a stream that went away)."""

        def _grab(self):
            if self.next_id >= 3:
                release.wait(10)
                return None
            return super()._grab()

    class Idle(Collect):
        def __init__(self) -> None:
            super().__init__()
            self.idle_threads: list[tuple[str, int]] = []

        def idle(self) -> None:
            self.idle_threads.append((threading.current_thread().name, len(self.items)))
            raise RuntimeError("idle failed")  # counted, logged once, called again

    sink = Idle()
    p = Pipeline(SilentSource(100, live=True), FrameIdEchoDetector(), [sink]).start()
    try:
        deadline = time.monotonic() + 10
        while len([n for _, n in sink.idle_threads if n >= 1]) < 3:  # after a frame, silence
            assert time.monotonic() < deadline, sink.idle_threads
            time.sleep(0.02)
    finally:
        release.set()
        p.stop(2)
    assert {name for name, _ in sink.idle_threads} == {"edgedetect-output"}
    assert caplog.text.count("failed while idle") == 1
    assert p.stats()["sink_errors_by_sink"]["collect"] >= 3


def test_a_sink_may_stop_the_pipeline():
    sink = Collect()
    box: list[Pipeline] = []

    def stop_after_three(r: Result) -> None:
        if r.frame.id == 2:
            box[0].stop()

    p = Pipeline(
        CountingSource(1000), FrameIdEchoDetector(), [sink, stop_after_three], every_frame=True
    )
    box.append(p)
    stats = p.run(timeout=10)
    assert stats["state"] == "stopped" and stats["sink_errors"] == 0
    assert 3 <= len(sink.items) < 1000 and sink.closed and not stats["threads_alive"]


def test_source_lost_ends_pipeline_with_a_distinguishable_error():
    class Unplugged(CountingSource):
        def _grab(self):
            if self.next_id == 4:
                raise SourceLost("usb:0 stopped delivering frames")
            return super()._grab()

    sink = Collect()
    p = Pipeline(Unplugged(10, live=True), FrameIdEchoDetector(), [sink])
    stats = p.run(10)
    assert isinstance(p.error, SourceLost)
    assert stats["state"] == "failed" and stats["source_state"] == "lost"


def test_a_wrapped_source_that_drops_is_reopened_and_ids_keep_counting():
    """The pipeline reads through the reconnecting wrapper: the device is lost once at frame 5,
    the first reopen fails, the second works, and the new source continues the numbering."""

    class Flaky(CountingSource):
        """Test double: the first opening loses the device after frame 4."""

        def __init__(self, lose_at: int | None) -> None:
            super().__init__(12, live=True)
            self.lose_at = lose_at

        def _grab(self):
            if self.next_id == self.lose_at:
                raise SourceLost("stream dropped")
            return super()._grab()

    opened: list[Flaky] = []
    attempts: list[str] = []

    def opener(spec: str) -> Flaky:
        attempts.append(spec)
        if len(attempts) == 2:
            raise SourceLost("still down")
        opened.append(Flaky(5 if not opened else None))
        return opened[-1]

    src = ResilientSource("test:flaky", opener, reconnect_min_s=0.01).open()
    sink = Collect()
    # a live source never ends by itself: stop after the 12 frames the doubles can draw
    p = Pipeline(src, FrameIdEchoDetector(delay=0.03), [sink], max_frames=12)
    stats = p.run(10)
    assert p.error is None and stats["state"] == "finished"
    assert stats["reconnects"] == 2 and stats["source_stats"]["errors"] == 1 and len(opened) == 2
    assert opened[1].next_id >= 12  # the new source was told where to continue
    assert stats["captured"] == 12 and sink.items[-1][0] == 11
    assert all(x1 == i for i, x1, _ in sink.items)  # boxes (from pixels) on their own frames


def test_stats_show_a_wrapped_source_reconnecting():
    """While the wrapper waits to reopen a lost source, the pipeline runs on and says so."""
    opens: list[int] = []

    def opener(spec: str) -> CountingSource:
        opens.append(1)
        if len(opens) > 1:
            raise SourceLost("still down")
        return CountingSource(3, live=True)  # a live source whose end is a drop

    src = ResilientSource("test:gone", opener, reconnect_min_s=0.05, reconnect_max_s=0.05).open()
    p = Pipeline(src, FrameIdEchoDetector(), [Collect()]).start()
    try:
        deadline = time.monotonic() + 10
        while p.stats()["source_state"] != "reconnecting" and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = p.stats()
        assert stats["source_state"] == "reconnecting" and stats["state"] == "running"
        assert stats["source_stats"]["connected"] is False and stats["captured"] == 3
    finally:
        src.close()  # ends the read that waits for a reopen, so the capture thread can stop
        stopped = p.stop(timeout=5.0)
    assert stopped and p.stats()["threads_alive"] == []


def test_every_frame_is_refused_for_live_sources():
    with pytest.raises(ValueError, match="live"):
        Pipeline(CountingSource(1, live=True), FrameIdEchoDetector(), every_frame=True)


def test_pace_limits_the_capture_rate():
    src, sink = CountingSource(12), Collect()
    t0 = time.monotonic()
    Pipeline(src, FrameIdEchoDetector(), [sink], pace=40.0).run(10)
    elapsed = time.monotonic() - t0
    assert len(sink.items) >= 10 and elapsed >= 11 / 40.0  # 12 frames at 40/s take >= 0.275 s


class FakeClock:
    """A monotonic clock that moves only when the stage waits on it or a read says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.stopped = False

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now

    def wait(self, timeout: float | None = None) -> bool:  # the stage's stop event
        self.now += timeout or 0.0
        return self.stopped

    def is_set(self) -> bool:
        return self.stopped


def test_pace_resumes_at_the_file_rate_after_a_gap(monkeypatch):
    """A looping file retried for 14 s (gone, then back) was read at full speed until the pace
    had made up the missed time: 210 frames in a burst. After a gap, the pace starts anew."""
    from edgedetect import stages

    clock = FakeClock()
    monkeypatch.setattr(stages, "time", clock)

    class GapAt5(CountingSource):
        def _grab(self):
            if self.next_id == 5:
                clock.now += 14.0  # the read that waits out the file's absence
            return super()._grab()

    src = GapAt5(60)
    stats = stages.PipelineStats()
    stage = stages.CaptureStage(
        src,
        FrameIdEchoDetector(),
        LatestSlot("capture"),
        clock,  # type: ignore[arg-type]
        stats,
        gate=None,
        every_frame=False,
        pace=15.0,
        max_frames=36,
    )
    stage.run()
    after_gap = clock.now - (1000.0 + 5 / 15.0 + 14.0)  # when frame 5 came back
    assert stats.captured == 36
    assert after_gap == pytest.approx(30 / 15.0, abs=0.1)  # 30 frames more at 15/s: 2 s, no burst


def test_max_frames_stops_capture():
    src, sink = CountingSource(100), Collect()
    stats = Pipeline(src, FrameIdEchoDetector(), [sink], every_frame=True, max_frames=7).run(10)
    assert stats["captured"] == 7 and [i for i, _, _ in sink.items] == list(range(7))


# --------------------------------------------------------------------------- real model
@pytest.fixture(scope="module")
def coco_detectors(coco_model):
    from edgedetect.detector import Detector

    model, labels = coco_model
    # one for the pipeline, one as the reference (a Detector is used by one thread at a time)
    return (Detector(model, labels, num_threads=1), Detector(model, labels, num_threads=1))


def _same(a: Detections, b: Detections) -> bool:
    return (
        len(a) == len(b)
        and np.allclose(a.xyxy, b.xyxy, atol=0.01)
        and np.allclose(a.score, b.score, atol=1e-6)
    )


def test_real_model_every_frame_boxes_belong_to_their_frame(coco_detectors):
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE} (run python data/make_sample.py)")
    segments = json.loads((SAMPLE.with_suffix(".json")).read_text())["segments"]
    det, ref = coco_detectors
    results: list[Result] = []
    stats = Pipeline(
        open_source(str(SAMPLE)), det, [results.append], every_frame=True, max_frames=60
    ).run(timeout=120)
    assert [r.frame.id for r in results] == list(range(60)) and stats["dropped"]["capture"] == 0
    for r in results:
        seg = next(s for s in segments if s["first"] <= r.frame.id <= s["last"])
        persons = [d for d in r.detections.to_json() if d["label"] == "person"]
        assert bool(persons) == seg["person"], (r.frame.id, seg["photo"], persons)
    for r in results[::6]:  # the same boxes the detector gives on that very frame
        assert _same(r.detections, ref.detect(r.frame.image)), r.frame.id


def test_real_model_latest_mode_drops_but_never_mixes_frames(coco_detectors):
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE} (run python data/make_sample.py)")
    det, ref = coco_detectors
    results: list[Result] = []
    stats = Pipeline(open_source(str(SAMPLE)), det, [results.append]).run(timeout=120)
    assert stats["captured"] == 120 and stats["dropped"]["capture"] > 0
    assert stats["inferred"] + stats["dropped"]["capture"] == 120
    assert results and results[-1].frame.id == 119
    for r in results:
        assert _same(r.detections, ref.detect(r.frame.image)), r.frame.id


def test_stats_can_be_read_from_another_thread_while_running():
    """The service scrapes stats() from its HTTP thread while the stages append timings."""
    src, sink = CountingSource(400), Collect()
    p = Pipeline(src, FrameIdEchoDetector(delay=0.001), [sink], every_frame=True).start()
    snapshots = []
    while not p.wait(0):
        snapshots.append(p.stats())
    p.stop()
    final = p.stats()
    assert len(snapshots) > 10 and final["output"] == 400
    assert all(json_ok(s) for s in snapshots[:: max(1, len(snapshots) // 20)])
    assert {"capture", "inference", "output"} == set(final["fps"])
    assert final["timings_ms"]["inference"]["count"] == 400
    assert final["timings_ms"]["inference"]["p95"] >= final["timings_ms"]["inference"]["p50"] >= 1.0


def json_ok(stats: dict) -> bool:
    return json.loads(json.dumps(stats)) == stats
