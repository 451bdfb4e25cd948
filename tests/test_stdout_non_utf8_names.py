"""A file name that is not UTF-8 (Latin-1 bytes from an old camera or a Windows zip) on a machine
with a UTF-8 locale (a Pi's en_GB.UTF-8: stdout then refuses the lone surrogates Python holds
such a name as) ended `detect`, `check-config` and `bench` in "internal error: UnicodeEncodeError
... surrogates not allowed", exit 1, after the work was done, when the result line was printed.
The names are now printed escaped, as error lines print them.

The locale's strict stdout is set with PYTHONIOENCODING, because this machine has no UTF-8
locale but C.UTF-8 (for which Python escapes on its own, which hid the crash)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "data" / "images" / "astronaut.jpg"
CONFIG = REPO / "systemd" / "config.example.toml"
ENV = dict(os.environ, PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8:strict")


def _edgedetect(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    argv = [os.fsencode(sys.executable), b"-m", b"edgedetect", *(os.fsencode(a) for a in args)]
    return subprocess.run(argv, env=ENV, cwd=REPO, capture_output=True, timeout=120)


def test_detect_prints_the_line_of_an_image_whose_name_is_not_utf8(tmp_path: Path) -> None:
    image = os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg")
    shutil.copyfile(IMAGE, image)
    res = _edgedetect("detect", image)
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")
    line = res.stdout.decode("utf-8")
    assert line.startswith(f"{os.fsdecode(tmp_path)}/caf\\udce9.jpg: 512x512, "), line
    assert " detection" in line and res.stderr == b""


def test_check_config_prints_ok_for_a_config_whose_name_is_not_utf8(tmp_path: Path) -> None:
    config = os.path.join(os.fsencode(tmp_path), b"conf\xe9.toml")
    shutil.copyfile(CONFIG, config)
    res = _edgedetect("check-config", config)
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")
    assert res.stdout.decode("utf-8").startswith(f"{os.fsdecode(tmp_path)}/conf\\udce9.toml: OK")
