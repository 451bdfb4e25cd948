"""Where the host tools' defaults live: the real data in ``../shared/data`` beside the checkout.

One definition, so training, calibration, weight import and their defaults agree; every tool
also takes explicit paths for users whose data lives elsewhere.
"""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PENNFUDAN = SHARED / "pennfudan" / "PennFudanPed"
TRAIN_SPLIT = SHARED / "splits" / "pennfudan_train.txt"
TEST_SPLIT = SHARED / "splits" / "pennfudan_test.txt"
INRIA_TEST = SHARED / "inria" / "Test"
PEDESTRIAN_PB = SHARED / "models" / "ssdlite_mobilenet_v2_pedestrian_frozen_inference_graph.pb"
