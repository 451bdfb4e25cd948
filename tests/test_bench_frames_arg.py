"""`bench --frames 0` said "0 must be at least 1", but 1 to 9 were then refused too ("must be at
least 10"): the parser now states the real minimum for every value below it."""

from __future__ import annotations

import pytest

from edgedetect.cli import main


@pytest.mark.parametrize("frames", ["0", "1", "9", "-3"])
def test_bench_frames_below_10_name_the_real_minimum(capsys, frames):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--frames", frames])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert f"argument --frames: {frames} is too few: must be at least 10" in err, err
    assert "at least 1\n" not in err and "Traceback" not in err


def test_bench_frames_not_a_number(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--frames", "ten"])
    assert "'ten' is not a whole number" in capsys.readouterr().err
