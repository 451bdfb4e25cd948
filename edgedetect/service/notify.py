"""systemd notification protocol (sd_notify) over the $NOTIFY_SOCKET datagram socket.

Hand-written on purpose: the protocol is "send one datagram of KEY=VALUE lines to a Unix
socket" (see sd_notify(3)); the packages that wrap it (sdnotify, systemd-python) are either
unmaintained or need libsystemd headers to build on the Pi. Ten lines beat a dependency.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("edgedetect.notify")


class Notifier:
    """Sends READY=1 / WATCHDOG=1 / STATUS=... / STOPPING=1; a no-op outside systemd."""

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = addr
        self._sock: socket.socket | None = None
        self.sent = 0
        self.failed = 0
        if addr:
            if addr.startswith("@"):  # abstract namespace socket
                addr = "\0" + addr[1:]
            self._target = addr
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str | int) -> bool:
        """notify(READY=1, STATUS="...") -> True if the datagram was sent."""
        if self._sock is None:
            return False
        msg = "\n".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8", "replace")
        try:
            self._sock.sendto(msg, self._target)
        except OSError as e:
            self.failed += 1
            log.debug("sd_notify failed: %s", e)
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(READY=1, STATUS=status) if status else self.notify(READY=1)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s() -> float | None:
    """Half of $WATCHDOG_USEC (as sd_watchdog_enabled(3) advises), or None when not set for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        return max(int(usec) / 1e6 / 2, 0.1)
    except ValueError:
        return None
