"""The server's one log handler: JSON lines, and a switch of file or format in place."""

from __future__ import annotations

import json
import logging
import stat
import sys
from types import TracebackType

from chatsecure.config import LoggingSettings
from chatsecure.server.ops.logs import JsonFormatter, LogOutput

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _record(message: str, exc_info: ExcInfo | None = None) -> logging.LogRecord:
    return logging.LogRecord("chatsecure.test", logging.ERROR, __file__, 1, message, (), exc_info)


def test_a_json_record_is_one_line_even_with_a_traceback():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        exc_type, exc, trace = sys.exc_info()
        assert exc_type is not None
        assert exc is not None
        line = JsonFormatter().format(_record("it broke:\n%s", (exc_type, exc, trace)))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "chatsecure.test"
    assert entry["message"] == "it broke:\n%s"
    assert "ValueError: boom" in entry["exception"]
    assert entry["ts"].endswith("Z")


def test_apply_switches_file_and_format_in_place(tmp_path):
    first, second = tmp_path / "one.log", tmp_path / "two.log"
    output = LogOutput()
    root_level = logging.getLogger().level
    try:
        output.apply(LoggingSettings(file=first))
        output.handle(_record("to the first"))
        output.apply(LoggingSettings(file=second, format="json"))
        output.handle(_record("to the second"))
        output.apply(LoggingSettings())  # back to stderr: the file is closed
    finally:
        output.close()
        logging.getLogger().setLevel(root_level)
    assert first.read_text(encoding="utf-8").endswith("chatsecure.test: to the first\n")
    assert json.loads(second.read_text(encoding="utf-8"))["message"] == "to the second"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
