"""Desktop notifications for mentions: the system's ``notify-send`` when it is installed.

No window code here: ``notify`` says whether a notification went out, and the window
falls back to its bell and title when it did not. The program runs with an argument list
(never a shell), its text cut short, on a thread of its own so a slow notification
daemon never holds up the window.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Callable

NOTIFY_PROGRAM = "notify-send"
TITLE_CHARS = 80
BODY_CHARS = 200
RUN_TIMEOUT = 10.0

Runner = Callable[[list[str]], object]


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _run(args: list[str]) -> None:
    # A notification that cannot be shown is not worth an error.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(  # noqa: S603 - a fixed program found on PATH, an argument list
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=RUN_TIMEOUT,
            check=False,
        )


def _in_background(args: list[str]) -> None:
    threading.Thread(target=_run, args=(args,), name="chatsecure-notify", daemon=True).start()


class Notifier:
    """Sends one notification per call; ``runner`` and ``which`` are replaceable for tests."""

    def __init__(
        self,
        runner: Runner = _in_background,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self._runner = runner
        self._which = which

    def notify(self, title: str, body: str) -> bool:
        """``True`` if ``notify-send`` was started; ``False``: the caller should ring."""
        program = self._which(NOTIFY_PROGRAM)
        if program is None:
            return False
        args = [
            program,
            "--app-name=chatsecure",
            "--",
            shorten(title, TITLE_CHARS),
            shorten(body, BODY_CHARS),
        ]
        self._runner(args)
        return True
