"""Soak benchmark: the real service on a looping folder of real photos for N frames; prints JSON.

Everything a long run exercises is on: the detector (real model), motion gating, the tracker
with people entering and leaving every second, JSONL events with rotation, snapshots with
retention, clips (the OpenCV encoder thread, a new file every 10 s, retention at 5 files), and an
HTTP client scraping /metrics, /healthz and /snapshot.jpg and reading /stream.mjpg. RSS, threads
and open descriptors are sampled after a warm-up and at the end; RSS growth is the number to
watch (target < 10 MB over 20,000 frames); threads and descriptors must not grow by more than
`SLACK` (an HTTP request in flight, the client's sockets, the clip being written and a
snapshot's temp file come and go; a leak grows by one an episode or a request: hundreds).

    PYTHONPATH=. python benchmarks/soak.py --frames 20000 [--model M --labels L]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgedetect.service.daemon import Service

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "data" / "models"


SLACK = 4  # threads or descriptors that come and go between two samples


def open_fds() -> int:
    """Descriptors this process holds (files, sockets, pipes): a leak grows them."""
    return len(list(Path("/proc/self/fd").iterdir()))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def write_images(folder: Path, group: int) -> None:
    """Groups of identical frames: a person, an empty room, a cat (people enter and leave)."""
    import cv2
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    i = 0
    for photo in photos:
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
        for _ in range(group):
            cv2.imwrite(str(folder / f"f{i:04d}.jpg"), bgr)
            i += 1


def client(base: str, stop: threading.Event, counts: dict) -> None:
    """A monitoring client: scrapes like Prometheus would, grabs snapshots, watches the stream."""
    while not stop.is_set():
        for path in ("/metrics", "/healthz", "/snapshot.jpg"):
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    r.read()
                counts[path] = counts.get(path, 0) + 1
            except OSError as e:
                _error(counts, path, e)
        try:  # read a few MJPEG parts, then hang up (exercises stream start/stop)
            host, port = base.replace("http://", "").split(":")
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            got, end = b"", time.monotonic() + 1.0
            while got.count(b"--edgedetectframe") < 3 and time.monotonic() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            counts["/stream.mjpg"] = counts.get("/stream.mjpg", 0) + 1
        except OSError as e:
            _error(counts, "/stream.mjpg", e)
        stop.wait(0.5)


def _error(counts: dict, path: str, exc: OSError) -> None:
    """Count a failed request, keeping the first few reasons (timeouts under CPU load, ...)."""
    counts["errors"] = counts.get("errors", 0) + 1
    reasons = counts.setdefault("error_reasons", [])
    if len(reasons) < 5:
        reasons.append(f"{path}: {exc}")


def _parser() -> argparse.ArgumentParser:
    """The command line: run length, model, and how the photo folder is made."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000, help="frames the service processes")
    ap.add_argument("--warmup", type=int, default=1000, help="frames before the first RSS sample")
    ap.add_argument(
        "--model",
        default=str(SHARED_MODELS / "ssd_mobilenet_v1_coco_quant.tflite"),
        help="TFLite model (default: the COCO SSD reference in ../shared/data/models)",
    )
    ap.add_argument("--labels", default=str(SHARED_MODELS / "coco_labels.txt"), help="its labels")
    ap.add_argument("--group", type=int, default=10, help="identical frames per photo")
    ap.add_argument("--no-motion", action="store_true", help="run inference on every frame")
    return ap


def _service_config(work: Path, model: str, labels: str, motion: bool) -> dict[str, Any]:
    """A raw service config with every long-run feature on, its files under ``work``; the
    rotation and retention limits are tiny so that a short soak rotates and prunes too."""
    return {
        "service": {"log_level": "warning", "stall_timeout_s": 10.0},
        # image_fps 0: as fast as the detector goes (the service's 5 fps for folders would make
        # the 20,000 frames of the documented run take 67 minutes instead of about 4)
        "source": {"spec": f"dir:{work / 'imgs'}", "loop": True, "image_fps": 0},
        "model": {"path": model, "labels": labels, "threads": 2},
        "preview": {"enabled": False},
        "tracker": {"enter_frames": 1, "leave_frames": 1},
        "events": {"jsonl": str(work / "events.jsonl"), "max_mb": 0.05, "backups": 2, "log": False},
        "snapshots": {"dir": str(work / "snaps"), "max_files": 20, "max_mb": 5.0},
        # one episode goes on while the photos loop (a person every 30 frames): max_s cuts it
        "clips": {
            "enabled": True,
            "dir": str(work / "clips"),
            "pre_s": 1.0,
            "post_s": 1.0,
            "max_s": 10.0,
            "max_files": 5,
        },
        "http": {"listen": "127.0.0.1:0"},
        "motion": {"enabled": motion, "max_interval_s": 0.25, "hold_s": 0.0},
    }


def _start_service(args: argparse.Namespace) -> tuple[Service, threading.Thread, Path]:
    """The real service on a fresh folder of photos, running in a thread; the folder is
    returned so that the report can count what the service left in it."""
    sys.path.insert(0, str(REPO))
    from edgedetect.service.config import validate
    from edgedetect.service.daemon import Service

    work = Path(tempfile.mkdtemp(prefix="edgedetect-soak-"))
    write_images(work / "imgs", args.group)
    raw = _service_config(work, args.model, args.labels, motion=not args.no_motion)
    import logging

    logging.basicConfig(level=logging.WARNING)
    svc = Service(validate(raw, "<soak>"), install_signals=False)
    svc.start()
    runner = threading.Thread(target=svc.run, daemon=True)
    runner.start()
    return svc, runner, work


