"""Bad input gets one clear line, not native chatter: truncated images, directories given as
files, label files made for another model, and OpenCV/FFmpeg/LiteRT talking on stderr.

End-to-end cases run the real CLI (`python -m edgedetect`) on the project's own model.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import COCO_LABELS, COCO_MODEL, REPO, need_shared, skimage_bgr

from edgedetect.errors import ImageError, LabelsError, ModelError
from edgedetect.images import jpeg_truncated, read_bgr
from edgedetect.labels import check_label_count, load_labels
from edgedetect.runtime import _CHATTER, class_count, load_interpreter

MODEL = REPO / "models" / "person_ssdlite_int8.tflite"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EDGEDETECT_NATIVE_LOGS", "OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")
    }
    return subprocess.run(
        [sys.executable, "-m", "edgedetect", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    photo = skimage_bgr("astronaut")
    cv2.imwrite(str(d / "ok.jpg"), photo)
    cv2.imwrite(str(d / "ok.png"), photo)
    for name in ("ok.jpg", "ok.png"):
        data = (d / name).read_bytes()
        (d / f"cut{Path(name).suffix}").write_bytes(data[: len(data) // 2])
    (d / "garbage.mp4").write_bytes(b"not a video at all " * 50)
    (d / "folder").mkdir()
    (d / "folder" / "labels.txt").write_text("person\n")
    return d


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("edgedetect: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_truncated_jpeg_is_an_error_not_a_grey_image(files: Path) -> None:
    _one_error_line(
        _cli("detect", str(files / "cut.jpg"), "--model", str(MODEL), cwd=files),
        str(files / "cut.jpg"),
        "truncated",
    )
    with pytest.raises(ImageError, match="truncated"):
        read_bgr(files / "cut.jpg")


def test_truncated_png_is_one_line_without_libpng_chatter(files: Path) -> None:
    _one_error_line(
        _cli("detect", str(files / "cut.png"), "--model", str(MODEL), cwd=files),
        str(files / "cut.png"),
        "truncated",
    )


def test_every_cut_of_a_jpeg_is_found_and_whole_files_pass() -> None:
    photo = skimage_bgr("coffee")
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]):
        data = cv2.imencode(".jpg", photo, params)[1].tobytes()
        assert not jpeg_truncated(data) and not jpeg_truncated(
            data + b"camera trailer \xff\xd8 bytes"
        )
        assert all(jpeg_truncated(data[:k]) for k in range(2, len(data) - 1, 331))
        assert jpeg_truncated(data[:-2])
    assert not jpeg_truncated(b"\x89PNG not a jpeg")


def test_directories_given_as_files_say_so(files: Path) -> None:
    folder = files / "folder"
    _one_error_line(
        _cli("detect", str(files / "ok.jpg"), "--model", str(folder), cwd=files),
        str(folder),
        "is a directory",
    )
    _one_error_line(
        _cli(
            "detect",
            str(files / "ok.jpg"),
            "--model",
            str(MODEL),
            "--labels",
            str(folder),
            cwd=files,
        ),
        str(folder),
        "is a directory",
        "labels.txt",
    )
    with pytest.raises(ImageError, match="is a directory"):
        read_bgr(folder)
    with pytest.raises(ModelError, match="is a directory"):
        load_interpreter(folder)
    with pytest.raises(LabelsError, match="is a directory"):
        load_labels(folder)


def test_a_device_given_as_an_image_is_not_called_missing(files: Path) -> None:
    """/dev/null exists: "image not found: /dev/null" (as before) sent the user looking for it."""
    _one_error_line(
        _cli("detect", "/dev/null", "--model", str(MODEL), cwd=files),
        "/dev/null",
        "not a regular file",
    )
    with pytest.raises(ImageError, match="not a regular file"):
        read_bgr("/dev/null")


def test_litert_delegate_line_is_quiet_unless_verbose(files: Path) -> None:
    quiet = _cli("detect", str(files / "ok.jpg"), "--model", str(MODEL), cwd=files)
    assert quiet.returncode == 0 and "person" in quiet.stdout
    assert quiet.stderr == ""
    loud = _cli("-v", "detect", str(files / "ok.jpg"), "--model", str(MODEL), cwd=files)
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


def test_undecodable_video_is_one_line_without_ffmpeg_or_opencv_chatter(files: Path) -> None:
    result = _cli(
        "run",
        "--source",
        f"file:{files / 'garbage.mp4'}",
        "--no-preview",
        "--model",
        str(MODEL),
        cwd=files,
    )
    _one_error_line(result, str(files / "garbage.mp4"))


def test_label_file_for_another_model_warns_with_both_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    interp, _ = load_interpreter(need_shared(COCO_MODEL), 1)
    assert class_count(interp) == 90
    assert class_count(load_interpreter(MODEL, 1)[0]) == 1
    assert (
        check_label_count(load_labels(COCO_LABELS), 90, COCO_LABELS, COCO_MODEL) is None
    )  # ??? gaps kept
    coco80 = tmp_path / "coco80.txt"  # the YOLO-style list: 80 names without the gaps
    coco80.write_text(
        "\n".join(name for _, name in sorted(load_labels(COCO_LABELS).items())) + "\n"
    )
    with caplog.at_level(logging.WARNING, logger="edgedetect"):
        message = check_label_count(load_labels(coco80), class_count(interp), coco80, COCO_MODEL)
    assert message is not None and "80" in message and "90" in message and str(coco80) in message
    assert message in caplog.text
    assert check_label_count({0: "person", 1: "bicycle"}, 1, "two.txt", MODEL) is not None


def test_folder_source_skips_a_truncated_frame_with_a_warning(files: Path) -> None:
    from edgedetect.sources import ImageFilesSource, open_source

    folder = files / "frames"
    folder.mkdir()
    for name in ("a.jpg", "c.jpg"):
        (folder / name).write_bytes((files / "ok.jpg").read_bytes())
    (folder / "b.jpg").write_bytes((files / "cut.jpg").read_bytes())
    with open_source(f"dir:{folder}") as src:
        frames = [f for f in iter(src.read, None)]
    assert isinstance(src, ImageFilesSource)
    assert len(frames) == 2 and all(np.asarray(f.image).std() > 10 for f in frames)
    assert [p.name for p in src.unreadable] == ["b.jpg"]


def test_detect_with_a_label_file_for_another_model_warns_once_with_both_numbers(
    files: Path,
) -> None:
    model, labels = need_shared(COCO_MODEL), need_shared(COCO_LABELS)
    coco80 = files / "coco80.txt"
    coco80.write_text("\n".join(name for _, name in sorted(load_labels(labels).items())) + "\n")
    result = _cli(
        "detect",
        str(files / "ok.jpg"),
        "--model",
        str(model),
        "--labels",
        str(coco80),
        "--classes",
        "all",
        cwd=files,
    )
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if "covers" in ln]
    assert (
        len(warnings) == 1
        and "80" in warnings[0]
        and "90" in warnings[0]
        and str(coco80) in warnings[0]
    )
    fitting = _cli(
        "detect", str(files / "ok.jpg"), "--model", str(model), "--labels", str(labels), cwd=files
    )
    assert fitting.returncode == 0 and fitting.stderr == ""


def test_detect_names_a_folder_given_as_an_image(files: Path) -> None:
    folder = files / "folder"
    _one_error_line(
        _cli("detect", str(files / "ok.jpg"), str(folder), "--model", str(MODEL), cwd=files),
        str(folder),
        "is a directory",
    )


def test_quieting_opencv_works_without_cv2_utils_logging(monkeypatch) -> None:
    """The Pi's aarch64 OpenCV 4.11 wheel has no cv2.utils.logging: quieting must not need it."""
    import cv2

    from edgedetect.runtime import quiet_opencv

    calls: list[int] = []
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    monkeypatch.setattr(cv2, "setLogLevel", calls.append, raising=False)
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    monkeypatch.setenv("EDGEDETECT_NATIVE_LOGS", "0")  # not verbose, whatever earlier tests set
    quiet_opencv()
    assert calls == [0]  # silent unless verbose


