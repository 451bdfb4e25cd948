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
        on_person = np.any(iou >= 0.5, axis=0) | _mostly_inside(found.xyxy, s.boxes)
        false_pos += [float(v) for v, m in zip(found.score, on_person, strict=True) if not m]
    assert len(scores) == 10
    return scores, false_pos


def _mostly_inside(found: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Per found box: is over half of it inside an annotated person? Such a box is the visible
    part of a real person (head and shoulders over café chairs, where the annotation runs down
    behind them): a localisation miss, not a false alarm on something that is no person."""
    x0 = np.maximum(found[:, None, 0], people[None, :, 0])
    y0 = np.maximum(found[:, None, 1], people[None, :, 1])
    x1 = np.minimum(found[:, None, 2], people[None, :, 2])
    y1 = np.minimum(found[:, None, 3], people[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1])
    return np.any(inter > 0.5 * area[:, None], axis=1)


def test_finds_the_annotated_people_in_inria_test_images():
    """The 4 INRIA images (10 people, 4 of them 110-145 px tall in a 1060x605 image). Measured: 8 of
    10 at the default 0.5 (a far person of crop001501 scores 0.24; the man at the back of
    person_and_bike_006, behind café chairs, 0.14) and 9 at 0.2; the close-up man of crop_000001
    scores 0.88 (0.05 two defaults ago). No box that is no annotated person scores over 0.5 (the
    head and shoulders of the man behind the chairs, 0.50, are his: `_mostly_inside`)."""
    scores, false_pos = _inria_scores(tiles=False)
    assert sum(v >= 0.5 for v in scores) >= 8
    assert sum(v >= 0.2 for v in scores) >= 9
    assert sum(v >= 0.5 for v in false_pos) == 0


def test_tiles_lift_the_small_inria_people_over_the_default_threshold():
    """With the 2x2 tiled pass the small people of crop001501 are found (measured: 9 of 10 people
    at 0.5 and at 0.3, all but the man behind the café chairs; without tiles 8 and 8)."""
    scores, _ = _inria_scores(tiles=True)
    plain, _ = _inria_scores(tiles=False)
    assert sum(v >= 0.5 for v in scores) >= 9
    assert sum(v >= 0.3 for v in scores) >= 9
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


def _shows_a_pet(photo: Path) -> bool:
    """A cat (COCO class 15) or a dog (16) in the photo's coco128 label file."""
    parts = ["labels" if part == "images" else part for part in photo.with_suffix(".txt").parts]
    label = Path(*parts)
    lines = label.read_text().split("\n") if label.is_file() else []
    return any(line.split()[:1] in (["15"], ["16"]) for line in lines)


def test_no_person_on_person_free_photos_with_pets(detector):
    """A home camera sees cats and dogs; a person event for one is the false alarm users hate.
    The default gives no box >= 0.5 on any of the 67 (the last default one: the zebra of
    000000000034 at 0.96; the COCO SSD-MobileNet-v1 reference 4, a fine-tune of it 3 and a cat at
    0.61, see the model card). 43 of the 67 are training negatives (coco128_fit); the other 24 are
    held out in coco128_val."""
    import cv2

    photos = _person_free_coco128()
    assert len(photos) == 67
    pets = [p for p in photos if _shows_a_pet(p)]
    assert len(pets) == 10
    alarms = [p.name for p in photos if len(detector.detect(cv2.imread(str(p))))]
    assert not set(alarms) & {p.name for p in pets}
    assert alarms == []


def test_few_false_alarms_on_person_free_photos_at_night():
    """Trained with person-free scenes cut from its photos (`augment.background_crop_prob`): the
    held-out COCO photos without a person (24: rooms, food, streets, 4 pets), each seen through
    noise, dark, night_ir and blur, get a box at the night threshold 0.7 in 3 of the 96 (the last
    default, without the crops, 11); at most 6."""
    from edgedetect.detector import Detector
    from host_tools.conditions import camera_condition
    from host_tools.datasets import Dataset
    from host_tools.scoring import evaluate
    from host_tools.validate import DEFAULT_VAL_SETS, load_val_set

    coco_val = load_val_set("coco_val", DEFAULT_VAL_SETS["coco_val"])
    free = Dataset(coco_val.spec, coco_val.kind, [s for s in coco_val.samples if not len(s.boxes)])
    assert len(free) == 24
    det = Detector(MODEL, threshold=0.05, num_threads=1)
    alarms = [
        evaluate(det, free, 0.7, 0.05, progress=False, transform=camera_condition(c)).metrics[
            "person_free_images_with_alarm"
        ]
        for c in ("noise", "dark", "night_ir", "blur")
    ]
    assert sum(alarms) <= 6, alarms


def test_keeps_finding_people_in_a_night_ir_picture():
    """Trained with night-camera conditions (model card, "At night"): on 60 capston2/valid photos
    seen as a NoIR camera at night would give them (grey, pink tint, flat, gain noise 10/255) the
    default keeps over half of its daylight recall at 0.5 (measured on the whole set: 0.410 of
    0.618; the default before night conditions, 0.195 of 0.666)."""
    from edgedetect.detector import Detector
    from host_tools.conditions import camera_condition
    from host_tools.datasets import Dataset, load_dataset
    from host_tools.scoring import evaluate

    full = load_dataset(f"yolo:{need_shared(SHARED / 'capston2' / 'valid')}", None)
    ds = Dataset(full.spec, full.kind, full.samples[:60])
    det = Detector(MODEL, threshold=0.05, num_threads=1)
    day = evaluate(det, ds, 0.5, 0.05, progress=False).metrics["recall"]
    night = evaluate(
        det, ds, 0.5, 0.05, progress=False, transform=camera_condition("night_ir")
    ).metrics["recall"]
    assert day >= 0.5
    assert night > 0.5 * day
