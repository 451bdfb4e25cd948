"""Dataset sources as a training mix or a validation set names them: a spec, a split file, a weight.

Kept apart from the training code (and TensorFlow) so that evaluation, which joins several sets
the same way, stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgedetect.errors import ConfigError
from host_tools.datasets.spec import load_dataset
from host_tools.datasets.types import Dataset, DatasetError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DataSource:
    """One dataset of a training mix: its ``spec`` (``yolo:ROOT`` ...), ``split_file`` or None
    and sampling ``weight``."""

    spec: str
    split_file: str | None = None
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> DataSource:
        """``SPEC[#split=FILE][#weight=W]``, the CLI form (``#`` never occurs in a spec of ours)."""
        spec, *options = text.split("#")
        split, weight = None, 1.0
        for opt in options:
            key, sep, value = opt.partition("=")
            if key == "split" and sep:
                split = value or None
            elif key == "weight" and sep:
                try:
                    weight = float(value)
                except ValueError:
                    raise ConfigError(
                        f"--dataset {text!r}: weight={value!r} is not a number"
                    ) from None
            else:
                raise ConfigError(
                    f"--dataset {text!r}: unknown option {opt!r}; use SPEC[#split=FILE][#weight=W]"
                )
        return cls(spec, split, weight).checked(f"--dataset {text!r}")

    @classmethod
    def from_dict(cls, data: dict, where: str) -> DataSource:
        unknown = set(data) - {"spec", "split_file", "weight"}
        if unknown or "spec" not in data:
            raise ConfigError(
                f"{where}: a data source has keys spec, split_file, weight (got {sorted(data)})"
            )
        return cls(
            str(data["spec"]), data.get("split_file"), float(data.get("weight", 1.0))
        ).checked(where)

    def checked(self, where: str) -> DataSource:
        if not self.weight > 0:
            raise ConfigError(f"{where}: weight must be > 0 (got {self.weight})")
        if self.split_file and "test" in Path(self.split_file).name.lower():
            raise ConfigError(
                f"{where}: split {self.split_file} looks like a test split; "
                "train on training images"
            )
        return self

    def resolved(self) -> DataSource:
        """A config's relative paths resolve against the project root (checkout), not the cwd."""
        kind, sep, rest = self.spec.partition(":")
        parts = [_rooted(p) for p in rest.split(".json:")] if kind == "coco" else [_rooted(rest)]
        spec = f"{kind}{sep}{'.json:'.join(parts)}"
        return DataSource(spec, _rooted(self.split_file) if self.split_file else None, self.weight)


def _rooted(path: str) -> str:
    p = Path(path).expanduser()
    return os.path.normpath(p if p.is_absolute() else PROJECT_ROOT / p)


def load_sources(sources: list[DataSource], name: str) -> Dataset:
    """The samples of every source (split files applied, test splits refused) as one dataset."""
    samples = []
    for src in sources:
        src.checked(name)
        samples += load_dataset(src.spec, src.split_file).samples
    if not samples:
        raise DatasetError(f"{name} ({', '.join(s.spec for s in sources)}) has no images")
    return Dataset(spec=" + ".join(s.spec for s in sources), kind=name, samples=samples)
