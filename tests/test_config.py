"""Service config: defaults, the shipped example, and one precise error line per mistake."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from edgedetect.errors import ConfigError
from edgedetect.service.config import SCHEMA, apply_overrides, defaults, load_config, parse_listen

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "systemd" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg, "a config error is one line"
    assert str(path) in msg, "the error names the file"
    return msg


def test_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "# all defaults\n"))  # an empty file is refused
    assert cfg["source"]["spec"] == "picam"
    assert cfg["model"]["threshold"] == 0.5
    assert cfg["model"]["path"] == "" and cfg["model"]["labels"] == ""
    assert cfg["preview"]["enabled"] is True
    assert cfg["events"]["jsonl"] == "/var/lib/edgedetect/events.jsonl"
    assert cfg["snapshots"]["dir"] == "/var/lib/edgedetect/snapshots"
    assert cfg["http"]["listen"] == "127.0.0.1:8080"
    assert cfg["motion"]["enabled"] is True
    for section in (
        "source",
        "model",
        "preview",
        "events",
        "mqtt",
        "webhook",
        "snapshots",
        "http",
        "motion",
    ):
        assert section in SCHEMA


def test_example_documents_every_key_with_its_default() -> None:
    """The shipped example parses, has every key with a comment, and shows the real defaults."""
    text = EXAMPLE.read_text()
    raw = tomllib.loads(text)
    want = defaults()
    assert set(raw) == set(SCHEMA)
    lines = text.splitlines()
    for section, keys in SCHEMA.items():
        assert set(raw[section]) == set(keys), f"[{section}] keys differ from the schema"
        for key in keys:
            assert raw[section][key] == want[section][key], f"[{section}] {key} example != default"
            idx = next(
                i
                for i, line in enumerate(lines)
                if re.match(rf"\s*{key}\s*=", line) and _section_of(lines, i) == section
            )
            assert lines[idx - 1].lstrip().startswith("#") or "#" in lines[idx], (
                f"[{section}] {key} has no comment in the example"
            )
    load_config(EXAMPLE, check_files=False)


def _section_of(lines: list[str], idx: int) -> str:
    for line in reversed(lines[:idx]):
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            return m.group(1)
    return ""


def test_unknown_key_suggests_close_match(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[model]\nthreshhold = 0.4\n"))
    assert "[model]" in msg and "threshhold" in msg and "did you mean 'threshold'" in msg


def test_unknown_section_suggests_close_match(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[snapshot]\ndir = '/tmp/x'\n"))
    assert "[snapshot]" in msg and "did you mean 'snapshots'" in msg


def test_wrong_type(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[model]\nthreshold = 'high'\n"))
    assert "[model] threshold must be a number" in msg and "'high'" in msg
    msg = error_of(write(tmp_path, "[preview]\nenabled = 1\n"))
    assert "[preview] enabled must be true or false" in msg
    msg = error_of(write(tmp_path, "[model]\nthreads = true\n"))  # bool is not an int here
    assert "[model] threads must be an integer" in msg


@pytest.mark.parametrize("value, shown", [("nan", "nan"), ("1e400", "inf"), ("-inf", "-inf")])
def test_a_number_that_is_not_finite_says_so(tmp_path: Path, value: str, shown: str) -> None:
    # it said "threshold must be a number, got nan": it is one, just not a finite one
    msg = error_of(write(tmp_path, f"[model]\nthreshold = {value}\n"))
    assert msg.endswith(f"[model] threshold must be a finite number, got {shown}"), msg


def test_bad_values(tmp_path: Path) -> None:
    assert "between 0 and 1" in error_of(write(tmp_path, "[model]\nthreshold = 1.5\n"))
    assert "HOST:PORT" in error_of(write(tmp_path, "[http]\nlisten = 'localhost'\n"))
    assert "port" in error_of(write(tmp_path, "[mqtt]\nport = 70000\n"))
    assert "http://" in error_of(write(tmp_path, "[webhook]\nurl = 'ftp://x'\n"))
    assert "unknown event type 'person_waved'" in error_of(
        write(tmp_path, "[webhook]\nevents = ['person_waved']\n")
    )
    assert "must be one of" in error_of(write(tmp_path, "[service]\nlog_level = 'loud'\n"))


def test_missing_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(str(missing)) + ".*not found"):
        load_config(missing)
    msg = error_of(write(tmp_path, "[model]\npath = 'missing.tflite'\n"))
    assert (
        "[model] path" in msg
        and "file not found" in msg
        and str(tmp_path / "missing.tflite") in msg
    )


def test_relative_model_path_resolves_beside_config(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"x")
    cfg = load_config(write(tmp_path, "[model]\npath = 'm.tflite'\n"))
    assert cfg["model"]["path"] == str(tmp_path / "m.tflite")


def test_invalid_toml(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[model\nthreshold = 0.4\n"))
    assert "invalid TOML" in msg and "line 1" in msg


def test_overrides_validate(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[source]\nspec = 'usb:0'\n"))
    new = apply_overrides(
        cfg, {"source.spec": "dir:/tmp", "preview.enabled": False, "http.listen": None}
    )
    assert new["source"]["spec"] == "dir:/tmp" and new["preview"]["enabled"] is False
    assert new["http"]["listen"] == "127.0.0.1:8080"
    with pytest.raises(ConfigError, match="threshold"):
        apply_overrides(cfg, {"model.threshold": 7.0})


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_listen("8080")


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("threshold = 0.3\n", "threshold = 0.3 comes before any [section]; put it under [model]"),
        (
            'spec = "usb:0"\n[model]\n',
            "spec = 'usb:0' comes before any [section]; put it under [source]",
        ),
        (
            "max_mb = 5\n",
            "max_mb = 5 comes before any [section]; put it under [events], [snapshots] or [clips]",
        ),
        ('token = "hunter2"\n', "token = '***' comes before any [section]; put it under [http]"),
        ('model = "m.tflite"\n', "model = 'm.tflite' comes before any [section]; keys go under a"),
    ],
)
def test_a_key_above_every_section_says_where_it_goes(
    tmp_path: Path, toml: str, needle: str
) -> None:
    # A key written before the first [section] header (or with the header forgotten) was called
    # an 'unknown section [threshold]' (with the list of sections), or '[model] must be a table'.
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, check_files=False)
    assert needle in str(err.value) and "hunter2" not in str(err.value)


def _error_as_nobody(path: Path) -> str:
    """load_config(path)'s error in a child process running as user nobody."""
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        os.close(read)
        try:
            os.setegid(65534)
            os.seteuid(65534)
            load_config(path, check_files=False)
            message = "no error"
        except BaseException as e:  # noqa: BLE001 - whatever it is, the parent reports it
            message = f"{type(e).__name__}: {e}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(pid, 0)
    return message


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root to setuid")
def test_a_config_the_user_may_not_read_says_so_not_missing(tmp_path: Path) -> None:
    # install.sh makes /etc/edgedetect 0750 root:edgedetect and the config 0640, and the README
    # says to run check-config on it as yourself: that answered 'config file not found' (the
    # folder cannot be searched), so the owner looked for a typo in a path that was right.
    folder = tmp_path / "etc"
    folder.mkdir(mode=0o750)
    tmp_path.chmod(0o755)
    cfg = folder / "config.toml"
    cfg.write_text("[model]\nthreshold = 0.5\n")
    message = _error_as_nobody(cfg)
    assert "permission denied" in message and "sudo -u edgedetect /" in message, message
    assert "not found" not in message
    folder.chmod(0o755)
    cfg.chmod(0o600)  # the folder can be searched, the file not read
    message = _error_as_nobody(cfg)
    assert "permission denied" in message and "sudo -u edgedetect" in message, message


