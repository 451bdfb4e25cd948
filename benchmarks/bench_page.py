"""The web page's weight and load time on loopback; prints JSON.

1. Bytes of index.html, app.js and style.css as served (and gzip-compressed, for reference only:
   the server sends them uncompressed), and the time to fetch all three one after another
   (p50/p95/max over ``--rounds``, each request on a new connection as the page does).
2. If chromium, chromedriver and selenium are installed: the browser's navigation timing for the
   whole page (DOMContentLoaded, load; the load event waits for the first stream frame) and the
   bytes transferred, for the first load and the median of the later ``--loads`` (which
   revalidate the files by ETag).

The server is the real ``HttpServer`` + ``HttpApp`` with a token (the cookie flow the page uses)
and real JPEGs (a photo with a moving box, re-encoded per frame); no model is loaded. Loopback
only, every loop bounded.

    python benchmarks/bench_page.py [--rounds 200] [--loads 5]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import statistics
import time
import urllib.request
from typing import Any

import cv2
import numpy as np

from edgedetect.bench import headless_chromium
from edgedetect.service.http import HttpServer
from edgedetect.service.recent import RecentEvents
from edgedetect.service.webapp import HttpApp

TOKEN = "bench"
FILES = ["/", "/static/app.js", "/static/style.css"]


def _app() -> HttpApp:
    ids = itertools.count(1)
    base = np.full((480, 640, 3), 90, np.uint8)

    def jpeg() -> tuple[int, bytes]:
        i = next(ids)
        img = base.copy()
        x = 40 + i * 7 % 500
        cv2.rectangle(img, (x, 100), (x + 100, 400), (0, 200, 0), 3)
        return i, cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes()

    status = {
        "status": "ok",
        "fps": 15.0,
        "persons": 1,
        "zones": {"door": 1},
        "lines": {},
        "uptime_s": 12.0,
        "source": "picam",
        "source_connected": True,
        "model": "m.tflite",
        "threshold": 0.5,
        "inference_ms": 30.0,
        "dropped_frames": 0,
        "snapshots": True,
        "clips": False,
    }
    return HttpApp(
        lambda: (True, status),
        lambda: b"",
        jpeg,
        TOKEN,
        5.0,
        3,
        status=lambda: status,
        events=RecentEvents().latest,
    )


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def fetch_times(base: str, rounds: int) -> dict[str, Any]:
    sizes = {path: _get(base + path) for path in FILES}
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for path in FILES:
            _get(base + path)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "bytes": {p: len(b) for p, b in sizes.items()},
        "bytes_total": sum(len(b) for b in sizes.values()),
        "gzip_bytes_total": sum(len(gzip.compress(b)) for b in sizes.values()),
        "fetch_all_three_ms": {
            "p50": round(statistics.median(times), 2),
            "p95": round(times[int(0.95 * (len(times) - 1))], 2),
            "max": round(times[-1], 2),
            "rounds": rounds,
        },
    }


def browser_times(base: str, loads: int) -> dict[str, Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return {"skipped": "selenium not installed"}
    if not chromium or not driver_path:
        return {"skipped": "chromium or chromedriver not installed"}
    driver = headless_chromium(chromium, driver_path)
    runs = []
    try:
        for _ in range(loads):
            driver.get(f"{base}/?token={TOKEN}")
            nav = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "const r = performance.getEntriesByType('resource');"
                "return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,"
                " doc: n.transferSize, res: r.filter(e => !e.name.includes('stream'))"
                ".reduce((s, e) => s + e.transferSize, 0)}"
            )
            runs.append(nav)
    finally:
        driver.quit()

    def summary(r: dict[str, float]) -> dict[str, float]:
        return {
            "dom_content_loaded_ms": round(r["dcl"], 1),
            "load_ms": round(r["load"], 1),
            "transfer_bytes_without_stream": r["doc"] + r["res"],
        }

    again = runs[1:] or runs  # later loads revalidate the files by ETag (304, headers only)
    return {
        "loads": loads,
        "first_load": summary(runs[0]),
        "repeat_load_median": summary(sorted(again, key=lambda r: r["load"])[len(again) // 2]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200, help="fetches of the page's three files")
    ap.add_argument("--loads", type=int, default=5, help="page loads in headless chromium")
    args = ap.parse_args()
    server = HttpServer(_app(), "127.0.0.1", 0, 2).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        out = {"fetch": fetch_times(base, args.rounds), "browser": browser_times(base, args.loads)}
    finally:
        server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
