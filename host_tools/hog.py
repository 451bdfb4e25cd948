"""Classic baseline: OpenCV's HOG + linear SVM people detector (Dalal & Triggs, CVPR 2005).

Runs ``cv2.HOGDescriptor`` with ``getDefaultPeopleDetector()`` (trained on INRIA Person) over an
image pyramid without OpenCV's own window grouping, then applies this project's NMS
(``edgedetect.nms``) to the raw windows, so the baseline and the SSD models share one suppression
rule. Scores are the SVM margins (unbounded, not probabilities: 0 is the SVM's decision boundary),
so HOG thresholds are not comparable with SSD thresholds; the evaluator's AP and LAMR do not depend
on the threshold.

The returned boxes are the 64x128 detection windows shrunk to the person inside them: the INRIA
training windows put 16 pixels of margin around the person on all four sides (Dalal's thesis, sec.
4.3), and the annotations of every dataset here are tight boxes, so the window itself would never
reach IoU 0.5 with a tight box of a person that HOG found.
"""

from __future__ import annotations

import hashlib

import numpy as np

from edgedetect.detections import Detections
from edgedetect.errors import ModelError
from edgedetect.nms import nms

WINDOW = (64, 128)
MARGIN = (16, 16)  # px of the 64x128 training window around the person (x, y)


def _hog_descriptor():
    import cv2

    if not hasattr(cv2, "HOGDescriptor"):
        raise ModelError(
            f"OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 moved it to contrib): "
            "pip install opencv-contrib-python-headless to run --model hog"
        )
    hog = cv2.HOGDescriptor()
    # the stubs type the detector as a list of floats; setSVMDetector takes it as a float32 array
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    return hog


class HogDetector:
    """HOG people detector with the :class:`edgedetect.detector.Detector` ``detect()`` interface."""

    model_path = "hog"
    kind = "hog"

    def __init__(
        self,
        threshold: float = 0.0,
        win_stride: tuple[int, int] = (8, 8),
        padding: tuple[int, int] = (8, 8),
        scale: float = 1.05,
        iou_threshold: float = 0.45,
        max_detections: int = 100,
        shrink_to_person: bool = True,
    ) -> None:
        self.threshold = float(threshold)
        self.win_stride = tuple(win_stride)
        self.padding = tuple(padding)
        self.scale = float(scale)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.shrink_to_person = shrink_to_person
        self.names = {0: "person"}
        self._hog = _hog_descriptor()

    def raw_windows(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All pyramid windows with SVM margin >= threshold: ((N, 4) xyxy windows, (N,) margins)."""
        height, width = image_bgr.shape[:2]
        if width + 2 * self.padding[0] < WINDOW[0] or height + 2 * self.padding[1] < WINDOW[1]:
            # No window fits even at full size; OpenCV's detectMultiScale then corrupts its heap
            # (a segfault or an abort) instead of finding nothing.
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        # groupThreshold 0 = no OpenCV grouping; our NMS does the suppression.
        rects, weights = self._hog.detectMultiScale(
            image_bgr, self.threshold, self.win_stride, self.padding, self.scale, 0, False
        )
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        scores = np.asarray(weights, np.float32).reshape(-1)
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return xyxy, scores

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """People in one BGR image, boxes in its pixels, score = SVM margin."""
        if image_bgr is None or image_bgr.ndim != 3:
            raise ValueError(
                f"expected a BGR image of shape (H, W, 3), got {getattr(image_bgr, 'shape', None)}"
            )
        xyxy, scores = self.raw_windows(image_bgr[:, :, :3])
        if len(xyxy) == 0:
            return Detections.empty(self.names)
        idx = nms(xyxy, scores, self.iou_threshold, self.max_detections)
        xyxy, scores = xyxy[idx], scores[idx]
        if self.shrink_to_person:
            w = xyxy[:, 2] - xyxy[:, 0]
            h = xyxy[:, 3] - xyxy[:, 1]
            mx = w * (MARGIN[0] / WINDOW[0])
            my = h * (MARGIN[1] / WINDOW[1])
            xyxy = np.stack(
                [xyxy[:, 0] + mx, xyxy[:, 1] + my, xyxy[:, 2] - mx, xyxy[:, 3] - my], axis=1
            )
        hgt, wid = image_bgr.shape[:2]
        xyxy = np.clip(xyxy, 0, [wid, hgt, wid, hgt]).astype(np.float32)
        return Detections(xyxy, scores, np.zeros(len(scores), np.int32), self.names)

    def info(self) -> dict:
        """What ran, for the report; its identity is the SVM coefficients OpenCV ships."""
        import cv2

        coef = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        return {
            "model": "hog",
            "path": "hog",
            "name": "HOG+SVM (OpenCV)",
            "size_bytes": int(coef.nbytes),
            "sha256": hashlib.sha256(coef.tobytes()).hexdigest(),
            "opencv": cv2.__version__,
            "kind": "hog",
            "detector": "cv2.HOGDescriptor.getDefaultPeopleDetector (Dalal-Triggs, INRIA)",
            "win_stride": list(self.win_stride),
            "padding": list(self.padding),
            "scale": self.scale,
            "nms_iou": self.iou_threshold,
            "shrink_to_person": self.shrink_to_person,
            "threshold": self.threshold,
        }
