"""A reload that swaps the event outputs while the output thread is sending an event: the old
set must not be closed under that event (its JSONL descriptor closed mid-write, its MQTT or
webhook queue stopped after the event was put in it)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgedetect.detections import Detections
from edgedetect.frame import Frame
from edgedetect.service import reload
from edgedetect.service.config import load_config
from edgedetect.service.daemon import Service
from edgedetect.service.outputset import Outputs
from edgedetect.service.tracker import TrackEvent


class SlowOutput:
    """Test double of an output whose send() takes as long as the test wants."""

    name = "probe"

    def __init__(self) -> None:
        self.sending = threading.Event()
        self.release = threading.Event()
        self.in_send = False
        self.closed_during_send = False
        self.closed = False

    def send(self, event: Any) -> None:
        self.in_send = True
        self.sending.set()
        self.release.wait(30)
        self.in_send = False

    def close(self) -> None:
        self.closed_during_send = self.in_send
        self.closed = True


def test_reload_does_not_close_the_outputs_under_an_event_being_sent() -> None:
    # emit() took the outputs under the lock and sent outside it; the reload swapped them and
    # closed the old set at once: an event half-way through the old set met closed outputs
    # (an EBADF or a write to a descriptor number reused by another file; a queue stopped).
    svc = Service(load_config(None), install_signals=False)
    slow = SlowOutput()
    svc.outputs = Outputs([slow], None, svc.metrics)
    frame = Frame(1, 0.0, 0.0, np.zeros((8, 8, 3), dtype=np.uint8))
    te = TrackEvent("person_entered", 1, (0.0, 0.0, 4.0, 4.0), 0.9, 1)
    sender = threading.Thread(target=svc.emit, args=(te, frame, Detections.empty()))
    sender.start()
    assert slow.sending.wait(30), "the event never reached the output"
    plan = reload.ReloadPlan(svc.cfg, outputs=Outputs([], None, svc.metrics))
    swapper = threading.Thread(target=reload._swap_outputs, args=(svc, plan))
    swapper.start()
    swapper.join(2.0)  # long enough for a swap that does not wait for the event to close
    slow.release.set()
    sender.join(30)
    swapper.join(30)
    assert slow.closed and not slow.closed_during_send, "old outputs closed under a sending event"
