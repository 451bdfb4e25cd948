"""``host_tools.train --stop-after N`` before the end of the schedule keeps its checkpoint and
writes no ``final.weights.h5``: it saved step N's weights under that name, as if training had
finished, so export, validate or a script waiting for the file took them for the finished run's.
Its last line says how to go on; the resume that ends the schedule writes the file."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import PENNFUDAN, need_shared  # noqa: E402
from test_host_tools_errors import TINY, TINY_ARGS  # noqa: E402


def test_a_stopped_run_has_no_final_weights_until_resumed(tmp_path, capsys):
    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    args = ["--config", str(config), "--run-dir", str(run), "--dataset", f"pennfudan:{root}"]
    assert main([*args, "--stop-after", "1", *TINY_ARGS]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert not (run / "final.weights.h5").exists()
    assert (run / "checkpoints" / "ckpt-1.index").is_file()
    assert last.startswith(f"stopped at step 1 of {TINY['train']['steps']}"), last
    assert f"--run-dir {run} --resume" in last and "final.weights.h5" in last
    assert main(["--run-dir", str(run), "--resume", *TINY_ARGS]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {run / 'final.weights.h5'}"


def test_a_longer_schedule_moves_the_earlier_final_weights_aside(tmp_path, capsys):
    """A finished run resumed with a longer --steps and stopped early kept the earlier schedule's
    final.weights.h5 as if it were this schedule's result; it now moves to
    final-step<N>.weights.h5, and final.weights.h5 comes back only when the new schedule ends."""
    from host_tools.train import main

    root = need_shared(PENNFUDAN)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    steps = TINY["train"]["steps"]
    args = ["--config", str(config), "--run-dir", str(run), "--dataset", f"pennfudan:{root}"]
    assert main([*args, *TINY_ARGS]) == 0
    first = (run / "final.weights.h5").read_bytes()
    longer = ["--run-dir", str(run), "--resume", "--steps", str(steps + 2), *TINY_ARGS]
    assert main([*longer, "--stop-after", str(steps + 1)]) == 0
    out = capsys.readouterr().out
    assert f"final-step{steps}.weights.h5" in out
    assert not (run / "final.weights.h5").exists()
    assert (run / f"final-step{steps}.weights.h5").read_bytes() == first
    assert main(longer) == 0
    assert (run / "final.weights.h5").is_file()
