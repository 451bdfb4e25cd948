"""Shared fixtures: where the real data is, and real photos from scikit-image.

Tests that need ``../shared/data`` (beside the repo root) skip with the reason when it is absent,
so a checkout without it still runs everything else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SHARED_MODELS = SHARED / "models"
COCO_MODEL = SHARED_MODELS / "ssd_mobilenet_v1_coco_quant.tflite"
COCO_LABELS = SHARED_MODELS / "coco_labels.txt"
FPNLITE_MODEL = SHARED_MODELS / "ssd_mobilenet_v2_fpnlite_320_coco_tf2.tflite"
INRIA_TEST = SHARED / "inria" / "Test"
PENNFUDAN = SHARED / "pennfudan" / "PennFudanPed"
SPLITS = SHARED / "splits"


def run_edgedetect(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m edgedetect ARGS`` in a process of its own, as a user runs it (output kept)."""
    return subprocess.run(
        [sys.executable, "-m", "edgedetect", *args], capture_output=True, text=True, timeout=timeout
    )


def astronaut_yolo_set(tmp_path: Path) -> Path:
    """The bundled astronaut as a one-image YOLO set with her person box labelled."""
    root = tmp_path / "photo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    src = REPO / "data" / "images" / "astronaut.jpg"
    (root / "images" / "astronaut.jpg").write_bytes(src.read_bytes())
    (root / "labels" / "astronaut.txt").write_text("0 0.37 0.51 0.62 0.97\n")
    return root


def need_shared(path: Path) -> Path:
    """Skip the calling test, naming the missing path, when shared data is not beside the repo."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (it lives in ../shared/data beside the repo)")
    return path


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) to open the web page for real; skips the test without them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "chromium or chromedriver not installed: apt-get install chromium "
            "chromium-driver (scripts/test.sh does it as root)"
        )
    return chromium, driver


def mosquitto_exe() -> str:
    """The mosquitto broker to test MQTT against for real; skips the test when not installed."""
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.skip("mosquitto not installed (apt-get install mosquitto): no MQTT broker to test")
    return exe


@pytest.fixture(scope="session")
def coco_model() -> tuple[Path, Path]:
    """The shared COCO SSD-MobileNet-v1 quant model and its labels."""
    return need_shared(COCO_MODEL), need_shared(COCO_LABELS)


@pytest.fixture(scope="session")
def inria_test() -> Path:
    return need_shared(INRIA_TEST)


@pytest.fixture(scope="session")
def pennfudan() -> Path:
    return need_shared(PENNFUDAN)


def skimage_bgr(name: str) -> np.ndarray:
    """A scikit-image sample photo as a BGR uint8 image (OpenCV's order)."""
    import cv2
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    return skimage_bgr("astronaut")


@pytest.fixture(scope="session")
def chelsea_bgr() -> np.ndarray:
    return skimage_bgr("chelsea")


_BOX = re.compile(
    r'Bounding box for object \d+ "PASperson" \(Xmin, Ymin\) - \(Xmax, Ymax\) : '
    r"\((\d+), (\d+)\) - \((\d+), (\d+)\)"
)


def inria_boxes(annotation: Path) -> np.ndarray:
    """Person boxes of one original INRIA annotation (0-based pixels); test-local parser."""
    return np.array([[float(v) for v in m] for m in _BOX.findall(annotation.read_text())])


def match_count(gt: np.ndarray, det: np.ndarray, iou_min: float = 0.5) -> int:
    """Ground-truth boxes matched one-to-one (greedy, best IoU first per box) at ``iou_min``."""
    from edgedetect.nms import box_iou

    if len(gt) == 0 or len(det) == 0:
        return 0
    iou = box_iou(gt, det)
    used: set[int] = set()
    for g in range(len(gt)):
        for d in np.argsort(-iou[g]):
            if iou[g, d] >= iou_min and int(d) not in used:
                used.add(int(d))
                break
    return len(used)


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (made), so that a full disk is a real one; skips the
    test where mounting is not allowed (not root, or a container without the right)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # a file still open: detach
