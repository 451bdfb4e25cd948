"""`run --source 0`, as OpenCV's `VideoCapture(0)` teaches, answered "no such file or folder 0"
and the whole list of source forms; it now says how to name that camera: usb:0. A file or folder
named 0 is still read (a path wins)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_edgedetect

from edgedetect.errors import SourceError
from edgedetect.sources import open_source

IMAGE = Path(__file__).resolve().parents[1] / "data" / "images" / "astronaut.jpg"


@pytest.mark.parametrize("number", ["0", "2"])
def test_a_bare_camera_number_names_the_usb_spec(number: str) -> None:
    res = run_edgedetect("run", "--source", number, "--no-preview")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"edgedetect: error: source '{number}': no such file or folder; for USB camera {number} "
        f"write usb:{number}"
    ]


def test_a_folder_named_0_is_still_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "0").mkdir()
    shutil.copy(IMAGE, tmp_path / "0" / "a.jpg")
    monkeypatch.chdir(tmp_path)
    with open_source("0") as source:
        assert source.live is False and source.read() is not None
    with pytest.raises(SourceError, match="write usb:1"):
        open_source("1")


def test_a_missing_dev_video_names_the_usb_spec() -> None:
    """`--source /dev/video7` with no such camera said only "no such file or folder"."""
    with pytest.raises(SourceError) as err:
        open_source("/dev/video7")
    assert str(err.value) == (
        "source '/dev/video7': no camera at /dev/video7 (unplugged? ls /dev/video* lists "
        "those there are); for USB camera 7 write usb:7"
    )


@pytest.mark.parametrize(("spec", "scheme"), [("rstp://cam/x", "rtsp"), ("htps://cam/x", "https")])
def test_a_mistyped_stream_scheme_gets_the_closest_one(spec: str, scheme: str) -> None:
    res = run_edgedetect("run", "--source", spec, "--no-preview")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"edgedetect: error: unknown source spec {spec!r}; did you mean {scheme + '://'!r}?"
    ]
