"""``host_tools.import_weights`` with a config of another input size than the graph's is one line
naming the graph, both sizes and the fix. ``--config ssdlite_mobilenet_v2_320`` on the 300x300
pedestrian graph took every weight (the layers are the same) and then ended in a Keras
``ValueError`` traceback (``expected shape=(None, 320, 320, 3), found shape=(None, 300, 300,
3)``) when the check fed it the graph's input."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow", reason="TensorFlow (host extra) is not installed")

from conftest import INRIA_TEST, need_shared  # noqa: E402

from host_tools.shared_data import PEDESTRIAN_PB  # noqa: E402


def test_a_config_of_another_input_size_is_one_line(tmp_path, capsys):
    from host_tools.import_weights import main

    pb = need_shared(PEDESTRIAN_PB)
    image = need_shared(INRIA_TEST / "pos" / "person_138.png")
    out = tmp_path / "w.weights.h5"
    args = ["--pb", str(pb), "--config", "ssdlite_mobilenet_v2_320", "--images", str(image)]
    assert main([*args, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0] == (
        f"import_weights: error: {pb} takes 300x300 images but config ssdlite_mobilenet_v2_320 "
        "has model.input_size 320; pass a --config with input_size 300 (anchors and outputs "
        "depend on it)"
    )
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "-1", "0"])
def test_a_tolerance_that_is_no_bound_is_refused(tmp_path, capsys, value):
    """``--tolerance nan`` passed every check (no difference is > nan), so weights that do not
    reproduce the graph were written with exit 0; ``-1`` refused every import."""
    from host_tools.import_weights import main

    out = tmp_path / "w.weights.h5"
    with pytest.raises(SystemExit) as exit_:
        main(["--tolerance", value, "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"argument --tolerance: {value} must be a number > 0"), err
    assert not out.exists()
