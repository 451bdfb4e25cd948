"""The runtime detector on the real shared SSD models and real photos (no mocks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FPNLITE_MODEL, SHARED_MODELS, inria_boxes, match_count, need_shared

from edgedetect.detector import Detector
from edgedetect.errors import LabelsError, ModelError
from edgedetect.nms import box_iou


@pytest.fixture(scope="module")
def coco(coco_model) -> Detector:
    model, labels = coco_model
    return Detector(model, labels=labels, threshold=0.5, num_threads=2)


def test_coco_model_finds_inria_people(coco: Detector, inria_test: Path) -> None:
    found = total = 0
    for ann in sorted((inria_test / "annotations").glob("*.txt")):
        gt = inria_boxes(ann)
        image = cv2.imread(str(inria_test / "pos" / (ann.stem + ".png")))
        assert image is not None
        det = coco.detect(image)
        assert set(det.labels) <= {"person"}
        total += len(gt)
        found += match_count(gt, det.xyxy)
    assert total == 10
    assert found >= 9, f"found {found} of {total} annotated people"


def test_outputs_match_direct_interpreter(coco_model, astronaut_bgr: np.ndarray) -> None:
    from ai_edge_litert.interpreter import Interpreter

    model, labels = coco_model
    det = Detector(model, labels=labels, threshold=0.3, classes=None)
    interp = Interpreter(model_path=str(model), num_threads=2)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    resized = cv2.resize(astronaut_bgr, (300, 300), interpolation=cv2.INTER_LINEAR)
    interp.set_tensor(inp["index"], cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)[None])
    interp.invoke()
    out = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    boxes = out["TFLite_Detection_PostProcess"][0]
    classes = out["TFLite_Detection_PostProcess:1"][0]
    scores = out["TFLite_Detection_PostProcess:2"][0]
    count = int(out["TFLite_Detection_PostProcess:3"][0])
    keep = scores[:count] >= 0.3
    h, w = astronaut_bgr.shape[:2]
    expected = boxes[:count][keep][:, [1, 0, 3, 2]] * [w, h, w, h]
    got = det.detect(astronaut_bgr)
    assert len(got) == int(keep.sum()) > 0
    order = np.argsort(-scores[:count][keep], kind="stable")
    np.testing.assert_array_equal(got.score, scores[:count][keep][order])
    np.testing.assert_array_equal(got.class_id, classes[:count][keep][order].astype(np.int32))
    np.testing.assert_allclose(got.xyxy, np.clip(expected[order], 0, [w, h, w, h]), rtol=1e-6)


def test_person_in_astronaut_none_in_chelsea(coco: Detector, astronaut_bgr, chelsea_bgr) -> None:
    people = coco.detect(astronaut_bgr)
    assert len(people) >= 1 and people.score.max() >= 0.5
    x1, y1, x2, y2 = people.xyxy[int(np.argmax(people.score))]
    # Eileen Collins sits in the left two thirds of the frame, head near the top.
    assert x1 < 100 and y1 < 100 and 250 < x2 < 450 and y2 > 400
    assert len(coco.detect(chelsea_bgr)) == 0


def test_tf2_fpnlite_model_float_input(coco: Detector, astronaut_bgr) -> None:
    det = Detector(need_shared(FPNLITE_MODEL))  # labels found beside it by name
    assert det.kind == "postprocess" and det.input_dtype == np.float32
    assert det.input_size == (320, 320)
    got = det.detect(astronaut_bgr)
    ref = coco.detect(astronaut_bgr)
    assert len(got) >= 1 and got.labels[0] == "person"
    # the TF2 output order differs from TF1; a wrong pick would give nonsense boxes
    assert box_iou(got.xyxy[:1], ref.xyxy[:1])[0, 0] > 0.7


def test_whole_saved_model_export_is_adapted(coco: Detector, astronaut_bgr, chelsea_bgr) -> None:
    det = Detector(
        need_shared(SHARED_MODELS / "ssd_mobilenet_v2_320_coco_tf2_no_postprocess.tflite")
    )
    assert det.kind == "odapi_saved_model" and det.input_size == (320, 320)
    got = det.detect(astronaut_bgr)
    assert got.labels[:1] == ["person"]
    assert box_iou(got.xyxy[:1], coco.detect(astronaut_bgr).xyxy[:1])[0, 0] > 0.7
    assert len(det.detect(chelsea_bgr)) == 0


def test_all_classes_and_threshold(coco_model, astronaut_bgr) -> None:
    model, labels = coco_model
    low = Detector(model, labels=labels, threshold=0.1, classes=None).detect(astronaut_bgr)
    high = Detector(model, labels=labels, threshold=0.5, classes=None).detect(astronaut_bgr)
    assert len(low) > len(high) >= 1
    assert low.score.min() >= 0.1 and high.score.min() >= 0.5
    assert np.all(np.diff(low.score) <= 0)


def test_missing_and_corrupt_models_name_the_file(tmp_path: Path, coco_model) -> None:
    with pytest.raises(ModelError, match=r"model not found: .*nothere\.tflite"):
        Detector(tmp_path / "nothere.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ModelError, match=r"junk\.tflite"):
        Detector(junk)
    truncated = tmp_path / "trunc.tflite"
    truncated.write_bytes(coco_model[0].read_bytes()[:100_000])
    with pytest.raises(ModelError, match=r"trunc\.tflite"):
        Detector(truncated)


def test_label_problems_are_clear(tmp_path: Path, coco_model) -> None:
    model, labels = coco_model
    with pytest.raises(LabelsError, match="'unicorn' is not in the labels"):
        Detector(model, labels=labels, classes=("unicorn",))
    lonely = tmp_path / "lonely.tflite"
    shutil.copy(model, lonely)
    with pytest.raises(LabelsError, match="no label file found .*--labels"):
        Detector(lonely)
    assert len(Detector(lonely, classes=None).names) == 0


def test_configure_changes_threshold_and_classes_atomically(coco_model, astronaut_bgr) -> None:
    model, labels = coco_model
    det = Detector(model, labels=labels, threshold=0.5)
    assert det.detect(astronaut_bgr).labels == ["person"]
    det.configure(threshold=0.2, classes=None)
    everything = det.detect(astronaut_bgr)
    assert len(everything) > 1 and set(everything.labels) - {"person"}
    with pytest.raises(LabelsError):
        det.configure(threshold=0.9, classes=("unicorn",))
    assert det.threshold == 0.2 and det.class_filter is None  # unchanged after the error
    det.configure(classes=("person",))
    assert set(det.detect(astronaut_bgr).labels) == {"person"}
