"""`run --config` refuses every option the service would ignore (it takes its settings from the
file), not only some of them: --threshold, --classes, --threads, --tiles, --every-frame and
--realtime used to be accepted and silently ignored."""

from __future__ import annotations

import pytest

from edgedetect import cli


@pytest.mark.parametrize(
    "flag",
    [
        ["--threshold", "0.9"],
        ["--threshold", "0.5"],  # the default value, given: still not what the file says
        ["--classes", "all"],
        ["--classes", "person"],
        ["--threads", "1"],
        ["--tiles", "2x2"],
        ["--tiles", "off"],
        ["--every-frame"],
        ["--realtime"],
    ],
)
def test_run_config_refuses_options_it_would_ignore(capsys, monkeypatch, tmp_path, flag):
    started = []
    monkeypatch.setattr(cli, "_service_function", lambda name: lambda *a, **k: started.append(1))
    code: object
    try:
        code = cli.main(["run", "--config", str(tmp_path / "c.toml"), *flag])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and not started, err
    lines = [line for line in err.splitlines() if line.startswith("edgedetect:")]
    assert len(lines) == 1 and "--config" in lines[0] and flag[0] in lines[0], err


def test_run_config_alone_and_no_preview_start_the_service(monkeypatch, tmp_path):
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def run_service(*a: object, **k: object) -> int:
        calls.append((a, k))
        return 0

    monkeypatch.setattr(cli, "_service_function", lambda name: run_service)
    assert cli.main(["run", "--config", str(tmp_path / "c.toml")]) == 0
    assert cli.main(["run", "--config", str(tmp_path / "c.toml"), "--no-preview"]) == 0
    assert calls[0][1] == {"preview": None} and calls[1][1] == {"preview": False}


def test_run_without_config_keeps_its_defaults():
    args = cli.build_parser().parse_args(["run"])
    for name in cli.RUN_DEFAULTS:
        assert getattr(args, name) is cli.NOT_GIVEN
    args = cli.build_parser().parse_args(["run", "--classes", "all", "--threshold", "0.3"])
    assert args.classes is None and args.threshold == 0.3
