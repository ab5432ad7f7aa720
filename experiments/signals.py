"""Graceful stop: the first SIGINT/SIGTERM finishes the iteration and saves; a second exits at once."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("jaxtrade")


class StopRequest:
    """Installs the handlers on enter (main thread only) and restores the previous ones on exit."""

    def __init__(self):
        self._event = threading.Event()
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum, _frame):
        if self._event.is_set():
            log.warning("second %s: exiting now without saving", signal.Signals(signum).name)
            os._exit(128 + signum)
        self._event.set()
        log.warning("%s received: finishing this iteration, saving `latest`, then exiting "
                    "(send it again to exit at once)", signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False
