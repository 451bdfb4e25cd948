"""A glob source that matches the snapshots the service saves is refused like a folder source
holding them: a glob is matched again at each loop, so `imgs/*.jpg` with `[snapshots] dir =
"imgs"` read the service's own annotated snapshots back as camera frames. check-config said OK
and the service ran so."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_service_support import image_dir, write_config

from edgedetect.service.cli import check_config


@pytest.mark.parametrize("pattern", ["*.jpg", "*", "[0-9a-z]*.jpg", "dir:*.jpg"])
def test_a_glob_matching_the_snapshots_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    photos = image_dir(tmp_path)
    prefix, _, pattern = pattern.rpartition(":")
    source = {"spec": prefix + (":" if prefix else "") + str(photos / pattern), "loop": True}
    cfg = write_config(tmp_path, source=source, snapshots={"dir": str(photos)})
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edgedetect: error: {cfg}: [snapshots] dir = '{photos}': "), err
    assert "would read them back" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("pattern", "inside"), [("f*.jpg", ""), ("*.png", ""), ("*.jpg", "snaps")])
def test_a_glob_that_cannot_match_the_snapshots_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str, inside: str
) -> None:
    """Snapshots are named <UTC time>_person<id>.jpg; a glob matches one folder level."""
    photos = image_dir(tmp_path)
    (photos / "b.png").write_bytes((photos / "f000.jpg").read_bytes())
    source = {"spec": str(photos / pattern), "loop": True}
    cfg = write_config(tmp_path, source=source, snapshots={"dir": str(photos / inside)})
    assert check_config(str(cfg)) == 0, capsys.readouterr().err
