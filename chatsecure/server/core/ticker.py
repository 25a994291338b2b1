"""A thread that does one thing every so often, until it is stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Ticker:
    """Calls ``tick()`` every ``interval`` seconds on a daemon thread of its own."""

    def __init__(self, name: str, interval: float, tick: Callable[[], None]) -> None:
        self._interval = interval
        self._tick = tick
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking; waits (a few seconds at most) for a tick under way."""
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._tick()
