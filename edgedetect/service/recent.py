"""The last events in memory, for the web page (/api/events); at start, the newest ones of the
events file, so a restart does not empty the page.

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

from edgedetect.service.events import Event, last_events

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

    def resume(self, jsonl: str) -> int:
        """At start: the newest events of the events file the last run wrote (and of its newest
        backup, `.1`, when the file was rotated since), so the page shows them after a restart
        or a power cut, not an empty list. How many were read."""
        events = last_events(jsonl, self.size) if jsonl else []
        if jsonl and len(events) < self.size:  # just rotated: the rest are in the newest backup
            events = last_events(f"{jsonl}.1", self.size - len(events)) + events
        with self._lock:
            room = self.size - len(self._items)
            if room > 0:
                self._items.extendleft(reversed(events[-room:]))
        return len(events)

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
