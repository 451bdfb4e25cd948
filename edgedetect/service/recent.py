"""The last events in memory, for the web page (/api/events).

`RecentEvents` is an always-on event output kept by the `Service` itself, not built by
`Outputs.from_config`: a reload (SIGHUP) rebuilds the outputs and must not empty the list the
page shows. Its `close()` therefore does nothing. Bounded (a deque), so memory stays fixed.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any
from urllib.parse import quote

from edgedetect.service.events import Event

DEFAULT_SIZE = 200


def web_event(event: Event) -> dict[str, Any]:
    """The event as the page sees it: file paths become URLs the HTTP server answers
    (/snapshots/NAME, /clips/NAME), so no folder of the machine is shown."""
    d = event.to_dict()
    snapshot = d.pop("snapshot", "")
    if snapshot:
        d["snapshot_url"] = "/snapshots/" + quote(os.path.basename(snapshot), safe="")
    if event.clip:
        d["clip_url"] = "/clips/" + quote(os.path.basename(event.clip), safe="")
    return d


class RecentEvents:
    """The newest `size` events; thread-safe (the pipeline appends, HTTP workers read)."""

    name = "recent"

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = max(1, int(size))
        self._items: deque[Event] = deque(maxlen=self.size)
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        with self._lock:
            self._items.append(event)

    def close(self) -> None:
        """Nothing to release; the list outlives the `Outputs` set that a reload replaces."""

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` events, newest first, as `web_event` dicts."""
        with self._lock:
            items = list(self._items)
        return [web_event(e) for e in reversed(items[-limit:])] if limit > 0 else []

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