def test_the_service_at_its_default_log_level_prints_no_ffmpeg_or_opencv_chatter(
    files: Path, tmp_path: Path
) -> None:
    # The service logs at "info" by default, which counted as verbose for native libraries: an
    # undecodable file printed FFmpeg's 'moov atom not found' and OpenCV's 'can't be used to
    # capture by name' (and a flaky RTSP camera FFmpeg's decode errors, frame after frame) into
    # the journal. They now need log_level = "debug" (or EDGEDETECT_NATIVE_LOGS=1).
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[source]\nspec = "{files / "garbage.mp4"}"\n[model]\npath = "{MODEL}"\n'
        f'[preview]\nenabled = false\n[http]\nenabled = false\n[events]\njsonl = ""\n'
        "[snapshots]\nenabled = false\n"
    )
    result = _cli("run", "--config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edgedetect: error: ") and "garbage.mp4" in lines[-1]
    chatter = [line for line in lines if _CHATTER.match(line.encode())]
    assert not chatter, result.stderr


def test_detect_on_a_stream_url_names_the_url_and_run(tmp_path: Path) -> None:
    """`detect rtsp://cam/s` said "image not found: rtsp:/cam/s": the URL folded as a path (one
    slash lost) and no word of what to do; the password is not shown."""
    url = "rtsp://admin:hunter2@127.0.0.1:1/stream"
    line = _one_error_line(
        _cli("detect", url, cwd=tmp_path),
        "rtsp://admin:***@127.0.0.1:1/stream",
        "edgedetect run --source",
    )
    assert "hunter2" not in line and "rtsp:/admin" not in line


def test_a_label_file_that_is_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """`--labels l.txt` naming a FIFO: reading it waited for a writer, so `detect` (and the
    service, and check-config, with [model] labels) hung silently; the model path already
    refused one."""
    os.mkfifo(tmp_path / "l.txt")
    _one_error_line(
        _cli(
            "detect",
            str(REPO / "data" / "images" / "astronaut.jpg"),
            "--labels",
            "l.txt",
            cwd=tmp_path,
        ),
        "label file l.txt is a FIFO, not a label file",
    )
