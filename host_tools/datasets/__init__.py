"""Annotated person datasets in one in-memory form; converters to COCO json and OD-API TFRecord."""

from __future__ import annotations

from host_tools.datasets.spec import KINDS, load_dataset, parse_spec, read_split_file, select_split
from host_tools.datasets.types import Dataset, DatasetError, Sample

__all__ = [
    "KINDS",
    "Dataset",
    "DatasetError",
    "Sample",
    "load_dataset",
    "parse_spec",
    "read_split_file",
    "select_split",
]
