"""docs/service.md lists every section of the service config, as the schema has them.

It listed eleven: ``[filters]``, ``[masks]``, ``[clips]``, ``[zones.NAME]`` and ``[lines.NAME]``,
all in systemd/config.example.toml and accepted by check-config, were missing from the list."""

from __future__ import annotations

import re

from conftest import REPO

from edgedetect.service.config import NAMED_SCHEMA, SCHEMA


def documented_sections() -> set[str]:
    text = (REPO / "docs" / "service.md").read_text(encoding="utf-8")
    match = re.search(r"Sections: (.*?)\.\n", text, re.S)
    assert match, "docs/service.md has no 'Sections: ...' sentence"
    return set(re.findall(r"`\[([a-z_]+)(?:\.NAME)?\]`", match.group(1)))


def test_service_doc_lists_every_config_section():
    assert documented_sections() == set(SCHEMA) | set(NAMED_SCHEMA)
