"""The web page in a real browser: Debian's headless chromium, driven by selenium through Debian's
chromedriver, against the real service (real model, real pipeline) on data/sample.mp4.

Nothing is downloaded: the driver is given by path, so selenium's own driver manager never runs.
Skips (with the reason) where chromium, chromedriver or selenium is missing; scripts/test.sh
installs chromium and chromium-driver with apt when it runs as root.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, browser_paths
from test_service_support import RunningService, poll, service_config, to_toml

pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e .[dev]")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from edgedetect.bench import headless_chromium  # noqa: E402

SAMPLE = REPO / "data" / "sample.mp4"  # a person in frames 0-29 and 60-89 of 120, looped
TOKEN = "web-s3cret"
SCREENSHOT = REPO / "reports" / "web-page.png"
CLICKS = [(-120, -70), (110, -80), (130, 60), (-100, 75)]  # CSS px from the canvas centre


def _config(root: Path) -> dict:
    return service_config(
        root,
        source={"spec": str(SAMPLE), "loop": True},
        http={"token": TOKEN, "stream_fps": 5.0},
        tracker={"enter_frames": 2, "leave_frames": 3},
        clips={
            "enabled": True,
            "dir": str(root / "clips"),
            "pre_s": 0.5,
            "post_s": 0.5,
            "fps": 5.0,
            "width": 320,
        },
        **{"zones.door": {"polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}},
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    chromium, driver_path = browser_paths()
    root = tmp_path_factory.mktemp("web")
    cfg = root / "config.toml"
    cfg.write_text(to_toml(_config(root)))
    with RunningService(cfg) as rs:
        assert poll(lambda: rs.get("/healthz", token=TOKEN)[0] == 200, 30), "service never healthy"
        driver = headless_chromium(chromium, driver_path, window="1280,1500")
        try:
            driver.set_page_load_timeout(30)
            driver.get(f"{rs.url}/?token={TOKEN}")
            yield driver, rs, root
        finally:
            driver.quit()


def _js(driver, script: str):
    return driver.execute_script(script)


def test_page_shows_live_view_status_and_events(page) -> None:
    driver, rs, _ = page
    assert "token" not in driver.current_url  # the cookie carries it; the address bar does not
    live = poll(lambda: _js(driver, "return document.getElementById('live').naturalWidth"), 20)
    assert live == 640, "the live view (/stream.mjpg) never showed a frame"
    fps = poll(
        lambda: float(_js(driver, "return document.getElementById('health').dataset.fps || '0'")),
        20,
    )
    assert fps > 0, "the status never showed frames per second"
    health = driver.find_element(By.ID, "health").text
    assert "uptime" in health and "inference" in health and "ssd_mobilenet" in health
    assert "zone door" in driver.find_element(By.ID, "zones").text
    assert driver.find_element(By.ID, "state").text == "ok"
    n = poll(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#events li")), 30)
    assert n > 0, "the events list stayed empty"
    assert "person entered" in driver.find_element(By.ID, "events").text
    thumb = poll(
        lambda: _js(
            driver,
            "const i = document.querySelector('#events li img');"
            "return i && i.complete ? i.naturalWidth : 0",
        ),
        20,
    )
    assert thumb == 640, "no snapshot thumbnail loaded through /snapshots/"
    # a clip link appears once an episode has ended (the cat part of the clip has no person)
    href = poll(
        lambda: _js(
            driver,
            "const a = document.querySelector('#events a');return a ? a.getAttribute('href') : ''",
        ),
        40,
    )
    assert href.startswith("/clips/") and href.endswith(".mp4"), href
    status, headers, body = rs.get(href, token=TOKEN)
    assert status == 200 and headers["Content-Type"] == "video/mp4" and body[4:8] == b"ftyp"


def _screenshot(driver) -> None:
    """The whole page (a test artefact in reports/; docs/web-page.png is a copy of one)."""
    height = _js(driver, "return document.documentElement.scrollHeight")
    driver.set_window_size(1280, height + 140)  # + the browser's own frame
    _js(driver, "window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))
    driver.set_window_size(1280, 1500)


def _snippet(driver) -> str:
    return driver.find_element(By.ID, "snippet").get_attribute("value")


def test_editor_snippet_passes_check_config(page, tmp_path: Path) -> None:
    driver, _, root = page
    driver.find_element(By.ID, "freeze").click()
    assert poll(lambda: _js(driver, "return document.getElementById('canvas').width") == 640, 10)
    name = driver.find_element(By.ID, "name")
    name.clear()
    name.send_keys("bad name")
    canvas = driver.find_element(By.ID, "canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    ActionChains(driver).move_to_element_with_offset(canvas, 0, 0).click().perform()
    assert _snippet(driver) == "" and "invalid" in name.get_attribute("class")
    driver.find_element(By.ID, "clear").click()
    name.clear()
    name.send_keys("porch")
    for dx, dy in CLICKS:
        ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()
    zone = _snippet(driver)
    assert zone.startswith("[zones.porch]\npolygon = [[")
    points = [(float(x), float(y)) for x, y in re.findall(r"\[([0-9.]+), ([0-9.]+)\]", zone)]
    rect = canvas.rect
    expect = [(0.5 + dx / rect["width"], 0.5 + dy / rect["height"]) for dx, dy in CLICKS]
    assert len(points) == 4
    for (x, y), (ex, ey) in zip(points, expect, strict=True):
        assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01, (points, expect)
    assert all(len(v.split(".")[1]) == 3 for v in re.findall(r"[0-9]+\.[0-9]+", zone))
    _screenshot(driver)
    driver.find_element(By.CSS_SELECTOR, "input[name=kind][value=line]").click()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    for dx, dy in CLICKS[:2]:
        ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()
    line = _snippet(driver)
    assert line.startswith("[lines.porch]\npoints = [[")  # the name typed is kept
    checked = tmp_path / "edited.toml"
    checked.write_text((root / "config.toml").read_text() + "\n" + zone + "\n" + line)
    run = subprocess.run(
        [sys.executable, "-m", "edgedetect", "check-config", str(checked)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_one_column_on_a_phone(page) -> None:
    driver, _, _ = page
    driver.set_window_size(390, 844)
    try:
        lefts = _js(
            driver,
            "return [...document.querySelectorAll('main > section')]"
            ".map(s => Math.round(s.getBoundingClientRect().left))",
        )
        assert len(set(lefts)) == 1, lefts
        width = _js(driver, "return document.documentElement.scrollWidth")
        assert width <= _js(driver, "return window.innerWidth"), "the page scrolls sideways"
    finally:
        driver.set_window_size(1280, 1500)


def test_a_deleted_snapshot_is_said_not_shown_broken(page) -> None:
    """Retention (or a hand) deleting a snapshot left a broken image in the events list."""
    driver, _, root = page
    for saved in (root / "snaps").glob("*.jpg"):
        saved.unlink()
    text = poll(lambda: "snapshot deleted" in driver.find_element(By.ID, "events").text, 20)
    assert text, "the page never said a snapshot was deleted"
    broken = _js(
        driver,
        "return [...document.querySelectorAll('#events li img')]"
        ".filter(i => i.complete && i.naturalWidth === 0).length",
    )
    assert broken == 0, f"{broken} broken snapshot images"


def test_a_line_crossing_shows_the_line_total_not_people_in_view(page) -> None:
    """`count` of a line_crossed event is the line's total in that direction: the events list
    said "line crossed door in #3 · 12 in view" with one person there. The page's own list
    code, in the browser, given the events as /api/events sends them."""
    driver, _, _ = page
    texts = _js(
        driver,
        """
        const t = Date.now() / 1000;
        showEvents([
          {type: "line_crossed", line: "door", direction: "in", track_id: 3, count: 12,
           timestamp: t, clip_url: ""},
          {type: "zone_entered", zone: "porch", track_id: 3, count: 1, timestamp: t,
           clip_url: ""},
          {type: "person_entered", track_id: 3, count: 2, timestamp: t, clip_url: ""},
        ]);
        return [...document.querySelectorAll('#events li')].map((li) => li.textContent);
        """,
    )
    line, zone, person = texts
    assert "in view" not in line and "12 crossed in so far" in line, line
    assert "1 in porch" in zone, zone
    assert "2 in view" in person, person
