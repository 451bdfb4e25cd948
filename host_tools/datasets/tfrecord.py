"""TFRecord files in the TensorFlow Object Detection API schema, written and read with TensorFlow.

Keys are those of the OD API's ``TfExampleDecoder`` (``image/encoded``, ``image/format``,
``image/height|width``, ``image/filename``, ``image/source_id``, ``image/key/sha256``, normalized
``image/object/bbox/xmin|xmax|ymin|ymax``, ``image/object/class/text|label``,
``image/object/is_crowd``), so files written here train with the OD API and OD-API files read back
here. The image bytes are stored as they are on disk (no re-encoding). TensorFlow is imported
lazily: host side only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from host_tools.datasets.coco import PERSON_CATEGORY_ID
from host_tools.datasets.types import DatasetError, Sample

_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}


def _tf():
    try:
        # host_tools.ssd loads TensorFlow with its C++ start-up lines (CPU features, CUDA) silenced
        import host_tools.ssd  # noqa: F401
    except ImportError:
        raise DatasetError(
            "TFRecord conversion needs TensorFlow, which the [host] extra brings: "
            'pip install -e ".[host]"'
        ) from None
    import tensorflow as tf

    return tf


def _example(tf, sample: Sample, source_id: str):
    data = sample.image_path.read_bytes()
    fmt = _FORMATS.get(sample.image_path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"{sample.image_path}: the OD API decodes PNG or JPEG only; convert the image first"
        )
    w, h = float(sample.width), float(sample.height)
    b = (
        np.clip(sample.boxes.astype(np.float64), 0, [w, h, w, h])
        if len(sample.boxes)
        else np.zeros((0, 4))
    )

    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(x) for x in v]))

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(x) for x in v]))

    def blobs(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(v)))

    n = len(b)
    feature = {
        "image/encoded": blobs([data]),
        "image/format": blobs([fmt.encode()]),
        "image/height": ints([sample.height]),
        "image/width": ints([sample.width]),
        "image/filename": blobs([sample.image_path.name.encode()]),
        "image/source_id": blobs([source_id.encode()]),
        "image/key/sha256": blobs([hashlib.sha256(data).hexdigest().encode()]),
        "image/object/bbox/xmin": floats(b[:, 0] / w),
        "image/object/bbox/xmax": floats(b[:, 2] / w),
        "image/object/bbox/ymin": floats(b[:, 1] / h),
        "image/object/bbox/ymax": floats(b[:, 3] / h),
        "image/object/class/text": blobs([b"person"] * n),
        "image/object/class/label": ints([PERSON_CATEGORY_ID] * n),
        "image/object/is_crowd": ints(sample.ignore.astype(int).tolist()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_tfrecord(
    samples: list[Sample], out: Path, label_map: Path | None = None
) -> tuple[Path, Path]:
    """Write samples to ``out`` and a one-class ``label_map.pbtxt`` (person = id 1) beside it.

    Returns (tfrecord path, label map path).
    """
    from edgedetect.labels import write_label_map_pbtxt

    tf = _tf()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(out)) as writer:
        for i, s in enumerate(samples, start=1):
            writer.write(_example(tf, s, str(i)).SerializeToString())
    label_map = label_map or out.parent / "label_map.pbtxt"
    write_label_map_pbtxt(
        label_map, {PERSON_CATEGORY_ID - 1: "person"}
    )  # 0-based index -> OD-API id 1
    return out, label_map


@dataclass(frozen=True)
class TFRecordImage:
    """One record read back: the stored image bytes and its boxes (pixels, like :class:`Sample`)."""

    filename: str
    source_id: str
    format: str
    encoded: bytes
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32 pixel xyxy
    class_text: list[str]
    class_label: np.ndarray
    is_crowd: np.ndarray


def read_tfrecord(path: Path) -> Iterator[TFRecordImage]:
    """Records of an OD-API TFRecord file, in file order."""
    tf = _tf()
    if not Path(path).is_file():
        raise DatasetError(f"TFRecord file {path} not found")
    try:
        for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            yield _record(tf.train.Example.FromString(raw))
    except tf.errors.DataLossError as exc:
        raise DatasetError(
            f"{path}: corrupt or truncated TFRecord ({exc.message.splitlines()[0]})"
        ) from None


def _record(ex: Any) -> TFRecordImage:
    """One ``tf.train.Example``'s image and its boxes in pixels (the file stores them as
    fractions of the image size)."""
    f = ex.features.feature

    def flt(key: str) -> np.ndarray:
        return np.array(f[key].float_list.value, np.float64) if key in f else np.zeros(0)

    def one(key: str) -> bytes:
        return f[key].bytes_list.value[0] if key in f and f[key].bytes_list.value else b""

    w = int(f["image/width"].int64_list.value[0])
    h = int(f["image/height"].int64_list.value[0])
    boxes = np.stack(
        [
            flt("image/object/bbox/xmin") * w,
            flt("image/object/bbox/ymin") * h,
            flt("image/object/bbox/xmax") * w,
            flt("image/object/bbox/ymax") * h,
        ],
        axis=1,
    )
    n = len(boxes)
    crowd = (
        np.array(f["image/object/is_crowd"].int64_list.value, bool)
        if "image/object/is_crowd" in f
        else np.zeros(n, bool)
    )
    return TFRecordImage(
        filename=one("image/filename").decode(),
        source_id=one("image/source_id").decode(),
        format=one("image/format").decode(),
        encoded=one("image/encoded"),
        width=w,
        height=h,
        boxes=boxes.astype(np.float32).reshape(-1, 4),
        class_text=[t.decode() for t in f["image/object/class/text"].bytes_list.value],
        class_label=np.array(f["image/object/class/label"].int64_list.value, np.int64),
        is_crowd=crowd if len(crowd) == n else np.zeros(n, bool),
    )
