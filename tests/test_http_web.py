"""The page's routes on the real HTTP server (no model): token and cookie, the page and its files,
/api/*, and /snapshots/ + /clips/ files against path tricks, with byte ranges."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
from pathlib import Path

import pytest
from test_http_hardening import _app, _get, _request, serving

from edgedetect.service.events import Event
from edgedetect.service.recent import RecentEvents
from edgedetect.service.retention import CLIPS, done_writing, writing
from edgedetect.service.webapp import COOKIE, WEB_DIR, WEB_TYPES, HttpApp

TOKEN = "t0ken/with;odd=chars"
SECRET = b"outside the folder"
NEW_ROUTES = [
    "/",
    "/static/app.js",
    "/static/style.css",
    "/api/status",
    "/api/events?limit=3",
    "/snapshots/a.jpg",
    "/clips/c.mp4",
]


def _event(i: int, snapshot: str = "", clip: str = "") -> Event:
    return Event(
        type="person_entered",
        time="2026-01-01T00:00:00.000Z",
        timestamp=1.0 + i,
        track_id=i,
        box=[0, 0, 1, 1],
        score=0.9,
        count=1,
        frame_id=i,
        snapshot=snapshot,
        clip=clip,
    )


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    snaps, clips = tmp_path / "snaps", tmp_path / "clips"
    snaps.mkdir()
    clips.mkdir()
    (snaps / "a.jpg").write_bytes(b"\xff\xd8 jpeg a")
    (tmp_path / "secret.jpg").write_bytes(SECRET)
    os.symlink(tmp_path / "secret.jpg", snaps / "out.jpg")  # a link leaving the folder
    os.symlink(snaps / "a.jpg", snaps / "in.jpg")  # a link that stays inside it
    (snaps / ".hidden.jpg").write_bytes(SECRET)
    (snaps / "dir.jpg").mkdir()
    (clips / "c.mp4").write_bytes(os.urandom(300 * 1024 + 7))  # several chunks, odd size
    return {"root": tmp_path, "snapshots": snaps, "clips": clips}


OPEN_CLIP = "20260102T080000.000Z_clip.mp4"


def _web_app(
    files: dict[str, Path], token: str = TOKEN, recent: RecentEvents | None = None
) -> HttpApp:
    folders = {"snapshots": [str(files["snapshots"])], "clips": [str(files["clips"])]}
    recent = recent or RecentEvents()
    return _app(
        token=token,
        status=lambda: {"status": "ok", "fps": 4.5},
        events=recent.latest,
        folders=lambda: folders,
        recording=lambda: OPEN_CLIP,
    )


def _raw(server, path: str, *headers: str, method: str = "GET") -> tuple[int, dict, bytes]:
    head = "".join(h + "\r\n" for h in headers)
    return _request(server, f"{method} {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())


def _auth(server, path: str, *headers: str, method: str = "GET") -> tuple[int, dict, bytes]:
    return _raw(server, path, f"Authorization: Bearer {TOKEN}", *headers, method=method)


def test_every_new_route_needs_the_token(files) -> None:
    with serving(_web_app(files)) as server:
        for path in NEW_ROUTES:
            assert _get(server, path)[0] == 401, path
            assert _raw(server, path, f"Cookie: {COOKIE}=wrong")[0] == 401, path
            assert _auth(server, path)[0] == 200, path


def test_token_in_the_url_sets_a_cookie_that_opens_every_route(files) -> None:
    quoted = "t0ken%2Fwith%3Bodd%3Dchars"
    with serving(_web_app(files)) as server:
        assert _get(server, "/?token=wrong")[0] == 401
        status, headers, _ = _get(server, f"/?token={quoted}")
        assert status == 200
        cookie = headers["Set-Cookie"]
        name_value, *attrs = [p.strip() for p in cookie.split(";")]
        assert name_value == f"{COOKIE}={quoted}"
        assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs)
        for path in [*NEW_ROUTES, "/healthz", "/metrics", "/snapshot.jpg"]:
            assert _raw(server, path, f"Cookie: other=1; {name_value}")[0] == 200, path
        assert "Set-Cookie" not in _auth(server, "/")[1]  # only the URL token is moved to a cookie


def test_a_base64_token_typed_into_the_url_opens_the_page(files) -> None:
    # `openssl rand -base64 24` makes tokens with '+', '/' and '='. Typed as the docs say
    # (/?token=...), the '+' was read as a space (form encoding), so the page answered 401 and
    # set no cookie while the same token worked in an Authorization header.
    token = "Zm9v+YmFy/cXV4=="
    with serving(_web_app(files, token=token)) as server:
        status, headers, _ = _get(server, f"/?token={token}")
        assert status == 200 and "Set-Cookie" in headers
        assert _get(server, f"/api/status?token={token}")[0] == 200
        assert _get(server, "/api/status?token=Zm9v%2BYmFy%2FcXV4%3D%3D")[0] == 200  # encoded
        assert _get(server, "/api/status?token=Zm9v YmFy/cXV4==".replace(" ", "%20"))[0] == 401


def test_page_is_the_packaged_files_with_security_headers(files) -> None:
    installed = Path(str(WEB_DIR))
    import edgedetect.service as pkg

    assert installed == Path(pkg.__file__).parent / "web"  # what setuptools package-data ships
    with serving(_web_app(files)) as server:
        status, headers, body = _auth(server, "/")
        assert status == 200 and body == (installed / "index.html").read_bytes()
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "http" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode())
        assert sorted(linked) == ["/static/app.js", "/static/style.css"]
        for path in linked:
            status, headers, data = _auth(server, path)
            name = path.rsplit("/", 1)[1]
            assert status == 200 and data == (installed / name).read_bytes()
            assert headers["Content-Type"] == WEB_TYPES[name]
            assert "no-cache" in headers["Cache-Control"]
            again = _auth(server, path, f"If-None-Match: {headers['ETag']}")
            assert again[0] == 304 and again[2] == b""
        for text in (installed / n for n in WEB_TYPES):  # nothing loaded from other sites
            assert not re.search(r"https?://", text.read_text()), text
        assert _auth(server, "/static/../config.py")[0] == 404
        assert _auth(server, "/static/nope.js")[0] == 404


def test_wheel_ships_every_page_file() -> None:
    """pyproject.toml's package-data must cover every file the server reads from web/, or an
    installed (non-editable) service answers 500 for its own page."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]
    package = Path(str(WEB_DIR)).parent.parent  # edgedetect/
    shipped = [f for f in Path(str(WEB_DIR)).iterdir() if f.is_file()]
    assert sorted(f.name for f in shipped) == sorted(WEB_TYPES)
    for f in shipped:
        rel = f.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs["edgedetect"]), (
            f"pyproject.toml [tool.setuptools.package-data] edgedetect: add a pattern for {rel}"
        )


