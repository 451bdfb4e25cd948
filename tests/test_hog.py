"""The HOG + linear SVM baseline on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedetect.errors import ModelError
from edgedetect.nms import box_iou, nms
from host_tools.datasets import load_dataset
from host_tools.hog import HogDetector
from host_tools.metrics import match_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
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
