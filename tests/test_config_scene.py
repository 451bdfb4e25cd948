"""Config zones, lines, masks, filters and clips: what a user writes, and one line per mistake."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from edgedetect.service.cli import check_config
from edgedetect.service.config import load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "systemd" / "config.example.toml"
BASE = '[source]\nspec = "usb:0"\n[events]\njsonl = ""\n[snapshots]\nenabled = false\n'


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "config.toml"
    path.write_text(BASE + text)
    code = check_config(str(path))
    err = capsys.readouterr().err
    return code, err


def test_zones_and_lines_load_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        BASE + "[zones.porch]\npolygon = [[0, 0.5], [1, 0.5], [1, 1]]\n"
        "[zones.gate-2]\npolygon = [[0, 0], [0.5, 0], [0.5, 0.5]]\ninertia = 5\n"
        "[lines.door]\npoints = [[0.2, 0.8], [0.8, 0.8]]\n"
    )
    cfg = load_config(path)
    assert list(cfg.zones) == ["porch", "gate-2"]
    assert cfg.zones["porch"].inertia == 3 and cfg.zones["gate-2"].inertia == 5
    assert cfg.zones["porch"].polygon == [[0, 0.5], [1, 0.5], [1, 1]]
    assert cfg.lines["door"].points == [[0.2, 0.8], [0.8, 0.8]]
    assert load_config(EXAMPLE, check_files=False).zones == {}


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("[zones.a]\npolygon = [[0, 0], [1, 1]]\n", "[zones.a] polygon", "at least 3 points"),
        (
            "[zones.a]\npolygon = [[0, 0], [1.5, 0], [1, 1]]\n",
            "[zones.a] polygon",
            "outside the frame",
        ),
        ("[zones.a]\npolygon = [[0, 0], [0.5, 0.5], [1, 1]]\n", "[zones.a] polygon", "no area"),
        ('[zones.a]\npolygon = [[0, 0], [1, 0], ["x", 1]]\n', "[zones.a] polygon", "two numbers"),
        # 1e400 reads as inf: it said "must be [x, y], two numbers", which it is
        (
            "[zones.a]\npolygon = [[0, 0], [1e400, 0], [1, 1]]\n",
            "[zones.a] polygon",
            "point [inf, 0] must be two finite numbers",
        ),
        ("[lines.door]\npoints = [[0, nan], [1, 1]]\n", "[lines.door] points", "two finite"),
        (
            "[masks]\npolygons = [[[0, 0], [1, 0], [1, -inf]]]\n",
            "[masks] polygons",
            "polygon 1: point [1, -inf] must be two finite numbers",
        ),
        ("[zones.a]\ninertia = 3\n", "[zones.a] polygon", "missing"),
        (
            '[zones."front door"]\npolygon = [[0, 0], [1, 0], [1, 1]]\n',
            '[zones."front door"]',
            "bare key",
        ),
        (
            "[zones.a]\npolygon = [[0, 0], [1, 0], [1, 1]]\ninertia = 0\n",
            "[zones.a] inertia",
            "between 1",
        ),
        (
            "[zones.a]\npolgon = [[0, 0], [1, 0], [1, 1]]\n",
            "[zones.a] unknown key",
            "did you mean 'polygon'",
        ),
        ("[lines.door]\npoints = [[0.5, 0.5], [0.5, 0.5]]\n", "[lines.door] points", "zero length"),
        (
            "[lines.door]\npoints = [[0.1, 0.5], [0.5, 0.5], [0.9, 0.5]]\n",
            "[lines.door] points",
            "two points",
        ),
        (
            "[masks]\npolygons = [[[0, 0], [1, 0]]]\n",
            "[masks] polygons",
            "polygon 1: a polygon needs at least 3",
        ),
        (
            "[filters]\nmin_area = 0.5\nmax_area = 0.1\n",
            "[filters] min_area",
            "must not exceed max_area",
        ),
        (
            "[clips]\npre_s = 30\nfps = 10\nbuffer_mb = 64\n",
            "[clips] pre_s",
            "ring buffer holds only",
        ),
        ("[zones]\nporch = 3\n", "[zones.porch]", "must be a table"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, words: str
) -> None:
    code, err = check(tmp_path, text, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert key in lines[0] and words in lines[0], lines[0]


def test_ring_buffer_bound_is_the_documented_arithmetic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """3 s at 5 fps and 640 px is 16 frames of 921,600 bytes: fits 15 MiB, not 14."""
    assert check(tmp_path, "[clips]\nbuffer_mb = 15\n", capsys)[0] == 0
    code, err = check(tmp_path, "[clips]\nbuffer_mb = 14\n", capsys)
    assert code == 2 and "raise buffer_mb to 15" in err


def test_commented_examples_in_the_shipped_file_are_valid(tmp_path: Path) -> None:
    """The zone, line and mask snippets in config.example.toml work when uncommented."""
    text = EXAMPLE.read_text()
    snippets = re.findall(r"^#   (\[(?:zones|lines)\.\w+\]\n(?:#   \w+ = .*\n)+)", text, flags=re.M)
    assert len(snippets) == 2, "one zone and one line example"
    body = "".join(s.replace("#   ", "") for s in snippets)
    masks = re.search(r"^#   (polygons = .*)$", text, flags=re.M)
    assert masks is not None
    raw = tomllib.loads(body)
    path = tmp_path / "c.toml"
    path.write_text(BASE + f"[masks]\n{masks.group(1)}\n" + body)
    cfg = load_config(path)
    assert set(cfg.zones) == set(raw["zones"]) and set(cfg.lines) == set(raw["lines"])
    assert len(cfg.masks.polygons) == 1


@pytest.mark.parametrize("folder", [False, True])
def test_a_missing_or_folder_config_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: bool
) -> None:
    """`check-config PATH` takes the path as an argument: the message must not ask for --config."""
    path = tmp_path / ("conf.d" if folder else "missing.toml")
    if folder:
        path.mkdir()
    assert check_config(str(path)) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(path) in lines[0], lines
    assert ("is a folder" if folder else "not found") in lines[0]
    assert "--config" not in lines[0] and "config.example.toml" in lines[0]


def test_a_section_set_up_but_never_enabled_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Clips and MQTT are off unless enabled: a file that sets their keys without `enabled = true`
    ran without them, silently (found trying the service: `[clips] dir = ...` saved no clip)."""
    code, err = check(tmp_path, '[clips]\ndir = "clips"\npost_s = 2\n[mqtt]\nhost = "pi"\n', capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert "[clips] sets dir, post_s but is off: add enabled = true under [clips]" in lines[0]
    assert "[mqtt] sets host but is off: add enabled = true under [mqtt]" in lines[1]
    assert all(line.startswith(f"edgedetect: warning: {tmp_path}") for line in lines)


@pytest.mark.parametrize(
    "text",
    [
        '[clips]\nenabled = false\ndir = "clips"\n',  # a choice, as the example config has it
        '[clips]\nenabled = true\ndir = "clips"\n',
        '[snapshots]\ndir = "snaps"\n',  # on by default: its keys are used
        "[clips]\n",  # an empty table sets nothing
    ],
)
def test_sections_enabled_or_switched_off_on_purpose_are_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE.replace("[snapshots]\nenabled = false\n", "") + text)
    assert check_config(str(path)) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_service_logs_a_left_off_section_at_start_and_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The journal is where a service's user looks; overrides from the command line keep it."""
    from edgedetect.service.config import apply_overrides
    from edgedetect.service.daemon import Service

    path = tmp_path / "config.toml"
    path.write_text(BASE + '[clips]\ndir = "clips"\n')
    cfg = apply_overrides(load_config(path), {"model.threshold": 0.4})
    with caplog.at_level("WARNING", logger="edgedetect"):
        Service._warn_about(cfg)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: [clips] sets dir but is off: add enabled = true under [clips] to use it "
        "(or enabled = false to keep it off and silence this)"
    ]


def test_the_example_config_warns_about_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        tomllib.loads(EXAMPLE.read_text())["clips"]["enabled"] is False
    )  # explicit, so no warning
    cfg = load_config(EXAMPLE, check_files=False)
    assert cfg.left_off == {}
