"""ClipRecorder with synthetic frames and real OpenCV encoding into tmp_path.

Each camera frame encodes its index in two flat gray halves (base-16 digits, 16 levels apart,
far above the codec's error), so a decoded clip tells which camera frames it holds: the
pre-roll, the episode, the post-roll.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import small_tmpfs
from test_service_support import poll

from edgedetect.detections import Detections
from edgedetect.frame import Frame
from edgedetect.service.clip_recorder import (
    MAX_HOLD_S,
    ClipRecorder,
    Shot,
    _Encoder,
    clip_size,
)
from edgedetect.service.config import clip_buffer_frames, clip_frame_bytes
from edgedetect.service.events import utc_stamp

CAMERA_FPS = 10.0  # synthetic camera; the clips sample it down to FPS
FPS = 5.0
WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NO_DETS = Detections.empty()


def frame(i: int) -> Frame:
    t = i / CAMERA_FPS
    image = np.empty((240, 320, 3), dtype=np.uint8)
    image[:, :160] = 16 * (i // 16 % 16) + 8
    image[:, 160:] = 16 * (i % 16) + 8
    return Frame(i, 1000.0 + t, WALL0 + t, image)


def index_of(img: np.ndarray) -> int:
    w = img.shape[1]
    hi, lo = (float(img[:, a:b].mean()) for a, b in ((0, w // 2 - 8), (w // 2 + 8, w)))
    return 16 * round((hi - 8) / 16) + round((lo - 8) / 16)


def recorder(
    d: Path,
    *,
    pre_s: float = 1.0,
    post_s: float = 1.0,
    max_s: float = 60.0,
    annotated: bool = False,
    max_files: int = 100,
    # a queue far longer than any test: the synthetic camera outruns any encoder
    queue_frames: int | None = 1000,
) -> ClipRecorder:
    return ClipRecorder(
        d,
        pre_s=pre_s,
        post_s=post_s,
        max_s=max_s,
        fps=FPS,
        width=160,
        annotated=annotated,
        max_bytes=10**9,
        max_files=max_files,
        queue_frames=queue_frames,
    )


def play(rec: ClipRecorder, people: list[int]) -> list[str]:
    """Push one frame per entry of `people`; returns what push answered."""
    return [rec.push(frame(i), NO_DETS, n) for i, n in enumerate(people)]


def decoded_indices(path: Path) -> list[int]:
    """Camera frame index of every frame in the clip (from its gray level)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(index_of(img))
    cap.release()
    return out


def clips(d: Path) -> list[Path]:
    return sorted(d.glob("*.mp4"))


def no_partial_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".part" in p.name]


