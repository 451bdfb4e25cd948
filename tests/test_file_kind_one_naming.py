"""Four tables named special files, one per place that refuses one, and they disagreed: the same
FIFO was 'a named pipe (FIFO)' to --model and --source, 'a FIFO' to --labels, the config and the
events file, and a folder at [events] jsonl was 'a directory' where run said 'a folder'. One
helper (`linefile.file_kind`) names them now, so every message says the same of the same path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edgedetect.errors import EdgeDetectError
from edgedetect.labels import load_labels
from edgedetect.runtime import load_interpreter
from edgedetect.service.config import load_config
from edgedetect.sources import open_source


def test_every_message_names_a_fifo_the_same_way(tmp_path: Path) -> None:
    fifo = tmp_path / "thing"
    os.mkfifo(fifo)
    messages = []
    for call in (
        lambda: load_interpreter(fifo, 1),
        lambda: open_source(str(fifo)),
        lambda: load_labels(fifo),
        lambda: load_config(fifo),
    ):
        with pytest.raises(EdgeDetectError) as info:
            call()
        messages.append(str(info.value))
    kinds = {m: re.search(r"\bis (a [^,;]+?), not ", m) for m in messages}
    assert all(kinds.values()), messages
    assert {k[1] for k in kinds.values() if k} == {"a FIFO"}, messages
