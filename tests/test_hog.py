"""The HOG + linear SVM baseline on real photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.errors import ModelError
from edgedetect.nms import box_iou, nms
from host_tools.datasets import load_dataset
from host_tools.hog import HogDetector
from host_tools.metrics import match_image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
INRIA = SHARED / "inria"


@pytest.fixture(scope="module")
def hog() -> HogDetector:
    return HogDetector(threshold=0.0)


def test_hog_finds_inria_people(hog):
    if not INRIA.exists():
        pytest.skip(f"shared data not found: {INRIA}")
    by = {s.name: s for s in load_dataset(f"inria:{INRIA}")}
    for name, min_found in (("crop001501.png", 3), ("person_138.png", 2)):
        s = by[name]
        det = hog.detect(cv2.imread(str(s.image_path)))
        m = match_image(det.xyxy, det.score, s.boxes)
        assert m.tp[np.argmax(det.score)], f"{name}: the strongest HOG window is not on a person"
        assert m.tp.sum() >= min_found, f"{name}: {m.tp.sum()} of {len(s.boxes)} people found"
        assert np.all(det.class_id == 0) and det.names == {0: "person"}


def test_hog_quiet_on_photos_without_people(hog):
    skdata = pytest.importorskip("skimage.data")
    for name in ("coffee", "chelsea"):
        det = hog.detect(getattr(skdata, name)()[:, :, ::-1].copy())
        assert (det.score >= 0.5).sum() == 0, f"{name}: {det.score}"


def test_hog_applies_project_nms_and_shrinks_windows(hog):
    if not INRIA.exists():
        pytest.skip(f"shared data not found: {INRIA}")
    image = cv2.imread(str(INRIA / "Test" / "pos" / "person_and_bike_006.png"))
    windows, margins = hog.raw_windows(image)
    assert len(windows) > 2 * len(hog.detect(image))  # many overlapping raw windows per person
    keep = nms(windows, margins, hog.iou_threshold, hog.max_detections)
    det = hog.detect(image)
    np.testing.assert_allclose(det.score, margins[keep])
    kept = windows[keep]
    assert (box_iou(kept, kept)[np.triu_indices(len(kept), 1)] <= hog.iou_threshold).all()
    # 64x128 windows shrunk by the 16-px training margin: half the width, 3/4 of the height
    w = kept[:, 2] - kept[:, 0]
    np.testing.assert_allclose(det.xyxy[:, 2] - det.xyxy[:, 0], w / 2, atol=1.0)


def test_missing_hog_descriptor_names_contrib_package(monkeypatch):
    monkeypatch.delattr(cv2, "HOGDescriptor")
    with pytest.raises(ModelError, match="opencv-contrib-python-headless"):
        HogDetector()


@pytest.mark.parametrize("size", [(100, 50), (48, 48), (8, 8)], ids=["strip", "thumb", "tiny"])
def test_evaluate_hog_on_an_image_lower_than_its_window(tmp_path, size):
    """An image whose padded size cannot hold HOG's 64x128 window crashed OpenCV's
    detectMultiScale: a segfault, "double free or corruption" or a cv2.error, killing the
    whole evaluation. Such an image has no window to score, so no detection."""
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("person\n")
    w, h = size
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "images" / "small.png"), image)
    (root / "labels" / "small.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "host_tools.evaluate", "--model", "hog", "--dataset"]
    cmd += [f"yolo:{root}", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert (report["images"], report["gt_boxes"], report["fn"]) == (1, 1, 1)
    assert report["detections_at_curve_threshold"] == 0