def test_api_events_newest_first_and_limit_checked(files) -> None:
    recent = RecentEvents(size=5)
    for i in range(8):
        recent.send(_event(i, snapshot=f"/var/lib/edgedetect/snapshots/s{i}.jpg"))
    with serving(_web_app(files, recent=recent)) as server:
        status, _, body = _auth(server, "/api/events?limit=3")
        events = json.loads(body)["events"]
        assert status == 200 and [e["track_id"] for e in events] == [7, 6, 5]
        assert "snapshot" not in events[0] and "snapshot_url" not in events[0]
        # s7.jpg is not in the folder (deleted by retention or by hand): no link that 404s
        assert events[0]["snapshot_missing"] is True
        (files["snapshots"] / "s7.jpg").write_bytes(b"\xff\xd8 jpeg 7")
        events = json.loads(_auth(server, "/api/events?limit=3")[2])["events"]
        assert (
            events[0]["snapshot_url"] == "/snapshots/s7.jpg" and "snapshot_missing" not in events[0]
        )
        assert len(json.loads(_auth(server, "/api/events?limit=99999")[2])["events"]) == 5
        for bad in ("abc", "0", "-1", "1.5", "", "%C2%B2"):
            status, headers, body = _auth(server, f"/api/events?limit={bad}")
            assert status == 400 and headers["Content-Type"] == "application/json", bad
            # limit=99999 is answered (200 events at most), so the error must not say 1..200
            assert (
                "limit must be a whole number from 1 (a larger one than 200 returns 200)"
                in (json.loads(body)["error"])
            )
        status, _, body = _auth(server, "/api/status")
        assert status == 200 and json.loads(body)["fps"] == 4.5
        recent.send(_event(8, clip="c.mp4"))
        recent.send(_event(9, clip=OPEN_CLIP))  # the episode going on now
        finishing = "20260101T120000.000Z_clip.mp4"  # ended; its part file is being finished
        finishing_part = CLIPS.temp_path(files["clips"] / finishing)
        finishing_part.write_bytes(b"\0" * 100)
        writing(finishing_part)  # as a recorder does until it publishes the clip
        recent.send(_event(10, clip=finishing))
        recent.send(_event(11, clip="20250101T120000.000Z_clip.mp4"))  # lost, or deleted since
        lost, finished, recording, saved = json.loads(_auth(server, "/api/events?limit=4")[2])[
            "events"
        ]
        assert saved["clip_url"] == "/clips/c.mp4" and "clip_recording" not in saved
        for e in (recording, finished):
            assert e["clip_url"] == "" and e["clip_recording"] is True and "clip_missing" not in e
        # was "clip recording" for ever: the page said so of a clip a full disk had lost
        assert lost["clip_url"] == "" and lost["clip_missing"] is True
        assert "clip_recording" not in lost
        done_writing(finishing_part)  # published (or given up): no longer "recording"
        finished = json.loads(_auth(server, "/api/events?limit=2")[2])["events"][1]
        assert finished["clip"] == finishing and finished["clip_missing"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/snapshots/..%2fsecret.jpg",
        "/snapshots/..%2Fsecret.jpg",
        "/snapshots/%2e%2e%2fsecret.jpg",
        "/snapshots/../secret.jpg",
        "/snapshots/%2e%2e/secret.jpg",
        "/snapshots/..%5csecret.jpg",
        "/snapshots//etc/passwd",
        "/snapshots/%2fetc%2fpasswd",
        "/snapshots/%2Fetc%2Fhostname",
        "/snapshots/out.jpg",
        "/snapshots/.hidden.jpg",
        "/snapshots/dir.jpg",
        "/snapshots/a.jpg%00.jpg",
        "/snapshots/%00",
        "/snapshots/missing.jpg",
        "/snapshots/%ff.jpg",
        "/snapshots/a.jpg/",
        "/clips/..%2f..%2fsecret.jpg",
        "/snapshots/%252e%252e%252fsecret.jpg",  # decoded once: a name with '%', not '..'
        "/snapshots%2f..%2fsecret.jpg",
        "/clips/%2e%2e",
        "/clips/c.exe",
        "/clips/",
        "/snapshots/",
    ],
)
def test_files_outside_the_folder_are_not_served(files, path: str) -> None:
    with serving(_web_app(files)) as server:
        status, _, body = _auth(server, path)
        assert status == 404, path
        assert SECRET not in body


