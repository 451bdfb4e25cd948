"""Person events and where they go: a rotated JSON-lines file and the log.

An output that fails (disk full, permissions) is logged and counted by the caller
(`Outputs.dispatch`), never allowed to stop detection. The JSONL writer keeps its own tiny
size-based rotation rather than `logging.handlers.RotatingFileHandler`, because that handler
swallows write errors (it prints them to stderr) and we must count them. The lines themselves go
through `edgedetect.linefile.LineFile`: whole lines or none, a file deleted or moved away is
written anew, a FIFO or device is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from edgedetect.linefile import LineFile
from edgedetect.service.config import mb_to_bytes
from edgedetect.service.tracker import TrackEvent

log = logging.getLogger("edgedetect.events")


@dataclass(frozen=True)
class Event:
    """One outward event, as written to JSONL / MQTT / webhooks."""

    type: str
    time: str  # ISO-8601 UTC wall time of the frame
    timestamp: float  # Unix seconds of the frame
    track_id: int
    box: list[float]  # x1, y1, x2, y2 in frame pixels
    score: float
    count: int
    frame_id: int
    previous_count: int = 0
    duration_s: float = 0.0
    snapshot: str = ""
    run_id: str = ""  # one per service start: track ids restart at 1, (run_id, track_id) does not
    zone: str = ""  # zone_entered / zone_left
    line: str = ""  # line_crossed, with direction "in" / "out"
    direction: str = ""
    clip: str = ""  # file name of the episode's clip in [clips] dir

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.type == "count_changed":  # about the scene, not one track
            for key in ("track_id", "box", "score"):
                d.pop(key)
        else:
            d.pop("previous_count")
        if self.type != "person_left":
            d.pop("duration_s")
        for key in ("snapshot", "run_id", "zone", "line", "direction", "clip"):
            if not d[key]:  # only the fields that say something about this event
                d.pop(key)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any) -> Event | None:
        """The event of one `to_dict()` (a JSONL line read back), or None for anything else
        (a line some other version or a person wrote, cut short by a power cut)."""
        if not isinstance(d, dict) or not isinstance(d.get("type"), str):
            return None
        try:
            kept = {f: d[f] for f in _FIELDS if f in d}
            event = cls(**{"track_id": 0, "box": [], "score": 0.0, **kept})
        except TypeError:  # a field without a default is missing
            return None
        if not isinstance(event.box, list):
            return None
        numbers = (
            *(event.timestamp, event.track_id, event.score, event.count, event.frame_id),
            *(event.previous_count, event.duration_s, *event.box),
        )
        # finite too: json reads NaN and Infinity, and writes them back into /api/events, which
        # is then no JSON a browser parses (the page's events list failed)
        if not all(_finite_number(v) for v in numbers):
            return None
        texts = (event.time, event.snapshot, event.clip, event.zone, event.line)
        return event if all(isinstance(v, str) for v in texts) else None


_FIELDS = frozenset(Event.__dataclass_fields__)


def _finite_number(v: Any) -> bool:
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def last_events(path: str | Path, limit: int, tail_bytes: int = 512 << 10) -> list[Event]:
    """The newest `limit` events of a JSONL events file, oldest first, read from its last
    `tail_bytes` (the page's list after a restart: a long file is not read whole on a Pi). A
    file that is missing or unreadable gives none; lines that are not events are skipped."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail_bytes))
            data = f.read(tail_bytes)
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > tail_bytes:
        lines = lines[1:]  # the first may be the end of a line cut by the seek
    events = []
    for line in lines:
        try:
            event = Event.from_dict(json.loads(line))
        except ValueError:  # not JSON (and not UTF-8): a torn or foreign line
            continue
        if event is not None:
            events.append(event)
    return events[-limit:] if limit > 0 else []


def make_event(
    te: TrackEvent, wall_time: float, frame_id: int, snapshot: str = "", run_id: str = ""
) -> Event:
    iso = datetime.fromtimestamp(wall_time, tz=timezone.utc).isoformat(timespec="milliseconds")
    return Event(
        type=te.type,
        time=iso.replace("+00:00", "Z"),
        timestamp=round(wall_time, 3),
        track_id=te.track_id,
        box=[round(v, 1) for v in te.box],
        score=te.score,
        count=te.count,
        frame_id=frame_id,
        previous_count=te.previous_count,
        duration_s=te.duration_s,
        snapshot=snapshot,
        run_id=run_id,
        zone=te.zone,
        line=te.line,
        direction=te.direction,
        clip=te.clip,
    )


class EventOutput(Protocol):
    name: str

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Appends one JSON object per line; rotates at `max_bytes` keeping `backups` old files.

    A rotation that fails (the folder turned read-only, a rename refused) loses nothing: the
    event goes on into the current file, over `max_bytes`; the failure is logged once (until a
    rotation works again), reported to `on_error("jsonl_rotate")` at each failed attempt, and
    rotation is tried again at the first size check `ROTATE_RETRY_S` later.
    """

    name = "jsonl"
    ROTATE_RETRY_S = 60.0

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = 10 << 20,
        backups: int = 5,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.lost = 0  # events not written (the file keeps only whole lines)
        self.rotate_failures = 0  # failed rotation attempts (events went on into the file)
        self._on_error = on_error
        self._clock = clock
        self._retry_at: float | None = None  # set while rotation fails: when to try again
        self._file = LineFile(self.path, "[events] jsonl")

    @classmethod
    def from_config(
        cls, section: Any, on_error: Callable[[str], None] | None = None
    ) -> JsonlWriter:
        return cls(section.jsonl, mb_to_bytes(section.max_mb), section.backups, on_error)

    def send(self, event: Event) -> None:
        data = (event.to_json() + "\n").encode()
        try:
            size = self._file.size()
            if size and size + len(data) > self.max_bytes and self._may_rotate():
                # before writing, so the live file holds the newest events; if rotation is
                # refused, the same file (over the limit) rather than nothing
                self._try_rotate()
                size = self._file.size()
            self._file.append(data, size)
        except OSError:
            self.lost += 1
            raise

    def _may_rotate(self) -> bool:
        return self._retry_at is None or self._clock() >= self._retry_at

    def _try_rotate(self) -> None:
        """Rotate; on failure log (once until it works again), count and schedule a retry."""
        try:
            self.rotate()
        except OSError as e:
            self.rotate_failures += 1
            if self._on_error is not None:
                self._on_error("jsonl_rotate")
            if self._retry_at is None:
                folder = self.path.parent
                log.error(
                    "cannot rotate events file %s: %s; events go on into it past [events] "
                    "max_mb, rotation is retried every %.0f s; make the folder %s writable "
                    "for the service's user (or point [events] jsonl at a folder that is)",
                    self.path,
                    e,
                    self.ROTATE_RETRY_S,
                    folder,
                )
            self._retry_at = self._clock() + self.ROTATE_RETRY_S
            return
        if self._retry_at is not None:
            log.info("events file %s rotates again", self.path)
            self._retry_at = None

    def rotate(self) -> None:
        """events.jsonl -> events.jsonl.1 -> ... -> events.jsonl.N (oldest dropped)."""
        self._file.release()
        self._drop_extra_backups()
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _drop_extra_backups(self) -> None:
        """Old files numbered beyond `backups` (it was lowered since they were made): without
        this they stayed for ever."""
        numbered = re.compile(re.escape(self.path.name) + r"\.([0-9]+)")
        with os.scandir(self.path.parent) as it:
            matches = [(e.path, numbered.fullmatch(e.name)) for e in it]
        for path, m in matches:
            if m is not None and int(m.group(1)) > self.backups:
                Path(path).unlink(missing_ok=True)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class LogOutput:
    """One human-readable log line per event (journald picks up stderr)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log

    def send(self, event: Event) -> None:
        if event.type == "count_changed":
            self.log.info("count_changed %d -> %d", event.previous_count, event.count)
        elif event.type in ("zone_entered", "zone_left", "line_crossed"):
            where = (
                f"zone={event.zone}"
                if event.zone
                else f"line={event.line} direction={event.direction}"
            )
            self.log.info("%s track=%d %s", event.type, event.track_id, where)
        else:
            self.log.info(
                "%s track=%d score=%.2f box=%s count=%d%s",
                event.type,
                event.track_id,
                event.score,
                [int(v) for v in event.box],
                event.count,
                f" snapshot={event.snapshot}" if event.snapshot else "",
            )

    def close(self) -> None:
        pass


STAMP_PATTERN = r"\d{8}T\d{6}\.\d{3}Z"  # what utc_stamp() returns, as a regular expression


def utc_stamp(wall_time: float | None = None) -> str:
    """Filesystem-safe UTC timestamp, sortable: 20260101T120000.123Z."""
    t = time.time() if wall_time is None else wall_time
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return dt.strftime("%Y%m%dT%H%M%S.") + f"{dt.microsecond // 1000:03d}Z"
