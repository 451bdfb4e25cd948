"""Helpers for the service tests (no tests here): configs, image folders, HTTP, a running service.

The service under test is always the real one (real detector on the shared COCO model, real
pipeline, real HTTP server on 127.0.0.1); only the camera is replaced, by real photos.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
from conftest import COCO_LABELS, COCO_MODEL, need_shared, skimage_bgr


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """Tiny TOML writer for flat sections (JSON strings/lists are valid TOML values)."""
    out = []
    for section, values in data.items():
        out.append(f"[{section}]")
        for k, v in values.items():
            out.append(f"{k} = {'true' if v is True else 'false' if v is False else json.dumps(v)}")
        out.append("")
    return "\n".join(out)


def image_dir(root: Path, people: int = 6, empty: int = 6) -> Path:
    """A folder of real photos: `people` astronaut frames, then `empty` coffee frames."""
    d = root / "imgs"
    d.mkdir(exist_ok=True)
    astro, coffee = skimage_bgr("astronaut"), skimage_bgr("coffee")
    for i in range(people + empty):
        cv2.imwrite(str(d / f"f{i:03d}.jpg"), astro if i < people else coffee)
    return d


def service_config(root: Path, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config for tests: COCO model, looping image folder, loopback HTTP on a free port."""
    need_shared(COCO_MODEL)
    cfg: dict[str, dict[str, Any]] = {
        "service": {"log_level": "info", "stall_timeout_s": 2.0},
        # image_fps 0: unpaced, so a test's frames come as fast as the detector goes
        "source": {
            "spec": f"dir:{image_dir(root)}",
            "loop": True,
            "reconnect_max_s": 1.0,
            "image_fps": 0,
        },
        "model": {
            "path": str(COCO_MODEL),
            "labels": str(COCO_LABELS),
            "threshold": 0.5,
            "threads": 1,
        },
        "preview": {"enabled": False},
        "tracker": {"enter_frames": 2, "leave_frames": 3},
        "events": {"jsonl": str(root / "events.jsonl")},
        "snapshots": {"dir": str(root / "snaps")},
        "http": {"listen": "127.0.0.1:0"},
        "motion": {"enabled": False},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_config(root: Path, **sections: dict[str, Any]) -> Path:
    p = root / "config.toml"
    p.write_text(to_toml(service_config(root, **sections)))
    return p


def http_get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def poll(cond: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Return cond()'s first truthy value within `timeout` s, else its last value (bounded loop)."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got or time.monotonic() >= end:
            return got
        time.sleep(every)


def metric(text: str, name: str) -> float:
    """Value of one sample line `name value` (labels included in `name`) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise KeyError(name)


class RunningService:
    """The real Service in this process (signals off), its main loop on a thread."""

    def __init__(self, config: Path, opener: Callable[[str], Any] | None = None) -> None:
        from edgedetect.service.daemon import make_service

        self.svc = make_service(str(config), install_signals=False)
        self.svc.source_opener = opener
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_code = self.svc.run()

    def __enter__(self) -> RunningService:
        self.svc.start()
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self.svc.http is not None
        return f"http://127.0.0.1:{self.svc.http.port}"

    def get(self, path: str, **kw: Any) -> tuple[int, dict, bytes]:
        return http_get(self.url + path, **kw)

    def metrics(self) -> str:
        return self.get("/metrics")[2].decode()

    def __exit__(self, *exc: object) -> None:
        self.svc.request_stop()
        self._thread.join(5.0)
        assert not self._thread.is_alive(), "service did not stop within 5 s"
