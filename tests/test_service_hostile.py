"""Bugs found by using the service as a careless or hostile user would (replacing the model file
under it, broken configs at start and on SIGHUP). Each test failed before its fix."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import COCO_LABELS, COCO_MODEL, FPNLITE_MODEL, need_shared, run_edgedetect
from test_service_support import RunningService, poll, service_config, to_toml, write_config

from edgedetect.errors import ConfigError, ModelError, SourceError
from edgedetect.runtime import load_interpreter
from edgedetect.service.config import load_config
from edgedetect.service.daemon import make_service

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "person_ssdlite_int8.tflite"


def test_a_model_file_rewritten_in_place_does_not_kill_the_running_detector(tmp_path: Path) -> None:
    """`cp new.tflite model.tflite` truncates and rewrites the file the running interpreter had
    memory-mapped: the next inference died with SIGBUS (exit -7, no log line) before a reload
    could even look at the new file. The interpreter now owns a copy of the model."""
    script = textwrap.dedent(
        """
        import shutil, sys
        from pathlib import Path
        import cv2
        from edgedetect.detector import Detector

        src, m = Path(sys.argv[1]), Path(sys.argv[2]) / "m.tflite"
        shutil.copy(src, m)
        shutil.copy(src.with_suffix(".labels.txt"), m.with_suffix(".labels.txt"))
        det = Detector(m, threshold=0.5)
        img = cv2.imread(sorted(Path(sys.argv[3]).glob("*.jpg"))[0])
        before = len(det.detect(img))
        with open(m, "r+b") as f:  # what cp does to an existing file
            f.truncate(0)
            f.write(b"not a model" * 10)
        print(before, len(det.detect(img)))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(MODEL), str(tmp_path), str(REPO / "data" / "images")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    before, after = res.stdout.split()
    assert int(before) >= 1 and after == before


def test_an_empty_model_file_is_named_as_empty(tmp_path: Path) -> None:
    empty = tmp_path / "m.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError) as info:
        load_interpreter(empty, 1)
    assert str(info.value) == f"model {empty} is empty (0 bytes); re-download or re-export it"


def test_a_bad_source_spec_names_the_config_file_and_key_at_start_and_on_reload(
    tmp_path: Path,
) -> None:
    """check-config said `FILE: [source] spec: unknown source spec ...`; the service itself, at
    start (exit 2) and on a SIGHUP, said only `unknown source spec ...`, naming no file."""
    bad = tmp_path / "bad.toml"
    raw = service_config(tmp_path)
    raw["source"]["spec"] = "foo:bar"
    bad.write_text(to_toml(raw))
    svc = make_service(str(bad), install_signals=False)
    with pytest.raises(SourceError) as info:
        svc.start()
    assert str(info.value).startswith(f"{bad}: [source] spec: unknown source spec 'foo:bar'")

    config = write_config(tmp_path)
    missing = tmp_path / "gone" / "clip.mp4"
    with RunningService(config) as rs:
        raw["source"]["spec"] = str(missing)
        config.write_text(to_toml(raw))
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reload_failures == 1, 10), "the reload did not fail"
        assert rs.svc.last_reload_error == (
            f"{config}: [source] spec: source '{missing}': no such file or folder {missing}"
        )


def test_a_reload_loads_a_model_file_replaced_under_the_same_path(tmp_path: Path) -> None:
    """`cp junk model.tflite; systemctl reload`: the [model] keys were unchanged, so the reload
    kept the old model and said `reloaded`; the junk was found only at the next restart, which it
    failed. Now a replaced model file is loaded again: junk fails the reload (the running model
    stays), a good file is swapped in."""
    model = tmp_path / "model.tflite"
    shutil.copy(need_shared(COCO_MODEL), model)
    config = write_config(tmp_path, model={"path": str(model), "labels": str(COCO_LABELS)})
    with RunningService(config) as rs:
        first = rs.svc.detector
        model.write_bytes(b"not a model" * 100)
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reload_failures == 1, 10), "the junk model was not noticed"
        assert str(model) in rs.svc.last_reload_error
        assert rs.svc.detector is first and rs.svc.reloads == 0
        shutil.copy(COCO_MODEL, model)  # the good file back: loaded again
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reloads == 1, 10), "the reload did not complete"
        second = rs.svc.detector
        assert second is not first and rs.svc.reload_failures == 1
        rs.svc.request_reload()  # nothing changed since: the detector is kept
        assert poll(lambda: rs.svc.reloads == 2, 10)
        assert rs.svc.detector is second and rs.svc.reload_failures == 1