def test_a_config_saved_by_a_windows_editor_reads_or_says_how_to_save_it(tmp_path: Path) -> None:
    # Notepad saves UTF-8 with a byte-order mark, which read as 'invalid TOML: Invalid statement
    # (at line 1, column 1)'; a Latin-1 file gave Python's "'utf-8' codec can't decode byte".
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\xef\xbb\xbf[model]\r\nthreshold = 0.4\r\n")
    assert load_config(cfg, check_files=False)["model"]["threshold"] == 0.4
    cfg.write_bytes(b"[model]\n# caf\xe9\nthreshold = 0.4\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, check_files=False)
    assert str(err.value) == f"{cfg}: line 2 is not UTF-8 text (byte 0xe9); save the file as UTF-8"


@pytest.mark.skipif(not Path("/proc/self/mounts").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("toml", "where"),
    [("[events]\njsonl = '/proc/nope'\n", "/proc"), ("[snapshots]\ndir = '/sys/x/y'\n", "/sys")],
)
def test_an_output_on_proc_or_sys_says_it_is_no_storage(
    tmp_path: Path, toml: str, where: str
) -> None:
    """mkstemp in /proc fails with ENOENT: 'No such file or directory' misled about a folder that
    exists; the error says what the folder is instead."""
    from edgedetect.service.config_files import check_output_paths

    cfg = load_config(write(tmp_path, toml))
    with pytest.raises(ConfigError) as e:
        check_output_paths(cfg)
    msg = str(e.value)
    assert f"{where} is on the kernel's" in msg and "file system, not storage; pick a" in msg
    assert "No such file" not in msg and "\n" not in msg
