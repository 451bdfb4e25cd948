"""Pipeline benchmark: bare interpreter vs. threaded pipeline vs. naive serial loop; prints JSON.

    PYTHONPATH=. python benchmarks/bench_pipeline.py \
        --model ../shared/data/models/ssd_mobilenet_v1_coco_quant.tflite \
        --labels ../shared/data/models/coco_labels.txt --threads 1 --frames 300

The same code as ``edgedetect bench --json`` (edgedetect/bench.py); see docs/pipeline.md for what
each number means and the results measured so far.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from edgedetect.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "--json", *sys.argv[1:]]))
