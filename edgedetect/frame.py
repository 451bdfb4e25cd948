"""The two objects that travel through the pipeline: a captured ``Frame`` and its ``Result``.

A ``Result`` holds the very ``Frame`` its detections were computed from (not a frame id to look
up later), so overlay and sinks can only ever draw boxes on their own frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgedetect.detections import Detections


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image.

    Attributes:
        id: capture sequence number, 0-based, strictly increasing per source.
        timestamp: ``time.monotonic()`` when the source delivered the frame (latency reference).
        wall_time: ``time.time()`` at the same moment (for logs, events, file names).
        image: BGR uint8 (H, W, 3): the full-size frame shown, recorded and drawn on.
        lores: optional small BGR frame of the same field of view (picamera2 lores stream); the
            detector reads it instead of ``image`` so no CPU resize of the full frame is needed.
        source: the source spec the frame came from, its password hidden (`sources.redact`),
            or the file name for folder sources.
    """

    id: int
    timestamp: float
    wall_time: float
    image: np.ndarray
    lores: np.ndarray | None = None
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of ``image``: the pixel space of the frame's detections."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def detector_input(self) -> np.ndarray:
        """The image the detector should read: ``lores`` when present, else ``image``."""
        return self.lores if self.lores is not None else self.image


@dataclass(eq=False)
class Result:
    """Detections of one frame, handed to the output stage and to every sink.

    Attributes:
        frame: the frame the detections were computed from.
        detections: boxes in ``frame.image`` pixels (empty when ``skipped``).
        inference_ms: interpreter time for this frame (0 when skipped).
        skipped: True when the gate (motion) decided not to run inference on this frame.
        preprocess_ms: resize/convert time spent in the capture thread for this frame.
        annotated: ``frame.image`` with boxes drawn, set by the output stage when it draws (else
            None); sinks that save pictures use it instead of drawing again.
        output_time: ``time.monotonic()`` when the output stage received the result.
    """

    frame: Frame
    detections: Detections
    inference_ms: float = 0.0
    skipped: bool = False
    preprocess_ms: float = 0.0
    annotated: np.ndarray | None = field(default=None, repr=False)
    output_time: float | None = None

    @property
    def latency_ms(self) -> float | None:
        """Capture-to-output latency in ms, once the output stage has the result."""
        if self.output_time is None:
            return None
        return (self.output_time - self.frame.timestamp) * 1000.0
