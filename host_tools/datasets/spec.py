"""Dataset spec strings (``inria:ROOT``, ``pennfudan:ROOT``, ``voc:ROOT``, ``coco:ANN.json:IMAGES``,
``yolo:ROOT``) and split files, the one way every command names its data."""

from __future__ import annotations

from pathlib import Path

from host_tools.datasets._paths import read_text_lines
from host_tools.datasets.types import Dataset, DatasetError, Sample

KINDS = {
    "inria": "inria:ROOT (folder with Train/annotations and/or Test/annotations)",
    "pennfudan": "pennfudan:ROOT (the PennFudanPed folder)",
    "voc": "voc:ROOT (folder with Annotations/ and JPEGImages/)",
    "coco": "coco:ANNOTATIONS.json:IMAGES_DIR",
    "yolo": "yolo:ROOT (images/ + labels/ or images beside .txt, and classes.txt)",
}


def _usage() -> str:
    return "; ".join(KINDS.values())


def parse_spec(spec: str) -> tuple[str, list[Path]]:
    """``kind:...`` -> (kind, paths), or a :class:`DatasetError` that lists the accepted forms."""
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise DatasetError(f"unknown dataset spec {spec!r}; use one of: {_usage()}")
    if not rest:
        raise DatasetError(f"dataset spec {spec!r} has no path; use {KINDS[kind]}")
    if kind == "coco":
        idx = rest.lower().find(".json:")
        if idx < 0:
            raise DatasetError(f"dataset spec {spec!r}: use {KINDS['coco']}")
        return kind, [Path(rest[: idx + 5]).expanduser(), Path(rest[idx + 6 :]).expanduser()]
    return kind, [Path(rest).expanduser()]


def read_split_file(path: Path) -> list[str]:
    """Image names, one per line; blank lines and ``#`` comments are skipped."""
    if not path.is_file():
        raise DatasetError(f"split file {path} not found")
    names = []
    for line in read_text_lines(path):
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    if not names:
        raise DatasetError(f"split file {path} lists no images")
    return names


def select_split(samples: list[Sample], names: list[str], split_path: Path) -> list[Sample]:
    """Samples named by the split file, in the split file's order; unknown names are an error."""
    by_key: dict[str, Sample] = {}
    for s in samples:
        for key in (s.image_path.name, s.image_path.stem):
            by_key.setdefault(key, s)
    chosen, seen = [], set()
    for lineno, name in enumerate(names, start=1):
        key = Path(name.replace("\\", "/")).name
        found = by_key.get(key) or by_key.get(Path(key).stem)
        if found is None:
            raise DatasetError(
                f"split file {split_path}: {name!r} (entry {lineno}) is not an image of the dataset"
            )
        if id(found) not in seen:
            seen.add(id(found))
            chosen.append(found)
    return chosen


def load_dataset(
    spec: str, split_file: str | Path | None = None, ignore_file: str | Path | None = None
) -> Dataset:
    """Read a dataset spec (and optional split file) into a :class:`Dataset`.

    ``ignore_file`` adds ignore regions (:mod:`host_tools.datasets.ignore`) before the split is
    applied, so one file made over the whole dataset serves every split of it.
    """
    kind, paths = parse_spec(spec)
    if kind == "inria":
        from host_tools.datasets.pascal import read_pascal_dataset

        samples = read_pascal_dataset(paths[0], kind, default_origin=0)
    elif kind == "pennfudan":
        from host_tools.datasets.pascal import read_pascal_dataset

        samples = read_pascal_dataset(paths[0], kind, default_origin=1)
    elif kind == "voc":
        from host_tools.datasets.voc import read_voc_dataset

        samples = read_voc_dataset(paths[0])
    elif kind == "coco":
        from host_tools.datasets.coco import read_coco_dataset

        samples = read_coco_dataset(paths[0], paths[1])
    else:
        from host_tools.datasets.yolo import read_yolo_dataset

        samples = read_yolo_dataset(paths[0])
    if ignore_file is not None:
        from host_tools.datasets.ignore import add_ignore_regions, dataset_root

        samples = add_ignore_regions(samples, dataset_root(kind, paths), Path(ignore_file))
    if split_file is not None:
        split_path = Path(split_file)
        samples = select_split(samples, read_split_file(split_path), split_path)
    return Dataset(spec=spec, kind=kind, samples=samples)