def test_a_config_path_that_is_a_device_or_fifo_is_not_called_missing(tmp_path: Path) -> None:
    """`check-config /dev/null` said `config file not found`: it is there, just not a file."""
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/null"), "a character device"), (fifo, "a FIFO")):
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value).startswith(f"{path}: is {kind}, not a config file; give the path")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize("how", ["fails", "short"])
def test_a_failed_event_line_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A full disk or a file made immutable mid-run failed `os.write`, whose error names no
    file: the log said `jsonl output failed for person_entered: [Errno 28] No space left on
    device` (and `run --events` the same), not which file. The line is still cut back off."""
    import errno

    import edgedetect.linefile as linefile_mod
    from edgedetect.linefile import LineFile

    path = tmp_path / "events.jsonl"
    lines = LineFile(path, "[events] jsonl")
    lines.append(b"first\n", lines.size())
    real_write = os.write

    def broken_write(fd: int, data: bytes) -> int:
        if how == "fails":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data[:3])

    monkeypatch.setattr(linefile_mod.os, "write", broken_write)
    with pytest.raises(OSError) as info:
        lines.append(b"second\n", lines.size())
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value), str(info.value)
    assert path.read_bytes() == b"first\n"


def test_a_model_path_that_is_a_device_or_fifo_is_not_called_missing(tmp_path: Path) -> None:
    """`detect --model /dev/zero` said `model not found: /dev/zero`."""
    fifo = tmp_path / "m.tflite"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/zero"), "a character device"), (fifo, "a FIFO")):
        with pytest.raises(ModelError) as info:
            load_interpreter(path, 1)
        assert str(info.value) == (
            f"model {path} is {kind}, not a .tflite file; pass the model file itself"
        )


@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_a_reload_that_reads_an_empty_config_keeps_the_running_settings(
    tmp_path: Path, content: str
) -> None:
    """A config rewritten in place (`> config.toml`, an editor that truncates first) while
    SIGHUP arrives reads as empty, and an empty file was "all defaults": the reload switched the
    service to the picam source and the default model."""
    config = write_config(tmp_path, model={"threshold": 0.55})
    with RunningService(config) as rs:
        before = rs.svc.cfg
        config.write_text(content)
        rs.svc.request_reload()
        assert poll(lambda: rs.svc.reload_failures == 1, 10), "the empty file was applied"
        assert rs.svc.last_reload_error == (
            f"{config}: empty; the running settings are kept (write the whole file, "
            "then reload again)"
        )
        assert rs.svc.cfg is before and rs.svc.reloads == 0
        assert rs.svc.cfg.source.spec.startswith("dir:") and rs.svc.cfg.model.threshold == 0.55


def test_an_empty_config_file_at_start_is_refused_but_comments_alone_are_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty file given explicitly is a mistake (a failed write), not "all defaults": at
    start and in check-config it is one line and exit 2; a comment line says "defaults"."""
    from edgedetect.service.cli import check_config

    config = tmp_path / "config.toml"
    config.write_bytes(b"\xef\xbb\xbf\n  \n")  # a byte-order mark and blank lines: still empty
    assert check_config(str(config)) == 2
    checked = capsys.readouterr().err
    run = run_edgedetect("run", "--config", str(config))
    assert run.returncode == 2, run.stderr[-2000:]
    for err in (checked, run.stderr):
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"edgedetect: error: {config}: empty; "), err
        assert "'# all defaults'" in lines[0]
    config.write_text("# all defaults\n")
    assert load_config(config, check_files=False).source.spec == "picam"


@pytest.mark.parametrize(
    "model, said",
    [
        (
            {"path": "FPNLITE"},
            "model changed (input 300x300 -> 320x320, so the source is reopened)",
        ),
        ({"tiles": "2x2"}, "model changed (input 300x300 -> full frame (tiles), so the source"),
    ],
)
def test_a_reload_to_a_model_of_another_input_size_says_the_model_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, model: dict, said: str
) -> None:
    """A new model whose input size differs reopens the source (its lores stream is made at the
    model's size): the log said `reload: source changed` although only [model] had changed."""
    if model.get("path") == "FPNLITE":
        model = {"path": str(need_shared(FPNLITE_MODEL))}
    config = write_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="edgedetect.service"):
        with RunningService(config) as rs:
            config.write_text(to_toml(service_config(tmp_path, model=model)))
            rs.svc.request_reload()
            assert poll(lambda: rs.svc.reloads == 1, 30), rs.svc.last_reload_error
    restarts = [
        r.getMessage() for r in caplog.records if "restarting the pipeline" in r.getMessage()
    ]
    assert len(restarts) == 1 and restarts[0].startswith(f"reload: {said}"), restarts
    assert "source changed" not in caplog.text
