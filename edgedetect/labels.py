"""Label files: plain text, id-prefixed text and OD-API ``label_map.pbtxt``.

Everything is normalised to ``dict[int, str]`` keyed by the **0-based model output class index**,
which is what ``TFLite_Detection_PostProcess`` emits. The formats seen in the field map to it so:

* plain text, one name per line: line *i* is class *i*; a leading ``???`` line (the COCO
  background placeholder in Coral/TF1 files) is dropped, other ``???`` lines stay as unused ids;
* id-prefixed text (``0 person`` or ``1 person``): if the smallest id is 0 the ids are output
  indices (Coral style); otherwise they are 1-based OD-API ids and index = id - 1;
* ``.pbtxt`` label maps (``item { id: 1 name: "person" display_name: "person" }``): ids are
  1-based, index = id - 1, ``display_name`` preferred.

The pbtxt reader is a small regex parser rather than protobuf's text_format: a Pi install should
not need the OD-API's generated protobuf classes for one flat message type.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

from edgedetect.errors import LabelsError
from edgedetect.linefile import file_kind

log = logging.getLogger(__name__)

UNUSED = "???"

_ID_LINE = re.compile(r"^\s*(\d+)[\s:,]+(\S.*?)\s*$")
_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|(-?\d+))")


def load_labels(path: str | Path) -> dict[int, str]:
    """Read a label file of any supported format into ``{class_index: name}``."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # reading a FIFO would block
        raise LabelsError(
            f"label file {path} is {file_kind(path.stat().st_mode)}, not a label file; "
            "pass the label file itself"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(
            f"label file not found: {path} (check the path or pass --labels)"
        ) from None
    except IsADirectoryError:
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".txt", ".pbtxt"))[:3]
        raise LabelsError(
            f"label file {path} is a directory, not a file; pass the label file itself"
            + (f" (it holds {', '.join(inside)})" if inside else "")
        ) from None
    except UnicodeDecodeError:
        raise LabelsError(
            f"label file {path} is not UTF-8 text: pass a label file (one class name a line, "
            "or a label map .pbtxt) saved as UTF-8, not the model or an image"
        ) from None
    except OSError as err:
        raise LabelsError(f"cannot read label file {path}: {err}") from None
    names = parse_labels(text, source=str(path))
    if not names:
        raise LabelsError(f"label file {path} has no labels; put one class name per line")
    return names


def check_label_count(
    names: Mapping[int, str], num_classes: int | None, labels: str | Path, model: str | Path
) -> str | None:
    """Warn (and return the warning) when a label file does not fit the model's class count.

    A file made for another model shifts or misses names silently: a COCO-80 list on a COCO-90
    model shows "class 73" and mislabels the rest. ``num_classes`` None (unknown): no check.
    """
    if num_classes is None or not names:
        return None
    covered = max(names) + 1  # ids 0..max; '???' placeholders keep their ids
    if covered == num_classes:
        return None
    message = (
        f"label file {labels} covers {covered} classes but model {model} has {num_classes}: "
        + (
            "classes past the last label show as 'class N'"
            if covered < num_classes
            else "the extra labels are never used"
        )
        + "; pass the label file made for this model (--labels)"
    )
    log.warning("%s", message)
    return message


def parse_labels(text: str, source: str = "<labels>") -> dict[int, str]:
    """Parse label text; the format is detected from the content, not the file name."""
    if re.search(r"^\s*item\s*\{", text, re.M):
        return _parse_pbtxt(text, source)
    lines = [ln.strip() for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    content = [ln for ln in lines if ln]
    if content and all(_ID_LINE.match(ln) for ln in content):
        pairs = [(int(m.group(1)), m.group(2)) for m in map(_ID_LINE.match, content) if m]
        offset = 0 if min(i for i, _ in pairs) == 0 else 1
        return {i - offset: name for i, name in pairs}
    if lines and lines[0] == UNUSED:
        lines = lines[1:]
    return {i: name for i, name in enumerate(lines) if name and name != UNUSED}


def _parse_pbtxt(text: str, source: str) -> dict[int, str]:
    text = re.sub(r"#[^\n]*", "", text)
    names: dict[int, str] = {}
    for n, item in enumerate(_ITEM.finditer(text), start=1):
        fields: dict[str, str] = {}
        for m in _FIELD.finditer(item.group(1)):
            value = next(g for g in m.groups()[1:] if g is not None)
            fields[m.group(1)] = re.sub(r"\\(.)", r"\1", value)  # undo \" and \\ escapes
        if "id" not in fields:
            raise LabelsError(
                f"{source}: item {n} has no 'id' field (label_map.pbtxt items need id and name)"
            )
        try:
            item_id = int(fields["id"])
        except ValueError:
            raise LabelsError(f"{source}: item {n} has a non-integer id {fields['id']!r}") from None
        name = fields.get("display_name") or fields.get("name")
        if not name:
            raise LabelsError(f"{source}: item {n} (id {item_id}) has no name or display_name")
        if item_id < 1:
            # id 0 is reserved for background in the OD API; a map that uses it is 0-based.
            continue
        names[item_id - 1] = name
    return names


def format_label_map_pbtxt(names: Mapping[int, str]) -> str:
    """OD-API ``label_map.pbtxt`` text for ``{class_index: name}`` (ids written 1-based)."""
    parts = []
    for index in sorted(names):
        name = names[index].replace("\\", "\\\\").replace('"', '\\"')
        parts.append(
            f'item {{\n  id: {index + 1}\n  name: "{name}"\n  display_name: "{name}"\n}}\n'
        )
    return "".join(parts)


def write_label_map_pbtxt(path: str | Path, names: Mapping[int, str]) -> Path:
    """Write ``names`` as an OD-API label map, readable by the OD API and by :func:`load_labels`."""
    path = Path(path)
    path.write_text(format_label_map_pbtxt(names), encoding="utf-8")
    return path


def find_labels_for(model_path: str | Path) -> Path | None:
    """The label file that belongs to a model, by the conventions used in the wild.

    ``model.labels.txt`` and ``model.txt`` beside it, then ``labels.txt``, ``labelmap.txt`` and
    ``label_map.pbtxt`` in the same folder.
    """
    model = Path(model_path)
    stem = model.with_suffix("")
    candidates = [
        stem.with_name(stem.name + ".labels.txt"),
        model.with_suffix(".txt"),
        stem.with_name(stem.name + ".pbtxt"),
        model.parent / "labels.txt",
        model.parent / "labelmap.txt",
        model.parent / "label_map.pbtxt",
    ]
    return next((c for c in candidates if c.is_file()), None)


def labels_from_metadata(model_path: str | Path) -> dict[int, str] | None:
    """Labels packed inside a TFLite file's metadata (Model Maker style), if any.

    Such files are valid zip archives (the associated files are appended as a zip), so the
    standard library reads them without the tflite-support package.
    """
    model = Path(model_path)
    try:
        if not zipfile.is_zipfile(model):
            return None
        with zipfile.ZipFile(model) as zf:
            for name in zf.namelist():
                if name.lower().endswith((".txt", ".pbtxt")):
                    names = parse_labels(
                        zf.read(name).decode("utf-8", "replace"), f"{model}:{name}"
                    )
                    if names:
                        return names
    except (OSError, zipfile.BadZipFile):
        return None
    return None
