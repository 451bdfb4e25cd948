"""Dataset sources as a training mix or a validation set names them: a spec, a split file, a weight.

Kept apart from the training code (and TensorFlow) so that evaluation, which joins several sets
the same way, stays light.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from edgedetect.errors import ConfigError, did_you_mean
from host_tools.datasets.ignore import ignore_short_people
from host_tools.datasets.spec import load_dataset
from host_tools.datasets.types import Dataset, DatasetError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCE_FORM = "SPEC[#split=FILE][#weight=W][#ignore=FILE][#ignore_below=H]"


@dataclass(frozen=True)
class DataSource:
    """One dataset of a training mix: its ``spec`` (``yolo:ROOT`` ...), ``split_file`` or None,
    sampling ``weight``, ``ignore_file`` of extra ignore regions (``host_tools.ignore_regions``)
    or None, and ``ignore_below``: people shorter than that fraction of the image height become
    ignore regions (:func:`host_tools.datasets.ignore.ignore_short_people`), or None."""

    spec: str
    split_file: str | None = None
    weight: float = 1.0
    ignore_file: str | None = None
    ignore_below: float | None = None

    @classmethod
    def parse(cls, text: str, *, test_split_ok: bool = False) -> DataSource:
        """``SPEC[#split=FILE][#weight=W][#ignore=FILE][#ignore_below=H]``, the CLI form (``#``
        never occurs in a spec of ours). A test split is refused unless ``test_split_ok`` (the
        evaluator's final report is scored on it; training and validation must not see it)."""
        spec, *options = text.split("#")
        split, weight, ignore, below = None, 1.0, None, None
        for opt in options:
            key, sep, value = opt.partition("=")
            if key == "split" and sep:
                split = value or None
            elif key == "ignore" and sep:
                ignore = value or None
            elif key in ("weight", "ignore_below") and sep:
                try:
                    number = float(value)
                except ValueError:
                    raise ConfigError(
                        f"--dataset {text!r}: {key}={value!r} is not a number"
                    ) from None
                weight, below = (number, below) if key == "weight" else (weight, number)
            else:
                raise ConfigError(f"--dataset {text!r}: unknown option {opt!r}; use {SOURCE_FORM}")
        return cls(spec, split, weight, ignore, below).checked(
            f"--dataset {text!r}", test_split_ok=test_split_ok
        )

    @classmethod
    def from_dict(cls, data: dict, where: str) -> DataSource:
        """A config's ``{spec, split_file, weight, ignore_file, ignore_below}``; ``spec`` may carry
        ``#`` options as on the command line."""
        _check_source_keys(data, where)
        inline = cls.parse(str(data["spec"]))
        return cls(
            inline.spec,
            data.get("split_file", inline.split_file),
            _number(data.get("weight", inline.weight), "weight", where),
            data.get("ignore_file", inline.ignore_file),
            _optional_number(data.get("ignore_below", inline.ignore_below), "ignore_below", where),
        ).checked(where)

    def checked(self, where: str, *, test_split_ok: bool = False) -> DataSource:
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ConfigError(f"{where}: weight must be > 0 and finite (got {self.weight})")
        if self.ignore_below is not None and not 0 < self.ignore_below < 1:
            raise ConfigError(
                f"{where}: ignore_below is a fraction of the image height, between 0 and 1 "
                f"(got {self.ignore_below})"
            )
        if not test_split_ok and self.split_file and "test" in Path(self.split_file).name.lower():
            raise ConfigError(
                f"{where}: split {self.split_file} looks like a test split; train and "
                "select on training and validation images (host_tools.evaluate takes a test split)"
            )
        return self

    def resolved(self, base: Path = PROJECT_ROOT) -> DataSource:
        """A config's relative paths resolve against the project root (checkout), not the cwd;
        the command line's against the current folder (``base=Path.cwd()``)."""
        kind, sep, rest = self.spec.partition(":")
        parts = (
            [rooted(p, base) for p in rest.split(".json:")]
            if kind == "coco"
            else [rooted(rest, base)]
        )
        spec = f"{kind}{sep}{'.json:'.join(parts)}"
        return DataSource(
            spec,
            rooted(self.split_file, base) if self.split_file else None,
            self.weight,
            rooted(self.ignore_file, base) if self.ignore_file else None,
            self.ignore_below,
        )

    def with_split(self, split_file: str | Path | None) -> DataSource:
        """The source with ``split_file`` (``--split-file``) when it names no ``#split=`` of its
        own; the two together are refused (one of them was silently not used)."""
        ours = self.split_file
        if not split_file or (ours and Path(ours).resolve() == Path(split_file).resolve()):
            return self
        if ours:
            raise DatasetError(
                f"--split-file {split_file} and {self.spec}#split={ours} both choose the "
                "images; give one of them"
            )
        return replace(self, split_file=str(split_file))

    def load(self, split_file: str | Path | None = None) -> Dataset:
        """The source's samples, split (see `with_split`), ignore file and ``ignore_below``
        applied."""
        src = self.with_split(split_file)
        ds = load_dataset(src.spec, src.split_file, src.ignore_file)
        if self.ignore_below is not None:
            ds.samples = ignore_short_people(ds.samples, self.ignore_below)
        return ds


SOURCE_KEYS = ["spec", "split_file", "weight", "ignore_file", "ignore_below"]


def _check_source_keys(data: dict, where: str) -> None:
    """A source's unknown key named with the closest known one (``"wieght"``: did you mean
    ``'weight'``?), as the config's sections and other keys are; a typo must not leave the
    default weight or no split in place, and a list of every key hid which one was wrong."""
    unknown = sorted(set(data) - set(SOURCE_KEYS))
    if unknown:
        name = unknown[0]
        which = f"data source {data['spec']!r}" if "spec" in data else "a data source"
        raise ConfigError(
            f"{where}: {which}: unknown key {name!r}{did_you_mean(name, SOURCE_KEYS)}"
        )
    if "spec" not in data:
        raise ConfigError(
            f'{where}: a data source needs "spec" (the dataset, e.g. "yolo:ROOT"); got keys '
            f"{', '.join(sorted(data)) or 'none'}"
        )


def _number(value: object, key: str, where: str) -> float:
    """A config value as a float, or a ConfigError that names the key (not a bare ValueError)."""
    if isinstance(value, bool):  # float(True) is 1.0: a JSON true is a mistake, not a weight
        raise ConfigError(f"{where}: {key}={value!r} is not a number")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}={value!r} is not a number") from None


