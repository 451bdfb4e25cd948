"""Motion gate on real photos: still scenes skip, motion runs, and a still scene runs every K s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from conftest import skimage_bgr

from edgedetect.service.motion import MotionGate


@dataclass
class FakeClockTestDouble:
    t: float = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class FrameTestDouble:
    image: np.ndarray
    lores: np.ndarray | None = None


def test_still_scene_skips_but_runs_every_k_seconds() -> None:
    clock = FakeClockTestDouble()
    gate = MotionGate(max_interval_s=2.0, hold_s=0.5, clock=clock)
    img = skimage_bgr("coffee")
    decisions = []
    for i in range(50):  # 5 s at 10 fps of the same image
        clock.t = i * 0.1
        decisions.append(gate(FrameTestDouble(img)))
    assert decisions[0] is True  # the first frame always runs
    runs = [i for i, d in enumerate(decisions) if d]
    # first frame + hold 0.5 s, then one run every 2 s
    assert runs[:6] == [0, 1, 2, 3, 4, 5]
    assert 25 in runs and 45 in runs
    assert gate.skipped == 50 - len(runs) and gate.skipped >= 40


def test_motion_runs_inference_and_noise_does_not() -> None:
    clock = FakeClockTestDouble()
    gate = MotionGate(max_interval_s=100.0, hold_s=0.0, clock=clock)
    scene = skimage_bgr("chelsea")
    person = skimage_bgr("astronaut")
    rng = np.random.default_rng(0)
    clock.t = 0.0
    gate(FrameTestDouble(scene))
    # sensor noise (+-3 grey levels) is not motion
    noisy = np.clip(scene.astype(np.int16) + rng.integers(-3, 4, scene.shape), 0, 255).astype(
        np.uint8
    )
    clock.t = 1.0
    assert gate(FrameTestDouble(noisy)) is False
    # a person pasted into the scene is
    moved = scene.copy()
    moved[50:250, 100:250] = person[100:300, 150:300]
    clock.t = 2.0
    assert gate(FrameTestDouble(moved)) is True
    assert gate.last_area > 0.05


def test_uses_lores_when_present() -> None:
    clock = FakeClockTestDouble()
    gate = MotionGate(max_interval_s=100.0, hold_s=0.0, clock=clock)
    big = skimage_bgr("coffee")
    gate(FrameTestDouble(big, lores=np.zeros((60, 80, 3), np.uint8)))
    clock.t = 1.0
    # full image changes completely, lores does not: the gate only looks at lores
    assert gate(FrameTestDouble(255 - big, lores=np.zeros((60, 80, 3), np.uint8))) is False
