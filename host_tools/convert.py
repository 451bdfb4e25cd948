r"""Convert an annotated dataset to COCO json or to an OD-API TFRecord + label_map.pbtxt.

    python -m host_tools.convert --dataset pennfudan:ROOT [--split-file F] \
        --to coco --out train.json
    python -m host_tools.convert --dataset coco:ann.json:images \
        --to tfrecord --out data/train.tfrecord

Only person boxes are carried (the project's one class); ignore regions become ``iscrowd`` /
``image/object/is_crowd``.
"""

from __future__ import annotations

import argparse
import sys

from host_tools._cli import cli_errors, output_file, path_option
from host_tools.datasets import KINDS
from host_tools.datasets.sources import DataSource


def build_parser() -> argparse.ArgumentParser:
    """The converter's command line."""
    p = argparse.ArgumentParser(
        prog="python -m host_tools.convert", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="; ".join(KINDS.values()) + " (SPEC[#split=FILE][#ignore=FILE][#ignore_below=H])",
    )
    p.add_argument(
        "--split-file", type=path_option, help="image names, one per line, to select a subset"
    )
    p.add_argument("--to", required=True, choices=("coco", "tfrecord"), help="output format")
    p.add_argument("--out", required=True, type=path_option, help="output .json or .tfrecord file")
    p.add_argument(
        "--label-map",
        type=path_option,
        help="label_map.pbtxt path for --to tfrecord (default: beside --out)",
    )
    p.add_argument(
        "--images-dir",
        type=path_option,
        help="for --to coco: folder file_name is relative to (default: the images' common folder)",
    )
    return p


@cli_errors("convert")
def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    output_file(args.out, "--out", f"train.{'json' if args.to == 'coco' else 'tfrecord'}")
    if args.label_map:  # written after the records: a folder there failed once they were
        output_file(args.label_map, "--label-map", "label_map.pbtxt")
    ds = DataSource.parse(args.dataset, test_split_ok=True).load(args.split_file)
    if args.to == "coco":
        from host_tools.datasets.coco import write_coco_json

        images_dir = write_coco_json(ds.samples, args.out, args.images_dir)
        print(f"wrote {args.out}: {len(ds)} images, {sum(len(s.boxes) for s in ds)} person boxes")
        print(f"read it back with --dataset coco:{args.out}:{images_dir}")
    else:
        from host_tools.datasets.tfrecord import write_tfrecord

        out, label_map = write_tfrecord(ds.samples, args.out, args.label_map)
        boxes = sum(len(s.boxes) for s in ds)
        print(f"wrote {out}: {len(ds)} images, {boxes} person boxes; label map {label_map}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
