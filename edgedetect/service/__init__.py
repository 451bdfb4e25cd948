"""The edgedetect daemon: config, tracker, events, outputs, HTTP, motion gate, systemd.

Entry points for the CLI: :func:`edgedetect.service.cli.run_service` and
:func:`edgedetect.service.cli.check_config`. Nothing here is imported by the detector core.
"""
