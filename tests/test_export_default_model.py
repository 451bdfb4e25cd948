"""The committed default model (models/person_ssdlite_int8.tflite): what its model card measured,
checked through the runtime Detector on real photos (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import INRIA_TEST, SHARED, need_shared, skimage_bgr

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "person_ssdlite_int8.tflite"
LABELS = REPO / "models" / "person_ssdlite_int8.labels.txt"


@pytest.fixture(scope="module")
def detector():
    from edgedetect.detector import Detector

    return Detector(MODEL, threshold=0.5)


def test_model_file_label_file_and_card():
    assert MODEL.is_file() and MODEL.stat().st_size <= 8 * 1024 * 1024
    assert LABELS.read_text() == "person\n"
    card = (REPO / "models" / "README.md").read_text()
    for word in ("SSDLite", "MIT", "capston2", "pennfudan_fit.txt", "AP50", "int8"):
        assert word in card


def test_full_int8_with_postprocess_op(detector):
    assert detector.kind == "postprocess"
    assert detector.input_dtype == np.uint8 and detector.input_size == (300, 300)
    assert detector.names == {0: "person"}


def _inria_scores(tiles: bool) -> tuple[list[float], list[float]]:
    """Best matching score of each of the 10 INRIA people, and the scores of unmatched boxes."""
    from edgedetect.detector import Detector
    from edgedetect.images import read_bgr
    from edgedetect.nms import box_iou
    from edgedetect.tiling import TiledDetector
    from host_tools.datasets import load_dataset

    ds = load_dataset(f"inria:{need_shared(INRIA_TEST).parent}")
    assert len(ds) == 4
    det = Detector(MODEL, threshold=0.05, num_threads=1)
    run = TiledDetector(det, 2, 2) if tiles else det
    scores, false_pos = [], []
    for s in ds:
        found = run.detect(read_bgr(s.image_path))
        iou = box_iou(s.boxes, found.xyxy) if len(found) else np.zeros((len(s.boxes), 0))
        for row in iou:
            hit = row >= 0.5
            scores.append(float(found.score[hit].max()) if hit.any() else 0.0)
        false_pos += [
            float(v) for v, m in zip(found.score, np.any(iou >= 0.5, axis=0), strict=True) if not m
        ]
    assert len(scores) == 10
    return scores, false_pos


def test_finds_the_annotated_people_in_inria_test_images():
    """The 4 INRIA images (10 people, 4 of them 110-145 px tall in a 1060x605 image). Measured: 6 of
    10 at the default 0.5 (a far person of crop001501 scores 0.46, the close-up man of crop_000001
    0.05) and 7 at 0.2; no box that is no annotated person scores over 0.5 (the last default scored
    0.62 on a woman in person_and_bike_006 whom the annotation leaves out)."""
    scores, false_pos = _inria_scores(tiles=False)
    assert sum(v >= 0.5 for v in scores) >= 6
    assert sum(v >= 0.2 for v in scores) >= 7
    assert sum(v >= 0.7 for v in false_pos) == 0


def test_tiles_lift_the_small_inria_people_over_the_default_threshold():
    """With the 2x2 tiled pass the small people of crop001501 are found (measured: 8 of 10 people
    at 0.5 and at 0.3; without tiles 6 and 7)."""
    scores, _ = _inria_scores(tiles=True)
    plain, _ = _inria_scores(tiles=False)
    assert sum(v >= 0.5 for v in scores) >= 8
    assert sum(v >= 0.3 for v in scores) >= 8
    assert sum(v >= 0.3 for v in scores) > sum(v >= 0.3 for v in plain)


def test_person_photo_yes_cat_photo_no(detector):
    people = detector.detect(skimage_bgr("astronaut"))
    assert len(people) >= 1 and float(people.score.max()) > 0.8
    assert len(detector.detect(skimage_bgr("chelsea"))) == 0
    assert len(detector.detect(skimage_bgr("coffee"))) == 0


def _person_free_coco128() -> list[Path]:
    """coco128's photos with no person box (67: rooms, streets, food, 10 with a cat or dog, and
    the 2 that have no label file), read by the project's YOLO reader."""
    from host_tools.datasets import load_dataset

    root = need_shared(SHARED / "coco_train" / "coco128")
    return [s.image_path for s in load_dataset(f"yolo:{root}", None).samples if not len(s.boxes)]


def test_no_person_on_person_free_photos_with_pets(detector):
    """A home camera sees cats and dogs; a person event for one is the false alarm users hate.
    The default gives no box >= 0.5 on any of these (measured 0 of 67; the COCO SSD-MobileNet-v1
    reference 4, a fine-tune of it 3 and a cat at 0.61, see the model card). 43 of the 67 are
    training negatives (coco128_fit); the other 24 are held out in coco128_val."""
    import cv2

    photos = _person_free_coco128()
    assert len(photos) == 67
    alarms = [p.name for p in photos if len(detector.detect(cv2.imread(str(p))))]
    assert alarms == []