def _optional_number(value: object, key: str, where: str) -> float | None:
    return None if value is None else _number(value, key, where)


def rooted(path: str, base: Path = PROJECT_ROOT) -> str:
    """``path`` as a config means it: relative paths resolve against ``base``, the checkout."""
    p = Path(path).expanduser()
    return os.path.normpath(p if p.is_absolute() else base / p)


def refuse_repeats(
    sources: list[DataSource] | tuple[DataSource, ...], where: str, more: str, base: Path
) -> None:
    """Refuse a source named twice in one mix (the same spec and split, paths resolved against
    ``base``): its images were silently counted twice; ``more`` says how to weight it instead."""
    seen: set[tuple[str, str | None]] = set()
    for src in sources:
        r = src.resolved(base)
        if (r.spec, r.split_file) in seen:
            raise ConfigError(
                f"{where} {_named(src)} is given twice: its images would count twice; give it "
                f"once ({more} to sample it more)"
            )
        seen.add((r.spec, r.split_file))


def _named(src: DataSource) -> str:
    return f"{src.spec}#split={src.split_file}" if src.split_file else src.spec


def load_sources(sources: list[DataSource], name: str, *, test_split_ok: bool = False) -> Dataset:
    """The samples of every source (split and ignore files applied, test splits refused unless
    ``test_split_ok``) as one dataset."""
    samples = []
    seen: dict[str, str] = {}  # resolved image path -> the spec that brought it
    for src in sources:
        src.checked(name, test_split_ok=test_split_ok)
        loaded = src.load().samples
        paths = [os.path.realpath(s.image_path) for s in loaded]
        twice = [p for p in paths if p in seen]
        if twice:
            raise DatasetError(
                f"{name}: {_named(src)} holds {len(twice)} image(s) that {seen[twice[0]]} "
                f"already holds (e.g. {twice[0]}), which would count twice; give each dataset "
                "once, or disjoint #split= files"
            )
        seen.update(dict.fromkeys(paths, _named(src)))
        samples += loaded
    if not samples:
        raise DatasetError(f"{name} ({', '.join(s.spec for s in sources)}) has no images")
    return Dataset(spec=" + ".join(s.spec for s in sources), kind=name, samples=samples)
