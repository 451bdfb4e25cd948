"""The page's API on the real service (real model on real photos), without a browser: events
with their snapshot URL, the status fields, and the event list kept across a reload."""

from __future__ import annotations

import json

from test_service_support import RunningService, poll, service_config, to_toml

TOKEN = "api-s3cret"


def _events(rs: RunningService) -> list[dict]:
    status, _, body = rs.get("/api/events?limit=200", token=TOKEN)
    assert status == 200
    return json.loads(body)["events"]


def test_api_on_the_running_service_and_events_kept_across_a_reload(tmp_path) -> None:
    cfg = tmp_path / "config.toml"
    sections = service_config(tmp_path, http={"token": TOKEN}, tracker={"enter_frames": 1})
    cfg.write_text(to_toml(sections))
    with RunningService(cfg) as rs:
        got = poll(lambda: [e for e in _events(rs) if e.get("snapshot_url")], 30)
        assert got, "no event with a snapshot reached /api/events"
        url = got[0]["snapshot_url"]
        assert url.startswith("/snapshots/") and "snapshot" not in got[0]  # no machine path shown
        status, headers, body = rs.get(url, token=TOKEN)
        saved = tmp_path / "snaps" / url.rsplit("/", 1)[1]
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert body == saved.read_bytes()

        def api_status() -> dict:
            code, _, body = rs.get("/api/status", token=TOKEN)
            assert code == 200
            return json.loads(body)

        info = poll(lambda: (i := api_status())["fps"] > 0 and i, 20)  # fps needs a few frames
        assert info, "fps stayed 0 in /api/status"
        assert info["status"] == "ok"
        assert info["model"] == "ssd_mobilenet_v1_coco_quant.tflite" and info["threshold"] == 0.5
        assert info["inference_ms"] > 0 and info["dropped_frames"] >= 0
        assert info["snapshots"] is True and info["clips"] is False

        before = _events(rs)
        outputs = rs.svc.outputs
        sections["events"]["log"] = False  # an output section: the outputs are rebuilt
        cfg.write_text(to_toml(sections))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), rs.svc.last_reload_error
        assert rs.svc.outputs is not outputs
        after = _events(rs)
        assert [e["time"] for e in after[-len(before) :]] == [e["time"] for e in before]


def test_a_reload_that_moves_the_snapshots_folder_keeps_the_earlier_links(tmp_path) -> None:
    """The events kept across a reload that moved `[snapshots] dir` linked /snapshots/NAME, read
    from the new folder only: every earlier snapshot on the page was a broken image (404). They
    are read where they were saved; a snapshot deleted since has no link but a mark."""
    cfg = tmp_path / "config.toml"
    sections = service_config(tmp_path, http={"token": TOKEN}, tracker={"enter_frames": 1})
    cfg.write_text(to_toml(sections))
    with RunningService(cfg) as rs:
        assert poll(lambda: len([e for e in _events(rs) if e.get("snapshot_url")]) >= 2, 30)
        sections["snapshots"]["dir"] = str(tmp_path / "moved")
        cfg.write_text(to_toml(sections))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), rs.svc.last_reload_error
        assert poll(lambda: list((tmp_path / "moved").glob("*.jpg")), 30), "no snapshot moved"
        events = [e for e in _events(rs) if e.get("snapshot_url")]
        names = {e["snapshot_url"].rsplit("/", 1)[1] for e in events}
        old = {p.name for p in (tmp_path / "snaps").glob("*.jpg")} & names
        new = {p.name for p in (tmp_path / "moved").glob("*.jpg")} & names
        assert old and new, (old, new)
        for name in sorted(old)[:3] + sorted(new)[:3]:
            status, _, body = rs.get(f"/snapshots/{name}", token=TOKEN)
            assert status == 200 and body[:2] == b"\xff\xd8", name
        gone = sorted(old)[0]
        (when,) = [(e["time"], e["track_id"]) for e in events if e["snapshot_url"].endswith(gone)]
        (tmp_path / "snaps" / gone).unlink()
        (entry,) = [e for e in _events(rs) if (e["time"], e.get("track_id")) == when]
        assert entry.get("snapshot_missing") is True and "snapshot_url" not in entry
        assert rs.get(f"/snapshots/{gone}", token=TOKEN)[0] == 404
