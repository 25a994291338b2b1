"""The server's log: one handler, to stderr or a file, as text or one JSON object a line.

The handler is made once and changed in place on a reload (``apply``), so a thread that
logs during the change never writes to a closed file: the stream is swapped under the
handler's own lock. A log file is created mode 0600, since it names users and
addresses, and reopened by every reload, so logrotate can move it and send SIGHUP.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from chatsecure.config import LoggingSettings
from chatsecure.timestamps import format_ts

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: what log shippers parse without rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": format_ts(int(record.created * 1000)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def open_log_file(path: Path) -> TextIO:
    """``path`` opened for appending, created 0600 (never wider) if it does not exist."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return open(fd, "a", encoding="utf-8", buffering=1)


class LogOutput(logging.StreamHandler[TextIO]):
    """The root logger's only handler; ``apply`` points it at what ``[logging]`` says."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def apply(self, settings: LoggingSettings) -> None:
        """Switch to these settings, reopening the file; OSError leaves everything as it was."""
        stream = open_log_file(settings.file) if settings.file else sys.stderr
        formatter = JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)
        self.acquire()
        try:
            self.setFormatter(formatter)
            old = self.stream
            self.stream = stream
        finally:
            self.release()
        if old is not stream and old is not sys.stderr:
            old.close()
        logging.getLogger().setLevel(settings.level)


def install_log_output(settings: LoggingSettings) -> LogOutput:
    """Make a ``LogOutput`` the root logger's one handler; OSError if the file cannot open."""
    output = LogOutput()
    output.apply(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.addHandler(output)
    # Alembic narrates every schema check at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return output