def test_files_inside_the_folder_are_served(files) -> None:
    with serving(_web_app(files)) as server:
        for name in ("a.jpg", "in.jpg"):  # a link that stays inside the folder is fine
            status, headers, body = _auth(server, f"/snapshots/{name}")
            assert status == 200 and body == b"\xff\xd8 jpeg a"
            assert headers["Content-Type"] == "image/jpeg"
        data = (files["clips"] / "c.mp4").read_bytes()
        status, headers, body = _auth(server, "/clips/c.mp4")
        assert status == 200 and body == data and headers["Content-Type"] == "video/mp4"
        assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(data)
        status, headers, body = _auth(server, "/clips/c.mp4", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(data)


def test_paths_are_percent_decoded_once_before_routing(files) -> None:
    """/%68ealthz is /healthz (an encoded plain letter was 404); a file name too."""
    with serving(_web_app(files)) as server:
        for path in ("/%68ealthz", "/%6Detrics", "/api/%73tatus", "/static/app%2Ejs"):
            assert _auth(server, path)[0] == 200, path
        assert _auth(server, "/%73napshots/%61.jpg")[2] == b"\xff\xd8 jpeg a"
        assert _raw(server, "/%68ealthz")[0] == 401  # the token is still asked for


def test_byte_ranges(files) -> None:
    data = (files["clips"] / "c.mp4").read_bytes()
    size = len(data)
    cases = {
        "bytes=0-99": (0, 99),
        f"bytes=1000-{size + 50}": (1000, size - 1),
        "bytes=70000-": (70000, size - 1),
        "bytes=-500": (size - 500, size - 1),
        f"bytes=-{size * 2}": (0, size - 1),
    }
    with serving(_web_app(files)) as server:
        for value, (first, last) in cases.items():
            status, headers, body = _auth(server, "/clips/c.mp4", f"Range: {value}")
            assert status == 206, value
            assert headers["Content-Range"] == f"bytes {first}-{last}/{size}", value
            assert body == data[first : last + 1] and int(headers["Content-Length"]) == len(body)
        for value in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
            status, headers, _ = _auth(server, "/clips/c.mp4", f"Range: {value}")
            assert status == 416 and headers["Content-Range"] == f"bytes */{size}", value
        for value in ("bytes=0-1,5-9", "items=0-5", "bytes=9-2"):  # ignored: the whole file
            status, _, body = _auth(server, "/clips/c.mp4", f"Range: {value}")
            assert status == 200 and body == data, value


def test_unconfigured_folder_is_404(files) -> None:
    app = _app(folders=lambda: {"snapshots": [str(files["snapshots"])], "clips": []})
    with serving(app) as server:
        assert _get(server, "/clips/c.mp4")[0] == 404
        assert _get(server, "/snapshots/a.jpg")[0] == 200


def test_recent_events_bounded_and_kept_on_close() -> None:
    recent = RecentEvents(size=3)
    for i in range(5):
        recent.send(_event(i, clip=f"clip{i}.mp4"))
    recent.close()  # what a reload does to the outputs: the list stays
    got = recent.latest(10)
    assert len(recent) == 3 and [e["track_id"] for e in got] == [4, 3, 2]
    assert got[0]["clip"] == "clip4.mp4" and got[0]["clip_url"] == "/clips/clip4.mp4"
    assert recent.latest(0) == [] and len(recent.latest(2)) == 2