def _frames_done(svc: Service) -> int:
    """Frames the service has processed so far, from its own metrics counter."""
    return int(svc.metrics.frames._value.get())


@dataclass
class _RssTrace:
    """Time, frames and RSS after the warm-up and at the end of the soak, and the samples
    in between (``"frame:MB"``), taken by :func:`_trace_rss`."""

    t0: float
    t_warm: float
    f_warm: int
    rss0: float
    t_end: float
    f_end: int
    rss1: float
    samples: list[str]
    threads: tuple[int, int]  # after the warm-up, at the end
    fds: tuple[int, int]


def _trace_rss(
    svc: Service,
    runner: threading.Thread,
    client_thread: threading.Thread,
    args: argparse.Namespace,
) -> _RssTrace:
    """Start the client, wait out the warm-up, then sample RSS, threads and descriptors every
    tenth of the run until ``args.frames`` frames are done (or the service died)."""
    t0 = time.monotonic()
    client_thread.start()  # before the warm-up, so HTTP threads and buffers count in the baseline
    while _frames_done(svc) < args.warmup:
        time.sleep(0.1)
    rss0, t_warm, f_warm = rss_mb(), time.monotonic(), _frames_done(svc)
    threads0, fds0 = threading.active_count(), open_fds()
    samples = [f"{f_warm}:{rss0:.1f}:{threads0}:{fds0}"]
    next_sample = f_warm + args.frames // 10
    while _frames_done(svc) < args.frames and runner.is_alive():
        time.sleep(0.2)
        if _frames_done(svc) >= next_sample:
            samples.append(
                f"{_frames_done(svc)}:{rss_mb():.1f}:{threading.active_count()}:{open_fds()}"
            )
            next_sample += args.frames // 10
    rss1, t_end, f_end = rss_mb(), time.monotonic(), _frames_done(svc)
    threads, fds = (threads0, threading.active_count()), (fds0, open_fds())
    return _RssTrace(t0, t_warm, f_warm, rss0, t_end, f_end, rss1, samples, threads, fds)


def _report(
    svc: Service,
    trace: _RssTrace,
    stats: dict[str, Any],
    healthy: bool,
    work: Path,
    counts: dict[str, Any],
    runner_alive: bool,
) -> dict[str, Any]:
    """The printed JSON: throughput, what the service did, and RSS growth against the target."""
    rss0, rss1 = trace.rss0, trace.rss1
    return {
        "frames": trace.f_end,
        "elapsed_s": round(trace.t_end - trace.t0, 1),
        "fps": round((trace.f_end - trace.f_warm) / max(trace.t_end - trace.t_warm, 1e-9), 1),
        "inferred": stats["inferred"],
        "skipped": stats["skipped"],
        **_outputs_report(svc, work),
        "threads_after_warmup_end": list(trace.threads),
        "fds_after_warmup_end": list(trace.fds),
        "http_requests": counts,
        "rss_mb_after_warmup": round(rss0, 1),
        "rss_mb_end": round(rss1, 1),
        "rss_growth_mb": round(rss1 - rss0, 2),
        "samples_frame_mb_threads_fds": trace.samples,
        "healthy_at_end": healthy,
        "target_rss_growth_mb": 10,
        "pass": bool(
            rss1 - rss0 < 10
            and trace.threads[1] <= trace.threads[0] + SLACK
            and trace.fds[1] <= trace.fds[0] + SLACK
            and healthy
            and runner_alive is False
        ),
    }


def _outputs_report(svc: Service, work: Path) -> dict[str, Any]:
    """What the service's outputs did: events, errors, and the files it kept under ``work``."""
    m = svc.metrics
    return {
        "events": {
            t: int(m.events.labels(t)._value.get())
            for t in ("person_entered", "person_left", "count_changed")
        },
        "errors": {
            c: int(m.errors.labels(c)._value.get())
            for (c,) in m.errors._metrics
            if m.errors.labels(c)._value.get()
        },
        "snapshots_kept": len(list((work / "snaps").glob("*.jpg"))),
        "clips": {
            "saved": int(m.clips._value.get()),
            "failed": int(m.clips_failed._value.get()),
            "frames_dropped": int(m.clip_frames_dropped._value.get()),
        },
        "clips_kept": len(list((work / "clips").glob("*_clip.mp4"))),
        "jsonl_files": sorted(p.name for p in work.glob("events.jsonl*")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if not 0 <= args.warmup < args.frames:
        ap.error(
            f"--warmup {args.warmup} must be 0 or more and below --frames {args.frames}: "
            "RSS, threads and descriptors are compared between the two"
        )
    if not Path(args.model).is_file():
        print(json.dumps({"error": f"model not found: {args.model} (pass --model)"}))
        return 2
    svc, runner, work = _start_service(args)
    assert svc.http is not None  # the config above listens on 127.0.0.1:0
    base = f"http://127.0.0.1:{svc.http.port}"
    stop = threading.Event()
    counts: dict = {}
    client_thread = threading.Thread(target=client, args=(base, stop, counts), daemon=True)
    trace = _trace_rss(svc, runner, client_thread, args)
    stop.set()
    client_thread.join(5)
    healthy, _ = svc.health()
    stats = svc.pipeline_stats()
    svc.request_stop()
    runner.join(5)
    result = _report(svc, trace, stats, healthy, work, counts, runner.is_alive())
    print(json.dumps(result, indent=1))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
