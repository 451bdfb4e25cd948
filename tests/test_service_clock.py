"""The wall clock steps (a Pi has no RTC: NTP sets it after boot, by hours or years): what the
service measures as a duration must not move with it."""

from __future__ import annotations

import time

import pytest

from edgedetect.service.metrics import ServiceMetrics


def uptime(m: ServiceMetrics) -> float:
    for line in m.render().decode().splitlines():
        if line.startswith("edgedetect_uptime_seconds "):
            return float(line.split()[1])
    raise KeyError("edgedetect_uptime_seconds")


@pytest.mark.parametrize("step_s", [365 * 86400.0, -3600.0])
def test_uptime_metric_ignores_a_wall_clock_step(
    monkeypatch: pytest.MonkeyPatch, step_s: float
) -> None:
    # edgedetect_uptime_seconds was time.time() - start: NTP setting the clock after boot made
    # it a year (or, stepped back, a negative number), while /healthz's uptime_s was right.
    m = ServiceMetrics()
    before = uptime(m)
    stepped = time.time() + step_s
    monkeypatch.setattr(time, "time", lambda: stepped)
    after = uptime(m)
    assert 0.0 <= before <= after < 60.0