def test_one_episode_has_preroll_episode_and_postroll(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    people = [0] * 30 + [1] * 20 + [0] * 50  # person from t=3.0 s to t=5.0 s
    names = play(rec, people)
    rec.close()
    assert names[:30] == [""] * 30 and names[-1] == ""
    name = names[30]
    assert name == f"{utc_stamp(WALL0 + 3.0)}_clip.mp4"
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z_clip\.mp4", name)
    assert set(names[30:51]) == {name}  # the frame where the count falls to 0 still names it
    assert clips(tmp_path) == [tmp_path / name] and rec.saved == 1 and rec.failed == 0
    assert rec.dropped == 0
    got = decoded_indices(tmp_path / name)
    # pre 1 s + episode 2 s + post 1 s at FPS; one sampling period of slack at each end
    expected = (1.0 + 2.0 + 1.0) * FPS
    assert abs(len(got) - expected) <= 2, got
    period = CAMERA_FPS / FPS  # camera frames per clip frame
    assert 30 - 1.0 * CAMERA_FPS - period <= got[0] < 30  # starts with frames before the person
    assert any(abs(g - 30) <= 1 for g in got)
    assert 50 + 1.0 * CAMERA_FPS - period <= got[-1] <= 50 + 1.0 * CAMERA_FPS + period
    assert got == sorted(got)
    assert no_partial_files(tmp_path)


def test_person_back_within_post_s_continues_the_clip(tmp_path: Path) -> None:
    rec = recorder(tmp_path, post_s=1.0)
    people = [0] * 20 + [1] * 10 + [0] * 5 + [1] * 10 + [0] * 40  # gap 0.5 s < post_s
    names = play(rec, people)
    rec.close()
    assert len(set(names) - {""}) == 1 and len(clips(tmp_path)) == 1
    got = decoded_indices(clips(tmp_path)[0])
    expected = (1.0 + 2.5 + 1.0) * FPS
    assert abs(len(got) - expected) <= 2, got


def test_gap_longer_than_post_s_makes_two_clips(tmp_path: Path) -> None:
    rec = recorder(tmp_path, post_s=0.5)
    people = [0] * 20 + [1] * 10 + [0] * 20 + [1] * 10 + [0] * 20  # gap 2 s > post_s
    names = play(rec, people)
    rec.close()
    assert len(set(names) - {""}) == 2 and len(clips(tmp_path)) == 2 and rec.saved == 2


def test_max_s_continues_in_a_new_file(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_s=2.0, pre_s=0.5, post_s=0.5)
    people = [0] * 10 + [1] * 50 + [0] * 20  # 5 s episode
    names = play(rec, people)
    rec.close()
    files = clips(tmp_path)
    assert [f.name for f in files] == sorted(set(names) - {""})
    assert len(files) == 3  # 2 s + 2 s + the rest
    counts = [len(decoded_indices(f)) for f in files]
    assert all(c <= 2.0 * FPS + 1 for c in counts), counts
    assert abs(sum(counts) - (0.5 + 5.0 + 0.5) * FPS) <= 3, counts
    firsts = [decoded_indices(f)[0] for f in files]
    assert firsts == sorted(firsts) and firsts[1] > 10  # the second file is no pre-roll again


def test_retention_keeps_the_newest_files(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_files=2, pre_s=0.0, post_s=0.0)
    people = ([0] * 5 + [1] * 5) * 4 + [0] * 5
    names = [n for n in dict.fromkeys(play(rec, people)) if n]
    rec.close()
    assert len(names) == 4
    assert [f.name for f in clips(tmp_path)] == names[-2:]


def test_unwritable_folder_loses_the_clip_then_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder's parent should be")  # stops root too
    d = blocker / "clips"
    rec = recorder(d, pre_s=0.5, post_s=0.5)
    play(rec, [0] * 5 + [1] * 10 + [0] * 10)
    rec.push(frame(100), NO_DETS, 0)  # nothing happens while idle
    rec.close()
    assert rec.failed == 1 and rec.saved == 0
    blocker.unlink()
    rec = recorder(d, pre_s=0.5, post_s=0.5)
    names = play(rec, [0] * 5 + [1] * 10 + [0] * 10)
    rec.close()
    assert rec.saved == 1 and rec.failed == 0 and clips(d)[0].name == names[5]
    assert no_partial_files(tmp_path)


def test_encoder_behind_drops_frames_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real_write = _Encoder._write

    def stuck_write(self: _Encoder, shot: Shot) -> None:  # test double: an encoder far behind
        gate.wait(30)
        real_write(self, shot)

    monkeypatch.setattr(_Encoder, "_write", stuck_write)
    rec = recorder(tmp_path, pre_s=1.0, post_s=1.0, queue_frames=None)  # the default bound
    play(rec, [0] * 20 + [1] * 100 + [0] * 20)  # returns although the encoder takes nothing
    assert rec.dropped > 0
    gate.set()
    rec.close(10.0)
    got = decoded_indices(clips(tmp_path)[0])
    # dropped frames are held by the frame before them: the clip keeps its real duration
    assert abs(len(got) - (1.0 + 10.0 + 1.0) * FPS) <= 2, len(got)


def test_ring_memory_is_bounded_by_the_config_formula(tmp_path: Path) -> None:
    rec = recorder(tmp_path, pre_s=2.0)
    play(rec, [0] * 200)
    section = {"pre_s": 2.0, "fps": FPS}
    assert rec.buffer_bytes == clip_buffer_frames(section) * 160 * 120 * 3
    assert rec.buffer_bytes <= clip_buffer_frames(section) * clip_frame_bytes(160)
    rec.close()
    assert clips(tmp_path) == []


def test_close_finishes_an_open_clip(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    names = play(rec, [0] * 10 + [1] * 20)
    rec.close()
    assert clips(tmp_path) == [tmp_path / names[-1]] and rec.push(frame(99), NO_DETS, 1) == ""


def test_annotated_clip_draws_the_boxes(tmp_path: Path) -> None:
    rec = recorder(tmp_path, annotated=True, pre_s=0.0, post_s=0.0)
    box = Detections(
        np.array([[80, 60, 240, 180]], dtype=np.float32),
        np.array([0.9]),
        np.array([0]),
        {0: "person"},
        np.array([1]),
    )
    for i in range(10):
        rec.push(frame(i), box, 1)
    rec.push(frame(10), NO_DETS, 0)
    rec.close()
    cap = cv2.VideoCapture(str(clips(tmp_path)[0]))
    ok, img = cap.read()
    cap.release()
    assert ok and img.shape[:2] == (120, 160)
    green = (img[:, :, 1].astype(int) - img[:, :, 2].astype(int)) > 80
    assert green[30, 40:120].mean() > 0.5  # the box's top edge, scaled to the clip


@pytest.mark.parametrize("w,h", [(640, 480), (1920, 1080), (480, 640), (100, 80)])
def test_clip_size_fits_the_ring_bound(w: int, h: int) -> None:
    cw, ch = clip_size(w, h, 320)
    assert cw % 2 == 0 and ch % 2 == 0 and cw <= min(w, 320) and ch <= 240
    assert cw * ch * 3 <= clip_frame_bytes(320)
    assert abs(cw / ch - w / h) < 0.05 * w / h


def test_camera_gap_holds_the_last_picture(tmp_path: Path) -> None:
    rec = recorder(tmp_path, pre_s=0.0, post_s=0.0)
    for i in [*range(0, 20), *range(29, 49)]:  # the camera delivers nothing from 2 s to 2.9 s
        rec.push(frame(i), NO_DETS, 1)
    rec.push(frame(49), NO_DETS, 0)
    rec.close()
    got = decoded_indices(clips(tmp_path)[0])
    assert abs(len(got) - 4.9 * FPS) <= 2, got  # real time: 0 s .. 4.9 s (a gap < MAX_HOLD_S)
    held = [g for g in got if 18 <= g < 29]
    assert len(held) >= 0.9 * FPS - 1 and len(set(held)) == 1, got  # one picture through the gap


def test_a_long_camera_gap_holds_the_last_picture_for_one_second_only(tmp_path: Path) -> None:
    """A camera gone for 30 s inside an episode: the clip was padded with the frozen picture
    through all of it (up to max_s); now it holds it for MAX_HOLD_S and goes on."""
    rec = recorder(tmp_path, pre_s=0.0, post_s=0.0)
    for i in [*range(0, 20), *range(220, 240)]:  # nothing from 2 s to 22 s
        rec.push(frame(i), NO_DETS, 1)
    rec.push(frame(240), NO_DETS, 0)
    rec.close()
    got = decoded_indices(clips(tmp_path)[0])
    assert abs(len(got) - (4.0 + MAX_HOLD_S) * FPS) <= 2, got  # 2 s + 1 s held + 2 s
    held = [g for g in got if 18 <= g < 220]
    assert len(held) <= (MAX_HOLD_S + 0.2) * FPS + 1 and len(set(held)) == 1, got
    assert got == sorted(got) and got[-1] >= 236  # what came after the gap is all there


def test_cut_finishes_the_open_clip_at_its_last_frame(tmp_path: Path) -> None:
    """The source is gone mid-episode: `cut` ends the clip with what it holds, and the episode
    after the outage is a new clip (not the old one padded through the gap)."""
    rec = recorder(tmp_path, pre_s=0.0, post_s=5.0)
    names = play(rec, [1] * 20)  # 2 s of a person, then the camera is gone
    assert rec.cut() == names[-1] and rec.clip == "" and rec.cut() == ""
    after = [rec.push(frame(i), NO_DETS, 1) for i in range(300, 310)]  # back 28 s later
    rec.close()
    files = clips(tmp_path)
    assert [f.name for f in files] == sorted({names[-1], after[-1]}) and rec.saved == 2
    got = decoded_indices(tmp_path / names[-1])
    assert abs(len(got) - 2.0 * FPS) <= 2 and max(got) < 20, got  # ends at its last real frame


def test_codec_probe_prints_nothing_even_when_verbose(tmp_path: Path) -> None:
    """Asking OpenCV for H.264 first is expected to fail on builds without it; that failure's
    FFmpeg and OpenCV lines (FFmpeg's on stdout) must not reach the service's journal."""
    script = (
        "import logging, pathlib, sys\n"
        "logging.getLogger('edgedetect').setLevel(logging.INFO)\n"  # verbose: native logs on
        "from edgedetect.runtime import quiet_opencv\n"
        "quiet_opencv()\n"
        "from edgedetect.service.clip_recorder import open_writer\n"
        "w = open_writer(pathlib.Path(sys.argv[1]) / 'a.mp4', 5.0, (64, 48))\n"
        "assert w is not None and w.isOpened()\n"
        "w.release()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", (done.stdout, done.stderr)


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Wait for the encoder thread to reach a state (a bounded wait, not a timing check)."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def parts(d: Path) -> list[Path]:
    return sorted(d.glob(".*.part.mp4"))


def test_a_reloads_new_recorder_keeps_the_clip_the_old_one_is_writing(tmp_path: Path) -> None:
    # A reload builds a new recorder on the same folder while the old one still writes its
    # clip. The new one's first write took the old part file for a crash's leftover and deleted
    # it (the clip was lost), and the old clip, published into an index no one used any more,
    # was never counted by the retention (the folder grew past max_files until a restart).
    old = recorder(tmp_path, max_files=2)
    play(old, [0] * 10 + [1] * 10)  # an episode is being recorded
    assert wait_for(lambda: len(parts(tmp_path)) == 1), "the old recorder opened no file"
    new = recorder(tmp_path, max_files=2)
    people = [1] * 10 + [0] * 15 + [1] * 10 + [0] * 20  # two episodes (post_s: 10 frames)
    pushed = [new.push(frame(100 + i), NO_DETS, n) for i, n in enumerate(people[:10])]
    opened = tmp_path / f".{pushed[0]}.part.mp4"
    assert wait_for(opened.exists), "the new recorder opened no file"
    old.close()
    pushed += [new.push(frame(110 + i), NO_DETS, n) for i, n in enumerate(people[10:])]
    new.close()
    assert (old.saved, old.failed) == (1, 0), "the clip being recorded at the reload was lost"
    assert (new.saved, new.failed) == (2, 0)
    names = [p.name for p in clips(tmp_path)]
    assert names == sorted(set(pushed) - {""}), f"max_files = 2 not kept: {names}"
    assert not parts(tmp_path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (root only), so that a full disk is a real one."""
    with small_tmpfs(tmp_path / "disk", "1m") as mnt:
        yield mnt


def test_a_full_disk_deletes_the_oldest_clips_not_every_new_one(small_disk: Path) -> None:
    # The disk filled up (by the clips themselves, the journal, anything): each new clip was
    # lost while every old one was kept, for good. Now the oldest clips make room, as the
    # snapshots do; other files are never touched.
    d = small_disk / "clips"
    d.mkdir()
    old = [d / utc_stamp(WALL0 - 3600 + 60 * i).join(("", "_clip.mp4")) for i in range(8)]
    for i, p in enumerate(old):
        p.write_bytes(os.urandom(30_000))
        os.utime(p, (WALL0 - 3600 + 60 * i,) * 2)
    mine = d / "my_video.mp4"
    mine.write_bytes(b"the user's own file")
    with open(small_disk / "filler", "wb", buffering=0) as fh:  # the rest of the disk: full
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 4096)
    rec = recorder(d)
    names = set(play(rec, [0] * 10 + [1] * 20 + [0] * 20)) - {""}
    rec.close()
    assert (rec.saved, rec.failed) == (1, 0), "the new clip was lost on the full disk"
    kept = [p for p in old if p.exists()]
    assert kept and kept == old[len(old) - len(kept) :], "not the oldest clips were deleted"
    assert {p.name for p in clips(d)} == {p.name for p in kept} | names | {mine.name}
    assert mine.read_bytes() == b"the user's own file"
    assert len(decoded_indices(d / names.pop())) > 0


def test_clips_max_mb_counts_the_same_mib_as_snapshots_and_events(tmp_path: Path) -> None:
    # [clips] max_mb counted 10^6 bytes while [snapshots] and [events] max_mb count 2^20: the
    # same "max_mb = 1" kept a clips folder 48,576 bytes smaller than a snapshots folder.
    from edgedetect.service.config import validate
    from edgedetect.service.events import JsonlWriter
    from edgedetect.service.snapshots import SnapshotStore

    raw = {
        "clips": {"dir": str(tmp_path / "clips"), "max_mb": 3},
        "snapshots": {"dir": str(tmp_path / "snaps"), "max_mb": 3},
        "events": {"jsonl": str(tmp_path / "events.jsonl"), "max_mb": 3},
    }
    config = validate(raw, "<test>", check_files=False)
    rec = ClipRecorder.from_config(config.clips)
    rec.close()
    snaps = SnapshotStore.from_config(config.snapshots).retention.max_bytes
    events = JsonlWriter.from_config(config.events).max_bytes
    assert (rec.max_bytes, snaps, events) == (3 * 2**20,) * 3


def test_a_closed_recorder_frees_its_preroll_without_waiting_for_the_gc(tmp_path: Path) -> None:
    # Each reload that changes [clips] closes the old recorder and builds a new one. The closed
    # recorder and its writer refer to each other, so its pre-roll ring (14 MiB of frames with
    # the defaults) was freed only by a cyclic garbage collection, which may come dozens of
    # reloads later: the service's RSS grew by ~65 MiB over 125 reloads.
    import gc
    import tracemalloc

    gc.collect()
    gc.disable()  # as when no collection happens to run between two reloads
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rec = recorder(tmp_path, pre_s=3.0)
        play(rec, [0] * 40)  # a full ring, no episode
        ring = rec.buffer_bytes
        assert ring == 16 * 160 * 120 * 3, "the ring was not filled"  # 3 s x 5 fps + 1, 160 px
        rec.close()
        del rec
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()
    assert after - before < ring / 4, f"{after - before} of {ring} ring bytes still held"


def test_a_clip_whose_folder_is_deleted_mid_clip_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The clips folder removed while a clip was written: the clip is lost, as documented, but
    the log said "lost: no frames", which sends an owner looking for a camera fault."""
    d = tmp_path / "clips"
    rec = recorder(d, pre_s=0.5, post_s=0.5)
    names = play(rec, [0] * 5 + [1] * 10)
    part = d / f".{names[5]}.part.mp4"
    deadline = time.monotonic() + 30  # the encoder thread opens the part file (upper bound)
    while not part.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert part.exists()
    shutil.rmtree(d)
    with caplog.at_level(logging.ERROR, logger="edgedetect.clips"):
        for i in range(15, 30):
            rec.push(frame(i), NO_DETS, 0)
        rec.close(timeout=30)
    assert rec.failed == 1 and rec.saved == 0
    assert f"clips: {names[5]} lost: " in caplog.text, caplog.text
    assert "no frames" not in caplog.text and "was deleted while it was written" in caplog.text


def test_a_recorder_a_reload_replaces_finishes_its_clip_without_calling_it_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload closes the old recorder with a short wait (1 s) and the encoder, still busy
    with the episode's last frames (a Pi behind by a second), went on and saved the clip: the
    log said 'encoder still busy after 1.0 s; the last clip is lost', then 'clips: saved' of
    the same clip. Only a service that exits loses it. Here the wait is 0 s: always busy."""
    rec = recorder(tmp_path)
    names = play(rec, [0] * 10 + [1] * 60)  # the episode goes on when the reload comes
    with caplog.at_level(logging.INFO, logger="edgedetect.clips"):
        rec.close(0.0)  # as reload.commit does, with no time to finish
        assert poll(lambda: rec.saved == 1, 30), "the clip was never saved"
    assert clips(tmp_path) == [tmp_path / names[-1]]
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "lost" in m], said
