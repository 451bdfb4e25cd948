"""Metric code against hand-computed cases and against pycocotools on synthetic detections."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from host_tools.datasets.coco import to_coco_dict
from host_tools.datasets.types import Sample
from host_tools.metrics import (
    LAMR_FPPI_POINTS,
    accumulate,
    average_precision,
    coco_ap,
    coco_interpolated_ap,
    log_average_miss_rate,
    match_image,
    miss_rates_at,
    operating_point,
    overlap_matrix,
)


def test_overlap_iou_by_hand():
    # 10x10 box vs the same box shifted 5 px right: inter 50, union 150.
    ov = overlap_matrix(
        np.array([[0, 0, 10, 10]]),
        np.array([[5, 0, 15, 10], [20, 20, 30, 30]]),
        np.array([False, False]),
    )
    assert ov[0, 0] == pytest.approx(1 / 3)
    assert ov[0, 1] == 0.0


def test_overlap_with_ignore_region_is_intersection_over_detection():
    # a 10x10 detection wholly inside a 100x100 crowd region: IoU 0.01, but covered 100 %.
    ov = overlap_matrix(
        np.array([[10, 10, 20, 20]]), np.array([[0, 0, 100, 100]]), np.array([True])
    )
    assert ov[0, 0] == pytest.approx(1.0)


def test_greedy_matching_highest_score_claims_first():
    gt = np.array([[0, 0, 10, 10]], float)
    # two detections on the one person: the higher-scoring claims it, the other is a false positive
    m = match_image(np.array([[0, 0, 10, 9], [0, 0, 10, 10]]), np.array([0.6, 0.9]), gt)
    assert m.tp.tolist() == [False, True]
    assert m.fp.tolist() == [True, False]
    assert m.iou[1] == pytest.approx(1.0)
    assert m.gt_score.tolist() == [0.9]


def test_greedy_matching_takes_best_iou_among_free_boxes():
    gt = np.array([[0, 0, 10, 10], [4, 0, 14, 10]], float)
    det = np.array([[3, 0, 13, 10], [0, 0, 10, 10]], float)
    m = match_image(det, np.array([0.9, 0.8]), gt)
    # det 0 overlaps gt1 (IoU 9/11) more than gt0 (7/13): takes gt1, leaving gt0 to det 1
    assert m.gt_index.tolist() == [1, 0]
    assert m.tp.all()


def test_iou_below_threshold_is_false_positive_and_miss():
    m = match_image(
        np.array([[5, 0, 15, 10]]), np.array([0.9]), np.array([[0, 0, 10, 10]]), iou_threshold=0.5
    )
    assert m.fp.tolist() == [True]
    op = operating_point([m], 0.5)
    assert (op.tp, op.fp, op.fn) == (0, 1, 1)


def test_detection_on_ignore_region_is_neither_tp_nor_fp():
    gt = np.array([[0, 0, 10, 10], [50, 50, 150, 150]], float)
    m = match_image(
        np.array([[60, 60, 70, 80], [0, 0, 10, 10]]),
        np.array([0.9, 0.8]),
        gt,
        np.array([False, True]),
    )
    assert m.ignored.tolist() == [True, False]
    assert m.tp.tolist() == [False, True]
    op = operating_point([m], 0.0)
    assert (op.tp, op.fp, op.fn) == (1, 0, 0)
    assert op.precision == 1.0 and op.recall == 1.0


def test_operating_point_by_hand():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], float)
    det = np.array([[0, 0, 10, 10], [21, 0, 31, 10], [100, 100, 110, 110], [40, 0, 50, 10]], float)
    m = match_image(det, np.array([0.9, 0.7, 0.6, 0.3]), gt)
    op = operating_point([m], 0.5)
    # above 0.5: TP (IoU 1), TP (IoU 9/11), FP; the 0.3 detection does not count: 1 miss
    assert (op.tp, op.fp, op.fn) == (2, 1, 1)
    assert op.precision == pytest.approx(2 / 3)
    assert op.recall == pytest.approx(2 / 3)
    assert op.mean_iou == pytest.approx((1 + 9 / 11) / 2)
    low = operating_point([m], 0.0)
    assert (low.tp, low.fp, low.fn) == (3, 1, 0)


def test_all_point_ap_by_hand():
    # 3 people; detections by score: TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    ap = average_precision(np.array([1 / 3, 1 / 3, 2 / 3]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(1 / 3 * 1.0 + 1 / 3 * 2 / 3)


def test_all_point_ap_perfect_and_empty():
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert average_precision(np.array([]), np.array([])) == 0.0


def test_accumulate_curve_over_images():
    gt_a = np.array([[0, 0, 10, 10]], float)
    gt_b = np.array([[0, 0, 10, 10]], float)
    ma = match_image(np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), np.array([0.9, 0.8]), gt_a)
    mb = match_image(np.array([[0, 0, 10, 10]]), np.array([0.7]), gt_b)
    c = accumulate([ma, mb])
    assert c.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert c.tp.tolist() == [1, 1, 2] and c.fp.tolist() == [0, 1, 1]
    assert c.recall.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert c.fppi.tolist() == pytest.approx([0.0, 0.5, 0.5])


def _curve_with_miss_rates(targets: list[float], num_gt: int = 1000, num_images: int = 1000):
    """A per-detection (fppi, miss) curve that passes through ``targets``
    exactly at the 9 FPPI points."""
    fppi: list[float] = []
    miss: list[float] = []
    fp = 0
    for ref, mr in zip(LAMR_FPPI_POINTS, targets, strict=True):
        want_fp = int(math.floor(ref * num_images + 1e-9))
        while fp < want_fp:  # false positives (miss rate unchanged) up to this FPPI
            fp += 1
            fppi.append(fp / num_images)
            miss.append(miss[-1] if miss else 1.0)
        fppi.append(fp / num_images)  # then true positives bring the miss rate down to the target
        miss.append(mr)
    return np.array(fppi), np.array(miss)


def test_lamr_constructed_curve_known_answer():
    targets = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    fppi, miss = _curve_with_miss_rates(targets)
    assert miss_rates_at(fppi, miss) == pytest.approx(targets)
    # geometric mean of 0.1..0.9 = (9!)^(1/9) / 10
    assert log_average_miss_rate(fppi, miss) == pytest.approx(math.factorial(9) ** (1 / 9) / 10)
    assert log_average_miss_rate(fppi, miss) == pytest.approx(0.41472, abs=1e-5)


def test_lamr_constant_and_edge_cases():
    fppi = np.linspace(0.001, 2.0, 500)
    assert log_average_miss_rate(fppi, np.full(500, 0.25)) == pytest.approx(0.25)
    # no detection at all: miss rate 1 everywhere
    assert log_average_miss_rate(np.array([]), np.array([])) == pytest.approx(1.0)
    # a true positive before any false positive counts at every FPPI point; a curve starting above
    # FPPI 1e-2 leaves the miss rate at 1 there
    assert miss_rates_at(np.array([0.0, 2.0]), np.array([0.5, 0.5]))[0] == pytest.approx(0.5)
    assert miss_rates_at(np.array([0.05]), np.array([0.5]))[0] == pytest.approx(1.0)


def _synthetic(seed: int, n_images: int = 25):
    """Random people and noisy detections (misses, strays, one crowd region per few images)."""
    rng = np.random.default_rng(seed)
    samples, dets_per_image, coco_dets = [], [], []
    for i in range(n_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.uniform(20, 150, (n, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        ignore = np.zeros(n, bool)
        if n and i % 4 == 0:
            ignore[0] = True
        samples.append(Sample(Path(f"/x/img{i}.png"), 700, 700, gt, ignore))
        keep = rng.random(n) > 0.2
        det = gt[keep] + rng.normal(0, 8, (int(keep.sum()), 4))
        k = int(rng.integers(0, 4))
        sxy = rng.uniform(0, 500, (k, 2))
        det = np.concatenate([det, np.concatenate([sxy, sxy + rng.uniform(20, 150, (k, 2))], 1)])
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        score = rng.random(len(det))
        dets_per_image.append((det, score))
        for b, s in zip(det, score, strict=True):
            coco_dets.append(
                {
                    "image_id": i + 1,
                    "category_id": 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": float(s),
                }
            )
    return samples, dets_per_image, coco_dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matching_agrees_with_pycocotools(seed):
    samples, dets, coco_dets = _synthetic(seed)
    gt = to_coco_dict(samples)
    ref = coco_ap(gt, coco_dets)
    ours = {}
    for t in np.linspace(0.5, 0.95, 10):
        ms = [
            match_image(d, s, smp.boxes, smp.ignore, iou_threshold=t)
            for (d, s), smp in zip(dets, samples, strict=True)
        ]
        c = accumulate(ms)
        ours[round(float(t), 2)] = coco_interpolated_ap(c.recall, c.precision)
    assert 0.05 < ref["ap50"] < 1.0  # the synthetic case is neither trivial nor empty
    assert ours[0.5] == pytest.approx(ref["ap50"], abs=1e-9)
    assert ours[0.75] == pytest.approx(ref["ap75"], abs=1e-9)
    assert float(np.mean(list(ours.values()))) == pytest.approx(ref["ap"], abs=1e-9)


def test_all_point_ap_close_to_coco_101_point():
    samples, dets, coco_dets = _synthetic(3, n_images=60)
    ms = [
        match_image(d, s, smp.boxes, smp.ignore) for (d, s), smp in zip(dets, samples, strict=True)
    ]
    c = accumulate(ms)
    assert average_precision(c.recall, c.precision) == pytest.approx(
        coco_ap(to_coco_dict(samples), coco_dets)["ap50"], abs=0.01
    )


def test_coco_ap_empty_detections_is_zero():
    samples, _, _ = _synthetic(4, n_images=3)
    ap = coco_ap(to_coco_dict(samples), [])
    assert (ap["ap"], ap["ap50"], ap["ap75"]) == (0.0, 0.0, 0.0)
    assert ap["ap50_by_size"] == {"small": None, "medium": None, "large": None}


def test_coco_ap_perfect_detections_is_one():
    samples = [Sample(Path("/x/a.png"), 100, 100, np.array([[10, 10, 40, 90], [50, 5, 90, 95]]))]
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 80], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [50, 5, 40, 90], "score": 0.8},
    ]
    ap = coco_ap(to_coco_dict(samples), dets)
    assert (ap["ap"], ap["ap50"], ap["ap75"]) == pytest.approx((1.0, 1.0, 1.0))


def test_ap50_by_size_splits_people_by_coco_area():
    # a 20x30 person (small, < 32^2 px) found, a 120x240 one (large, > 96^2) missed, no medium one
    samples = [
        Sample(Path("/x/a.png"), 300, 300, np.array([[10, 10, 30, 40], [150, 50, 270, 290]]))
    ]
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30], "score": 0.9}]
    ap = coco_ap(to_coco_dict(samples), dets)
    assert ap["ap50"] == pytest.approx(0.5, abs=0.01)
    assert ap["ap50_by_size"] == {"small": pytest.approx(1.0), "medium": None, "large": 0.0}
