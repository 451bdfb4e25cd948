"""edgedetect: real-time person detection for the Raspberry Pi.

The runtime package depends on numpy, OpenCV and a TFLite runtime only (never TensorFlow), so it
installs on a Pi. See ``docs/ARCHITECTURE.md`` for the path of a frame from camera to event.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgedetect.detections import Detections
from edgedetect.errors import EdgeDetectError

__all__ = ["Detections", "EdgeDetectError", "__version__"]
