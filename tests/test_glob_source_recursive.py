"""A glob source with a `**` part (`run --source 'photos/**/*.jpg'`, or `[source] spec`) read
only the files one folder down: Python's glob took `**` as `*` without recursive=True, so the
photos in `photos/` itself and two or more folders down were silently left out. `**` now stands
for any number of folders (none too), as in pathlib and most shells; hidden folders are skipped
as `*` skips hidden files, and links to folders are not followed (two folders linking each other
made glob.glob(recursive=True) walk for ever). check-config's "the glob reads the snapshots back"
refusal reads `**` the same way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_edgedetect
from test_service_support import image_dir, write_config

from edgedetect.service.cli import check_config

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


def _photo_tree(root: Path) -> set[str]:
    """Photos at three depths, one in a hidden folder, and two folders linking each other;
    returns the files a `root/**/*.jpg` source must read."""
    wanted = {root / "top.jpg", root / "a" / "one.jpg", root / "a" / "b" / "two.jpg"}
    for path in [*wanted, root / ".cache" / "hidden.jpg"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMAGE, path)
    (root / "x").mkdir()
    (root / "y").mkdir()
    os.symlink("../y", root / "x" / "to_y")
    os.symlink("../x", root / "y" / "to_x")
    return {str(p) for p in wanted}


def test_a_double_star_glob_reads_every_depth(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    wanted = _photo_tree(root)
    events = tmp_path / "events.jsonl"
    res = run_edgedetect(
        "run", "--source", f"{root}/**/*.jpg", "--no-preview", "--events", str(events)
    )
    assert res.returncode == 0, res.stderr
    assert "inferred 3," in res.stderr, res.stderr
    read = {json.loads(line)["source"] for line in events.read_text().splitlines()}
    assert read == wanted


@pytest.mark.parametrize("inside", ["snaps", "snaps/day"])
def test_a_double_star_glob_over_the_snapshots_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inside: str
) -> None:
    photos = image_dir(tmp_path)
    source = {"spec": f"{photos}/**/*.jpg", "loop": True}
    cfg = write_config(tmp_path, source=source, snapshots={"dir": str(photos / inside)})
    assert check_config(str(cfg)) == 2
    err = capsys.readouterr().err
    assert "would read them back" in err and len(err.splitlines()) == 1, err
