"""``/metrics`` has ``edgedetect_output_dropped_total`` from the start, at 0 for each output that
can lose events (jsonl, mqtt, webhook), as ``edgedetect_errors_total`` has for its components.

docs/service.md lists the metric, but the series appeared only after a first drop, so an alert on
``increase(edgedetect_output_dropped_total[1h]) > 0`` had nothing to evaluate until then."""

from __future__ import annotations

from edgedetect.service.metrics import ServiceMetrics


def test_output_dropped_series_start_at_zero():
    text = ServiceMetrics().render().decode()
    for output in ("jsonl", "mqtt", "webhook"):
        assert f'edgedetect_output_dropped_total{{output="{output}"}} 0.0' in text
