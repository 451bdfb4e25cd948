"""The per-frame pipeline sink of the service: metrics, tracking, events, live view, preview.

It runs in the pipeline's output thread and is given its collaborators (metrics, tracker, live
view, an event callback) instead of reaching into the service, so it can be reasoned about and
tested alone. Nothing here blocks on the network: events go to outputs that only enqueue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgedetect.detections import Detections
from edgedetect.overlay import box_labels
from edgedetect.service.liveview import LiveView
from edgedetect.service.metrics import ServiceMetrics
from edgedetect.service.tracker import PersonTracker, TrackEvent

log = logging.getLogger("edgedetect.service")


def person_mask(dets: Detections) -> np.ndarray:
    """Which detections the tracker counts: label 'person' when the model has one, else all."""
    names = dets.names or {}
    person_ids = [i for i, n in names.items() if str(n).lower() == "person"]
    if not person_ids:
        return np.ones(len(dets), dtype=bool)
    return np.isin(dets.class_id, person_ids)


class ServiceSink:
    """`sink(result)`: count, track, emit events, update the live view and the preview."""

    name = "service"

    def __init__(self, metrics: ServiceMetrics, tracker: PersonTracker, live: LiveView,
                 emit: Callable[[TrackEvent, Any, Detections], None], flush: Callable[[], None],
                 preview: Any = None) -> None:
        self.metrics = metrics
        self.tracker = tracker
        self.live = live
        self.emit = emit
        self.flush = flush
        self.preview = preview  # a callable(frame, boxes, labels) with close(), or None
        self.last_frame_time: float | None = None
        self._tracked = Detections.empty()

    def __call__(self, result: Any) -> None:
        m = self.metrics
        self.last_frame_time = time.monotonic()
        m.frames.inc()
        frame = result.frame
        if result.skipped:
            m.skipped.inc()
            dets = self._tracked  # still scene: tracks are alive and their boxes still valid
        else:
            m.inferred.inc()
            m.inference.observe(result.inference_ms / 1000.0)
            dets = self._track(result.detections, frame)
        self.live.update(frame, dets)
        self._show(frame, dets)

    def _track(self, dets: Detections, frame: Any) -> Detections:
        self.metrics.detections.set(len(dets))
        mask = person_mask(dets)
        persons = dets[mask]
        tracked, events = self.tracker.update(persons, frame.timestamp)
        tids = np.full(len(dets), -1, dtype=np.int64)
        tids[np.flatnonzero(mask)] = np.asarray(tracked.tracker_id, dtype=np.int64)
        dets = Detections(dets.xyxy, dets.score, dets.class_id, dets.names, tids)
        self._tracked = dets[tids >= 0]
        self.metrics.persons.set(self.tracker.count)
        for te in events:
            self.emit(te, frame, dets)
        return dets

    def _show(self, frame: Any, dets: Detections) -> None:
        preview = self.preview
        if preview is None:
            return
        try:
            preview(frame, dets.xyxy, box_labels(dets, scores=False))
        except Exception as e:
            self.metrics.error("preview")
            log.warning("preview failed (%s); disabling it", e)
            self.preview = None
            try:
                preview.close()
            except Exception:
                pass

    def close(self) -> None:
        """Flush on the way out; the outputs themselves belong to the service (they survive reloads)."""
        self.flush()
