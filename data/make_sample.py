"""Make the bundled sample input in data/ from scikit-image's real photos.

    PYTHONPATH=. python data/make_sample.py

Writes ``data/sample.mp4`` (640x480, 15 fps, 8 s: astronaut -> chelsea -> camera -> coffee,
a slow pan/zoom over each, frame index in the corner), ``data/sample.json`` (which frames show
a person) and ``data/images/*.jpg`` (the four photos as stills). Needs scikit-image (a dev
dependency); the outputs are committed so a fresh machine needs nothing but the runtime.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere in a checkout

from edgedetect.clips import render_clip, skimage_photos  # noqa: E402


def main() -> int:
    photos = skimage_photos()
    segments = render_clip(
        HERE / "sample.mp4", size=(640, 480), fps=15.0, seconds_per_photo=2.0, photos=photos
    )
    meta = {
        "clip": "sample.mp4",
        "size": [640, 480],
        "fps": 15.0,
        "frames": segments[-1]["last"] + 1,
        "segments": segments,
    }
    (HERE / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    images = HERE / "images"
    images.mkdir(exist_ok=True)
    for name, bgr, _person in photos:
        cv2.imwrite(str(images / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(
        f"wrote {HERE / 'sample.mp4'} ({meta['frames']} frames), {len(photos)} stills; "
        f"data/ is {total / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
