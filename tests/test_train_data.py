"""The training mix: dataset sources with sampling weights, the tf.data batches, validation sets."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import PENNFUDAN, REPO, SHARED, SPLITS, need_shared  # noqa: E402

CAPSTON_VALID = SHARED / "capston2" / "valid"


def test_data_source_cli_form():
    from host_tools.datasets.sources import DataSource

    s = DataSource.parse("yolo:../x/train#weight=3#split=data/splits/a.txt")
    assert (s.spec, s.split_file, s.weight) == ("yolo:../x/train", "data/splits/a.txt", 3.0)
    assert DataSource.parse("pennfudan:/p") == DataSource("pennfudan:/p", None, 1.0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("yolo:x#weight=abc", "not a number"),
        ("yolo:x#weight=0", "must be > 0"),
        # a weight of inf made every sampling probability nan: a traceback from the tf.data
        # pipeline at the first step, and then the process hung
        ("yolo:x#weight=inf", "weight must be > 0 and finite"),
        ("yolo:x#weight=nan", "weight must be > 0 and finite"),
        ("yolo:x#colour=red", "unknown option"),
        ("pennfudan:x#split=../shared/data/splits/pennfudan_test.txt", "test split"),
    ],
)
def test_data_source_errors_name_the_fix(text, words):
    from edgedetect.errors import ConfigError
    from host_tools.datasets.sources import DataSource

    with pytest.raises(ConfigError, match=words):
        DataSource.parse(text)


def test_mix_config_resolves_paths_against_the_checkout():
    from host_tools.ssd.config import load_config
    from host_tools.train import training_sources

    cfg = load_config("ssdlite_mobilenet_v2_mix")
    sources = training_sources(None, None, cfg)
    assert len(sources) == len(cfg.data.sources) >= 3
    splits = [s.split_file for s in sources if s.split_file]
    assert splits and all(p.startswith(str(REPO)) for p in splits)
    assert all(":" + str(REPO.parent) in s.spec for s in sources)
    assert not any("test" in p for p in splits)


def test_cli_datasets_take_no_default_split_and_config_keys_are_checked(tmp_path):
    """A YOLO set must not get the Penn-Fudan split file (it named FudanPed00001 as missing)."""
    import json

    from edgedetect.errors import ConfigError
    from host_tools.ssd.config import load_config
    from host_tools.train import training_sources

    cfg = load_config("ssdlite_mobilenet_v2")
    [only] = training_sources(["yolo:/data/capston2/train"], None, cfg)
    assert only.split_file is None
    [pf] = training_sources(None, "/s/pennfudan_fit.txt", cfg)
    assert pf.spec.startswith("pennfudan:") and pf.split_file == "/s/pennfudan_fit.txt"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": {"sources": [{"spec": "yolo:x", "wieght": 2}]}}))
    with pytest.raises(ConfigError, match="unknown key 'wieght'; did you mean 'weight'"):
        load_config(bad)


@pytest.mark.parametrize("sources", ["yolo:y", ["yolo:y"], {"spec": "yolo:y"}])
def test_data_sources_that_are_not_a_list_of_specs_are_named(tmp_path, sources):
    """ "sources": "yolo:y" was read character by character and said only "got ['y']"."""
    import json

    from edgedetect.errors import ConfigError
    from host_tools.ssd.config import load_config

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": {"sources": sources}}))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == (
        f"{bad} [data]: sources is a list of specs, each "
        '{"spec": ..., "split_file": ..., "weight": ...}, '
        f'not {json.dumps(sources)}; e.g. "sources": [{{"spec": "yolo:ROOT"}}]'
    )


def test_sampling_weights_split_evenly_inside_a_source():
    from host_tools.ssd.data import TrainImages

    big, small = TrainImages([]), TrainImages([])
    for part, n in ((big, 6), (small, 2)):
        part.images = [np.zeros((4, 4, 3), np.uint8)] * n
        part.boxes = [np.zeros((0, 4), np.float32)] * n
        part.names = [f"{n}_{i}" for i in range(n)]
        part.source = [0] * n
    mix = TrainImages.mix([(big, 3.0), (small, 1.0)])
    p = mix.probabilities()
    assert len(p) == 8 and p.sum() == pytest.approx(1.0)
    assert p[:6].sum() == pytest.approx(0.75) and p[6:].sum() == pytest.approx(0.25)
    assert np.allclose(p[:6], p[0]) and np.allclose(p[6:], p[6])


@pytest.fixture(scope="module")
def small_mix():
    from host_tools.datasets.sources import DataSource
    from host_tools.ssd.config import load_config
    from host_tools.ssd.data import load_train_mix
    from host_tools.ssd.model import build_ssd

    sources = [
        DataSource(f"yolo:{need_shared(CAPSTON_VALID)}", None, 2.0),
        DataSource(
            f"pennfudan:{need_shared(PENNFUDAN)}", str(need_shared(SPLITS / "pennfudan_train.txt"))
        ),
    ]
    data = load_train_mix(sources, limit=3)
    cfg = load_config("ssdlite_mobilenet_v2")
    cfg.train.batch_size = 4
    return data, build_ssd(cfg), cfg


def test_batch_stream_is_seeded_and_resumes_exactly(small_mix):
    from host_tools.ssd.data import train_dataset

    data, ssd, cfg = small_mix
    assert len(data) == 6 and sorted(set(data.source)) == [0, 1]
    first = [tuple(t.numpy() for t in b) for b in train_dataset(data, ssd, cfg, seed=7).take(3)]
    again = [
        tuple(t.numpy() for t in b)
        for b in train_dataset(data, ssd, cfg, seed=7, parallel=1).take(3)
    ]
    resumed = next(iter(train_dataset(data, ssd, cfg, seed=7, start_step=2)))
    other = next(iter(train_dataset(data, ssd, cfg, seed=8)))
    x, loc, cls = first[0]
    assert (
        x.shape == (4, 300, 300, 3)
        and loc.shape == (4, ssd.num_anchors, 4)
        and cls.shape == (4, ssd.num_anchors)
    )
    assert -1.0 <= x.min() < x.max() <= 1.0
    assert (cls > 0).any()  # people matched to anchors
    for a, b in zip(first, again, strict=True):
        for ta, tb in zip(a, b, strict=True):
            np.testing.assert_array_equal(ta, tb)
    for ta, tb in zip(first[2], resumed, strict=True):
        np.testing.assert_array_equal(ta, tb)
    assert not np.array_equal(first[0][0], other[0].numpy())


def test_default_validation_sets_hold_no_training_image():
    from host_tools.datasets import load_dataset
    from host_tools.ssd.config import load_config
    from host_tools.train import training_sources
    from host_tools.validate import DEFAULT_VAL_SETS, load_val_set

    need_shared(SHARED / "coco_train")
    need_shared(CAPSTON_VALID)
    val = {n: load_val_set(n, s) for n, s in DEFAULT_VAL_SETS.items()}
    assert set(val) == {"capston2_valid", "pennfudan_val", "coco_val"}
    assert len(val["capston2_valid"]) == 289 and len(val["coco_val"]) == 53
    train_sources = [
        s
        for s in training_sources(None, None, load_config("ssdlite_mobilenet_v2_mix"))
        if "capston2" not in s.spec
    ]  # capston2 valid is disjoint by its maker's dedup
    train_paths = {
        smp.image_path.resolve()
        for s in train_sources
        for smp in load_dataset(s.spec, s.split_file)
    }
    val_paths = {smp.image_path.resolve() for d in val.values() for smp in d}
    assert train_paths and not train_paths & val_paths
    assert "000000125870.jpg" not in {
        p.name for p in train_paths
    }  # in minicoco val.json and coco_mini


def test_summary_is_the_mean_over_sets():
    from host_tools.validate import summarize

    per_set = {
        "a": {
            "ap": 0.2,
            "ap50": 0.4,
            "ap75": 0.1,
            "mean_iou": 0.8,
            "lamr": 0.5,
            "precision": 1,
            "recall": 0.5,
        },
        "b": {
            "ap": 0.4,
            "ap50": 0.8,
            "ap75": 0.3,
            "mean_iou": 0.6,
            "lamr": 0.3,
            "precision": 0,
            "recall": 1,
        },
    }
    s = summarize(per_set)
    assert (
        s["ap50"] == pytest.approx(0.6)
        and s["lamr"] == pytest.approx(0.4)
        and s["recall"] == pytest.approx(0.75)
    )


def test_int8_calibration_follows_the_training_mix():
    """A general-scene model is calibrated on its own scenes, not on streets only.

    The images are spread over the sources by the mix weights.
    """
    from host_tools.export import _mix_paths
    from host_tools.ssd.config import load_config

    need_shared(SHARED / "coco_train")
    sources = load_config("ssdlite_mobilenet_v2_mix").data.sources
    paths = _mix_paths(sources, 40)
    assert len(paths) == len(set(paths)) == 40
    from_capston = sum("capston2" in str(p) for p in paths)
    weight = next(s.weight for s in sources if "capston2" in s.spec) / sum(
        s.weight for s in sources
    )
    assert from_capston == round(40 * weight)
    assert any("PennFudan" in str(p) for p in paths) and any("coco_train" in str(p) for p in paths)
    assert paths == _mix_paths(sources, 40)  # fixed seed: the same model converts the same way


def test_a_failing_example_leaves_no_reference_to_the_tf_data_iterator(small_mix, monkeypatch):
    """The error a training example raised is re-raised with the ``tf.data`` iterator already
    gone. It was raised inside the handler of TensorFlow's error, whose traceback holds the
    iterator: while the tool printed the error the iterator lived on in a reference cycle, and a
    process that did not collect it before exiting hung with its map workers at shutdown."""
    import gc
    import weakref

    import host_tools.ssd.data as data_module
    from edgedetect.errors import ImageError
    from host_tools.ssd.data import train_batches

    def failing(*args):
        raise ImageError("frame_5.png cannot be decoded; re-export the image")

    monkeypatch.setattr(data_module, "build_targets", failing)
    data, ssd, cfg = small_mix
    gc.disable()  # only the references decide, as in a process that never reached a collection
    try:
        batches = train_batches(data, ssd, cfg, seed=7)
        iterator = weakref.ref(batches._it)
        with pytest.raises(ImageError, match="frame_5.png") as caught:
            next(batches)
        assert caught.value.__context__ is None
        assert iterator() is None
    finally:
        gc.enable()
