"""A reload to a folder source that holds the snapshots folder is refused, as at start and in
check-config: the reload only checked the output paths of the sections it changed, so a new
[source] spec pointing at the folder above the (unchanged) snapshots folder was applied, and the
looping folder source then read the service's own snapshots back as camera frames."""

from __future__ import annotations

from pathlib import Path

from test_service_support import RunningService, image_dir, poll, service_config, to_toml


def test_a_reload_to_a_source_folder_holding_the_snapshots_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    photos = image_dir(tmp_path / "photos")  # the new source: snapshots are saved inside it
    raw = service_config(tmp_path, snapshots={"dir": str(photos / "snaps")})
    config = tmp_path / "config.toml"
    config.write_text(to_toml(raw))  # the running source is another folder
    with RunningService(config) as rs:
        source = rs.svc.source
        raw["source"]["spec"] = f"dir:{photos}"
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reload_failures + rs.svc.reloads > 0, 20)
        assert rs.svc.reload_failures == 1 and rs.svc.reloads == 0
        assert rs.svc.source is source and rs.svc.cfg.source.spec != f"dir:{photos}"
        assert f"[snapshots] dir = '{photos / 'snaps'}'" in rs.svc.last_reload_error
        assert "in the source folder" in rs.svc.last_reload_error
