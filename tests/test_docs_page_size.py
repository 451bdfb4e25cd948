"""README says how big the page is ("`edgedetect/service/web/`, about N kB"): the number must stay
within 1 kB of the three files' real size as the page changes (it said 13 kB at 14.4 kB)."""

from __future__ import annotations

import re

from conftest import REPO

from edgedetect.service.webapp import WEB_DIR, WEB_TYPES


def test_readme_page_size_matches_the_files() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    said = re.search(r"`edgedetect/service/web/`, about (\d+) kB", text)
    assert said, "README no longer states the page's size"
    total = sum(len(WEB_DIR.joinpath(name).read_bytes()) for name in WEB_TYPES)
    assert abs(int(said.group(1)) * 1000 - total) <= 1000, (said.group(0), total)
